import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { readLocalInfo, UsageError } from './context.ts';
import { ExitCode } from './audit.ts';
import { SvidVerifyError, verifyAckdSvid, type AckdVerifyResult } from '../verify/index.ts';

/**
 * `ackd svid verify <file>`: checks an SVID (PEM chain, leaf first; a private key in the file is
 * ignored) against a trust bundle, and optionally against ackd's status endpoint.
 */
export function registerSvidCommands(program: Command): void {
  const svid = program.command('svid').description('X.509-SVIDs issued by ackd');
  svid
    .command('verify <file>')
    .description('verify an SVID: chain against the trust bundle, X509-SVID rules, SPIFFE ID; with --status-url also revocation')
    .option('--bundle <pem>', 'trust bundle PEM file (default: trustBundlePath of .ackd/local.json)')
    .option('--trust-domain <td>', 'the trust domain the SVID must belong to (default: the one the bundle names)')
    .option('--status-url <url>', "ackd's base URL: also ask its status endpoint (revoked? action? permissions?)")
    .option('--request-id <request_id>', 'refuse unless the SVID is for this request')
    .option('--permission <permission...>', 'refuse unless each of these was approved (needs --status-url)')
    .option('--at <time>', 'judge validity at this ISO time instead of now')
    .option('--json', 'print JSON')
    .action(async (file: string, opts: { bundle?: string; trustDomain?: string; statusUrl?: string; requestId?: string; permission?: string[]; at?: string; json?: boolean }) => {
      if (opts.permission && !opts.statusUrl) {
        throw new UsageError('--permission needs --status-url: an SVID does not say which permissions were approved, only ackd does, so give its URL to ask it');
      }
      const bundlePath = opts.bundle ?? readLocalInfo()?.trustBundlePath;
      if (!bundlePath) throw new UsageError('--bundle is required (no .ackd/local.json here)');
      const at = opts.at === undefined ? undefined : new Date(opts.at);
      if (at && Number.isNaN(at.getTime())) throw new UsageError('--at must be an ISO date-time');
      const [chain, bundle] = await Promise.all([readFile(file, 'utf8'), readFile(bundlePath, 'utf8')]);
      let result: AckdVerifyResult;
      try {
        result = await verifyAckdSvid(chain, {
          bundle,
          ...(opts.trustDomain ? { trustDomain: opts.trustDomain } : {}),
          ...(at ? { at } : {}),
          ...(opts.statusUrl ? { statusUrl: opts.statusUrl } : {}),
          expect: { ...(opts.requestId ? { requestId: opts.requestId } : {}), ...(opts.permission ? { permissions: opts.permission } : {}) },
        });
      } catch (e) {
        if (!(e instanceof SvidVerifyError)) throw e;
        if (opts.json) process.stdout.write(JSON.stringify({ valid: false, code: e.code, reason: e.message }, null, 2) + '\n');
        else process.stderr.write(`INVALID: ${e.code}: ${e.message}\n`);
        // exit status 1, message already printed
        throw new ExitCode(1);
      }
      const s = result.svid;
      const out = {
        valid: true,
        spiffe_id: s.spiffe_id,
        trust_domain: s.trust_domain,
        agent_id: s.agent_id,
        request_id: s.request_id,
        svid_id: s.svid_id,
        not_before: s.not_before.toISOString(),
        not_after: s.not_after.toISOString(),
        online: result.status !== undefined,
        ...(result.status ? { status: result.status.status, action: result.status.action, permissions: result.status.permissions } : {}),
      };
      if (opts.json) process.stdout.write(JSON.stringify(out, null, 2) + '\n');
      else {
        const lines = [
          `VALID X.509-SVID`,
          `spiffe id:  ${out.spiffe_id}`,
          `agent:      ${out.agent_id}`,
          `request:    ${out.request_id}`,
          `svid_id:    ${out.svid_id}`,
          `valid:      ${out.not_before} .. ${out.not_after}`,
        ];
        if (result.status) lines.push(`status:     ${result.status.status} (not revoked)`, `action:     ${result.status.action}`, `permissions: ${result.status.permissions.join(', ')}`);
        else lines.push('status:     not checked online (pass --status-url to check revocation)');
        process.stdout.write(lines.join('\n') + '\n');
      }
    });
}
