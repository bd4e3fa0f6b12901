/**
 * Init container of the SPIRE task: writes spire-server's configuration (from SPIRE_SERVER_CONF,
 * rendered by the CDK stack) into the shared conf volume and prepares the admin-socket directory so
 * that only SPIRE_UID (spire-server and the bridge) can use the socket. Runs once, then exits.
 *
 * With SPIRE_CONF_TASK_ID_MARKER (two SPIRE servers, lib/constructs/spire.ts) every occurrence of
 * that marker in the configuration becomes this task's ECS task id, read from the task metadata
 * endpoint (ECS_CONTAINER_METADATA_URI_V4): each server's KMS key identifier names its own task.
 * With SPIRE_DATA_DIR it also hands that directory (task storage) to SPIRE_UID, mode 0700.
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

/** The task id: the last segment of the TaskARN the ECS task metadata endpoint (v4) reports. */
async function ecsTaskId(): Promise<string> {
  const base = need('ECS_CONTAINER_METADATA_URI_V4');
  const res = await fetch(`${base}/task`, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`task metadata answered ${res.status}`);
  const arn = ((await res.json()) as { TaskARN?: unknown }).TaskARN;
  const id = typeof arn === 'string' ? arn.split('/').pop() : undefined;
  if (!id || !/^[a-z0-9]{1,64}$/.test(id)) throw new Error(`task metadata has no usable TaskARN (${JSON.stringify(arn)})`);
  return id;
}

let conf = need('SPIRE_SERVER_CONF');
const marker = process.env.SPIRE_CONF_TASK_ID_MARKER;
if (marker) {
  try {
    conf = conf.replaceAll(marker, await ecsTaskId());
  } catch (e) {
    console.error(`spire init: cannot name this server after its ECS task: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(2);
  }
}
const confFile = need('SPIRE_CONF_FILE');
const socketDir = need('SPIRE_SOCKET_DIR');
const uid = Number(need('SPIRE_UID'));

mkdirSync(dirname(confFile), { recursive: true });
writeFileSync(confFile, conf, { mode: 0o644 });
mkdirSync(socketDir, { recursive: true });
chownSync(socketDir, uid, uid);
chmodSync(socketDir, 0o770);
// SPIRE_DATA_DIR (two SPIRE servers: data_dir is task storage, root's at start): SPIRE_UID's alone.
const dataDir = process.env.SPIRE_DATA_DIR;
if (dataDir) {
  mkdirSync(dataDir, { recursive: true });
  chownSync(dataDir, uid, uid);
  chmodSync(dataDir, 0o700);
}
console.log(JSON.stringify({ msg: 'spire init done', confFile, socketDir }));
