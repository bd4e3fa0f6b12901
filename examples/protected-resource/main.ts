/**
 * Runnable protected resource:
 *
 *   npx tsx examples/protected-resource/main.ts [--port 8443] [--permission deploy:prod ...]
 *
 * Reads the trust bundle and ackd's URL from .ackd/local.json (written by `npm start`), or from
 * ACKD_TRUST_BUNDLE / ACKD_STATUS_URL. Writes its own server certificate to
 * .ackd/protected-resource.crt so clients can trust it (curl --cacert).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startProtectedResource } from './server.ts';

const { values } = parseArgs({ options: { port: { type: 'string', default: '8443' }, permission: { type: 'string', multiple: true } } });
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
});
const certPath = join(stateDir, 'protected-resource.crt');
await writeFile(certPath, resource.serverCertPem);
process.stdout.write(
  [
    `protected resource listening on ${resource.url}`,
    `  trust bundle: ${bundlePath}   status: ${statusUrl}`,
    `  its server certificate: ${certPath}`,
    `  try: curl --cacert ${certPath} --cert svid.pem --key svid.pem ${resource.url}/`,
    '',
  ].join('\n'),
);
const stop = () => void resource.stop().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
