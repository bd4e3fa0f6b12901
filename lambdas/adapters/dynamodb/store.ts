import { randomUUID } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { AckdError } from '../../core/errors.ts';
import type { AgentId, RequestId, SvidId } from '../../core/ids.ts';
import type { ApiKeyEntry, ApiKeyStore, RequestStore } from '../../core/ports.ts';
import type { AuthorizationRecord } from '../../core/request.ts';
import type { AuditEvent, PendingEvent } from '../../core/audit/event.ts';
import type { Clock } from '../../core/ports.ts';
import { DynamoAuditLog, ITEM_POINTERS, pendingEventAttributes, type JustWritten } from './audit.ts';
import type { ChainHead } from '../../core/audit/ports.ts';
import { applied, documentClient, isConditionFailure, scanPrefix, send } from './send.ts';
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
  'refused_attempts',
  ITEM_POINTERS.latest,
  ITEM_POINTERS.decision,
  TABLE.auditLog.partitionKey,
  TABLE.auditLog.sortKey,
]);

function toRecord(item: Record<string, unknown>): AuthorizationRecord {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(item)) if (!INTERNAL.has(k)) out[k] = v;
  return out as unknown as AuthorizationRecord;
}

/**
 * RequestStore on DynamoDB: every transition is one UpdateItem with a ConditionExpression, and
 * that same write records the transition's audit event (`audit_pending`). A request whose last
 * event is not yet linked into the audit chain cannot change again until it is: a transition
 * that finds one links it first, then retries.
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

  /** The request store and its audit chain on one table. */
  static withAudit(client: DynamoDBClient, tableName: string, opts: { clock: Clock; retentionDays: number }): DynamoRequestStore {
    return new DynamoRequestStore(client, tableName, new DynamoAuditLog(documentClient(client), tableName, opts));
  }

  /** This process's own latest audited writes, so their link can start from what was written. */
  private readonly written = new Map<RequestId, JustWritten>();

  private remember(requestId: RequestId, w: JustWritten): void {
    this.written.delete(requestId);
    this.written.set(requestId, w);
    if (this.written.size > 1000) this.written.delete(this.written.keys().next().value!);
  }

  linkAudit(requestId: RequestId): Promise<void> {
    const w = this.written.get(requestId);
    this.written.delete(requestId);
    return this.audit.link(requestId, w);
  }

  linkAuditBacklog(limit: number): Promise<{ linked: number; failed: number }> {
    return this.audit.linkBacklog(limit);
  }

  async create(record: AuthorizationRecord, retentionUntilEpochSeconds: number, event: PendingEvent): Promise<void> {
    try {
      const head = await this.audit.headHint();
      const item = { pk: REQ + record.request_id, ...record, pending: 'pending', retain_until: retentionUntilEpochSeconds, ...pendingEventAttributes(event, head) };
      await send(() => this.doc.send(new PutCommand({ TableName: this.tableName, Item: item, ConditionExpression: 'attribute_not_exists(pk)' })));
      this.remember(record.request_id, { item, head });
    } catch (e) {
      if (isConditionFailure(e)) throw new AckdError('ERR_CONFLICT', `request_id: ${record.request_id} already exists`);
      throw e;
    }
  }

  async get(requestId: RequestId): Promise<AuthorizationRecord | undefined> {
    const out = await send(() => this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: REQ + requestId }, ConsistentRead: true })));
    return out.Item ? toRecord(out.Item) : undefined;
  }

  /**
   * An agent's requests, newest first. Audit events carry `agent_id` and `requested_at` too, so
   * they share the by-agent index: they are filtered out, and pages are read until `limit`
   * requests are found.
   */
  async listByAgent(agentId: AgentId, opts: { limit?: number; before?: string } = {}): Promise<AuthorizationRecord[]> {
    const ix = TABLE.byAgent;
    const limit = opts.limit ?? 50;
    const items: AuthorizationRecord[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await send(() =>
        this.doc.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: ix.name,
            KeyConditionExpression: opts.before ? '#a = :a AND #t < :before' : '#a = :a',
            FilterExpression: 'begins_with(pk, :req)',
            ExpressionAttributeNames: opts.before ? { '#a': ix.partitionKey, '#t': ix.sortKey } : { '#a': ix.partitionKey },
            ExpressionAttributeValues: { ':a': agentId, ':req': REQ, ...(opts.before ? { ':before': opts.before } : {}) },
            ScanIndexForward: false,
            Limit: Math.max(limit, 25),
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        ),
      );
      items.push(...(out.Items ?? []).map(toRecord));
      start = out.LastEvaluatedKey;
    } while (start && items.length < limit);
    return items.slice(0, limit);
  }

  async scanAll(opts: { limit?: number; cursor?: string } = {}): Promise<{ items: AuthorizationRecord[]; cursor?: string }> {
    const out = await send(() =>
      this.doc.send(
        new ScanCommand({
          TableName: this.tableName,
          FilterExpression: 'begins_with(pk, :req)',
          ExpressionAttributeValues: { ':req': REQ },
          Limit: opts.limit ?? 500,
          ExclusiveStartKey: opts.cursor ? { pk: opts.cursor } : undefined,
        }),
      ),
    );
    const cursor = out.LastEvaluatedKey?.pk as string | undefined;
    return cursor ? { items: (out.Items ?? []).map(toRecord), cursor } : { items: (out.Items ?? []).map(toRecord) };
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
   * One conditional UpdateItem returning the new record; with `event`, the same write records the
   * audit event, and requires the previous one to be linked. When the condition fails, `explain`
   * looks at the current record to say why (reading after a failed write only shapes the error;
   * it never decides anything), unless an unlinked event was in the way: then it is linked and
   * the write tried again.
   */
  private async transition(
    requestId: RequestId,
    update: Omit<UpdateCommandInput, 'TableName' | 'Key' | 'ReturnValues'>,
    explain: (current: AuthorizationRecord) => AuthorizationRecord | AckdError,
    event?: PendingEvent,
  ): Promise<AuthorizationRecord> {
    return toRecord(await this.transitionItem(requestId, update, explain, event));
  }

  /** `transition`, returning the item as stored (with its bookkeeping attributes). */
  private async transitionItem(
    requestId: RequestId,
    update: Omit<UpdateCommandInput, 'TableName' | 'Key' | 'ReturnValues'>,
    explain: (current: AuthorizationRecord) => AuthorizationRecord | AckdError,
    event?: PendingEvent,
  ): Promise<Record<string, unknown>> {
    for (let attempt = 0; ; attempt++) {
      const head = event ? await this.audit.headHint() : undefined;
      const input = event && head ? withEvent(update, event, head) : update;
      try {
        const out = await send(() =>
          this.doc.send(new UpdateCommand({ TableName: this.tableName, Key: { pk: REQ + requestId }, ReturnValues: 'ALL_NEW', ...input })),
        );
        if (head && out.Attributes) this.remember(requestId, { item: out.Attributes, head });
        return out.Attributes ?? {};
      } catch (e) {
        if (!isConditionFailure(e)) throw e;
        const out = await send(() => this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: REQ + requestId }, ConsistentRead: true })));
        if (!out.Item) throw new AckdError('ERR_NOT_FOUND', `request_id: no request ${requestId}`, { field: 'request_id' });
        if (out.Item.audit_pending !== undefined && gated(input)) {
          if (attempt >= 5) throw new AckdError('ERR_STORE_UNAVAILABLE', `request ${requestId}: its audit events keep arriving faster than they can be linked; try again`);
          await this.audit.link(requestId);
          continue;
        }
        const result = explain(toRecord(out.Item));
        if (result instanceof AckdError) throw result;
        return out.Item;
      }
    }
  }

  decide(input: {
    requestId: RequestId;
    decision: 'approved' | 'denied';
    approverIdentity: string;
    approverEmail: string | null;
    now: Date;
    svidExpiresAt: string | null;
    event: PendingEvent;
  }): Promise<AuthorizationRecord> {
    const now = input.now.toISOString();
    return this.transition(
      input.requestId,
      {
        UpdateExpression:
          'SET #d = :decision, decision_at = :now, approver_identity = :who, approver_email = :email, svid_expires_at = :svidExp REMOVE #pending',
        ConditionExpression: 'attribute_exists(pk) AND #d = :pendingState AND expires_at > :now',
        ExpressionAttributeNames: { '#d': 'decision', '#pending': 'pending' },
        ExpressionAttributeValues: {
          ':decision': input.decision,
          ':now': now,
          ':who': input.approverIdentity,
          ':email': input.approverEmail,
          ':svidExp': input.svidExpiresAt,
          ':pendingState': 'pending',
        },
      },
      (cur) =>
        cur.decision === 'pending' || cur.decision === 'expired'
          ? new AckdError('ERR_EXPIRED', `request ${input.requestId} expired at ${cur.expires_at}`)
          : new AckdError('ERR_ALREADY_DECIDED', `request ${input.requestId} was already decided: ${cur.decision}`),
      input.event,
    );
  }

  expire(requestId: RequestId, now: Date, event: PendingEvent): Promise<AuthorizationRecord> {
    return this.transition(
      requestId,
      {
        UpdateExpression: 'SET #d = :expired, decision_at = expires_at REMOVE #pending',
        ConditionExpression: 'attribute_exists(pk) AND #d = :pendingState AND expires_at <= :now',
        ExpressionAttributeNames: { '#d': 'decision', '#pending': 'pending' },
        ExpressionAttributeValues: { ':expired': 'expired', ':pendingState': 'pending', ':now': now.toISOString() },
      },
      (cur) =>
        cur.decision !== 'pending'
          ? new AckdError('ERR_ALREADY_DECIDED', `request ${requestId} was already decided: ${cur.decision}`)
          : new AckdError('ERR_CONFLICT', `request ${requestId} is not yet due to expire (expires_at ${cur.expires_at})`),
      event,
    );
  }

  async claimIssuance(requestId: RequestId, now: Date, leaseMs: number): Promise<{ claim: string; record: AuthorizationRecord; decisionSeq: number | null }> {
    const claim = randomUUID();
    const item = await this.transitionItem(
      requestId,
      {
        UpdateExpression: 'SET issuing_claim = :claim, issuing_until = :until',
        ConditionExpression:
          'attribute_exists(pk) AND #d = :approved AND attribute_type(svid_id, :nullType) AND revoked = :false AND svid_expires_at > :now AND (attribute_not_exists(issuing_until) OR issuing_until <= :nowMs) AND attribute_not_exists(audit_pending)',
        ExpressionAttributeNames: { '#d': 'decision' },
        ExpressionAttributeValues: {
          ':claim': claim,
          ':until': now.getTime() + leaseMs,
          ':approved': 'approved',
          ':nullType': 'NULL',
          ':false': false,
          ':now': now.toISOString(),
          ':nowMs': now.getTime(),
        },
      },
      (cur) => {
        if (cur.decision !== 'approved') return new AckdError('ERR_NOT_APPROVED', `request ${requestId} is ${cur.decision}, not approved`);
        if (cur.svid_id !== null) return new AckdError('ERR_CONFLICT', `the SVID for request ${requestId} was already issued (svid_id ${cur.svid_id})`);
        if (cur.revoked) return new AckdError('ERR_NOT_APPROVED', `request ${requestId} was revoked`);
        if (cur.svid_expires_at !== null && Date.parse(cur.svid_expires_at) <= now.getTime())
          return new AckdError('ERR_EXPIRED', `the approval of request ${requestId} expired at ${cur.svid_expires_at}`);
        return new AckdError('ERR_ISSUANCE_IN_PROGRESS', `SVID issuance for request ${requestId} is in progress in another call; check again shortly`);
      },
    );
    const decisionSeq = item[ITEM_POINTERS.decision];
    return { claim, record: toRecord(item), decisionSeq: typeof decisionSeq === 'number' ? decisionSeq : null };
  }

  auditEvent(seq: number): Promise<AuditEvent | undefined> {
    return this.audit.event(seq);
  }

  /** Not applied: someone else's claim now, nothing of ours to release. */
  async releaseIssuance(requestId: RequestId, claim: string): Promise<void> {
    await applied(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: REQ + requestId },
          UpdateExpression: 'REMOVE issuing_claim, issuing_until',
          ConditionExpression: 'issuing_claim = :claim',
          ExpressionAttributeValues: { ':claim': claim },
        }),
      ),
    );
  }

  recordIssued(input: { requestId: RequestId; claim: string; svidId: SvidId; now: Date; event: PendingEvent }): Promise<AuthorizationRecord> {
    return this.transition(
      input.requestId,
      {
        UpdateExpression: 'SET svid_id = :svid, svid_issued_at = :now REMOVE issuing_claim, issuing_until',
        ConditionExpression: 'issuing_claim = :claim AND attribute_type(svid_id, :nullType)',
        ExpressionAttributeValues: { ':svid': input.svidId, ':now': input.now.toISOString(), ':claim': input.claim, ':nullType': 'NULL' },
      },
      () => new AckdError('ERR_ISSUANCE_IN_PROGRESS', `the issuance claim on request ${input.requestId} was lost; check again`),
      input.event,
    );
  }

  revoke(input: { requestId: RequestId; svidId: SvidId; now: Date; event: PendingEvent }): Promise<AuthorizationRecord> {
    return this.transition(
      input.requestId,
      {
        UpdateExpression: 'SET revoked = :true, revoked_at = :now',
        ConditionExpression: 'attribute_exists(pk) AND svid_id = :svid AND revoked = :false',
        ExpressionAttributeValues: { ':svid': input.svidId, ':true': true, ':false': false, ':now': input.now.toISOString() },
      },
      (cur) => {
        if (cur.svid_id === null) return new AckdError('ERR_NOT_ISSUED', `svid_id: no SVID has been issued for request ${input.requestId}`, { field: 'svid_id' });
        if (cur.svid_id !== input.svidId)
          return new AckdError('ERR_SVID_MISMATCH', `svid_id: ${input.svidId} is not the SVID issued for request ${input.requestId}`, { field: 'svid_id' });
        return cur; // already revoked: idempotent
      },
      input.event,
    );
  }

  async recordNotification(requestId: RequestId, outcome: 'sent' | 'failed', event: PendingEvent): Promise<void> {
    await this.transition(
      requestId,
      {
        UpdateExpression: 'SET notify_status = :s ADD notify_attempts :one',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':s': outcome, ':one': 1 },
      },
      () => new AckdError('ERR_STORE_UNAVAILABLE', `could not record the notification of request ${requestId}`),
      event,
    );
  }

  /** Records a refused attempt to change a request (the request itself is unchanged). */
  async recordRefusal(requestId: RequestId, event: PendingEvent): Promise<void> {
    await this.transition(
      requestId,
      {
        UpdateExpression: 'SET refused_attempts = if_not_exists(refused_attempts, :zero) + :one',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':zero': 0, ':one': 1 },
      },
      () => new AckdError('ERR_STORE_UNAVAILABLE', `could not record the refused attempt on request ${requestId}`),
      event,
    );
  }
}

const AUDIT_GATE = 'attribute_not_exists(audit_pending)';

/** Adds the audit event to a transition's write: same SET, and only once the previous event is linked. */
function withEvent(update: Omit<UpdateCommandInput, 'TableName' | 'Key' | 'ReturnValues'>, event: PendingEvent, head: ChainHead): Omit<UpdateCommandInput, 'TableName' | 'Key' | 'ReturnValues'> {
  const expr = update.UpdateExpression ?? '';
  if (!expr.startsWith('SET ')) throw new Error('an audited transition must begin with SET');
  const attrs = pendingEventAttributes(event, head);
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const sets = Object.entries(attrs).map(([k, v], i) => {
    names[`#audit${i}`] = k;
    values[`:audit${i}`] = v;
    return `#audit${i} = :audit${i}`;
  });
  return {
    ...update,
    UpdateExpression: `SET ${sets.join(', ')}, ${expr.slice(4)}`,
    ConditionExpression: update.ConditionExpression ? `(${update.ConditionExpression}) AND ${AUDIT_GATE}` : AUDIT_GATE,
    ExpressionAttributeNames: { ...update.ExpressionAttributeNames, ...names },
    ExpressionAttributeValues: { ...update.ExpressionAttributeValues, ...values },
  };
}

/** Whether a write waits for the previous audit event to be linked. */
function gated(update: Omit<UpdateCommandInput, 'TableName' | 'Key' | 'ReturnValues'>): boolean {
  return (update.ConditionExpression ?? '').includes(AUDIT_GATE);
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

  async revoke(keyId: string, now: Date): Promise<void> {
    const entry = (await this.scanKeys()).find((k) => k.key_id === keyId);
    if (!entry) throw new AckdError('ERR_NOT_FOUND', `key_id: no API key ${keyId}`, { field: 'key_id' });
    if (entry.revoked_at !== null) return; // already revoked: idempotent
    await send(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: KEY + entry.key_hash },
          UpdateExpression: 'SET revoked_at = :now',
          ExpressionAttributeValues: { ':now': now.toISOString() },
        }),
      ),
    );
  }
}

function toKey(item: Record<string, unknown>): ApiKeyEntry {
  return {
    key_id: item.key_id as string,
    key_hash: item.key_hash as string,
    agent_id: item.agent_id as AgentId,
    created_at: item.created_at as string,
    revoked_at: (item.revoked_at as string | null | undefined) ?? null,
  };
}
