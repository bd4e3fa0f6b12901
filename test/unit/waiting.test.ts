import { setMaxListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { MemoryRequestStore } from '../../lambdas/adapters/memory/store.ts';
import { parseAgentId, parseTrustDomain, type RequestId } from '../../lambdas/core/ids.ts';
import type { Logger, SvidMinter } from '../../lambdas/core/ports.ts';
import type { AuthorizationRecord } from '../../lambdas/core/request.ts';
import { AuthorizationService } from '../../lambdas/core/service.ts';
import { Waiting } from '../../lambdas/core/waiting.ts';
import { ManualClock } from '../helpers/clock.ts';

/** The in-memory store, recording every batched read (the ids of each) and able to fail them. */
class CountingStore extends MemoryRequestStore {
  readonly reads: RequestId[][] = [];
  failReads = false;
  private readonly readers: (() => void)[] = [];

  override getMany(ids: readonly RequestId[]): Promise<Map<RequestId, AuthorizationRecord>> {
    this.reads.push([...ids]);
    for (const r of this.readers.splice(0)) r();
    if (this.failReads) return Promise.reject(new Error('store down'));
    return super.getMany(ids);
  }

  /** Resolves at the next batched read. */
  nextRead(): Promise<void> {
    return new Promise((r) => this.readers.push(r));
  }

  /** Every id read since `from`. */
  idsReadSince(from: number): Set<RequestId> {
    return new Set(this.reads.slice(from).flat());
  }
}

const quiet: Logger & { warnings: string[] } = { warnings: [], info: () => undefined, warn: (m) => void quiet.warnings.push(m), error: () => undefined };
const noMint: SvidMinter = { mint: () => Promise.reject(new Error('no issuer in this test')), trustBundlePem: () => Promise.reject(new Error('no')) };
const agent = parseAgentId('demo-agent');
const never = () => new Promise<void>(() => undefined);

function setup(tickMs = 10) {
  const clock = new ManualClock(new Date());
  const store = new CountingStore(clock);
  const waiting = new Waiting({ store, clock, logger: quiet }, { tickMs });
  const service = new AuthorizationService(
    { trustDomain: parseTrustDomain('ackd.test'), consentBaseUrl: 'https://consent.example', retentionDays: 30 },
    { store, minter: noMint, clock, logger: quiet, waiting },
  );
  // Another process on the same store: its decisions wake nothing here.
  const elsewhere = new AuthorizationService(
    { trustDomain: parseTrustDomain('ackd.test'), consentBaseUrl: 'https://consent.example', retentionDays: 30 },
    { store, minter: noMint, clock, logger: quiet },
  );
  const ask = async (i = 0) => (await service.requestAuthorization({ agent_id: agent, action: `deploy ${i}`, permissions: ['deploy:prod'], justification: 'release', ttl_minutes: 30 })).request_id;
  const deny = (id: RequestId) => service.decide(id, 'denied', 'operator:test');
  return { clock, store, waiting, service, elsewhere, ask, deny };
}

const inSeconds = (s: number) => Date.now() + s * 1000;

describe('the shared long-poll', () => {
  it('reads every waited-on request in batches of 100 per tick, however many callers wait on each', async () => {
    const { store, waiting, ask } = setup();
    const ids = await Promise.all(Array.from({ length: 250 }, (_, i) => ask(i)));
    const ac = new AbortController();
    setMaxListeners(1000, ac.signal); // one signal for all 500 waits here; each HTTP call has its own
    // 250 requests, two callers on each: 500 waits.
    const waits = ids.flatMap((id) => [waiting.wait(agent, id, inSeconds(20), ac.signal), waiting.wait(agent, id, inSeconds(20), ac.signal)]);
    expect(waiting.waits).toBe(500);
    expect(waiting.waitingRequests).toBe(250);
    await store.nextRead();
    // One tick: three reads (the batches are read side by side), each id once.
    const tick = [...store.reads];
    expect(tick.map((b) => b.length).sort((a, b) => a - b)).toEqual([50, 100, 100]);
    expect(new Set(tick.flat())).toEqual(new Set(ids));
    await store.nextRead();
    expect(store.reads).toHaveLength(6);
    ac.abort();
    expect(await Promise.all(waits)).toEqual(waits.map(() => 'aborted'));
    expect(waiting.waits).toBe(0);
  });

  it('ends the waits of a request decided elsewhere at the next read, and only those', async () => {
    const { store, waiting, elsewhere, ask } = setup();
    const [a, b] = [await ask(1), await ask(2)];
    const ac = new AbortController();
    const waitA = waiting.wait(agent, a, inSeconds(20), ac.signal);
    const waitB = waiting.wait(agent, b, inSeconds(20), ac.signal);
    await elsewhere.decide(a, 'denied', 'operator:test');
    expect(await waitA).toBe('changed');
    await store.nextRead();
    expect(waiting.waits).toBe(1);
    ac.abort();
    expect(await waitB).toBe('aborted');
  });

  it('a request that reaches its deadline while waited on, or is gone, ends its waits too', async () => {
    const { store, waiting, clock, ask } = setup();
    const id = await ask();
    const w = waiting.wait(agent, id, inSeconds(20));
    clock.advanceMinutes(31);
    expect(await w).toBe('changed');
    const gone = 'req_0000000000000000000000gone' as RequestId;
    expect(await waiting.wait(agent, gone, inSeconds(20))).toBe('changed');
    expect(store.reads.flat()).toContain(gone);
  });

  it('wake ends the waits on a request at once, without waiting for a read', async () => {
    const { store, waiting, ask } = setup(60_000);
    const id = await ask();
    const waits = [waiting.wait(agent, id, inSeconds(20)), waiting.wait(agent, id, inSeconds(20))];
    waiting.wake(id);
    expect(await Promise.all(waits)).toEqual(['changed', 'changed']);
    expect(store.reads).toEqual([]);
    expect(waiting.waits).toBe(0);
  });

  it('an aborted wait is removed at once and never read again; with no waits left the poller stops', async () => {
    const { store, waiting, ask } = setup();
    const [kept, left] = [await ask(1), await ask(2)];
    const ac = new AbortController();
    const keptWait = waiting.wait(agent, kept, inSeconds(20));
    const leftWait = waiting.wait(agent, left, inSeconds(20), ac.signal);
    await store.nextRead();
    expect(store.idsReadSince(0)).toEqual(new Set([kept, left]));
    ac.abort();
    expect(await leftWait).toBe('aborted');
    expect(waiting.waitingRequests).toBe(1);
    const from = store.reads.length;
    await store.nextRead();
    await store.nextRead();
    expect(store.idsReadSince(from)).toEqual(new Set([kept]));
    // An already aborted signal never registers.
    expect(await waiting.wait(agent, left, inSeconds(20), AbortSignal.abort())).toBe('aborted');
    waiting.wake(kept);
    expect(await keptWait).toBe('changed');
    const after = store.reads.length;
    await new Promise((r) => setTimeout(r, 50)); // five ticks' time: nothing is read
    expect(store.reads.length).toBe(after);
  });

  it('a wait ends at its deadline; one past it does not register', async () => {
    const { store, waiting, ask } = setup(60_000);
    const id = await ask();
    expect(await waiting.wait(agent, id, Date.now() + 30)).toBe('deadline');
    expect(await waiting.wait(agent, id, Date.now() - 1)).toBe('deadline');
    expect(waiting.waits).toBe(0);
    expect(store.reads).toEqual([]);
  });

  it('a failed read is logged and the waits go on; the next tick reads again', async () => {
    const { store, waiting, ask, deny } = setup();
    const id = await ask();
    store.failReads = true;
    const w = waiting.wait(agent, id, inSeconds(20));
    await store.nextRead();
    await store.nextRead();
    expect(quiet.warnings).toContain('long-poll read failed; reading again at the next tick');
    store.failReads = false;
    await deny(id);
    expect(await w).toBe('changed');
  });

  it('stop ends every wait', async () => {
    const { waiting, ask } = setup(60_000);
    const id = await ask();
    const w = waiting.wait(agent, id, inSeconds(20));
    waiting.stop();
    expect(await w).toBe('aborted');
  });
});

describe('checkWaiting on the shared long-poll', () => {
  it('a decision made in this process answers the wait at once (no read needed)', async () => {
    const { service, store, ask, deny } = setup(60_000);
    const id = await ask();
    const waited = service.checkWaiting(agent, id, 20, never);
    await new Promise((r) => setTimeout(r, 10));
    await deny(id);
    expect(await waited).toEqual({ status: 'denied', payload_sha256: null });
    expect(store.reads).toEqual([]);
  });

  it('a request decided elsewhere is answered at the next tick; a caller that leaves stops its wait', async () => {
    const { service, store, elsewhere, ask } = setup();
    const decided = await ask(1);
    const polled = service.checkWaiting(agent, decided, 20, never);
    await store.nextRead();
    await elsewhere.decide(decided, 'denied', 'operator:test');
    expect(await polled).toEqual({ status: 'denied', payload_sha256: null });
    const id = await ask(2);
    const ac = new AbortController();
    const waited = service.checkWaiting(agent, id, 20, never, { signal: ac.signal });
    await store.nextRead();
    ac.abort();
    expect(await waited).toEqual({ status: 'pending', approvals: { have: 0, need: 1 }, payload_sha256: null });
    const from = store.reads.length;
    await new Promise((r) => setTimeout(r, 50));
    expect(store.reads.length).toBe(from);
  });

  it('without a shared poller the service makes its own, and its decisions wake it', async () => {
    const clock = new ManualClock(new Date());
    const store = new CountingStore(clock);
    const service = new AuthorizationService({ trustDomain: parseTrustDomain('ackd.test'), consentBaseUrl: 'https://c.example', retentionDays: 30 }, { store, minter: noMint, clock, logger: quiet });
    const { request_id } = await service.requestAuthorization({ agent_id: agent, action: 'x', permissions: ['p'], justification: 'j', ttl_minutes: 5 });
    const waited = service.checkWaiting(agent, request_id, 20, never);
    await new Promise((r) => setTimeout(r, 10));
    await service.decide(request_id, 'denied', 'operator:test');
    expect(await waited).toEqual({ status: 'denied', payload_sha256: null });
  });
});
