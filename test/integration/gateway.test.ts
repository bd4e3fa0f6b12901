/**
 * `ackd gateway` (issue 14) end to end without a browser: the real MCP SDK Client → the gateway
 * (in process over streamable HTTP, and the real CLI over --stdio) → real, unmodified downstream
 * servers: `mcp-server-filesystem <dir>` over stdio, `mcp-server-everything streamableHttp` over
 * HTTP and `mcp-server-everything stdio` (its slow tool, killed mid-call). The ackd side is the real
 * local stack (dynalite, the real MCP API, record_tool_calls, the audit chain); decisions are made
 * through the service as an approver's would be (the browser approval is test/e2e/gateway.e2e.test.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointPublicKey } from '../../lambdas/core/audit/signing.ts';
import { createApiKey } from '../../lambdas/core/apikeys.ts';
import { parseGatewayConfig } from '../../lambdas/core/gateway/config.ts';
import { parseAgentId, parseRequestId } from '../../lambdas/core/ids.ts';
import { canonicalJson, sha256Hex } from '../../lambdas/core/jcs.ts';
import { payloadSha256 } from '../../lambdas/core/payload.ts';
import { startGateway, type GatewayHandle } from '../../lambdas/gateway/start.ts';
import { startTestStack, type TestStack } from '../helpers/local-stack.ts';
import { freePort, LOOPBACK_ONLY } from '../helpers/downstreams.ts';

const BIN = (name: string) => resolve('node_modules/.bin', name);

/** `mcp-server-everything streamableHttp` on 127.0.0.1:<port>, as shipped. */
async function startEverythingHttp(): Promise<{ url: string; proc: ChildProcess }> {
  const port = await freePort();
  const proc = spawn(process.execPath, [`--import=${LOOPBACK_ONLY}`, BIN('mcp-server-everything'), 'streamableHttp'], { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  await new Promise<void>((ok, fail) => {
    const t = setTimeout(() => fail(new Error(`the everything server did not start: ${err}`)), 30_000);
    proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('listening on port')) {
        clearTimeout(t);
        ok();
      }
    });
    proc.once('exit', (code) => fail(new Error(`the everything server exited ${code}: ${err}`)));
  });
  return { url: `http://127.0.0.1:${port}/mcp`, proc };
}

type Result = CallToolResult & { structuredContent?: Record<string, unknown> };
const text = (r: Result) => r.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');

describe('ackd gateway', { timeout: 120_000 }, () => {
  let stack: TestStack;
  let dir: string;
  let everything: { url: string; proc: ChildProcess };
  let gw: GatewayHandle;
  let agent: Client;
  let callerKey: string;
  const warnings: string[] = [];

  const rawConfig = () => ({
    ackd: { url: stack.mcpUrl, apiKeyEnv: 'GW_ACKD_KEY' },
    mcpServers: {
      fs: { command: BIN('mcp-server-filesystem'), args: [dir] },
      remote: { url: everything.url },
      slow: { command: BIN('mcp-server-everything'), args: ['stdio'] },
    },
    policy: {
      default: { read: 'allow', mutating: 'approve', destructive: 'approve', admin: 'approve' },
      tools: { remote__echo: 'allow', 'slow__trigger-long-running-operation': { effect: 'mutating', decision: 'approve' }, fs__move_file: 'deny' },
    },
    waitSeconds: 1,
  });

  beforeAll(async () => {
    stack = await startTestStack({ consent: false });
    dir = await mkdtemp(join(tmpdir(), 'ackd-gw-data-'));
    everything = await startEverythingHttp();
    const config = parseGatewayConfig(rawConfig(), { GW_ACKD_KEY: stack.agentApiKey });
    gw = await startGateway(config, { mode: 'http', port: 0, downstreamStderr: 'ignore', warn: (l) => warnings.push(l) });
    callerKey = (await createApiKey(stack.deps.apiKeys, parseAgentId('coding-agent'), stack.clock)).apiKey;
    agent = new Client({ name: 'agent', version: '1.0.0' });
    await agent.connect(new StreamableHTTPClientTransport(new URL(gw.url!), { requestInit: { headers: { authorization: `Bearer ${callerKey}` } } }));
  }, 120_000);

  afterAll(async () => {
    await agent?.close().catch(() => undefined);
    await gw?.close();
    everything?.proc.kill('SIGKILL');
    await stack?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const call = (name: string, args: Record<string, unknown>) => agent.callTool({ name, arguments: args }) as Promise<Result>;
  const approve = (id: string) => stack.deps.service.decide(parseRequestId(id), 'approved', 'operator:test');
  async function events(pred: (e: Record<string, unknown>) => boolean): Promise<Record<string, unknown>[]> {
    await gw.queue.flush();
    await stack.settled();
    const out: Record<string, unknown>[] = [];
    for await (const line of stack.deps.audit.export()) if (line.kind === 'event' && pred(line as never)) out.push(line as never);
    return out;
  }
  const callOf = (e: Record<string, unknown>) => e.call as Record<string, unknown>;

  it('refuses a caller without a valid ackd agent key', async () => {
    for (const auth of [undefined, 'Bearer ak_not_a_key']) {
      const res = await fetch(gw.url!, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(auth ? { authorization: auth } : {}) }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }) });
      expect(res.status).toBe(401);
      await res.body?.cancel();
    }
  });

  it('a body over 4 MiB is refused with 413 (declared or streamed), bad JSON with a parse error; the next call works', async () => {
    const post = (body: BodyInit, extra: Record<string, string> = {}) =>
      fetch(gw.url!, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${callerKey}`, ...extra }, body, ...(body instanceof ReadableStream ? { duplex: 'half' } : {}) } as RequestInit);
    const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'fs__read_text_file', arguments: { path: 'x'.repeat(4 * 1024 * 1024) } } });
    const declared = await post(big);
    expect(declared.status).toBe(413);
    await declared.body?.cancel();
    // no content-length: chunked, the limit found while reading
    const chunk = new TextEncoder().encode(big);
    const streamed = await post(new ReadableStream({ start: (c) => (c.enqueue(chunk.subarray(0, 1024 * 1024)), c.enqueue(chunk.subarray(1024 * 1024)), c.close()) }));
    expect(streamed.status).toBe(413);
    await streamed.body?.cancel();
    const bad = await post('{"jsonrpc":');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: number } }).error.code).toBe(-32700);
    const ok = await post(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'fs__list_allowed_directories', arguments: {} } }));
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { id: number; result: unknown }).id).toBe(2);
  });

  it('lists every downstream tool as <server>__<tool> with its effect class', async () => {
    const { tools } = await agent.listTools();
    const by = new Map(tools.map((t) => [t.name, t]));
    expect(by.get('fs__read_text_file')?.description).toMatch(/ \[ackd: read, allowed\]$/);
    expect(by.get('fs__write_file')?.description).toMatch(/ \[ackd: destructive, approval required\]$/);
    expect(by.get('fs__move_file')?.description).toMatch(/refused by policy\]$/);
    expect(by.get('fs__write_file')?.inputSchema.properties).toHaveProperty('content');
    expect(by.get('fs__write_file')?.annotations).toMatchObject({ destructiveHint: true });
    expect(by.get('remote__echo')?.description).toMatch(/\[ackd: read, allowed\]$/); // readOnlyHint
    expect(by.get('slow__trigger-long-running-operation')?.description).toMatch(/\[ackd: mutating, approval required\]$/);
  });

  it('a read passes straight through, and is recorded off the call path', async () => {
    await writeFile(join(dir, 'hello.txt'), 'hi there');
    const r = await call('fs__read_text_file', { path: join(dir, 'hello.txt') });
    expect(r.isError).toBeFalsy();
    expect(text(r)).toBe('hi there');
    const echo = await call('remote__echo', { message: 'over http' });
    expect(text(echo)).toContain('over http');
    const payload_sha256 = payloadSha256({ server: 'fs', tool: 'read_text_file', arguments: { path: join(dir, 'hello.txt') } });
    const [e] = await events((e) => e.type === 'tool_call' && callOf(e).payload_sha256 === payload_sha256);
    expect(callOf(e!)).toMatchObject({ outcome: 'allowed', effect: 'read', caller: 'coding-agent', result_sha256: sha256Hex(canonicalJson(r)) });
  });

  it('write_file waits for approval; a repeat reuses the request; approved, it runs once with exactly the approved content; the next call needs a new approval', async () => {
    const path = join(dir, 'approved.txt');
    const args = { path, content: 'exactly this\n' };
    const first = await call('fs__write_file', args);
    expect(first.isError).toBe(true);
    const pending = first.structuredContent as { status: string; request_id: string; consent_url: string; payload_sha256: string };
    expect(pending).toMatchObject({ status: 'pending', payload_sha256: payloadSha256({ server: 'fs', tool: 'write_file', arguments: args }) });
    expect(pending.consent_url).toMatch(/^https?:\/\//);
    expect(text(first)).toContain('call fs__write_file again with exactly the same arguments');
    expect(existsSync(path)).toBe(false);

    const repeat = await call('fs__write_file', { content: 'exactly this\n', path });
    expect(repeat.structuredContent).toMatchObject({ status: 'pending', request_id: pending.request_id });

    const req = await stack.deps.service.get(parseRequestId(pending.request_id));
    expect(req).toMatchObject({ agent_id: stack.agentId, action: 'call fs__write_file', permissions: ['mcp:fs:write_file'], payload: { server: 'fs', tool: 'write_file', arguments: args } });
    expect(req.justification).toBe('coding-agent called fs__write_file through the ackd gateway');

    await approve(pending.request_id);
    const done = await call('fs__write_file', args);
    expect(done.isError, text(done)).toBeFalsy();
    expect(await readFile(path, 'utf8')).toBe('exactly this\n');

    const again = await call('fs__write_file', args);
    expect(again.structuredContent).toMatchObject({ status: 'pending' });
    expect((again.structuredContent as { request_id: string }).request_id).not.toBe(pending.request_id);

    const chain = await events((e) => e.request_id === pending.request_id && !String(e.type).startsWith('email'));
    expect(chain.map((e) => e.type)).toEqual(['requested', 'approved', 'svid_issued', 'call_started', 'call_finished', 'revoked']);
    expect(callOf(chain[3]!)).toMatchObject({ outcome: 'started', caller: 'coding-agent', effect: 'destructive' });
    expect(callOf(chain[4]!)).toMatchObject({ outcome: 'executed', result_sha256: sha256Hex(canonicalJson(done)) });
  });

  it('changed arguments need a new approval: an approval of one content never writes another', async () => {
    const path = join(dir, 'changed.txt');
    const a = (await call('fs__write_file', { path, content: 'approved' })).structuredContent as { request_id: string };
    await approve(a.request_id);
    const b = await call('fs__write_file', { path, content: 'something else' });
    expect(b.structuredContent).toMatchObject({ status: 'pending' });
    expect((b.structuredContent as { request_id: string }).request_id).not.toBe(a.request_id);
    expect(existsSync(path)).toBe(false);
  });

  it('denial leaves no file, and is recorded', async () => {
    const path = join(dir, 'denied.txt');
    const args = { path, content: 'no' };
    const p = (await call('fs__write_file', args)).structuredContent as { request_id: string; payload_sha256: string };
    await stack.deps.service.decide(parseRequestId(p.request_id), 'denied', 'operator:test');
    const r = await call('fs__write_file', args);
    expect(r.isError).toBe(true);
    expect(r.structuredContent).toMatchObject({ status: 'denied', request_id: p.request_id });
    expect(text(r)).toContain('was denied');
    expect(existsSync(path)).toBe(false);
    const [e] = await events((e) => e.type === 'tool_call' && callOf(e).request_id === p.request_id);
    expect(callOf(e!)).toMatchObject({ outcome: 'denied', payload_sha256: p.payload_sha256 });
  });

  it('a tool the policy denies is refused without a request', async () => {
    const before = (await stack.deps.store.audit.treeHead()).size;
    const r = await call('fs__move_file', { source: join(dir, 'hello.txt'), destination: join(dir, 'moved.txt') });
    expect(r.structuredContent).toMatchObject({ status: 'refused' });
    expect(existsSync(join(dir, 'hello.txt'))).toBe(true);
    const refused = await events((e) => e.type === 'tool_call' && callOf(e).outcome === 'refused');
    expect(refused).toHaveLength(1);
    expect((await stack.deps.store.audit.treeHead()).size).toBe(before + 1);
  });

  it('a downstream crash mid-call is a clear tool error, recorded failed once; nothing runs twice', async () => {
    const args = { duration: 6, steps: 3 };
    const p = (await call('slow__trigger-long-running-operation', args)).structuredContent as { request_id: string };
    await approve(p.request_id);
    const running = call('slow__trigger-long-running-operation', args);
    // the call has started once ackd recorded its start; then the downstream process dies
    for (let i = 0; i < 200; i++) {
      if ((await stack.deps.service.get(parseRequestId(p.request_id))).call) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const pid = gw.downstreams.pid('slow');
    expect(pid).toBeGreaterThan(0);
    process.kill(pid!, 'SIGKILL');
    const r = await running;
    expect(r.isError).toBe(true);
    expect(text(r)).toMatch(/^the approved call to slow__trigger-long-running-operation failed downstream: .+; it was not retried; a new call needs a new approval$/);
    const chain = await events((e) => e.request_id === p.request_id);
    expect(chain.filter((e) => e.type === 'call_started')).toHaveLength(1);
    expect(chain.filter((e) => e.type === 'call_finished').map((e) => callOf(e).outcome)).toEqual(['failed']);
    // the same arguments again: a new approval (and the server is reached again later, not now)
    const after = await call('slow__trigger-long-running-operation', args);
    expect(after.isError).toBe(true);
    expect(after.structuredContent?.request_id ?? null).not.toBe(p.request_id);
  });

  it('an unknown tool is a JSON-RPC error; a gated call whose arguments do not fit its schema asks nobody', async () => {
    await expect(call('fs__no_such_tool', {})).rejects.toMatchObject({ code: -32602, message: expect.stringContaining('Unknown tool: "fs__no_such_tool"') });
    const before = (await stack.deps.store.audit.treeHead()).size;
    const r = await call('fs__write_file', { path: join(dir, 'x.txt') });
    expect(r.structuredContent).toMatchObject({ status: 'invalid' });
    expect(text(r)).toContain('no approval was asked');
    expect((await stack.deps.store.audit.treeHead()).size).toBe(before);
  });

  it('a downstream server that fails to start is reported on stderr; its tools are absent, the rest work', async () => {
    const said: string[] = [];
    const raw = rawConfig();
    const config = parseGatewayConfig({ ...raw, mcpServers: { fs: raw.mcpServers.fs, broken: { command: join(dir, 'no-such-server') } }, policy: { default: raw.policy.default } }, { GW_ACKD_KEY: stack.agentApiKey });
    const other = await startGateway(config, { mode: 'http', port: 0, downstreamStderr: 'ignore', warn: (l) => said.push(l) });
    const c = new Client({ name: 'agent2', version: '1.0.0' });
    try {
      await c.connect(new StreamableHTTPClientTransport(new URL(other.url!), { requestInit: { headers: { authorization: `Bearer ${callerKey}` } } }));
      expect(said.join('\n')).toMatch(/downstream server "broken" \(.*no-such-server\) is not available: .+; its tools are absent/);
      const { tools } = await c.listTools();
      expect(tools.some((t) => t.name.startsWith('broken__'))).toBe(false);
      expect(tools.some((t) => t.name === 'fs__read_text_file')).toBe(true);
      const r = (await c.callTool({ name: 'fs__read_text_file', arguments: { path: join(dir, 'hello.txt') } })) as Result;
      expect(text(r)).toBe('hi there');
    } finally {
      await c.close();
      await other.close();
    }
  });

  it('the CLI refuses a bad configuration with exit 2, naming the field', async () => {
    const cfgFile = join(dir, '..', `gw-bad-${Date.now()}.json`);
    await writeFile(cfgFile, JSON.stringify({ ...rawConfig(), waitSeconds: 301 }));
    const proc = spawn(process.execPath, [resolve('bin/ackd.js'), 'gateway', '--config', cfgFile], { env: { PATH: process.env.PATH, HOME: process.env.HOME, GW_ACKD_KEY: 'x', NODE_NO_WARNINGS: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => proc.once('exit', r));
    await rm(cfgFile, { force: true });
    expect(code).toBe(2);
    expect(err.trim()).toBe('ackd gateway: waitSeconds: must be from 0 to 300');
  });

  it('audit verify stays OK with the gateway events in the chain', async () => {
    await gw.queue.flush();
    await stack.settled();
    const report = await stack.deps.audit.verifyLive({}, { publicKey: checkpointPublicKey(await stack.deps.audit.publicKeyPem()) });
    expect(report.problems, JSON.stringify(report.problems)).toEqual([]);
    expect(warnings.filter((w) => /refused to record|cannot record/.test(w))).toEqual([]);
  });

  /** The real CLI over --stdio (fs only), with an MCP client of the given capabilities. */
  async function stdioGateway(capabilities: Record<string, unknown> = {}): Promise<{ client: Client; stderr: () => string; close: () => Promise<void> }> {
    const cfgFile = join(dir, '..', `gw-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
    const cfg = rawConfig();
    await writeFile(cfgFile, JSON.stringify({ ...cfg, mcpServers: { fs: cfg.mcpServers.fs }, policy: { default: cfg.policy.default } }));
    const client = new Client({ name: 'stdio-agent', version: '1.0.0' }, { capabilities });
    const transport = new StdioClientTransport({ command: process.execPath, args: [resolve('bin/ackd.js'), 'gateway', '--config', cfgFile, '--stdio'], env: { PATH: process.env.PATH!, HOME: process.env.HOME!, GW_ACKD_KEY: stack.agentApiKey, NODE_NO_WARNINGS: '1' }, stderr: 'pipe' });
    let err = '';
    transport.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    const close = async () => {
      await client.close();
      await rm(cfgFile, { force: true });
    };
    try {
      await client.connect(transport);
    } catch (e) {
      await close();
      throw new Error(`${String(e)}; the gateway said: ${err}`, { cause: e });
    }
    return { client, stderr: () => err, close };
  }

  it('the real CLI over --stdio: a read passes, a write waits for approval', async () => {
    const { client, stderr, close } = await stdioGateway();
    try {
      const r = (await client.callTool({ name: 'fs__read_text_file', arguments: { path: join(dir, 'approved.txt') } })) as Result;
      expect(text(r), stderr()).toBe('exactly this\n');
      const w = (await client.callTool({ name: 'fs__write_file', arguments: { path: join(dir, 'stdio.txt'), content: 's' } })) as Result;
      expect(w.structuredContent, stderr()).toMatchObject({ status: 'pending' });
      const req = await stack.deps.service.get(parseRequestId((w.structuredContent as { request_id: string }).request_id));
      expect(req.justification).toBe("the gateway's own user (stdio) called fs__write_file through the ackd gateway");
    } finally {
      await close();
    }
    expect(existsSync(join(dir, 'stdio.txt'))).toBe(false);
  });

  it('over --stdio, a client that declared URL elicitation gets -32042 with the consent URL', async () => {
    const { client, close } = await stdioGateway({ elicitation: { url: {} } });
    try {
      const call = client.callTool({ name: 'fs__write_file', arguments: { path: join(dir, 'elicit.txt'), content: 'e' } });
      await expect(call).rejects.toMatchObject({ code: -32042, elicitations: [expect.objectContaining({ mode: 'url', url: expect.stringMatching(/^https?:\/\//), elicitationId: expect.stringMatching(/^req_/) })] });
    } finally {
      await close();
    }
    expect(existsSync(join(dir, 'elicit.txt'))).toBe(false);
  });
});
