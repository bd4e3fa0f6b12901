import { GetCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { AckdError } from '../../core/errors.ts';
import type { RequestId } from '../../core/ids.ts';
import type { Clock } from '../../core/ports.ts';
import { DECISION_EVENTS, VOTE_EVENTS } from '../../core/lifecycle.ts';
import { chainEvent, eventFields, GENESIS_HASH, snapshotOf, type AuditEvent, type AuditSnapshot, type ChainEvent, type Checkpoint, type PendingEvent } from '../../core/audit/event.ts';
import type { AuditLog, ChainHead, RequestItemView } from '../../core/audit/ports.ts';
import { applied, batchGet, scanPrefix, send } from './send.ts';
import { TABLE } from './schema.ts';

/**
 * The audit chain in the request table. Items:
 * - `audit#evt#<seq>`: one event (seq zero-padded to 12 digits).
 * - `audit#head`: the newest event known (seq, hash, logged_at): a hint that only moves forward.
 * - `audit#ckpt#<seq>`: a signed checkpoint.
 * - on a request item, `audit_pending`: the event of its latest state change, written in the same
 *   conditional write as the change, until it is linked into the chain.
 *
 * GSI `audit-log` finds events by time (`events#<YYYY-MM>`, `<logged_at>#<seq>`), checkpoints by
 * seq (`checkpoints`, `<seq>`) and unlinked state changes (`outbox`, `<at>#<request_id>`).
 *
 * Linking without transactions (dynalite has none), and without forks or duplicates:
 * 1. The slot put `audit#evt#<n+1>` is conditional on the slot being empty, so exactly one event
 *    takes each position, and it names the hash of event n. Slots therefore fill without gaps.
 * 2. Before putting, the linker reserves the slot on the request (`audit_pending.seq`), by a
 *    conditional write on the reservation it read. A reservation moves away from slot s only after
 *    slot s is seen holding another event; so an event can only ever be put at one slot, and
 *    two linkers of the same event (a caller and the sweeper) find each other's work.
 *    The state change itself makes the first reservation (the slot after the head it read just
 *    before), so the usual link is a single put.
 * 3. Once the slot holds the event, `audit_pending` is removed and the head hint advanced.
 */
export const AUDIT_PK = { event: 'audit#evt#', checkpoint: 'audit#ckpt#', head: 'audit#head' } as const;
export const OUTBOX = 'outbox';
/** Attributes of a request item that point at its events in the chain (set when an event is linked). */
export const ITEM_POINTERS = { latest: 'audit_seq', decision: 'decision_seq', requested: 'requested_seq', votes: 'vote_seqs' } as const;
const CHECKPOINTS = 'checkpoints';
const REQ = 'req#';

export function pad(seq: number): string {
  return String(seq).padStart(12, '0');
}

/**
 * The attributes a state change adds to its conditional write: its event, reserved for the slot
 * after `head`, and its place in the outbox index.
 */
export function pendingEventAttributes(event: PendingEvent, head: ChainHead): Record<string, unknown> {
  const reserved: StoredPending = { ...event, seq: head.seq + 1 };
  return { audit_pending: reserved, [TABLE.auditLog.partitionKey]: OUTBOX, [TABLE.auditLog.sortKey]: `${event.at}#${event.event_id}` };
}

/** What a state change's writer knows right after its write: the item as written and the head it reserved after. */
export interface JustWritten {
  readonly item: Record<string, unknown>;
  readonly head: ChainHead;
}

interface StoredPending extends PendingEvent {
  readonly seq?: number;
}

export class DynamoAuditLog implements AuditLog {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly opts: { clock: Clock; retentionDays: number },
  ) {}

  // ---- linking ----

  /**
   * Links the request's pending event (if any) into the chain. Throws ERR_STORE_UNAVAILABLE when
   * it cannot. `written`: the caller's own write, which reserved the slot after the head it read;
   * while that slot is free, one put links the event.
   */
  async link(requestId: RequestId, written?: JustWritten): Promise<void> {
    const p = written?.item.audit_pending as StoredPending | undefined;
    if (written && p && p.seq === written.head.seq + 1) {
      const event = chainEvent(p, snapshotOf(written.item as unknown as AuditSnapshot), written.head, this.opts.clock.now());
      if (await this.putEvent(event)) return this.settle(requestId, event);
      const taken = await this.event(p.seq);
      if (taken?.event_id === p.event_id) return this.settle(requestId, taken);
    }
    for (let attempt = 0; attempt < 60; attempt++) {
      const item = await this.getItem(REQ + requestId);
      const p = item?.audit_pending as StoredPending | undefined;
      if (!item || !p) return;
      let prev: ChainHead;
      if (typeof p.seq === 'number') {
        const reserved = await this.event(p.seq);
        if (reserved?.event_id === p.event_id) return this.settle(requestId, reserved);
        if (reserved === undefined) {
          // Our slot is still free: it stays ours (moving away could let an earlier linker put this event twice).
          const before = p.seq === 1 ? undefined : await this.event(p.seq - 1);
          if (p.seq > 1 && before === undefined) throw new AckdError('ERR_STORE_UNAVAILABLE', `audit log: event ${p.seq - 1} is missing; cannot link after it`);
          prev = before ? { seq: before.seq, hash: before.hash, logged_at: before.logged_at } : { seq: 0, hash: GENESIS_HASH, logged_at: null };
        } else {
          prev = await this.probe({ seq: reserved.seq, hash: reserved.hash, logged_at: reserved.logged_at });
        }
      } else {
        prev = await this.headHint();
      }
      const target = prev.seq + 1;
      if (p.seq !== target && !(await this.reserve(requestId, p, target))) continue;
      const event = chainEvent(p, snapshotOf(item as unknown as AuditSnapshot), prev, this.opts.clock.now());
      if (await this.putEvent(event)) return this.settle(requestId, event);
      const taken = await this.event(target);
      if (taken?.event_id === p.event_id) return this.settle(requestId, taken);
      await sleep(Math.min(200, 2 ** Math.min(attempt, 7)) * Math.random());
    }
    throw new AckdError('ERR_STORE_UNAVAILABLE', 'audit log: too much contention to link an event; it stays pending and will be linked later');
  }

  /**
   * Appends an event of no request (a policy change) at the end of the chain: `make` builds it
   * after the true head, and one conditional put claims the slot; a slot taken meanwhile (by a
   * request's event) is retried after the new head. Nothing waits to be linked afterwards.
   */
  async append(make: (prev: ChainHead, now: Date) => ChainEvent): Promise<ChainEvent> {
    for (let attempt = 0; attempt < 60; attempt++) {
      const hint = await this.headHint();
      const prev = await this.probe({ seq: hint.seq, hash: hint.hash, logged_at: hint.logged_at });
      const event = make(prev, this.opts.clock.now());
      if (await this.putOnce(eventItem(event, this.opts.retentionDays))) {
        await this.advanceHead(event);
        return event;
      }
      await sleep(Math.min(200, 2 ** Math.min(attempt, 7)) * Math.random());
    }
    throw new AckdError('ERR_STORE_UNAVAILABLE', 'audit log: too much contention to append an event; try again');
  }

  /** Links up to `limit` state changes whose linking failed earlier; one that fails again stays for the next run. */
  async linkBacklog(limit: number): Promise<{ linked: number; failed: number }> {
    const out = await this.query({ part: OUTBOX, limit });
    let linked = 0;
    let failed = 0;
    for (const it of out.items) {
      const requestId = (it.pk as string).slice(REQ.length) as RequestId;
      try {
        await this.link(requestId);
        linked++;
      } catch {
        failed++;
      }
    }
    return { linked, failed };
  }

  async backlog(limit: number): Promise<number> {
    return (await this.query({ part: OUTBOX, limit })).items.length;
  }

  private reserve(requestId: RequestId, p: StoredPending, target: number): Promise<boolean> {
    return applied(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: REQ + requestId },
          UpdateExpression: 'SET audit_pending.seq = :target',
          ConditionExpression:
            typeof p.seq === 'number' ? 'audit_pending.event_id = :id AND audit_pending.seq = :old' : 'audit_pending.event_id = :id AND attribute_not_exists(audit_pending.seq)',
          ExpressionAttributeValues: { ':target': target, ':id': p.event_id, ...(typeof p.seq === 'number' ? { ':old': p.seq } : {}) },
        }),
      ),
    );
  }

  /** Writes an item only where none is: an event into its slot, a checkpoint once per seq. */
  private putOnce(item: Record<string, unknown>): Promise<boolean> {
    return applied(() => this.doc.send(new PutCommand({ TableName: this.tableName, Item: item, ConditionExpression: 'attribute_not_exists(pk)' })));
  }

  private putEvent(event: AuditEvent): Promise<boolean> {
    return this.putOnce(eventItem(event, this.opts.retentionDays));
  }

  /** The event is in the chain: clear it from the request and move the head hint forward. */
  private async settle(requestId: RequestId, event: AuditEvent): Promise<void> {
    await Promise.all([this.clearPending(requestId, event), this.advanceHead(event)]);
  }

  /**
   * Clears the linked event from its request and points the request at it: `audit_seq` is the
   * request's latest event, `decision_seq` the event that decided it. Issuance and live
   * verification follow these pointers to compare the item with what the chain recorded.
   * Not applied: another linker settled it.
   */
  private async clearPending(requestId: RequestId, event: AuditEvent): Promise<void> {
    const ix = TABLE.auditLog;
    const decides = DECISION_EVENTS.has(event.type);
    const first = event.type === 'requested';
    const vote = VOTE_EVENTS.has(event.type);
    await applied(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: REQ + requestId },
          UpdateExpression: `SET ${ITEM_POINTERS.latest} = :seq${decides ? `, ${ITEM_POINTERS.decision} = :seq` : ''}${first ? `, ${ITEM_POINTERS.requested} = :seq` : ''}${vote ? `, ${ITEM_POINTERS.votes} = list_append(if_not_exists(${ITEM_POINTERS.votes}, :none), :seqs)` : ''} REMOVE audit_pending, #part, #key`,
          ConditionExpression: 'audit_pending.event_id = :id',
          ExpressionAttributeNames: { '#part': ix.partitionKey, '#key': ix.sortKey },
          ExpressionAttributeValues: { ':id': event.event_id, ':seq': event.seq, ...(vote ? { ':none': [], ':seqs': [event.seq] } : {}) },
        }),
      ),
    );
  }

  /** Not applied: the head is already further on. */
  private async advanceHead(event: ChainEvent): Promise<void> {
    await applied(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: AUDIT_PK.head },
          UpdateExpression: 'SET seq = :seq, #hash = :hash, logged_at = :at, first_logged_at = if_not_exists(first_logged_at, :at)',
          ConditionExpression: 'attribute_not_exists(pk) OR seq < :seq',
          ExpressionAttributeNames: { '#hash': 'hash' },
          ExpressionAttributeValues: { ':seq': event.seq, ':hash': event.hash, ':at': event.logged_at },
        }),
      ),
    );
  }

  // ---- reading ----

  /** The head as last recorded: possibly behind the chain, never ahead of it. */
  async headHint(): Promise<ChainHead & { first_logged_at?: string }> {
    const h = await this.getItem(AUDIT_PK.head);
    if (!h) return { seq: 0, hash: GENESIS_HASH, logged_at: null };
    return { seq: h.seq as number, hash: h.hash as string, logged_at: h.logged_at as string, first_logged_at: h.first_logged_at as string };
  }

  /** Walks forward from `from` to the last event in the chain. */
  private async probe(from: ChainHead): Promise<ChainHead> {
    let cur = from;
    for (;;) {
      const next = await this.event(cur.seq + 1);
      if (!next) return cur;
      cur = { seq: next.seq, hash: next.hash, logged_at: next.logged_at };
    }
  }

  async head(): Promise<ChainHead> {
    const { seq, hash, logged_at } = await this.headHint();
    return this.probe({ seq, hash, logged_at });
  }

  async event(seq: number): Promise<AuditEvent | undefined> {
    const it = await this.getItem(AUDIT_PK.event + pad(seq));
    return it ? eventFields(it) : undefined;
  }

  async *events(from: number, to: number): AsyncIterable<AuditEvent> {
    for (let start = Math.max(1, from); start <= to; start += 100) {
      const end = Math.min(to, start + 99);
      const seqs: number[] = [];
      for (let s = start; s <= end; s++) seqs.push(s);
      yield* await this.eventsAt(seqs);
    }
  }

  async eventsAt(seqs: readonly number[]): Promise<AuditEvent[]> {
    const items = await batchGet(this.doc, this.tableName, [...new Set(seqs)].map((s) => ({ pk: AUDIT_PK.event + pad(s) })));
    return items.map(eventFields).sort((a, b) => a.seq - b.seq);
  }

  async *requestItems(): AsyncIterable<RequestItemView> {
    const seqOf = (v: unknown) => (typeof v === 'number' ? v : null);
    for await (const it of scanPrefix(this.doc, this.tableName, REQ, { consistent: true })) {
      yield {
        snapshot: snapshotOf(it as unknown as AuditSnapshot),
        latestSeq: seqOf(it[ITEM_POINTERS.latest]),
        decisionSeq: seqOf(it[ITEM_POINTERS.decision]),
        unlinked: it.audit_pending !== undefined,
      };
    }
  }

  async seqRange(window: { since?: string | undefined; until?: string | undefined }): Promise<{ from: number; to: number } | null> {
    const hint = await this.headHint();
    if (!hint.first_logged_at) {
      const h = await this.head();
      return h.seq === 0 ? null : { from: 1, to: h.seq };
    }
    const first = window.since !== undefined && window.since > hint.first_logged_at ? window.since : hint.first_logged_at;
    // To the newest event even if this reader's clock is behind the writer's.
    const now = this.opts.clock.now().toISOString();
    const months = monthsBetween(first, window.until ?? (hint.logged_at !== null && hint.logged_at > now ? hint.logged_at : now));
    let from: number | undefined;
    for (const m of months) {
      const r = await this.query({ part: `events#${m}`, min: window.since, limit: 1 });
      if (r.items[0]) {
        from = r.items[0].seq as number;
        break;
      }
    }
    if (from === undefined) return null;
    let to: number | undefined;
    if (window.until === undefined) to = (await this.head()).seq;
    else {
      for (const m of [...months].reverse()) {
        const r = await this.query({ part: `events#${m}`, below: window.until, limit: 1, descending: true });
        if (r.items[0]) {
          to = r.items[0].seq as number;
          break;
        }
      }
    }
    return to === undefined || to < from ? null : { from, to };
  }

  /**
   * Ids of requests whose decision or revocation was logged at or after `since`, newest first, at
   * most `limit` (the approvers' dashboard): read from the time index, newest month first.
   */
  async recentlyDecided(since: string, limit: number): Promise<RequestId[]> {
    const ids = new Set<RequestId>();
    const now = this.opts.clock.now().toISOString();
    for (const m of monthsBetween(since, since > now ? since : now).reverse()) {
      let start: Record<string, unknown> | undefined;
      do {
        const r = await this.query({ part: `events#${m}`, min: since, limit: 200, descending: true, start });
        for (const it of r.items) {
          if ((DECISION_EVENTS.has(it.type as string) || it.type === 'revoked') && typeof it.request_id === 'string') ids.add(it.request_id as RequestId);
          if (ids.size >= limit) return [...ids];
        }
        start = r.next;
      } while (start);
    }
    return [...ids];
  }

  // ---- checkpoints ----

  putCheckpoint(c: Checkpoint): Promise<boolean> {
    return this.putOnce(checkpointItem(c, this.opts.retentionDays));
  }

  async checkpointAtOrBefore(seq: number): Promise<Checkpoint | undefined> {
    const r = await this.query({ part: CHECKPOINTS, max: pad(seq), limit: 1, descending: true });
    return r.items[0] ? toCheckpoint(r.items[0]) : undefined;
  }

  async checkpointAtOrAfter(seq: number): Promise<Checkpoint | undefined> {
    const r = await this.query({ part: CHECKPOINTS, min: pad(seq), limit: 1 });
    return r.items[0] ? toCheckpoint(r.items[0]) : undefined;
  }

  async *checkpoints(from: number, to: number): AsyncIterable<Checkpoint> {
    let start: Record<string, unknown> | undefined;
    do {
      const r = await this.query({ part: CHECKPOINTS, min: pad(from), max: pad(to), limit: 500, start });
      for (const it of r.items) yield toCheckpoint(it);
      start = r.next;
    } while (start);
  }

  // ---- plumbing ----

  private async getItem(pk: string): Promise<Record<string, unknown> | undefined> {
    const out = await send(() => this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk }, ConsistentRead: true })));
    return out.Item;
  }

  /** One page of the audit-log index: `min` <= key <= `max`, or key < `below`. */
  private async query(q: {
    part: string;
    min?: string | undefined;
    max?: string | undefined;
    below?: string | undefined;
    limit: number;
    descending?: boolean;
    start?: Record<string, unknown> | undefined;
  }): Promise<{ items: Record<string, unknown>[]; next?: Record<string, unknown> }> {
    const ix = TABLE.auditLog;
    let cond = '#p = :p';
    const values: Record<string, unknown> = { ':p': q.part };
    if (q.min !== undefined && q.max !== undefined) {
      cond += ' AND #k BETWEEN :min AND :max';
      Object.assign(values, { ':min': q.min, ':max': q.max });
    } else if (q.min !== undefined) {
      cond += ' AND #k >= :min';
      values[':min'] = q.min;
    } else if (q.max !== undefined) {
      cond += ' AND #k <= :max';
      values[':max'] = q.max;
    } else if (q.below !== undefined) {
      cond += ' AND #k < :below';
      values[':below'] = q.below;
    }
    const out = await send(() =>
      this.doc.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: ix.name,
          KeyConditionExpression: cond,
          ExpressionAttributeNames: cond.includes('#k') ? { '#p': ix.partitionKey, '#k': ix.sortKey } : { '#p': ix.partitionKey },
          ExpressionAttributeValues: values,
          Limit: q.limit,
          ScanIndexForward: !q.descending,
          ...(q.start ? { ExclusiveStartKey: q.start } : {}),
        }),
      ),
    );
    return out.LastEvaluatedKey ? { items: out.Items ?? [], next: out.LastEvaluatedKey } : { items: out.Items ?? [] };
  }
}

/** The stored item of an event: the event, its key, its place in the time index, and its retention. */
export function eventItem(event: ChainEvent, retentionDays: number): Record<string, unknown> {
  const ix = TABLE.auditLog;
  return {
    ...event,
    pk: AUDIT_PK.event + pad(event.seq),
    [ix.partitionKey]: `events#${event.logged_at.slice(0, 7)}`,
    [ix.sortKey]: `${event.logged_at}#${pad(event.seq)}`,
    [TABLE.ttlAttribute]: retainUntil(event.logged_at, retentionDays),
  };
}

/** The stored item of a checkpoint; kept a day longer than events, so the checkpoint before the oldest retained event still anchors it. */
export function checkpointItem(c: Checkpoint, retentionDays: number): Record<string, unknown> {
  const ix = TABLE.auditLog;
  return { ...c, pk: AUDIT_PK.checkpoint + pad(c.seq), [ix.partitionKey]: CHECKPOINTS, [ix.sortKey]: pad(c.seq), [TABLE.ttlAttribute]: retainUntil(c.signed_at, retentionDays + 1) };
}

/** The head hint as `settle` leaves it after `last` (for bulk loads that bypass linking). */
export function headItem(last: AuditEvent, firstLoggedAt: string): Record<string, unknown> {
  return { pk: AUDIT_PK.head, seq: last.seq, hash: last.hash, logged_at: last.logged_at, first_logged_at: firstLoggedAt };
}

function retainUntil(iso: string, days: number): number {
  return Math.floor(Date.parse(iso) / 1000) + days * 86_400;
}

function toCheckpoint(item: Record<string, unknown>): Checkpoint {
  return {
    v: 1,
    seq: item.seq as number,
    hash: item.hash as string,
    logged_at: item.logged_at as string,
    signed_at: item.signed_at as string,
    key_id: item.key_id as string,
    alg: item.alg as Checkpoint['alg'],
    signature: item.signature as string,
  };
}

/** YYYY-MM of every month from `a` to `b`, inclusive. */
function monthsBetween(a: string, b: string): string[] {
  const out: string[] = [];
  let y = Number(a.slice(0, 4));
  let m = Number(a.slice(5, 7));
  const endY = Number(b.slice(0, 4));
  const endM = Number(b.slice(5, 7));
  while (y < endY || (y === endY && m <= endM)) {
    out.push(`${y}-${String(m).padStart(2, '0')}`);
    if (++m > 12) {
      m = 1;
      y++;
    }
  }
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
