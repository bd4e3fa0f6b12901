import { AckdError, isAckdError } from './errors.ts';
import { newRequestId, SpiffeId, type AgentId, type RequestId, type SvidId, type TrustDomain } from './ids.ts';
import { auditEvent, deciderActor, SYSTEM_ACTOR, type Actor } from './audit/event.ts';
import type { ApprovalNotifier, Clock, Logger, MintedSvid, RequestStore, SvidMinter } from './ports.ts';
import { addMinutes, newRecord, statusAt, type AuthorizationRecord, type NewRequest, type RequestStatus } from './request.ts';

export interface ServiceConfig {
  readonly trustDomain: TrustDomain;
  /** Base URL of the consent UI; the consent link is `${consentBaseUrl}/?request_id=<id>`. */
  readonly consentBaseUrl: string;
  readonly retentionDays: number;
  /** How long one caller may hold the issuance claim while it mints. */
  readonly issuanceLeaseMs?: number;
}

export interface ServiceDeps {
  readonly store: RequestStore;
  readonly minter: SvidMinter;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly notifier?: ApprovalNotifier;
}

/** What check_authorization returns. `svid` is present only in the response that picks the SVID up. */
export type CheckResult =
  | { status: 'pending' }
  | {
      status: 'approved';
      svid?: string;
      svid_id: string | null;
      spiffe_id: string;
      expires_at: string;
      /** True when the SVID was delivered by an earlier check; its key is not kept, so it cannot be sent again. */
      svid_delivered: boolean;
    }
  | { status: 'denied' }
  | { status: 'expired' }
  | { status: 'revoked'; revoked_at: string };

export interface CheckOptions {
  /** Aborts a long-poll when the caller has gone away. */
  readonly signal?: AbortSignal;
  /**
   * Checks the caller's credential again (throws ERR_UNAUTHENTICATED when it was revoked). Called
   * before an SVID is minted and again before it is handed out: a key revoked while its check was
   * in flight never receives an SVID.
   */
  readonly reauthorize?: () => Promise<void>;
}

/**
 * The authorization lifecycle. Pure of transport and vendor: it speaks only to its ports.
 * Every transition is a single conditional write in the store.
 */
export class AuthorizationService {
  constructor(
    private readonly config: ServiceConfig,
    private readonly deps: ServiceDeps,
  ) {}

  get trustDomain(): TrustDomain {
    return this.config.trustDomain;
  }

  consentUrl(requestId: RequestId): string {
    return `${this.config.consentBaseUrl.replace(/\/+$/, '')}/?request_id=${requestId}`;
  }

  async requestAuthorization(input: NewRequest): Promise<{ request_id: RequestId; consent_url: string; record: AuthorizationRecord }> {
    const now = this.deps.clock.now();
    const requestId = newRequestId(now.getTime());
    const record = newRecord(input, requestId, this.config.trustDomain, now);
    const retentionUntil = Math.floor(now.getTime() / 1000) + this.config.retentionDays * 86_400;
    await this.deps.store.create(record, retentionUntil, auditEvent('requested', { type: 'agent', id: input.agent_id }, now));
    this.deps.logger.info('authorization requested', { request_id: requestId, agent_id: input.agent_id });
    await this.linkAudit(requestId);
    const consentUrl = this.consentUrl(requestId);
    await this.notify(record, consentUrl);
    return { request_id: requestId, consent_url: consentUrl, record };
  }

  /** Sends the consent notification; a failure is recorded (and retried by the sweeper), never thrown. */
  async notify(record: AuthorizationRecord, consentUrl = this.consentUrl(record.request_id)): Promise<boolean> {
    const notifier = this.deps.notifier;
    if (!notifier) return false;
    let outcome: 'sent' | 'failed';
    let reason: string | null = null;
    try {
      await notifier.notify(record, consentUrl);
      outcome = 'sent';
    } catch (e) {
      outcome = 'failed';
      reason = e instanceof AckdError ? e.code : 'the mail service refused or could not be reached';
      this.deps.logger.warn('consent notification failed', { request_id: record.request_id, error: describe(e) });
    }
    try {
      const type = outcome === 'sent' ? 'email_sent' : 'email_failed';
      await this.deps.store.recordNotification(record.request_id, outcome, auditEvent(type, SYSTEM_ACTOR, this.deps.clock.now(), reason));
      await this.linkAudit(record.request_id);
    } catch (e) {
      this.deps.logger.warn('could not record notification outcome', { request_id: record.request_id, error: describe(e) });
    }
    return outcome === 'sent';
  }

  /** Reads a request for its agent. Another agent's request is reported as not found. */
  async getForAgent(agentId: AgentId, requestId: RequestId): Promise<AuthorizationRecord> {
    const r = await this.deps.store.get(requestId);
    if (!r || r.agent_id !== agentId) throw new AckdError('ERR_NOT_FOUND', `request_id: no request ${requestId} for agent ${agentId}`, { field: 'request_id' });
    return r;
  }

  /** Reads a request (operator / approver view), applying expiry on read. */
  async get(requestId: RequestId): Promise<AuthorizationRecord> {
    const r = await this.deps.store.get(requestId);
    if (!r) throw new AckdError('ERR_NOT_FOUND', `request_id: no request ${requestId}`, { field: 'request_id' });
    return this.expireIfDue(r);
  }

  status(r: AuthorizationRecord): RequestStatus {
    return statusAt(r, this.deps.clock.now());
  }

  /**
   * check_authorization. The first check after approval mints the SVID (fail closed: a mint
   * failure marks nothing issued and throws, so a later check can retry).
   */
  async check(agentId: AgentId, requestId: RequestId, opts: CheckOptions = {}): Promise<CheckResult> {
    let r = await this.getForAgent(agentId, requestId);
    r = await this.expireIfDue(r);
    const s = statusAt(r, this.deps.clock.now());
    switch (s.status) {
      case 'pending':
        return { status: 'pending' };
      case 'denied':
        return { status: 'denied' };
      case 'expired':
        return { status: 'expired' };
      case 'revoked':
        return { status: 'revoked', revoked_at: s.revoked_at };
      case 'approved':
        if (s.issued) {
          return { status: 'approved', svid_id: s.svid_id, spiffe_id: r.spiffe_id, expires_at: s.svid_expires_at, svid_delivered: true };
        }
        return this.issue(r, opts);
    }
  }

  /**
   * Long-poll form of `check`: waits up to `waitSeconds` while the request is pending. Stops as
   * soon as `opts.signal` aborts (the caller went away): no further reads for a client that left.
   */
  async checkWaiting(
    agentId: AgentId,
    requestId: RequestId,
    waitSeconds: number,
    sleep: (ms: number, signal?: AbortSignal) => Promise<void>,
    opts: CheckOptions & { pollMs?: number } = {},
  ): Promise<CheckResult> {
    const pollMs = opts.pollMs ?? 500;
    const deadline = Date.now() + waitSeconds * 1000;
    for (;;) {
      const result = await this.check(agentId, requestId, opts);
      if (result.status !== 'pending' || Date.now() >= deadline || opts.signal?.aborted) return result;
      await sleep(Math.min(pollMs, Math.max(0, deadline - Date.now())), opts.signal);
      if (opts.signal?.aborted) return result;
    }
  }

  private async issue(r: AuthorizationRecord): Promise<CheckResult> {
    // No SVID before the approval is in the audit chain: the claim requires it, and links a
    // pending event first (ERR_STORE_UNAVAILABLE when it cannot).
    const now = this.deps.clock.now();
    let claim: string;
    try {
      claim = await this.deps.store.claimIssuance(r.request_id, now, this.config.issuanceLeaseMs ?? 30_000);
    } catch (e) {
      // Another check delivered the SVID between our read and our claim: report it as delivered.
      if (!isAckdError(e, 'ERR_CONFLICT')) throw e;
      const current = await this.getForAgent(r.agent_id, r.request_id);
      return { status: 'approved', svid_id: current.svid_id, spiffe_id: current.spiffe_id, expires_at: current.svid_expires_at!, svid_delivered: true };
    }
    let minted: MintedSvid;
    try {
      const spiffeId = SpiffeId.parse(r.spiffe_id);
      minted = await this.deps.minter.mint(spiffeId, new Date(r.svid_expires_at!));
    } catch (e) {
      await this.deps.store.releaseIssuance(r.request_id, claim).catch((err: unknown) =>
        this.deps.logger.warn('could not release issuance claim', { request_id: r.request_id, error: describe(err) }),
      );
      if (isAckdError(e)) throw e;
      throw new AckdError('ERR_ISSUER_UNAVAILABLE', undefined, { cause: e });
    }
    const updated = await this.deps.store.recordIssued({
      requestId: r.request_id,
      claim,
      svidId: minted.svidId,
      now,
      event: auditEvent('svid_issued', { type: 'agent', id: r.agent_id }, now),
    });
    this.deps.logger.info('svid issued', { request_id: r.request_id, svid_id: minted.svidId, expires_at: minted.expiresAt.toISOString() });
    // The SVID leaves only once its issuance is in the audit chain. If linking fails, its key is
    // dropped here: the SVID is recorded (and will be linked later) but never delivered.
    await this.deps.store.linkAudit(r.request_id);
    return {
      status: 'approved',
      svid: `${minted.certChainPem.trimEnd()}\n${minted.privateKeyPem.trimEnd()}\n`,
      svid_id: minted.svidId,
      spiffe_id: updated.spiffe_id,
      expires_at: minted.expiresAt.toISOString(),
      svid_delivered: false,
    };
  }

  async revoke(agentId: AgentId | null, requestId: RequestId, svidId: SvidId): Promise<{ revoked: true; revoked_at: string }> {
    if (agentId !== null) await this.getForAgent(agentId, requestId);
    const actor: Actor = agentId !== null ? { type: 'agent', id: agentId } : { type: 'operator', id: 'operator' };
    const now = this.deps.clock.now();
    let r: AuthorizationRecord;
    try {
      r = await this.deps.store.revoke({ requestId, svidId, now, event: auditEvent('revoked', actor, now) });
    } catch (e) {
      if (isAckdError(e, 'ERR_SVID_MISMATCH') || isAckdError(e, 'ERR_NOT_ISSUED')) await this.recordRefusal(requestId, actor, `revocation refused: ${e.code}: ${e.message}`);
      throw e;
    }
    this.deps.logger.info('svid revoked', { request_id: requestId, svid_id: svidId });
    await this.linkAudit(requestId);
    return { revoked: true, revoked_at: r.revoked_at! };
  }

  /** A human's decision. `approverIdentity` is the Cognito sub (or operator name from the CLI). */
  async decide(requestId: RequestId, decision: 'approved' | 'denied', approverIdentity: string, approverEmail: string | null = null): Promise<AuthorizationRecord> {
    if (!approverIdentity.trim()) throw new AckdError('ERR_INVALID_INPUT', 'approver: must not be empty', { field: 'approver' });
    const now = this.deps.clock.now();
    const current = await this.deps.store.get(requestId);
    if (!current) throw new AckdError('ERR_NOT_FOUND', `request_id: no request ${requestId}`, { field: 'request_id' });
    const svidExpiresAt = decision === 'approved' ? addMinutes(now.toISOString(), current.ttl_minutes) : null;
    const actor = deciderActor(approverIdentity);
    let r: AuthorizationRecord;
    try {
      r = await this.deps.store.decide({ requestId, decision, approverIdentity, approverEmail, now, svidExpiresAt, event: auditEvent(decision, actor, now) });
    } catch (e) {
      // A decision refused because the request ran out of time makes sure the expiry is recorded.
      if (isAckdError(e, 'ERR_EXPIRED')) await this.expireIfDue(current);
      if (isAckdError(e, 'ERR_EXPIRED') || isAckdError(e, 'ERR_ALREADY_DECIDED')) {
        await this.recordRefusal(requestId, actor, `${decision === 'approved' ? 'approval' : 'denial'} refused: ${e.code}: ${e.message}`);
      }
      throw e;
    }
    this.deps.logger.info('request decided', { request_id: requestId, decision, approver_identity: approverIdentity });
    await this.linkAudit(requestId);
    return r;
  }

  /** Records a refused attempt in the audit log; a failure to record it is logged, never thrown over the refusal. */
  private async recordRefusal(requestId: RequestId, actor: Actor, reason: string): Promise<void> {
    try {
      await this.deps.store.recordRefusal(requestId, auditEvent('refused', actor, this.deps.clock.now(), reason));
      await this.linkAudit(requestId);
    } catch (e) {
      this.deps.logger.warn('could not record a refused attempt', { request_id: requestId, error: describe(e) });
    }
  }

  /**
   * Links the request's latest audit event into the chain. A failure is logged, not thrown: the
   * change and its event are already stored together, the request cannot change again (nor get
   * an SVID) until the event is linked, and the sweeper links what is left.
   */
  private async linkAudit(requestId: RequestId): Promise<void> {
    try {
      await this.deps.store.linkAudit(requestId);
    } catch (e) {
      this.deps.logger.warn('audit event not linked yet (the sweeper will link it)', { request_id: requestId, error: describe(e) });
    }
  }

  /** Records expiry if the request is pending past its deadline; returns the current record. */
  async expireIfDue(r: AuthorizationRecord): Promise<AuthorizationRecord> {
    const now = this.deps.clock.now();
    if (r.decision !== 'pending' || Date.parse(r.expires_at) > now.getTime()) return r;
    try {
      const expired = await this.deps.store.expire(r.request_id, now, auditEvent('expired', SYSTEM_ACTOR, now));
      this.deps.logger.info('request expired', { request_id: r.request_id });
      await this.linkAudit(r.request_id);
      return expired;
    } catch (e) {
      if (isAckdError(e, 'ERR_ALREADY_DECIDED')) return (await this.deps.store.get(r.request_id)) ?? r;
      throw e;
    }
  }

  /**
   * The periodic sweep: links audit events left unlinked by a failure, records expiry of overdue
   * pending requests and retries failed notifications.
   */
  async sweep(limit = 100): Promise<{ expired: number; renotified: number; linked: number }> {
    const { linked, failed } = await this.deps.store.linkAuditBacklog(limit);
    if (failed > 0) this.deps.logger.warn('audit events still not linked; the next sweep tries again', { failed });
    const due = await this.deps.store.listExpiredPending(this.deps.clock.now(), limit);
    let expired = 0;
    for (const r of due) {
      const after = await this.expireIfDue(r);
      if (after.decision === 'expired' && r.decision === 'pending') expired++;
    }
    return { expired, renotified: await this.retryNotifications(limit), linked };
  }

  /**
   * Re-sends consent emails that failed (or whose first send never got recorded) while the
   * request is still pending. A `pending` status gets a grace period so an in-flight first send
   * is not duplicated; attempts are bounded. Returns how many were sent now.
   */
  async retryNotifications(limit = 100, opts: { graceMs?: number; maxAttempts?: number } = {}): Promise<number> {
    if (!this.deps.notifier) return 0;
    const now = this.deps.clock.now();
    const graceMs = opts.graceMs ?? 60_000;
    const maxAttempts = opts.maxAttempts ?? 10;
    const candidates = await this.deps.store.listUnnotifiedPending(now, limit);
    let sent = 0;
    for (const r of candidates) {
      if (r.decision !== 'pending' || r.notify_status === 'sent' || r.notify_attempts >= maxAttempts) continue;
      if (r.notify_status === 'pending' && now.getTime() - Date.parse(r.requested_at) < graceMs) continue;
      if (await this.notify(r)) sent++;
    }
    return sent;
  }
}

function describe(e: unknown): string {
  if (e instanceof AckdError) return `${e.code}: ${e.message}`;
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
