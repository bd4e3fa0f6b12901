/**
 * Builds spire-server (cgo on, for its SQLite datastore) into a cache outside the repository and
 * reuses it when present:
 *
 *   ${XDG_CACHE_HOME:-~/.cache}/ackd/spire/<version>/spire-server
 *
 * First `go install github.com/spiffe/spire/cmd/spire-server@<version>`. Where the Go module proxy
 * cannot serve that (it refuses some of SPIRE's dependencies, e.g. the EJBCA client SDK v1.1.0 of
 * an upstream-authority plugin ackd never loads), fall back to a throwaway module that requires
 * SPIRE at the same version and pins that one dependency to a version the proxy serves.
 *
 * Run it directly with `npm run spire:build`.
 */
import { spawn } from 'node:child_process';
import { access, chmod, constants, mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { forEachLine } from './lines.ts';

export const SPIRE_VERSION = '1.15.3';
const SPIRE_MODULE = 'github.com/spiffe/spire';
const SPIRE_PKG = `${SPIRE_MODULE}/cmd/spire-server`;

/** The throwaway module of the fallback build. The `replace` is the whole point of it. */
const FALLBACK_GO_MOD = `module ackd.local/spirebuild

go 1.25

require ${SPIRE_MODULE} v${SPIRE_VERSION}

// v1.1.0 (what SPIRE ${SPIRE_VERSION} requires) is not served by the module proxy; the plugin that uses
// it (UpstreamAuthority "ejbca") is never configured by ackd, and v1.0.2 compiles against it.
replace github.com/Keyfactor/ejbca-go-client-sdk => github.com/Keyfactor/ejbca-go-client-sdk v1.0.2
`;
const FALLBACK_TOOLS_GO = `//go:build tools

package tools

import _ "${SPIRE_PKG}"
`;

export interface EnsureOptions {
  /** Progress lines (default: stderr). */
  readonly log?: (line: string) => void;
  /** Override the cache directory (default: ${XDG_CACHE_HOME:-~/.cache}/ackd/spire/<version>). */
  readonly cacheDir?: string;
  /** Give up after this long (default 30 minutes: a cold build downloads and compiles a lot). */
  readonly timeoutMs?: number;
}

export function spireCacheDir(): string {
  const base = process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache');
  return join(base, 'ackd', 'spire', SPIRE_VERSION);
}

/** Path of the cached binary, whether or not it exists. */
export function spireServerPath(cacheDir = spireCacheDir()): string {
  return join(cacheDir, 'spire-server');
}

/** The cached binary if it is there, without building. */
export async function cachedSpireServer(cacheDir = spireCacheDir()): Promise<string | undefined> {
  const bin = spireServerPath(cacheDir);
  try {
    await access(bin, constants.X_OK);
    return bin;
  } catch {
    return undefined;
  }
}

/** Whether a Go toolchain is on PATH (without it, no SPIRE can be built). */
export async function goAvailable(): Promise<boolean> {
  try {
    await run('go', ['version'], { log: () => {}, timeoutMs: 30_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * Returns the path of a spire-server binary, building it first if it is not cached. Concurrent
 * callers (tests and `npm start`) share one build through a lock directory.
 */
export async function ensureSpireServer(opts: EnsureOptions = {}): Promise<string> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`[spire-build] ${l}\n`));
  const cacheDir = opts.cacheDir ?? spireCacheDir();
  const timeoutMs = opts.timeoutMs ?? 30 * 60_000;
  const cached = await cachedSpireServer(cacheDir);
  if (cached) return cached;

  await mkdir(cacheDir, { recursive: true });
  const lock = join(cacheDir, '.build.lock');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // A lock older than the timeout belongs to a build that died.
      const age = Date.now() - (await stat(lock).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if (age > timeoutMs) {
        await rm(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for another spire-server build (lock ${lock})`, { cause: e });
      log('another process is building spire-server; waiting for it');
      await new Promise((r) => setTimeout(r, 5000));
      const done = await cachedSpireServer(cacheDir);
      if (done) return done;
    }
  }
  try {
    const again = await cachedSpireServer(cacheDir);
    if (again) return again;
    if (!(await goAvailable())) {
      throw new Error('no Go toolchain on PATH: install Go (and gcc, for cgo) to build spire-server');
    }
    const bin = spireServerPath(cacheDir);
    const staging = join(cacheDir, `.staging-${process.pid}`);
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    const env = { ...process.env, CGO_ENABLED: '1' };
    log(`building spire-server v${SPIRE_VERSION} (cgo on) into ${cacheDir}; a cold build takes several minutes`);
    try {
      await run('go', ['install', '-v', `${SPIRE_PKG}@v${SPIRE_VERSION}`], { env: { ...env, GOBIN: staging }, log, deadline });
    } catch (e) {
      log(`go install failed (${(e as Error).message.split('\n')[0]}); falling back to a pinned build module`);
      const work = await mkdtemp(join(tmpdir(), 'ackd-spirebuild-'));
      try {
        await writeFile(join(work, 'go.mod'), FALLBACK_GO_MOD);
        await writeFile(join(work, 'tools.go'), FALLBACK_TOOLS_GO);
        log('go mod tidy (resolving SPIRE dependencies)');
        await run('go', ['mod', 'tidy'], { env, cwd: work, log, deadline });
        log('go build');
        await run('go', ['build', '-v', '-o', join(staging, 'spire-server'), SPIRE_PKG], { env, cwd: work, log, deadline });
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    }
    await chmod(join(staging, 'spire-server'), 0o755);
    await rename(join(staging, 'spire-server'), bin);
    await rm(staging, { recursive: true, force: true });
    log(`spire-server v${SPIRE_VERSION} ready: ${bin}`);
    return bin;
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

function run(
  cmd: string,
  args: string[],
  o: { env?: NodeJS.ProcessEnv; cwd?: string; log: (l: string) => void; deadline?: number; timeoutMs?: number },
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: o.env ?? process.env, cwd: o.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    let count = 0;
    const onLine = (line: string) => {
      if (!line) return;
      tail.push(line);
      if (tail.length > 20) tail.shift();
      count++;
      // `go -v` prints one line per package: show every 25th so progress is visible but not noisy.
      if (/error|cannot|denied|forbidden|failed/i.test(line) || count % 25 === 1) o.log(line);
    };
    for (const s of [child.stdout, child.stderr]) forEachLine(s, onLine);
    const ms = o.timeoutMs ?? Math.max(1000, (o.deadline ?? Date.now() + 30 * 60_000) - Date.now());
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(' ')} exited with ${signal ?? code}\n${tail.join('\n')}`));
    });
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  ensureSpireServer()
    .then((bin) => {
      process.stdout.write(`${bin}\n`);
    })
    .catch((e: unknown) => {
      process.stderr.write(`spire-server build failed: ${(e as Error).message}\n`);
      process.exitCode = 1;
    });
}
