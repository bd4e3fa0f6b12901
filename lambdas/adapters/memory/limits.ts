import type { RequestId } from '../../core/ids.ts';
import type { ClaimedDigest, LimitStore, RateWindow, SlotState } from '../../core/limits.ts';
import { randomUUID } from 'node:crypto';

interface Digest {
  recipient: string;
  ids: Set<RequestId>;
  dueMs: number | null;
  overflow: number;
  attempts: number;
  claim: string | null;
  claimUntilMs: number;
}

/**
 * The LimitStore in one process's memory: for unit tests of the core, and for a single process
 * that has no table. Same semantics as the DynamoDB adapter (each method is atomic here because
 * it does not await between its read and its write).
 */
export class MemoryLimitStore implements LimitStore {
  readonly counters = new Map<string, number>();
  readonly slots = new Map<string, SlotState>();
  readonly digests = new Map<string, Digest>();
  readonly sets = new Map<string, Set<string>>();
  /** The rate kept on a set's item: its window's start and count. */
  readonly rates = new Map<string, { start: number; n: number }>();

  take(key: string, max: number): Promise<{ taken: boolean; count: number }> {
    const n = this.counters.get(key) ?? 0;
    if (n >= max) return Promise.resolve({ taken: false, count: n });
    this.counters.set(key, n + 1);
    return Promise.resolve({ taken: true, count: n + 1 });
  }

  add(key: string, delta: number): Promise<number> {
    const n = (this.counters.get(key) ?? 0) + delta;
    this.counters.set(key, n);
    return Promise.resolve(n);
  }

  readSlots(group: string, size: number): Promise<SlotState[]> {
    const out: SlotState[] = [];
    for (let i = 0; i < size; i++) {
      const s = this.slots.get(`${group}#${i}`);
      if (s) out.push(s);
    }
    return Promise.resolve(out);
  }

  putSlot(group: string, slot: number, holder: string, untilMs: number, nowMs: number, replace?: string): Promise<boolean> {
    const key = `${group}#${slot}`;
    const cur = this.slots.get(key);
    const free = !cur || cur.untilMs <= nowMs || (replace !== undefined && cur.holder === replace);
    if (!free) return Promise.resolve(false);
    this.slots.set(key, { slot, holder, untilMs, sinceMs: nowMs });
    return Promise.resolve(true);
  }

  releaseSlot(group: string, slot: number, holder: string): Promise<void> {
    const key = `${group}#${slot}`;
    if (this.slots.get(key)?.holder === holder) this.slots.delete(key);
    return Promise.resolve();
  }

  join(group: string, member: string, max: number): Promise<boolean> {
    const set = this.sets.get(group) ?? new Set<string>();
    if (!set.has(member) && set.size >= max) return Promise.resolve(false);
    set.add(member);
    this.sets.set(group, set);
    return Promise.resolve(true);
  }

  admit(group: string, member: string, size: number, window: RateWindow): Promise<{ outcome: 'taken' | 'rate' | 'full'; count: number }> {
    const rate = this.windowOf(group, window);
    if (rate.n >= window.max) return Promise.resolve({ outcome: 'rate', count: rate.n });
    const set = this.sets.get(group) ?? new Set<string>();
    if (!set.has(member) && set.size >= size) return Promise.resolve({ outcome: 'full', count: rate.n });
    set.add(member);
    this.sets.set(group, set);
    this.rates.set(group, { start: rate.start, n: rate.n + 1 });
    return Promise.resolve({ outcome: 'taken', count: rate.n + 1 });
  }

  count(group: string, window: RateWindow): Promise<{ taken: boolean; count: number }> {
    const rate = this.windowOf(group, window);
    if (rate.n >= window.max) return Promise.resolve({ taken: false, count: rate.n });
    this.rates.set(group, { start: rate.start, n: rate.n + 1 });
    return Promise.resolve({ taken: true, count: rate.n + 1 });
  }

  /** The window an attempt counts in: the stored one when it is this one or later, else a new one. */
  private windowOf(group: string, window: RateWindow): { start: number; n: number } {
    const r = this.rates.get(group);
    return r && r.start >= window.start ? r : { start: window.start, n: 0 };
  }

  members(group: string): Promise<string[]> {
    return Promise.resolve([...(this.sets.get(group) ?? [])]);
  }

  leave(group: string, members: readonly string[]): Promise<void> {
    const set = this.sets.get(group);
    for (const m of members) set?.delete(m);
    if (set?.size === 0) this.sets.delete(group);
    return Promise.resolve();
  }

  private digest(recipient: string): Digest {
    let d = this.digests.get(recipient);
    if (!d) {
      d = { recipient, ids: new Set(), dueMs: null, overflow: 0, attempts: 0, claim: null, claimUntilMs: 0 };
      this.digests.set(recipient, d);
    }
    return d;
  }

  enqueueDigest(recipient: string, requestId: RequestId, dueMs: number, cap: number): Promise<boolean> {
    const d = this.digest(recipient);
    if (!d.ids.has(requestId) && d.ids.size >= cap) {
      d.overflow++;
      return Promise.resolve(false);
    }
    d.ids.add(requestId);
    d.dueMs ??= dueMs;
    return Promise.resolve(true);
  }

  isQueued(recipient: string, requestId: RequestId): Promise<boolean> {
    return Promise.resolve(this.digests.get(recipient)?.ids.has(requestId) ?? false);
  }

  claimDueDigests(nowMs: number, limit: number, leaseMs: number): Promise<ClaimedDigest[]> {
    const out: ClaimedDigest[] = [];
    const due = [...this.digests.values()].filter((d) => d.dueMs !== null && d.dueMs <= nowMs).sort((a, b) => a.dueMs! - b.dueMs!);
    for (const d of due) {
      if (out.length >= limit) break;
      if (d.claim !== null && d.claimUntilMs > nowMs) continue;
      d.claim = randomUUID();
      d.claimUntilMs = nowMs + leaseMs;
      d.attempts++;
      out.push({ recipient: d.recipient, requestIds: [...d.ids], overflow: d.overflow, attempts: d.attempts, claim: d.claim });
    }
    return Promise.resolve(out);
  }

  completeDigest(c: ClaimedDigest, done: readonly RequestId[], nextDueMs: number): Promise<void> {
    const d = this.digests.get(c.recipient);
    if (!d || d.claim !== c.claim) return Promise.resolve();
    for (const id of done) d.ids.delete(id);
    d.claim = null;
    d.claimUntilMs = 0;
    d.attempts = 0;
    d.overflow = 0;
    d.dueMs = d.ids.size > 0 ? nextDueMs : null;
    return Promise.resolve();
  }

  releaseDigest(c: ClaimedDigest): Promise<void> {
    const d = this.digests.get(c.recipient);
    if (d && d.claim === c.claim) {
      d.claim = null;
      d.claimUntilMs = 0;
    }
    return Promise.resolve();
  }
}
