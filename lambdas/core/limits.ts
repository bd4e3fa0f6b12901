import { createHash, randomUUID } from 'node:crypto';
import { AckdError } from './errors.ts';
import type { AgentId, RequestId } from './ids.ts';
import type { ApprovalNotifier, Clock, RequestStore } from './ports.ts';
import type { AuthorizationRecord } from './request.ts';
import type { ActorType } from './audit/event.ts';

/**
 * Flood limits. They hold across every process that shares the store (every Lambda instance):
 * counters and slots live in the store and change only by single-item conditional writes.
 * They bound what one agent (or one flood aimed at one approver) can cost; they are not an
 * access control against someone who can write to the table.
 */
export interface LimitsConfig {
  /** request_authorization attempts per agent per clock minute (fixed window). */
  readonly requestsPerMinute: number;
  /** Requests per agent awaiting a decision at once. */
  readonly openPending: number;
  /** check_authorization long-polls (wait_seconds > 0) per agent at once. */
  readonly concurrentWaits: number;
  /** Individual consent mails per approver per mail window; beyond it, requests go into one digest. */
  readonly mailsPerApprover: number;
  readonly mailWindowMinutes: number;
  /** Refused attempts recorded as audit events per request and per kind of actor; beyond, only counted. */
  readonly refusalsPerRequest: number;
  /** Refused attempts of one agent recorded as audit events per clock hour, over all its requests; beyond, only counted. */
  readonly refusalsPerAgentPerHour: number;
  /** Tool calls one agent (a gateway) may record per clock minute as tool_call events (record_tool_calls). */
  readonly toolCallsPerMinute: number;
}

export const DEFAULT_LIMITS: LimitsConfig = {
  requestsPerMinute: 30,
  openPending: 20,
  concurrentWaits: 10,
  mailsPerApprover: 10,
  mailWindowMinutes: 10,
  refusalsPerRequest: 10,
  refusalsPerAgentPerHour: 60,
  toolCallsPerMinute: 6000,
};

/** Ranges of the settings. */
export const LIMIT_RANGES = {
  requestsPerMinute: [1, 10_000],
  openPending: [1, 1000],
  concurrentWaits: [1, 100],
  mailsPerApprover: [1, 1000],
  mailWindowMinutes: [1, 1440],
  refusalsPerRequest: [0, 1000],
  refusalsPerAgentPerHour: [0, 100_000],
  toolCallsPerMinute: [1, 1_000_000],
} as const satisfies Record<keyof LimitsConfig, readonly [number, number]>;

/** A fixed window of a rate kept on a set's item: its start (epoch ms; a later one replaces the count) and its most attempts. */
export interface RateWindow {
  readonly start: number;
  readonly max: number;
}

/** A slot as the store holds it: who holds it, until when (epoch ms), since when (epoch ms). */
export interface SlotState {
  readonly slot: number;
  readonly holder: string;
  readonly untilMs: number;
  readonly sinceMs: number;
}

/** A digest the caller has claimed (leased) for sending. */
export interface ClaimedDigest {
  readonly recipient: string;
  readonly requestIds: readonly RequestId[];
  /** Requests that did not fit into the queue. */
  readonly overflow: number;
  /** Attempts to send this digest so far, this one included. */
  readonly attempts: number;
  readonly claim: string;
}

/**
 * Where the limits keep their state. Every method is one conditional write (or a read); an
 * implementation translates vendor failures into ERR_STORE_UNAVAILABLE.
 */
export interface LimitStore {
  /** Adds one to counter `key` if it is below `max`. `count` is the value after (taken) or as found (refused). */
  take(key: string, max: number, retainUntilMs: number): Promise<{ taken: boolean; count: number }>;
  /** Adds `delta` to counter `key` unconditionally; returns the new value. */
  add(key: string, delta: number, retainUntilMs: number): Promise<number>;
  /** The held slots of `group` among slots 0 … size-1 (consistent read). */
  readSlots(group: string, size: number): Promise<SlotState[]>;
  /**
   * Takes slot `slot` of `group` for `holder` until `untilMs`: only if it is free at `nowMs`
   * (absent or past its `until`), or — with `replace` — still held by exactly `replace`.
   */
  putSlot(group: string, slot: number, holder: string, untilMs: number, nowMs: number, replace?: string): Promise<boolean>;
  /** Frees the slot if `holder` still holds it. */
  releaseSlot(group: string, slot: number, holder: string): Promise<void>;
  /**
   * Adds `member` to the set `group` if the set has fewer than `max` members (or already holds
   * it); false, changing nothing, when it is full. One conditional write.
   */
  join(group: string, member: string, max: number, retainUntilMs: number): Promise<boolean>;
  /** The members of set `group` (consistent read). */
  members(group: string): Promise<string[]>;
  /**
   * Counts one attempt in the fixed window starting at `window.start` (epoch ms) on set `group`'s
   * item, while that window's count is below `window.max`, AND adds `member` to the set, while it
   * has fewer than `size` members (or holds it already): ONE conditional write, both or neither.
   * `taken`: both done; `rate`: the window's count is at its max; `full`: the set is full (and the
   * count below its max). `count`: the window's count after (taken) or as found.
   */
  admit(group: string, member: string, size: number, window: RateWindow, retainUntilMs: number): Promise<{ outcome: 'taken' | 'rate' | 'full'; count: number }>;
  /** Counts one attempt in `window` on set `group`'s item (without joining it), while below its max. */
  count(group: string, window: RateWindow, retainUntilMs: number): Promise<{ taken: boolean; count: number }>;
  /** Removes these members from set `group` (those not in it are ignored). */
  leave(group: string, members: readonly string[]): Promise<void>;
  /** Queues a request for `recipient`'s digest, due at `dueMs` unless an earlier due is set; false when the queue is full. */
  enqueueDigest(recipient: string, requestId: RequestId, dueMs: number, cap: number, retainUntilMs: number): Promise<boolean>;
  /** Whether the request waits in `recipient`'s digest queue. */
  isQueued(recipient: string, requestId: RequestId): Promise<boolean>;
  /** Claims digests due at `nowMs` (not claimed by a live lease) for `leaseMs`. */
  claimDueDigests(nowMs: number, limit: number, leaseMs: number): Promise<ClaimedDigest[]>;
  /** Removes `done` from the queue and ends the claim; what is left becomes due at `nextDueMs`. */
  completeDigest(d: ClaimedDigest, done: readonly RequestId[], nextDueMs: number): Promise<void>;
  /** Ends the claim without removing anything (the next sweep tries again). */
  releaseDigest(d: ClaimedDigest): Promise<void>;
}

/** A notifier that can name a record's recipients, mail only some of them, and send a digest. */
export interface RecipientNotifier extends ApprovalNotifier {
  recipients(record: AuthorizationRecord): readonly string[];
  notify(record: AuthorizationRecord, consentUrl: string, to?: readonly string[]): Promise<void>;
  notifyDigest(to: string, digest: DigestContent): Promise<void>;
}

export interface DigestContent {
  readonly entries: readonly { readonly record: AuthorizationRecord; readonly consentUrl: string }[];
  /** Further requests awaiting a decision that are not listed. */
  readonly more: number;
}

export function isRecipientNotifier(n: ApprovalNotifier): n is RecipientNotifier {
  const r = n as Partial<RecipientNotifier>;
  return typeof r.recipients === 'function' && typeof r.notifyDigest === 'function';
}

/** A held slot; `release` is idempotent and never throws. */
export interface Lease {
  release(): Promise<void>;
}

/** How many requests a digest lists by name; the rest are counted. */
export const DIGEST_LISTED_MAX = 50;
/** How many requests wait in one approver's digest queue at most; beyond, they are only in the pending queue. */
export const DIGEST_QUEUE_MAX = 200;
/** Attempts to send one digest before it is dropped (its requests stay in the pending queue). */
export const DIGEST_ATTEMPTS_MAX = 5;
/** A slot whose request is missing is taken back only after this long (its creation may still be in flight). */
const ORPHAN_GRACE_MS = 60_000;
/** Counters outlive their window by a day (DynamoDB TTL deletes them lazily). */
const DAY_MS = 86_400_000;

/** The fixed window of `sizeMs` that holds `nowMs`: [start, end). */
function windowOf(nowMs: number, sizeMs: number): { start: number; end: number } {
  const start = nowMs - (nowMs % sizeMs);
  return { start, end: start + sizeMs };
}

function at(ms: number): string {
  return new Date(ms).toISOString();
}

/** "retry after 2026-11-30T03:10:00.000Z (in 12 s)" */
export function retryAfter(retryMs: number, nowMs: number): string {
  return `retry after ${at(retryMs)} (in ${Math.max(1, Math.ceil((retryMs - nowMs) / 1000))} s)`;
}

/** Opaque, fixed-length key part for an email address (no separators, no address in the key). */
export function recipientKey(recipient: string): string {
  return createHash('sha256').update(recipient.trim().toLowerCase(), 'utf8').digest('hex').slice(0, 32);
}

/** A member of an agent's open-request set: `<until ms>.<since ms>.<request_id>`. */
interface OpenMember {
  readonly raw: string;
  readonly untilMs: number;
  readonly sinceMs: number;
  readonly requestId: RequestId;
}

function openMember(untilMs: number, sinceMs: number, requestId: RequestId): string {
  return `${untilMs}.${sinceMs}.${requestId}`;
}

/** A member as written by openMember; anything else (an item changed by hand) reads as lapsed. */
function parseOpenMember(raw: string): OpenMember {
  const m = /^(\d{1,15})\.(\d{1,15})\.(.+)$/.exec(raw);
  if (!m) return { raw, untilMs: 0, sinceMs: 0, requestId: raw as RequestId };
  return { raw, untilMs: Number(m[1]), sinceMs: Number(m[2]), requestId: m[3] as RequestId };
}

/**
 * The limits, as policy over a LimitStore. Keys:
 * - set `open#<agent>`: one member per request awaiting a decision (its deadline, when it was
 *   claimed, its request_id), so taking one is a single conditional write whatever the
 *   concurrency. A member whose request was decided (or lapsed) is taken back lazily, when the
 *   agent is at its limit. The same item counts the agent's request attempts in the current
 *   clock minute, so a request takes its rate and its slot in ONE conditional write.
 * - slot group `wait#<agent>`: one slot per long-poll (holder: a random token, until: the end of
 *   the wait plus a margin), released when the wait ends, or by time after a crash.
 * - `mail#<sha256(approver)>#<window start ms>`: individual consent mails in that window.
 * - `refused#<request_id>#<actor type>`: refused attempts on a request.
 * - `refused-by#<agent>#<hour start ms>`: an agent's own refused attempts in that hour.
 * - `calls#<agent>#<minute start ms>`: tool calls the agent recorded in that minute.
 */
export class Limits {
  constructor(
    readonly config: LimitsConfig,
    private readonly deps: { store: LimitStore; clock: Clock; retentionDays: number },
  ) {}

  /** Counts one request attempt; ERR_RATE_LIMITED beyond requestsPerMinute in this clock minute. */
  async takeRequest(agentId: AgentId): Promise<void> {
    const now = this.deps.clock.now().getTime();
    const window = this.requestWindow(now);
    const { taken, count } = await this.deps.store.count(`open#${agentId}`, window, window.start + 60_000 + DAY_MS);
    if (!taken) throw this.rateRefusal(agentId, count, now);
  }

  /**
   * request_authorization's limits: one attempt of the agent's minute and one of its open-request
   * slots for `requestId` until `expiresAt`, in ONE conditional write in the common case (both
   * live on the agent's item), so under a burst no slot goes to a caller the rate refuses, and no
   * attempt over the rate holds a slot even for a moment. The rate refusing: ERR_RATE_LIMITED,
   * nothing changed. Every slot held: the attempt still counts against the minute (as one refused
   * for any reason does), then slots whose requests were decided or lapsed are taken back
   * (claimOpenSlot), else ERR_RATE_LIMITED naming the open requests.
   */
  async admitRequest(agentId: AgentId, requestId: RequestId, expiresAt: string, requests: Pick<RequestStore, 'getMany'>): Promise<Lease> {
    const store = this.deps.store;
    const now = this.deps.clock.now().getTime();
    const group = `open#${agentId}`;
    const until = Date.parse(expiresAt);
    const member = openMember(until, now, requestId);
    const window = this.requestWindow(now);
    const admitted = await store.admit(group, member, this.config.openPending, window, until + DAY_MS);
    if (admitted.outcome === 'taken') return { release: () => store.leave(group, [member]).catch(() => undefined) };
    if (admitted.outcome === 'rate') throw this.rateRefusal(agentId, admitted.count, now);
    await this.takeRequest(agentId);
    return this.claimOpenSlot(agentId, requestId, expiresAt, requests);
  }

  private requestWindow(nowMs: number): RateWindow {
    return { start: windowOf(nowMs, 60_000).start, max: this.config.requestsPerMinute };
  }

  private rateRefusal(agentId: AgentId, count: number, nowMs: number): AckdError {
    const { end } = windowOf(nowMs, 60_000);
    return new AckdError('ERR_RATE_LIMITED', `agent ${agentId} made ${count} requests in the current minute (limit ${this.config.requestsPerMinute} per minute); ${retryAfter(end, nowMs)}`);
  }

  /**
   * Holds one of the agent's open-request slots for `requestId` until its deadline: one
   * conditional write when the agent is below openPending. ERR_RATE_LIMITED when every slot is
   * held by a request that is still pending. `requests` lets a slot whose request was decided (or
   * never got created) be taken back: one batched read of the holders, only when all are held.
   */
  async claimOpenSlot(agentId: AgentId, requestId: RequestId, expiresAt: string, requests: Pick<RequestStore, 'getMany'>): Promise<Lease> {
    const store = this.deps.store;
    const group = `open#${agentId}`;
    const size = this.config.openPending;
    const now = this.deps.clock.now().getTime();
    const until = Date.parse(expiresAt);
    const member = openMember(until, now, requestId);
    const retain = until + DAY_MS;
    const lease: Lease = { release: () => store.leave(group, [member]).catch(() => undefined) };
    if (await store.join(group, member, size, retain)) return lease;
    let live: OpenMember[] = [];
    // Every slot is held: those lapsed, decided or never created are taken back, then try again.
    // A concurrent caller may take the freed slot first: a few rounds before refusing.
    for (let round = 0; round < 3; round++) {
      const held = (await store.members(group)).map(parseOpenMember);
      const lapsed = held.filter((m) => m.untilMs <= now);
      live = held.filter((m) => m.untilMs > now);
      let gone = lapsed;
      if (gone.length === 0) {
        // At most 100 are read per round (all of them with the default limit).
        const sample = shuffle([...live]).slice(0, 100);
        const records = await requests.getMany(sample.map((m) => m.requestId));
        gone = sample.filter((m) => {
          const r = records.get(m.requestId);
          if (!r) return m.sinceMs + ORPHAN_GRACE_MS <= now;
          return r.decision !== 'pending' || Date.parse(r.expires_at) <= now;
        });
      }
      if (gone.length === 0) break;
      await store.leave(group, gone.map((m) => m.raw));
      if (await store.join(group, member, size, retain)) return lease;
    }
    const retryAtMs = live.length > 0 ? Math.min(...live.map((m) => m.untilMs)) : now + 1000;
    throw new AckdError('ERR_RATE_LIMITED', `agent ${agentId} has ${size} requests awaiting a decision (limit ${size}); ${retryAfter(retryAtMs, now)}, or as soon as one of them is decided`);
  }

  /** Holds one of the agent's concurrent-wait slots for `waitMs` (plus a margin for a crash). */
  async claimWait(agentId: AgentId, waitMs: number): Promise<Lease> {
    const size = this.config.concurrentWaits;
    const now = this.deps.clock.now().getTime();
    const lease = await this.claimSlot(`wait#${agentId}`, size, randomUUID(), now + waitMs + 5_000);
    if ('retryAtMs' in lease) {
      throw new AckdError(
        'ERR_RATE_LIMITED',
        `agent ${agentId} already has ${size} check_authorization calls waiting (limit ${size} concurrent waits); ${retryAfter(lease.retryAtMs, now)}, or check without wait_seconds`,
      );
    }
    return lease;
  }

  private async claimSlot(
    group: string,
    size: number,
    holder: string,
    untilMs: number,
  ): Promise<Lease | { retryAtMs: number }> {
    const store = this.deps.store;
    const now = this.deps.clock.now().getTime();
    const lease = (slot: number): Lease => ({ release: () => store.releaseSlot(group, slot, holder).catch(() => undefined) });
    // Usually a random slot is free: one conditional write, no read.
    for (const slot of shuffle(Array.from({ length: size }, (_, i) => i)).slice(0, 2)) {
      if (await store.putSlot(group, slot, holder, untilMs, now)) return lease(slot);
    }
    let held: SlotState[] = [];
    // A slot that looked free may be taken by a concurrent caller between the
    // read and the conditional write: read again, a few times, before refusing.
    for (let round = 0; round < 3; round++) {
      held = (await store.readSlots(group, size)).filter((s) => s.untilMs > now);
      const busy = new Set(held.map((s) => s.slot));
      const free = shuffle(Array.from({ length: size }, (_, i) => i).filter((i) => !busy.has(i)));
      // At most a few tries per round: each failed one is a write lost to a concurrent caller.
      for (const slot of free.slice(0, 8)) if (await store.putSlot(group, slot, holder, untilMs, now)) return lease(slot);
      if (free.length === 0) break;
    }
    return { retryAtMs: held.length > 0 ? Math.min(...held.map((s) => s.untilMs)) : now + 1000 };
  }

  /**
   * Which recipients get this request's mail now. Each takes one of its mailsPerApprover in the
   * current window; a recipient over the limit gets the request in a digest instead (queued,
   * due at the window's end). On a retry, a recipient whose digest already holds the request
   * is left out.
   */
  async planMail(requestId: RequestId, recipients: readonly string[], opts: { retry: boolean }): Promise<{ send: string[]; queued: string[]; dropped: string[]; refund(): Promise<void> }> {
    const { start, end } = windowOf(this.deps.clock.now().getTime(), this.mailWindowMs);
    const send: string[] = [];
    const queued: string[] = [];
    const dropped: string[] = [];
    const takenKeys: string[] = [];
    for (const to of recipients) {
      const rk = recipientKey(to);
      if (opts.retry && (await this.deps.store.isQueued(to, requestId))) {
        queued.push(to);
        continue;
      }
      const key = `mail#${rk}#${start}`;
      const { taken } = await this.deps.store.take(key, this.config.mailsPerApprover, end + DAY_MS);
      if (taken) {
        send.push(to);
        takenKeys.push(key);
      } else if (await this.deps.store.enqueueDigest(to, requestId, end, DIGEST_QUEUE_MAX, end + DAY_MS)) {
        queued.push(to);
      } else {
        dropped.push(to);
      }
    }
    return {
      send,
      queued,
      dropped,
      // A mail that could not be sent does not count against its recipients.
      refund: async () => {
        for (const key of takenKeys) await this.deps.store.add(key, -1, end + DAY_MS).catch(() => undefined);
      },
    };
  }

  /** Digests due now, claimed for sending (a claim lapses after `leaseMs`). */
  claimDueDigests(limit: number, leaseMs = 60_000): Promise<ClaimedDigest[]> {
    return this.deps.store.claimDueDigests(this.deps.clock.now().getTime(), limit, leaseMs);
  }

  /** Done with a digest: `done` leaves the queue; whatever is left is due at the end of the current window. */
  completeDigest(d: ClaimedDigest, done: readonly RequestId[]): Promise<void> {
    return this.deps.store.completeDigest(d, done, windowOf(this.deps.clock.now().getTime(), this.mailWindowMs).end);
  }

  private get mailWindowMs(): number {
    return this.config.mailWindowMinutes * 60_000;
  }

  releaseDigest(d: ClaimedDigest): Promise<void> {
    return this.deps.store.releaseDigest(d);
  }

  /**
   * Whether a refused attempt on a request is recorded as an audit event: the first
   * refusalsPerRequest per kind of actor are (so an agent cannot use up the approvers' share),
   * and an agent's own refusals also only up to refusalsPerAgentPerHour over all its requests
   * (so making more requests buys no more events); the rest are counted (`suppressed`) and
   * logged, not recorded.
   */
  /**
   * Counts `n` tool calls an agent (a gateway) records as tool_call events in this clock minute;
   * ERR_RATE_LIMITED, with nothing recorded, once that would pass toolCallsPerMinute. One write
   * per batch: a refused batch still counts, so a flood stays refused until the minute ends.
   */
  async takeToolCalls(agentId: AgentId, n: number): Promise<void> {
    const now = this.deps.clock.now().getTime();
    const minute = windowOf(now, 60_000);
    const count = await this.deps.store.add(`calls#${agentId}#${minute.start}`, n, minute.end + DAY_MS);
    if (count > this.config.toolCallsPerMinute) {
      const retry = Math.ceil((minute.end - now) / 1000);
      throw new AckdError('ERR_RATE_LIMITED', `calls: agent ${agentId} may record at most ${this.config.toolCallsPerMinute} tool calls per minute; retry in ${retry} s`, { field: 'calls' });
    }
  }

  async admitRefusal(requestId: RequestId, actor: { type: ActorType; id: string }): Promise<{ record: boolean; suppressed: number }> {
    const now = this.deps.clock.now().getTime();
    const retain = now + this.deps.retentionDays * DAY_MS;
    const key = `refused#${requestId}#${actor.type}`;
    const suppress = async (k: string) => ({ record: false, suppressed: await this.deps.store.add(`${k}#suppressed`, 1, retain) });
    if (actor.type === 'agent') {
      const hour = windowOf(now, 3_600_000);
      const agentKey = `refused-by#${actor.id}#${hour.start}`;
      if (!(await this.deps.store.take(agentKey, this.config.refusalsPerAgentPerHour, hour.end + DAY_MS)).taken) return suppress(agentKey);
    }
    if ((await this.deps.store.take(key, this.config.refusalsPerRequest, retain)).taken) return { record: true, suppressed: 0 };
    return suppress(key);
  }
}

function shuffle<T>(xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}
