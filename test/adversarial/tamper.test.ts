import { DeleteItemCommand, GetItemCommand, PutItemCommand, UpdateItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamoClient } from '../../lambdas/adapters/dynamodb/client.ts';
import { parseAgentId, type RequestId } from '../../lambdas/core/ids.ts';
import { readItem, startTestStack, writeItemFields, type TestStack } from '../helpers/local-stack.ts';

// The insider who can write to the DynamoDB table. Without the approver's signature (the payload
// binding issue) the table writer cannot be stopped from writing; what ackd guarantees is that
// an item written into "approved" yields no SVID, and that every such write is found by
// `ackd audit verify --live`.

let stack: TestStack;
let mcp: Client;
const agent = parseAgentId('demo-agent');

beforeAll(async () => {
  stack = await startTestStack({ limits: { requestsPerMinute: 10_000, openPending: 100 } });
  mcp = await stack.client();
});
afterAll(async () => {
  await stack?.stop();
});

const ddb = () => dynamoClient({ region: 'us-east-1', endpoint: stack.dynamodbEndpoint });
const S = (s: string): AttributeValue => ({ S: s });
const set = (pk: string, values: Record<string, unknown>) => writeItemFields(stack, pk, values);

/** A request, in the audit log (the sequencer has run). */
async function newRequest(): Promise<RequestId> {
  const { request_id } = await stack.deps.service.requestAuthorization({ agent_id: agent, action: 'drop the staging db', permissions: ['db:admin'], justification: 'reset', ttl_minutes: 30 });
  await stack.settled();
  return request_id;
}

/** Live verification with the audit key, once what was written is sequenced (the local sequencer signs tree heads as it goes). */
async function live(t: TestStack = stack) {
  await t.settled();
  const publicKey = (await import('../../lambdas/core/audit/signing.ts')).checkpointPublicKey(await t.deps.audit.publicKeyPem());
  return t.deps.audit.verifyLive({}, { publicKey });
}

/** A service call, then the sequencer: the log holds what the service did before the table is forged. */
async function done(call: Promise<unknown>): Promise<void> {
  await call;
  await stack.settled();
}

async function check(id: RequestId): Promise<CallToolResult> {
  return (await mcp.callTool({ name: 'check_authorization', arguments: { request_id: id } })) as CallToolResult;
}

const later = (min: number) => new Date(stack.clock.now().getTime() + min * 60_000).toISOString();

describe('a table writer cannot mint an SVID', () => {
  const forgeries: [string, (id: RequestId) => Promise<void>][] = [
    ['a pending request written as approved', async (id) => set(`req#${id}`, { decision: 'approved', approver_identity: 'operator:forged', decision_at: stack.clock.now().toISOString(), svid_expires_at: later(20) })],
    [
      'a denied request written as approved',
      async (id) => {
        await done(stack.deps.service.decide(id, 'denied', 'operator:bob'));
        await set(`req#${id}`, { decision: 'approved', approver_identity: 'operator:forged', svid_expires_at: later(20) });
      },
    ],
    [
      'an expired request written as approved',
      async (id) => {
        stack.clock.advance(31 * 60_000);
        await done(stack.deps.service.sweep());
        await set(`req#${id}`, { decision: 'approved', approver_identity: 'operator:forged', svid_expires_at: later(20) });
      },
    ],
    [
      'an approval given more permissions',
      async (id) => {
        await done(stack.deps.service.decide(id, 'approved', 'operator:alice'));
        await set(`req#${id}`, { permissions: ['db:admin', '*'] });
      },
    ],
    [
      'an approval moved onto another request of the agent (decision pointer rewritten)',
      async (id) => {
        const other = await newRequest();
 await done(stack.deps.service.decide(other, 'approved', 'operator:alice'));
        const o = (await readItem(stack, `req#${other}`))!;
        await set(`req#${id}`, { decision: 'approved', approver_identity: 'operator:alice', decision_at: o.decision_at, svid_expires_at: o.svid_expires_at, decision_seq: o.decision_seq });
      },
    ],
  ];

  for (const [name, forge] of forgeries) {
    it(name, async () => {
      const id = await newRequest();
      await forge(id);
      const r = await check(id);
      expect(r.isError, JSON.stringify(r.structuredContent)).toBe(true);
      expect((r.content as { text: string }[])[0]!.text).toMatch(/^ERR_NOT_APPROVED: /);
      expect((await stack.deps.service.get(id)).svid_id).toBeNull();
      const report = await live();
      expect(report.ok).toBe(false);
      expect(report.problems.some((p) => p.message.includes(id))).toBe(true);
    });
  }
});

describe('what a table writer changes is found by live verification', () => {
  it('an event changed in place fails at its seq; a deleted event is a gap; a forged checkpoint is refused', async () => {
    const fresh = await startTestStack();
    try {
      const id = (await fresh.deps.service.requestAuthorization({ agent_id: agent, action: 'x', permissions: ['p:q'], justification: 'j', ttl_minutes: 5 })).request_id;
      await fresh.settled(); // requested, then its consent mail (email_sent)
 await fresh.deps.service.decide(id, 'approved', 'operator:alice');
      await fresh.settled();
      const db = dynamoClient({ region: 'us-east-1', endpoint: fresh.dynamodbEndpoint });
      const key = (seq: number) => ({ pk: S(`audit#evt#${String(seq).padStart(12, '0')}`) });
      expect((await live(fresh)).problems).toEqual([]);

      await writeItemFields(fresh, `audit#evt#${String(3).padStart(12, '0')}`, { approver_identity: 'operator:mallory' });
      const changed = await live(fresh);
      expect(changed.problems[0]).toMatchObject({ kind: 'hash', seq: 3 });

      const original = await db.send(new GetItemCommand({ TableName: fresh.tableName, Key: key(2), ConsistentRead: true }));
      await db.send(new DeleteItemCommand({ TableName: fresh.tableName, Key: key(2) }));
      const deleted = await live(fresh);
      expect(deleted.problems.some((p) => p.kind === 'gap' && p.seq === 2)).toBe(true);
      await db.send(new PutItemCommand({ TableName: fresh.tableName, Item: original.Item! }));

      // A checkpoint not signed by the audit key.
      await db.send(
        new PutItemCommand({
          TableName: fresh.tableName,
          Item: { pk: S('audit#ckpt#000000000003'), v: { N: '1' }, seq: { N: '3' }, hash: S('f'.repeat(64)), logged_at: S(new Date().toISOString()), signed_at: S(new Date().toISOString()), key_id: S('0'.repeat(64)), alg: S('ECDSA_P256_SHA256'), signature: S('AAAA'), log_part: S('checkpoints'), log_key: S('000000000003') },
        }),
      );
      const forged = await fresh.deps.audit.verifyLive({}, { publicKey: (await import('../../lambdas/core/audit/signing.ts')).checkpointPublicKey(await fresh.deps.audit.publicKeyPem()) });
      expect(forged.problems.some((p) => p.kind === 'checkpoint')).toBe(true);
    } finally {
      await fresh.stop();
    }
  });

  it("an item's pointer into the chain rewritten, or removed, is found", async () => {
    const id = await newRequest();
    await done(stack.deps.service.decide(id, 'approved', 'operator:alice'));
    await set(`req#${id}`, { audit_seq: 1 });
    const moved = await live();
    expect(moved.problems.some((p) => p.kind === 'item' && p.message.includes(id))).toBe(true);
    await ddb().send(new UpdateItemCommand({ TableName: stack.tableName, Key: { pk: S(`req#${id}`) }, UpdateExpression: 'REMOVE audit_seq' }));
    const removed = await live();
    expect(removed.problems.some((p) => p.kind === 'item' && p.message.includes(`${id}: its item names no event`))).toBe(true);
  });

  it('an SVID issued again after its record was reset in the table is found (one request, one SVID)', async () => {
    const id = await newRequest();
    await done(stack.deps.service.decide(id, 'approved', 'operator:alice'));
    const first = await check(id);
    expect(first.isError).toBeFalsy();
    // Reset the item to "approved, not issued": the approval itself is genuine, so without a
    // signed decision ackd cannot tell; the chain now holds two SVIDs of one request, and says so.
    await stack.settled();
    await set(`req#${id}`, { svid_id: null });
    await check(id);
    await stack.settled();
    const report = await live();
    expect(report.problems.some((p) => p.kind === 'svid' && p.message.includes(id) && p.message.includes('one request gets one SVID'))).toBe(true);
  });
});
