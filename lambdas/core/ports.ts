import type { AgentId, RequestId, SpiffeId, SvidId } from './ids.ts';
import type { AuthorizationRecord } from './request.ts';
import type { AuditEvent, PendingEvent } from './audit/event.ts';
import type { Params, TransitionName } from './lifecycle.ts';

/** Time is passed in. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/**
 * Persistence of authorization requests. Every change after `create` is `apply` of a row of the
 * lifecycle table: ONE conditional write that either applies the transition or throws an
 * AckdError (ERR_NOT_FOUND, or the row's refusal) without changing anything. Vendor failures
 * become ERR_STORE_UNAVAILABLE.
 *
 * Audit: a write taking an `event` records it in the same write as the change, so no change
 * exists without its event. The audit sequencer (core/audit/sequencer.ts) then gives it its place
 * in the log; an SVID is claimed only once the approval has one (the claim's guard).
 */
export interface RequestStore {
  create(record: AuthorizationRecord, retentionUntilEpochSeconds: number, event: PendingEvent): Promise<void>;
  get(requestId: RequestId): Promise<AuthorizationRecord | undefined>;
  /**
   * The request with where its item points in the audit chain (one consistent read), so an SVID
   * pickup reads the approval's events beside its claim instead of after it. Optional: without
   * it, the events are read after the claim, from the seqs the claim returns.
   */
  getWithSeqs?(requestId: RequestId): Promise<Applied | undefined>;
  /**
   * An agent's requests, newest first, at most `limit` (default 50). `after`: the page starts just
   * after this request (the last of the previous page), in the store's order, which is total and
   * stable (requests made in the same millisecond included): paging never repeats or skips one.
   */
  listByAgent(agentId: AgentId, opts?: { limit?: number; after?: { readonly requested_at: string; readonly request_id: RequestId } }): Promise<AuthorizationRecord[]>;
  /** Requests still awaiting a decision at `now`, soonest deadline first (operators' queue). */
  listPending(now: Date, limit: number): Promise<AuthorizationRecord[]>;
  /** Requests decided or revoked at or after `since`, most recent first (the approvers' dashboard). */
  listRecentlyDecided(since: Date, limit: number): Promise<AuthorizationRecord[]>;
  /** Pending requests whose expires_at <= now (for the sweeper). */
  listExpiredPending(now: Date, limit: number): Promise<AuthorizationRecord[]>;
  /** Pending, not yet expired requests whose consent email is not recorded as sent (for the sweeper's retry). */
  listUnnotifiedPending(now: Date, limit: number): Promise<AuthorizationRecord[]>;

  /**
   * Applies one row of the lifecycle table (lambdas/core/lifecycle.ts) as ONE conditional write:
   * the row's from-state and guards are the condition, its updates the change, and `event` (one
   * of the row's event types; required when the row records one) is written with the change.
   * Refused: throws the AckdError the row names for the request as it stands. A call already
   * done (the row's `doneIn`, or `unchanged` refusals) returns the current record, `changed: false`.
   */
  apply(name: TransitionName, requestId: RequestId, params: Params, event?: PendingEvent): Promise<Applied>;
  /** The audit events at these seqs, read together and consistently (missing ones left out). */
  auditEvents(seqs: readonly number[]): Promise<AuditEvent[]>;
  /**
   * The requests of these ids (consistent reads), absent ones left out: the long-poll's one
   * batched read of every request waited on (BatchGetItem, 100 keys per call, on DynamoDB).
   */
  getMany(ids: readonly RequestId[]): Promise<Map<RequestId, AuthorizationRecord>>;
}

/** What a lifecycle write leaves. */
export interface Applied {
  readonly record: AuthorizationRecord;
  /** Where the item points in the audit chain for its decision (approved, denied or expired). */
  readonly decisionSeq: number | null;
  /** Where it points in the audit chain for its `requested` event (what was asked, under which quorum). */
  readonly requestedSeq: number | null;
  /** Where it points in the audit chain for each vote cast on it, in order. */
  readonly voteSeqs: readonly number[];
  /** False when the call was already done and nothing was written. */
  readonly changed: boolean;
}

/** A minted X.509-SVID. The private key exists only in this object and the response carrying it. */
export interface MintedSvid {
  /** PEM certificates, leaf first. */
  readonly certChainPem: string;
  /** PEM PKCS#8 private key. */
  readonly privateKeyPem: string;
  /** Leaf serial number, lowercase hex. */
  readonly svidId: SvidId;
  readonly expiresAt: Date;
}

/**
 * What a minter made ahead of a mint (SvidMinter.prepare): opaque to the core, and only ever
 * local work without authority (e.g. a key pair and CSR in memory). Dropped when no mint follows.
 */
export interface MintPreparation {
  readonly spiffeId: string;
}

/** Issues X.509-SVIDs. Implementations: in-process CA, SPIRE server (spire/bridge). */
export interface SvidMinter {
  /**
   * Mints an SVID for `spiffeId` valid until at most `notAfter`. Throws AckdError
   * ERR_ISSUER_UNAVAILABLE (cannot reach / timed out) or ERR_ISSUER_REFUSED (issuer said no).
   * `prepared`: what `prepare` made for the same SPIFFE ID (another's is ignored).
   */
  mint(spiffeId: SpiffeId, notAfter: Date, prepared?: MintPreparation): Promise<MintedSvid>;
  /**
   * Optional: starts the local part of a mint for `spiffeId` (its key pair and CSR), which needs
   * no authority and asks the issuer nothing, so it can run while the approval is still being
   * proved. Never throws; a failure surfaces in `mint`. The key lives only in this process's
   * memory and is dropped with the preparation when no mint follows.
   */
  prepare?(spiffeId: SpiffeId): MintPreparation;
  /** The trust bundle: PEM CA certificates that verify the SVIDs this minter issues. */
  trustBundlePem(): Promise<string>;
}

/** One notification to one route (a named set of channels: email, signed webhook, Slack). */
export interface RouteMessage {
  readonly record: AuthorizationRecord;
  readonly consentUrl: string;
  /** Quorum progress while pending; null when one approval decides. */
  readonly approvals: { readonly have: number; readonly need: number; readonly voters: readonly string[] } | null;
  /** Why these recipients were asked, shown to them. */
  readonly reason: string;
  readonly route: string;
  readonly escalation: boolean;
}

/** What happened on one channel of a route. */
export interface RouteOutcome {
  readonly channel: string;
  readonly ok: boolean;
  readonly error?: string;
}

/** Sends a message to every channel of a route; never throws (an unknown route is one failed outcome). */
export interface RouteSender {
  has(route: string): boolean;
  send(m: RouteMessage): Promise<readonly RouteOutcome[]>;
}

/** A trust bundle as last fetched from the issuer. */
export interface KnownBundle {
  readonly pem: string;
  readonly fetched_at: string;
}

/**
 * The last trust bundle the issuer gave, kept so resources can still get it while the issuer is
 * down (a bundle changes rarely: CA rotation overlaps old and new).
 */
export interface BundleStore {
  lastKnown(): Promise<KnownBundle | undefined>;
  remember(b: KnownBundle): Promise<void>;
}

/** Tells approvers that a request awaits them. Throws on failure (the caller records it). */
export interface ApprovalNotifier {
  notify(record: AuthorizationRecord, consentUrl: string): Promise<void>;
}

/** API keys of agents. Keys are stored only as hashes. */
export interface ApiKeyStore {
  put(entry: ApiKeyEntry): Promise<void>;
  /** Looks up by the SHA-256 hash of the presented key. */
  getByHash(keyHash: string): Promise<ApiKeyEntry | undefined>;
  listByAgent(agentId: AgentId): Promise<ApiKeyEntry[]>;
  /** Every key, oldest first. */
  listAll(): Promise<ApiKeyEntry[]>;
  /**
   * Marks every entry with this key id revoked at `now` (those already revoked stay as they are),
   * each with the seal `sealOf` makes for it as revoked (none: its seal stays); returns them all as
   * they are now. ERR_NOT_FOUND when no entry has the id.
   */
  revoke(keyId: string, now: Date, sealOf?: (revoked: ApiKeyEntry) => Promise<string | undefined>): Promise<ApiKeyEntry[]>;
  /** Adds `seal` to a stored entry that has none, only while it is as given (false: changed, gone or sealed since). */
  setSeal(entry: ApiKeyEntry, seal: string): Promise<boolean>;
}

export interface ApiKeyEntry {
  readonly key_id: string;
  readonly key_hash: string;
  readonly agent_id: AgentId;
  readonly created_at: string;
  readonly revoked_at: string | null;
  /** The writer's seal over the entry (core/apikeys.ts SealedApiKeyStore); absent on keys stored before keys were sealed. */
  readonly seal?: string;
}

export interface Logger {
  info(msg: string, detail?: Record<string, unknown>): void;
  warn(msg: string, detail?: Record<string, unknown>): void;
  error(msg: string, detail?: Record<string, unknown>): void;
}
