import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { readLocalInfo, UsageError } from './context.ts';
import { ExitCode } from './audit.ts';
import { SvidVerifyError, receiptKeysUrl, verifyAckdSvid, type AckdVerifyResult, type ReceiptKeys } from '../verify/index.ts';
import { groupedHex } from '../core/payload.ts';

/**
 * `ackd svid verify <file>`: checks an SVID (PEM chain, leaf first; a private key in the file is
 * ignored) against a trust bundle, optionally against ackd's status endpoint, and optionally
 * ackd's receipt of the approval (--receipt) and the operation's parameters (--payload).
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
    .option('--permission <permission...>', 'refuse unless each of these was approved (needs --status-url or --receipt)')
    .option('--receipt <file>', "also verify ackd's receipt of the approval (compact JWS; - reads it from stdin): signed by ackd, for this SVID")
    .option('--payload <file.json>', 'refuse unless this JSON is exactly the payload the receipt approves (needs --receipt)')
    .option('--receipt-keys <file|url>', "ackd's receipt keys, a JWKS file or URL (default: <ackd origin>/.well-known/ackd-receipt-keys.json, ackd from ACKD_MCP_URL or .ackd/local.json)")
    .option('--at <time>', 'judge validity at this ISO time instead of now')
    .option('--json', 'print JSON')
    .action(async (file: string, opts: { bundle?: string; trustDomain?: string; statusUrl?: string; requestId?: string; permission?: string[]; receipt?: string; payload?: string; receiptKeys?: string; at?: string; json?: boolean }) => {
      if (opts.permission && !opts.statusUrl && !opts.receipt) {
        throw new UsageError('--permission needs --status-url or --receipt: an SVID does not say which permissions were approved, only ackd does (online) or its receipt');
      }
      if (opts.payload && !opts.receipt) throw new UsageError("--payload needs --receipt: the payload is checked against the SHA-256 ackd signed in the receipt");
      if (opts.receipt === '-' && file === '-') throw new UsageError('only one of the SVID and --receipt can be read from stdin');
      const bundlePath = opts.bundle ?? readLocalInfo()?.trustBundlePath;
      if (!bundlePath) throw new UsageError('--bundle is required (no .ackd/local.json here)');
      const at = opts.at === undefined ? undefined : new Date(opts.at);
      if (at && Number.isNaN(at.getTime())) throw new UsageError('--at must be an ISO date-time');
      const [chain, bundle] = await Promise.all([readInput(file), readFile(bundlePath, 'utf8')]);
      const receipt = opts.receipt === undefined ? undefined : await readInput(opts.receipt);
      const payload = opts.payload === undefined ? undefined : await readJson(opts.payload, '--payload');
      const receiptKeys = opts.receipt === undefined ? undefined : await loadReceiptKeys(opts.receiptKeys);
      let result: AckdVerifyResult;
      try {
        result = await verifyAckdSvid(chain, {
          bundle,
          ...(receipt !== undefined ? { receipt: receipt.trim(), receiptKeys: receiptKeys! } : {}),
          ...(payload !== undefined ? { payload } : {}),
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
        ...(result.receipt ? { receipt: result.receipt, payload_checked: payload !== undefined } : {}),
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
        const r = result.receipt;
        if (r) {
          lines.push(
            `receipt:    signed by ackd, for this SVID, until ${new Date(r.exp * 1000).toISOString()}`,
            `approver:   ${r.approver} at ${r.decided_at}${r.passkey_assertion_sha256 ? ' (with a passkey)' : ''}`,
            `approved:   ${r.permissions.join(', ')}`,
            `payload:    ${r.payload_sha256 === null ? 'none approved' : `sha256 ${groupedHex(r.payload_sha256)}`}`,
          );
          if (payload !== undefined) lines.push(`            ${opts.payload} matches it (RFC 8785 canonical JSON)`);
          else if (r.payload_sha256 !== null) lines.push('            not compared (pass --payload file.json to check the parameters)');
        } else lines.push('receipt:    not checked (pass --receipt to check what was approved, and --payload for the parameters)');
        process.stdout.write(lines.join('\n') + '\n');
      }
    });
}

/** A file's text, or stdin's for "-". */
async function readInput(path: string): Promise<string> {
  if (path !== '-') return readFile(path, 'utf8');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function readJson(path: string, option: string): Promise<unknown> {
  const text = await readInput(path);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new UsageError(`${option}: ${path} is not JSON (${(e as Error).message})`);
  }
}

/**
 * --receipt-keys: a JWKS file, or a URL; by default the JWKS of the ackd this CLI talks to
 * (ACKD_MCP_URL, else mcpUrl of .ackd/local.json).
 */
export async function loadReceiptKeys(option: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<ReceiptKeys> {
  if (option !== undefined) {
    if (/^https?:\/\//i.test(option)) return new URL(option);
    const jwks = await readJson(option, '--receipt-keys');
    if (typeof jwks !== 'object' || jwks === null || !Array.isArray((jwks as { keys?: unknown }).keys)) throw new UsageError(`--receipt-keys: ${option} is not a JWKS ({"keys":[…]})`);
    return jwks as ReceiptKeys;
  }
  const ackd = env.ACKD_MCP_URL ?? readLocalInfo()?.mcpUrl;
  if (!ackd) throw new UsageError("--receipt-keys is required: no ACKD_MCP_URL and no .ackd/local.json say where ackd's receipt keys are");
  return receiptKeysUrl(ackd);
}
