/**
 * Hardening: what an agent (or the bridge's HTTP client) is told when the SVID issuer fails names
 * nothing internal — no socket path or `remote_addr`, no gRPC status or details, no bridge host or
 * port — while the logs carry all of it. Real gRPC against a real spire-server (hung with SIGSTOP,
 * then stopped), the real bridge over real HTTP in front of a missing admin socket, a bridge that
 * does not listen.
 */
import 'reflect-metadata';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAckdError } from '../../lambdas/core/errors.ts';
import { SpiffeId, newRequestId, parseAgentId, parseRequestId, parseTrustDomain } from '../../lambdas/core/ids.ts';
import { SpireClient } from '../../spire/bridge/client.ts';
import { ISSUER_MESSAGES } from '../../spire/bridge/errors.ts';
import { SpireSvidMinter } from '../../spire/bridge/minter.ts';
import { createBridgeApp } from '../../spire/sidecar/app.ts';
import { RemoteSpireClient } from '../../spire/sidecar/client.ts';
import { errorText, memoryLogger, startTestStack, structured, type TestStack, approvedRequest } from '../helpers/local-stack.ts';
import { SPIRE_BUILD_TIMEOUT_MS, spireIssuer, startTestSpire, type TestSpire } from '../helpers/spire.ts';

const SECRET = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex');
const UNAVAILABLE_TEXT = `ERR_ISSUER_UNAVAILABLE: ${ISSUER_MESSAGES.ERR_ISSUER_UNAVAILABLE}`;

/** Nothing internal: no path, socket, address, port, gRPC status or detail. */
function expectCallerSafe(text: string, internals: string[]): void {
  for (const s of internals) expect(text).not.toContain(s);
  expect(text).not.toMatch(/\//); // no path (and no URL)
  expect(text).not.toMatch(/\.sock|remote_addr|unix:|127\.0\.0\.1|localhost|:\d{2,5}\b/i);
  expect(text).not.toMatch(/DEADLINE_EXCEEDED|INVALID_ARGUMENT|FAILED_PRECONDITION|PERMISSION_DENIED|(?<!ERR_ISSUER_)UNAVAILABLE|Deadline exceeded|LB pick|ECONNREFUSED|fetch failed/);
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

function newSpiffeId(td = 'ackd.test'): SpiffeId {
  return SpiffeId.forRequest(parseTrustDomain(td), parseAgentId('agent-7'), newRequestId(Date.now()));
}

describe('the bridge (as on AWS) in front of a SPIRE admin socket that is not there', () => {
  let dir: string;
  let socketPath: string;
  let server: ServerType;
  let url: string;
  let port: number;
  const bridgeLogs = memoryLogger();
  let spire: SpireClient;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ackd-exp-'));
    socketPath = join(dir, 'missing', 'api.sock');
    spire = new SpireClient({ socketPath, timeoutMs: 500 });
    const app = createBridgeApp({ spire, secret: SECRET, logger: bridgeLogs });
    port = await freePort();
    server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' });
    url = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    spire?.close();
    await new Promise((r) => server?.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  it('the bridge answers 503 with the fixed message; the Lambda side shows only that; both log the gRPC detail', async () => {
    const raw = new RemoteSpireClient({ url, secret: SECRET, timeoutMs: 5000 });
    const minter = new SpireSvidMinter(raw);
    const e = await minter.mint(newSpiffeId(), new Date(Date.now() + 5 * 60_000)).catch((x: unknown) => x);
    expect(isAckdError(e, 'ERR_ISSUER_UNAVAILABLE')).toBe(true);
    const err = e as Error & { code: string };
    expectCallerSafe(`${err.code}: ${err.message}`, [socketPath, dir, String(port)]);
    expect(`${err.code}: ${err.message}`).toBe(UNAVAILABLE_TEXT);
    // the detail is kept for the logs: what the bridge said, and where the bridge is
    const cause = (err as { cause?: Error }).cause;
    expect(cause?.message).toContain(`127.0.0.1:${port}/v1/mint-x509-svid`);
    expect(cause?.message).toContain('503');
    // the bridge logged the gRPC detail; its answer carried none of it
    const logged = bridgeLogs.lines.join('\n');
    expect(logged).toMatch(/spire call failed/);
    expect(logged).toMatch(/SPIRE MintX509SVID: DEADLINE_EXCEEDED/);

    const bundleErr = await raw.getBundle().catch((x: unknown) => x);
    expect(isAckdError(bundleErr, 'ERR_ISSUER_UNAVAILABLE')).toBe(true);
    expectCallerSafe((bundleErr as Error).message, [socketPath, dir, String(port)]);
  });

  it("the bridge's HTTP answer itself names nothing internal either", async () => {
    const { authHeaders, BRIDGE_PATHS } = await import('../../spire/sidecar/protocol.ts');
    const res = await fetch(`${url}${BRIDGE_PATHS.bundle}`, { headers: authHeaders(SECRET, 'GET', BRIDGE_PATHS.bundle, new Uint8Array(), Date.now()) });
    expect(res.status).toBe(503);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error).toEqual({ code: 'ERR_ISSUER_UNAVAILABLE', message: ISSUER_MESSAGES.ERR_ISSUER_UNAVAILABLE });
  });

  it('a bridge that does not listen: the message names neither its host nor its port; the cause does', async () => {
    const closed = await freePort();
    const minter = new SpireSvidMinter(new RemoteSpireClient({ url: `http://127.0.0.1:${closed}`, secret: SECRET, timeoutMs: 1000 }));
    const e = await minter.mint(newSpiffeId(), new Date(Date.now() + 5 * 60_000)).catch((x: unknown) => x);
    expect(isAckdError(e, 'ERR_ISSUER_UNAVAILABLE')).toBe(true);
    expectCallerSafe((e as Error).message, [String(closed)]);
    expect(((e as { cause?: Error }).cause?.message ?? '')).toContain(`127.0.0.1:${closed}`);
  });
});

describe('check_authorization against a real spire-server that hangs, then is gone', () => {
  let spire: TestSpire;
  let stack: TestStack;
  let mcp: Client;
  beforeAll(async () => {
    spire = await startTestSpire('ackd.test');
    stack = await startTestStack({ trustDomain: 'ackd.test', consent: false, issuer: spireIssuer(spire) });
    mcp = await stack.client();
  }, SPIRE_BUILD_TIMEOUT_MS);
  afterAll(async () => {
    await stack?.stop();
    await spire?.stop();
  });

  const approved = () => approvedRequest(stack, mcp);

  it('hung SPIRE (connected channel, SIGSTOP): the tool error is the fixed text; the log has DEADLINE_EXCEEDED and the socket', async () => {
    const requestId = await approved();
    await spire.minter.trustBundlePem(); // the channel is connected: grpc now reports remote_addr
    const pid = spire.server.pid()!;
    process.kill(pid, 'SIGSTOP');
    let text: string;
    try {
      text = errorText(await mcp.callTool({ name: 'check_authorization', arguments: { request_id: requestId } }));
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expect(text).toBe(UNAVAILABLE_TEXT);
    expectCallerSafe(text, [spire.server.socketPath, spire.dataDir]);
    const logged = stack.logs.lines.filter((l) => l.includes('check_authorization')).join('\n');
    expect(logged).toContain('SPIRE MintX509SVID: DEADLINE_EXCEEDED');
    expect(logged).toContain(spire.server.socketPath);
    expect((await stack.deps.store.get(parseRequestId(requestId)))!.svid_id).toBeNull();
  });

  it('stopped SPIRE (socket gone): the same fixed text; revived: the SVID is issued', async () => {
    const requestId = await approved();
    await spire.server.stop();
    const text = errorText(await mcp.callTool({ name: 'check_authorization', arguments: { request_id: requestId } }));
    expect(text).toBe(UNAVAILABLE_TEXT);
    expectCallerSafe(text, [spire.server.socketPath, spire.dataDir]);
    await spire.server.restart();
    const ok = structured<{ status: string; svid: string }>(await mcp.callTool({ name: 'check_authorization', arguments: { request_id: requestId } }));
    expect(ok.status).toBe('approved');
  });

  it("SPIRE refusing a CSR (another trust domain): the caller sees the fixed refusal, the log SPIRE's words", async () => {
    const e = await spire.minter.mint(newSpiffeId('elsewhere.test'), new Date(Date.now() + 60_000)).catch((x: unknown) => x);
    expect(isAckdError(e, 'ERR_ISSUER_REFUSED')).toBe(true);
    expect((e as Error).message).toBe(ISSUER_MESSAGES.ERR_ISSUER_REFUSED);
    expect((e as { cause?: Error }).cause?.message).toMatch(/SPIRE MintX509SVID: INVALID_ARGUMENT: .+/);
  });
});
