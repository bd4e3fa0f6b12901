import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { RequestId } from '../ids.ts';
import type { Clock, Logger } from '../ports.ts';
import { applyUpdates, DECISION_EVENTS, TRANSITIONS, VOTE_EVENTS, type Params, type TransitionName } from '../lifecycle.ts';
import { chainAdminEvent, chainEvent, eventHash, isAdminEvent, SNAPSHOT_FIELDS, snapshotOf, type AdminChange, type AdminEventType, type AuditSnapshot, type ChainEvent, type PendingEvent } from './event.ts';
import { appendLeaves, EMPTY_ROOT, leafHash, rootOf, type TreeNode } from './merkle.ts';
import type { OutboxSealer, SealPlace } from './seal.ts';

/**
 * The audit log as a transparency log (RFC 9162 in spirit): a state change writes its event
 * beside the change, in the same conditional write, and touches nothing global. ONE sequencer
 * then gives the waiting events their place: it assigns sequence numbers, links each event's
 * hash to the one before (`prev_hash`), appends them to the Merkle tree and moves the tree head.
 * Signed tree heads (checkpoints) are made from that head (AuditService.checkpoint).
 *
 * This module is the sequencer's logic, over the small `SequencerStore` port; the DynamoDB and
 * in-memory adapters only store. Who runs it: on AWS the sweeper function, triggered by the
 * table's stream (and its schedule); under `npm start` a loop in the local server.
 *
 * Safety without transactions:
 * - One sequencer at a time: a lease on the head record; the head only moves from the size the
 *   lease holder read (a conditional write), so two sequencers can never fork the log.
 * - Each event slot is written only where empty; events go in before the head moves over them.
 *   A run that stops half way leaves slots beyond the head: the next run adopts those that link
 *   onto the head (they are the same events) and removes any that do not.
 * - After the head moves, the events are "settled": removed from their items' outboxes, and the
 *   items pointed at them. The head remembers how far settling got (`settled`), so a run that
 *   stops between the two is finished by the next one, and no event is sequenced twice.
 */

const RECORDED_FIELDS: ReadonlySet<string> = new Set(SNAPSHOT_FIELDS);

/** One event waiting to be sequenced, as its change wrote it. */
export interface OutboxEntry {
  readonly event: PendingEvent;
  /**
   * How its request got from the previous event's snapshot to this one: the lifecycle row and
   * the parameters of the write (replayed with the row's own updates), or `create` with the
   * request as created.
   */
  readonly row: TransitionName | 'create';
  readonly params?: Params;
  readonly snapshot?: AuditSnapshot;
  /** The writer's seal over the entry and its request (seal.ts); checked before the entry may enter the log. */
  readonly seal?: string;
}

/** An operator's (or the gateway's) change waiting in its own item, as its writer stored it. */
export interface AdminEntry {
  readonly event: PendingEvent & { readonly type: AdminEventType };
  readonly change: AdminChange;
  readonly seal?: string;
}

/** Why the sequencer refused an entry: its seal (seal.ts SealVerdict), or a replay of an event already in (or on its way into) the log. */
export type RefusalReason = 'missing' | 'malformed' | 'mismatch' | 'duplicate' | 'stale';

/** A request's outbox entry the sequencer refused: its position in the source's `entries`, and why. */
export interface RefusedEntry {
  readonly index: number;
  readonly entry: OutboxEntry;
  readonly reason: RefusalReason;
  readonly message: string;
}

/** Where waiting events are: a request's outbox (in write order), or an operator's change. */
export type PendingSource =
  | {
      readonly kind: 'request';
      readonly requestId: RequestId;
      /** The stored item as read now (its constant fields, e.g. expires_at, feed the replay). */
      readonly item: Readonly<Record<string, unknown>>;
      /** The seq of its latest sequenced event (the replay's starting snapshot), null when none yet. */
      readonly latestSeq: number | null;
      readonly entries: readonly OutboxEntry[];
    }
  | {
      readonly kind: 'admin';
      /** The event id its item is stored under (`audit#admin#<id>`): where its seal binds it. */
      readonly itemEventId: string;
      readonly event: PendingEvent & { readonly type: AdminEventType };
      readonly change: AdminChange;
      readonly seal?: unknown;
    };

/** The log's head: its size (= seq of the newest event), chain hash, Merkle root and frontier. */
export interface TreeHead {
  readonly size: number;
  /** The newest event's hash (GENESIS_HASH when empty). */
  readonly hash: string;
  readonly logged_at: string | null;
  readonly root: string;
  /** The perfect subtrees of the tree (merkle.ts Frontier). */
  readonly frontier: readonly string[];
  /** Events up to here are settled on their items. */
  readonly settled: number;
  /** When the first event was logged (where time windows start). */
  readonly first_logged_at: string | null;
}

export const EMPTY_HEAD: TreeHead = { size: 0, hash: '0'.repeat(64), logged_at: null, root: EMPTY_ROOT, frontier: [], settled: 0, first_logged_at: null };

/** Item pointers a settle sets: a request's latest event, its decision, its request, its votes and all its events. */
export interface Pointers {
  readonly latest: number;
  readonly decision: number | null;
  readonly requested: number | null;
  readonly votes: readonly number[];
  readonly all: readonly number[];
}

export interface SequencerStore {
  /** The head as stored, without the lease (to see whether there is anything to do). */
  peekHead(): Promise<TreeHead>;
  /** Takes the sequencer lease until `untilMs` (epoch ms); the head as it stands, or null while another holds it. */
  acquire(owner: string, nowMs: number, untilMs: number): Promise<TreeHead | null>;
  release(owner: string): Promise<void>;
  /** Up to `limit` sources of waiting events, oldest first (read consistently). */
  pending(limit: number): Promise<PendingSource[]>;
  /** Events at these seqs (missing ones left out). */
  eventsAt(seqs: readonly number[]): Promise<ChainEvent[]>;
  /**
   * The newest `limit` events stored (at most), newest first: their seq, id and times (what a
   * starting sequencer knows replays by). May include slots a stopped run wrote beyond the head.
   */
  recentEvents(limit: number): Promise<Pick<ChainEvent, 'seq' | 'event_id' | 'at' | 'logged_at'>[]>;
  /** The events stored in consecutive slots after `size` (a stopped run's), in order. */
  beyondHead(size: number): Promise<ChainEvent[]>;
  /** Removes a slot a stopped run wrote that does not link onto the head. */
  removeSlot(seq: number, eventId: string): Promise<void>;
  /** Writes each event into its slot, only where the slot is empty; false when any slot was taken. */
  putEvents(events: readonly ChainEvent[]): Promise<boolean>;
  putNodes(nodes: readonly TreeNode[]): Promise<void>;
  /**
   * Moves the head from size `from` to `to`, only while `owner` holds the lease; false otherwise.
   * With `release`, the same write gives the lease back (a run's last write).
   */
  advance(owner: string, from: number, to: TreeHead, opts?: { readonly release?: boolean }): Promise<boolean>;
  /**
   * Settles sequenced events on their sources: a request's are removed from its outbox (by
   * event_id; those already gone are skipped) and its pointers moved; an operator change's
   * pending item leaves the outbox (kept until its retention ends). Idempotent. `item`: the request's item as `pending` read it, so the
   * first attempt needs no read (its write is conditional on the outbox being as read).
   */
  settleRequest(requestId: RequestId, eventIds: readonly string[], pointers: Pointers, item?: Readonly<Record<string, unknown>>): Promise<void>;
  settleAdmin(eventId: string): Promise<void>;
  /**
   * Moves refused entries of a request's outbox out of the way: each is kept under a quarantine
   * record of its own (with the reason), then removed from the outbox in one write conditional on
   * the outbox being as `item` (read by `pending`) holds it. The item after that write, or null
   * when the outbox changed meanwhile (nothing removed: the next run looks again).
   */
  quarantineRequest(requestId: RequestId, refused: readonly RefusedEntry[], item: Readonly<Record<string, unknown>>): Promise<Readonly<Record<string, unknown>> | null>;
  /** The same for an operator change's item: kept under a quarantine record, then deleted where it is still as read. */
  quarantineAdmin(itemEventId: string, entry: Readonly<Record<string, unknown>>, reason: RefusalReason, message: string): Promise<void>;
}

export interface SequencerRun {
  /** Another sequencer holds the lease: nothing was done. */
  readonly busy: boolean;
  readonly sequenced: number;
  /** Events adopted or settled after a stopped run. */
  readonly recovered: number;
  readonly head: TreeHead | null;
  /** Oldest wait among the events sequenced now (ms from the change to its sequencing). */
  readonly maxLagMs: number;
  /** Outbox entries refused (bad or missing seal, replays) and quarantined by this run. */
  readonly refused: number;
}

export interface SequencerOptions {
  readonly store: SequencerStore;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Sources read per batch (default 100). */
  readonly batch?: number;
  /** A run stops after this many events (default 5000), the rest wait for the next run. */
  readonly maxEventsPerRun?: number;
  /** How long the lease lasts (default 60 s); a run renews nothing, so keep runs shorter. */
  readonly leaseMs?: number;
  /** Called after each run, its lease given back, with the events it sequenced (metrics, notifications); its errors are logged. */
  readonly onSequenced?: (events: readonly ChainEvent[]) => Promise<void> | void;
  /** Checks the writers' seal on every waiting entry; an entry without a valid one never enters the log (it is quarantined). */
  readonly sealer: OutboxSealer;
  /**
   * The upgrade from a version that did not seal: entries with no seal at all whose `at` is before
   * this time (ISO) are admitted (each logged as a warning). Unset: none is.
   */
  readonly admitUnsealedBefore?: string;
  /** How many of the newest events a sequencer reads once, at its first run, to know their ids (default 1000). */
  readonly seedEvents?: number;
  /** How many event ids a sequencer remembers (default 50,000; about 100 bytes each). */
  readonly idMemory?: number;
}

/** How many recently sequenced snapshots (and event ids) a sequencer keeps (the bases of the next events of their requests). */
const RECENT_MAX = 4096;


export class Sequencer {
  constructor(private readonly opts: SequencerOptions) {}

  /**
   * Snapshots of events this sequencer put in the log (the head moved over them, so they are the
   * log's for good), by seq: a request's next event replays from its latest one, which is then
   * not read again. Bounded; the oldest go first.
   */
  private readonly recent = new Map<number, AuditSnapshot>();

  private remember(events: readonly ChainEvent[]): void {
    for (const e of events) if (!isAdminEvent(e)) this.recent.set(e.seq, snapshotOf(e));
    for (const seq of this.recent.keys()) {
      if (this.recent.size <= RECENT_MAX) break;
      this.recent.delete(seq);
    }
  }

  /**
   * Sequences what is waiting, as one lease holder. A run costs, besides one conditional put per
   * event and one settling write per request: the lease (one write), the waiting sources (one
   * query and one batched read per batch), the base events of requests seen before (one batched
   * read), the tree nodes (one batched write), the head (one write per batch, the last also
   * giving the lease back). Slots a stopped run left beyond the head are found when a put meets
   * one (the put is conditional), not read ahead on every run.
   *
   * `nudged`: a write just left an event waiting (the local loop's nudge, a stream record), so
   * the check whether anything waits is skipped. Without it (a timer), nothing waiting and
   * nothing half done costs two reads and no write.
   */
  async run(opts: { readonly nudged?: boolean } = {}): Promise<SequencerRun> {
    const { store, clock } = this.opts;
    if (!opts.nudged) {
      // Nothing waits and nothing is half done: no lease taken, nothing written.
      const [waiting, stored] = await Promise.all([store.pending(1), store.peekHead()]);
      if (waiting.length === 0 && stored.settled >= stored.size) return { busy: false, sequenced: 0, recovered: 0, head: stored, maxLagMs: 0, refused: 0 };
    }
    const owner = randomUUID();
    const startMs = clock.now().getTime();
    let head = await store.acquire(owner, startMs, startMs + (this.opts.leaseMs ?? 60_000));
    if (!head) return { busy: true, sequenced: 0, recovered: 0, head: null, maxLagMs: 0, refused: 0 };
    let sequenced = 0;
    let maxLagMs = 0;
    let recovered = 0;
    let refused = 0;
    let released = false;
    const done: ChainEvent[] = [];
    try {
      if (head.settled < head.size) {
        const r = await this.settleBehind(owner, head);
        head = r.head;
        recovered += r.recovered;
      }
      const max = this.opts.maxEventsPerRun ?? 5000;
      const batch = this.opts.batch ?? 100;
      let adopted = false;
      while (sequenced + refused < max) {
        const read = await store.pending(batch);
        if (read.length === 0) break;
        // Only entries that carry their writer's seal (and are no replay) go on; the rest are quarantined.
        const screened = await this.screen(read, head);
        refused += screened.refused;
        const sources = screened.admitted;
        const now = clock.now();
        const events = await this.link(sources, head, now);
        if (events.length === 0) {
          // A batch of refused entries only: they are out of the way now, the next batch may hold genuine ones.
          if (screened.refused > 0 && read.length >= batch) continue;
          break;
        }
        const appended = await this.append(owner, head, events);
        if (appended === 'taken') {
          // A stopped run's slots beyond the head (or a stale lease holder's): adopted or removed once, then the batch is read again.
          if (adopted) throw new Error(`audit sequencer: slot ${head.size + 1} or after is already taken: another sequencer wrote there; this run stops`);
          adopted = true;
          const r = await this.adoptBeyond(owner, head);
          head = r.head;
          recovered += r.recovered;
          continue;
        }
        head = appended;
        this.remember(events);
        this.rememberIds(events);
        await this.settle(events, sources);
        // A short batch was all there was: the head's last write of the run also gives the lease back.
        const last = read.length < batch || sequenced + refused + events.length >= max;
        head = await this.markSettled(owner, head, last);
        released = last;
        sequenced += events.length;
        for (const e of events) maxLagMs = Math.max(maxLagMs, now.getTime() - Date.parse(e.at));
        done.push(...events);
        if (last) break;
      }
    } finally {
      if (!released) await store.release(owner).catch((e: unknown) => this.opts.logger.warn('audit sequencer: could not release its lease (it expires by itself)', { error: String(e) }));
    }
    // Follow-ups (notifications, metrics) after the lease is given back: a slow webhook never holds up sequencing.
    if (done.length > 0) await this.notify(done);
    return { busy: false, sequenced, recovered, head, maxLagMs, refused };
  }

  /**
   * The ids of events in the log this sequencer knows (it logged them, or read them at its start),
   * with their time (the earlier of `at` and `logged_at`): a replay of one is refused at once.
   */
  private readonly knownIds = new Map<string, number>();
  /** Set once the newest events of the log have been read (`seed`). */
  private seeded = false;
  /**
   * Events at or before this time may be missing from `knownIds` (older than what was read at
   * the start, or forgotten since): an entry older than it is refused as stale, since its
   * original, if any, might not be known. Waiting entries are read oldest first, so a genuine one
   * is not older than events logged before it. (The original of an entry whose writer's clock ran
   * ahead may have been logged before its `at`: verification finds such a replay.)
   */
  private floor = Number.NEGATIVE_INFINITY;

  private rememberIds(events: readonly Pick<ChainEvent, 'event_id' | 'at' | 'logged_at'>[]): void {
    for (const e of events) this.knownIds.set(e.event_id, timeOf(e));
    const max = this.opts.idMemory ?? 50_000;
    for (const [id, t] of this.knownIds) {
      if (this.knownIds.size <= max) break;
      this.knownIds.delete(id);
      if (t > this.floor) this.floor = t;
    }
  }

  /**
   * Sorts what `pending` read into what may enter the log and what may not. An entry is refused
   * when its seal is missing (unless it predates sealing: `admitUnsealedBefore`), malformed or
   * does not match the entry where it is stored; when its event id is already in this batch or
   * in the log as far as this sequencer knows (`duplicate`); or when it is older than what it
   * knows of the log (`stale`: a sequenced entry written back). Refused entries are quarantined (moved out of the
   * outbox, kept with the reason), logged as errors with code ERR_AUDIT_ENTRY_REFUSED (the
   * metric AuditEntriesRefused counts those lines) and never linked; the genuine entries around
   * them go on. A key that cannot be had (KMS down) throws: nothing is refused for it.
   */
  private async screen(sources: readonly PendingSource[], head: TreeHead): Promise<{ admitted: PendingSource[]; refused: number }> {
    const { sealer } = this.opts;
    const seen = new Set<string>();
    await this.seed(head);
    const floor = this.floor;
    // (what is read from the table is untrusted: an entry may be anything, its event missing)
    const verdict = async (place: SealPlace, entry: object, seal: unknown, event: Partial<PendingEvent> | undefined): Promise<{ reason: RefusalReason; message: string } | null> => {
      const v = await sealer.check(place, entry, seal);
      if (!v.ok) {
        const upgrade = this.opts.admitUnsealedBefore;
        if (!(v.reason === 'missing' && upgrade !== undefined && typeof event?.at === 'string' && event.at < upgrade)) return v;
        this.opts.logger.warn('audit sequencer: admitted an unsealed entry written before sealing (ACKD_OUTBOX_UNSEALED_BEFORE)', { event_id: bounded(event.event_id), at: bounded(event.at), unsealed_before: upgrade });
      }
      if (typeof event?.event_id !== 'string' || typeof event.at !== 'string') return { reason: 'malformed', message: 'the entry has no event id or time' };
      const id = event.event_id;
      if (seen.has(id) || this.knownIds.has(id)) return { reason: 'duplicate', message: `event ${bounded(id)} is already in the log or earlier in this batch: a replay` };
      seen.add(id);
      if (!(Date.parse(event.at) >= floor)) {
        return { reason: 'stale', message: `its time (${bounded(event.at)}) is before ${new Date(floor).toISOString()}, older than the events in the log this sequencer knows: a replay, or a writer whose clock is far behind` };
      }
      return null;
    };
    const admitted: PendingSource[] = [];
    let refused = 0;
    for (const s of sources) {
      if (s.kind === 'admin') {
        const entry = { event: s.event, change: s.change, ...(s.seal === undefined ? {} : { seal: s.seal }) };
        const bad = await verdict({ kind: 'admin', event_id: s.itemEventId }, entry, s.seal, s.event);
        if (!bad) {
          admitted.push(s);
          continue;
        }
        await this.opts.store.quarantineAdmin(s.itemEventId, entry, bad.reason, bad.message);
        this.refusal(bad, s.event, { item: `audit#admin#${bounded(s.itemEventId)}` });
        refused++;
        continue;
      }
      const bad: RefusedEntry[] = [];
      for (const [index, entry] of s.entries.entries()) {
        const e = (typeof entry === 'object' && entry !== null ? entry : {}) as Partial<OutboxEntry>;
        const v = await verdict({ kind: 'request', request_id: s.requestId }, e, e.seal, e.event);
        if (v) bad.push({ index, entry, ...v });
      }
      if (bad.length === 0) {
        admitted.push(s);
        continue;
      }
      const item = await this.opts.store.quarantineRequest(s.requestId, bad, s.item);
      if (item === null) continue; // its outbox changed meanwhile: all of it waits for the next run
      for (const b of bad) this.refusal(b, (b.entry as Partial<OutboxEntry> | null)?.event, { item: `req#${s.requestId}`, request_id: s.requestId });
      refused += bad.length;
      const drop = new Set(bad.map((b) => b.index));
      const entries = s.entries.filter((_, i) => !drop.has(i));
      if (entries.length > 0) admitted.push({ ...s, item, entries });
    }
    return { admitted, refused };
  }

  private refusal(bad: { reason: RefusalReason; message: string }, event: Partial<PendingEvent> | undefined, where: Record<string, string>): void {
    this.opts.logger.error('audit sequencer: refused an outbox entry; it is quarantined and not in the log', {
      code: 'ERR_AUDIT_ENTRY_REFUSED',
      reason: bad.reason,
      detail: bad.message,
      event_id: bounded(event?.event_id),
      type: bounded(event?.type),
      ...where,
    });
  }

  /**
   * Once per sequencer (a process, a cold start): the ids and times of the newest events of the
   * log, so an entry written back after its event was logged is refused as a `duplicate` even by a
   * sequencer that did not log it. One read of up to `seedEvents` events; when they do not reach
   * back over the replay window, older entries count as stale (`seededFloor`).
   */
  private async seed(head: TreeHead): Promise<void> {
    if (this.seeded) return;
    if (head.size > 0) {
      const limit = this.opts.seedEvents ?? 1000;
      // Only the log's: a stopped run's slots beyond the head hold events still waiting in their outboxes (adopted when a put meets them).
      const recent = (await this.opts.store.recentEvents(limit)).filter((e) => e.seq <= head.size);
      this.rememberIds([...recent].reverse());
      // Not the whole log: what was logged before these is not known.
      if (recent.length > 0 && recent.length < head.size) this.floor = Math.max(this.floor, Math.min(...recent.map(timeOf)));
    }
    this.seeded = true;
  }

  /** The waiting events of these sources, linked after `head` in order (pure but for the base events it reads). */
  private async link(sources: readonly PendingSource[], head: TreeHead, now: Date): Promise<ChainEvent[]> {
    const baseSeqs = sources.flatMap((s) => (s.kind === 'request' && s.latestSeq !== null && s.entries[0]?.row !== 'create' ? [s.latestSeq] : []));
    const bases = new Map<number, AuditSnapshot>();
    const unknown = baseSeqs.filter((seq) => {
      const known = this.recent.get(seq);
      if (known) bases.set(seq, known);
      return !known;
    });
    if (unknown.length > 0) for (const e of await this.opts.store.eventsAt(unknown)) if (!isAdminEvent(e)) bases.set(e.seq, snapshotOf(e));
    const out: ChainEvent[] = [];
    let prev = { seq: head.size, hash: head.hash, logged_at: head.logged_at };
    for (const s of sources) {
      if (s.kind === 'admin') {
        const e = chainAdminEvent(s.event, s.change, prev, now);
        out.push(e);
        prev = { seq: e.seq, hash: e.hash, logged_at: e.logged_at };
        continue;
      }
      let before: AuditSnapshot | undefined = s.latestSeq === null ? undefined : bases.get(s.latestSeq);
      for (const [i, entry] of s.entries.entries()) {
        const snapshot = snapshotAfter(entry, before, s.item, i === s.entries.length - 1);
        if (!snapshot) {
          this.opts.logger.error('audit sequencer: cannot replay an event of a request whose previous event is missing; it waits', { request_id: s.requestId, event_id: entry.event.event_id });
          break;
        }
        const e = chainEvent(entry.event, snapshot, prev, now);
        out.push(e);
        prev = { seq: e.seq, hash: e.hash, logged_at: e.logged_at };
        before = snapshot;
      }
    }
    return out;
  }

  /** Writes the events, their tree nodes, then moves the head over them; 'taken' (nothing moved) when a slot was not empty. */
  private async append(owner: string, head: TreeHead, events: readonly ChainEvent[]): Promise<TreeHead | 'taken'> {
    const { store } = this.opts;
    const { frontier, nodes } = appendLeaves(head.frontier, head.size, events.map((e) => leafHash(e.hash)));
    const last = events.at(-1)!;
    const next: TreeHead = {
      size: last.seq,
      hash: last.hash,
      logged_at: last.logged_at,
      root: rootOf(frontier),
      frontier,
      settled: head.settled,
      first_logged_at: head.first_logged_at ?? events[0]!.logged_at,
    };
    if (!(await store.putEvents(events))) return 'taken';
    await store.putNodes(nodes);
    if (!(await store.advance(owner, head.size, next))) throw new Error('audit sequencer: the head moved or the lease was lost; this run stops (the next run adopts what it wrote)');
    return next;
  }

  /** Settles events on their sources (grouped by request, in order); `sources`: the items as read, when they were. */
  private async settle(events: readonly ChainEvent[], sources: readonly PendingSource[] = []): Promise<void> {
    const items = new Map(sources.flatMap((s) => (s.kind === 'request' ? [[s.requestId, s.item] as const] : [])));
    const byRequest = new Map<RequestId, ChainEvent[]>();
    const admin: string[] = [];
    for (const e of events) {
      if (isAdminEvent(e)) admin.push(e.event_id);
      else {
        const id = e.request_id as RequestId;
        byRequest.set(id, [...(byRequest.get(id) ?? []), e]);
      }
    }
    const work = [
      ...[...byRequest].map(([id, es]) => () => this.opts.store.settleRequest(id, es.map((e) => e.event_id), pointersOf(es), items.get(id))),
      ...admin.map((id) => () => this.opts.store.settleAdmin(id)),
    ];
    await inBatches(work, 16);
  }

  private async markSettled(owner: string, head: TreeHead, release = false): Promise<TreeHead> {
    const next = { ...head, settled: head.size };
    if (!(await this.opts.store.advance(owner, head.size, next, { release }))) throw new Error('audit sequencer: lost the lease while settling; the next run finishes it');
    return next;
  }

  /**
   * After a run that stopped half way: adopts the events it wrote beyond the head that link onto
   * it (removing any that do not), and settles them. Called when a put met a taken slot.
   */
  private async adoptBeyond(owner: string, head: TreeHead): Promise<{ head: TreeHead; recovered: number }> {
    const { store, logger } = this.opts;
    let recovered = 0;
    const beyond = await store.beyondHead(head.size);
    if (beyond.length > 0) {
      const adopt: ChainEvent[] = [];
      let prev = head.hash;
      for (const e of beyond) {
        if (e.prev_hash === prev && eventHash(e) === e.hash && e.seq === head.size + adopt.length + 1) {
          adopt.push(e);
          prev = e.hash;
        } else {
          await store.removeSlot(e.seq, e.event_id);
        }
      }
      // (beyondHead returns consecutive slots only, so what is adopted is a run from size + 1)
      if (adopt.length > 0) {
        const { frontier, nodes } = appendLeaves(head.frontier, head.size, adopt.map((e) => leafHash(e.hash)));
        await store.putNodes(nodes);
        const last = adopt.at(-1)!;
        const next: TreeHead = { ...head, size: last.seq, hash: last.hash, logged_at: last.logged_at, root: rootOf(frontier), frontier, first_logged_at: head.first_logged_at ?? adopt[0]!.logged_at };
        if (!(await store.advance(owner, head.size, next))) throw new Error('audit sequencer: lost the lease while adopting events');
        head = next;
        recovered += adopt.length;
        logger.warn('audit sequencer: adopted events an interrupted run had written', { from: adopt[0]!.seq, to: last.seq });
      }
    }
    const r = await this.settleBehind(owner, head);
    return { head: r.head, recovered: recovered + r.recovered };
  }

  /** Settles what was sequenced but not settled (a run that stopped between the two). */
  private async settleBehind(owner: string, head: TreeHead): Promise<{ head: TreeHead; recovered: number }> {
    if (head.settled >= head.size) return { head, recovered: 0 };
    const { store } = this.opts;
    let recovered = 0;
    const seqs: number[] = [];
    for (let s = head.settled + 1; s <= head.size; s++) seqs.push(s);
    for (let i = 0; i < seqs.length; i += 100) {
      const events = await store.eventsAt(seqs.slice(i, i + 100));
      await this.settle(events);
      recovered += events.length;
    }
    return { head: await this.markSettled(owner, head), recovered };
  }

  private async notify(events: readonly ChainEvent[]): Promise<void> {
    try {
      await this.opts.onSequenced?.(events);
    } catch (e) {
      this.opts.logger.warn('audit sequencer: a follow-up of sequenced events failed', { error: e instanceof Error ? e.message : String(e) });
    }
  }
}

/**
 * The snapshot an entry's event records: the created request, or the previous snapshot with the
 * entry's lifecycle row replayed on it (the row's updates are a function of its parameters and
 * the request's constant fields, so the replay gives exactly what the write stored). Without a
 * previous snapshot (its event is gone), only the newest entry can be recorded: as the item is.
 */
export function snapshotAfter(entry: OutboxEntry, before: AuditSnapshot | undefined, item: Readonly<Record<string, unknown>>, newest: boolean): AuditSnapshot | undefined {
  if (entry.snapshot) return snapshotOf(entry.snapshot);
  if (entry.row === 'create') return undefined;
  if (!before) return newest ? snapshotOf(item as unknown as AuditSnapshot) : undefined;
  // The item lends only what no event records (expires_at, which `expire` reads); every recorded
  // field comes from the previous snapshot, the item's own values of them being later ones.
  const constant = Object.fromEntries(Object.entries(item).filter(([k]) => !RECORDED_FIELDS.has(k)));
  return snapshotOf(applyUpdates(TRANSITIONS[entry.row], { ...constant, ...before }, entry.params ?? {}) as unknown as AuditSnapshot);
}

/** Where a request's item points after these of its events (in order) are sequenced. */
export function pointersOf(events: readonly ChainEvent[]): Pointers {
  let decision: number | null = null;
  let requested: number | null = null;
  const votes: number[] = [];
  for (const e of events) {
    if (DECISION_EVENTS.has(e.type)) decision = e.seq;
    if (e.type === 'requested') requested = e.seq;
    if (VOTE_EVENTS.has(e.type)) votes.push(e.seq);
  }
  return { latest: events.at(-1)!.seq, decision, requested, votes, all: events.map((e) => e.seq) };
}

/** An event's time: the earlier of `at` (its writer's clock) and `logged_at` (the sequencer's). */
function timeOf(e: Pick<ChainEvent, 'at' | 'logged_at'>): number {
  const t = Math.min(Date.parse(e.at), Date.parse(e.logged_at));
  return Number.isFinite(t) ? t : Number.NEGATIVE_INFINITY;
}

/** An attacker-written value, as a log line may carry it: a string of at most 128 characters. */
function bounded(v: unknown): string {
  const t = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  return t.length > 128 ? `${t.slice(0, 128)}…` : t;
}

async function inBatches(work: readonly (() => Promise<void>)[], width: number): Promise<void> {
  for (let i = 0; i < work.length; i += width) await Promise.all(work.slice(i, i + width).map((w) => w()));
}

/**
 * Runs the sequencer in a process (the local server): on a timer, and when nudged after a write
 * (coalesced: one run at a time, one more if nudged meanwhile, so under load a run sequences
 * every event written while the one before it ran, for one fixed cost: the lease, the reads of
 * what waits, the head). `batchWindowMs` (default 0) spaces runs at least that far apart to
 * gather more per run; measured here it saved no store calls at one caller (runs already gather
 * what the previous run's time let accumulate) and put the sequencer's work into the next
 * caller's time, so it is off by default. The timer only looks for what other processes left
 * waiting: it does not look while this loop has run within its interval, and looks less often
 * (up to 8 intervals apart) while it keeps finding nothing. `after` runs after each run (e.g.
 * signing a checkpoint when one is due).
 */
export class SequencerLoop {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  /** Callers waiting for the next run to end. */
  private waiters: (() => void)[] = [];
  /** A run waiting for its batch window to open. */
  private scheduled: NodeJS.Timeout | undefined;
  private lastStartMs = Number.NEGATIVE_INFINITY;
  /** Timer looks in a row that found nothing to do. */
  private idleLooks = 0;

  constructor(
    private readonly sequencer: Sequencer,
    private readonly opts: { intervalMs: number; logger: Logger; after?: (run: SequencerRun) => Promise<unknown>; batchWindowMs?: number },
  ) {}

  private get windowMs(): number {
    return this.opts.batchWindowMs ?? 0;
  }

  start(): void {
    this.stopped = false;
    this.arm();
  }

  /** The next timer look: after the interval, doubled after each look that found nothing (up to 8 intervals); a nudge resets it. */
  private arm(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), this.opts.intervalMs * 2 ** Math.min(this.idleLooks, 3));
    this.timer.unref();
  }

  /** The timer: a checked run (two reads when nothing waits), unless a run is due or was made within the interval. */
  private tick(): void {
    this.timer = undefined;
    if (this.stopped) return;
    if (this.running || this.scheduled || performance.now() - this.lastStartMs < this.opts.intervalMs) {
      this.arm();
      return;
    }
    this.launch(false);
  }

  /**
   * Asks for a run (a write just left an event waiting). Resolves when a run that started after
   * this call has ended; undefined where the loop does not run (a Lambda function: there the
   * table's stream wakes the sequencer).
   */
  nudge(): Promise<void> | undefined {
    if (this.stopped) return undefined;
    const done = new Promise<void>((resolve) => this.waiters.push(resolve));
    if (this.idleLooks > 0) {
      this.idleLooks = 0;
      this.arm();
    }
    // (while a run is in progress or due, the waiter is served by the run after it / that run)
    if (!this.running && !this.scheduled) this.schedule();
    return done;
  }

  /** Starts a nudged run now, or when the batch window since the last run's start has passed. */
  private schedule(): void {
    const wait = this.lastStartMs + this.windowMs - performance.now();
    if (wait <= 0) {
      this.launch(true);
      return;
    }
    this.scheduled = setTimeout(() => {
      this.scheduled = undefined;
      if (!this.stopped && !this.running) this.launch(true);
    }, wait);
  }

  private launch(nudged: boolean): void {
    const waiting = this.waiters.splice(0);
    this.lastStartMs = performance.now();
    this.running = this.once(nudged || waiting.length > 0).finally(() => {
      this.running = undefined;
      if (!this.timer) this.arm();
      for (const w of waiting) w();
      if (this.waiters.length > 0 && !this.stopped) this.schedule();
      else for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Waits for the current run, if any (and one due in its batch window). */
  async idle(): Promise<void> {
    while (this.running || this.scheduled) {
      if (this.running) await this.running;
      else await new Promise((r) => setTimeout(r, this.windowMs));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.scheduled) clearTimeout(this.scheduled);
    this.scheduled = undefined;
    await this.idle();
    for (const w of this.waiters.splice(0)) w();
  }

  private async once(nudged: boolean): Promise<void> {
    try {
      const run = await this.sequencer.run({ nudged });
      if (!nudged) this.idleLooks = run.sequenced === 0 && run.recovered === 0 && !run.busy ? this.idleLooks + 1 : 0;
      await this.opts.after?.(run);
    } catch (e) {
      const cause = e instanceof Error && e.cause instanceof Error ? e.cause.message : undefined;
      this.opts.logger.error('audit sequencer run failed; the next run retries', { error: e instanceof Error ? e.message : String(e), ...(cause ? { cause } : {}) });
    }
  }
}
