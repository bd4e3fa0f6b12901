import { describe, expect, it } from 'vitest';
import { MemoryRequestStore } from '../../lambdas/adapters/memory/store.ts';
import { auditEvent } from '../../lambdas/core/audit/event.ts';
import { Sequencer, SequencerLoop, type SequencerStore } from '../../lambdas/core/audit/sequencer.ts';
import { ChainVerifier } from '../../lambdas/core/audit/verify.ts';
import type { AgentId, RequestId } from '../../lambdas/core/ids.ts';
import type { Logger } from '../../lambdas/core/ports.ts';
import { pendingRecord } from '../helpers/consent-fixtures.ts';

const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
const clock = { now: () => new Date() };
const id = (n: number) => `req_${String(n).padStart(26, '0')}` as RequestId;

async function create(store: MemoryRequestStore, n: number): Promise<void> {
  const now = clock.now();
  await store.create(pendingRecord({ request_id: id(n), agent_id: 'deploy-bot' as AgentId, requested_at: now.toISOString() }, now), 0, auditEvent('requested', { type: 'agent', id: 'deploy-bot' }, now));
}

/** Every method call of the sequencer's store, by name. */
function counted(store: SequencerStore): { store: SequencerStore; calls: string[] } {
  const calls: string[] = [];
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        calls.push(String(prop));
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: proxy, calls };
}

async function verified(store: MemoryRequestStore): Promise<number> {
  const head = await store.head();
  const v = new ChainVerifier();
  for await (const e of store.events(1, head.seq)) v.addEvent(structuredClone(e));
  expect(v.finish().problems).toEqual([]);
  return head.seq;
}

describe('Sequencer', () => {
  it('a nudged run of one batch: no look-ahead, no empty re-read, the head written twice (the second gives the lease back)', async () => {
    const mem = new MemoryRequestStore(clock, { autoSequence: false });
    for (let i = 1; i <= 5; i++) await create(mem, i);
    const { store, calls } = counted(mem);
    const run = await new Sequencer({ store, clock, logger: quiet, sealer: mem.sealer }).run({ nudged: true });
    expect(run.sequenced).toBe(5);
    expect(calls.filter((c) => c !== 'settleRequest')).toEqual(['acquire', 'pending', 'putEvents', 'putNodes', 'advance', 'advance']);
    expect(calls.filter((c) => c === 'settleRequest')).toHaveLength(5);
    // The lease is free again: another run can take it at once.
    expect(await mem.acquire('other', Date.now(), Date.now() + 1000)).not.toBeNull();
    await mem.release('other');
    expect(await verified(mem)).toBe(5);
  });

  it("a request's next event replays from the snapshot this sequencer logged last, without reading it back; another sequencer reads it", async () => {
    const mem = new MemoryRequestStore(clock, { autoSequence: false });
    await create(mem, 1);
    const { store, calls } = counted(mem);
    const sequencer = new Sequencer({ store, clock, logger: quiet, sealer: mem.sealer });
    await sequencer.run({ nudged: true });
    const now = clock.now();
    await mem.apply('deny', id(1), { now: now.toISOString(), approver: 'sub-alice', email: null, svidExpiresAt: null, vote: { voter: 'sub-alice', email: null, vote: 'deny', at: now.toISOString(), groups: [] }, seen: 0 }, auditEvent('denied', { type: 'approver', id: 'sub-alice' }, now));
    calls.length = 0;
    await sequencer.run({ nudged: true });
    expect(calls).not.toContain('eventsAt');
    expect(await verified(mem)).toBe(2);
    await mem.apply('recordRefusal', id(1), {}, auditEvent('refused', { type: 'agent', id: 'deploy-bot' }, clock.now(), 'test'));
    const other = counted(mem);
    await new Sequencer({ store: other.store, clock, logger: quiet, sealer: mem.sealer }).run({ nudged: true });
    expect(other.calls).toContain('eventsAt');
    expect(await verified(mem)).toBe(3);
  });

  it('an idle timer run reads twice and writes nothing', async () => {
    const mem = new MemoryRequestStore(clock, { autoSequence: false });
    const { store, calls } = counted(mem);
    const run = await new Sequencer({ store, clock, logger: quiet, sealer: mem.sealer }).run();
    expect(run.sequenced).toBe(0);
    expect(calls.sort()).toEqual(['peekHead', 'pending']);
  });

  it('slots a stopped run wrote beyond the head are found by the next put, adopted, and nothing is sequenced twice', async () => {
    const mem = new MemoryRequestStore(clock, { autoSequence: false });
    for (let i = 1; i <= 3; i++) await create(mem, i);
    // A run that wrote its events and stopped before the head moved.
    let stop = true;
    const dying = new Proxy(mem as SequencerStore, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (prop === 'putNodes') return () => (stop ? Promise.reject(new Error('process killed')) : (v as () => Promise<void>).apply(target, []));
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    await expect(new Sequencer({ store: dying, clock, logger: quiet, sealer: mem.sealer }).run({ nudged: true })).rejects.toThrow('process killed');
    expect((await mem.head()).seq).toBe(0);
    stop = false;
    // More writes meanwhile; the next run meets the taken slot 1, adopts 1–3, then sequences the rest.
    for (let i = 4; i <= 5; i++) await create(mem, i);
    const run = await new Sequencer({ store: mem, clock, logger: quiet, sealer: mem.sealer }).run({ nudged: true });
    expect(run.recovered).toBeGreaterThanOrEqual(3); // adopted, then settled
    expect(run.sequenced).toBe(2);
    expect(await verified(mem)).toBe(5);
    expect(await mem.pending(10)).toEqual([]);
    const ids = [];
    for await (const e of mem.events(1, 5)) ids.push(e.request_id);
    expect(new Set(ids).size).toBe(5);
  });
});

describe('SequencerLoop', () => {
  it('writes that nudge within the batch window share one run; each nudge resolves once its events are in the log', async () => {
    const mem = new MemoryRequestStore(clock, { autoSequence: false });
    let runs = 0;
    const sequencer = new Sequencer({ store: mem, clock, logger: quiet, sealer: mem.sealer });
    const run = sequencer.run.bind(sequencer);
    sequencer.run = (o) => {
      runs++;
      return run(o);
    };
    const loop = new SequencerLoop(sequencer, { intervalMs: 60_000, logger: quiet, batchWindowMs: 100 });
    loop.start();
    try {
      await create(mem, 1);
      await loop.nudge(); // the first run starts at once
      expect(runs).toBe(1);
      const nudges: Promise<void>[] = [];
      for (let i = 2; i <= 11; i++) {
        await create(mem, i);
        nudges.push(loop.nudge()!);
      }
      await Promise.all(nudges);
      expect(runs).toBe(2);
      expect(await verified(mem)).toBe(11);
    } finally {
      await loop.stop();
    }
  });

  it('stop ends a run waiting for its window and resolves its nudges', async () => {
    const mem = new MemoryRequestStore(clock, { autoSequence: false });
    const loop = new SequencerLoop(new Sequencer({ store: mem, clock, logger: quiet, sealer: mem.sealer }), { intervalMs: 60_000, logger: quiet, batchWindowMs: 10_000 });
    loop.start();
    await create(mem, 1);
    await loop.nudge();
    await create(mem, 2);
    const waiting = loop.nudge()!;
    await loop.stop();
    await waiting;
    expect((await mem.head()).seq).toBe(1);
  });
});
