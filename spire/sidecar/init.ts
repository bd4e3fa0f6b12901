/**
 * Init container of the SPIRE task: writes spire-server's configuration (from SPIRE_SERVER_CONF,
 * rendered by the CDK stack) into the shared conf volume and prepares the admin-socket directory so
 * that only SPIRE_UID (spire-server and the bridge) can use the socket. Runs once, then exits.
 */
import { chmodSync, chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

function need(name: string): string {
  const v = process.env[name];
  if (!v) {
    console.error(`spire init: ${name} is required`);
    process.exit(2);
  }
  return v;
}

const conf = need('SPIRE_SERVER_CONF');
const confFile = need('SPIRE_CONF_FILE');
const socketDir = need('SPIRE_SOCKET_DIR');
const uid = Number(need('SPIRE_UID'));

mkdirSync(dirname(confFile), { recursive: true });
writeFileSync(confFile, conf, { mode: 0o644 });
mkdirSync(socketDir, { recursive: true });
chownSync(socketDir, uid, uid);
chmodSync(socketDir, 0o770);
console.log(JSON.stringify({ msg: 'spire init done', confFile, socketDir }));
