import type { AgentId, RequestId, SpiffeId, SvidId } from './ids.ts';
import type { AuthorizationRecord } from './request.ts';
import type { AuditEvent, PendingEvent } from './audit/event.ts';

/** Time is passed in. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/**
 * Persistence of authorization requests. Every mutating method is ONE conditional write: it either
 * applies the transition or throws an AckdError (ERR_NOT_FOUND, ERR_ALREADY_DECIDED, ERR_EXPIRED,
 * ERR_NOT_APPROVED, ERR_ISSUANCE_IN_PROGRESS, ERR_SVID_MISMATCH …) without changing anything.
 * Vendor failures become ERR_STORE_UNAVAILABLE.
 *
 * Audit: a method taking an `event` records it in the same write as the change, so no change
 * exists without its event. The event is then linked into the hash chain by `linkAudit`; until
 * it is, the request cannot change again (and so no SVID can be claimed after an approval that is
 * not yet in the chain).
 */
export interface RequestStore {
  create(record: AuthorizationRecord, retentionUntilEpochSeconds: number, event: PendingEvent): Promise<void>;
  /** Links the request's latest event into the audit chain (no-op when it already is). */
  linkAudit(requestId: RequestId): Promise<void>;
  /** Links events left unlinked by earlier failures; says how many were linked and how many failed again. */
  linkAuditBacklog(limit: number): Promise<{ linked: number; failed: number }>;
  /** Records a refused attempt to change the request; the request is unchanged. */
  recordRefusal(requestId: RequestId, event: PendingEvent): Promise<void>;
  get(requestId: RequestId): Promise<AuthorizationRecord | undefined>;
  /** An agent's requests, newest first. */
  listByAgent(agentId: AgentId, opts?: { limit?: number; before?: string }): Promise<AuthorizationRecord[]>;
  /** All requests, for export (newest first within the pages the store returns). */
  scanAll(opts?: { limit?: number; cursor?: string }): Promise<{ items: AuthorizationRecord[]; cursor?: string }>;
  /** Requests still awaiting a decision at `now`, soonest deadline first (operators' queue). */
  listPending(now: Date, limit: number): Promise<AuthorizationRecord[]>;
  /** Pending requests whose expires_at <= now (for the sweeper). */
  listExpiredPending(now: Date, limit: number): Promise<AuthorizationRecord[]>;
  /** Pending, not yet expired requests whose consent email is not recorded as sent (for the sweeper's retry). */
  listUnnotifiedPending(now: Date, limit: number): Promise<AuthorizationRecord[]>;

  /** pending → approved|denied, only while pending and not yet expired at `now`. */
  decide(input: {
    requestId: RequestId;
    decision: 'approved' | 'denied';
    approverIdentity: string;
    approverEmail: string | null;
    now: Date;
    svidExpiresAt: string | null;
    event: PendingEvent;
  }): Promise<AuthorizationRecord>;
  /** pending → expired, only when expires_at <= now. */
  expire(requestId: RequestId, now: Date, event: PendingEvent): Promise<AuthorizationRecord>;
  /**
   * Claims the right to mint this request's one SVID for `leaseMs` (approved, not issued,
   * not revoked, no live claim, approval linked into the audit chain). Returns a claim token.
   */
  claimIssuance(requestId: RequestId, now: Date, leaseMs: number): Promise<{ claim: string; record: AuthorizationRecord; decisionSeq: number | null }>;
  /**
   * The audit event at `seq` of the chain (read consistently): with the `decisionSeq` a claim
   * returns, the event the request's item names as its decision.
   */
  auditEvent(seq: number): Promise<AuditEvent | undefined>;
  /** Gives a claim back after a failed mint, so a later check can retry. */
  releaseIssuance(requestId: RequestId, claim: string): Promise<void>;
  /** Records the minted SVID; only the holder of `claim` can. */
  recordIssued(input: { requestId: RequestId; claim: string; svidId: SvidId; now: Date; event: PendingEvent }): Promise<AuthorizationRecord>;
  /** approved+issued → revoked, only when svidId matches. Idempotent: a second call returns the stored record. */
  revoke(input: { requestId: RequestId; svidId: SvidId; now: Date; event: PendingEvent }): Promise<AuthorizationRecord>;
  /** Consent-email bookkeeping. */
  recordNotification(requestId: RequestId, outcome: 'sent' | 'failed', event: PendingEvent): Promise<void>;
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

/** Issues X.509-SVIDs. Implementations: in-process CA, SPIRE server (spire/bridge). */
export interface SvidMinter {
  /**
   * Mints an SVID for `spiffeId` valid until at most `notAfter`. Throws AckdError
   * ERR_ISSUER_UNAVAILABLE (cannot reach / timed out) or ERR_ISSUER_REFUSED (issuer said no).
   */
  mint(spiffeId: SpiffeId, notAfter: Date): Promise<MintedSvid>;
  /** The trust bundle: PEM CA certificates that verify the SVIDs this minter issues. */
  trustBundlePem(): Promise<string>;
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
  revoke(keyId: string, now: Date): Promise<void>;
}

export interface ApiKeyEntry {
  readonly key_id: string;
  readonly key_hash: string;
  readonly agent_id: AgentId;
  readonly created_at: string;
  readonly revoked_at: string | null;
}

export interface Logger {
  info(msg: string, detail?: Record<string, unknown>): void;
  warn(msg: string, detail?: Record<string, unknown>): void;
  error(msg: string, detail?: Record<string, unknown>): void;
}
