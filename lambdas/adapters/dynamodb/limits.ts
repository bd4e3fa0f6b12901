import { randomUUID } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { RequestId } from '../../core/ids.ts';
import { AckdError } from '../../core/errors.ts';
import { recipientKey, type ClaimedDigest, type LimitStore, type RateWindow, type SlotState } from '../../core/limits.ts';
import { applied, batchGet, documentClient, isConditionFailure, send } from './send.ts';
import { TABLE } from './schema.ts';

/** Key prefix of every item of the limits; nothing else in the table starts with it. */
export const LIMIT_PK = 'limit#';
/** Partition value of due digests in the sparse `pending-by-expiry` index (requests use `pending`). */
export const DIGEST_PARTITION = 'digest';

const seconds = (ms: number) => Math.ceil(ms / 1000);

function numberOf(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

/**
 * The limits' state in the request table (single-table design; dynalite has no transactions, so
 * every change is one conditional write on one item). Items, all with `retain_until` for TTL:
 * - `limit#ctr#<key>`: a counter `n` (request attempts per agent-minute, mails per
 *   approver-window, refused attempts per request), changed by `ADD` under `n < max`.
 * - `limit#slot#<group>#<k>`: a held slot (`holder`, `until_ms`, `since_ms`), taken by a
 *   conditional put that requires it absent, lapsed (`until_ms <= now`) or held by the exact
 *   holder being replaced; released by setting `until_ms` to 0, conditional on the holder.
 * - `limit#set#<group>`: a bounded set (`members`, a string set), joined by `ADD` under
 *   `size(members) < max` and left by `DELETE`: an agent's open requests, one write each. It
 *   also keeps a rate (`rate_start`: the window's start in epoch ms, `rate_n`: attempts in it),
 *   so an attempt is counted and a member added in one conditional write (`admit`).
 * - `limit#digest#<sha256(approver)>`: the approver's digest queue (`request_ids` string set,
 *   `recipient`, `overflow`), and while it is due, `pending = "digest"` and `expires_at = <due>`,
 *   which put it into the sparse `pending-by-expiry` index under its own partition (request
 *   queries read the `pending` partition only). A sender claims it with a lease (`claim`,
 *   `claim_until`) like an issuance claim.
 */
export class DynamoLimitStore implements LimitStore {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
  ) {
    this.doc = documentClient(client);
  }

  async take(key: string, max: number, retainUntilMs: number): Promise<{ taken: boolean; count: number }> {
    try {
      const out = await send(() =>
        this.doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { pk: `${LIMIT_PK}ctr#${key}` },
            UpdateExpression: 'SET retain_until = if_not_exists(retain_until, :ret) ADD n :one',
            ConditionExpression: 'attribute_not_exists(n) OR n < :max',
            ExpressionAttributeValues: { ':one': 1, ':max': max, ':ret': seconds(retainUntilMs) },
            ReturnValues: 'UPDATED_NEW',
            // DynamoDB hands the counter back with the refusal, so a flood costs one write per
            // attempt and no read (a store that does not, like dynalite, leaves the limit as the count).
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        ),
      );
      return { taken: true, count: Number(out.Attributes?.n ?? 1) };
    } catch (e) {
      if (!isConditionFailure(e)) throw e;
      const old = (e as { Item?: { n?: { N?: string } } }).Item?.n?.N;
      return { taken: false, count: old === undefined ? max : Number(old) };
    }
  }

  async add(key: string, delta: number, retainUntilMs: number): Promise<number> {
    const out = await send(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: `${LIMIT_PK}ctr#${key}` },
          UpdateExpression: 'SET retain_until = if_not_exists(retain_until, :ret) ADD n :d',
          ExpressionAttributeValues: { ':d': delta, ':ret': seconds(retainUntilMs) },
          ReturnValues: 'UPDATED_NEW',
        }),
      ),
    );
    return Number(out.Attributes?.n ?? delta);
  }

  private slotPk(group: string, slot: number): string {
    return `${LIMIT_PK}slot#${group}#${slot}`;
  }

  /** One batched consistent read of every slot (BatchGetItem); it happens only when a random slot was not free. */
  async readSlots(group: string, size: number): Promise<SlotState[]> {
    const keys = Array.from({ length: size }, (_, i) => ({ pk: this.slotPk(group, i) }));
    const items = await batchGet(this.doc, this.tableName, keys);
    return items
      .map((it) => ({ slot: Number(String(it.pk).slice(String(it.pk).lastIndexOf('#') + 1)), holder: String(it.holder), untilMs: Number(it.until_ms), sinceMs: Number(it.since_ms) }))
      .sort((a, b) => a.slot - b.slot);
  }

  putSlot(group: string, slot: number, holder: string, untilMs: number, nowMs: number, replace?: string): Promise<boolean> {
    return applied(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { pk: this.slotPk(group, slot), kind: 'limit-slot', holder, until_ms: untilMs, since_ms: nowMs, retain_until: seconds(untilMs + 86_400_000) },
          ConditionExpression: replace === undefined ? 'attribute_not_exists(pk) OR until_ms <= :now' : 'holder = :replace',
          ExpressionAttributeValues: replace === undefined ? { ':now': nowMs } : { ':replace': replace },
        }),
      ),
    );
  }

  /** Frees the slot by ending its time (an UpdateItem, so no DeleteItem permission is needed). */
  async releaseSlot(group: string, slot: number, holder: string): Promise<void> {
    await applied(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: this.slotPk(group, slot) },
          UpdateExpression: 'SET until_ms = :zero',
          ConditionExpression: 'holder = :h',
          ExpressionAttributeValues: { ':h': holder, ':zero': 0 },
        }),
      ),
    );
  }

  private setPk(group: string): string {
    return `${LIMIT_PK}set#${group}`;
  }

  join(group: string, member: string, max: number, retainUntilMs: number): Promise<boolean> {
    return applied(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: this.setPk(group) },
          UpdateExpression: 'ADD members :m SET kind = :kind, retain_until = :ret',
          ConditionExpression: 'attribute_not_exists(members) OR size(members) < :max OR contains(members, :one)',
          ExpressionAttributeValues: { ':m': new Set([member]), ':one': member, ':max': max, ':kind': 'limit-set', ':ret': seconds(retainUntilMs) },
        }),
      ),
    );
  }

  /**
   * One UpdateItem: `ADD members :m` with the rate counted, in one of two forms, the window the
   * item holds (`rate_n + 1` under `rate_n < max`) or a new one (`rate_n = 1`); the form is
   * guessed from the last window this process saw or used on the item (so only the first write
   * of a minute, or one racing another instance at the minute's turn, guesses wrong). A refusal
   * is explained from the item (returned with the refusal by DynamoDB; read again consistently
   * where, as on dynalite, it is not): the rate, the set full, or a race or a wrong guess, which
   * is tried again.
   */
  admit(group: string, member: string, size: number, window: RateWindow, retainUntilMs: number): Promise<{ outcome: 'taken' | 'rate' | 'full'; count: number }> {
    return this.countOn(group, window, { member, size, retainUntilMs });
  }

  async count(group: string, window: RateWindow, retainUntilMs: number): Promise<{ taken: boolean; count: number }> {
    const r = await this.countOn(group, window, { retainUntilMs });
    return { taken: r.outcome === 'taken', count: r.count };
  }

  /** The last rate window seen per set item (a guess of the write's form only; the condition decides); the oldest entries go first. */
  private readonly windows = new Map<string, number>();

  private rememberWindow(pk: string, start: number): void {
    this.windows.delete(pk);
    this.windows.set(pk, start);
    if (this.windows.size > 10_000) this.windows.delete(this.windows.keys().next().value!);
  }

  private async countOn(group: string, window: RateWindow, join: { member?: string; size?: number; retainUntilMs: number }): Promise<{ outcome: 'taken' | 'rate' | 'full'; count: number }> {
    const pk = this.setPk(group);
    let start = window.start;
    let same = (this.windows.get(pk) ?? 0) >= start;
    if (same) start = this.windows.get(pk)!;
    for (let attempt = 0; attempt < 8; attempt++) {
      const values: Record<string, unknown> = { ':one': 1, ':start': start, ':kind': 'limit-set', ':ret': seconds(join.retainUntilMs) };
      const sets = ['kind = :kind', join.member === undefined ? 'retain_until = if_not_exists(retain_until, :ret)' : 'retain_until = :ret'];
      const adds: string[] = [];
      const conditions = [same ? '(rate_start = :start AND rate_n < :max)' : '(attribute_not_exists(rate_start) OR rate_start < :start)'];
      if (same) {
        adds.push('rate_n :one');
        values[':max'] = window.max;
      } else {
        sets.push('rate_start = :start', 'rate_n = :one');
      }
      if (join.member !== undefined) {
        adds.push('members :m');
        values[':m'] = new Set([join.member]);
        values[':member'] = join.member;
        values[':size'] = join.size;
        conditions.push('(attribute_not_exists(members) OR size(members) < :size OR contains(members, :member))');
      }
      // (remembered before the write: concurrent attempts of this process then take the same form)
      this.rememberWindow(pk, start);
      try {
        const out = await send(() =>
          this.doc.send(
            new UpdateCommand({
              TableName: this.tableName,
              Key: { pk },
              UpdateExpression: `SET ${sets.join(', ')}${adds.length > 0 ? ` ADD ${adds.join(', ')}` : ''}`,
              ConditionExpression: conditions.join(' AND '),
              ExpressionAttributeValues: values,
              ReturnValues: 'UPDATED_NEW',
              ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
            }),
          ),
        );
        return { outcome: 'taken', count: Number(out.Attributes?.rate_n ?? 1) };
      } catch (e) {
        if (!isConditionFailure(e)) throw e;
        const raw = (e as { Item?: Record<string, { N?: string; SS?: string[] }> }).Item;
        const item = raw ? { rate_start: numberOf(raw.rate_start?.N), rate_n: numberOf(raw.rate_n?.N), members: raw.members?.SS ?? [] } : await this.rateItem(pk);
        // The window the attempt counts in: the item's when it is this one or later (another instance's clock ahead), else a new one.
        same = item.rate_start !== undefined && item.rate_start >= window.start;
        start = same ? item.rate_start! : window.start;
        this.rememberWindow(pk, start);
        const count = same ? (item.rate_n ?? 0) : 0;
        if (count >= window.max) return { outcome: 'rate', count };
        if (join.member !== undefined && item.members.length >= join.size! && !item.members.includes(join.member)) return { outcome: 'full', count };
        // Lost a race, or guessed the wrong window: again, with the form the item calls for now.
      }
    }
    throw new AckdError('ERR_STORE_UNAVAILABLE', `limits: the item of ${group} keeps changing under this write; try again`);
  }

  private async rateItem(pk: string): Promise<{ rate_start: number | undefined; rate_n: number | undefined; members: string[] }> {
    const out = await send(() => this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk }, ConsistentRead: true })));
    const it = out.Item ?? {};
    return { rate_start: numberOf(it.rate_start), rate_n: numberOf(it.rate_n), members: it.members instanceof Set ? [...(it.members as Set<string>)] : [] };
  }

  async members(group: string): Promise<string[]> {
    const out = await send(() => this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: this.setPk(group) }, ConsistentRead: true })));
    const members = out.Item?.members;
    return members instanceof Set ? [...(members as Set<string>)] : [];
  }

  async leave(group: string, members: readonly string[]): Promise<void> {
    if (members.length === 0) return;
    // Conditional, so that leaving a set that is not there never creates an item.
    await applied(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: this.setPk(group) },
          UpdateExpression: 'DELETE members :m',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':m': new Set(members) },
        }),
      ),
    );
  }

  private digestPk(recipient: string): string {
    return `${LIMIT_PK}digest#${recipientKey(recipient)}`;
  }

  async enqueueDigest(recipient: string, requestId: RequestId, dueMs: number, cap: number, retainUntilMs: number): Promise<boolean> {
    const pk = this.digestPk(recipient);
    const ok = await applied(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk },
          UpdateExpression: 'ADD request_ids :ids SET kind = :kind, recipient = :r, #p = :digest, expires_at = if_not_exists(expires_at, :due), retain_until = :ret',
          ConditionExpression: 'attribute_not_exists(request_ids) OR size(request_ids) < :cap OR contains(request_ids, :id)',
          ExpressionAttributeNames: { '#p': TABLE.pendingByExpiry.partitionKey },
          ExpressionAttributeValues: {
            ':ids': new Set([requestId]),
            ':id': requestId,
            ':kind': 'limit-digest',
            ':r': recipient,
            ':digest': DIGEST_PARTITION,
            ':due': new Date(dueMs).toISOString(),
            ':ret': seconds(retainUntilMs),
            ':cap': cap,
          },
        }),
      ),
    );
    if (!ok) {
      await send(() =>
        this.doc.send(new UpdateCommand({ TableName: this.tableName, Key: { pk }, UpdateExpression: 'ADD overflow :one', ExpressionAttributeValues: { ':one': 1 } })),
      );
    }
    return ok;
  }

  async isQueued(recipient: string, requestId: RequestId): Promise<boolean> {
    const out = await send(() => this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: this.digestPk(recipient) }, ConsistentRead: true })));
    const ids = out.Item?.request_ids as Set<string> | undefined;
    return ids instanceof Set && ids.has(requestId);
  }

  async claimDueDigests(nowMs: number, limit: number, leaseMs: number): Promise<ClaimedDigest[]> {
    const ix = TABLE.pendingByExpiry;
    const due = await send(() =>
      this.doc.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: ix.name,
          KeyConditionExpression: '#p = :digest AND #e <= :now',
          ExpressionAttributeNames: { '#p': ix.partitionKey, '#e': ix.sortKey },
          ExpressionAttributeValues: { ':digest': DIGEST_PARTITION, ':now': new Date(nowMs).toISOString() },
          Limit: limit,
        }),
      ),
    );
    const claimed: ClaimedDigest[] = [];
    for (const it of due.Items ?? []) {
      const claim = randomUUID();
      try {
        // The index is eventually consistent: the claim's condition decides.
        const out = await send(() =>
          this.doc.send(
            new UpdateCommand({
              TableName: this.tableName,
              Key: { pk: it.pk as string },
              UpdateExpression: 'SET claim = :c, claim_until = :until ADD attempts :one',
              ConditionExpression: '#p = :digest AND expires_at <= :nowIso AND (attribute_not_exists(claim_until) OR claim_until <= :now)',
              ExpressionAttributeNames: { '#p': ix.partitionKey },
              ExpressionAttributeValues: { ':c': claim, ':until': nowMs + leaseMs, ':one': 1, ':digest': DIGEST_PARTITION, ':now': nowMs, ':nowIso': new Date(nowMs).toISOString() },
              ReturnValues: 'ALL_NEW',
            }),
          ),
        );
        const a = out.Attributes ?? {};
        claimed.push({
          recipient: String(a.recipient),
          requestIds: [...((a.request_ids as Set<string> | undefined) ?? [])].sort() as RequestId[],
          overflow: Number(a.overflow ?? 0),
          attempts: Number(a.attempts ?? 1),
          claim,
        });
      } catch (e) {
        if (!isConditionFailure(e)) throw e;
      }
    }
    return claimed;
  }

  async completeDigest(d: ClaimedDigest, done: readonly RequestId[], nextDueMs: number): Promise<void> {
    const pk = this.digestPk(d.recipient);
    let left: number;
    try {
      const out = await send(() =>
        this.doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { pk },
            UpdateExpression: `${done.length > 0 ? 'DELETE request_ids :done ' : ''}REMOVE claim, claim_until, #p, expires_at SET attempts = :zero, overflow = :zero`,
            ConditionExpression: 'claim = :c',
            ExpressionAttributeNames: { '#p': TABLE.pendingByExpiry.partitionKey },
            ExpressionAttributeValues: { ':c': d.claim, ':zero': 0, ...(done.length > 0 ? { ':done': new Set(done) } : {}) },
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      left = (out.Attributes?.request_ids as Set<string> | undefined)?.size ?? 0;
    } catch (e) {
      if (isConditionFailure(e)) return; // the claim lapsed and someone else has it now
      throw e;
    }
    if (left > 0) {
      // Requests queued while this digest was being sent go into the next one.
      await send(() =>
        this.doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { pk },
            UpdateExpression: 'SET #p = :digest, expires_at = if_not_exists(expires_at, :due)',
            ConditionExpression: 'attribute_exists(request_ids)',
            ExpressionAttributeNames: { '#p': TABLE.pendingByExpiry.partitionKey },
            ExpressionAttributeValues: { ':digest': DIGEST_PARTITION, ':due': new Date(nextDueMs).toISOString() },
          }),
        ),
      ).catch((e: unknown) => {
        if (!isConditionFailure(e)) throw e;
      });
    }
  }

  async releaseDigest(d: ClaimedDigest): Promise<void> {
    await applied(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: this.digestPk(d.recipient) },
          UpdateExpression: 'REMOVE claim, claim_until',
          ConditionExpression: 'claim = :c',
          ExpressionAttributeValues: { ':c': d.claim },
        }),
      ),
    );
  }
}
