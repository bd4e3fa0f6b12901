/** The gateway's pure parts: configuration, effect classes, policy, the pending memo, the audit queue. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AuditQueue } from '../../lambdas/core/gateway/audit-queue.ts';
import { GatewayConfigError, parseGatewayConfig } from '../../lambdas/core/gateway/config.ts';
import { classifyTool, effectFromName, nameWords } from '../../lambdas/core/gateway/effects.ts';
import { PendingMemo } from '../../lambdas/core/gateway/memo.ts';
import { describePolicy, resolveToolPolicy } from '../../lambdas/core/gateway/policy.ts';
import type { CallEvent } from '../../lambdas/core/gateway/ports.ts';

const ENV = { ACKD_API_KEY: 'ak_test', TOOLS_TOKEN: 't0k' };
const BASE = {
  ackd: { url: 'http://127.0.0.1:8787/mcp', apiKeyEnv: 'ACKD_API_KEY' },
  mcpServers: {
    fs: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-filesystem', '/srv/data'] },
    remote: { url: 'https://tools.internal/mcp', headers: { Authorization: 'Bearer ${TOOLS_TOKEN}' } },
  },
  policy: { default: { read: 'allow', mutating: 'approve', destructive: 'approve', admin: 'approve' }, tools: { fs__write_file: 'approve', fs__read_text_file: 'allow', remote__drop_table: 'deny' } },
  waitSeconds: 25,
};
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- configurations edited freely, as a user's file would be
type Loose = Record<string, any>;
function refusal(raw: unknown, env: Record<string, string | undefined> = ENV): string {
  try {
    parseGatewayConfig(raw, env);
  } catch (e) {
    expect(e).toBeInstanceOf(GatewayConfigError);
    return (e as Error).message;
  }
  throw new Error('the configuration was accepted');
}

describe('gateway configuration', () => {
  it('takes the issue example, expanding ${VAR}', () => {
    const c = parseGatewayConfig(BASE, ENV);
    expect(c.ackd.apiKey).toBe('ak_test');
    expect(c.servers.map((s) => [s.name, s.kind])).toEqual([
      ['fs', 'stdio'],
      ['remote', 'http'],
    ]);
    const remote = c.servers[1]!;
    expect(remote.kind === 'http' && remote.headers.Authorization).toBe('Bearer t0k');
    expect(c.policy.tools.get('remote__drop_table')).toEqual({ decision: 'deny' });
    expect(c.waitSeconds).toBe(25);
  });

  it('refuses, naming the field', () => {
    const cases: [(c: Loose) => void, string, Record<string, string | undefined>?][] = [
      [(c) => (c.mcpServers.remote.headers.Authorization = 'Bearer ${MISSING}'), 'mcpServers.remote.headers.Authorization: uses ${MISSING}, but the environment variable MISSING is not set'],
      [(c) => (c.extra = 1), 'extra: is not a known setting'],
      [(c) => (c.mcpServers.fs.cmd = 'x'), 'mcpServers.fs.cmd: is not a known setting'],
      [(c) => (c.ackd.url = 'ftp://x'), 'ackd.url: must be an http(s) URL'],
      [(c) => delete c.ackd.apiKeyEnv, 'ackd.apiKeyEnv: must be'],
      [(c) => (c.ackd.apiKeyEnv = 'NOT_SET'), 'ackd.apiKeyEnv: the environment variable NOT_SET is not set'],
      [(c) => (c.mcpServers.fs.args = [1]), 'mcpServers.fs.args[0]: must be a string'],
      [(c) => (c.mcpServers.fs.url = 'http://x'), 'mcpServers.fs: must have exactly one of "command" (stdio) or "url" (streamable HTTP)'],
      [(c) => (c.mcpServers['a__b'] = { command: 'x' }), 'mcpServers.a__b: a server name must be'],
      [(c) => (c.mcpServers = {}), 'mcpServers: must name at least one server'],
      [(c) => (c.mcpServers.remote.url = 'https://user:pw@x/mcp'), 'mcpServers.remote.url: must not carry credentials'],
      [(c) => (c.policy.default.admin = 'allow'), 'policy.default.admin: admin tools can never be "allow"'],
      [(c) => (c.policy.default.read = 'maybe'), 'policy.default.read: must be one of allow, approve, deny'],
      [(c) => (c.policy.tools.fs__grant = { effect: 'admin', decision: 'allow' }), 'policy.tools.fs__grant: admin tools can never be "allow"'],
      [(c) => (c.policy.tools.nope__x = 'deny'), 'policy.tools.nope__x: no server "nope" in mcpServers'],
      [(c) => (c.policy.tools.write = 'deny'), 'policy.tools.write: a tool is named <server>__<tool>'],
      [(c) => (c.waitSeconds = 301), 'waitSeconds: must be from 0 to 300'],
      [(c) => (c.waitSeconds = 'x'), 'waitSeconds: must be a number of seconds'],
      [(c) => (c.ackd.ttlMinutes = 61), 'ackd.ttlMinutes: must be from 1 to 60'],
      [(c) => (c.mcpServers.fs.timeoutSeconds = 0), 'mcpServers.fs.timeoutSeconds: must be at least 1'],
    ];
    for (const [edit, expected, env] of cases) {
      const c = clone(BASE) as Loose;
      edit(c);
      expect(refusal(c, env)).toContain(expected);
    }
    expect(refusal([])).toBe('(the configuration): must be a JSON object');
  });

  it('the shipped example parses', () => {
    const raw = JSON.parse(readFileSync(new URL('../../examples/gateway/gateway.json', import.meta.url), 'utf8')) as unknown;
    expect(refusal(raw, {})).toBe('mcpServers.fs.args[2]: uses ${GATEWAY_DATA_DIR}, but the environment variable GATEWAY_DATA_DIR is not set');
    const c = parseGatewayConfig(raw, { ACKD_GATEWAY_KEY: 'k', GATEWAY_DATA_DIR: '/srv/data' });
    expect(c.servers[0]).toMatchObject({ kind: 'stdio', command: 'npx', args: ['-y', '@modelcontextprotocol/server-filesystem', '/srv/data'] });
    expect(c.policy.tools.get('fs__move_file')).toEqual({ decision: 'deny' });
  });

  it('$${ writes a literal ${', () => {
    const c = clone(BASE) as Loose;
    c.mcpServers.fs.args = ['$${HOME}'];
    const s = parseGatewayConfig(c, ENV).servers[0]!;
    expect(s.kind === 'stdio' && s.args).toEqual(['${HOME}']);
  });
});

describe('effect classes', () => {
  it('splits names into words', () => {
    expect(nameWords('transferOwnership')).toEqual(['transfer', 'ownership']);
    expect(nameWords('drop-table.now')).toEqual(['drop', 'table', 'now']);
  });
  it('by keyword, the most severe winning; unknown is mutating', () => {
    expect(effectFromName('read_text_file')).toBe('read');
    expect(effectFromName('write_file')).toBe('mutating');
    expect(effectFromName('list_and_delete')).toBe('destructive');
    expect(effectFromName('transfer_ownership')).toBe('admin');
    expect(effectFromName('transfer_funds')).toBe(undefined);
    expect(effectFromName('headline')).toBe(undefined); // words, not substrings
    expect(classifyTool('frobnicate', undefined, undefined)).toEqual({ effect: 'mutating', source: 'default' });
  });
  it('policy entry, then annotations, then the name', () => {
    expect(classifyTool('delete_file', { readOnlyHint: true }, 'admin')).toEqual({ effect: 'admin', source: 'policy' });
    expect(classifyTool('delete_file', { readOnlyHint: true }, undefined)).toEqual({ effect: 'read', source: 'annotations' });
    expect(classifyTool('get_thing', { destructiveHint: true }, undefined)).toEqual({ effect: 'destructive', source: 'annotations' });
    expect(classifyTool('get_thing', { readOnlyHint: false, destructiveHint: false }, undefined)).toEqual({ effect: 'read', source: 'name' });
  });
});

describe('policy', () => {
  const policy = parseGatewayConfig(
    { ...clone(BASE), policy: { default: { read: 'allow', mutating: 'approve', destructive: 'deny' }, tools: { fs__grant_role: 'allow', fs__rename: { effect: 'read' }, fs__read_secret: 'approve' } } },
    ENV,
  ).policy;
  it('a per-tool decision, else the default of the class', () => {
    expect(resolveToolPolicy(policy, 'fs__read_secret', 'read_secret', undefined)).toMatchObject({ effect: 'read', decision: 'approve' });
    expect(resolveToolPolicy(policy, 'fs__rename', 'rename', { destructiveHint: true })).toMatchObject({ effect: 'read', effectSource: 'policy', decision: 'allow' });
    expect(resolveToolPolicy(policy, 'fs__purge', 'purge', undefined)).toMatchObject({ effect: 'destructive', decision: 'deny' });
  });
  it('an admin tool is never allowed', () => {
    const p = resolveToolPolicy(policy, 'fs__grant_role', 'grant_role', undefined);
    expect(p).toMatchObject({ effect: 'admin', decision: 'approve' });
    expect(p.note).toContain('admin tool');
    expect(describePolicy(p)).toBe(' [ackd: admin, approval required]');
  });
});

describe('pending memo', () => {
  it('reuses the pending request, shares a creation in flight, drops it when resolved or expired', async () => {
    let t = 0;
    const memo = new PendingMemo(() => t);
    let n = 0;
    const create = async () => ({ request_id: `r${++n}`, consent_url: 'u', expires_at: 1000 });
    const [a, b] = await Promise.all([memo.getOrCreate('s', create), memo.getOrCreate('s', create)]);
    expect([a.entry.request_id, a.created, b.entry.request_id, b.created]).toEqual(['r1', true, 'r1', false]);
    memo.resolve('s', 'other');
    expect((await memo.getOrCreate('s', create)).entry.request_id).toBe('r1');
    memo.resolve('s', 'r1');
    expect((await memo.getOrCreate('s', create)).entry.request_id).toBe('r2');
    t = 5000; // r2 expired at 1000
    expect((await memo.getOrCreate('s', create)).entry.request_id).toBe('r3');
    await expect(memo.getOrCreate('x', () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect((await memo.getOrCreate('x', create)).created).toBe(true);
  });
});

describe('audit queue', () => {
  const ev = (outcome: CallEvent['outcome']) => ({ event: { server: 's', tool: 't', effect: 'read' as const, outcome }, payload: { a: 1 }, result: { content: [] } });
  it('is bounded: reserve fails when full; a failed send keeps the events; close flushes', async () => {
    const sent: CallEvent[][] = [];
    let down = true;
    const warnings: string[] = [];
    const q = new AuditQueue({ recorder: { record: async (c) => (down ? Promise.reject(new Error('ECONNREFUSED')) : (sent.push([...c]), c.map(() => ({ ok: true as const, event_id: 'e' })))) }, limit: 2, intervalMs: 5, warn: (l) => warnings.push(l) });
    expect(q.reserve()).toBe(true);
    expect(q.reserve()).toBe(true);
    expect(q.reserve()).toBe(false);
    q.push(ev('allowed'), true);
    q.push(ev('allowed'), true);
    q.push(ev('refused')); // beyond the bound: dropped, said
    expect(q.waiting).toBe(2);
    await q.flush();
    expect(q.waiting).toBe(2);
    expect(warnings.join('\n')).toMatch(/not recorded|cannot record/);
    down = false;
    await q.close(2000);
    expect(q.waiting).toBe(0);
    const calls = sent.flat();
    expect(calls).toHaveLength(2);
    expect(calls[0]!.payload_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(calls[0]!.result_sha256).toMatch(/^[0-9a-f]{64}$/);
  });
});
