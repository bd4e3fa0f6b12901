import { recordOwner } from '../../lambdas/core/agents.ts';
import { DeleteCommand, PutCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamoClient } from '../../lambdas/adapters/dynamodb/client.ts';
import { documentClient } from '../../lambdas/adapters/dynamodb/send.ts';
import { TABLE } from '../../lambdas/adapters/dynamodb/schema.ts';
import { auditEvent } from '../../lambdas/core/audit/event.ts';
import { Sequencer } from '../../lambdas/core/audit/sequencer.ts';
import { checkpointPublicKey } from '../../lambdas/core/audit/signing.ts';
import { parseAgentId, type AgentId, type RequestId } from '../../lambdas/core/ids.ts';
import { readItem, startTestStack, structured, type TestStack } from '../helpers/local-stack.ts';

// The insider who can write to the DynamoDB table but does not hold the outbox seal key (on AWS a
// KMS HMAC key only ackd's functions may use; here the stack's key file). Whatever they put into an
// outbox — a forged event, a genuine one copied elsewhere, one written back after it was logged —
// never enters the audit log: the sequencer quarantines it, logs an error, and the genuine events
// keep flowing. (This is a real DynamoDB API: dynalite, written with the AWS SDK as anyone could.)

let stack: TestStack;
let mcp: Client;
const agent = parseAgentId('demo-agent');

beforeAll(async () => {
  stack = await startTestStack({ limits: { requestsPerMinute: 10_000, openPending: 200, toolCallsPerMinute: 10_000 } });
  mcp = await stack.client();
});
afterAll(async () => {
  await stack?.stop();
});

/** The table writer's own client: the AWS SDK, no ackd code in the write path. */
const raw = () => documentClient(dynamoClient({ region: 'us-east-1', endpoint: stack.dynamodbEndpoint }));
const IX = TABLE.auditLog;
const call = { server: 'github', tool: 'delete_repo', effect: 'destructive', outcome: 'allowed', payload_sha256: 'a'.repeat(64), caller: 'demo-agent', request_id: null, result_sha256: null, reason: null };

async function newRequest(): Promise<RequestId> {
  const { request_id } = await stack.deps.service.requestAuthorization({ agent_id: agent, action: 'drop the staging db', permissions: ['db:admin'], justification: 'reset', ttl_minutes: 30 });
  await stack.settled();
  return request_id;
}

/** The consent announcements the sequencer's follow-up records: left out where a test counts a request's events. */
const ANNOUNCEMENTS = new Set(['email_sent', 'email_failed', 'notified', 'notify_failed']);

/** Every event of the log but the announcements, in order. */
async function logged(): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for await (const line of stack.deps.audit.export()) if (line.kind === 'event' && !ANNOUNCEMENTS.has(line.type)) out.push(line as unknown as Record<string, unknown>);
  return out;
}

async function quarantine(): Promise<Record<string, unknown>[]> {
  const out = await raw().send(new ScanCommand({ TableName: stack.tableName, FilterExpression: 'begins_with(pk, :q)', ExpressionAttributeValues: { ':q': 'audit#quarantine#' }, ConsistentRead: true }));
  return out.Items ?? [];
}

/** A refused operator-change item stays (no function may delete), marked and out of the outbox index, expiring with the retention. */
async function outOfTheOutbox(pk: string, reason: string): Promise<void> {
  const it = (await readItem(stack, pk))!;
  expect(it, pk).toBeDefined();
  expect(it.quarantined, pk).toBe(reason);
  expect(it[IX.partitionKey], pk).toBeUndefined();
  expect(it[IX.sortKey], pk).toBeUndefined();
  expect(typeof it.retain_until, pk).toBe('number');
}

const refusedLines = () => stack.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.code === 'ERR_AUDIT_ENTRY_REFUSED');

async function verifiesClean(): Promise<void> {
  await stack.settled();
  const report = await stack.deps.audit.verifyLive({}, { publicKey: checkpointPublicKey(await stack.deps.audit.publicKeyPem()) });
  expect(report.problems).toEqual([]);
  expect(report.ok).toBe(true);
}

describe('a table writer without the seal key cannot put events into the audit log', () => {
  it('(1) forged tool_call items, more than a batch of them and older than everything, are quarantined and block nothing', async () => {
    const before = (await logged()).length;
    const at = new Date(stack.clock.now().getTime() - 3_600_000);
    const ids: string[] = [];
    for (let i = 0; i < 105; i++) {
      const event = { ...auditEvent('tool_call', { type: 'agent', id: 'demo-agent' }, at), event_id: `evt_forged_tool_call_${String(i).padStart(3, '0')}` };
      ids.push(event.event_id);
      await raw().send(
        new PutCommand({
          TableName: stack.tableName,
          Item: { pk: `audit#admin#${event.event_id}`, entry: { event, change: { call }, seal: `v1.${'A'.repeat(43)}` }, [IX.partitionKey]: 'outbox', [IX.sortKey]: `${event.at}#${event.event_id}` },
        }),
      );
    }
    // A genuine event behind them (the outbox index is read oldest first, 100 at a time).
    const id = await newRequest();
    const events = await logged();
    expect(events.slice(before).map((e) => [e.type, e.request_id])).toEqual([['requested', id]]);
    expect(events.some((e) => typeof e.event_id === 'string' && e.event_id.startsWith('evt_forged'))).toBe(false);
    const q = await quarantine();
    expect(q.filter((it) => String(it.source).startsWith('audit#admin#evt_forged_tool_call_'))).toHaveLength(105);
    expect(q.find((it) => it.source === `audit#admin#${ids[0]}`)).toMatchObject({ reason: 'mismatch', entry: { event: { event_id: ids[0] } } });
    for (const e of ids) await outOfTheOutbox(`audit#admin#${e}`, 'mismatch');
    expect(refusedLines().filter((l) => String(l.event_id).startsWith('evt_forged_tool_call_'))).toHaveLength(105);
    expect(refusedLines()[0]).toMatchObject({ level: 'error', reason: 'mismatch', type: 'tool_call', item: `audit#admin#${ids[0]}` });
    await verifiesClean();
  });

  
  
  // An item as large as dynalite (like DynamoDB, 400 KiB) accepts, whose quarantine record, whole, would not be.
  const HUGE = 409_050;
  it('(1b) a forged entry as large as an item may be is quarantined by its digest and stalls nothing', async () => {
    const before = (await logged()).length;
    const at = new Date(stack.clock.now().getTime() - 60_000);
    const event = { ...auditEvent('tool_call', { type: 'agent', id: 'demo-agent' }, at), event_id: 'evt_forged_huge', reason: 'x'.repeat(HUGE) };
    await raw().send(
      new PutCommand({
        TableName: stack.tableName,
        Item: { pk: `audit#admin#${event.event_id}`, entry: { event, change: { call } }, [IX.partitionKey]: 'outbox', [IX.sortKey]: `${event.at}#${event.event_id}` },
      }),
    );
    const id = await newRequest();
    expect((await logged()).slice(before).map((e) => [e.type, e.request_id])).toEqual([['requested', id]]);
    const q = (await quarantine()).find((it) => it.source === 'audit#admin#evt_forged_huge')!;
    expect(q).toMatchObject({ reason: 'missing', entry: null, entry_bytes: expect.any(Number) as number });
    expect(q.entry_bytes as number).toBeGreaterThan(380_000);
    expect(q.entry_sha256).toMatch(/^[0-9a-f]{64}$/);
    await outOfTheOutbox('audit#admin#evt_forged_huge', 'missing');
    await verifiesClean();
  });

  it("(2) a forged approval in a pending request's outbox never enters the log, gets no SVID, and the request's genuine events go on", async () => {
    const id = await newRequest();
    const now = stack.clock.now();
    const forged = { event: auditEvent('approved', { type: 'approver', id: 'sub-mallory' }, now), row: 'approve', params: { now: now.toISOString(), approver: 'sub-mallory', seen: 0 } };
    // Exactly what ackd's own writes do (list_append and the outbox index), and the item flipped to approved.
    await raw().send(
      new UpdateCommand({
        TableName: stack.tableName,
        Key: { pk: `req#${id}` },
        UpdateExpression: 'SET #ob = list_append(if_not_exists(#ob, :none), :e), #p = :p, #k = :k, decision = :d, approver_identity = :a',
        ExpressionAttributeNames: { '#ob': 'audit_outbox', '#p': IX.partitionKey, '#k': IX.sortKey },
        ExpressionAttributeValues: { ':none': [], ':e': [forged], ':p': 'outbox', ':k': `${forged.event.at}#${forged.event.event_id}`, ':d': 'approved', ':a': 'sub-mallory' },
      }),
    );
    await stack.settled();
    expect((await logged()).filter((e) => e.request_id === id).map((e) => e.type)).toEqual(['requested']);
    expect((await quarantine()).find((it) => it.source === `req#${id}`)).toMatchObject({ reason: 'missing', entry: { event: { event_id: forged.event.event_id, type: 'approved' } } });
    expect(refusedLines().at(-1)).toMatchObject({ reason: 'missing', type: 'approved', event_id: forged.event.event_id, item: `req#${id}`, request_id: id });
    // No SVID for the item's "approved": its decision is not in the log.
    const check = await mcp.callTool({ name: 'check_authorization', arguments: { request_id: id } });
    expect(check.isError).toBe(true);
    // Put back as it was, the request is decided for real; that approval is logged and its SVID follows.
    await raw().send(new UpdateCommand({ TableName: stack.tableName, Key: { pk: `req#${id}` }, UpdateExpression: 'SET decision = :d REMOVE approver_identity', ExpressionAttributeValues: { ':d': 'pending' } }));
    await stack.deps.service.decide(id, 'approved', 'operator:alice');
    await stack.settled();
    expect((await logged()).filter((e) => e.request_id === id).map((e) => [e.type, e.approver_identity])).toEqual([
      ['requested', null],
      ['approved', 'operator:alice'],
    ]);
    expect(structured<{ status: string }>(await mcp.callTool({ name: 'check_authorization', arguments: { request_id: id } })).status).toBe('approved');
    await verifiesClean();
  });

  it('(3) a genuine sealed entry copied into another request is refused there, and logged once where it was written', async () => {
    const a = await newRequest();
    const b = await newRequest();
    await stack.deps.sequencerLoop.stop();
    let copied: Record<string, unknown>;
    try {
      await stack.deps.service.decide(b, 'denied', 'operator:bob');
      const item = (await readItem(stack, `req#${b}`))!;
      copied = (item.audit_outbox as Record<string, unknown>[])[0]!;
      expect(copied.seal).toMatch(/^v1\./);
      await raw().send(
        new UpdateCommand({
          TableName: stack.tableName,
          Key: { pk: `req#${a}` },
          UpdateExpression: 'SET #ob = list_append(if_not_exists(#ob, :none), :e), #p = :p, #k = :k',
          ExpressionAttributeNames: { '#ob': 'audit_outbox', '#p': IX.partitionKey, '#k': IX.sortKey },
          ExpressionAttributeValues: { ':none': [], ':e': [copied], ':p': 'outbox', ':k': `${(copied.event as { at: string }).at}#x` },
        }),
      );
    } finally {
      stack.deps.sequencerLoop.start();
    }
    await stack.settled();
    const events = await logged();
    const eventId = (copied.event as { event_id: string }).event_id;
    expect(events.filter((e) => e.event_id === eventId).map((e) => [e.type, e.request_id])).toEqual([['denied', b]]);
    expect(events.filter((e) => e.request_id === a).map((e) => e.type)).toEqual(['requested']);
    expect((await quarantine()).find((it) => it.source === `req#${a}`)).toMatchObject({ reason: 'mismatch', entry: { event: { event_id: eventId } } });
    expect(refusedLines().at(-1)).toMatchObject({ reason: 'mismatch', event_id: eventId, request_id: a });
    // The request it was copied into still takes its own decisions.
    await stack.deps.service.decide(a, 'denied', 'operator:bob');
    await stack.settled();
    expect((await logged()).filter((e) => e.request_id === a).map((e) => e.type)).toEqual(['requested', 'denied']);
    await verifiesClean();
  });

  it('(4) a sequenced operator change written back into the table is not logged twice', async () => {
    await stack.deps.sequencerLoop.stop();
    let item: Record<string, unknown>;
    let eventId: string;
    try {
      await recordOwner(stack.deps.agents, 'deploy-bot' as AgentId, 'alice', stack.clock, { log: stack.deps.ownerAudit, actor: { type: 'operator', id: 'ops' } });
      // (the one waiting: refused items of earlier tests stay, out of the outbox index)
      const scan = await raw().send(new ScanCommand({ TableName: stack.tableName, FilterExpression: 'begins_with(pk, :a) AND attribute_exists(#p)', ExpressionAttributeNames: { '#p': IX.partitionKey }, ExpressionAttributeValues: { ':a': 'audit#admin#' }, ConsistentRead: true }));
      expect(scan.Items).toHaveLength(1);
      item = scan.Items![0]!;
      eventId = (item.entry as { event: { event_id: string } }).event.event_id;
    } finally {
      stack.deps.sequencerLoop.start();
    }
    await stack.settled();
    expect((await logged()).filter((e) => e.event_id === eventId)).toHaveLength(1);
    // Logged: out of the outbox index, kept until its retention ends (no ackd function deletes items).
    const settled = (await readItem(stack, `audit#admin#${eventId}`))!;
    expect(settled[IX.partitionKey]).toBeUndefined();
    expect(settled.quarantined).toBeUndefined();
    expect(typeof settled.retain_until).toBe('number');
    // The table writer puts the item back, byte for byte.
    await raw().send(new PutCommand({ TableName: stack.tableName, Item: item }));
    await stack.settled();
    expect((await logged()).filter((e) => e.event_id === eventId).map((e) => e.type)).toEqual(['owner_set']);
    await outOfTheOutbox(`audit#admin#${eventId}`, 'duplicate');
    expect((await quarantine()).find((it) => it.source === `audit#admin#${eventId}`)).toMatchObject({ reason: 'duplicate' });
    expect(refusedLines().at(-1)).toMatchObject({ reason: 'duplicate', event_id: eventId, type: 'owner_set' });
    // Again, to a sequencer that starts afterwards (a cold start): it reads the newest events' ids from the table first.
    await stack.deps.sequencerLoop.stop();
    try {
      await raw().send(new PutCommand({ TableName: stack.tableName, Item: item }));
      const fresh = new Sequencer({ store: stack.deps.store.audit, clock: stack.clock, logger: stack.logs, sealer: stack.deps.store.audit.sealer });
      expect(await fresh.run()).toMatchObject({ sequenced: 0, refused: 1 });
    } finally {
      stack.deps.sequencerLoop.start();
    }
    expect(refusedLines().at(-1)).toMatchObject({ reason: 'duplicate', event_id: eventId });
    await outOfTheOutbox(`audit#admin#${eventId}`, 'duplicate');
    // Genuine operator changes and gateway calls keep flowing.
    await recordOwner(stack.deps.agents, 'deploy-bot' as AgentId, 'bob', stack.clock, { log: stack.deps.ownerAudit, actor: { type: 'operator', id: 'ops' } });
    await stack.settled();
    expect((await logged()).filter((e) => e.type === 'owner_set').map((e) => e.owner)).toEqual(['alice', 'bob']);
    await verifiesClean();
  });

  it('malformed items in the outbox index (no entry, a seal of another type, an empty outbox, an item of no kind) leave it and stall nothing', async () => {
    const old = new Date(stack.clock.now().getTime() - 7_200_000).toISOString();
    const at = (n: number) => ({ [IX.partitionKey]: 'outbox', [IX.sortKey]: `${old}#stray${n}` });
    const id = await newRequest();
    const put = (Item: Record<string, unknown>) => raw().send(new PutCommand({ TableName: stack.tableName, Item }));
    await put({ pk: 'audit#admin#evt_no_entry', ...at(1) });
    await put({ pk: 'audit#admin#evt_bad_seal', entry: { event: { event_id: 'evt_bad_seal', at: old, type: 'policy_set' }, change: {}, seal: 42 }, ...at(2) });
    await put({ pk: 'audit#admin#evt_not_a_map', entry: 'hello', ...at(3) });
    await put({ pk: 'something#else', note: 'not ackd', ...at(4) });
    await raw().send(new UpdateCommand({ TableName: stack.tableName, Key: { pk: `req#${id}` }, UpdateExpression: 'SET #ob = :none, #p = :p, #k = :k', ExpressionAttributeNames: { '#ob': 'audit_outbox', '#p': IX.partitionKey, '#k': IX.sortKey }, ExpressionAttributeValues: { ':none': [], ':p': 'outbox', ':k': `${old}#stray5` } }));
    const next = await newRequest();
    expect((await logged()).filter((e) => e.request_id === next).map((e) => e.type)).toEqual(['requested']);
    expect((await stack.deps.store.audit.backlog(10)).count).toBe(0);
    await outOfTheOutbox('audit#admin#evt_no_entry', 'missing');
    await outOfTheOutbox('audit#admin#evt_bad_seal', 'malformed');
    await outOfTheOutbox('audit#admin#evt_not_a_map', 'missing');
    expect(await readItem(stack, 'something#else')).toEqual({ pk: 'something#else', note: 'not ackd' });
    expect((await readItem(stack, `req#${id}`))![IX.partitionKey]).toBeUndefined();
    expect((await quarantine()).filter((q) => String(q.source).startsWith('audit#admin#evt_')).map((q) => [q.source, q.reason]).filter(([src]) => !String(src).includes('forged'))).toEqual(
      expect.arrayContaining([
        ['audit#admin#evt_no_entry', 'missing'],
        ['audit#admin#evt_bad_seal', 'malformed'],
        ['audit#admin#evt_not_a_map', 'missing'],
      ]),
    );
    await verifiesClean();
  });

  it('entries without any seal (as a version before sealing wrote them) are refused too; a quarantine record is never read as waiting', async () => {
    const id = await newRequest();
    const at = stack.clock.now();
    const unsealed = { event: auditEvent('refused', { type: 'agent', id: 'demo-agent' }, at, 'unsealed'), row: 'recordRefusal', params: {} };
    await raw().send(
      new UpdateCommand({
        TableName: stack.tableName,
        Key: { pk: `req#${id}` },
        UpdateExpression: 'SET #ob = :e, #p = :p, #k = :k',
        ExpressionAttributeNames: { '#ob': 'audit_outbox', '#p': IX.partitionKey, '#k': IX.sortKey },
        ExpressionAttributeValues: { ':e': [unsealed], ':p': 'outbox', ':k': `${unsealed.event.at}#${unsealed.event.event_id}` },
      }),
    );
    await stack.settled();
    expect((await logged()).filter((e) => e.request_id === id).map((e) => e.type)).toEqual(['requested']);
    expect((await stack.deps.store.audit.backlog(10)).count).toBe(0);
    const item = (await readItem(stack, `req#${id}`))!;
    expect(item.audit_outbox).toEqual([]);
    expect(item[IX.partitionKey]).toBeUndefined();
    // The outbox of versions before the sequencer (one unsealed event, `audit_pending`) beside an empty list: refused too.
    const legacyId = await newRequest();
    const legacy = auditEvent('refused', { type: 'agent', id: 'demo-agent' }, stack.clock.now(), 'legacy');
    await raw().send(
      new UpdateCommand({
        TableName: stack.tableName,
        Key: { pk: `req#${legacyId}` },
        UpdateExpression: 'SET audit_pending = :e, #ob = :none, #p = :p, #k = :k',
        ExpressionAttributeNames: { '#ob': 'audit_outbox', '#p': IX.partitionKey, '#k': IX.sortKey },
        ExpressionAttributeValues: { ':e': legacy, ':none': [], ':p': 'outbox', ':k': `${legacy.at}#${legacy.event_id}` },
      }),
    );
    await stack.settled();
    expect((await logged()).filter((e) => e.request_id === legacyId).map((e) => e.type)).toEqual(['requested']);
    const legacyItem = (await readItem(stack, `req#${legacyId}`))!;
    expect(legacyItem.audit_pending).toBeUndefined();
    expect(legacyItem[IX.partitionKey]).toBeUndefined();
    expect(refusedLines().at(-1)).toMatchObject({ reason: 'missing', event_id: legacy.event_id, request_id: legacyId });
    // The records stay out of the outbox index (in the time index's quarantine partitions only); removing one (an operator's clean-up) changes nothing in the log.
    const q = await quarantine();
    for (const r of q) expect(r[IX.partitionKey]).toBe(`quarantine#${String(r.quarantined_at).slice(0, 10)}`);
    await raw().send(new DeleteCommand({ TableName: stack.tableName, Key: { pk: q[0]!.pk } }));
    await verifiesClean();
  });
});
