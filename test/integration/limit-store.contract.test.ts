/**
 * The LimitStore contract, run against BOTH implementations: DynamoDB (real dynalite, the same
 * conditional writes as on AWS) and the in-memory store the core's unit tests use.
 */
import { describe, expect, it } from 'vitest';
import { dynaliteForSuite } from '../helpers/dynalite.ts';
import { dynamoClient } from '../../lambdas/adapters/dynamodb/client.ts';
import { DynamoLimitStore } from '../../lambdas/adapters/dynamodb/limits.ts';
import { ensureTable } from '../../lambdas/adapters/dynamodb/schema.ts';
import { MemoryLimitStore } from '../../lambdas/adapters/memory/limits.ts';
import type { RequestId } from '../../lambdas/core/ids.ts';
import type { LimitStore } from '../../lambdas/core/limits.ts';

const dynalite = dynaliteForSuite();

let tables = 0;
const impls: [string, () => Promise<LimitStore>][] = [
  [
    'DynamoLimitStore (dynalite)',
    async () => {
      const client = dynamoClient({ region: 'us-east-1', endpoint: dynalite.endpoint() });
      const name = `limits-${++tables}`;
      await ensureTable(client, name);
      return new DynamoLimitStore(client, name);
    },
  ],
  ['MemoryLimitStore', () => Promise.resolve(new MemoryLimitStore())],
];

const T0 = Date.parse('2026-11-30T03:10:00.000Z');
const id = (n: number) => `req_${String(n).padStart(26, '0')}` as RequestId;

describe.each(impls)('%s', (_name, make) => {
  it('take counts up to max and no further, also under concurrency; add is unconditional', async () => {
    const s = await make();
    const results = await Promise.all(Array.from({ length: 25 }, () => s.take('rate#a#1', 10, T0 + 86_400_000)));
    expect(results.filter((r) => r.taken)).toHaveLength(10);
    expect(results.filter((r) => !r.taken).every((r) => r.count === 10)).toBe(true);
    expect(await s.add('rate#a#1', -1, T0)).toBe(9);
    expect((await s.take('rate#a#1', 10, T0)).taken).toBe(true);
    expect((await s.take('rate#a#1', 10, T0)).taken).toBe(false);
    expect(await s.take('rate#b#1', 10, T0)).toEqual({ taken: true, count: 1 });
  });

  it('a slot has one holder at a time: taken when free or lapsed, replaced only from its exact holder, released only by it', async () => {
    const s = await make();
    const wins = await Promise.all(Array.from({ length: 10 }, (_, i) => s.putSlot('g', 0, `h${i}`, T0 + 1000, T0)));
    expect(wins.filter(Boolean)).toHaveLength(1);
    const [held] = await s.readSlots('g', 3);
    expect(held).toMatchObject({ slot: 0, untilMs: T0 + 1000, sinceMs: T0 });
    const holder = held!.holder;
    expect(await s.putSlot('g', 0, 'x', T0 + 2000, T0 + 999)).toBe(false); // still held
    expect(await s.putSlot('g', 0, 'x', T0 + 2000, T0 + 999, 'not-the-holder')).toBe(false);
    await s.releaseSlot('g', 0, 'not-the-holder'); // no effect
    expect((await s.readSlots('g', 1))[0]!.untilMs).toBe(T0 + 1000);
    expect(await s.putSlot('g', 0, 'y', T0 + 3000, T0 + 500, holder)).toBe(true); // compare-and-swap from the holder seen
    await s.releaseSlot('g', 0, 'y');
    const after = (await s.readSlots('g', 1)).filter((x) => x.untilMs > T0 + 500);
    expect(after).toEqual([]);
    expect(await s.putSlot('g', 0, 'z', T0 + 4000, T0 + 600)).toBe(true); // free again
    expect(await s.putSlot('g', 1, 'w', T0 + 10, T0)).toBe(true);
    expect(await s.putSlot('g', 1, 'v', T0 + 100, T0 + 10)).toBe(true); // lapsed by time
    expect((await s.readSlots('g', 5)).map((x) => [x.slot, x.holder])).toEqual([
      [0, 'z'],
      [1, 'v'],
    ]);
  });

  it('a set holds at most max members, also under concurrency; joining again is no new member; leave frees', async () => {
    const s = await make();
    const joined = await Promise.all(Array.from({ length: 12 }, (_, i) => s.join('open#a', `m${i}`, 5, T0 + 86_400_000)));
    expect(joined.filter(Boolean)).toHaveLength(5);
    const members = (await s.members('open#a')).sort();
    expect(members).toHaveLength(5);
    expect(await s.join('open#a', members[0]!, 5, T0)).toBe(true); // already a member
    expect(await s.join('open#a', 'late', 5, T0)).toBe(false);
    await s.leave('open#a', [members[0]!, members[1]!, 'never-joined']);
    expect((await s.members('open#a')).sort()).toEqual(members.slice(2));
    expect(await s.join('open#a', 'late', 5, T0)).toBe(true);
    await s.leave('open#a', await s.members('open#a'));
    expect(await s.members('open#a')).toEqual([]);
    expect(await s.members('open#other')).toEqual([]);
    await s.leave('open#other', ['x']);
    expect(await s.join('open#a', 'again', 1, T0)).toBe(true);
  });

  it('admit counts an attempt and joins the set in one write, both or neither, also under concurrency; count counts alone', async () => {
    const s = await make();
    const w = { start: T0, max: 15 };
    const ret = T0 + 86_400_000;
    // 25 at once, 10 places: 10 taken (each counted), 15 find the set full and are not counted.
    const burst = await Promise.all(Array.from({ length: 25 }, (_, i) => s.admit('open#r', `m${i}`, 10, w, ret)));
    expect(burst.filter((r) => r.outcome === 'taken')).toHaveLength(10);
    expect(burst.filter((r) => r.outcome === 'full')).toHaveLength(15);
    expect(burst.filter((r) => r.outcome === 'taken').map((r) => r.count).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(await s.members('open#r')).toHaveLength(10);
    // Counted alone, up to the window's max (concurrently too).
    const counted = await Promise.all(Array.from({ length: 8 }, () => s.count('open#r', w, ret)));
    expect(counted.filter((r) => r.taken)).toHaveLength(5);
    expect(counted.filter((r) => !r.taken).every((r) => r.count === 15)).toBe(true);
    // At the max: refused for the rate even where the set has room; nothing changes.
    const members = await s.members('open#r');
    await s.leave('open#r', [members[0]!]);
    expect(await s.admit('open#r', 'late', 10, w, ret)).toEqual({ outcome: 'rate', count: 15 });
    expect(await s.members('open#r')).toHaveLength(9);
    // The next window starts from zero; an older window than the item's counts in the item's.
    expect(await s.admit('open#r', 'late', 10, { start: T0 + 60_000, max: 15 }, ret)).toEqual({ outcome: 'taken', count: 1 });
    expect(await s.count('open#r', w, ret)).toEqual({ taken: true, count: 2 });
    expect(await s.admit('open#r', 'later', 10, { start: T0 + 60_000, max: 15 }, ret)).toEqual({ outcome: 'full', count: 2 });
    // Another set's rate is its own; a member already joined joins again without a place.
    expect(await s.admit('open#other', 'x', 1, w, ret)).toEqual({ outcome: 'taken', count: 1 });
    expect(await s.admit('open#other', 'x', 1, w, ret)).toEqual({ outcome: 'taken', count: 2 });
  });

  it('a digest queue is bounded, due once, claimed by one sender, and keeps what arrives while it is sent', async () => {
    const s = await make();
    const due = T0 + 600_000;
    for (let i = 1; i <= 3; i++) expect(await s.enqueueDigest('a@example.com', id(i), due + i, 3, due + 86_400_000)).toBe(true);
    expect(await s.enqueueDigest('a@example.com', id(2), due, 3, due)).toBe(true); // already queued: still fits
    expect(await s.enqueueDigest('a@example.com', id(4), due, 3, due)).toBe(false); // full: counted as overflow
    expect(await s.isQueued('a@example.com', id(2))).toBe(true);
    expect(await s.isQueued('a@example.com', id(4))).toBe(false);
    expect(await s.isQueued('b@example.com', id(2))).toBe(false);

    expect(await s.claimDueDigests(due - 1, 10, 60_000)).toEqual([]); // not due yet
    const [d, ...rest] = await s.claimDueDigests(due + 1, 10, 60_000); // due at the first enqueue's due
    expect(rest).toEqual([]);
    expect(d).toMatchObject({ recipient: 'a@example.com', requestIds: [id(1), id(2), id(3)], overflow: 1, attempts: 1 });
    expect(await s.claimDueDigests(due + 2, 10, 60_000)).toEqual([]); // claimed: nobody else gets it

    // A request queued while the digest is being sent goes into the next digest.
    expect(await s.enqueueDigest('a@example.com', id(5), due + 5, 3, due + 86_400_000)).toBe(false); // still full (3 queued)
    await s.completeDigest(d!, [id(1), id(2)], due + 600_000);
    expect(await s.isQueued('a@example.com', id(1))).toBe(false);
    expect(await s.isQueued('a@example.com', id(3))).toBe(true);
    expect(await s.claimDueDigests(due + 599_999, 10, 60_000)).toEqual([]);
    const [next] = await s.claimDueDigests(due + 600_000, 10, 60_000);
    expect(next).toMatchObject({ requestIds: [id(3)], overflow: 0, attempts: 1 });

    // A claim that is released (a failed send) or lapses is claimed again.
    await s.releaseDigest(next!);
    const [again] = await s.claimDueDigests(due + 600_001, 10, 60_000);
    expect(again).toMatchObject({ requestIds: [id(3)], attempts: 2 });
    const [lapsed] = await s.claimDueDigests(due + 660_002, 10, 60_000);
    expect(lapsed).toMatchObject({ requestIds: [id(3)], attempts: 3 });
    await s.completeDigest(again!, [id(3)], due); // the lapsed claim's holder can no longer complete it
    expect(await s.isQueued('a@example.com', id(3))).toBe(true);
    await s.completeDigest(lapsed!, [id(3)], due);
    expect(await s.isQueued('a@example.com', id(3))).toBe(false);
    expect(await s.claimDueDigests(due + 10_000_000, 10, 60_000)).toEqual([]);
  });

  it('concurrent claims of one due digest: exactly one sender', async () => {
    const s = await make();
    await s.enqueueDigest('c@example.com', id(9), T0, 10, T0 + 86_400_000);
    const claims = (await Promise.all(Array.from({ length: 8 }, () => s.claimDueDigests(T0 + 1, 10, 60_000)))).flat();
    expect(claims).toHaveLength(1);
  });
});
