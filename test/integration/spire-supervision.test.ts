/**
 * Hardening: a spire-server that dies is noticed, reported and brought back. The whole local stack
 * with the issuer `npm start` uses (startIssuer: a real spire-server, supervised): kill -9 the server
 * → /healthz answers 503 "restarting" with how it died → it comes back on the same data dir (same CA)
 * → /healthz 200 again and check_authorization mints. A hung server (SIGSTOP) is "unresponsive".
 * A stop is never followed by a restart.
 */
import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifySvid } from '../../lambdas/verify/index.ts';
import { startIssuer, type IssuerHandle } from '../../spire/issuer.ts';
import { startSpireServer } from '../../spire/server.ts';
import { ensureSpireServer } from '../../spire/build.ts';
import { startTestStack, structured, type TestStack, approvedRequest } from '../helpers/local-stack.ts';
import { SPIRE_BUILD_TIMEOUT_MS } from '../helpers/spire.ts';

interface Health {
  ok: boolean;
  issuer?: { kind: string; state: string; restarts?: number; last_exit?: string; next_attempt_at?: string };
}

async function healthz(stack: TestStack): Promise<{ status: number; body: Health }> {
  const res = await fetch(`${stack.appUrl}/healthz`);
  return { status: res.status, body: (await res.json()) as Health };
}

/** Polls /healthz (it is cheap: no call to SPIRE) until `pred` holds. */
async function until(stack: TestStack, pred: (h: { status: number; body: Health }) => boolean, timeoutMs: number): Promise<{ status: number; body: Health }> {
  const deadline = Date.now() + timeoutMs;
  let h = await healthz(stack);
  while (!pred(h)) {
    if (Date.now() > deadline) throw new Error(`healthz never matched; last: ${h.status} ${JSON.stringify(h.body)}`);
    await new Promise((r) => setTimeout(r, 50));
    h = await healthz(stack);
  }
  return h;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('supervised spire-server behind the local stack', () => {
  let stack: TestStack;
  let issuer: IssuerHandle;
  let mcp: Client;
  const issuerLog: string[] = [];
  beforeAll(async () => {
    stack = await startTestStack({
      trustDomain: 'ackd.test',
      consent: false,
      issuer: async ({ dir, trustDomain }) =>
        (issuer = await startIssuer({
          trustDomain,
          stateDir: dir,
          issuer: 'spire',
          log: (l) => issuerLog.push(l),
          // the default backoff (0.5 s doubling to 30 s), but a first delay long enough to see "restarting"
          supervise: { initialBackoffMs: 1000 },
          probeIntervalMs: 500,
        })),
    });
    mcp = await stack.client();
  }, SPIRE_BUILD_TIMEOUT_MS);
  afterAll(async () => {
    await stack?.stop();
  });

  const approved = () => approvedRequest(stack, mcp, { action: 'deploy', permissions: ['deploy:prod'], justification: 'release', ttl_minutes: 10 });

  it('reports ready with HTTP 200 while SPIRE is up', async () => {
    const h = await healthz(stack);
    expect(h.status).toBe(200);
    expect(h.body).toEqual({ ok: true, issuer: { kind: 'spire', state: 'ready', restarts: 0 } });
  });

  it('kill -9: 503 "restarting" with the signal, back on the same CA, 200 again, and check_authorization mints', async () => {
    const requestId = await approved();
    const bundleFileBefore = await readFile(stack.trustBundlePath, 'utf8');
    const pid = issuer.spire!.pid()!;
    process.kill(pid, 'SIGKILL');

    const down = await until(stack, (h) => h.status === 503, 5000);
    expect(down.body.ok).toBe(false);
    expect(down.body.issuer).toMatchObject({ kind: 'spire', state: 'restarting', restarts: 0 });
    expect(down.body.issuer!.last_exit).toMatch(/^signal SIGKILL at \d{4}-\d\d-\d\dT/);
    expect(JSON.stringify(down.body)).not.toMatch(/\/|\.sock/); // public endpoint: no paths

    const up = await until(stack, (h) => h.status === 200, 60_000);
    expect(up.body.issuer).toMatchObject({ kind: 'spire', state: 'ready', restarts: 1 });
    expect(up.body.issuer!.last_exit).toBe(down.body.issuer!.last_exit);
    const newPid = issuer.spire!.pid()!;
    expect(newPid).not.toBe(pid);
    expect(alive(pid)).toBe(false);

    const ok = structured<{ status: string; svid: string; svid_id: string }>(await mcp.callTool({ name: 'check_authorization', arguments: { request_id: requestId } }));
    expect(ok.status).toBe('approved');
    // same data dir, same CA: the SVID verifies against the bundle file from before the crash
    const v = await verifySvid(ok.svid, { bundle: bundleFileBefore });
    expect(v.request_id).toBe(requestId);

    const log = issuerLog.join('\n');
    expect(log).toMatch(/!! spire-server exited unexpectedly \(signal SIGKILL at [^)]+\)/);
    expect(log).toMatch(/restarting spire-server in 1\.0 s \(attempt 1/);
    expect(log).toMatch(/spire-server is back \(pid \d+, automatic restart 1\)/);
    // the stack rewrote the trust bundle file after the restart
    await expect.poll(() => stack.logs.lines.some((l) => l.includes('trust bundle file refreshed after the issuer restarted'))).toBe(true);
    expect(await readFile(stack.trustBundlePath, 'utf8')).toBe(await issuer.trustBundlePem());
  }, 90_000);

  it('a second crash soon after: the backoff doubles', async () => {
    process.kill(issuer.spire!.pid()!, 'SIGKILL');
    await until(stack, (h) => h.status === 503, 5000);
    const up = await until(stack, (h) => h.status === 200, 60_000);
    expect(up.body.issuer).toMatchObject({ state: 'ready', restarts: 2 });
    expect(issuerLog.join('\n')).toMatch(/restarting spire-server in 2\.0 s \(attempt 2/);
  }, 90_000);

  it('hung (SIGSTOP): the readiness probe turns /healthz to 503 "unresponsive"; resumed: 200', async () => {
    const pid = issuer.spire!.pid()!;
    process.kill(pid, 'SIGSTOP');
    try {
      const h = await until(stack, (x) => x.status === 503, 15_000);
      expect(h.body.issuer!.state).toBe('unresponsive');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await until(stack, (x) => x.status === 200, 15_000);
    expect(issuer.spire!.pid()).toBe(pid); // hung is reported, not killed
  }, 40_000);

  it('a stop is not a crash: no restart, no alarm', async () => {
    const pid = issuer.spire!.pid()!;
    const socket = issuer.spire!.socketPath;
    const linesBefore = issuerLog.length;
    await issuer.stop();
    expect(alive(pid)).toBe(false);
    await new Promise((r) => setTimeout(r, 2500)); // longer than any backoff so far
    expect(issuer.spire!.running()).toBe(false);
    expect(issuer.spire!.status().state).toBe('stopped');
    expect(existsSync(socket)).toBe(false);
    expect(issuerLog.slice(linesBefore).join('\n')).not.toMatch(/unexpectedly|restarting|is back/);
    const h = await healthz(stack);
    expect(h.status).toBe(503);
    expect(h.body.issuer!.state).toBe('stopped');
  }, 20_000);
});

describe('a spire-server left running by an ackd that died', () => {
  it('is stopped before a new one starts on the same data dir (never two servers on one CA)', async () => {
    const binary = await ensureSpireServer();
    const dataDir = await mkdtemp(join(tmpdir(), 'ackd-left-'));
    const lines: string[] = [];
    try {
      // A stands for the server of an ackd that was killed: nobody stops or supervises it any more.
      const a = await startSpireServer({ binary, dataDir, trustDomain: 'left.test', logLevel: 'WARN', supervise: false });
      const aPid = a.pid()!;
      const b = await startSpireServer({ binary, dataDir, trustDomain: 'left.test', logLevel: 'WARN', supervise: { log: (l) => lines.push(l) } });
      try {
        expect(alive(aPid)).toBe(false);
        expect(lines.join('\n')).toContain(`stopping a spire-server left running by an earlier ackd (pid ${aPid})`);
        expect(b.running()).toBe(true);
        expect(b.status().state).toBe('ready');
      } finally {
        await b.stop();
        await a.stop();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }, SPIRE_BUILD_TIMEOUT_MS);
});
