import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { AckdError, ERROR_CODES, type ErrorCode } from '../core/errors.ts';
import { parseRequestId } from '../core/ids.ts';
import { signSvidProof, POP_SCHEME } from '../http/svid-pop.ts';
import { AWS_CREDENTIALS_PATH } from '../http/aws-routes.ts';
import { output, readLocalInfo, UsageError } from './context.ts';

/** The JSON `credential_process` prints (AWS CLI, Terraform and the SDKs read it). */
export interface CredentialProcessOutput {
  readonly Version: 1;
  readonly AccessKeyId: string;
  readonly SecretAccessKey: string;
  readonly SessionToken: string;
  readonly Expiration: string;
}

/** ackd's base URL: --url, else ACKD_URL, else the local stack's (.ackd/local.json). */
function baseUrl(flag: string | undefined): string {
  const local = readLocalInfo();
  const fromLocal = typeof local?.mcpUrl === 'string' ? local.mcpUrl.replace(/\/mcp$/, '') : undefined;
  const url = flag ?? process.env.ACKD_URL ?? fromLocal;
  if (!url) throw new UsageError("--url is required: ackd's base URL (or set ACKD_URL; locally, run npm start first)");
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`--url must be an absolute URL (got ${JSON.stringify(url)})`);
  }
  if (u.protocol !== 'https:' && !['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) throw new UsageError('--url must be https (plain http only to this machine)');
  return url.replace(/\/+$/, '');
}

/**
 * Asks ackd's broker for AWS credentials of `role` under the approved request, proving possession
 * of the SVID's key (a proof signed for this one call). Throws AckdError with the broker's code.
 */
export async function fetchAwsCredentials(o: { svidPem: string; requestId: string; role: string; baseUrl: string; fetch?: typeof fetch; /** The proof's iat (default now). */ now?: Date }): Promise<CredentialProcessOutput> {
  const url = `${o.baseUrl}${AWS_CREDENTIALS_PATH}`;
  const proof = await signSvidProof(o.svidPem, { requestId: o.requestId, role: o.role, aud: url, ...(o.now ? { now: o.now } : {}) });
  let res: Response;
  try {
    res = await (o.fetch ?? fetch)(url, {
      method: 'POST',
      headers: { authorization: `${POP_SCHEME} ${proof}`, 'content-type': 'application/json' },
      body: JSON.stringify({ request_id: o.requestId, role: o.role }),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (e) {
    throw new AckdError('ERR_INTERNAL', `ackd could not be reached at ${url}: ${(e as Error).message}`, { cause: e });
  }
  const body = (await res.json().catch(() => ({}))) as Partial<CredentialProcessOutput> & { error?: { code?: string; message?: string } };
  if (!res.ok) {
    const code = body.error?.code;
    throw new AckdError(code !== undefined && Object.hasOwn(ERROR_CODES, code) ? (code as ErrorCode) : 'ERR_INTERNAL', body.error?.message ?? `ackd answered HTTP ${res.status}`);
  }
  if (body.Version !== 1 || !body.AccessKeyId || !body.SecretAccessKey || !body.SessionToken || !body.Expiration) throw new AckdError('ERR_INTERNAL', 'ackd answered without credentials');
  return { Version: 1, AccessKeyId: body.AccessKeyId, SecretAccessKey: body.SecretAccessKey, SessionToken: body.SessionToken, Expiration: body.Expiration };
}

async function readSvid(file: string): Promise<string> {
  const st = await stat(file).catch(() => undefined);
  if (!st) throw new UsageError(`--svid: no file ${file}`);
  // The file holds the SVID's private key: like ssh, refuse one that others may read.
  if ((st.mode & 0o077) !== 0) throw new UsageError(`--svid: ${file} is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
  return readFile(file, 'utf8');
}

/**
 * `ackd aws credential-process`: what `credential_process` in ~/.aws/config runs, so the AWS CLI,
 * Terraform and every SDK use an approved request's credentials. `ackd aws profile` prints those
 * config lines.
 */
export function registerAwsCommands(program: Command): void {
  const aws = program.command('aws').description('AWS credentials for an approved request (aws:role/<name> permissions)');
  aws
    .command('credential-process')
    .description('print AWS credentials of an approved role as credential_process JSON (Version 1); signs a one-time proof with the SVID key')
    .requiredOption('--svid <file>', 'the SVID PEM (chain, then key) of the approved request, mode 600')
    .requiredOption('--request-id <request_id>', 'the approved request')
    .requiredOption('--role <name>', 'the role, as in the permission aws:role/<name>')
    .option('--url <url>', "ackd's base URL (default: ACKD_URL, else the local stack)")
    .option('--json', 'print JSON (always: credential_process reads JSON)')
    .action(async (opts: { svid: string; requestId: string; role: string; url?: string }) => {
      const requestId = parseRequestId(opts.requestId, '--request-id');
      const creds = await fetchAwsCredentials({ svidPem: await readSvid(opts.svid), requestId, role: opts.role, baseUrl: baseUrl(opts.url) });
      process.stdout.write(JSON.stringify(creds) + '\n');
    });
  aws
    .command('profile')
    .description('print a ~/.aws/config profile whose credential_process is ackd aws credential-process')
    .requiredOption('--svid <file>', 'the SVID PEM of the approved request')
    .requiredOption('--request-id <request_id>', 'the approved request')
    .requiredOption('--role <name>', 'the role, as in the permission aws:role/<name>')
    .option('--url <url>', "ackd's base URL (default: ACKD_URL, else the local stack)")
    .option('--name <profile>', 'profile name (default ackd-<role>)')
    .option('--region <region>', 'region of the profile (default: the local emulator\'s, else us-east-1)')
    .option('--json', 'print JSON {profile, credential_process, region, endpoint_url}')
    .action((opts: { svid: string; requestId: string; role: string; url?: string; name?: string; region?: string; json?: boolean }) => {
      const requestId = parseRequestId(opts.requestId, '--request-id');
      const local = readLocalInfo();
      const cli = resolve(new URL('../../bin/ackd.js', import.meta.url).pathname);
      const profile = {
        profile: opts.name ?? `ackd-${opts.role}`,
        credential_process: `${cli} aws credential-process --svid ${resolve(opts.svid)} --request-id ${requestId} --role ${opts.role} --url ${baseUrl(opts.url)}`,
        region: opts.region ?? (typeof local?.awsRegion === 'string' ? local.awsRegion : 'us-east-1'),
        endpoint_url: typeof local?.awsEndpoint === 'string' && opts.url === undefined ? local.awsEndpoint : null,
      };
      output(opts.json, profile, () =>
        [`[profile ${profile.profile}]`, `credential_process = ${profile.credential_process}`, `region = ${profile.region}`, ...(profile.endpoint_url ? [`endpoint_url = ${profile.endpoint_url}`] : [])].join('\n'),
      );
    });
}
