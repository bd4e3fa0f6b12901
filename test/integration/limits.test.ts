import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamoClient } from '../../lambdas/adapters/dynamodb/client.ts';
import { DynamoLimitStore } from '../../lambdas/adapters/dynamodb/limits.ts';
import { createApiKey } from '../../lambdas/core/apikeys.ts';
import type { AuditEvent } from '../../lambdas/core/audit/event.ts';
import type { ExportLine } from '../../lambdas/core/audit/service.ts';
import { checkpointPublicKey } from '../../lambdas/core/audit/signing.ts';
import { ChainVerifier } from '../../lambdas/core/audit/verify.ts';
import { parseAgentId, parseRequestId } from '../../lambdas/core/ids.ts';
import { errorText, startTestStack, structured, type TestStack } from '../helpers/local-stack.ts';

/**
 * The flood limits on the whole local stack (dynalite, local SES, the MCP SDK client over HTTP),
 * with the default limits: 30 request attempts per agent-minute, 20 open requests per agent,
 * 10 concurrent long-polls per agent, 10 consent mails per approver per 10 minutes, 10 refused
 * attempts recorded per request and kind of actor.
 */
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack({ consent: false, approvers: 'flood-approver@ackd.local' });
  // Start at the beginning of a minute and of a mail window, so the clock's own minute cannot end mid-test.
  const now = stack.clock.now().getTime();
  stack.clock.advance(600_000 - (now % 600_000));
}, 60_000);
afterAll(async () => {
  await stack?.stop();
});

async function agentClient(name: string): Promise<{ agentId: string; mcp: Client }> {
  const agentId = parseAgentId(name);
  const { apiKey } = await createApiKey(stack.deps.apiKeys, agentId, stack.clock);
  return { agentId, mcp: await stack.client(apiKey) };
}

const ask = (mcp: Client, agentId: string, i: number) =>
  mcp.callTool({ name: 'request_authorization', arguments: { agent_id: agentId, action: `rotate <b>key</b> ${i}`, permissions: ['db:write'], justification: 'flood', ttl_minutes: 30 } });

interface Mail {
  subject: string;
  destination: { to: string[] };
  body: { text?: string; html?: string };
}
async function mails(): Promise<Mail[]> {
  return ((await (await fetch(`${stack.mailUrl}/store`)).json()) as { emails: Mail[] }).emails;
}

/** The audit log as exported once the sequencer has sequenced every change (and sent the mails that follow), verified with the audit key. */
async function events(): Promise<AuditEvent[]> {
  await stack.settled();
  const lines: ExportLine[] = [];
  for await (const l of stack.deps.audit.export()) lines.push(l);
  const v = new ChainVerifier({ publicKey: checkpointPublicKey(await stack.deps.audit.publicKeyPem()) });
  lines.forEach((l, i) => v.addLine(l, i + 1));
  expect(v.finish().problems).toEqual([]);
  return lines.filter((l): l is Extract<ExportLine, { kind: 'event' }> => l.kind === 'event') as unknown as AuditEvent[];
}

describe('per-agent request limits hold over MCP', () => {
  it('100 concurrent request_authorization calls create 20 requests, send 10 mails and one digest; the refused ones change nothing', async () => {
    const { agentId, mcp } = await agentClient('flood-a');
    const results = (await Promise.all(Array.from({ length: 100 }, (_, i) => ask(mcp, agentId, i)))) as CallToolResult[];
    const created = results.filter((r) => !r.isError).map((r) => structured<{ request_id: string }>(r).request_id);
    const refused = results.filter((r) => r.isError).map(errorText);
    expect(created).toHaveLength(20);
    expect(refused).toHaveLength(80);
    for (const t of refused) expect(t).toMatch(/^ERR_RATE_LIMITED: agent flood-a (made 30 requests in the current minute \(limit 30 per minute\)|has 20 requests awaiting a decision \(limit 20\)); retry after \S+Z \(in \d+ s\)/);
    expect(refused.filter((t) => t.includes('made 30 requests'))).toHaveLength(70);

    // Nothing of the refused ones exists: not as requests, not as audit events.
    const stored = await stack.deps.store.listByAgent(parseAgentId(agentId), { limit: 500 });
    expect([...new Set(stored.map((r) => r.request_id))].sort()).toEqual([...created].sort());
    const requested = (await events()).filter((e) => e.type === 'requested' && e.agent_id === agentId);
    expect(requested).toHaveLength(20);

    // The approver got 10 consent mails, not 20; the other 10 wait for the digest. (The mails
    // follow each request's sequencing, done by now: events() above settled the log.)
    const consent = (await mails()).filter((m) => m.subject.includes('agent flood-a'));
    expect(consent).toHaveLength(10);
    await stack.deps.service.sweep();
    expect((await mails()).filter((m) => m.subject.includes('await your decision'))).toHaveLength(0);

    // One request is decided meanwhile; at the end of the mail window one digest lists the other 9.
    const mailed = new Set(created.filter((id) => consent.some((m) => m.body.text?.includes(id))));
    const deferred = created.filter((id) => !mailed.has(id));
    await stack.deps.service.decide(parseRequestId(deferred[0]!), 'denied', 'operator:alice');
    stack.clock.advanceMinutes(10);
    expect((await stack.deps.service.sweep()).renotified).toBe(1);
    const digests = (await mails()).filter((m) => m.subject.includes('await your decision'));
    expect(digests).toHaveLength(1);
    expect(digests[0]!.subject).toBe('ackd: 9 more requests await your decision');
    expect(digests[0]!.destination.to).toEqual(['flood-approver@ackd.local']);
    for (const id of deferred.slice(1)) expect(digests[0]!.body.html).toContain(`?request_id=${id}`);
    expect(digests[0]!.body.html).not.toContain(deferred[0]);
    expect(digests[0]!.body.html).toContain('rotate &lt;b&gt;key&lt;/b&gt;');
    expect(digests[0]!.body.html).not.toContain('<b>key</b>');

    // Each digest-listed request records email_sent once; the chain verifies (checked in events()).
    const sent = (await events()).filter((e) => e.type === 'email_sent' && e.agent_id === agentId);
    expect(sent.filter((e) => e.reason?.startsWith('digest'))).toHaveLength(9);
    expect(sent).toHaveLength(19);
    expect(await stack.deps.service.sweep()).toMatchObject({ renotified: 0 });

    // Still 19 open: a new minute allows one more request, the 21st open one is refused.
    const again = (await ask(mcp, agentId, 100)) as CallToolResult;
    expect(again.isError).toBeFalsy();
    expect(errorText(await ask(mcp, agentId, 101))).toMatch(/^ERR_RATE_LIMITED: agent flood-a has 20 requests awaiting a decision/);
    // Another agent is not affected by flood-a.
    const other = await agentClient('calm-b');
    expect(((await ask(other.mcp, other.agentId, 0)) as CallToolResult).isError).toBeFalsy();
  });
});

describe('refused attempts are bounded in the audit log', () => {
  it('15 refused revocations return 15 refusals but record 10 events', async () => {
    const { agentId, mcp } = await agentClient('revoker');
    const { request_id } = structured<{ request_id: string }>(await ask(mcp, agentId, 0));
    await stack.deps.service.decide(parseRequestId(request_id), 'approved', 'operator:alice');
    const approved = structured<{ svid_id: string }>(await mcp.callTool({ name: 'check_authorization', arguments: { request_id } }));
    const wrong = approved.svid_id === 'abcdef' ? 'abcdee' : 'abcdef';
    for (let i = 0; i < 15; i++) {
      expect(errorText(await mcp.callTool({ name: 'revoke_authorization', arguments: { request_id, svid_id: wrong } }))).toMatch(/^ERR_SVID_MISMATCH/);
    }
    const refusedEvents = (await events()).filter((e) => e.request_id === request_id && e.type === 'refused');
    expect(refusedEvents).toHaveLength(10);
    expect(stack.logs.lines.some((l) => l.includes('refused attempt not recorded as an audit event'))).toBe(true);
    // The real revocation still works and is recorded.
    expect(structured(await mcp.callTool({ name: 'revoke_authorization', arguments: { request_id, svid_id: approved.svid_id } }))).toMatchObject({ revoked: true });
    expect((await events()).filter((e) => e.request_id === request_id && e.type === 'revoked')).toHaveLength(1);
  });
});

describe('concurrent long-polls are bounded per agent', () => {
  it('the 11th concurrent wait is refused with when to retry; the waits end on the decision and free their slots', async () => {
    const { agentId, mcp } = await agentClient('waiter');
    const { request_id } = structured<{ request_id: string }>(await ask(mcp, agentId, 0));
    const waits = Array.from({ length: 10 }, () => mcp.callTool({ name: 'check_authorization', arguments: { request_id, wait_seconds: 20 } }));
    // Until all ten hold their slots (seen from the store that every instance shares).
    for (let i = 0; i < 100 && (await waitSlots(agentId)) < 10; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await waitSlots(agentId)).toBe(10);
    const refused = errorText(await mcp.callTool({ name: 'check_authorization', arguments: { request_id, wait_seconds: 20 } }));
    expect(refused).toMatch(/^ERR_RATE_LIMITED: agent waiter already has 10 check_authorization calls waiting \(limit 10 concurrent waits\); retry after \S+Z \(in \d+ s\), or check without wait_seconds/);
    // A check without waiting is not limited.
    expect(structured(await mcp.callTool({ name: 'check_authorization', arguments: { request_id } }))).toEqual({ status: 'pending', approvals: { have: 0, need: 1 }, payload_sha256: null });
    await stack.deps.service.decide(parseRequestId(request_id), 'denied', 'operator:alice');
    for (const w of await Promise.all(waits)) expect(structured(w)).toEqual({ status: 'denied', payload_sha256: null });
    expect(await waitSlots(agentId)).toBe(0);
  });
});

async function waitSlots(agentId: string): Promise<number> {
  const store = new DynamoLimitStore(dynamoClient({ region: 'us-east-1', endpoint: stack.dynamodbEndpoint }), stack.tableName);
  const now = stack.clock.now().getTime();
  return (await store.readSlots(`wait#${agentId}`, 10)).filter((s) => s.untilMs > now).length;
}
