/**
 * Hardening of `npm start` (lambdas/local/main.ts), run as the real process in its own process group
 * the way a terminal runs it, with a real spire-server:
 *  - its state directory is the owner's alone: every directory 0700-or-less and every file without
 *    group/other bits, also what an earlier (older) run left world-readable;
 *  - a spire-server that dies is announced on the console and restarted;
 *  - Ctrl-C (SIGINT to the whole process group) stops everything, and is not taken for a crash.
 */
import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, lstatSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureSpireServer } from '../../spire/build.ts';
import { structured } from '../helpers/local-stack.ts';
import { SPIRE_BUILD_TIMEOUT_MS } from '../helpers/spire.ts';

const ROOT = join(import.meta.dirname, '..', '..');

/** Every path under dir whose mode gives group or others any access (symlinks are not followed). */
function readableByOthers(dir: string): string[] {
  const bad: string[] = [];
  const visit = (p: string) => {
    const st = lstatSync(p);
    if (st.isSymbolicLink()) return;
    if ((st.mode & 0o077) !== 0) bad.push(`${p.slice(dir.length) || '/'} ${(st.mode & 0o7777).toString(8)}`);
    if (st.isDirectory()) for (const n of readdirSync(p)) visit(join(p, n));
  };
  visit(dir);
  return bad;
}

/** pids of processes whose command line contains `needle` (read from /proc; nothing is changed). */
function pidsWith(needle: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(needle)) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

async function waitFor(what: string, pred: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('npm start: owner-only state, SPIRE restarts announced, Ctrl-C is a stop', () => {
  let home: string;
  let proc: ChildProcess;
  let out = '';
  let exit: Promise<number | null>;
  beforeAll(async () => {
    await ensureSpireServer(); // FAIL (not skip) without a spire-server
    home = await mkdtemp(join(tmpdir(), 'ackd-home-'));
    // What an earlier run, before this hardening, left behind: world-readable secrets in 0755 dirs.
    chmodSync(home, 0o755);
    writeFileSync(join(home, 'local.json'), JSON.stringify({ approverPassword: 'Ack-old-secret' }), { mode: 0o644 });
    for (const d of ['cognito', 'cognito/db', 'dynalite', 'spire', 'local-ca']) mkdirSync(join(home, d), { mode: 0o755 });
    for (const d of ['cognito', 'cognito/db', 'dynalite', 'spire', 'local-ca']) chmodSync(join(home, d), 0o755);
    writeFileSync(join(home, 'cognito', 'notes.json'), '{}', { mode: 0o644 });
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeFileSync(join(home, 'audit-signing-key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o644 });
    chmodSync(join(home, 'audit-signing-key.pem'), 0o644);
    // ... and the decision and receipt keys (P-256, as ackd makes them), left readable too.
    for (const f of ['decision-signing-key.pem', 'receipt-signing-key.pem']) {
      writeFileSync(join(home, f), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o644 });
      chmodSync(join(home, f), 0o644);
    }
    chmodSync(join(home, 'local.json'), 0o644);
    chmodSync(join(home, 'cognito', 'notes.json'), 0o644);
  }, SPIRE_BUILD_TIMEOUT_MS);
  afterAll(async () => {
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      process.kill(-proc.pid!, 'SIGKILL');
      await exit;
    }
    for (const pid of pidsWith(join(home, 'spire', 'server.conf'))) process.kill(pid, 'SIGKILL');
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('starts, serves, tightens, announces and survives a SPIRE crash, and stops on Ctrl-C', async () => {
    proc = spawn(process.execPath, ['--import', 'tsx', 'lambdas/local/main.ts'], {
      cwd: ROOT,
      // its own process group, like a shell's foreground job: Ctrl-C below is sent to the whole group
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        ACKD_HOME: home,
        ACKD_PORT: '0',
        ACKD_DYNALITE_PORT: '0',
        ACKD_SES_PORT: '0',
        ACKD_COGNITO_PORT: '0',
        ACKD_ISSUER: 'spire',
        ACKD_TRUST_DOMAIN: 'ackd.test',
      },
    });
    exit = new Promise((r) => proc.on('exit', (code) => r(code)));
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor('"ackd is running locally"', () => out.includes('ackd is running locally.') || proc.exitCode !== null, 180_000);
    expect(out).toContain('ackd is running locally.');

    // a request goes into the (persisted) store
    const info = JSON.parse(readFileSync(join(home, 'local.json'), 'utf8')) as { mcpUrl: string; agentApiKey: string; agentId: string };
    const mcp = new Client({ name: 'hardening-test', version: '1.0.0' });
    await mcp.connect(new StreamableHTTPClientTransport(new URL(info.mcpUrl), { requestInit: { headers: { authorization: `Bearer ${info.agentApiKey}` } } }));
    const req = structured<{ request_id: string }>(
      await mcp.callTool({
        name: 'request_authorization',
        arguments: { agent_id: info.agentId, action: 'read the logs', permissions: ['logs:read'], justification: 'debugging', ttl_minutes: 5 },
      }),
    );
    expect(req.request_id).toMatch(/^req_/);
    await mcp.close();

    // owner-only, everything: what it created and what the earlier run left
    for (const f of ['local.json', 'audit-signing-key.pem', 'decision-signing-key.pem', 'receipt-signing-key.pem', 'outbox-seal.key', 'trust-bundle.pem', 'cognito/ackd.json', 'spire/server.conf', 'spire/datastore.sqlite3', 'spire/keys.json']) {
      expect(existsSync(join(home, f)), f).toBe(true);
    }
    for (const d of ['cognito/db', 'dynalite', 'consent-ui']) expect(readdirSync(join(home, d)).length, d).toBeGreaterThan(0);
    expect(readableByOthers(home)).toEqual([]);
    expect(out).toMatch(/owner-only \(from an earlier run\)/);

    // SPIRE dies: the console says so, and it comes back
    const conf = join(home, 'spire', 'server.conf');
    const [spirePid] = pidsWith(conf);
    expect(spirePid).toBeDefined();
    process.kill(spirePid!, 'SIGKILL');
    await waitFor('the restart announcement', () => /spire-server is back/.test(out), 60_000);
    expect(out).toMatch(/!! spire-server exited unexpectedly \(signal SIGKILL at [^)]+\)/);
    const healthz = new URL('/healthz', info.mcpUrl);
    const h = await fetch(healthz);
    expect(h.status).toBe(200);
    expect(await h.json()).toMatchObject({ ok: true, issuer: { kind: 'spire', state: 'ready', restarts: 1 } });
    const [restartedPid] = pidsWith(conf);
    expect(restartedPid).toBeDefined();
    expect(restartedPid).not.toBe(spirePid);

    // Ctrl-C: SIGINT to the whole foreground group. A stop, not a crash: no alarm, no restart.
    const before = out.length;
    process.kill(-proc.pid!, 'SIGINT');
    expect(await exit).toBe(0);
    const after = out.slice(before);
    expect(after).toContain('SIGINT: stopping ackd...');
    expect(after).not.toMatch(/unexpectedly|restarting spire-server|is back/);
    await waitFor('spire-server to be gone', () => pidsWith(conf).length === 0, 10_000);
    await new Promise((r) => setTimeout(r, 1000)); // longer than the first backoff: still nothing
    expect(pidsWith(conf)).toEqual([]);

    // and still owner-only after the stop
    expect(readableByOthers(home)).toEqual([]);
  }, 300_000);
});
