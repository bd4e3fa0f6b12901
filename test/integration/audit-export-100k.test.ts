import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BatchWriteCommand, DeleteCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointItem, eventItem, headItem, nodeItem } from '../../lambdas/adapters/dynamodb/audit.ts';
import { appendLeaves, leafHash, rootOf } from '../../lambdas/core/audit/merkle.ts';
import { dynamoClient } from '../../lambdas/adapters/dynamodb/client.ts';
import { documentClient } from '../../lambdas/adapters/dynamodb/send.ts';
import { LocalKeySigner } from '../../lambdas/adapters/signing/local.ts';
import { auditEvent, chainEvent, GENESIS_HASH, snapshotOf, type AuditEvent, type AuditSnapshot } from '../../lambdas/core/audit/event.ts';
import type { AgentId, RequestId } from '../../lambdas/core/ids.ts';
import { signCheckpoint } from '../../lambdas/core/audit/signing.ts';
import { pendingRecord } from '../helpers/consent-fixtures.ts';
import { cliEnv, runAckd } from '../helpers/cli.ts';
import { startTestStack, type TestStack } from '../helpers/local-stack.ts';

// 100,000 events (25,000 lifecycles over a month boundary, a signed checkpoint every 10,000) are
// loaded straight into dynalite with the adapter's own item shapes, then exported and verified by
// the real CLI in a child process whose V8 heap is capped far below the size of the log: an
// exporter or verifier that held the log in memory would die of it.

const EVENTS = 100_000;
const HEAP_CAP_MB = 96;

let stack: TestStack;
let env: NodeJS.ProcessEnv;
let keyFile: string;

beforeAll(async () => {
  stack = await startTestStack({ consent: false });
  const signer = LocalKeySigner.fileCreatingOnce(stack.auditKeyPath);
  keyFile = join(stack.dir, 'audit-public.pem');
  await writeFile(keyFile, await signer.publicKeyPem());
  env = cliEnv(stack, { NODE_OPTIONS: `--max-old-space-size=${HEAP_CAP_MB}` });

  const doc = documentClient(dynamoClient({ region: 'us-east-1', endpoint: stack.dynamodbEndpoint }));
  // The log is this test's alone: the stack's own first event (its demo key's creation), the tree
  // head and checkpoint it signed are taken out, with its sequencer stopped, before the load.
  await stack.settled();
  await stack.deps.sequencerLoop.stop();
  for (let start: Record<string, unknown> | undefined, more = true; more; ) {
    const page = await doc.send(new ScanCommand({ TableName: stack.tableName, FilterExpression: 'begins_with(pk, :a)', ExpressionAttributeValues: { ':a': 'audit#' }, ProjectionExpression: 'pk', ConsistentRead: true, ExclusiveStartKey: start }));
    for (const it of page.Items ?? []) await doc.send(new DeleteCommand({ TableName: stack.tableName, Key: { pk: it.pk } }));
    start = page.LastEvaluatedKey;
    more = start !== undefined;
  }
  let prev = { seq: 0, hash: GENESIS_HASH, logged_at: null as string | null };
  const start = Date.parse('2026-09-30T23:00:00.000Z');
  const batch: Record<string, unknown>[] = [];
  const inflight: Promise<unknown>[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    let items = batch.splice(0, 25).map((Item) => ({ PutRequest: { Item } }));
    const write = (async () => {
      while (items.length > 0) {
        const out = await doc.send(new BatchWriteCommand({ RequestItems: { [stack.tableName]: items } }));
        items = (out.UnprocessedItems?.[stack.tableName] as typeof items | undefined) ?? [];
      }
    })();
    inflight.push(write);
    if (inflight.length >= 4) await Promise.all(inflight.splice(0));
  };
  let first: AuditEvent | undefined;
  let last: AuditEvent | undefined;
  let frontier: string[] = [];
  for (let i = 0; prev.seq < EVENTS; i++) {
    const at = (k: number) => new Date(start + (prev.seq + k) * 60);
    const snap = snapshotOf(
      pendingRecord(
        {
          request_id: `req_${String(i).padStart(26, '0')}` as RequestId,
          agent_id: `agent-${i % 50}` as AgentId,
          action: `deploy build ${i} to production`,
          permissions: ['deploy:prod', 'read:logs'],
          justification: 'release train; ticket OPS-1234',
        },
        at(0),
      ),
    );
    const vote = { voter: `sub-${i % 7}`, email: null, vote: 'approve' as const, at: at(2).toISOString(), groups: [] };
    const approved = { ...snap, decision: 'approved', approver_identity: `sub-${i % 7}`, decision_at: at(2).toISOString(), svid_expires_at: at(10_000).toISOString(), votes: [vote] } as AuditSnapshot;
    const steps: [Parameters<typeof auditEvent>, AuditSnapshot][] = [
      [['requested', { type: 'agent', id: snap.agent_id }, at(0)], snap],
      [['email_sent', { type: 'system', id: 'ackd' }, at(1)], snap],
      [['approved', { type: 'approver', id: `sub-${i % 7}` }, at(2)], approved],
      [['svid_issued', { type: 'agent', id: snap.agent_id }, at(3)], { ...approved, svid_id: i.toString(16) } as AuditSnapshot],
    ];
    for (const [args, s] of steps) {
      const e = chainEvent(auditEvent(...args), s, prev, args[2]);
      first ??= e;
      last = e;
      prev = e;
      batch.push(eventItem(e, 365));
      // The Merkle tree as the sequencer builds it; the nodes the checkpoints' consistency proofs
      // read are those of 16 leaves and up (every checkpoint is at a multiple of 16).
      const grown = appendLeaves(frontier, e.seq - 1, [leafHash(e.hash)]);
      frontier = grown.frontier;
      for (const n of grown.nodes) if (n.level >= 4) batch.push(nodeItem(n));
      if (e.seq % 10_000 === 0) batch.push(checkpointItem(await signCheckpoint(signer, { ...e, root: rootOf(frontier) }, args[2]), 365));
      while (batch.length >= 25) await flush();
    }
  }
  while (batch.length > 0) await flush();
  await Promise.all(inflight);
  batch.push(headItem({ size: last!.seq, hash: last!.hash, logged_at: last!.logged_at, root: rootOf(frontier), frontier, settled: last!.seq, first_logged_at: first!.logged_at }));
  await flush();
  await Promise.all(inflight);
}, 600_000);

afterAll(async () => {
  await stack?.stop();
});

describe('audit export of 100,000 events', () => {
  it(`streams to a file and round-trips through verify, each in a ${HEAP_CAP_MB} MB heap`, async () => {
    const file = join(stack.dir, 'all.jsonl');
    const exp = await runAckd(env, 'audit', 'export', '--out', file);
    expect(exp.code, exp.stderr).toBe(0);
    expect(exp.stderr).toContain(`exported ${EVENTS} events (seq 1–${EVENTS}) and 10 checkpoint(s)`);
    // The file is far larger than what a capped heap could hold as objects.
    expect((await stat(file)).size).toBeGreaterThan(50 * 1024 * 1024);

    const v = await runAckd(env, 'audit', 'verify', file, '--public-key', keyFile, '--json', '--strict');
    expect(v.code, v.stdout.slice(0, 2000) + v.stderr).toBe(0);
    const report = JSON.parse(v.stdout) as Record<string, unknown>;
    expect(report).toMatchObject({ ok: true, events: EVENTS, first_seq: 1, last_seq: EVENTS, start: 'genesis', checkpoints: 10, signed_through: EVENTS, unsigned_tail: 0, svids_issued: EVENTS / 4 });
  }, 600_000);

  it('a window across the month boundary is exactly the events logged in it, anchored by the checkpoints around it', async () => {
    const file = join(stack.dir, 'window.jsonl');
    // 2026-10-01T00:00Z is event 60,001 (one event every 60 ms from 23:00).
    const r = await runAckd(env, 'audit', 'export', '--since', '2026-09-30T23:59:00Z', '--until', '2026-10-01T00:01:00Z', '--out', file);
    expect(r.code, r.stderr).toBe(0);
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as { kind: string; seq?: number; logged_at?: string });
    const events = lines.filter((l) => l.kind === 'event');
    // Widened to the checkpoints at 50,000 and 70,000 so both ends are signed.
    expect(lines[0]).toMatchObject({ kind: 'checkpoint', seq: 50_000 });
    expect(events[0]!.seq).toBe(50_001);
    expect(events.at(-1)!.seq).toBe(70_000);
    const inWindow = events.filter((e) => e.logged_at! >= '2026-09-30T23:59:00.000Z' && e.logged_at! < '2026-10-01T00:01:00.000Z');
    expect(inWindow[0]!.seq).toBe(59_001);
    expect(inWindow).toHaveLength(2000);
    const v = await runAckd(env, 'audit', 'verify', file, '--public-key', keyFile, '--strict', '--json');
    expect(v.code, v.stdout.slice(0, 2000)).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, start: 'checkpoint', signed_through: 70_000, unsigned_tail: 0 });
  }, 300_000);
});
