/**
 * Start / health-wait / stop of a local spire-server, used by `npm start` and by the tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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
  /**
   * Restart the server when it exits without `stop()` (crash, OOM kill, `kill -9`): same config, same
   * data dir, so the same CA and trust bundle. Default on; `false` leaves a dead server dead.
   */
  readonly supervise?: boolean | SuperviseOptions;
}

export interface SuperviseOptions {
  /** First delay before a restart (default 500 ms); it doubles per failed attempt... */
  readonly initialBackoffMs?: number;
  /** ...up to this (default 30 s). */
  readonly maxBackoffMs?: number;
  /** ...and starts again from initialBackoffMs once the server has been up this long (default 60 s). */
  readonly resetAfterMs?: number;
  /** The supervisor's own lines: an unexpected exit, each restart attempt, the recovery. Default: stderr. */
  readonly log?: (line: string) => void;
  /** Called after each successful automatic restart (e.g. to refresh the trust bundle file). */
  readonly onRestarted?: () => void;
}

/**
 * starting: first start, not healthy yet · ready: running and healthy · restarting: it exited
 * unexpectedly; waiting out the backoff or starting again · down: it exited unexpectedly and is not
 * supervised · stopped: `stop()` was called.
 */
export type SpireServerState = 'starting' | 'ready' | 'restarting' | 'down' | 'stopped';

export interface SpireServerStatus {
  readonly state: SpireServerState;
  /** Automatic restarts since start (manual `restart()` calls are not counted). */
  readonly restarts: number;
  /** How the last unexpected exit happened, e.g. "signal SIGKILL at 2026-01-01T00:00:00.000Z". */
  readonly lastExit?: string;
  /** When the next automatic start attempt is due, while restarting. */
  readonly nextAttemptAt?: string;
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
  /** The supervisor's view (cheap: no call to the server). */
  status(): SpireServerStatus;
  /** SIGTERM, wait, then SIGKILL. Never followed by an automatic restart. Safe to call twice. */
  stop(): Promise<void>;
  /** Stops (if running) and starts again with the same data (same CA, same bundle); supervised again. */
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

/** spire-server processes of this process that are running; terminated if this process exits. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function trackChild(p: ChildProcess): void {
  live.add(p);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // The children run in their own process group (so a terminal's Ctrl-C reaches only us and we stop
    // them in order); if we exit without stopping them, do not leave them running.
    process.once('exit', () => {
      for (const c of live) c.kill('SIGTERM');
    });
  }
}

function describeExit(code: number | null, signal: NodeJS.Signals | null, at: Date): string {
  return `${signal ? `signal ${signal}` : `exit code ${code}`} at ${at.toISOString()}`;
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
  const template = await readFile(SERVER_CONF_TEMPLATE, 'utf8');
  /** Written before every start: an ephemeral port picked earlier may be taken by the time of a restart. */
  const writeConf = async () => {
    const conf = renderServerConf(template, {
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
    await chmod(configPath, 0o600); // an existing file keeps its mode on write
  };

  /** The running server's pid, so that one left behind by an ackd that died is stopped next start. */
  const pidFile = join(dataDir, 'spire-server.pid');
  const sup = opts.supervise === false ? undefined : opts.supervise === true || opts.supervise === undefined ? {} : opts.supervise;
  const supLog = sup?.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const initialBackoffMs = sup?.initialBackoffMs ?? 500;
  const maxBackoffMs = sup?.maxBackoffMs ?? 30_000;
  const resetAfterMs = sup?.resetAfterMs ?? 60_000;

  const logBuf: string[] = [];
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  /**
   * Bumped by stop(): a start or a scheduled restart from before it must not start a server (only
   * restart() starts one after a stop).
   */
  let generation = 0;
  /** Children we are stopping on purpose: their exit is not a crash. */
  const stopping = new WeakSet<ChildProcess>();
  let state: SpireServerState = 'starting';
  let restarts = 0;
  let attempt = 0;
  let readySince = 0;
  let lastExit: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let nextAttemptAt: Date | undefined;

  const launch = async (gen: number): Promise<void> => {
    await writeConf();
    await rm(socketPath, { force: true });
    if (socketDir) await mkdir(socketDir, { recursive: true, mode: 0o700 });
    // stop() may have been called while we waited: never start a server nobody wants.
    if (gen !== generation) throw new Error('spire-server was stopped');
    // detached: its own process group, so Ctrl-C in a terminal reaches only this process, which then
    // stops the server itself (and does not mistake the server's exit for a crash).
    const p = spawn(binary, ['run', '-config', configPath], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child = p;
    trackChild(p);
    let exitInfo: string | undefined;
    exited = new Promise((res) => {
      p.on('exit', (code, signal) => {
        live.delete(p);
        exitInfo = `exited with ${signal ?? code}`;
        if (child === p) child = undefined;
        res();
        // A crash of a server that was up (one that dies while starting fails launch() instead).
        if (!stopping.has(p) && gen === generation && state === 'ready') onCrash(gen, code, signal);
      });
      p.on('error', (e) => {
        live.delete(p);
        exitInfo ??= `failed to start: ${e.message}`;
        if (p.pid === undefined) {
          // never ran: there will be no 'exit'
          if (child === p) child = undefined;
          res();
        }
      });
    });
    for (const s of [p.stdout!, p.stderr!]) {
      forEachLine(s, (l) => {
        if (!l) return;
        logBuf.push(l);
        if (logBuf.length > 200) logBuf.shift();
        opts.onLog?.(l);
      });
    }
    // (after the listeners above are attached: an early exit must not be missed)
    if (p.pid !== undefined) await writeFile(pidFile, `${p.pid}\n`, { mode: 0o600 }).catch(() => undefined);
    const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
    for (;;) {
      if (exitInfo !== undefined) throw new Error(`spire-server ${exitInfo}:\n${errorLines(logBuf)}`);
      if (gen !== generation) {
        await kill(p);
        throw new Error('spire-server was stopped');
      }
      if (existsSync(socketPath) && (await healthy(binary, socketPath))) {
        if (exitInfo !== undefined) continue;
        state = 'ready';
        readySince = Date.now();
        return;
      }
      if (Date.now() > deadline) {
        await kill(p);
        throw new Error(`spire-server did not become healthy in time:\n${errorLines(logBuf)}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  /** SIGTERM, wait up to 5 s, then SIGKILL; resolves once it has exited. */
  const kill = async (p: ChildProcess): Promise<void> => {
    stopping.add(p);
    if (p.pid === undefined || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise<void>((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once('exit', () => r())));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(t);
  };

  const onCrash = (gen: number, code: number | null, signal: NodeJS.Signals | null): void => {
    const now = new Date();
    lastExit = describeExit(code, signal, now);
    if (now.getTime() - readySince >= resetAfterMs) attempt = 0;
    if (!sup) {
      state = 'down';
      supLog(`!! spire-server exited unexpectedly (${lastExit}); it is not supervised, so it stays down and SVID issuance fails until it is restarted`);
      return;
    }
    const why = errorLines(logBuf.filter((l) => /"level":"(error|fatal)"/.test(l)));
    supLog(`!! spire-server exited unexpectedly (${lastExit}); SVID issuance fails closed until it is back${why ? `. Its last errors:\n${why}` : ''}`);
    state = 'restarting';
    schedule(gen);
  };

  const schedule = (gen: number): void => {
    const delay = Math.min(maxBackoffMs, initialBackoffMs * 2 ** attempt);
    attempt++;
    nextAttemptAt = new Date(Date.now() + delay);
    supLog(`!! restarting spire-server in ${(delay / 1000).toFixed(1)} s (attempt ${attempt}, same data dir: same CA and trust bundle)`);
    timer = setTimeout(() => {
      timer = undefined;
      nextAttemptAt = undefined;
      if (gen !== generation) return;
      launch(gen).then(
        () => {
          restarts++;
          supLog(`spire-server is back (pid ${child?.pid ?? '?'}, automatic restart ${restarts}); SVID issuance resumed`);
          try {
            sup?.onRestarted?.();
          } catch {
            // a listener's failure is its own to report
          }
        },
        (e: unknown) => {
          if (gen !== generation) return;
          state = 'restarting';
          supLog(`!! spire-server did not start again: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
          schedule(gen);
        },
      );
    }, delay);
    timer.unref();
  };

  const stop = async (): Promise<void> => {
    generation++;
    state = 'stopped';
    if (timer) clearTimeout(timer);
    timer = undefined;
    nextAttemptAt = undefined;
    const p = child;
    if (p) await kill(p);
    child = undefined;
    await rm(pidFile, { force: true });
  };

  await stopLeftover(pidFile, configPath, supLog);
  await launch(generation);
  return {
    binary,
    socketPath,
    configPath,
    trustDomain: opts.trustDomain,
    running: () => child !== undefined,
    pid: () => child?.pid,
    status: () => ({
      state,
      restarts,
      ...(lastExit === undefined ? {} : { lastExit }),
      ...(nextAttemptAt === undefined ? {} : { nextAttemptAt: nextAttemptAt.toISOString() }),
    }),
    stop: async () => {
      await stop();
      if (socketDir) await rm(socketDir, { recursive: true, force: true }).catch(() => {});
    },
    restart: async () => {
      await stop();
      await exited;
      attempt = 0;
      state = 'starting';
      try {
        await launch(generation);
      } catch (e) {
        state = 'down';
        throw e;
      }
    },
    logs: () => [...logBuf],
  };
}

/**
 * A spire-server an earlier ackd left running on this data dir (it was killed before it could stop
 * it): stopped before a new one starts, so two servers never share one datastore and CA. Recognised
 * by its pid file AND its command line naming this config file (Linux /proc; elsewhere skipped), so a
 * reused pid is never signalled.
 */
async function stopLeftover(pidFile: string, configPath: string, log: (l: string) => void): Promise<void> {
  let pid: number;
  try {
    pid = Number((await readFile(pidFile, 'utf8')).trim());
  } catch {
    return;
  }
  if (!Number.isSafeInteger(pid) || pid <= 1) return;
  let cmdline: string;
  try {
    cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return; // not running (or no /proc)
  }
  const args = cmdline.split('\0');
  if (!args.includes('run') || args[args.indexOf('-config') + 1] !== configPath) return;
  log(`!! stopping a spire-server left running by an earlier ackd (pid ${pid})`);
  const gone = async (ms: number) => {
    for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
      try {
        process.kill(pid, 0);
      } catch {
        return true;
      }
    }
    return false;
  };
  try {
    process.kill(pid, 'SIGTERM');
    if (!(await gone(5000))) {
      process.kill(pid, 'SIGKILL');
      await gone(2000);
    }
  } catch {
    // it went away by itself
  }
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
