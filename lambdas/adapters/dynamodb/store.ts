import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { AckdError } from '../../core/errors.ts';
import type { AgentId, RequestId } from '../../core/ids.ts';
import type { ApiKeyEntry, ApiKeyStore, Applied, RequestStore } from '../../core/ports.ts';
import { conditionOf, explainRefused, TRANSITIONS, type Clause, type Operand, type Params, type StoredItem, type Transition, type TransitionName } from '../../core/lifecycle.ts';
import type { AuthorizationRecord } from '../../core/request.ts';
import { canonicalJson, snapshotOf, type AuditEvent, type PendingEvent } from '../../core/audit/event.ts';
import type { Payload } from '../../core/payload.ts';
import { DynamoAuditLog, type DynamoAuditLogOptions, ITEM_POINTERS, OUTBOX_ATTR, outboxOnCreate, outboxUpdate, type SealedEntry } from './audit.ts';
import { applied as conditionHeld, batchGet, documentClient, isConditionFailure, scanPrefix, send, textOf } from './send.ts';
import { TABLE } from './schema.ts';

const REQ = 'req#';
const KEY = 'apikey#';
/** Attributes that are storage bookkeeping, not part of the record. */
const INTERNAL = new Set([
  'pk',
  'pending',
  'retain_until',
  'issuing_claim',
  'issuing_until',
  'kind',
  'audit_pending',
  OUTBOX_ATTR,
  'refused_attempts',
  'voters',
  'escalated_at',
  ITEM_POINTERS.latest,
  ITEM_POINTERS.decision,
  ITEM_POINTERS.requested,
  ITEM_POINTERS.votes,
  ITEM_POINTERS.all,
  TABLE.auditLog.partitionKey,
  TABLE.auditLog.sortKey,
]);

/**
 * The payload is stored as its canonical JSON text (`payload_json`), not as a DynamoDB map:
 * DynamoDB numbers cannot hold every JSON number (1e300, -0) and maps drop nothing but reorder,
 * so only the text round-trips exactly. The record carries it parsed.
 */
const PAYLOAD_ATTR = 'payload_json';

function toRecord(item: Record<string, unknown>): AuthorizationRecord {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(item)) if (!INTERNAL.has(k)) out[k] = v;
  if (PAYLOAD_ATTR in out) {
    const text = out[PAYLOAD_ATTR];
    delete out[PAYLOAD_ATTR];
    out.payload = typeof text === 'string' ? parseStoredPayload(text) : null;
  }
  return out as unknown as AuthorizationRecord;
}

/** A stored payload text; one that is not a JSON object (written into the table) reads as an empty object, which never matches its digest. */
function parseStoredPayload(text: string): Payload {
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Payload;
  } catch {
    // falls through
  }
  return {};
}

/** The item attributes of a record: its payload as canonical JSON text. */
function recordAttributes(record: AuthorizationRecord): Record<string, unknown> {
  const { payload, ...rest } = record;
  return payload === undefined || payload === null ? { ...rest } : { ...rest, [PAYLOAD_ATTR]: canonicalJson(payload) };
}

function applied(item: Record<string, unknown>, changed: boolean): Applied {
  const seq = (k: string) => (typeof item[k] === 'number' ? item[k] : null);
  const votes = item[ITEM_POINTERS.votes];
  const voteSeqs = Array.isArray(votes) ? votes.filter((v): v is number => typeof v === 'number') : [];
  return { record: toRecord(item), decisionSeq: seq(ITEM_POINTERS.decision), requestedSeq: seq(ITEM_POINTERS.requested), voteSeqs, changed };
}

type Update = Omit<UpdateCommandInput, 'TableName' | 'Key' | 'ReturnValues'>;

/**
 * The conjuncts of a condition, nested ANDs flattened, without an OR that has another conjunct
 * among its members (absorption: `A AND (A OR B)` is `A`; e.g. the claim's "the approval is in
 * the log or nothing waits" beside "the approval is in the log", two guards kept apart only to
 * name the refusal). The same condition, shorter to evaluate and to parse.
 */
function conjuncts(c: Clause): Clause[] {
  const flat = (x: Clause): Clause[] => ('all' in x ? x.all.flatMap(flat) : [x]);
  const all = flat(c);
  const keys = new Set(all.map((x) => JSON.stringify(x)));
  return all.filter((x) => !('any' in x && x.any.some((m) => keys.has(JSON.stringify(m)))));
}

/**
 * A lifecycle row as DynamoDB expressions: the condition is the item's existence, the row's
 * from-state and its guards; the update is the row's updates, and a change of `decision` leaves
 * the pending index.
 */
export function compileTransition(t: Transition, params: Params): Update {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const name = (field: string) => {
    const key = `#${field}`;
    names[key] = field;
    return key;
  };
  let n = 0;
  const value = (x: unknown) => {
    const key = `:v${n++}`;
    values[key] = x;
    return key;
  };
  const paramValue = (o: Operand): unknown => {
    if ('field' in o) throw new Error('lifecycle: a list element must be a value');
    if ('value' in o) return o.value;
    if (!Object.hasOwn(params, o.param)) {
      if (o.orNull) return null;
      throw new Error(`lifecycle: parameter ${o.param} is missing`);
    }
    return params[o.param];
  };
  const operand = (o: Operand): string => ('field' in o ? name(o.field) : value(paramValue(o)));
  // Parentheses only where precedence needs them (NOT binds tighter than AND, AND than OR): an OR
  // group inside an AND. DynamoDB refuses redundant ones (`((a OR b))`), and the local store's
  // parser takes time exponential in their nesting (the issuance claim's condition, nested three
  // deep, cost dynalite ~10 ms of CPU to parse, flat ~0.7 ms). Same condition either way.
  const cond = (c: Clause, inAnd: boolean): string => {
    if ('all' in c) return c.all.length === 0 ? 'attribute_exists(pk)' : c.all.map((x) => cond(x, true)).join(' AND ');
    if ('any' in c) {
      const either = c.any.map((x) => cond(x, false)).join(' OR ');
      return c.any.length > 1 && inAnd ? `(${either})` : either;
    }
    switch (c.op) {
      case 'absent':
        return `attribute_not_exists(${name(c.field)})`;
      case 'null':
        return `attribute_type(${name(c.field)}, ${value('NULL')})`;
      case 'notNull':
        return `attribute_exists(${name(c.field)}) AND NOT attribute_type(${name(c.field)}, ${value('NULL')})`;
      case 'size':
        return `size(${name(c.field)}) = ${operand(c.to)}`;
      case 'lacks':
        return `NOT contains(${name(c.field)}, ${operand(c.to)})`;
      default:
        return `${name(c.field)} ${c.op} ${operand(c.to)}`;
    }
  };
  const sets: string[] = [];
  const adds: string[] = [];
  const removes: string[] = [];
  for (const u of t.updates) {
    if ('set' in u) sets.push(`${name(u.set)} = ${operand(u.to)}`);
    else if ('add' in u) adds.push(`${name(u.add)} ${value(u.by)}`);
    else if ('append' in u) sets.push(`${name(u.append)} = list_append(if_not_exists(${name(u.append)}, ${value([])}), ${value([paramValue(u.item)])})`);
    else removes.push(name(u.remove));
  }
  if (t.updates.some((u) => 'set' in u && u.set === 'decision')) removes.push(name('pending'));
  const condition = ['attribute_exists(pk)', ...conjuncts(conditionOf(t)).map((c) => cond(c, true))].join(' AND ');
  const expr = [sets.length ? `SET ${sets.join(', ')}` : '', adds.length ? `ADD ${adds.join(', ')}` : '', removes.length ? `REMOVE ${removes.join(', ')}` : ''].filter(Boolean).join(' ');
  return {
    UpdateExpression: expr,
    ConditionExpression: condition,
    ExpressionAttributeNames: names,
    ...(n > 0 ? { ExpressionAttributeValues: values } : {}),
  };
}

/**
 * RequestStore on DynamoDB: every transition is one UpdateItem with a ConditionExpression, and
 * that same write appends the transition's audit event to the item's outbox (with the row and
 * parameters the sequencer replays to know what the event records). Nothing global is touched:
 * the sequencer (core/audit/sequencer.ts) gives the event its place in the log afterwards.
 */
export class DynamoRequestStore implements RequestStore {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
    readonly audit: DynamoAuditLog,
  ) {
    this.doc = documentClient(client);
  }

  /** The request store and its audit log on one table. */
  static withAudit(client: DynamoDBClient, tableName: string, opts: DynamoAuditLogOptions): DynamoRequestStore {
    return new DynamoRequestStore(client, tableName, new DynamoAuditLog(documentClient(client), tableName, opts));
  }

  async create(record: AuthorizationRecord, retentionUntilEpochSeconds: number, event: PendingEvent): Promise<void> {
    try {
      const item = { pk: REQ + record.request_id, ...recordAttributes(record), pending: 'pending', retain_until: retentionUntilEpochSeconds, ...outboxOnCreate(await this.audit.sealRequestEntry(record.request_id, { event, row: 'create', snapshot: snapshotOf(record) })) };
      await send(() => this.doc.send(new PutCommand({ TableName: this.tableName, Item: item, ConditionExpression: 'attribute_not_exists(pk)' })));
    } catch (e) {
      if (isConditionFailure(e)) throw new AckdError('ERR_CONFLICT', `request_id: ${record.request_id} already exists`);
      throw e;
    }
  }

  async get(requestId: RequestId): Promise<AuthorizationRecord | undefined> {
    return (await this.getWithSeqs(requestId))?.record;
  }

  async getWithSeqs(requestId: RequestId): Promise<Applied | undefined> {
    const out = await send(() => this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: REQ + requestId }, ConsistentRead: true })));
    return out.Item ? applied(out.Item, false) : undefined;
  }

  /**
   * An agent's requests, newest first. Audit events carry `agent_id` and `requested_at` too, so
   * they share the by-agent index: they are filtered out, and index pages are read until `limit`
   * requests are found. Each request is then read from its own item (consistently: the index
   * lags), so a listing shows where it stands now. `after` continues a listing just after a
   * request it returned: the index is resumed at that request's key (table key and index keys),
   * so requests made in the same millisecond keep the index's order and no page repeats or skips
   * one. A request deleted since (retention) is left out.
   */
  async listByAgent(agentId: AgentId, opts: { limit?: number; after?: { readonly requested_at: string; readonly request_id: RequestId } } = {}): Promise<AuthorizationRecord[]> {
    const ix = TABLE.byAgent;
    const limit = opts.limit ?? 50;
    const pks: string[] = [];
    let start: Record<string, unknown> | undefined = opts.after ? { pk: REQ + opts.after.request_id, [ix.partitionKey]: agentId, [ix.sortKey]: opts.after.requested_at } : undefined;
    while (pks.length < limit) {
      const from = start;
      const out = await send(() =>
        this.doc.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: ix.name,
            KeyConditionExpression: '#a = :a',
            FilterExpression: 'begins_with(pk, :req)',
            ProjectionExpression: 'pk',
            ExpressionAttributeNames: { '#a': ix.partitionKey },
            ExpressionAttributeValues: { ':a': agentId, ':req': REQ },
            ScanIndexForward: false,
            // Each request has a few events beside it in the index.
            Limit: Math.min(Math.max(limit * 4, 100), 1000),
            ...(from ? { ExclusiveStartKey: from } : {}),
          }),
        ),
      );
      for (const it of out.Items ?? []) if (pks.length < limit) pks.push(it.pk as string);
      start = out.LastEvaluatedKey;
      if (!start) break;
    }
    if (pks.length === 0) return [];
    const items = await batchGet(this.doc, this.tableName, pks.map((pk) => ({ pk })));
    const byPk = new Map(items.map((it) => [it.pk as string, it]));
    return pks.flatMap((pk) => (byPk.has(pk) ? [toRecord(byPk.get(pk)!)] : []));
  }

  async listExpiredPending(now: Date, limit: number): Promise<AuthorizationRecord[]> {
    const ix = TABLE.pendingByExpiry;
    const out = await send(() =>
      this.doc.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: ix.name,
          KeyConditionExpression: '#p = :p AND #e <= :now',
          ExpressionAttributeNames: { '#p': ix.partitionKey, '#e': ix.sortKey },
          ExpressionAttributeValues: { ':p': 'pending', ':now': now.toISOString() },
          Limit: limit,
        }),
      ),
    );
    return (out.Items ?? []).map(toRecord);
  }

  async listRecentlyDecided(since: Date, limit: number): Promise<AuthorizationRecord[]> {
    const ids = await this.audit.recentlyDecided(since.toISOString(), limit);
    if (ids.length === 0) return [];
    const items = await batchGet(this.doc, this.tableName, ids.map((id) => ({ pk: REQ + id })));
    const byId = new Map(items.map((it) => [it.request_id as string, toRecord(it)]));
    return ids.flatMap((id) => (byId.has(id) ? [byId.get(id)!] : []));
  }

  listPending(now: Date, limit: number): Promise<AuthorizationRecord[]> {
    return this.pendingUntil(now, limit);
  }

  listUnnotifiedPending(now: Date, limit: number): Promise<AuthorizationRecord[]> {
    return this.pendingUntil(now, limit, { expression: 'notify_status <> :sent', values: { ':sent': 'sent' } });
  }

  /** Requests still pending after `now`, soonest deadline first, optionally filtered. */
  private async pendingUntil(now: Date, limit: number, filter?: { expression: string; values: Record<string, unknown> }): Promise<AuthorizationRecord[]> {
    const ix = TABLE.pendingByExpiry;
    const items: AuthorizationRecord[] = [];
    let start: Record<string, unknown> | undefined;
    // A filter applies after each page is read; a few pages are enough for one sweep or listing.
    for (let page = 0; page < 10 && items.length < limit; page++) {
      const out = await send(() =>
        this.doc.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: ix.name,
            KeyConditionExpression: '#p = :p AND #e > :now',
            ExpressionAttributeNames: { '#p': ix.partitionKey, '#e': ix.sortKey },
            ExpressionAttributeValues: { ':p': 'pending', ':now': now.toISOString(), ...filter?.values },
            Limit: filter ? Math.max(limit, 25) : limit,
            ...(filter ? { FilterExpression: filter.expression } : {}),
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        ),
      );
      items.push(...(out.Items ?? []).map(toRecord));
      start = out.LastEvaluatedKey;
      if (!start) break;
    }
    return items.slice(0, limit);
  }

  /**
   * A row of the lifecycle table as one conditional UpdateItem (`compileTransition`); with
   * `event`, the same write appends it to the item's outbox. When the condition fails, the table
   * explains the refusal from the current item (reading after a failed write only shapes the
   * error; it never decides anything).
   */
  async apply(name: TransitionName, requestId: RequestId, params: Params, event?: PendingEvent): Promise<Applied> {
    const t: Transition = TRANSITIONS[name];
    if (t.events.length > 0 && (!event || !(t.events as readonly string[]).includes(event.type))) throw new Error(`lifecycle: ${name} records ${t.events.join(' or ')}, not ${event?.type ?? 'nothing'}`);
    const update = compileTransition(t, params);
    const input = event ? withEvent(update, await this.audit.sealRequestEntry(requestId, { event, row: name, params })) : update;
    for (let attempt = 0; ; attempt++) {
      try {
        const out = await send(() => this.doc.send(new UpdateCommand({ TableName: this.tableName, Key: { pk: REQ + requestId }, ReturnValues: 'ALL_NEW', ...input })));
        return applied(out.Attributes ?? {}, true);
      } catch (e) {
        if (!isConditionFailure(e)) throw e;
        const out = await send(() => this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: REQ + requestId }, ConsistentRead: true })));
        if (!out.Item) throw new AckdError('ERR_NOT_FOUND', `request_id: no request ${requestId}`, { field: 'request_id' });
        const verdict = explainRefused(t, out.Item as StoredItem, params); // throws the row's refusal
        if (verdict === 'unchanged') return applied(out.Item, false);
        if (attempt >= 5) throw new AckdError('ERR_STORE_UNAVAILABLE', `request ${requestId}: it keeps changing under this write; try again`);
      }
    }
  }

  auditEvents(seqs: readonly number[]): Promise<AuditEvent[]> {
    return seqs.length === 0 ? Promise.resolve([]) : this.audit.eventsAt(seqs);
  }

  async getMany(ids: readonly RequestId[]): Promise<Map<RequestId, AuthorizationRecord>> {
    const unique = [...new Set(ids)];
    if (unique.length === 0) return new Map();
    const items = await batchGet(this.doc, this.tableName, unique.map((id) => ({ pk: REQ + id })));
    return new Map(items.map((it) => [it.request_id as RequestId, toRecord(it)]));
  }
}

/** Adds the audit event to a transition's write: appended to the item's outbox with the row and parameters that replay it. */
function withEvent(update: Update, entry: SealedEntry): Update {
  const expr = update.UpdateExpression ?? '';
  const ob = outboxUpdate(entry);
  return {
    ...update,
    UpdateExpression: expr.startsWith('SET ') ? `SET ${ob.sets.join(', ')}, ${expr.slice(4)}` : `SET ${ob.sets.join(', ')} ${expr}`,
    ExpressionAttributeNames: { ...update.ExpressionAttributeNames, ...ob.names },
    ExpressionAttributeValues: { ...update.ExpressionAttributeValues, ...ob.values },
  };
}

/** Agent API keys in the same table, keyed by the SHA-256 of the key. */
export class DynamoApiKeyStore implements ApiKeyStore {
  private readonly doc: DynamoDBDocumentClient;

  constructor(client: DynamoDBClient, private readonly tableName: string) {
    this.doc = documentClient(client);
  }

  async put(entry: ApiKeyEntry): Promise<void> {
    await send(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { pk: KEY + entry.key_hash, kind: 'apikey', ...entry },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      ),
    );
  }

  async getByHash(keyHash: string): Promise<ApiKeyEntry | undefined> {
    const out = await send(() => this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: KEY + keyHash }, ConsistentRead: true })));
    return out.Item ? toKey(out.Item) : undefined;
  }

  async listByAgent(agentId: AgentId): Promise<ApiKeyEntry[]> {
    return (await this.scanKeys()).filter((k) => k.agent_id === agentId);
  }

  async listAll(): Promise<ApiKeyEntry[]> {
    return this.scanKeys();
  }

  private async scanKeys(): Promise<ApiKeyEntry[]> {
    const items: ApiKeyEntry[] = [];
    for await (const it of scanPrefix(this.doc, this.tableName, KEY)) items.push(toKey(it));
    return items.sort((a, b) => a.created_at.localeCompare(b.created_at));
  }

  async setSeal(entry: ApiKeyEntry, seal: string): Promise<boolean> {
    return conditionHeld(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: KEY + entry.key_hash },
          UpdateExpression: 'SET seal = :seal',
          // Only the entry as it was listed, and only once.
          ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(seal) AND key_id = :id AND agent_id = :agent AND created_at = :at',
          ExpressionAttributeValues: { ':seal': seal, ':id': entry.key_id, ':agent': entry.agent_id, ':at': entry.created_at },
        }),
      ),
    );
  }

  async revoke(keyId: string, now: Date, sealOf?: (revoked: ApiKeyEntry) => Promise<string | undefined>): Promise<ApiKeyEntry[]> {
    // Every entry with the id, not the first found: a twin planted under it must not take the revocation.
    const entries = (await this.scanKeys()).filter((k) => k.key_id === keyId);
    if (entries.length === 0) throw new AckdError('ERR_NOT_FOUND', `key_id: no API key ${keyId}`, { field: 'key_id' });
    const out: ApiKeyEntry[] = [];
    for (const entry of entries) {
      if (entry.revoked_at !== null) {
        out.push(entry); // already revoked: idempotent
        continue;
      }
      const revoked = { ...entry, revoked_at: now.toISOString() };
      const seal = await sealOf?.(revoked);
      // Only an entry still there: an update would otherwise make a stub item of a deleted one.
      const done = await conditionHeld(() =>
        this.doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { pk: KEY + entry.key_hash },
            UpdateExpression: seal === undefined ? 'SET revoked_at = :now' : 'SET revoked_at = :now, seal = :seal',
            ConditionExpression: 'attribute_exists(pk)',
            ExpressionAttributeValues: { ':now': revoked.revoked_at, ...(seal === undefined ? {} : { ':seal': seal }) },
          }),
        ),
      );
      if (done) out.push(seal === undefined ? revoked : { ...revoked, seal });
    }
    if (out.length === 0) throw new AckdError('ERR_NOT_FOUND', `key_id: no API key ${keyId}`, { field: 'key_id' });
    return out;
  }
}

function toKey(item: Record<string, unknown>): ApiKeyEntry {
  return {
    key_id: textOf(item.key_id),
    key_hash: textOf(item.key_hash),
    agent_id: textOf(item.agent_id) as AgentId,
    created_at: textOf(item.created_at),
    // (anything but null or absent reads as revoked: it can only take access away)
    revoked_at: item.revoked_at === undefined || item.revoked_at === null ? null : textOf(item.revoked_at),
    ...(item.seal === undefined ? {} : { seal: item.seal as string }),
  };
}
