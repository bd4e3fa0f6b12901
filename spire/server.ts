/**
 * Start / health-wait / stop of a local spire-server, used by `npm start` and by the tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureSpireServer } from './build.ts';
import { forEachLine } from './lines.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
export const SERVER_CONF_TEMPLATE = join(HERE, 'conf', 'server.conf.tmpl');

/** Unix socket paths are limited to ~107 bytes (sun_path); stay well below. */
const MAX_SOCKET_PATH = 90;

export interface SpireServerOptions {
  /** spire-server binary; built / taken from the cache when absent. */
  readonly binary?: string;
  /** Where SPIRE keeps its datastore and CA keys. Reuse it to keep the trust bundle. */
  readonly dataDir: string;
  readonly trustDomain: string;
  /** Admin API socket; default `<dataDir>/api.sock`, or a short temp path when that is too long. */
  readonly socketPath?: string;
  /** TCP port of the (agent) listener on 127.0.0.1; a free one when absent or 0. */
  readonly bindPort?: number;
  readonly caTtl?: string;
  readonly defaultX509SvidTtl?: string;
  readonly logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /** How long to wait for the server to become healthy (default 60 s). */
  readonly startTimeoutMs?: number;
  /** Each log line of the server (JSON). Default: kept in memory only (see `logs()`). */
  readonly onLog?: (line: string) => void;
}

export interface SpireServerHandle {
  readonly binary: string;
  readonly socketPath: string;
  readonly configPath: string;
  readonly trustDomain: string;
  /** Whether the server process is currently running. */
  running(): boolean;
  /** The server's process id while it runs. */
  pid(): number | undefined;
  /** SIGTERM, wait, then SIGKILL. Safe to call twice. */
  stop(): Promise<void>;
  /** Stops (if running) and starts again with the same data (same CA, same bundle). */
  restart(): Promise<void>;
  /** The last lines the server logged. */
  logs(): string[];
}

export function renderServerConf(template: string, values: Record<string, string | number>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_m, name: string) => {
    const v = values[name];
    if (v === undefined) throw new Error(`server.conf.tmpl: no value for {{${name}}}`);
    return typeof v === 'number' ? String(v) : JSON.stringify(v);
  });
}

export async function startSpireServer(opts: SpireServerOptions): Promise<SpireServerHandle> {
  const binary = opts.binary ?? (await ensureSpireServer());
  const dataDir = resolve(opts.dataDir);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  let socketPath = opts.socketPath ?? join(dataDir, 'api.sock');
  let socketDir: string | undefined;
  if (socketPath.length > MAX_SOCKET_PATH) {
    if (opts.socketPath) throw new Error(`socketPath is ${socketPath.length} characters; unix sockets allow about ${MAX_SOCKET_PATH}`);
    socketDir = await mkdtemp(join(tmpdir(), 'ackd-sp-'));
    socketPath = join(socketDir, 'api.sock');
  }
  await mkdir(dirname(socketPath), { recursive: true, mode: 0o700 });
  const configPath = join(dataDir, 'server.conf');
  const conf = renderServerConf(await readFile(SERVER_CONF_TEMPLATE, 'utf8'), {
    // SPIRE treats 0 as "use 8081", so an ephemeral port is picked here.
    bind_port: opts.bindPort || (await freePort()),
    socket_path: socketPath,
    trust_domain: opts.trustDomain,
    data_dir: dataDir,
    log_level: opts.logLevel ?? 'INFO',
    ca_ttl: opts.caTtl ?? '24h',
    default_x509_svid_ttl: opts.defaultX509SvidTtl ?? '1h',
    datastore_path: join(dataDir, 'datastore.sqlite3'),
    keys_path: join(dataDir, 'keys.json'),
  });
  await writeFile(configPath, conf, { mode: 0o600 });

  const logBuf: string[] = [];
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const start = async (): Promise<void> => {
    await rm(socketPath, { force: true });
    const p = spawn(binary, ['run', '-config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = p;
    let exitInfo: string | undefined;
    exited = new Promise((res) =>
      p.on('exit', (code, signal) => {
        exitInfo = `exited with ${signal ?? code}`;
        if (child === p) child = undefined;
        res();
      }),
    );
    p.on('error', (e) => {
      exitInfo = `failed to start: ${e.message}`;
    });
    for (const s of [p.stdout!, p.stderr!]) {
      forEachLine(s, (l) => {
        if (!l) return;
        logBuf.push(l);
        if (logBuf.length > 200) logBuf.shift();
        opts.onLog?.(l);
      });
    }
    const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
    for (;;) {
      if (exitInfo !== undefined) throw new Error(`spire-server ${exitInfo}:\n${errorLines(logBuf)}`);
      if (existsSync(socketPath) && (await healthy(binary, socketPath))) return;
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`spire-server did not become healthy in time:\n${errorLines(logBuf)}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  const stop = async (): Promise<void> => {
    const p = child;
    if (!p) return;
    p.kill('SIGTERM');
    const killed = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
    if (!killed) {
      p.kill('SIGKILL');
      await exited;
    }
    child = undefined;
  };

  await start();
  return {
    binary,
    socketPath,
    configPath,
    trustDomain: opts.trustDomain,
    running: () => child !== undefined,
    pid: () => child?.pid,
    stop: async () => {
      await stop();
      if (socketDir) await rm(socketDir, { recursive: true, force: true }).catch(() => {});
    },
    restart: async () => {
      await stop();
      if (socketDir) await mkdir(socketDir, { recursive: true, mode: 0o700 });
      await start();
    },
    logs: () => [...logBuf],
  };
}

/** The server's error lines (the reason it died), else its last lines. */
function errorLines(lines: string[]): string {
  const errors = lines.filter((l) => /"level":"(error|fatal)"/.test(l));
  return (errors.length > 0 ? errors : lines).slice(-10).join('\n');
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createNetServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as AddressInfo).port;
      srv.close(() => res(port));
    });
  });
}

/** `spire-server healthcheck -socketPath <path>`: true when it exits 0. */
export function healthy(binary: string, socketPath: string): Promise<boolean> {
  return new Promise((res) => {
    const p = spawn(binary, ['healthcheck', '-socketPath', socketPath], { stdio: 'ignore' });
    const t = setTimeout(() => p.kill('SIGKILL'), 5000);
    p.on('error', () => {
      clearTimeout(t);
      res(false);
    });
    p.on('exit', (code) => {
      clearTimeout(t);
      res(code === 0);
    });
  });
}
