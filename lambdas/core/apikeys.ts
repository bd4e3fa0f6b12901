import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { AckdError } from './errors.ts';
import type { AgentId } from './ids.ts';
import type { ApiKeyEntry, ApiKeyStore, Clock, Logger } from './ports.ts';
import { sealHolds, sealUnsealedEntries, type OutboxSealer, type SealPlace } from './audit/seal.ts';
import { ThrottledWarnings } from './log-throttle.ts';

/**
 * Agent API keys: `ackd_` + 43 base64url characters (256 random bits). Only the SHA-256 of a key
 * is stored (a fast hash is right for a high-entropy random secret; there is nothing to brute-force).
 */
const KEY_FORMAT = /^ackd_[A-Za-z0-9_-]{43}$/;

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function looksLikeApiKey(token: string): boolean {
  return KEY_FORMAT.test(token);
}

/** A key created or revoked, for the audit log: which key (its id: never the key or its hash) of which agent, and who did it. */
export interface ApiKeyChange {
  readonly agent_id: AgentId;
  readonly key_id: string;
  readonly actor: { readonly type: 'operator'; readonly id: string };
}

/** Records key changes in the audit log (`apikey_created`, `apikey_revoked`). */
export interface ApiKeyAudit {
  keyCreated(change: ApiKeyChange): Promise<void>;
  keyRevoked(change: ApiKeyChange): Promise<void>;
}

/**
 * Creates a key for `agentId`. With `audit`, its creation is an audit event, recorded before the
 * key is stored: a key that exists was logged (when storing fails after, the log names a key that
 * never worked, which harms nothing).
 */
export async function createApiKey(
  store: ApiKeyStore,
  agentId: AgentId,
  clock: Clock,
  audit?: { log: ApiKeyAudit; actor: ApiKeyChange['actor'] },
): Promise<{ apiKey: string; entry: ApiKeyEntry }> {
  const apiKey = `ackd_${randomBytes(32).toString('base64url')}`;
  const keyHash = hashApiKey(apiKey);
  const entry: ApiKeyEntry = {
    key_id: `key_${keyHash.slice(0, 12)}`,
    key_hash: keyHash,
    agent_id: agentId,
    created_at: clock.now().toISOString(),
    revoked_at: null,
  };
  if (audit) await audit.log.keyCreated({ agent_id: agentId, key_id: entry.key_id, actor: audit.actor });
  await store.put(entry);
  return { apiKey, entry };
}

/**
 * Revokes every stored entry with this key id (a twin planted under the same id cannot take the
 * revocation in place of the real key) and returns them. The revocation takes effect first; with
 * `audit`, each revoked key then gets an `apikey_revoked` event. When that cannot be recorded the
 * key stays revoked and the error says so: running the command again records it (a key already
 * revoked is logged again, never un-revoked). Unknown key id: ERR_NOT_FOUND, nothing changed.
 */
export async function revokeApiKey(
  store: ApiKeyStore,
  keyId: string,
  clock: Clock,
  audit?: { log: ApiKeyAudit; actor: ApiKeyChange['actor'] },
): Promise<ApiKeyEntry[]> {
  const revoked = await store.revoke(keyId, clock.now());
  if (audit) {
    for (const e of revoked) {
      try {
        await audit.log.keyRevoked({ agent_id: e.agent_id, key_id: e.key_id, actor: audit.actor });
      } catch (cause) {
        throw new AckdError('ERR_INTERNAL', `API key ${keyId} is revoked, but its audit event could not be recorded (${cause instanceof AckdError ? `${cause.code}: ` : ''}${cause instanceof Error ? cause.message : String(cause)}): run the command again to record it`, { cause });
      }
    }
  }
  return revoked;
}

/** The agent a presented key belongs to. Any failure is ERR_UNAUTHENTICATED with no detail about why. */
export async function authenticateApiKey(store: ApiKeyStore, presented: string | undefined): Promise<AgentId> {
  const presentedHash = presentedKeyHash(presented);
  return agentOf(await store.getByHash(presentedHash), presentedHash);
}

function presentedKeyHash(presented: string | undefined): string {
  if (!presented || !looksLikeApiKey(presented)) throw unauthenticated();
  return hashApiKey(presented);
}

function unauthenticated(): AckdError {
  return new AckdError('ERR_UNAUTHENTICATED', 'a valid agent API key is required');
}

/** The agent of a stored entry, if it is the presented key's and not revoked. */
function agentOf(entry: ApiKeyEntry | undefined, presentedHash: string): AgentId {
  // Constant-time comparison of the hashes, even though the lookup was by hash.
  const expected = Buffer.from(entry?.key_hash ?? '0'.repeat(64), 'hex');
  const actual = Buffer.from(presentedHash, 'hex');
  const same = expected.length === actual.length && timingSafeEqual(expected, actual);
  if (!entry || !same || entry.revoked_at !== null) throw unauthenticated();
  return entry.agent_id;
}

export interface ApiKeyCacheOptions {
  /** How long a key that authenticated is trusted without asking the store again (ms). Default 5000; 0 turns the cache off. */
  readonly ttlMs?: number;
  /** Most keys remembered; the least recently used is forgotten first. Default 10 000. */
  readonly maxEntries?: number;
  /** Milliseconds now (tests). */
  readonly now?: () => number;
}

/**
 * API key lookups remembered per process for a few seconds, so that a burst of calls with one key
 * costs one read of the store, not one per call.
 *
 * - Only keys that authenticated are remembered (by the key's hash, never the key), for `ttlMs`;
 *   a key that did not authenticate is never remembered, so a key created a moment ago works at
 *   once. Concurrent lookups of one key share one read.
 * - `reauthenticate` always asks the store and forgets the key when it no longer authenticates:
 *   ackd calls it before it mints an SVID and again before it hands one out, so a revoked key
 *   never receives an SVID. Every other call may be served from memory: a revoked key may still
 *   make non-SVID calls for up to `ttlMs` on an instance that saw it shortly before.
 */
export class ApiKeyCache {
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  /** hash → the entry and until when it is trusted; Map order is the LRU order (oldest first). */
  private readonly known = new Map<string, { readonly entry: ApiKeyEntry; readonly untilMs: number }>();
  private readonly inFlight = new Map<string, Promise<ApiKeyEntry | undefined>>();
  /** Bumped by every eviction: a read that started before one is not remembered (it may predate a revocation). */
  private evictions = 0;

  constructor(
    private readonly store: ApiKeyStore,
    opts: ApiKeyCacheOptions = {},
  ) {
    this.ttlMs = opts.ttlMs ?? 5000;
    this.maxEntries = Math.max(1, opts.maxEntries ?? 10_000);
    this.now = opts.now ?? Date.now;
  }

  /** The agent a presented key belongs to (from memory when it authenticated within `ttlMs`). ERR_UNAUTHENTICATED otherwise. */
  async authenticate(presented: string | undefined): Promise<AgentId> {
    return (await this.authenticateCall(presented)).agentId;
  }

  /**
   * As `authenticate`, and whether the answer is a read of the store that this call made itself
   * (`read`: not memory, nor another call's read in flight): such a read is as good as a re-check
   * made at that moment (mcpHandler's reauthorize counts it as its first, when it is recent).
   */
  async authenticateCall(presented: string | undefined): Promise<{ readonly agentId: AgentId; readonly read: boolean }> {
    const hash = presentedKeyHash(presented);
    const hit = this.known.get(hash);
    if (hit && hit.untilMs > this.now()) {
      // Most recently used last.
      this.known.delete(hash);
      this.known.set(hash, hit);
      return { agentId: agentOf(hit.entry, hash), read: false };
    }
    if (hit) this.known.delete(hash);
    const epoch = this.evictions;
    let lookup = this.inFlight.get(hash);
    const read = !lookup;
    if (!lookup) {
      lookup = this.store.getByHash(hash);
      const mine = lookup;
      this.inFlight.set(hash, mine);
      const done = () => {
        if (this.inFlight.get(hash) === mine) this.inFlight.delete(hash);
      };
      mine.then(done, done);
    }
    return { agentId: this.settle(hash, await lookup, epoch), read };
  }

  /** The agent of a presented key, always read from the store (never from memory); a key that fails is forgotten. */
  async reauthenticate(presented: string | undefined): Promise<AgentId> {
    const hash = presentedKeyHash(presented);
    const epoch = this.evictions;
    let entry: ApiKeyEntry | undefined;
    try {
      entry = await this.store.getByHash(hash);
    } catch (e) {
      this.forget(hash);
      throw e;
    }
    return this.settle(hash, entry, epoch);
  }

  /** Forgets a key (by its hash). */
  forget(keyHash: string): void {
    this.evictions++;
    this.known.delete(keyHash);
    this.inFlight.delete(keyHash);
  }

  /** How many keys are remembered (tests). */
  get size(): number {
    return this.known.size;
  }

  private settle(hash: string, entry: ApiKeyEntry | undefined, epoch: number): AgentId {
    let agent: AgentId;
    try {
      agent = agentOf(entry, hash);
    } catch (e) {
      this.forget(hash);
      throw e;
    }
    if (this.ttlMs > 0 && epoch === this.evictions) {
      this.known.delete(hash);
      this.known.set(hash, { entry: entry!, untilMs: this.now() + this.ttlMs });
      while (this.known.size > this.maxEntries) this.known.delete(this.known.keys().next().value!);
    }
    return agent;
  }
}

/** An entry as listed to operators: whether it carries a valid seal (an unsealed or forged one never authenticates); null when this process has no seal key to check with. */
export type ApiKeyListing = ApiKeyEntry & { readonly sealed: boolean | null };

const placeOf = (keyHash: string): SealPlace => ({ kind: 'apikey', key_hash: keyHash });
/**
 * What a key's seal covers: which key (its place, the hash) belongs to which agent, since when, and
 * once revoked, when. Revoking seals the entry anew over its `revoked_at`, so clearing `revoked_at`
 * breaks the seal: taking a revocation back needs the seal from before it (a copy taken then).
 */
const sealedFields = (e: ApiKeyEntry) => ({ key_id: e.key_id, agent_id: e.agent_id, created_at: e.created_at, ...(e.revoked_at === null ? {} : { revoked_at: e.revoked_at }) });

/**
 * API keys whose entries are sealed like audit outbox entries (core/audit/seal.ts, the place
 * `{kind:"apikey", key_hash}`): whoever can write the table but does not hold the seal key cannot
 * make a key that authenticates, move a key to another agent, or give one key's entry to another
 * hash. A lookup of an entry without a valid seal answers "no such key" (the caller gets
 * ERR_UNAUTHENTICATED, with no detail) and logs a warning naming the key id. Revoking seals the
 * entry anew over `revoked_at`; a table writer who kept the seal from before can still put it back,
 * and `ackd audit verify --live` then reports the key, whose `apikey_revoked` event is in the log
 * (revokeApiKey).
 */
export class SealedApiKeyStore implements ApiKeyStore {
  private readonly refusals: ThrottledWarnings;

  constructor(
    private readonly inner: ApiKeyStore,
    private readonly sealer: OutboxSealer,
    private readonly logger?: Logger,
  ) {
    this.refusals = new ThrottledWarnings(logger);
  }

  async put(entry: ApiKeyEntry): Promise<void> {
    await this.inner.put({ ...entry, seal: await this.sealer.seal(placeOf(entry.key_hash), sealedFields(entry)) });
  }

  async getByHash(keyHash: string): Promise<ApiKeyEntry | undefined> {
    const entry = await this.inner.getByHash(keyHash);
    if (!entry) return undefined;
    // A revoked entry is refused whatever its seal (marking one revoked can only take access away).
    if (entry.revoked_at !== null) return entry;
    // Checked against the hash asked for, not the entry's own: an entry copied under another key's hash fails.
    const verdict = await this.sealer.check(placeOf(keyHash), sealedFields(entry), entry.seal);
    if (verdict.ok) return entry;
    this.refusals.warn(`${keyHash}:${verdict.reason}`, 'API key refused: its entry carries no valid seal (written outside ackd, or stored before keys were sealed: ackd agents seal-keys)', {
      code: 'ERR_APIKEY_UNSEALED',
      key_id: String(entry.key_id).slice(0, 64),
      reason: verdict.reason,
    });
    return undefined;
  }

  listByAgent(agentId: Parameters<ApiKeyStore['listByAgent']>[0]): Promise<ApiKeyListing[]> {
    return this.inner.listByAgent(agentId).then((es) => this.marked(es));
  }

  listAll(): Promise<ApiKeyListing[]> {
    return this.inner.listAll().then((es) => this.marked(es));
  }

  /**
   * Revokes, sealing each entry anew over its `revoked_at`. When the seal cannot be made (the seal
   * key unavailable) the key is revoked all the same, under its old seal: a revocation never waits
   * for the seal key.
   */
  revoke(keyId: string, now: Date): Promise<ApiKeyEntry[]> {
    return this.inner.revoke(keyId, now, (revoked) =>
      this.sealer.seal(placeOf(revoked.key_hash), sealedFields(revoked)).catch((e: unknown) => {
        this.logger?.warn('API key revoked under its old seal: the seal key is unavailable', { code: 'ERR_SIGNER_UNAVAILABLE', key_id: revoked.key_id, error: e instanceof Error ? e.message : String(e) });
        return undefined;
      }),
    );
  }

  setSeal(entry: ApiKeyEntry, seal: string): Promise<boolean> {
    return this.inner.setSeal(entry, seal);
  }

  /**
   * Seals every stored key that carries no seal at all (keys made before keys were sealed), each
   * only while it is as listed; returns those sealed. An operator runs it once after upgrading,
   * having checked `ackd agents list`: what it seals, it vouches for. A key whose seal is present
   * but wrong is left as it is (it was changed outside ackd). With `keyIds`, only entries with
   * those ids (what the operator checked by name): sealUnsealedEntries.
   */
  async sealUnsealed(keyIds?: readonly string[]): Promise<ApiKeyEntry[]> {
    return sealUnsealedEntries(await this.inner.listAll(), {
      ids: keyIds,
      idOf: (e) => e.key_id,
      field: 'key_id',
      noun: 'API key',
      seal: (e) => this.sealer.seal(placeOf(e.key_hash), sealedFields(e)),
      setSeal: (e, seal) => this.inner.setSeal(e, seal),
    });
  }

  /** Each entry with whether its seal holds; listing works without the seal key too (an operator's CLI may have none), saying so with null. */
  private async marked(entries: readonly ApiKeyEntry[]): Promise<ApiKeyListing[]> {
    return Promise.all(
      entries.map(async (e) => ({
        ...e,
        sealed: await sealHolds(this.sealer, placeOf(e.key_hash), sealedFields(e), e.seal),
      })),
    );
  }
}
