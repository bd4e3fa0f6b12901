import { AckdError } from '../../core/errors.ts';
import type { AgentId, RequestId } from '../../core/ids.ts';
import type { ApiKeyEntry, ApiKeyStore, Applied, Clock, Logger, RequestStore } from '../../core/ports.ts';
import type { AuthorizationRecord } from '../../core/request.ts';
import { eventFields, snapshotOf, type AdminChange, type AdminEventType, type AuditEvent, type ChainEvent, type Checkpoint, type PendingEvent } from '../../core/audit/event.ts';
import type { AuditLog, ChainHead, RequestItemView } from '../../core/audit/ports.ts';
import { keyOf, type NodeKey, type TreeNode } from '../../core/audit/merkle.ts';
import { EMPTY_HEAD, Sequencer, type AdminEntry, type OutboxEntry, type PendingSource, type Pointers, type RefusalReason, type RefusedEntry, type SequencerStore, type TreeHead } from '../../core/audit/sequencer.ts';
import { HmacOutboxSealer, sealed, type OutboxSealer } from '../../core/audit/seal.ts';
import { pageOf, quarantineRecord, type QuarantinePage, type QuarantineQuery, type QuarantineRecord } from '../../core/audit/quarantine.ts';
import { applyUpdates, conditionOf, explainRefused, holds, TRANSITIONS, type Params, type StoredItem, type Transition, type TransitionName } from '../../core/lifecycle.ts';

/** A stored request: its record, bookkeeping, its waiting events and its pointers into the log. */
interface Stored {
  item: StoredItem;
  outbox: OutboxEntry[];
  latestSeq: number | null;
  decisionSeq: number | null;
  requestedSeq: number | null;
  voteSeqs: number[];
  allSeqs: number[];
}

const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * The RequestStore, its audit log and the sequencer's store in one process's memory: for unit
 * tests of the core and of the audit service without a stack. It applies the same lifecycle
 * table as the DynamoDB adapter (the row's condition via `holds`, its updates via
 * `applyUpdates`); each write is atomic because nothing awaits between its read and its write.
 * A write appends its event to the request's outbox, as in the table; the core's Sequencer then
 * sequences it: right after each write (`autoSequence`, the default, so tests read a settled log),
 * or when a test calls `sequencer.run()`.
 */
export class MemoryRequestStore implements RequestStore, AuditLog, SequencerStore {
  private readonly items = new Map<RequestId, Stored>();
  private readonly slots = new Map<number, ChainEvent>();
  private readonly tree = new Map<string, string>();
  private readonly admin = new Map<string, AdminEntry>();
  /** Entries the sequencer refused, in the order they were quarantined (the table's `audit#quarantine#…` items; the same entry from the same place again replaces its record). */
  readonly quarantined: QuarantineRecord[] = [];
  /** Seals what this store writes (a random key of its own unless given); its sequencer checks with it. */
  readonly sealer: OutboxSealer;
  private readonly checkpointsBySeq = new Map<number, Checkpoint>();
  private headState: TreeHead = EMPTY_HEAD;
  private lease: { owner: string; until: number } | null = null;
  readonly sequencer: Sequencer;

  constructor(
    protected readonly clock: Clock,
    private readonly opts: { autoSequence?: boolean; sealer?: OutboxSealer } = {},
  ) {
    this.sealer = opts.sealer ?? HmacOutboxSealer.random();
    this.sequencer = new Sequencer({ store: this, clock, logger: quiet, sealer: this.sealer });
  }

  /** What a table writer without the seal key can do: put any entry into a request's outbox (tests). */
  writeRawOutboxEntry(requestId: RequestId, entry: unknown): void {
    const s = this.items.get(requestId);
    if (!s) throw new Error(`no request ${requestId}`);
    s.outbox.push(entry as OutboxEntry);
  }

  /** …or put any operator-change item under `audit#admin#<itemEventId>` (tests). */
  writeRawAdminItem(itemEventId: string, entry: unknown): void {
    this.admin.set(itemEventId, entry as AdminEntry);
  }

  /** With autoSequence: returns once nothing waits (another run in progress is waited for, then run again). */
  private async sequenced(): Promise<void> {
    if (this.opts.autoSequence === false) return;
    for (let i = 0; i < 1000; i++) {
      const run = await this.sequencer.run();
      if (!run.busy && (await this.pending(1)).length === 0) return;
      await new Promise((r) => setImmediate(r));
    }
  }

  async create(record: AuthorizationRecord, _retentionUntilEpochSeconds: number, event: PendingEvent): Promise<void> {
    if (this.items.has(record.request_id)) throw new AckdError('ERR_CONFLICT', `request_id: ${record.request_id} already exists`);
    const item = { ...record, permissions: [...record.permissions], ...(record.payload ? { payload: structuredClone(record.payload) } : {}) };
    const entry = await sealed(this.sealer, { kind: 'request', request_id: record.request_id }, { event, row: 'create', snapshot: snapshotOf(item) } as OutboxEntry);
    if (this.items.has(record.request_id)) throw new AckdError('ERR_CONFLICT', `request_id: ${record.request_id} already exists`);
    this.items.set(record.request_id, { item, outbox: [entry], latestSeq: null, decisionSeq: null, requestedSeq: null, voteSeqs: [], allSeqs: [] });
    await this.sequenced();
  }

  async apply(name: TransitionName, requestId: RequestId, params: Params, event?: PendingEvent): Promise<Applied> {
    const t: Transition = TRANSITIONS[name];
    if (t.events.length > 0 && (!event || !(t.events as readonly string[]).includes(event.type))) throw new Error(`lifecycle: ${name} records ${t.events.join(' or ')}, not ${event?.type ?? 'nothing'}`);
    // Sealed first: from the read below to the write nothing awaits (the write is atomic).
    const entry = event ? await sealed(this.sealer, { kind: 'request', request_id: requestId }, { event, row: name, params: structuredClone(params) } as OutboxEntry) : undefined;
    const stored = this.items.get(requestId);
    if (!stored) throw new AckdError('ERR_NOT_FOUND', `request_id: no request ${requestId}`, { field: 'request_id' });
    const view = this.withPointers(stored);
    if (!holds(conditionOf(t), view, params)) {
      // Throws the row's refusal, or says the call is already done.
      if (explainRefused(t, view, params) === 'retry') throw new Error(`lifecycle: ${name}'s condition and refusals disagree`);
      return this.applied(stored, false);
    }
    stored.item = applyUpdates(t, stored.item, params) as unknown as StoredItem;
    if (entry) stored.outbox.push(entry);
    await this.sequenced();
    return this.applied(stored, true);
  }

  /** The item as the lifecycle's guards read it (with the pointer and the waiting events the issuance claim reads). */
  private withPointers(s: Stored): StoredItem {
    return { ...s.item, ...(s.decisionSeq === null ? {} : { decision_seq: s.decisionSeq }), ...(s.outbox.length === 0 ? {} : { audit_outbox: s.outbox as never }) };
  }

  private applied(s: Stored, changed: boolean): Applied {
    return { record: recordOf(s.item), decisionSeq: s.decisionSeq, requestedSeq: s.requestedSeq, voteSeqs: [...s.voteSeqs], changed };
  }

  get(requestId: RequestId): Promise<AuthorizationRecord | undefined> {
    const s = this.items.get(requestId);
    return Promise.resolve(s ? recordOf(s.item) : undefined);
  }

  getWithSeqs(requestId: RequestId): Promise<Applied | undefined> {
    const s = this.items.get(requestId);
    return Promise.resolve(s ? this.applied(s, false) : undefined);
  }

  auditEvents(seqs: readonly number[]): Promise<AuditEvent[]> {
    return this.eventsAt(seqs);
  }

  private records(): AuthorizationRecord[] {
    return [...this.items.values()].map((s) => recordOf(s.item));
  }

  /** An agent's requests, newest first; requests made in the same millisecond by request_id, descending. `after`: just after that request. */
  listByAgent(agentId: AgentId, opts: { limit?: number; after?: { readonly requested_at: string; readonly request_id: RequestId } } = {}): Promise<AuthorizationRecord[]> {
    const a = opts.after;
    const mine = this.records()
      .filter((r) => r.agent_id === agentId && (a === undefined || r.requested_at < a.requested_at || (r.requested_at === a.requested_at && r.request_id < a.request_id)))
      .sort((x, y) => y.requested_at.localeCompare(x.requested_at) || y.request_id.localeCompare(x.request_id));
    return Promise.resolve(mine.slice(0, opts.limit ?? 50));
  }

  private pendingRecords(filter: (r: AuthorizationRecord) => boolean, limit: number): Promise<AuthorizationRecord[]> {
    const out = this.records()
      .filter((r) => r.decision === 'pending' && filter(r))
      .sort((a, b) => a.expires_at.localeCompare(b.expires_at));
    return Promise.resolve(out.slice(0, limit));
  }

  listRecentlyDecided(since: Date, limit: number): Promise<AuthorizationRecord[]> {
    const at = (r: AuthorizationRecord) => (r.revoked_at ?? r.decision_at ?? '');
    const out = this.records()
      .filter((r) => r.decision !== 'pending' && at(r) >= since.toISOString())
      .sort((a, b) => at(b).localeCompare(at(a)));
    return Promise.resolve(out.slice(0, limit));
  }

  listPending(now: Date, limit: number): Promise<AuthorizationRecord[]> {
    return this.pendingRecords((r) => r.expires_at > now.toISOString(), limit);
  }

  listExpiredPending(now: Date, limit: number): Promise<AuthorizationRecord[]> {
    return this.pendingRecords((r) => r.expires_at <= now.toISOString(), limit);
  }

  listUnnotifiedPending(now: Date, limit: number): Promise<AuthorizationRecord[]> {
    return this.pendingRecords((r) => r.expires_at > now.toISOString() && r.notify_status !== 'sent', limit);
  }

  // ---- the sequencer's store ----

  peekHead(): Promise<TreeHead> {
    return Promise.resolve(this.headState);
  }

  acquire(owner: string, nowMs: number, untilMs: number): Promise<TreeHead | null> {
    if (this.lease && this.lease.until >= nowMs) return Promise.resolve(null);
    this.lease = { owner, until: untilMs };
    return Promise.resolve(this.headState);
  }

  release(owner: string): Promise<void> {
    if (this.lease?.owner === owner) this.lease = null;
    return Promise.resolve();
  }

  pending(limit: number): Promise<PendingSource[]> {
    const sources: (PendingSource & { at: string })[] = [];
    for (const [requestId, s] of this.items) {
      if (s.outbox.length > 0) sources.push({ kind: 'request', requestId, item: this.itemAsRead(s), latestSeq: s.latestSeq, entries: [...s.outbox], at: `${s.outbox[0]?.event?.at}#${s.outbox[0]?.event?.event_id}` });
    }
    for (const [id, a] of this.admin) sources.push({ kind: 'admin', itemEventId: id, event: a.event, change: a.change, seal: a.seal, at: `${a.event?.at}#${a.event?.event_id}` });
    return Promise.resolve(sources.sort((x, y) => x.at.localeCompare(y.at)).slice(0, limit));
  }

  eventsAt(seqs: readonly number[]): Promise<AuditEvent[]> {
    return Promise.resolve([...new Set(seqs)].sort((a, b) => a - b).flatMap((s) => (this.slots.has(s) ? [this.slots.get(s) as AuditEvent] : [])));
  }

  recentEvents(limit: number): Promise<Pick<ChainEvent, 'seq' | 'event_id' | 'at' | 'logged_at'>[]> {
    return Promise.resolve([...this.slots.values()].sort((a, b) => b.seq - a.seq).slice(0, limit));
  }

  beyondHead(size: number): Promise<ChainEvent[]> {
    const out: ChainEvent[] = [];
    for (let s = size + 1; this.slots.has(s); s++) out.push(this.slots.get(s)!);
    return Promise.resolve(out);
  }

  removeSlot(seq: number, eventId: string): Promise<void> {
    if (this.slots.get(seq)?.event_id === eventId) this.slots.delete(seq);
    return Promise.resolve();
  }

  putEvents(events: readonly ChainEvent[]): Promise<boolean> {
    let ok = true;
    for (const e of events) {
      if (this.slots.has(e.seq)) ok = false;
      else this.slots.set(e.seq, eventFields(e as unknown as Record<string, unknown>) as ChainEvent);
    }
    return Promise.resolve(ok);
  }

  putNodes(nodes: readonly TreeNode[]): Promise<void> {
    for (const n of nodes) this.tree.set(keyOf(n), n.hash);
    return Promise.resolve();
  }

  advance(owner: string, from: number, to: TreeHead, opts: { readonly release?: boolean } = {}): Promise<boolean> {
    if (this.lease?.owner !== owner || this.headState.size !== from) return Promise.resolve(false);
    this.headState = { ...to, frontier: [...to.frontier] };
    if (opts.release) this.lease = null;
    return Promise.resolve(true);
  }

  settleRequest(requestId: RequestId, eventIds: readonly string[], p: Pointers): Promise<void> {
    const s = this.items.get(requestId);
    if (!s || !s.outbox.some((e) => eventIds.includes(e.event.event_id))) return Promise.resolve();
    s.outbox = s.outbox.filter((e) => !eventIds.includes(e.event.event_id));
    s.latestSeq = p.latest;
    if (p.decision !== null) s.decisionSeq = p.decision;
    if (p.requested !== null) s.requestedSeq = p.requested;
    s.voteSeqs.push(...p.votes);
    s.allSeqs.push(...p.all);
    return Promise.resolve();
  }

  settleAdmin(eventId: string): Promise<void> {
    this.admin.delete(eventId);
    return Promise.resolve();
  }

  /** The item as `pending` hands it over: with its outbox size, which quarantineRequest pins. */
  private itemAsRead(s: Stored): Record<string, unknown> {
    return { ...s.item, audit_outbox: [...s.outbox] };
  }

  quarantineRequest(requestId: RequestId, refused: readonly RefusedEntry[], item: Readonly<Record<string, unknown>>): Promise<Readonly<Record<string, unknown>> | null> {
    // The records first, as the DynamoDB adapter writes them: kept even when the item changed since it was read.
    for (const r of refused) this.keepQuarantined(`req#${requestId}`, r.entry, r.reason, r.message);
    const s = this.items.get(requestId);
    const read = item.audit_outbox as unknown[] | undefined;
    if (!s || read?.length !== s.outbox.length) return Promise.resolve(null);
    const drop = new Set(refused.map((r) => r.index));
    s.outbox = s.outbox.filter((_, i) => !drop.has(i));
    return Promise.resolve(this.itemAsRead(s));
  }

  quarantineAdmin(itemEventId: string, entry: Readonly<Record<string, unknown>>, reason: RefusalReason, message: string): Promise<void> {
    this.keepQuarantined(`audit#admin#${itemEventId}`, entry, reason, message);
    if (this.admin.get(itemEventId)?.seal === entry.seal) this.admin.delete(itemEventId);
    return Promise.resolve();
  }

  private keepQuarantined(source: string, entry: unknown, reason: RefusalReason, message: string): void {
    const record = quarantineRecord(source, entry, reason, message, this.clock.now());
    const again = this.quarantined.findIndex((q) => q.id === record.id);
    if (again >= 0) this.quarantined.splice(again, 1);
    this.quarantined.push(record);
  }

  quarantineRecords(q: QuarantineQuery): Promise<QuarantinePage> {
    return Promise.resolve(pageOf(this.quarantined, q));
  }

  // ---- AuditLog (read side of the log) ----

  async enqueueAdmin(event: PendingEvent & { readonly type: AdminEventType }, change: AdminChange): Promise<void> {
    this.admin.set(event.event_id, await sealed(this.sealer, { kind: 'admin', event_id: event.event_id }, { event, change }));
    return this.sequenced();
  }

  head(): Promise<ChainHead> {
    const h = this.headState;
    return Promise.resolve({ seq: h.size, hash: h.hash, logged_at: h.logged_at, root: h.root });
  }

  event(seq: number): Promise<AuditEvent | undefined> {
    return Promise.resolve(seq <= this.headState.size ? (this.slots.get(seq) as AuditEvent | undefined) : undefined);
  }

  async *events(from: number, to: number): AsyncIterable<AuditEvent> {
    for (let s = Math.max(1, from); s <= Math.min(to, this.headState.size); s++) {
      const e = this.slots.get(s);
      if (e) yield await Promise.resolve(e as AuditEvent);
    }
  }

  seqRange(window: { since?: string | undefined; until?: string | undefined }): Promise<{ from: number; to: number } | null> {
    const inside = this.chainEvents().filter((e) => (window.since === undefined || e.logged_at >= window.since) && (window.until === undefined || e.logged_at < window.until));
    return Promise.resolve(inside.length === 0 ? null : { from: inside[0]!.seq, to: inside.at(-1)!.seq });
  }

  nodes(keys: readonly NodeKey[]): Promise<Map<string, string>> {
    return Promise.resolve(new Map(keys.flatMap((k) => (this.tree.has(keyOf(k)) ? [[keyOf(k), this.tree.get(keyOf(k))!] as const] : []))));
  }

  requestEventSeqs(requestId: string): Promise<number[] | undefined> {
    const s = this.items.get(requestId as RequestId);
    return Promise.resolve(s ? [...s.allSeqs] : undefined);
  }

  putCheckpoint(c: Checkpoint): Promise<boolean> {
    if (this.checkpointsBySeq.has(c.seq)) return Promise.resolve(false);
    this.checkpointsBySeq.set(c.seq, c);
    return Promise.resolve(true);
  }

  private sortedCheckpoints(): Checkpoint[] {
    return [...this.checkpointsBySeq.values()].sort((a, b) => a.seq - b.seq);
  }

  checkpointAtOrBefore(seq: number): Promise<Checkpoint | undefined> {
    return Promise.resolve(this.sortedCheckpoints().filter((c) => c.seq <= seq).at(-1));
  }

  checkpointAtOrAfter(seq: number): Promise<Checkpoint | undefined> {
    return Promise.resolve(this.sortedCheckpoints().find((c) => c.seq >= seq));
  }

  async *checkpoints(from: number, to: number): AsyncIterable<Checkpoint> {
    for (const c of this.sortedCheckpoints()) if (c.seq >= from && c.seq <= to) yield await Promise.resolve(c);
  }

  async *requestItems(): AsyncIterable<RequestItemView> {
    for (const s of this.items.values()) yield await Promise.resolve({ snapshot: snapshotOf(s.item), latestSeq: s.latestSeq, decisionSeq: s.decisionSeq, unlinked: s.outbox.length > 0 });
  }

  backlog(limit: number): Promise<{ count: number; oldest_at: string | null }> {
    return this.pending(limit).then((p) => ({ count: p.length, oldest_at: p[0] ? (p[0].kind === 'admin' ? p[0].event.at : p[0].entries[0]!.event.at) : null }));
  }

  /** The sequenced log, in order. */
  chainEvents(): readonly AuditEvent[] {
    const out: AuditEvent[] = [];
    for (let s = 1; s <= this.headState.size; s++) if (this.slots.has(s)) out.push(this.slots.get(s) as AuditEvent);
    return out;
  }

  /** Test access: the stored item as is (record and bookkeeping), to edit it as a table writer could. */
  raw(requestId: RequestId): StoredItem | undefined {
    return this.items.get(requestId)?.item;
  }

  /** Test access: overwrite fields of a stored item without any event, as someone who can write the table could. */
  tamper(requestId: RequestId, fields: Partial<StoredItem>): void {
    const s = this.items.get(requestId);
    if (!s) throw new Error(`no request ${requestId}`);
    s.item = { ...s.item, ...fields };
  }

  getMany(ids: readonly RequestId[]): Promise<Map<RequestId, AuthorizationRecord>> {
    const out = new Map<RequestId, AuthorizationRecord>();
    for (const id of ids) {
      const s = this.items.get(id);
      if (s) out.set(id, recordOf(s.item));
    }
    return Promise.resolve(out);
  }
}

/** Bookkeeping fields are not part of the record. */
const BOOKKEEPING = new Set(['issuing_claim', 'issuing_until', 'refused_attempts', 'voters', 'escalated_at']);

function recordOf(item: StoredItem): AuthorizationRecord {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(item)) if (!BOOKKEEPING.has(k)) out[k] = Array.isArray(v) ? [...(v as unknown[])] : v;
  return out as unknown as AuthorizationRecord;
}

/** Agent API keys in memory (keys are held only as hashes, as in the table). */
export class MemoryApiKeyStore implements ApiKeyStore {
  private readonly byHash = new Map<string, ApiKeyEntry>();

  put(entry: ApiKeyEntry): Promise<void> {
    if (this.byHash.has(entry.key_hash)) return Promise.reject(new AckdError('ERR_CONFLICT', 'key already exists'));
    this.byHash.set(entry.key_hash, entry);
    return Promise.resolve();
  }

  getByHash(keyHash: string): Promise<ApiKeyEntry | undefined> {
    return Promise.resolve(this.byHash.get(keyHash));
  }

  listByAgent(agentId: AgentId): Promise<ApiKeyEntry[]> {
    return Promise.resolve([...this.byHash.values()].filter((k) => k.agent_id === agentId));
  }

  listAll(): Promise<ApiKeyEntry[]> {
    return Promise.resolve([...this.byHash.values()].sort((a, b) => a.created_at.localeCompare(b.created_at)));
  }

  setSeal(entry: ApiKeyEntry, seal: string): Promise<boolean> {
    const now = this.byHash.get(entry.key_hash);
    if (!now || now.seal !== undefined || now.key_id !== entry.key_id || now.agent_id !== entry.agent_id || now.created_at !== entry.created_at) return Promise.resolve(false);
    this.byHash.set(entry.key_hash, { ...now, seal });
    return Promise.resolve(true);
  }

  /** Stores an entry as given, unsealed or forged (tests: what a table writer would put). */
  writeRaw(entry: ApiKeyEntry): void {
    this.byHash.set(entry.key_hash, entry);
  }

  async revoke(keyId: string, now: Date, sealOf?: (revoked: ApiKeyEntry) => Promise<string | undefined>): Promise<ApiKeyEntry[]> {
    const entries = [...this.byHash.values()].filter((k) => k.key_id === keyId);
    if (entries.length === 0) throw new AckdError('ERR_NOT_FOUND', `key_id: no API key ${keyId}`, { field: 'key_id' });
    const out: ApiKeyEntry[] = [];
    for (const e of entries) {
      if (e.revoked_at !== null) {
        out.push(e);
        continue;
      }
      const revoked = { ...e, revoked_at: now.toISOString() };
      const seal = await sealOf?.(revoked);
      const stored = seal === undefined ? revoked : { ...revoked, seal };
      this.byHash.set(e.key_hash, stored);
      out.push(stored);
    }
    return out;
  }
}
