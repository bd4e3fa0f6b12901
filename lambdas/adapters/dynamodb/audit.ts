import { BatchWriteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { AckdError } from '../../core/errors.ts';
import type { RequestId } from '../../core/ids.ts';
import type { Clock } from '../../core/ports.ts';
import { DECISION_EVENTS } from '../../core/lifecycle.ts';
import { eventFields, GENESIS_HASH, snapshotOf, type AdminChange, type AdminEventType, type AuditEvent, type AuditSnapshot, type ChainEvent, type Checkpoint, type PendingEvent } from '../../core/audit/event.ts';
import type { AuditLog, ChainHead, RequestItemView } from '../../core/audit/ports.ts';
import { appendLeaves, EMPTY_ROOT, keyOf, leafHash, rootOf, type NodeKey, type TreeNode } from '../../core/audit/merkle.ts';
import { EMPTY_HEAD, type AdminEntry, type OutboxEntry, type PendingSource, type Pointers, type RefusalReason, type RefusedEntry, type SequencerStore, type TreeHead } from '../../core/audit/sequencer.ts';
import { sealed, unavailableSealer, type OutboxSealer } from '../../core/audit/seal.ts';
import { QUARANTINE_COUNT_MAX, quarantineRecord, sortKeyOf, type QuarantinePage, type QuarantineQuery, type QuarantineRecord } from '../../core/audit/quarantine.ts';
import { applied, batchGet, scanPrefix, send } from './send.ts';
import { TABLE } from './schema.ts';

/**
 * The audit log in the request table. Items:
 * - on a request item, `audit_outbox`: the events of its changes not yet sequenced, in write
 *   order, each appended by the same conditional write as its change (`outboxUpdate`), and its
 *   place in the outbox index while the list is not empty;
 * - `audit#admin#<event_id>`: an operator's change waiting to be sequenced (in the outbox index
 *   until it is logged or refused; then kept until its retention ends);
 * - `audit#evt#<seq>`: one sequenced event (seq zero-padded to 12 digits);
 * - `audit#node#<level>#<index>`: a perfect node of the Merkle tree (never expires: proofs of
 *   new events need the nodes of old ones);
 * - `audit#head`: the tree head (size, newest hash, root, frontier, how far settling got) and the
 *   sequencer's lease; written by the sequencer only;
 * - `audit#ckpt#<seq>`: a signed tree head;
 * - `audit#quarantine#<digest>`: an outbox entry the sequencer refused (no valid seal, or a
 *   replay), with where it was, why, and when (core/audit/quarantine.ts); never in the outbox
 *   index, so it blocks nothing, but listed by time in partitions of its own (below).
 *
 * Every outbox entry carries its writer's seal (core/audit/seal.ts), made with a key the table
 * does not hold; writes fail when the seal cannot be made.
 *
 * GSI `audit-log` finds events by time (`events#<YYYY-MM>`, `<logged_at>#<seq>`), checkpoints by
 * seq (`checkpoints`, `<seq>`), the sources of waiting events (`outbox`, `<at>#<event_id>` of
 * the oldest) and quarantine records by time (`quarantine#<YYYY-MM-DD>`,
 * `<quarantined_at>#<digest>`: a day each, as a flood of forged entries may be large). Every read
 * names its partition exactly, so no reader of one kind sees another's items (and the table
 * stream's filter passes only `outbox`). The sequencing logic is the core's
 * (core/audit/sequencer.ts); this only stores.
 */
export const AUDIT_PK = { event: 'audit#evt#', checkpoint: 'audit#ckpt#', head: 'audit#head', node: 'audit#node#', admin: 'audit#admin#', quarantine: 'audit#quarantine#' } as const;
export const OUTBOX = 'outbox';
/** The audit-log index partitions of quarantine records: `quarantine#<YYYY-MM-DD>` of `quarantined_at`. */
export const QUARANTINE_PART = 'quarantine#';
/** Attributes of a request item that point at its events in the log (set when they are sequenced). */
export const ITEM_POINTERS = { latest: 'audit_seq', decision: 'decision_seq', requested: 'requested_seq', votes: 'vote_seqs', all: 'event_seqs' } as const;
/** The request item's list of waiting events. */
export const OUTBOX_ATTR = 'audit_outbox';
/** The outbox of versions before the sequencer: one event, linked inline. Still sequenced when found. */
const LEGACY_PENDING = 'audit_pending';
const CHECKPOINTS = 'checkpoints';
const REQ = 'req#';

export function pad(seq: number): string {
  return String(seq).padStart(12, '0');
}

function outboxKey(event: PendingEvent): string {
  return `${event.at}#${event.event_id}`;
}

/** An outbox entry with its writer's seal (DynamoAuditLog.sealRequestEntry): the only kind a writer may store. */
export type SealedEntry = OutboxEntry & { readonly seal: string };

/** The attributes a created request carries: its first event waiting, and its place in the outbox index. */
export function outboxOnCreate(entry: SealedEntry): Record<string, unknown> {
  return { [OUTBOX_ATTR]: [entry], [TABLE.auditLog.partitionKey]: OUTBOX, [TABLE.auditLog.sortKey]: outboxKey(entry.event) };
}

/** The SET clauses (with their names and values) that append a change's event to its item's outbox. */
export function outboxUpdate(entry: SealedEntry): { sets: string[]; names: Record<string, string>; values: Record<string, unknown> } {
  return {
    sets: ['#ob = list_append(if_not_exists(#ob, :obEmpty), :obEntry)', '#obPart = :obPart', '#obKey = if_not_exists(#obKey, :obKey)'],
    names: { '#ob': OUTBOX_ATTR, '#obPart': TABLE.auditLog.partitionKey, '#obKey': TABLE.auditLog.sortKey },
    values: { ':obEmpty': [], ':obEntry': [entry], ':obPart': OUTBOX, ':obKey': outboxKey(entry.event) },
  };
}

/** Whether a stored item has events waiting to be sequenced. */
export function hasWaitingEvents(item: Record<string, unknown>): boolean {
  const ob = item[OUTBOX_ATTR];
  return (Array.isArray(ob) && ob.length > 0) || item[LEGACY_PENDING] !== undefined;
}

export interface DynamoAuditLogOptions {
  readonly clock: Clock;
  readonly retentionDays: number;
  /** Seals every outbox entry written through this log; without it, writing an event fails (reading and sequencing work). */
  readonly sealer?: OutboxSealer | undefined;
}

export class DynamoAuditLog implements AuditLog, SequencerStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly opts: DynamoAuditLogOptions,
  ) {}

  // ---- sealing what writers put in an outbox ----

  /** What seals this log's outbox entries (and what its sequencer checks them with): the one given, else one that refuses. */
  get sealer(): OutboxSealer {
    return this.opts.sealer ?? unavailableSealer();
  }

  /** A request's outbox entry with its seal, bound to the request (what outboxOnCreate / outboxUpdate take). */
  sealRequestEntry(requestId: string, entry: OutboxEntry): Promise<SealedEntry> {
    return sealed(this.sealer, { kind: 'request', request_id: requestId }, entry);
  }

  // ---- the sequencer's store ----

  peekHead(): Promise<TreeHead> {
    return this.treeHead();
  }

  async acquire(owner: string, nowMs: number, untilMs: number): Promise<TreeHead | null> {
    let item: Record<string, unknown> | undefined;
    try {
      const out = await send(() =>
        this.doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { pk: AUDIT_PK.head },
            UpdateExpression: 'SET lease_owner = :o, lease_until = :u',
            ConditionExpression: 'attribute_not_exists(lease_until) OR lease_until < :now',
            ExpressionAttributeValues: { ':o': owner, ':u': untilMs, ':now': nowMs },
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      item = out.Attributes;
    } catch (e) {
      if ((e as { name?: string }).name === 'ConditionalCheckFailedException') return null;
      throw e;
    }
    const head = toHead(item ?? {});
    return head.size > 0 && item?.root === undefined ? this.upgradeHead(owner, head) : head;
  }

  /**
   * A log written before the Merkle tree has a head without root or frontier: the tree of its
   * events is built once (every event from seq 1 must still be there).
   */
  private async upgradeHead(owner: string, head: TreeHead): Promise<TreeHead> {
    let frontier: string[] = [];
    for (let from = 1; from <= head.size; from += 1000) {
      const to = Math.min(head.size, from + 999);
      const leaves: string[] = [];
      for await (const e of this.events(from, to)) leaves.push(leafHash(e.hash));
      if (leaves.length !== to - from + 1) throw new AckdError('ERR_INTERNAL', `audit log: events ${from}–${to} are not all there; the Merkle tree of this older log cannot be built`);
      const r = appendLeaves(frontier, from - 1, leaves);
      frontier = r.frontier;
      await this.putNodes(r.nodes);
    }
    const next: TreeHead = { ...head, root: rootOf(frontier), frontier, settled: head.size };
    if (!(await this.advance(owner, head.size, next))) throw new AckdError('ERR_CONFLICT', 'audit log: the head moved while its tree was built');
    return next;
  }

  async release(owner: string): Promise<void> {
    await applied(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: AUDIT_PK.head },
          UpdateExpression: 'REMOVE lease_owner, lease_until',
          ConditionExpression: 'lease_owner = :o',
          ExpressionAttributeValues: { ':o': owner },
        }),
      ),
    );
  }

  async pending(limit: number): Promise<PendingSource[]> {
    const { items } = await this.query({ part: OUTBOX, limit });
    if (items.length === 0) return [];
    // The index lags the table: each source is read again, consistently, and skipped when done.
    const fresh = new Map((await batchGet(this.doc, this.tableName, items.map((it) => ({ pk: it.pk })))).map((it) => [it.pk as string, it]));
    const out: PendingSource[] = [];
    for (const { pk } of items) {
      const it = fresh.get(pk as string);
      if (!it) continue;
      if ((pk as string).startsWith(AUDIT_PK.admin)) {
        // (as stored: the sequencer checks its seal before trusting any of it)
        const entry = (typeof it.entry === 'object' && it.entry !== null ? it.entry : {}) as Partial<AdminEntry>;
        out.push({ kind: 'admin', itemEventId: (pk as string).slice(AUDIT_PK.admin.length), event: entry.event!, change: entry.change!, seal: entry.seal });
        continue;
      }
      if (!(pk as string).startsWith(REQ)) {
        // Neither a request nor an operator change (put into the outbox index by hand): out of the index, so it holds no place there.
        await this.unindex(pk as string, true);
        continue;
      }
      const ob = it[OUTBOX_ATTR];
      const entries = Array.isArray(ob) ? [...(ob as OutboxEntry[])] : [];
      const legacy = it[LEGACY_PENDING] as (PendingEvent & { seq?: number }) | undefined;
      if (legacy) {
        // Before the sequencer a request changed no further until its event was linked: the item is its snapshot.
        const { seq: _reserved, ...event } = legacy;
        entries.unshift({ event, row: 'create', snapshot: snapshotOf(it as unknown as AuditSnapshot) });
      }
      if (entries.length === 0) {
        // In the outbox index with nothing waiting (written so, or emptied by hand): taken out of it, so it holds no place in the oldest-first reads.
        await this.unindex(pk as string);
        continue;
      }
      out.push({ kind: 'request', requestId: (pk as string).slice(REQ.length) as RequestId, item: it, latestSeq: numberOrNull(it[ITEM_POINTERS.latest]), entries });
    }
    return out;
  }

  async recentEvents(limit: number): Promise<Pick<ChainEvent, 'seq' | 'event_id' | 'at' | 'logged_at'>[]> {
    const head = await this.treeHead();
    if (head.size === 0 || head.logged_at === null) return [];
    const out: Pick<ChainEvent, 'seq' | 'event_id' | 'at' | 'logged_at'>[] = [];
    // The time index, newest month first (a month's partition newest first), until `limit`.
    for (const m of monthsBetween(head.first_logged_at ?? head.logged_at, head.logged_at).reverse()) {
      let start: Record<string, unknown> | undefined;
      do {
        const r = await this.query({ part: `events#${m}`, limit: limit - out.length, descending: true, start });
        for (const it of r.items) out.push({ seq: it.seq as number, event_id: it.event_id as string, at: it.at as string, logged_at: it.logged_at as string });
        start = r.next;
      } while (start && out.length < limit);
      if (out.length >= limit) break;
    }
    return out;
  }

  async beyondHead(size: number): Promise<ChainEvent[]> {
    const out: ChainEvent[] = [];
    for (let seq = size + 1; ; seq++) {
      const e = await this.event(seq);
      if (!e) return out;
      out.push(e);
    }
  }

  /**
   * Vacates a slot beyond the head (a stopped run's event that does not link): the item is
   * overwritten with a marker naming the event it held, never deleted (no function may delete
   * from the table), and the next put into the slot may take it (putEvents). The marker carries no
   * event_id and no audit-log index key, so every reader sees the slot as empty.
   */
  async removeSlot(seq: number, eventId: string): Promise<void> {
    const now = this.opts.clock.now().toISOString();
    await applied(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { pk: AUDIT_PK.event + pad(seq), vacated_event_id: eventId, vacated_at: now, [TABLE.ttlAttribute]: retainUntil(now, this.opts.retentionDays) },
          ConditionExpression: 'event_id = :id',
          ExpressionAttributeValues: { ':id': eventId },
        }),
      ),
    );
  }

  async putEvents(events: readonly ChainEvent[]): Promise<boolean> {
    let ok = true;
    for (let i = 0; i < events.length; i += 25) {
      const results = await Promise.all(events.slice(i, i + 25).map((e) => this.putOnce(eventItem(e, this.opts.retentionDays), 'attribute_not_exists(event_id)')));
      if (results.includes(false)) ok = false;
    }
    return ok;
  }

  async putNodes(nodes: readonly TreeNode[]): Promise<void> {
    const puts = nodes.map((n) => ({ PutRequest: { Item: nodeItem(n) } }));
    await Promise.all(
      chunks(puts, 25).map(async (batch) => {
        let pending = batch;
        for (let round = 0; pending.length > 0; round++) {
          if (round > 10) throw new AckdError('ERR_STORE_UNAVAILABLE', 'the store keeps deferring writes of the audit tree');
          const out = await send(() => this.doc.send(new BatchWriteCommand({ RequestItems: { [this.tableName]: pending } })));
          pending = (out.UnprocessedItems?.[this.tableName] as typeof batch | undefined) ?? [];
          if (pending.length > 0) await new Promise((r) => setTimeout(r, 20 * 2 ** Math.min(round, 5)));
        }
      }),
    );
  }

  advance(owner: string, from: number, to: TreeHead, opts: { readonly release?: boolean } = {}): Promise<boolean> {
    return applied(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: AUDIT_PK.head },
          UpdateExpression: `SET seq = :size, #hash = :hash, logged_at = :at, root = :root, frontier = :frontier, settled = :settled, first_logged_at = :first${opts.release ? ' REMOVE lease_owner, lease_until' : ''}`,
          ConditionExpression: `lease_owner = :o AND ${from === 0 ? '(attribute_not_exists(seq) OR seq = :from)' : 'seq = :from'}`,
          ExpressionAttributeNames: { '#hash': 'hash' },
          ExpressionAttributeValues: {
            ':o': owner,
            ':from': from,
            ':size': to.size,
            ':hash': to.hash,
            ':at': to.logged_at,
            ':root': to.root,
            ':frontier': [...to.frontier],
            ':settled': to.settled,
            ':first': to.first_logged_at,
          },
        }),
      ),
    );
  }

  async settleRequest(requestId: RequestId, eventIds: readonly string[], p: Pointers, known?: Readonly<Record<string, unknown>>): Promise<void> {
    const ids = new Set(eventIds);
    for (let attempt = 0; attempt < 20; attempt++) {
      // The item as the run read it, first (the write's condition pins its outbox); after a lost race, read again.
      const item = attempt === 0 && known ? known : await this.getItem(REQ + requestId);
      if (!item) return;
      const ob = (item[OUTBOX_ATTR] as OutboxEntry[] | undefined) ?? [];
      const gone = ob.flatMap((e, i) => (ids.has(e.event.event_id) ? [i] : []));
      const legacy = item[LEGACY_PENDING] as PendingEvent | undefined;
      const legacyGone = legacy !== undefined && ids.has(legacy.event_id);
      if (gone.length === 0 && !legacyGone) return; // settled already
      const rest = ob.filter((_, i) => !gone.includes(i));
      const names: Record<string, string> = { '#ob': OUTBOX_ATTR, '#key': TABLE.auditLog.sortKey };
      const values: Record<string, unknown> = { ':n': ob.length, ':latest': p.latest, ':none': [], ':all': [...p.all] };
      const sets = [`${ITEM_POINTERS.latest} = :latest`, `${ITEM_POINTERS.all} = list_append(if_not_exists(${ITEM_POINTERS.all}, :none), :all)`];
      if (p.decision !== null) {
        sets.push(`${ITEM_POINTERS.decision} = :decision`);
        values[':decision'] = p.decision;
      }
      if (p.requested !== null) {
        sets.push(`${ITEM_POINTERS.requested} = :requested`);
        values[':requested'] = p.requested;
      }
      if (p.votes.length > 0) {
        sets.push(`${ITEM_POINTERS.votes} = list_append(if_not_exists(${ITEM_POINTERS.votes}, :none), :votes)`);
        values[':votes'] = [...p.votes];
      }
      // The whole list is written back without them (removing several list indexes at once is
      // not applied alike by every DynamoDB implementation); the condition pins what was read.
      sets.push('#ob = :rest');
      values[':rest'] = rest;
      const removes: string[] = [];
      if (legacyGone) removes.push(LEGACY_PENDING);
      if (rest.length > 0) {
        sets.push('#key = :nextKey');
        values[':nextKey'] = outboxKey(rest[0]!.event);
      } else {
        removes.push('#part', '#key');
        names['#part'] = TABLE.auditLog.partitionKey;
      }
      const conditions = ['(attribute_not_exists(#ob) OR size(#ob) = :n)', ...gone.map((i, j) => `#ob[${i}].#ev.#id = :id${j}`)];
      if (gone.length > 0) Object.assign(names, { '#ev': 'event', '#id': 'event_id' });
      gone.forEach((i, j) => (values[`:id${j}`] = ob[i]!.event.event_id));
      const done = await applied(() =>
        this.doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { pk: REQ + requestId },
            UpdateExpression: `SET ${sets.join(', ')}${removes.length > 0 ? ` REMOVE ${removes.join(', ')}` : ''}`,
            ConditionExpression: conditions.join(' AND '),
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
          }),
        ),
      );
      if (done) return;
      // Another change appended an event meanwhile: read again.
    }
    throw new AckdError('ERR_STORE_UNAVAILABLE', `audit log: request ${requestId} keeps changing; its sequenced events are settled by the next run`);
  }

  /**
   * Takes an item out of the outbox index: a request with nothing waiting (only while nothing
   * waits on it), or (`stray`) an item of no kind that waits there.
   */
  private async unindex(pk: string, stray = false): Promise<void> {
    const names = { '#part': TABLE.auditLog.partitionKey, '#key': TABLE.auditLog.sortKey };
    const condition = stray
      ? { ConditionExpression: '#part = :outbox', ExpressionAttributeNames: names, ExpressionAttributeValues: { ':outbox': OUTBOX } }
      : {
          ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(#ob) OR NOT attribute_type(#ob, :list) OR size(#ob) = :zero) AND attribute_not_exists(#legacy)',
          ExpressionAttributeNames: { ...names, '#ob': OUTBOX_ATTR, '#legacy': LEGACY_PENDING },
          ExpressionAttributeValues: { ':list': 'L', ':zero': 0 },
        };
    await applied(() => this.doc.send(new UpdateCommand({ TableName: this.tableName, Key: { pk }, UpdateExpression: 'REMOVE #part, #key', ...condition })));
  }

  /**
   * Keeps a refused entry under its own key (idempotent: the key is a digest of where it was and
   * what it is), out of the outbox index and in the time index's quarantine partition of its day.
   * An entry too large to keep beside the record's own fields (a table writer may make one as
   * large as an item may be) is kept as its digest and size only: a quarantine write that
   * DynamoDB refuses would stop every sequencer run after it.
   */
  private async putQuarantine(source: string, entry: unknown, reason: RefusalReason, message: string): Promise<void> {
    const { id, ...record } = quarantineRecord(source, entry, reason, message, this.opts.clock.now());
    await send(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            pk: AUDIT_PK.quarantine + id,
            kind: 'audit-quarantine',
            ...record,
            [TABLE.auditLog.partitionKey]: QUARANTINE_PART + record.quarantined_at.slice(0, 10),
            [TABLE.auditLog.sortKey]: sortKeyOf({ id, quarantined_at: record.quarantined_at }),
            [TABLE.ttlAttribute]: retainUntil(record.quarantined_at, this.opts.retentionDays),
          },
        }),
      ),
    );
  }

  /**
   * Quarantine records of the window, read from the time index a day partition at a time (newest
   * or oldest day first), then counted beyond the limit (up to QUARANTINE_COUNT_MAX). Days before
   * the retention (records expire with it) and more than a day after this reader's clock (what a
   * sequencer whose clock runs ahead may write) are not read, so a wide window costs at most a
   * query per retained day.
   */
  async quarantineRecords(q: QuarantineQuery): Promise<QuarantinePage> {
    const now = this.opts.clock.now().getTime();
    const retainedSince = new Date(now - (this.opts.retentionDays + 2) * DAY_MS).toISOString();
    const first = q.since > retainedSince ? q.since : retainedSince;
    const lastMs = Math.min(q.until === undefined ? Infinity : Date.parse(q.until) - 1, now + DAY_MS);
    if (lastMs < Date.parse(first)) return { records: [], more: 0, more_exact: true };
    const last = new Date(lastMs).toISOString();
    const days = daysBetween(first, last);
    if (q.order === 'newest') days.reverse();
    // Keys are `<quarantined_at>#<digest>`: every key of [first, last] sorts between these.
    const range = { min: first, max: `${last}~`, descending: q.order === 'newest', onlyPk: AUDIT_PK.quarantine };
    const records: QuarantineRecord[] = [];
    let more = 0;
    for (const day of days) {
      let start: Record<string, unknown> | undefined;
      do {
        if (records.length < q.limit) {
          const r = await this.query({ part: QUARANTINE_PART + day, ...range, limit: q.limit - records.length, start });
          for (const it of r.items) records.push(toQuarantineRecord(it));
          start = r.next;
        } else {
          const r = await this.query({ part: QUARANTINE_PART + day, ...range, count: true, start });
          more += r.count;
          if (more > QUARANTINE_COUNT_MAX) return { records, more: QUARANTINE_COUNT_MAX, more_exact: false };
          start = r.next;
        }
      } while (start);
    }
    return { records, more, more_exact: true };
  }

  async quarantineRequest(requestId: RequestId, refused: readonly RefusedEntry[], item: Readonly<Record<string, unknown>>): Promise<Readonly<Record<string, unknown>> | null> {
    const source = REQ + requestId;
    await Promise.all(refused.map((r) => this.putQuarantine(source, r.entry, r.reason, r.message)));
    // `entries` as pending built them: the legacy entry (before the sequencer) first, when there is one.
    const legacy = item[LEGACY_PENDING] !== undefined;
    const ob = Array.isArray(item[OUTBOX_ATTR]) ? (item[OUTBOX_ATTR] as unknown[]) : [];
    const drop = new Set(refused.map((r) => r.index - (legacy ? 1 : 0)));
    const legacyGone = legacy && drop.has(-1);
    const rest = ob.filter((_, i) => !drop.has(i)) as OutboxEntry[];
    const names: Record<string, string> = { '#ob': OUTBOX_ATTR, '#part': TABLE.auditLog.partitionKey, '#key': TABLE.auditLog.sortKey };
    const values: Record<string, unknown> = { ':n': ob.length, ':rest': rest };
    const sets = ['#ob = :rest'];
    const removes: string[] = [];
    if (legacyGone) {
      removes.push('#legacy');
      names['#legacy'] = LEGACY_PENDING;
    }
    const waiting = rest[0]?.event ?? (legacy && !legacyGone ? (item[LEGACY_PENDING] as PendingEvent) : undefined);
    if (waiting) {
      // (still in the outbox index, keyed by the entry that now waits first)
      sets.push('#part = :outbox', '#key = :nextKey');
      values[':outbox'] = OUTBOX;
      values[':nextKey'] = outboxKey(waiting);
    } else removes.push('#part', '#key');
    // Writers only append and only the lease holder removes: the outbox as read is pinned by its size.
    const conditions = [ob.length === 0 ? '(attribute_not_exists(#ob) OR size(#ob) = :n)' : 'size(#ob) = :n'];
    try {
      const out = await send(() =>
        this.doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { pk: source },
            UpdateExpression: `SET ${sets.join(', ')}${removes.length > 0 ? ` REMOVE ${removes.join(', ')}` : ''}`,
            ConditionExpression: `attribute_exists(pk) AND ${conditions.join(' AND ')}`,
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      return out.Attributes ?? null;
    } catch (e) {
      if ((e as { name?: string }).name === 'ConditionalCheckFailedException') return null;
      throw e;
    }
  }

  async quarantineAdmin(itemEventId: string, entry: Readonly<Record<string, unknown>>, reason: RefusalReason, message: string): Promise<void> {
    const pk = AUDIT_PK.admin + itemEventId;
    await this.putQuarantine(pk, entry, reason, message);
    const seal = entry.seal;
    // Only the item as read (a genuine entry written there since is left for the next run): pinned by its seal.
    // (and only an item that is there: an update would otherwise create one)
    const pin =
      typeof seal === 'string'
        ? { ConditionExpression: 'attribute_exists(pk) AND #e.#s = :seal', ExpressionAttributeValues: { ':seal': seal } }
        : seal === undefined
          ? { ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(#e.#s)' }
          : { ConditionExpression: 'attribute_exists(pk) AND NOT attribute_type(#e.#s, :string)', ExpressionAttributeValues: { ':string': 'S' } };
    // Out of the outbox index (no function may delete items): it stays, marked, until its retention ends.
    const expires = retainUntil(this.opts.clock.now().toISOString(), this.opts.retentionDays);
    await applied(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk },
          UpdateExpression: 'SET #q = :q, #ttl = :ttl REMOVE #part, #key',
          ExpressionAttributeNames: { '#e': 'entry', '#s': 'seal', '#q': 'quarantined', '#ttl': TABLE.ttlAttribute, '#part': TABLE.auditLog.partitionKey, '#key': TABLE.auditLog.sortKey },
          ...pin,
          ExpressionAttributeValues: { ...('ExpressionAttributeValues' in pin ? pin.ExpressionAttributeValues : {}), ':q': reason, ':ttl': expires },
        }),
      ),
    );
  }

  /**
   * An operator change, once logged, leaves the outbox index; its item stays until its retention
   * ends (no ackd function may delete items: its IAM grants no DeleteItem). Written back into the
   * index, the sequencer refuses it as a replay.
   */
  async settleAdmin(eventId: string): Promise<void> {
    const expires = retainUntil(this.opts.clock.now().toISOString(), this.opts.retentionDays);
    await applied(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: AUDIT_PK.admin + eventId },
          UpdateExpression: 'SET #ttl = :ttl REMOVE #part, #key',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: { '#ttl': TABLE.ttlAttribute, '#part': TABLE.auditLog.partitionKey, '#key': TABLE.auditLog.sortKey },
          ExpressionAttributeValues: { ':ttl': expires },
        }),
      ),
    );
  }

  async enqueueAdmin(event: PendingEvent & { readonly type: AdminEventType }, change: AdminChange): Promise<void> {
    const entry: AdminEntry = await sealed(this.sealer, { kind: 'admin', event_id: event.event_id }, { event, change });
    await send(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { pk: AUDIT_PK.admin + event.event_id, entry, [TABLE.auditLog.partitionKey]: OUTBOX, [TABLE.auditLog.sortKey]: outboxKey(event) },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      ),
    );
  }

  async backlog(limit: number): Promise<{ count: number; oldest_at: string | null }> {
    const { items } = await this.query({ part: OUTBOX, limit });
    const first = items[0]?.[TABLE.auditLog.sortKey] as string | undefined;
    return { count: items.length, oldest_at: first ? first.slice(0, first.indexOf('#')) : null };
  }

  /** Writes an item only where none is: an event into its slot, a checkpoint once per seq. */
  /** Puts the item only where none is (or, for an event slot, where none holds an event: `attribute_not_exists(event_id)` takes a vacated one). */
  private putOnce(item: Record<string, unknown>, condition = 'attribute_not_exists(pk)'): Promise<boolean> {
    return applied(() => this.doc.send(new PutCommand({ TableName: this.tableName, Item: item, ConditionExpression: condition })));
  }

  // ---- reading ----

  /** The tree head as the sequencer last moved it. */
  async treeHead(): Promise<TreeHead> {
    return toHead((await this.getItem(AUDIT_PK.head)) ?? {});
  }

  async head(): Promise<ChainHead> {
    const h = await this.treeHead();
    return { seq: h.size, hash: h.hash, logged_at: h.logged_at, root: h.root };
  }

  async event(seq: number): Promise<AuditEvent | undefined> {
    const it = await this.getItem(AUDIT_PK.event + pad(seq));
    return it && it.event_id !== undefined ? eventFields(it) : undefined; // (a vacated slot holds no event)
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
    return items.filter((it) => it.event_id !== undefined).map(eventFields).sort((a, b) => a.seq - b.seq);
  }

  async *requestItems(): AsyncIterable<RequestItemView> {
    const seqOf = (v: unknown) => (typeof v === 'number' ? v : null);
    for await (const it of scanPrefix(this.doc, this.tableName, REQ, { consistent: true })) {
      const snapshot = snapshotOf(it as unknown as AuditSnapshot);
      yield {
        // (an item without its id, a table writer's, is named by its key)
        snapshot: typeof snapshot.request_id === 'string' ? snapshot : { ...snapshot, request_id: (it.pk as string).slice(REQ.length) as RequestId },
        latestSeq: seqOf(it[ITEM_POINTERS.latest]),
        decisionSeq: seqOf(it[ITEM_POINTERS.decision]),
        unlinked: hasWaitingEvents(it),
      };
    }
  }

  async seqRange(window: { since?: string | undefined; until?: string | undefined }): Promise<{ from: number; to: number } | null> {
    const head = await this.treeHead();
    if (head.size === 0) return null;
    if (!head.first_logged_at) return { from: 1, to: head.size };
    const first = window.since !== undefined && window.since > head.first_logged_at ? window.since : head.first_logged_at;
    // To the newest event even if this reader's clock is behind the sequencer's.
    const now = this.opts.clock.now().toISOString();
    const months = monthsBetween(first, window.until ?? (head.logged_at !== null && head.logged_at > now ? head.logged_at : now));
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
    if (window.until === undefined) to = head.size;
    else {
      for (const m of [...months].reverse()) {
        const r = await this.query({ part: `events#${m}`, below: window.until, limit: 1, descending: true });
        if (r.items[0]) {
          to = r.items[0].seq as number;
          break;
        }
      }
    }
    return to === undefined || to < from ? null : { from, to: Math.min(to, head.size) };
  }

  async nodes(keys: readonly NodeKey[]): Promise<Map<string, string>> {
    const unique = [...new Set(keys.map(nodeKey))];
    const items = await batchGet(this.doc, this.tableName, unique.map((pk) => ({ pk })));
    return new Map(items.map((it) => [keyOf(parseNodeKey(it.pk as string)), it.hash as string]));
  }

  async requestEventSeqs(requestId: string): Promise<number[] | undefined> {
    const it = await this.getItem(REQ + requestId);
    if (!it) return undefined;
    const all = it[ITEM_POINTERS.all];
    if (Array.isArray(all)) return all as number[];
    // Sequenced before the item listed all its events: what it points at.
    const seqs = [it[ITEM_POINTERS.requested], ...((it[ITEM_POINTERS.votes] as unknown[] | undefined) ?? []), it[ITEM_POINTERS.decision], it[ITEM_POINTERS.latest]];
    return [...new Set(seqs.filter((x): x is number => typeof x === 'number'))].sort((x, y) => x - y);
  }

  /**
   * Ids of requests whose decision or revocation was logged at or after `since`, newest first, at
   * most `limit` (the approvers' dashboard): read from the time index, newest month first.
   */
  async recentlyDecided(since: string, limit: number): Promise<RequestId[]> {
    const ids = new Set<RequestId>();
    // Up to the newest event's month, which may be after this clock's: logged_at never goes back
    // along the chain, so after a writer whose clock ran ahead, events are logged at its time.
    const newest = (await this.treeHead()).logged_at ?? '';
    const now = this.opts.clock.now().toISOString();
    const upTo = [since, now, newest].reduce((a, b) => (b > a ? b : a));
    for (const m of monthsBetween(since, upTo).reverse()) {
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

  /**
   * One page of the audit-log index: `min` <= key <= `max`, or key < `below`; with `onlyPk`, only
   * items whose pk starts with it; with `count`, only how many (`items` empty).
   */
  private async query(q: {
    part: string;
    min?: string | undefined;
    max?: string | undefined;
    below?: string | undefined;
    limit?: number;
    descending?: boolean;
    start?: Record<string, unknown> | undefined;
    onlyPk?: string;
    count?: boolean;
  }): Promise<{ items: Record<string, unknown>[]; count: number; next?: Record<string, unknown> }> {
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
    const names: Record<string, string> = cond.includes('#k') ? { '#p': ix.partitionKey, '#k': ix.sortKey } : { '#p': ix.partitionKey };
    if (q.onlyPk !== undefined) {
      names['#pk'] = TABLE.partitionKey;
      values[':pkPrefix'] = q.onlyPk;
    }
    const out = await send(() =>
      this.doc.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: ix.name,
          KeyConditionExpression: cond,
          ...(q.onlyPk !== undefined ? { FilterExpression: 'begins_with(#pk, :pkPrefix)' } : {}),
          ...(q.count ? { Select: 'COUNT' as const } : {}),
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ...(q.limit !== undefined ? { Limit: q.limit } : {}),
          ScanIndexForward: !q.descending,
          ...(q.start ? { ExclusiveStartKey: q.start } : {}),
        }),
      ),
    );
    const items = out.Items ?? [];
    const count = out.Count ?? items.length;
    return out.LastEvaluatedKey ? { items, count, next: out.LastEvaluatedKey } : { items, count };
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

/** The stored item of a perfect tree node (no expiry: proofs of new events need old nodes). */
export function nodeItem(n: TreeNode): Record<string, unknown> {
  return { pk: nodeKey(n), hash: n.hash };
}

/** The head item as the sequencer leaves it at `head` (for bulk loads that bypass the sequencer). */
export function headItem(head: TreeHead): Record<string, unknown> {
  return { pk: AUDIT_PK.head, seq: head.size, hash: head.hash, logged_at: head.logged_at, root: head.root, frontier: [...head.frontier], settled: head.settled, first_logged_at: head.first_logged_at };
}

const DAY_MS = 86_400_000;

/** A stored quarantine record as read back: every field as stored when it has the type a record's has (a table writer may have written anything there). */
function toQuarantineRecord(it: Record<string, unknown>): QuarantineRecord {
  const text = (v: unknown) => (typeof v === 'string' ? v : v === undefined ? '' : (JSON.stringify(v) ?? ''));
  return {
    id: text(it[TABLE.partitionKey]).slice(AUDIT_PK.quarantine.length),
    source: text(it.source),
    reason: text(it.reason),
    message: text(it.message),
    entry: it.entry ?? null,
    entry_bytes: typeof it.entry_bytes === 'number' ? it.entry_bytes : 0,
    entry_sha256: text(it.entry_sha256),
    quarantined_at: text(it.quarantined_at),
  };
}

/** YYYY-MM-DD of every UTC day from `a` to `b` (ISO times), inclusive. */
function daysBetween(a: string, b: string): string[] {
  const out: string[] = [];
  for (let t = Date.parse(a.slice(0, 10)); t <= Date.parse(b.slice(0, 10)); t += DAY_MS) out.push(new Date(t).toISOString().slice(0, 10));
  return out;
}

function retainUntil(iso: string, days: number): number {
  return Math.floor(Date.parse(iso) / 1000) + days * 86_400;
}

function toCheckpoint(item: Record<string, unknown>): Checkpoint {
  return {
    v: item.v === 2 ? 2 : 1,
    seq: item.seq as number,
    hash: item.hash as string,
    ...(typeof item.root === 'string' ? { root: item.root } : {}),
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

function toHead(h: Record<string, unknown>): TreeHead {
  if (typeof h.seq !== 'number') return EMPTY_HEAD;
  return {
    size: h.seq,
    hash: (h.hash as string | undefined) ?? GENESIS_HASH,
    logged_at: (h.logged_at as string | null | undefined) ?? null,
    root: (h.root as string | undefined) ?? EMPTY_ROOT,
    frontier: (h.frontier as string[] | undefined) ?? [],
    // (a head from before the sequencer has every event settled: linking settled inline)
    settled: typeof h.settled === 'number' ? h.settled : h.seq,
    first_logged_at: (h.first_logged_at as string | null | undefined) ?? null,
  };
}

function nodeKey(k: NodeKey): string {
  return `${AUDIT_PK.node}${k.level}#${pad(k.index)}`;
}

function parseNodeKey(pk: string): NodeKey {
  const [level, index] = pk.slice(AUDIT_PK.node.length).split('#');
  return { level: Number(level), index: Number(index) };
}

function numberOrNull(v: unknown): number | null {
  return typeof v === 'number' ? v : null;
}

function chunks<T>(xs: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}
