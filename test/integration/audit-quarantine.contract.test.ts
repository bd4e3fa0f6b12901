/**
 * Listing quarantine records (AuditLog.quarantineRecords), run against BOTH implementations: the
 * DynamoDB adapter over real dynalite (the audit-log index's `quarantine#<day>` partitions,
 * queried and counted page by page) and the in-memory store the core's unit tests use. Records
 * are made the way the sequencer makes them (quarantineAdmin), at times of a manual clock.
 */
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { dynaliteForSuite } from '../helpers/dynalite.ts';
import { dynamoClient } from '../../lambdas/adapters/dynamodb/client.ts';
import { DynamoAuditLog } from '../../lambdas/adapters/dynamodb/audit.ts';
import { ensureTable, TABLE } from '../../lambdas/adapters/dynamodb/schema.ts';
import { documentClient } from '../../lambdas/adapters/dynamodb/send.ts';
import { MemoryRequestStore } from '../../lambdas/adapters/memory/store.ts';
import { QUARANTINE_ENTRY_MAX_BYTES, type QuarantineQuery } from '../../lambdas/core/audit/quarantine.ts';
import type { AuditLog } from '../../lambdas/core/audit/ports.ts';
import type { SequencerStore } from '../../lambdas/core/audit/sequencer.ts';
import { ManualClock } from '../helpers/clock.ts';
import type { RequestId } from '../../lambdas/core/ids.ts';

const dynalite = dynaliteForSuite();

type Store = AuditLog & SequencerStore;
interface Made {
  readonly store: Store;
  readonly clock: ManualClock;
  /** The raw table items (DynamoDB only). */
  readonly items?: () => Promise<Record<string, unknown>[]>;
}

const START = '2026-11-28T10:00:00.000Z';
let tables = 0;
const impls: [string, () => Promise<Made>][] = [
  [
    'DynamoAuditLog (dynalite)',
    async () => {
      const client = dynamoClient({ region: 'us-east-1', endpoint: dynalite.endpoint() });
      const name = `quarantine-${++tables}`;
      await ensureTable(client, name);
      const clock = new ManualClock(START);
      const doc = documentClient(client);
      const items = async () => (await doc.send(new ScanCommand({ TableName: name, ConsistentRead: true }))).Items ?? [];
      return { store: new DynamoAuditLog(doc, name, { clock, retentionDays: 30 }), clock, items };
    },
  ],
  [
    'MemoryRequestStore',
    () => {
      const clock = new ManualClock(START);
      return Promise.resolve({ store: new MemoryRequestStore(clock, { autoSequence: false }), clock });
    },
  ],
];

/** A forged operator change as a table writer would put it (with a seal that is not one). */
function forged(n: number, pad = 0): Record<string, unknown> {
  return { event: { event_id: `evt_forged_${n}`, type: 'tool_call', at: START, actor: { type: 'agent', id: 'demo-agent' } }, change: { call: { tool: 'delete_repo', pad: 'x'.repeat(pad) } }, seal: `v1.${'A'.repeat(43)}` };
}

const all = (over: Partial<QuarantineQuery> = {}): QuarantineQuery => ({ since: '2026-11-01T00:00:00.000Z', order: 'newest', limit: 100, ...over });
const ids = (p: { records: readonly { source: string }[] }) => p.records.map((r) => r.source.replace('audit#admin#evt_forged_', ''));

describe.each(impls)('%s', (_name, make) => {
  it('an empty quarantine lists nothing', async () => {
    const { store } = await make();
    expect(await store.quarantineRecords(all())).toEqual({ records: [], more: 0, more_exact: true });
  });

  it('lists what was quarantined, as kept, newest or oldest first across days, in [since, until), with how many more', async () => {
    const { store, clock, items } = await make();
    const q = (n: number, reason: 'mismatch' | 'duplicate' = 'mismatch') => store.quarantineAdmin(`evt_forged_${n}`, forged(n), reason, `refused ${n}`);
    await q(1); // 2026-11-28T10:00:00.000Z
    clock.advance(1);
    await q(2, 'duplicate'); // …10:00:00.001Z
    clock.advance(14 * 3_600_000 - 2); // 2026-11-28T23:59:59.999Z
    await q(3);
    clock.advance(1); // 2026-11-29T00:00:00.000Z
    await q(4);
    clock.advance(2 * 86_400_000); // 2026-12-01 (a day with none between)
    await q(5);

    const newest = await store.quarantineRecords(all());
    expect(ids(newest)).toEqual(['5', '4', '3', '2', '1']);
    expect(newest).toMatchObject({ more: 0, more_exact: true });
    expect(ids(await store.quarantineRecords(all({ order: 'oldest' })))).toEqual(['1', '2', '3', '4', '5']);
    const second = newest.records.find((r) => r.source === 'audit#admin#evt_forged_2')!;
    expect(second).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{64}$/) as string,
      source: 'audit#admin#evt_forged_2',
      reason: 'duplicate',
      message: 'refused 2',
      entry: forged(2),
      entry_bytes: expect.any(Number) as number,
      entry_sha256: expect.stringMatching(/^[0-9a-f]{64}$/) as string,
      quarantined_at: '2026-11-28T10:00:00.001Z',
    });

    // since is inclusive, until exclusive, to the millisecond; across the day boundary.
    expect(ids(await store.quarantineRecords(all({ since: '2026-11-28T10:00:00.001Z', until: '2026-11-29T00:00:00.000Z' })))).toEqual(['3', '2']);
    expect(ids(await store.quarantineRecords(all({ since: '2026-11-28T23:59:59.999Z', until: '2026-11-29T00:00:00.001Z', order: 'oldest' })))).toEqual(['3', '4']);
    expect(ids(await store.quarantineRecords(all({ since: '2026-11-29T00:00:00.001Z', until: '2026-12-01T00:00:00.000Z' })))).toEqual([]);

    // The limit, from either end, says how many more the window holds.
    expect(await store.quarantineRecords(all({ limit: 2 }))).toMatchObject({ more: 3, more_exact: true });
    expect(ids(await store.quarantineRecords(all({ limit: 2 })))).toEqual(['5', '4']);
    expect(ids(await store.quarantineRecords(all({ limit: 3, order: 'oldest' })))).toEqual(['1', '2', '3']);
    expect(await store.quarantineRecords(all({ limit: 4, since: '2026-11-28T10:00:00.001Z' }))).toMatchObject({ more: 0 });
    expect(await store.quarantineRecords(all({ limit: 1, until: '2026-11-29T00:00:00.000Z', order: 'oldest' }))).toMatchObject({ more: 2, more_exact: true });

    // In the table: the audit-log index's own day partitions, keyed by time and digest.
    if (items) {
      const kept = (await items()).filter((it) => String(it.pk).startsWith('audit#quarantine#'));
      expect(kept).toHaveLength(5);
      for (const it of kept) {
        expect(it[TABLE.auditLog.partitionKey]).toBe(`quarantine#${String(it.quarantined_at).slice(0, 10)}`);
        expect(it[TABLE.auditLog.sortKey]).toBe(`${String(it.quarantined_at)}#${String(it.pk).slice('audit#quarantine#'.length)}`);
        expect(typeof it[TABLE.ttlAttribute]).toBe('number');
      }
    }
  });

  it('the same entry from the same place quarantined again is one record, at its newest time', async () => {
    const { store, clock } = await make();
    await store.quarantineAdmin('evt_forged_1', forged(1), 'mismatch', 'first');
    clock.advance(86_400_000);
    await store.quarantineAdmin('evt_forged_1', forged(1), 'duplicate', 'again');
    const p = await store.quarantineRecords(all());
    expect(p.records.map((r) => [r.reason, r.message, r.quarantined_at])).toEqual([['duplicate', 'again', '2026-11-29T10:00:00.000Z']]);
    expect(await store.quarantineRecords(all({ until: '2026-11-29T00:00:00.000Z' }))).toMatchObject({ records: [], more: 0 });
  });

  it('a request item changed since it was read (or gone) is not updated, but what was refused is kept all the same', async () => {
    const { store } = await make();
    const entry = forged(7) as never;
    const id = 'req_01JZZZZZZZZZZZZZZZZZZZZZZZ' as RequestId;
    expect(await store.quarantineRequest(id, [{ index: 0, entry, reason: 'missing', message: 'no seal' }], { audit_outbox: [entry] })).toBeNull();
    expect((await store.quarantineRecords(all())).records.map((r) => [r.source, r.reason])).toEqual([[`req#${id}`, 'missing']]);
  });

  it('records of the same millisecond are listed by their digest; a too large entry is listed by its digest and size', async () => {
    const { store } = await make();
    for (const n of [1, 2, 3]) await store.quarantineAdmin(`evt_forged_${n}`, forged(n), 'mismatch', 'same time');
    const huge = forged(9, QUARANTINE_ENTRY_MAX_BYTES);
    await store.quarantineAdmin('evt_forged_9', huge, 'mismatch', 'huge');
    const oldest = await store.quarantineRecords(all({ order: 'oldest' }));
    expect(oldest.records.map((r) => r.id)).toEqual(oldest.records.map((r) => r.id).sort());
    expect((await store.quarantineRecords(all())).records.map((r) => r.id)).toEqual(oldest.records.map((r) => r.id).reverse());
    const big = oldest.records.find((r) => r.message === 'huge')!;
    expect(big.entry).toBeNull();
    expect(big.entry_bytes).toBeGreaterThan(QUARANTINE_ENTRY_MAX_BYTES);
    expect(big.entry_sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('a day of more records than one page of the store holds is read and counted page by page', async () => {
    const { store, clock } = await make();
    // 14 entries of ~100 KB in one day: over 1 MB, more than DynamoDB (and dynalite) returns in one page.
    for (let n = 0; n < 14; n++) {
      await store.quarantineAdmin(`evt_forged_${n}`, forged(n, 100_000), 'mismatch', `big ${n}`);
      clock.advance(1000);
    }
    const p = await store.quarantineRecords(all({ limit: 3 }));
    expect(ids(p)).toEqual(['13', '12', '11']);
    expect(p).toMatchObject({ more: 11, more_exact: true });
    const every = await store.quarantineRecords(all({ limit: 14, order: 'oldest' }));
    expect(ids(every)).toEqual(Array.from({ length: 14 }, (_, n) => String(n)));
    expect(every.more).toBe(0);
  });
});
