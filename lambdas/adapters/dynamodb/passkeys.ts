import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { AckdError } from '../../core/errors.ts';
import { NONCE_PURPOSES, type DecisionVerdict, type IssuedNonce, type NoncePurpose, type NonceStore, type PasskeyStore, type StoredPasskey } from '../../core/passkeys.ts';
import { applied, documentClient, isConditionFailure, scanPrefix, send, textOf } from './send.ts';

/** Key prefix of an approver's passkeys: `passkeys#<Cognito sub>`; nothing else in the table starts with it. */
export const PASSKEYS_PK = 'passkeys#';
/** Key prefix of passkey nonces: `pknonce#<nonce>`. */
export const NONCE_PK = 'pknonce#';

type StoredCred = { public_key: string; counter: number; transports: string[]; created_at: string; label: string; seal?: string };

/**
 * An approver's passkeys in the request table: one item per approver (`kind: 'passkeys'`) with a
 * map `creds` from credential id to the credential, so listing is one read. Every change is one
 * conditional update of that map (adding also makes sure the map exists first, idempotently).
 * A credential is looked up only in its approver's own item: the same credential id under
 * another approver's item is another (that approver's) key and never vouches for this one.
 */
export class DynamoPasskeyStore implements PasskeyStore {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
  ) {
    this.doc = documentClient(client);
  }

  private key(approver: string) {
    return { pk: PASSKEYS_PK + approver };
  }

  private async item(approver: string): Promise<{ creds: Record<string, StoredCred>; retired: Record<string, StoredCred> }> {
    const out = await send(() => this.doc.send(new GetCommand({ TableName: this.tableName, Key: this.key(approver), ConsistentRead: true })));
    return { creds: (out.Item?.creds as Record<string, StoredCred> | undefined) ?? {}, retired: (out.Item?.retired as Record<string, StoredCred> | undefined) ?? {} };
  }

  private async creds(approver: string): Promise<Record<string, StoredCred>> {
    return (await this.item(approver)).creds;
  }

  async registered(approver: string, credentialId: string): Promise<StoredPasskey | undefined> {
    const { creds, retired } = await this.item(approver);
    const c = Object.hasOwn(creds, credentialId) ? creds[credentialId] : Object.hasOwn(retired, credentialId) ? retired[credentialId] : undefined;
    return c ? toPasskey(approver, credentialId, c) : undefined;
  }

  async list(approver: string): Promise<StoredPasskey[]> {
    const creds = await this.creds(approver);
    return Object.entries(creds)
      .map(([id, c]) => toPasskey(approver, id, c))
      .sort((a, b) => a.created_at.localeCompare(b.created_at));
  }

  stored(approver: string): Promise<StoredPasskey[]> {
    return this.list(approver);
  }

  /** Every approver's credentials, current and retired: a scan of the `passkeys#` items (an operator's listing or one-off sealing, never a request's path). */
  async all(): Promise<(StoredPasskey & { retired: boolean })[]> {
    const out: (StoredPasskey & { retired: boolean })[] = [];
    for await (const it of scanPrefix(this.doc, this.tableName, PASSKEYS_PK, { consistent: true })) {
      const approver = String(it.pk).slice(PASSKEYS_PK.length);
      for (const [field, retired] of [['creds', false], ['retired', true]] as const) {
        const m = it[field] as Record<string, StoredCred> | undefined;
        if (m && typeof m === 'object') for (const [id, c] of Object.entries(m)) out.push({ ...toPasskey(approver, id, c), retired });
      }
    }
    return out.sort((a, b) => a.approver.localeCompare(b.approver) || a.created_at.localeCompare(b.created_at));
  }

  setSeal(p: StoredPasskey & { readonly retired: boolean }, seal: string): Promise<boolean> {
    return applied(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.key(p.approver),
          UpdateExpression: 'SET #m.#id.#seal = :seal',
          // Only the credential as it was listed, and only once.
          ConditionExpression: 'attribute_exists(#m.#id) AND attribute_not_exists(#m.#id.#seal) AND #m.#id.public_key = :pk AND #m.#id.created_at = :at',
          ExpressionAttributeNames: { '#m': p.retired ? 'retired' : 'creds', '#id': p.credential_id, '#seal': 'seal' },
          ExpressionAttributeValues: { ':seal': seal, ':pk': p.public_key, ':at': p.created_at },
        }),
      ),
    );
  }

  async get(approver: string, credentialId: string): Promise<StoredPasskey | undefined> {
    const c = (await this.creds(approver))[credentialId];
    return c ? toPasskey(approver, credentialId, c) : undefined;
  }

  async put(p: StoredPasskey, max: number): Promise<void> {
    await send(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.key(p.approver),
          UpdateExpression: 'SET creds = if_not_exists(creds, :empty), kind = :kind',
          ExpressionAttributeValues: { ':empty': {}, ':kind': 'passkeys' },
        }),
      ),
    );
    const cred: StoredCred = { public_key: p.public_key, counter: p.counter, transports: [...p.transports], created_at: p.created_at, label: p.label, ...(p.seal === undefined ? {} : { seal: p.seal }) };
    const ok = await applied(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.key(p.approver),
          UpdateExpression: 'SET creds.#id = :cred',
          ConditionExpression: 'attribute_not_exists(creds.#id) AND size(creds) < :max',
          ExpressionAttributeNames: { '#id': p.credential_id },
          ExpressionAttributeValues: { ':cred': cred, ':max': max },
        }),
      ),
    );
    if (!ok) {
      const existing = await this.creds(p.approver);
      throw new AckdError('ERR_CONFLICT', existing[p.credential_id] ? 'this passkey is already registered' : `you already have ${max} passkeys, the most allowed; delete one first`);
    }
  }

  /** Moves the credential from `creds` to `retired` (its public key stays, to re-verify what it signed); false when there was none. */
  async delete(approver: string, credentialId: string): Promise<boolean> {
    const move = (expression: string, values?: Record<string, unknown>) =>
      applied(() =>
        this.doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: this.key(approver),
            UpdateExpression: expression,
            ConditionExpression: 'attribute_exists(creds.#id)',
            ExpressionAttributeNames: { '#id': credentialId },
            ...(values ? { ExpressionAttributeValues: values } : {}),
          }),
        ),
      );
    // (the map first, as put does: one expression cannot make a map and a path inside it)
    if (!(await move('SET retired = if_not_exists(retired, :empty)', { ':empty': {} }))) return false;
    return move('SET retired.#id = creds.#id REMOVE creds.#id');
  }

  updateCounter(approver: string, credentialId: string, from: number, to: number): Promise<boolean> {
    return applied(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.key(approver),
          UpdateExpression: 'SET creds.#id.#counter = :to',
          ConditionExpression: 'creds.#id.#counter = :from',
          ExpressionAttributeNames: { '#id': credentialId, '#counter': 'counter' },
          ExpressionAttributeValues: { ':from': from, ':to': to },
        }),
      ),
    );
  }
}

/** A credential as read (a table writer's malformed one reads without crashing the reader, and fails its seal). */
function toPasskey(approver: string, id: string, c: StoredCred | undefined): StoredPasskey {
  return {
    credential_id: id,
    approver,
    public_key: textOf(c?.public_key),
    counter: Number(c?.counter),
    transports: Array.isArray(c?.transports) ? c.transports.map(textOf) : [],
    created_at: textOf(c?.created_at),
    label: textOf(c?.label),
    ...(c?.seal === undefined ? {} : { seal: c.seal }),
  };
}

/**
 * Passkey nonces in the request table: `pknonce#<nonce>` written once (conditional put), taken by
 * one conditional update that marks it used (`used_at`) and requires it present, unused and
 * unexpired (`until_ms`): of concurrent consumes exactly one gets it. An update, not a delete: no
 * ackd function may delete items of the table. `retain_until` lets DynamoDB's TTL remove them.
 */
export class DynamoNonceStore implements NonceStore {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
  ) {
    this.doc = documentClient(client);
  }

  async issue(n: IssuedNonce): Promise<void> {
    const until = Date.parse(n.expires_at);
    const ok = await applied(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            pk: NONCE_PK + n.nonce,
            kind: 'passkey-nonce',
            approver: n.approver,
            purpose: n.purpose,
            request_id: n.request_id,
            decision: n.decision,
            expires_at: n.expires_at,
            until_ms: until,
            retain_until: Math.ceil(until / 1000) + 3600,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      ),
    );
    if (!ok) throw new AckdError('ERR_CONFLICT', 'nonce already issued');
  }

  async consume(nonce: string, now: Date): Promise<IssuedNonce | undefined> {
    try {
      const out = await send(() =>
        this.doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { pk: NONCE_PK + nonce },
            UpdateExpression: 'SET used_at = :at',
            ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(used_at) AND until_ms > :now',
            ExpressionAttributeValues: { ':now': now.getTime(), ':at': now.toISOString() },
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      const a = out.Attributes;
      // A purpose this version does not know is no nonce of it (never read as another purpose).
      if (!a || !(NONCE_PURPOSES as readonly unknown[]).includes(a.purpose)) return undefined;
      return {
        nonce,
        approver: String(a.approver),
        purpose: a.purpose as NoncePurpose,
        request_id: typeof a.request_id === 'string' ? a.request_id : null,
        decision: a.decision === 'approved' || a.decision === 'denied' ? (a.decision as DecisionVerdict) : null,
        expires_at: String(a.expires_at),
      };
    } catch (e) {
      if (isConditionFailure(e)) return undefined;
      throw e;
    }
  }
}
