/** The gateway's call flow over in-memory ports (lambdas/gateway/memory.ts): no stack. */
import { describe, expect, it } from 'vitest';
import { AuditQueue } from '../../lambdas/core/gateway/audit-queue.ts';
import { GatewayFlow, type GatewayCall } from '../../lambdas/core/gateway/flow.ts';
import { PendingMemo } from '../../lambdas/core/gateway/memo.ts';
import { payloadSha256 } from '../../lambdas/core/payload.ts';
import { InMemoryAckd, InMemoryDownstream } from '../../lambdas/gateway/memory.ts';

function setup(opts: { waitSeconds?: number; crash?: boolean; limit?: number } = {}) {
  const clock = { t: 1_000_000 };
  const ackd = new InMemoryAckd(clock);
  const files = new Map<string, string>();
  const downstream = new InMemoryDownstream({
    fs__write_file: (a) => {
      if (opts.crash) throw new Error('MCP error -32000: Connection closed');
      files.set(String(a.path), String(a.content));
      return { content: [{ type: 'text', text: `wrote ${String(a.path)}` }] };
    },
    fs__read_text_file: (a) => ({ content: [{ type: 'text', text: files.get(String(a.path)) ?? '' }] }),
  });
  const warnings: string[] = [];
  const queue = new AuditQueue({ recorder: ackd, limit: opts.limit ?? 100, intervalMs: 1, warn: (l) => warnings.push(l) });
  const flow = new GatewayFlow({ ackd, recorder: ackd, queue, downstream, memo: new PendingMemo(() => clock.t), now: () => clock.t, waitSeconds: opts.waitSeconds ?? 25, warn: (l) => warnings.push(l) });
  const write = (args: Record<string, unknown>, over: Partial<GatewayCall> = {}): GatewayCall => ({ server: 'fs', tool: 'write_file', arguments: args, effect: 'destructive', decision: 'approve', caller: 'agent-1', ...over });
  const started = () => ackd.events.filter((e) => e.outcome === 'started');
  return { clock, ackd, files, downstream, queue, flow, write, warnings, started };
}

describe('gateway call flow', () => {
  it('approved during the wait: verified, started once, executed once with the approved arguments, recorded, SVID revoked', async () => {
    const s = setup();
    s.ackd.onCheck = (id) => s.ackd.requests.get(id)!.status === 'pending' && s.ackd.decide(id, 'approved');
    const args = { path: '/d/a.txt', content: 'hello' };
    const o = await s.flow.call(s.write(args));
    expect(o).toMatchObject({ kind: 'result' });
    expect(s.files.get('/d/a.txt')).toBe('hello');
    expect(s.downstream.calls).toHaveLength(1);
    const [req] = [...s.ackd.requests.values()];
    expect(req).toMatchObject({ action: 'call fs__write_file', permissions: ['mcp:fs:write_file'], justification: 'agent-1 called fs__write_file through the ackd gateway', payload: { server: 'fs', tool: 'write_file', arguments: args } });
    expect(s.ackd.events.map((e) => e.outcome)).toEqual(['started', 'executed']);
    expect(s.ackd.events[1]).toMatchObject({ request_id: req!.id, payload_sha256: req!.sha, caller: 'agent-1', effect: 'destructive' });
    expect(s.ackd.events[1]!.result_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(s.ackd.revoked).toEqual([req!.id]);
  });

  it('pending: the consent URL; a repeat with the same arguments reuses the request; approved later, the repeat runs it', async () => {
    const s = setup({ waitSeconds: 3 });
    const args = { path: '/d/b.txt', content: 'x' };
    const first = await s.flow.call(s.write(args));
    expect(first).toMatchObject({ kind: 'pending', request_id: 'req_1', consent_url: 'https://ackd.test/consent/req_1', payload_sha256: payloadSha256({ server: 'fs', tool: 'write_file', arguments: args }), reused: false });
    expect(await s.flow.call(s.write({ content: 'x', path: '/d/b.txt' }))).toMatchObject({ kind: 'pending', request_id: 'req_1', reused: true });
    expect(s.ackd.requests.size).toBe(1);
    s.ackd.decide('req_1', 'approved');
    expect(await s.flow.call(s.write(args))).toMatchObject({ kind: 'result' });
    expect(s.files.get('/d/b.txt')).toBe('x');
  });

  it('another caller’s identical call gets a request of its own: it never learns of, nor runs, the first caller’s', async () => {
    const s = setup({ waitSeconds: 0 });
    const args = { path: '/d/shared.txt', content: 'same' };
    expect(await s.flow.call(s.write(args))).toMatchObject({ kind: 'pending', request_id: 'req_1', reused: false });
    expect(await s.flow.call(s.write(args, { caller: 'agent-2' }))).toMatchObject({ kind: 'pending', request_id: 'req_2', reused: false });
    expect(s.ackd.requests.get('req_2')).toMatchObject({ justification: 'agent-2 called fs__write_file through the ackd gateway' });
    s.ackd.decide('req_1', 'approved');
    // agent-2's repeat waits on its own request; only agent-1's repeat runs the approval
    expect(await s.flow.call(s.write(args, { caller: 'agent-2' }))).toMatchObject({ kind: 'pending', request_id: 'req_2', reused: true });
    expect(s.files.size).toBe(0);
    expect(await s.flow.call(s.write(args))).toMatchObject({ kind: 'result' });
    expect(s.files.get('/d/shared.txt')).toBe('same');
  });

  it('changed arguments need a new approval; a second call after one approval needs a new one', async () => {
    const s = setup({ waitSeconds: 0 });
    await s.flow.call(s.write({ path: '/d/c.txt', content: 'one' }));
    s.ackd.decide('req_1', 'approved');
    const changed = await s.flow.call(s.write({ path: '/d/c.txt', content: 'two' }));
    expect(changed).toMatchObject({ kind: 'pending', request_id: 'req_2' });
    expect(s.files.has('/d/c.txt')).toBe(false);
    expect(await s.flow.call(s.write({ path: '/d/c.txt', content: 'one' }))).toMatchObject({ kind: 'result' });
    const again = await s.flow.call(s.write({ path: '/d/c.txt', content: 'one' }));
    expect(again).toMatchObject({ kind: 'pending', request_id: 'req_3' });
    expect(s.downstream.calls).toHaveLength(1);
  });

  it('denied or expired: nothing runs, the outcome is recorded off-path', async () => {
    const s = setup();
    s.ackd.onCheck = (id) => s.ackd.requests.get(id)!.status === 'pending' && s.ackd.decide(id, id === 'req_1' ? 'denied' : 'expired');
    expect(await s.flow.call(s.write({ path: '/d/d.txt', content: 'no' }))).toMatchObject({ kind: 'stopped', status: 'denied', request_id: 'req_1' });
    expect(await s.flow.call(s.write({ path: '/d/d.txt', content: 'no' }))).toMatchObject({ kind: 'stopped', status: 'expired', request_id: 'req_2' });
    expect(s.downstream.calls).toHaveLength(0);
    await s.queue.close();
    expect(s.ackd.events.map((e) => [e.outcome, e.request_id])).toEqual([
      ['denied', 'req_1'],
      ['expired', 'req_2'],
    ]);
  });

  it('a downstream crash after the start: a clear error, failed recorded once, never retried, started once', async () => {
    const s = setup({ crash: true });
    s.ackd.onCheck = (id) => s.ackd.requests.get(id)!.status === 'pending' && s.ackd.decide(id, 'approved');
    const o = await s.flow.call(s.write({ path: '/d/e.txt', content: 'x' }));
    expect(o).toMatchObject({ kind: 'stopped', status: 'failed' });
    expect(o.kind === 'stopped' && o.message).toBe('the approved call to fs__write_file failed downstream: MCP error -32000: Connection closed; it was not retried; a new call needs a new approval');
    expect(s.downstream.calls).toHaveLength(1);
    expect(s.ackd.events.map((e) => e.outcome)).toEqual(['started', 'failed']);
    expect(s.ackd.revoked).toEqual(['req_1']);
  });

  it('ackd refuses the start (already executed): nothing runs', async () => {
    const s = setup();
    s.ackd.onCheck = (id) => {
      const r = s.ackd.requests.get(id)!;
      if (r.status === 'pending') {
        s.ackd.decide(id, 'approved');
        r.started = true; // another gateway started a call with this approval
      }
    };
    const o = await s.flow.call(s.write({ path: '/d/f.txt', content: 'x' }));
    expect(o).toMatchObject({ kind: 'stopped', status: 'error' });
    expect(o.kind === 'stopped' && o.message).toContain('ERR_ALREADY_EXECUTED');
    expect(s.downstream.calls).toHaveLength(0);
  });

  it('ackd unreachable at the start: nothing runs (never unrecorded)', async () => {
    const s = setup();
    s.ackd.onCheck = (id) => {
      if (s.ackd.requests.get(id)!.status === 'pending') s.ackd.decide(id, 'approved');
      s.ackd.down = true;
    };
    const o = await s.flow.call(s.write({ path: '/d/g.txt', content: 'x' }));
    expect(o).toMatchObject({ kind: 'stopped', status: 'error' });
    expect(s.downstream.calls).toHaveLength(0);
  });

  it('an approval whose payload digest differs is refused', async () => {
    const s = setup();
    s.ackd.onCheck = (id) => s.ackd.requests.get(id)!.status === 'pending' && s.ackd.decide(id, 'approved');
    s.ackd.verifyApproval = async () => {
      throw new Error('ERR_PAYLOAD_MISMATCH: the receipt is for another payload');
    };
    const o = await s.flow.call(s.write({ path: '/d/h.txt', content: 'x' }));
    expect(o.kind === 'stopped' && o.message).toContain('the approval does not hold: ERR_PAYLOAD_MISMATCH');
    expect(s.downstream.calls).toHaveLength(0);
    expect(s.started()).toHaveLength(0);
  });

  it('allow: runs at once, recorded off-path with the digests; deny: refused without a request', async () => {
    const s = setup();
    s.files.set('/d/r.txt', 'R');
    const o = await s.flow.call({ server: 'fs', tool: 'read_text_file', arguments: { path: '/d/r.txt' }, effect: 'read', decision: 'allow' });
    expect(o).toMatchObject({ kind: 'result', result: { content: [{ type: 'text', text: 'R' }] } });
    expect(s.ackd.events).toHaveLength(0); // not on the call's path
    const d = await s.flow.call(s.write({ path: '/d/x', content: '' }, { decision: 'deny' }));
    expect(d).toMatchObject({ kind: 'stopped', status: 'refused' });
    expect(s.ackd.requests.size).toBe(0);
    await s.queue.close();
    expect(s.ackd.events.map((e) => e.outcome)).toEqual(['allowed', 'refused']);
    expect(s.ackd.events[0]!.result_sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('allow with the audit queue full: refused, not run', async () => {
    const s = setup({ limit: 1 });
    s.ackd.down = true;
    const read = { server: 'fs', tool: 'read_text_file', arguments: { path: '/d/r.txt' }, effect: 'read' as const, decision: 'allow' as const };
    expect(await s.flow.call(read)).toMatchObject({ kind: 'result' });
    const o = await s.flow.call(read);
    expect(o).toMatchObject({ kind: 'stopped', status: 'error' });
    expect(o.kind === 'stopped' && o.message).toContain('no call runs unaudited');
    expect(s.downstream.calls).toHaveLength(1);
  });

  it('concurrent identical calls share one request; only one runs on the approval', async () => {
    const s = setup({ waitSeconds: 0 });
    const args = { path: '/d/k.txt', content: 'k' };
    await s.flow.call(s.write(args));
    s.ackd.decide('req_1', 'approved');
    const [a, b] = await Promise.all([s.flow.call(s.write(args)), s.flow.call(s.write(args))]);
    expect([a.kind, b.kind].sort()).toEqual(['result', 'stopped']);
    expect(s.downstream.calls).toHaveLength(1);
    expect(s.started()).toHaveLength(1);
  });

  it('arguments that cannot be a payload are refused before asking', async () => {
    const s = setup();
    const o = await s.flow.call(s.write({ path: '/d/big', content: 'x'.repeat(40_000) }));
    expect(o.kind === 'stopped' && o.message).toMatch(/cannot be put before an approver/);
    expect(s.ackd.requests.size).toBe(0);
  });
});

describe('the flow as MCP answers it', () => {
  it('pending: a tool error with the status, or the URL-elicitation error for clients that declared it', async () => {
    const { toResult } = await import('../../lambdas/gateway/server.ts');
    const { UrlElicitationRequiredError } = await import('@modelcontextprotocol/sdk/types.js');
    const t = { qualified: 'fs__write_file' } as Parameters<typeof toResult>[0];
    const pending = { kind: 'pending', request_id: 'req_1', consent_url: 'https://ackd.test/c/req_1', payload_sha256: 'ab'.repeat(32), reused: false } as const;
    const r = toResult(t, pending, false);
    expect(r).toMatchObject({ isError: true, structuredContent: { status: 'pending', request_id: 'req_1', consent_url: 'https://ackd.test/c/req_1', payload_sha256: 'ab'.repeat(32) } });
    let thrown: unknown;
    try {
      toResult(t, pending, true);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(UrlElicitationRequiredError);
    expect((thrown as InstanceType<typeof UrlElicitationRequiredError>).code).toBe(-32042);
    expect((thrown as InstanceType<typeof UrlElicitationRequiredError>).elicitations).toEqual([expect.objectContaining({ mode: 'url', url: 'https://ackd.test/c/req_1', elicitationId: 'req_1' })]);
  });
});
