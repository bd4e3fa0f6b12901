import { AckdError } from '../../core/errors.ts';
import type { AgentId, RequestId } from '../../core/ids.ts';
import type { ApiKeyEntry, ApiKeyStore, Applied, Clock, RequestStore } from '../../core/ports.ts';
import type { AuthorizationRecord } from '../../core/request.ts';
import { chainEvent, eventFields, GENESIS_HASH, snapshotOf, type AuditEvent, type ChainEvent, type Checkpoint, type PendingEvent } from '../../core/audit/event.ts';
import type { AuditLog, ChainHead, RequestItemView } from '../../core/audit/ports.ts';
import { applyUpdates, conditionOf, DECISION_EVENTS, VOTE_EVENTS, explainRefused, holds, TRANSITIONS, type Params, type StoredItem, type Transition, type TransitionName } from '../../core/lifecycle.ts';

interface Stored {
  item: StoredItem;
  /** seq of the request's latest event, and of the event that decided it. */
  latestSeq: number | null;
  decisionSeq: number | null;
  requestedSeq: number | null;
  voteSeqs: number[];
}

/**
 * The RequestStore and its audit chain in one process's memory: for unit tests of the core and
 * of the audit service without a stack. It applies the same lifecycle table as the DynamoDB
 * adapter (the row's condition via `holds`, its updates via `applyUpdates`); each write is atomic
 * because nothing awaits between its read and its write. An event is linked into the chain in
 * the write that records it, so nothing is ever left to link.
 */
export class MemoryRequestStore implements RequestStore, AuditLog {
  private readonly items = new Map<RequestId, Stored>();
  private readonly chain: AuditEvent[] = [];
  private readonly checkpointsBySeq = new Map<number, Checkpoint>();

  constructor(protected readonly clock: Clock) {}

  create(record: AuthorizationRecord, _retentionUntilEpochSeconds: number, event: PendingEvent): Promise<void> {
    if (this.items.has(record.request_id)) return Promise.reject(new AckdError('ERR_CONFLICT', `request_id: ${record.request_id} already exists`));
    const stored: Stored = { item: { ...record, permissions: [...record.permissions] }, latestSeq: null, decisionSeq: null, requestedSeq: null, voteSeqs: [] };
    this.items.set(record.request_id, stored);
    this.link(stored, event);
    return Promise.resolve();
  }

  apply(name: TransitionName, requestId: RequestId, params: Params, event?: PendingEvent): Promise<Applied> {
    const t: Transition = TRANSITIONS[name];
    if (t.events.length > 0 && (!event || !(t.events as readonly string[]).includes(event.type))) throw new Error(`lifecycle: ${name} records ${t.events.join(' or ')}, not ${event?.type ?? 'nothing'}`);
    const stored = this.items.get(requestId);
    if (!stored) return Promise.reject(new AckdError('ERR_NOT_FOUND', `request_id: no request ${requestId}`, { field: 'request_id' }));
    try {
      if (!holds(conditionOf(t), stored.item, params)) {
        // Throws the row's refusal, or says the call is already done.
        if (explainRefused(t, stored.item, params) === 'retry') throw new Error(`lifecycle: ${name}'s condition and refusals disagree`);
        return Promise.resolve(this.applied(stored, false));
      }
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    stored.item = applyUpdates(t, stored.item, params) as unknown as StoredItem;
    if (event) this.link(stored, event);
    return Promise.resolve(this.applied(stored, true));
  }

  private applied(s: Stored, changed: boolean): Applied {
    return { record: recordOf(s.item), decisionSeq: s.decisionSeq, requestedSeq: s.requestedSeq, voteSeqs: [...s.voteSeqs], changed };
  }

  private link(s: Stored, event: PendingEvent): void {
    const last = this.chain.at(-1);
    const prev = last ? { seq: last.seq, hash: last.hash, logged_at: last.logged_at } : { seq: 0, hash: GENESIS_HASH, logged_at: null };
    const linked = chainEvent(event, snapshotOf(s.item), prev, this.clock.now());
    this.chain.push(eventFields(linked as unknown as Record<string, unknown>));
    s.latestSeq = linked.seq;
    if (DECISION_EVENTS.has(event.type)) s.decisionSeq = linked.seq;
    if (event.type === 'requested') s.requestedSeq = linked.seq;
    if (VOTE_EVENTS.has(event.type)) s.voteSeqs.push(linked.seq);
  }

  linkAudit(): Promise<void> {
    return Promise.resolve();
  }

  linkAuditBacklog(): Promise<{ linked: number; failed: number }> {
    return Promise.resolve({ linked: 0, failed: 0 });
  }

  get(requestId: RequestId): Promise<AuthorizationRecord | undefined> {
    const s = this.items.get(requestId);
    return Promise.resolve(s ? recordOf(s.item) : undefined);
  }

  auditEvent(seq: number): Promise<AuditEvent | undefined> {
    return Promise.resolve(this.chain[seq - 1]);
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

  scanAll(opts: { limit?: number; cursor?: string } = {}): Promise<{ items: AuthorizationRecord[]; cursor?: string }> {
    const all = this.records().sort((a, b) => a.request_id.localeCompare(b.request_id));
    const from = opts.cursor === undefined ? 0 : all.findIndex((r) => r.request_id > opts.cursor!);
    const page = from < 0 ? [] : all.slice(from, from + (opts.limit ?? 500));
    const last = page.at(-1);
    return Promise.resolve(last && from + page.length < all.length ? { items: page, cursor: last.request_id } : { items: page });
  }

  private pending(filter: (r: AuthorizationRecord) => boolean, limit: number): Promise<AuthorizationRecord[]> {
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
    return this.pending((r) => r.expires_at > now.toISOString(), limit);
  }

  listExpiredPending(now: Date, limit: number): Promise<AuthorizationRecord[]> {
    return this.pending((r) => r.expires_at <= now.toISOString(), limit);
  }

  listUnnotifiedPending(now: Date, limit: number): Promise<AuthorizationRecord[]> {
    return this.pending((r) => r.expires_at > now.toISOString() && r.notify_status !== 'sent', limit);
  }

  // ---- AuditLog (read side of the chain) ----

  head(): Promise<ChainHead> {
    const last = this.chain.at(-1);
    return Promise.resolve(last ? { seq: last.seq, hash: last.hash, logged_at: last.logged_at } : { seq: 0, hash: GENESIS_HASH, logged_at: null });
  }

  event(seq: number): Promise<AuditEvent | undefined> {
    return this.auditEvent(seq);
  }

  async *events(from: number, to: number): AsyncIterable<AuditEvent> {
    for (const e of this.chain.slice(Math.max(0, from - 1), Math.max(0, to))) yield await Promise.resolve(e);
  }

  eventsAt(seqs: readonly number[]): Promise<AuditEvent[]> {
    return Promise.resolve([...new Set(seqs)].sort((a, b) => a - b).flatMap((s) => (this.chain[s - 1] ? [this.chain[s - 1]!] : [])));
  }

  seqRange(window: { since?: string | undefined; until?: string | undefined }): Promise<{ from: number; to: number } | null> {
    const inside = this.chain.filter((e) => (window.since === undefined || e.logged_at >= window.since) && (window.until === undefined || e.logged_at < window.until));
    return Promise.resolve(inside.length === 0 ? null : { from: inside[0]!.seq, to: inside.at(-1)!.seq });
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
    for (const s of this.items.values()) yield await Promise.resolve({ snapshot: snapshotOf(s.item), latestSeq: s.latestSeq, decisionSeq: s.decisionSeq, unlinked: false });
  }

  backlog(): Promise<number> {
    return Promise.resolve(0);
  }

  append(make: (prev: ChainHead, now: Date) => ChainEvent): Promise<ChainEvent> {
    const last = this.chain.at(-1);
    const event = make(last ? { seq: last.seq, hash: last.hash, logged_at: last.logged_at } : { seq: 0, hash: GENESIS_HASH, logged_at: null }, this.clock.now());
    this.chain.push(event as AuditEvent);
    return Promise.resolve(event);
  }

  /** The whole chain, in order. */
  chainEvents(): readonly AuditEvent[] {
    return this.chain;
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

  revoke(keyId: string, now: Date): Promise<void> {
    const entry = [...this.byHash.values()].find((k) => k.key_id === keyId);
    if (!entry) return Promise.reject(new AckdError('ERR_NOT_FOUND', `key_id: no API key ${keyId}`, { field: 'key_id' }));
    if (entry.revoked_at === null) this.byHash.set(entry.key_hash, { ...entry, revoked_at: now.toISOString() });
    return Promise.resolve();
  }
}
