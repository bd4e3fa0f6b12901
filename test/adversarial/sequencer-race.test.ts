import { DeleteCommand, PutCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamoClient } from '../../lambdas/adapters/dynamodb/client.ts';
import { documentClient } from '../../lambdas/adapters/dynamodb/send.ts';
import { TABLE } from '../../lambdas/adapters/dynamodb/schema.ts';
import { auditEvent } from '../../lambdas/core/audit/event.ts';
import { Sequencer } from '../../lambdas/core/audit/sequencer.ts';
import { checkpointPublicKey } from '../../lambdas/core/audit/signing.ts';
import { parseAgentId, type RequestId } from '../../lambdas/core/ids.ts';
import { memoryLogger, startTestStack, type TestStack } from '../helpers/local-stack.ts';

// Sequencers race (on AWS, a sweeper run still going when the next starts, or two regions of
// retries) while a table writer's forged entries sit in the outbox between genuine ones. Each
// forged entry is refused and kept once, none enters the log, every genuine event enters it once,
// in one chain that verifies. (dynalite, written with the AWS SDK as anyone could.)

let stack: TestStack;
const agent = parseAgentId('demo-agent');
const IX = TABLE.auditLog;

beforeAll(async () => {
  stack = await startTestStack({ limits: { requestsPerMinute: 10_000, openPending: 200 } });
});
afterAll(async () => {
  await stack?.stop();
});

const raw = () => documentClient(dynamoClient({ region: 'us-east-1', endpoint: stack.dynamodbEndpoint }));

async function scan(prefix: string): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await raw().send(new ScanCommand({ TableName: stack.tableName, FilterExpression: 'begins_with(pk, :p)', ExpressionAttributeValues: { ':p': prefix }, ConsistentRead: true, ExclusiveStartKey: start }));
    out.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return out;
}

/** A forged approval (a made-up seal), appended to a request's outbox as ackd's own writes append. */
async function appendForgedApproval(requestId: RequestId, eventId: string): Promise<void> {
  const at = stack.clock.now();
  const approval = { ...auditEvent('approved', { type: 'approver', id: 'sub-mallory' }, at), event_id: eventId };
  await raw().send(
    new UpdateCommand({
      TableName: stack.tableName,
      Key: { pk: `req#${requestId}` },
      UpdateExpression: 'SET #ob = list_append(if_not_exists(#ob, :none), :e)',
      ExpressionAttributeNames: { '#ob': 'audit_outbox' },
      ExpressionAttributeValues: { ':none': [], ':e': [{ event: approval, row: 'approve', params: { now: at.toISOString(), approver: 'sub-mallory', seen: 0 }, seal: `v1.${'B'.repeat(43)}` }] },
    }),
  );
}

describe('a forged entry behind a genuine one in the same outbox', () => {
  // The quarantine write that takes the forged entry out while the genuine one still waits once
  // named an attribute it did not use, which DynamoDB refuses: every sequencer run then failed at
  // that request, and the whole log (and every SVID, which waits for its approval in the log) stalled.
  it('is refused and the genuine entry before it is logged: the log does not stall', async () => {
    let id: RequestId;
    await stack.settled();
    await stack.deps.sequencerLoop.stop();
    try {
      ({ request_id: id } = await stack.deps.service.requestAuthorization({ agent_id: agent, action: 'behind a genuine entry', permissions: ['db:admin'], justification: 'stall', ttl_minutes: 30 }));
      await appendForgedApproval(id, 'evt_forged_behind_genuine');
    } finally {
      stack.deps.sequencerLoop.start();
    }
    await stack.settled(15_000);
    const types: string[] = [];
    for await (const l of stack.deps.audit.export()) if (l.kind === 'event' && l.request_id === id) types.push(l.type);
    expect(types).toContain('requested');
    expect(types).not.toContain('approved');
    expect((await scan('audit#quarantine#')).some((q) => (q.entry as { event?: { event_id?: string } } | null)?.event?.event_id === 'evt_forged_behind_genuine')).toBe(true);
    expect((await stack.deps.store.audit.backlog(100)).count).toBe(0);
  });
});

describe('sequencers racing over forged entries', () => {
  it('four sequencers at once: each forged entry quarantined once and never logged; each genuine event logged once; the log verifies', async () => {
    await stack.settled();
    await stack.deps.sequencerLoop.stop();
    const forgedIds: string[] = [];
    const genuine: RequestId[] = [];
    const logger = memoryLogger();
    try {
      const db = raw();
      for (let i = 0; i < 12; i++) {
        const { request_id } = await stack.deps.service.requestAuthorization({ agent_id: agent, action: `race ${i}`, permissions: ['db:admin'], justification: 'race', ttl_minutes: 30 });
        genuine.push(request_id);
        const at = stack.clock.now();
        // A forged operator change (no seal) …
        const admin = { ...auditEvent('tool_call', { type: 'agent', id: 'demo-agent' }, at), event_id: `evt_race_admin_${i}` };
        await db.send(new PutCommand({ TableName: stack.tableName, Item: { pk: `audit#admin#${admin.event_id}`, entry: { event: admin, change: {} }, [IX.partitionKey]: 'outbox', [IX.sortKey]: `${admin.at}#${admin.event_id}` } }));
        // … and a forged approval with a made-up seal, behind the request's genuine entry in its own outbox.
        await appendForgedApproval(request_id, `evt_race_approval_${i}`);
        forgedIds.push(admin.event_id, `evt_race_approval_${i}`);
      }
      const sequencer = () => new Sequencer({ store: stack.deps.store.audit, clock: stack.clock, logger, sealer: stack.deps.store.audit.sealer });
      // Rounds of four at once until nothing waits (a run that loses a race leaves its work to the next).
      for (let round = 0; round < 20; round++) {
        await Promise.allSettled([sequencer().run(), sequencer().run(), sequencer().run(), sequencer().run()]);
        if ((await stack.deps.store.audit.backlog(100)).count === 0) break;
      }
      expect((await stack.deps.store.audit.backlog(100)).count).toBe(0);
    } finally {
      stack.deps.sequencerLoop.start();
    }
    await stack.settled();
    const events: Record<string, unknown>[] = [];
    for await (const l of stack.deps.audit.export()) if (l.kind === 'event') events.push(l as unknown as Record<string, unknown>);
    // Nothing forged in the log; every genuine request's `requested` exactly once.
    expect(events.filter((e) => forgedIds.includes(String(e.event_id)))).toEqual([]);
    for (const id of genuine) expect(events.filter((e) => e.request_id === id && e.type === 'requested'), id).toHaveLength(1);
    const ids = events.map((e) => e.event_id);
    expect(new Set(ids).size).toBe(ids.length);
    // Each forged entry kept once (the record's key is a digest of where it was and what it is).
    const kept = (await scan('audit#quarantine#')).map((q) => (q.entry as { event?: { event_id?: string } } | null)?.event?.event_id).filter((e) => e !== undefined && forgedIds.includes(e));
    expect(kept.sort()).toEqual([...forgedIds].sort());
    // No request was approved by the forgery, and the chain verifies.
    for (const id of genuine) expect((await stack.deps.service.get(id)).decision).toBe('pending');
    const report = await stack.deps.audit.verifyLive({}, { publicKey: checkpointPublicKey(await stack.deps.audit.publicKeyPem()) });
    expect(report.problems).toEqual([]);
  }, 120_000);
});

describe('malformed outbox items a table writer puts in the outbox index stall nothing', () => {
  const at = () => stack.clock.now().toISOString();
  const index = (key: string) => ({ [IX.partitionKey]: 'outbox', [IX.sortKey]: `${at()}#${key}` });
  const SHAPES: [string, () => Record<string, unknown>][] = [
    ['an outbox that is a string', () => ({ audit_outbox: 'not a list' })],
    ['an outbox of a number, null, a string and an empty map', () => ({ audit_outbox: [42, null, 'x', {}] })],
    ['an entry whose event is a string', () => ({ audit_outbox: [{ event: 'approved', seal: 'v1.x' }] })],
    ['an entry whose event has no id, type or time', () => ({ audit_outbox: [{ event: {}, row: 'approve', seal: `v1.${'C'.repeat(43)}` }] })],
    ['an entry whose seal is a number', () => ({ audit_outbox: [{ event: { event_id: 'evt_malformed_seal', type: 'approved', at: at() }, row: 'approve', seal: 7 }] })],
    ['a legacy pending event (before the sequencer), unsealed', () => ({ audit_pending: { event_id: 'evt_malformed_legacy', type: 'approved', at: at(), actor: { type: 'approver', id: 'sub-mallory' } } })],
    ['500 forged entries in one outbox', () => ({ audit_outbox: Array.from({ length: 500 }, (_, i) => ({ event: { event_id: `evt_malformed_many_${i}`, type: 'tool_call', at: at() }, seal: 'v1.x' })) })],
  ];

  it.each(SHAPES)('%s: the item leaves the index, nothing of it is logged, and a genuine request behind it is', async (_name, shape) => {
    const fake = `req#req_${'0'.repeat(26)}`;
    const before: Record<string, unknown>[] = [];
    for await (const l of stack.deps.audit.export()) if (l.kind === 'event') before.push(l as unknown as Record<string, unknown>);
    await raw().send(new PutCommand({ TableName: stack.tableName, Item: { pk: fake, agent_id: 'demo-agent', ...shape(), ...index('malformed') } }));
    const { request_id: id } = await stack.deps.service.requestAuthorization({ agent_id: agent, action: `behind ${_name}`, permissions: ['db:admin'], justification: 'malformed', ttl_minutes: 30 });
    await stack.settled(15_000);
    const after: Record<string, unknown>[] = [];
    for await (const l of stack.deps.audit.export()) if (l.kind === 'event') after.push(l as unknown as Record<string, unknown>);
    const added = after.slice(before.length);
    expect(added.filter((e) => e.request_id === id).map((e) => e.type)).toContain('requested');
    expect(added.filter((e) => String(e.event_id).startsWith('evt_malformed') || e.request_id === fake.slice(4))).toEqual([]);
    expect((await stack.deps.store.audit.backlog(100)).count).toBe(0);
    // The live check reports the made-up item (no event of it is in the log) and nothing else.
    const report = await stack.deps.audit.verifyLive({}, { publicKey: checkpointPublicKey(await stack.deps.audit.publicKeyPem()) });
    expect(report.problems.map((p) => p.message)).toEqual([expect.stringMatching(new RegExp(`^request ${fake.slice(4)}: its item names no event in the log`))]);
    await raw().send(new DeleteCommand({ TableName: stack.tableName, Key: { pk: fake } }));
  }, 60_000);
});
