/**
 * Runnable protected resource:
 *
 *   npx tsx examples/protected-resource/main.ts [--port 8443] [--permission deploy:prod ...]
 *     [--require-receipt] [--receipt-keys <jwks file or URL>]
 *
 * Reads the trust bundle and ackd's URL from .ackd/local.json (written by `npm start`), or from
 * ACKD_TRUST_BUNDLE / ACKD_STATUS_URL. Writes its own server certificate to
 * .ackd/protected-resource.crt so clients can trust it (curl --cacert).
 *
 * An operation's parameters are POSTed as JSON with ackd's receipt in the `Ackd-Receipt` header;
 * they must be exactly the payload the human approved. ackd's receipt keys are fetched from
 * <ackd>/.well-known/ackd-receipt-keys.json unless --receipt-keys says otherwise.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { JSONWebKeySet } from 'jose';
import { startProtectedResource } from './server.ts';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '8443' }, permission: { type: 'string', multiple: true }, 'require-receipt': { type: 'boolean' }, 'receipt-keys': { type: 'string' } },
});
const stateDir = process.env.ACKD_HOME ?? join(process.cwd(), '.ackd');
const local = await readFile(join(stateDir, 'local.json'), 'utf8').then((t) => JSON.parse(t) as Record<string, string>).catch(() => undefined);
const bundlePath = process.env.ACKD_TRUST_BUNDLE ?? local?.trustBundlePath;
const statusUrl = process.env.ACKD_STATUS_URL ?? (local?.mcpUrl ? new URL(local.mcpUrl).origin : undefined);
if (!bundlePath || !statusUrl) {
  process.stderr.write('run `npm start` first (or set ACKD_TRUST_BUNDLE and ACKD_STATUS_URL)\n');
  process.exit(2);
}
const resource = await startProtectedResource({
  bundlePem: () => readFile(bundlePath, 'utf8'),
  statusUrl,
  port: Number(values.port),
  ...(values.permission ? { requiredPermissions: values.permission } : {}),
  ...(values['require-receipt'] ? { requireReceipt: true } : {}),
  ...(values['receipt-keys'] ? { receiptKeys: /^https?:\/\//.test(values['receipt-keys']) ? values['receipt-keys'] : (JSON.parse(await readFile(values['receipt-keys'], 'utf8')) as JSONWebKeySet) } : {}),
});
const certPath = join(stateDir, 'protected-resource.crt');
await writeFile(certPath, resource.serverCertPem);
process.stdout.write(
  [
    `protected resource listening on ${resource.url}`,
    `  trust bundle: ${bundlePath}   status: ${statusUrl}`,
    `  its server certificate: ${certPath}`,
    `  try: curl --cacert ${certPath} --cert svid.pem --key svid.pem ${resource.url}/`,
    `  with parameters: curl --cacert ${certPath} --cert svid.pem --key svid.pem -H "Ackd-Receipt: $(cat receipt.jws)" --json @payload.json ${resource.url}/deploy`,
    '',
  ].join('\n'),
);
const stop = () => void resource.stop().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
