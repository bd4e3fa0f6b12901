import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { verifyWebhookSignature } from '../../lambdas/adapters/channels/index.ts';
import { recordOwner } from '../../lambdas/core/agents.ts';
import { isAckdError } from '../../lambdas/core/errors.ts';
import { parseAgentId, parseRequestId, type RequestId } from '../../lambdas/core/ids.ts';
import type { AuditEvent } from '../../lambdas/core/audit/event.ts';
import { checkpointPublicKey } from '../../lambdas/core/audit/signing.ts';
import { cliEnv, runAckd } from '../helpers/cli.ts';
import { errorText, startTestStack, structured, writeItemFields, type TestStack } from '../helpers/local-stack.ts';

/** A webhook receiver on 127.0.0.1 that verifies every delivery's signature, as a real receiver would. */
interface Receiver {
  url: string;
  deliveries: { path: string; body: Record<string, unknown>; problem: string | null }[];
  failWith: number | null;
  close(): Promise<void>;
}

async function startReceiver(secret: string): Promise<Receiver> {
  const r: Receiver = { url: '', deliveries: [], failWith: null, close: () => Promise.resolve() };
  const read = (req: IncomingMessage) =>
    new Promise<string>((done) => {
      let s = '';
      req.on('data', (c: Buffer) => (s += c.toString('utf8')));
      req.on('end', () => done(s));
    });
  const server: Server = createServer((req, res) => {
    void read(req).then((body) => {
      const problem = verifyWebhookSignature({
        secret,
        timestamp: String(req.headers['x-ackd-timestamp'] ?? ''),
        signature: String(req.headers['x-ackd-signature'] ?? ''),
        body,
      });
      r.deliveries.push({ path: req.url ?? '', body: JSON.parse(body) as Record<string, unknown>, problem });
      res.writeHead(r.failWith ?? (problem ? 401 : 204)).end();
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  r.close = () => new Promise((done) => server.close(() => done()));
  return r;
}

let stack: TestStack;
let mcp: Client;
let receiver: Receiver;
const secret = randomBytes(32).toString('hex');
const OPS = { type: 'operator' as const, id: 'team-lead' };

beforeAll(async () => {
  receiver = await startReceiver(secret);
  const routes = {
    primary: { webhooks: [{ url: `${receiver.url}/primary`, secret_env: 'ACKD_TEST_HOOK_SECRET' }] },
    oncall: { webhooks: [{ url: `${receiver.url}/oncall`, secret_env: 'ACKD_TEST_HOOK_SECRET' }] },
  };
  stack = await startTestStack({ routes: JSON.stringify(routes), routeEnv: { ACKD_TEST_HOOK_SECRET: secret }, limits: { requestsPerMinute: 1000, openPending: 1000 } });
  mcp = await stack.client();
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  await receiver?.close();
});

const policy = (over: Record<string, unknown>) =>
  stack.deps.policies.set(
    { agent: stack.agentId, permission: null, approvals: 1, approvers: [], deny: 'any', separation_of_duties: false, operator_decisions: true, route: 'primary', escalate_to: null, ...over },
    OPS,
  );

async function ask(ttl = 10): Promise<RequestId> {
  const r = structured<{ request_id: string }>(
    await mcp.callTool({ name: 'request_authorization', arguments: { agent_id: stack.agentId, action: 'migrate prod db', permissions: ['db:migrate'], justification: 'schema v42', ttl_minutes: ttl } }),
  );
  return parseRequestId(r.request_id);
}

const check = async (id: RequestId) => structured(await mcp.callTool({ name: 'check_authorization', arguments: { request_id: id } }));

/** The request's events in the log, once the sequencer has sequenced what was written (and sent what follows). */
async function eventsOf(id: RequestId): Promise<AuditEvent[]> {
  await stack.settled();
  const out: AuditEvent[] = [];
  const head = await stack.deps.store.audit.head();
  for await (const e of stack.deps.store.audit.events(1, head.seq)) if (e.request_id === id) out.push(e);
  return out;
}

/** Live verification with the audit key (the local sequencer signs tree heads as the log grows), once all is sequenced. */
async function live() {
  await stack.settled();
  return stack.deps.audit.verifyLive({}, { publicKey: checkpointPublicKey(await stack.deps.audit.publicKeyPem()) });
}

describe('quorum on the real stack', () => {
  it('announces the request on its policy route with a signed webhook, and counts 2 of 2 before the SVID', async () => {
    await policy({ approvals: 2 });
    const before = receiver.deliveries.length;
    const id = await ask();
    await stack.settled(); // the announcement follows the requested event into the log
    const hook = receiver.deliveries.slice(before).find((d) => (d.body.request as { request_id?: string }).request_id === id);
    expect(hook).toBeDefined();
    expect(hook!.problem).toBeNull();
    expect(hook!.path).toBe('/primary');
    expect(hook!.body).toMatchObject({ type: 'approval_requested', route: 'primary', escalation: false, approvals: { have: 0, need: 2 } });
    expect(String(hook!.body.reason)).toMatch(/needs 2 approvals from different people/);

    await stack.deps.service.decide(id, 'approved', 'sub-alice', 'alice@example.com');
    expect(await check(id)).toEqual({ status: 'pending', approvals: { have: 1, need: 2 }, payload_sha256: null });
    const pending = await runAckd(cliEnv(stack), 'requests', 'pending');
    expect(pending.stdout).toMatch(new RegExp(`^${id} .*  1 of 2 approvals  agent `, 'm'));
    const shown = await runAckd(cliEnv(stack), 'requests', 'show', id);
    expect(shown.stdout).toMatch(/^votes\s+\[\{"voter":"sub-alice"/m);
    const again = await stack.deps.service.decide(id, 'approved', 'sub-alice', 'alice@example.com').catch((e: unknown) => e);
    expect(isAckdError(again, 'ERR_ALREADY_VOTED')).toBe(true);
    await stack.deps.service.decide(id, 'approved', 'operator:bob');
    const approved = await check(id);
    expect(approved).toMatchObject({ status: 'approved', svid_delivered: false });
    expect(String(approved.svid)).toContain('BEGIN CERTIFICATE');
    expect((await eventsOf(id)).map((e) => e.type)).toEqual(['requested', 'notified', 'voted', 'refused', 'approved', 'svid_issued']);
  });

  it("refuses the agent owner's vote under separation of duties, and one denial decides under deny any", async () => {
    await recordOwner(stack.deps.agents, parseAgentId(stack.agentId), 'owner@example.com', stack.clock);
    await policy({ approvals: 2, separation_of_duties: true });
    const id = await ask();
    const owner = await stack.deps.service.decide(id, 'approved', 'sub-owner', 'OWNER@example.com').catch((e: unknown) => e);
    expect(isAckdError(owner, 'ERR_FORBIDDEN')).toBe(true);
    expect((owner as Error).message).toMatch(/separation of duties/);
    await stack.deps.service.decide(id, 'approved', 'sub-carol', 'carol@example.com');
    const denied = await stack.deps.service.decide(id, 'denied', 'sub-dave', 'dave@example.com');
    expect(denied.decision).toBe('denied');
    expect(await check(id)).toEqual({ status: 'denied', payload_sha256: null });
    await recordOwner(stack.deps.agents, parseAgentId(stack.agentId), null, stack.clock);
  });

  it('escalates to the second route when nobody decided by the share of the wait, once, with the votes so far', async () => {
    await policy({ approvals: 2, escalate_to: 'oncall', escalate_after: 50 });
    const id = await ask(4);
    await stack.settled(); // announced on the primary route before anything else
    await stack.deps.service.decide(id, 'approved', 'sub-erin', 'erin@example.com');
    expect(await stack.deps.service.escalateDue()).toBe(0); // not yet due
    stack.clock.advance(2 * 60_000);
    const before = receiver.deliveries.length;
    expect(await stack.deps.service.escalateDue()).toBe(1);
    expect(await stack.deps.service.escalateDue()).toBe(0); // once
    const sent = receiver.deliveries.slice(before);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ path: '/oncall', problem: null, body: { route: 'oncall', escalation: true, approvals: { have: 1, need: 2 } } });
    expect(String(sent[0]!.body.reason)).toMatch(/nobody decided within 50% of the 4-minute wait; 1 of 2 approvals so far/);
    expect(JSON.stringify(sent[0]!.body.approvals)).toContain('erin@example.com');
    expect((await eventsOf(id)).map((e) => e.type).slice(-2)).toEqual(['escalated', 'notified']);
  });

  it('records a webhook that keeps failing as notify_failed, naming the channel, and the sweeper tries again', async () => {
    await policy({ approvals: 1 });
    receiver.failWith = 500;
    try {
      const id = await ask();
      const failed = (await eventsOf(id)).find((e) => e.type === 'notify_failed');
      expect(failed?.reason).toMatch(/webhook:primary-webhook-1 failed \(.*HTTP 500/);
      expect((await stack.deps.store.get(id))!.notify_status).toBe('failed');
      receiver.failWith = null;
      stack.clock.advance(61_000);
      expect(await stack.deps.service.retryNotifications()).toBeGreaterThanOrEqual(1);
      expect((await eventsOf(id)).at(-1)!.type).toBe('notified');
    } finally {
      receiver.failWith = null;
    }
  }, 60_000);

  it('100 concurrent votes make exactly one transition, each voter counted at most once, and the log verifies', async () => {
    await policy({ approvals: 5, route: null });
    const id = await ask();
    const results = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => stack.deps.service.decide(id, 'approved', `sub-voter-${i}`, `voter${i}@example.com`)));
    const events = await eventsOf(id);
    expect(events.filter((e) => e.type === 'approved')).toHaveLength(1);
    const final = (await stack.deps.store.get(id))!;
    expect(final.decision).toBe('approved');
    expect(final.votes).toHaveLength(5);
    expect(new Set(final.votes!.map((v) => v.voter)).size).toBe(5);
    for (const r of results) {
      if (r.status === 'rejected') expect(['ERR_ALREADY_DECIDED', 'ERR_CONFLICT', 'ERR_STORE_UNAVAILABLE']).toContain((r.reason as { code?: string }).code);
    }
    // Every vote that returned recorded a vote; no vote was recorded twice.
    expect(events.filter((e) => e.type === 'voted').length + 1).toBe(results.filter((r) => r.status === 'fulfilled').length);
    const report = await live();
    expect(report.problems).toEqual([]);
  }, 240_000);

  it('records every policy change in the audit chain, verified with the requests it governs', async () => {
    await policy({ approvals: 3 });
    // The log orders operator changes by their time (then id): the manual clock stands still, so
    // move it as real time would between two changes, or the two would share a millisecond.
    stack.clock.advance(1);
    await stack.deps.policies.remove(stack.agentId, null, OPS);
    await stack.settled();
    const head = await stack.deps.store.audit.head();
    const changes: Record<string, unknown>[] = [];
    for await (const e of stack.deps.store.audit.events(1, head.seq)) if (e.type.startsWith('policy_')) changes.push(e as unknown as Record<string, unknown>);
    expect(changes.at(-1)).toMatchObject({ type: 'policy_removed', actor_type: 'operator', actor_id: 'team-lead', policy: { agent: stack.agentId, approvals: 3 } });
    expect(changes.at(-2)).toMatchObject({ type: 'policy_set', policy: { approvals: 3 }, previous: { approvals: 5 } });
    const report = await live();
    expect(report.problems).toEqual([]);
  });
  it('a table writer cannot vote: a vote planted on the item, or a quorum lowered on it, gets no SVID', async () => {
    await policy({ approvals: 2, route: null });
    const planted = await ask();
    await stack.settled(); // the table is forged after the request is in the log
    const at = stack.clock.now().toISOString();
    await writeItemFields(stack, `req#${planted}`, { votes: [{ voter: 'sub-ghost', email: null, vote: 'approve', at, groups: [] }], voters: ['sub-ghost'] });
    expect((await stack.deps.service.decide(planted, 'approved', 'sub-frank', 'frank@example.com')).decision).toBe('approved');
    expect(errorText(await mcp.callTool({ name: 'check_authorization', arguments: { request_id: planted } }))).toMatch(/^ERR_NOT_APPROVED/);

    const lowered = await ask();
    await stack.settled();
    const quorum = (await stack.deps.store.get(lowered))!.quorum!;
    await writeItemFields(stack, `req#${lowered}`, { quorum: { ...quorum, approvals: 1 } });
    expect((await stack.deps.service.decide(lowered, 'approved', 'sub-frank', 'frank@example.com')).decision).toBe('approved');
    expect(errorText(await mcp.callTool({ name: 'check_authorization', arguments: { request_id: lowered } }))).toMatch(/^ERR_NOT_APPROVED/);
    const refusals = async (id: RequestId) => (await eventsOf(id)).filter((e) => e.type === 'refused').map((e) => e.reason).join('\n');
    // The approval event records what its own write did, so a vote or quorum planted on the item
    // differs from it (or, counted against the log, has no vote event / differs from its request).
    expect(await refusals(planted)).toMatch(/vote events|its votes differs from the approval recorded in event \d+/);
    expect(await refusals(lowered)).toMatch(/its quorum differs from (its request|the approval recorded in event \d+)/);
    const report = await live();
    expect(report.ok).toBe(false); // and the log says what was done
  });
});
