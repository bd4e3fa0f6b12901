import { randomUUID, type KeyObject } from 'node:crypto';
import { AckdError, isAckdError } from './errors.ts';
import { newRequestId, SpiffeId, type AgentId, type RequestId, type SvidId, type TrustDomain } from './ids.ts';
import { actorIdentity, approvalProblem, auditEvent, deciderActor, SYSTEM_ACTOR, type Actor } from './audit/event.ts';
import type { Applied, ApprovalNotifier, Clock, Logger, MintedSvid, MintPreparation, RequestStore, RouteSender, SvidMinter } from './ports.ts';
import { addMinutes, newRecord, type AuthorizationRecord, type NewRequest, type RequestStatus } from './request.ts';
import { AWAITING_LOG_MESSAGE, NOT_IN_LOG_MESSAGE, isPast, stateOf, statusAt, svidEnd } from './lifecycle.ts';
import { approvalsOf, describeQuorum, LEGACY_QUORUM, outcomeOf, quorumOf, voterOf, type CastVote, type Quorum } from './quorum.ts';
import { voterEligibility, type Resolution } from './policy.ts';
import { ownerOf, type AgentStore } from './agents.ts';
import { DIGEST_ATTEMPTS_MAX, DIGEST_LISTED_MAX, isRecipientNotifier, type Lease, type Limits } from './limits.ts';
import { Waiting } from './waiting.ts';
import { approvalView, viewSha256 } from './view.ts';
import { passkeyRequirement, withPasskeyRule, type PasskeyRule, type PasskeyService, type VotePasskey } from './passkeys.ts';
import { parsePayload, payloadProblem } from './payload.ts';
import { decisionProblem, decisionStatement, signDecision, type DecisionEvidence, type DecisionSigner, type SignedDecision } from './evidence.ts';
import { receiptClaims, type ReceiptSigner } from './receipt.ts';
import { checkpointPublicKey, keyIdOf } from './audit/signing.ts';
import type { Value } from './lifecycle.ts';

export interface ServiceConfig {
  readonly trustDomain: TrustDomain;
  /** Base URL of the consent UI; the consent link is `${consentBaseUrl}/?request_id=<id>`. */
  readonly consentBaseUrl: string;
  readonly retentionDays: number;
  /** How long one caller may hold the issuance claim while it mints. */
  readonly issuanceLeaseMs?: number;
  /** How long a check waits for the sequencer to put an approval in the audit log before saying "check again" (default 10 s). */
  readonly auditWaitMs?: number;
  /** Which decisions must be signed with a passkey besides what policies say (ACKD_PASSKEY_REQUIRED; default none). */
  readonly passkeyRequired?: PasskeyRule;
}

export interface ServiceDeps {
  readonly store: RequestStore;
  readonly minter: SvidMinter;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly notifier?: ApprovalNotifier;
  /** Flood limits (per agent, per approver). Without them nothing is limited. */
  readonly limits?: Limits;
  /** Approval policies; without them every request is decided by one approver, as before policies. */
  readonly policies?: {
    resolve(agentId: AgentId, permissions: readonly string[]): Promise<Resolution>;
    /** The policy and the agent's owner in one read (PolicyService). */
    resolveWithOwner?(agentId: AgentId, permissions: readonly string[], agents: AgentStore | undefined): Promise<{ resolution: Resolution; owner: string | null }>;
  };
  /** Agent owners (for separation of duties). */
  readonly agents?: AgentStore;
  /**
   * Notification routes (ACKD_ROUTES: email, signed webhook, Slack). A request goes to its
   * policy's routes, else to the route named `default`; without either, to `notifier`.
   */
  readonly routes?: RouteSender;
  /**
   * Tells the audit sequencer that a write left an event waiting. Where it runs in this process,
   * returns the end of its next run; undefined elsewhere (on AWS the table's stream wakes it).
   */
  readonly auditNudge?: () => Promise<void> | undefined;
  /**
   * Consent notifications leave the agent's critical path: request_authorization only records the
   * request, and the audit sequencer's follow-up (`afterSequenced`) sends the notification once
   * the request's event is in the log (a failure is recorded and retried by the sweep). Without
   * it, the notification is sent inside request_authorization.
   */
  readonly notifyAfterSequencing?: boolean;
  /** The process's shared long-poll (one per process); without it the service makes its own. */
  readonly waiting?: Waiting;
  /** Rules on what may be asked for, run before anything is stored (e.g. `aws:role/<name>` must name a configured role); throw to refuse. */
  readonly permissionRules?: (input: NewRequest) => void;
  /** Called after a request is revoked (by its agent, an approver or an operator), e.g. to deny its AWS sessions; errors are logged, never thrown. */
  readonly onRevoked?: (r: AuthorizationRecord) => Promise<void>;
  /** Approvers' passkeys: verifies the assertion a decision carries. Without it, a decision that needs one is refused. */
  readonly passkeys?: PasskeyService;
  /**
   * Signed decisions (issue 13): `signer` signs every deciding write (approval and denial) with
   * the decision key, and no SVID is minted unless the request's signed decision verifies under
   * `publicKeyPem` and states exactly what the request records. Where a key is not configured its
   * adapter refuses (deciding, or minting, fails closed). Without `decisions` (the core's unit
   * tests) nothing is signed or checked.
   */
  readonly decisions?: { readonly signer: DecisionSigner; readonly publicKeyPem: () => Promise<string> };
  /** Signs the receipt delivered with an SVID (core/receipt.ts); checked before minting, so an SVID never leaves without its receipt. */
  readonly receipts?: ReceiptSigner;
}

/** What check_authorization returns: the status, and the digest of the payload it is about. */
export type CheckResult = CheckStatus & {
  /** Lowercase hex SHA-256 of the request's payload (canonical JSON); null without one. */
  readonly payload_sha256: string | null;
};

/** The status part of a check. `svid` is present only in the response that picks the SVID up. */
export type CheckStatus =
  | { status: 'pending'; approvals: { have: number; need: number } }
  | {
      status: 'approved';
      svid?: string;
      svid_id: string | null;
      spiffe_id: string;
      expires_at: string;
      /** True when the SVID was delivered by an earlier check; its key is not kept, so it cannot be sent again. */
      svid_delivered: boolean;
      /** The approval receipt (compact JWS, core/receipt.ts), with the SVID only. */
      receipt?: string;
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

  private ownWaiting: Waiting | undefined;

  /** The long-poll this service's waits use. */
  private get waiting(): Waiting {
    return this.deps.waiting ?? (this.ownWaiting ??= new Waiting({ store: this.deps.store, clock: this.deps.clock, logger: this.deps.logger }));
  }

  get trustDomain(): TrustDomain {
    return this.config.trustDomain;
  }

  consentUrl(requestId: RequestId): string {
    return `${this.config.consentBaseUrl.replace(/\/+$/, '')}/?request_id=${requestId}`;
  }

  async requestAuthorization(input: NewRequest): Promise<{ request_id: RequestId; consent_url: string; record: AuthorizationRecord }> {
    this.deps.permissionRules?.(input);
    if (input.payload !== undefined && input.payload !== null) parsePayload(input.payload);
    const now = this.deps.clock.now();
    const requestId = newRequestId(now.getTime());
    // The rule the request is decided under is read while the limits are taken (neither needs the
    // other). A refused limit changes nothing (no request, no mail, no audit event); the attempt
    // counts against the agent's minute even when the open-request limit refuses it. A slot is
    // given back when the rule cannot be read, not when the create fails: that write may have
    // happened all the same (a slot whose request does not exist is taken back a minute later).
    const [quorum, slot] = await Promise.allSettled([this.quorumFor(input.agent_id, input.permissions), this.takeLimits(input.agent_id, requestId, addMinutes(now.toISOString(), input.ttl_minutes))]);
    if (slot.status === 'rejected') throw slot.reason;
    if (quorum.status === 'rejected') {
      await slot.value?.release();
      throw quorum.reason;
    }
    const record = newRecord(input, requestId, this.config.trustDomain, now, withPasskeyRule(quorum.value, this.config.passkeyRequired ?? 'none', Boolean(input.payload)));
    const retentionUntil = Math.floor(now.getTime() / 1000) + this.config.retentionDays * 86_400;
    await this.deps.store.create(record, retentionUntil, auditEvent('requested', { type: 'agent', id: input.agent_id }, now));
    this.deps.logger.info('authorization requested', { request_id: requestId, agent_id: input.agent_id });
    this.recorded();
    const consentUrl = this.consentUrl(requestId);
    if (!this.deps.notifyAfterSequencing) await this.notify(record, consentUrl);
    return { request_id: requestId, consent_url: consentUrl, record };
  }

  /** The agent's request rate and an open-request slot, in one conditional write in the common case (Limits.admitRequest). */
  private async takeLimits(agentId: AgentId, requestId: RequestId, expiresAt: string): Promise<Lease | undefined> {
    return this.deps.limits?.admitRequest(agentId, requestId, expiresAt, this.deps.store);
  }

  /**
   * The follow-up of sequenced audit events (the sequencer calls it after each batch): with
   * `notifyAfterSequencing`, each new request is announced now that its event is in the log, at
   * most 8 at a time; their requests are read in one batch. A request already decided, or whose
   * notification was already attempted, is left alone (the sweep retries failures).
   */
  async afterSequenced(events: readonly { readonly type: string; readonly request_id?: string }[]): Promise<void> {
    if (!this.deps.notifyAfterSequencing) return;
    const ids = [...new Set(events.flatMap((e) => (e.type === 'requested' && e.request_id ? [e.request_id as RequestId] : [])))];
    if (ids.length === 0) return;
    let records: Map<RequestId, AuthorizationRecord>;
    try {
      records = await this.deps.store.getMany(ids);
    } catch (e) {
      this.deps.logger.warn('consent notification after sequencing failed; the sweep retries it', { requests: ids.length, error: describe(e) });
      return;
    }
    const due = ids.flatMap((id) => {
      const r = records.get(id);
      return r && r.decision === 'pending' && r.notify_status === 'pending' && r.notify_attempts === 0 ? [r] : [];
    });
    for (let i = 0; i < due.length; i += 8) {
      await Promise.all(
        due.slice(i, i + 8).map(async (r) => {
          try {
            await this.notify(r);
          } catch (e) {
            this.deps.logger.warn('consent notification after sequencing failed; the sweep retries it', { request_id: r.request_id, error: describe(e) });
          }
        }),
      );
    }
  }

  /**
   * Sends the consent notification; a failure is recorded (and retried by the sweeper), never
   * thrown. With limits, each approver gets at most mailsPerApprover individual mails per mail
   * window: an approver over it gets the request in one digest after the window instead, and
   * nothing is recorded for the request until a mail actually goes out (email_sent then; a
   * request that expires first records no mail event). `retry` (the sweeper's re-send) leaves
   * out approvers whose digest already holds the request. Returns whether a mail was sent now.
   */
  async notify(record: AuthorizationRecord, consentUrl = this.consentUrl(record.request_id), opts: { retry?: boolean } = {}): Promise<boolean> {
    const routes = this.routesOf(record);
    if (routes) return this.deliver(record, consentUrl, routes, { escalation: false, reason: describeQuorum(record.quorum ?? LEGACY_QUORUM) }, 'recordNotification');
    const notifier = this.deps.notifier;
    if (!notifier) return false;
    let outcome: 'sent' | 'failed';
    let reason: string | null = null;
    let refund: (() => Promise<void>) | undefined;
    try {
      const limits = this.deps.limits;
      const counted = limits && isRecipientNotifier(notifier) ? notifier : undefined;
      const recipients = counted ? counted.recipients(record) : [];
      if (limits && counted && recipients.length > 0) {
        const plan = await limits.planMail(record.request_id, recipients, { retry: opts.retry ?? false });
        if (plan.queued.length > 0 || plan.dropped.length > 0) {
          this.deps.logger.info('consent mail over an approver mail limit: deferred to a digest', {
            request_id: record.request_id,
            deferred: plan.queued.length,
            not_queued: plan.dropped.length,
            mailed: plan.send.length,
          });
        }
        if (plan.send.length === 0) return false;
        refund = plan.refund;
        await counted.notify(record, consentUrl, plan.send);
      } else {
        await notifier.notify(record, consentUrl);
      }
      outcome = 'sent';
    } catch (e) {
      outcome = 'failed';
      reason = e instanceof AckdError ? e.code : 'the mail service refused or could not be reached';
      await refund?.();
      this.deps.logger.warn('consent notification failed', { request_id: record.request_id, error: describe(e) });
    }
    await this.recordNotification(record.request_id, outcome, reason);
    return outcome === 'sent';
  }

  /** The routes a request is announced on: its policy's, else the deployment's `default` route; undefined: the email notifier. */
  private routesOf(r: AuthorizationRecord): readonly string[] | undefined {
    const sender = this.deps.routes;
    if (!sender) return undefined;
    const named = r.quorum?.routes ?? [];
    if (named.length > 0) return named;
    return sender.has('default') ? ['default'] : undefined;
  }

  /**
   * Sends one message to every channel of `routes` and records what happened in one event
   * (`notified`, or `notify_failed` naming each failed channel): `recordNotification` for the
   * announcement (a failure is retried by the sweeper), `recordDelivery` for an escalation.
   * Returns whether every channel took it.
   */
  private async deliver(
    record: AuthorizationRecord,
    consentUrl: string,
    routes: readonly string[],
    how: { escalation: boolean; reason: string },
    row: 'recordNotification' | 'recordDelivery',
  ): Promise<boolean> {
    const sender = this.deps.routes!;
    const progress = approvalsOf(record);
    const approvals = progress.need > 1 ? { ...progress, voters: (record.votes ?? []).map((v) => `${v.email ?? v.voter} (${v.vote})`) } : null;
    const outcomes = (await Promise.all(routes.map((route) => sender.send({ record, consentUrl, approvals, reason: how.reason, route, escalation: how.escalation })))).flat();
    const ok = outcomes.length > 0 && outcomes.every((o) => o.ok);
    const summary = `${how.escalation ? 'escalation to' : 'routes'} ${routes.join(', ')}: ${outcomes.map((o) => (o.ok ? o.channel : `${o.channel} failed (${o.error ?? 'error'})`)).join('; ')}`;
    if (!ok) this.deps.logger.warn('notification not delivered on every channel', { request_id: record.request_id, summary });
    try {
      const event = auditEvent(ok ? 'notified' : 'notify_failed', SYSTEM_ACTOR, this.deps.clock.now(), summary.slice(0, 1000));
      await this.deps.store.apply(row, record.request_id, { outcome: ok ? 'sent' : 'failed' }, event);
      this.recorded();
    } catch (e) {
      this.deps.logger.warn('could not record notification outcome', { request_id: record.request_id, error: describe(e) });
    }
    return ok;
  }

  private async recordNotification(requestId: RequestId, outcome: 'sent' | 'failed', reason: string | null): Promise<void> {
    try {
      const type = outcome === 'sent' ? 'email_sent' : 'email_failed';
      await this.deps.store.apply('recordNotification', requestId, { outcome }, auditEvent(type, SYSTEM_ACTOR, this.deps.clock.now(), reason));
      this.recorded();
    } catch (e) {
      this.deps.logger.warn('could not record notification outcome', { request_id: requestId, error: describe(e) });
    }
  }

  /** Reads a request for its agent. Another agent's request is reported as not found. */
  async getForAgent(agentId: AgentId, requestId: RequestId): Promise<AuthorizationRecord> {
    return (await this.readForAgent(agentId, requestId)).record;
  }

  /** A request of its agent, with where its item points in the audit chain when the store tells (see RequestStore.getWithSeqs). */
  private async readForAgent(agentId: AgentId, requestId: RequestId): Promise<{ record: AuthorizationRecord; seqs: ChainSeqs | undefined }> {
    const store = this.deps.store;
    const read = store.getWithSeqs ? await store.getWithSeqs(requestId) : undefined;
    const r = store.getWithSeqs ? read?.record : await store.get(requestId);
    if (!r || r.agent_id !== agentId) throw new AckdError('ERR_NOT_FOUND', `request_id: no request ${requestId} for agent ${agentId}`, { field: 'request_id' });
    return { record: r, seqs: read };
  }

  /** Reads a request (operator / approver view), applying expiry on read. */
  async get(requestId: RequestId): Promise<AuthorizationRecord> {
    const r = await this.deps.store.get(requestId);
    if (!r) throw new AckdError('ERR_NOT_FOUND', `request_id: no request ${requestId}`, { field: 'request_id' });
    return this.expireIfDue(r);
  }

  /**
   * What approvers see first: requests awaiting a decision (soonest deadline first) and requests
   * decided or revoked in the last `recentHours` (most recent first).
   */
  async dashboard(opts: { pendingLimit?: number; recentLimit?: number; recentHours?: number } = {}): Promise<{ pending: AuthorizationRecord[]; recent: AuthorizationRecord[] }> {
    const now = this.deps.clock.now();
    const since = new Date(now.getTime() - (opts.recentHours ?? 24) * 3_600_000);
    const [pending, recent] = await Promise.all([this.deps.store.listPending(now, opts.pendingLimit ?? 50), this.deps.store.listRecentlyDecided(since, opts.recentLimit ?? 20)]);
    return { pending, recent };
  }

  status(r: AuthorizationRecord): RequestStatus {
    return statusAt(r, this.deps.clock.now());
  }

  /**
   * check_authorization. The first check after approval mints the SVID (fail closed: a mint
   * failure marks nothing issued and throws, so a later check can retry).
   */
  async check(agentId: AgentId, requestId: RequestId, opts: CheckOptions = {}): Promise<CheckResult> {
    const read = await this.readForAgent(agentId, requestId);
    const r = await this.expireIfDue(read.record);
    return { ...(await this.checkStatus(r, opts, r === read.record ? read.seqs : undefined)), payload_sha256: r.payload_sha256 ?? null };
  }

  private async checkStatus(r: AuthorizationRecord, opts: CheckOptions, seqs?: ChainSeqs): Promise<CheckStatus> {
    const s = statusAt(r, this.deps.clock.now());
    switch (s.status) {
      case 'pending':
        return { status: 'pending', approvals: approvalsOf(r) };
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
        return this.issue(r, opts, seqs);
    }
  }

  /**
   * Long-poll form of `check`: waits up to `waitSeconds` while the request is pending. The wait is
   * one of the process's shared long-poll (waiting.ts): it reads every waited-on request in one
   * batch per tick and ends a wait at once when the request changes in this process; then this
   * checks again (which mints the SVID on approval). Stops as soon as `opts.signal` aborts (the
   * caller went away): no further reads for a client that left. A wait holds one of the agent's
   * concurrentWaits slots (ERR_RATE_LIMITED when all are held; a request already decided is
   * answered without one).
   *
   * `sleep`, `pollMs` and `maxPollMs` are no longer used (the shared poller's tick sets the pace);
   * they stay in the signature for existing callers.
   */
  async checkWaiting(
    agentId: AgentId,
    requestId: RequestId,
    waitSeconds: number,
    _sleep: (ms: number, signal?: AbortSignal) => Promise<void>,
    opts: CheckOptions & { pollMs?: number; maxPollMs?: number } = {},
  ): Promise<CheckResult> {
    const deadline = Date.now() + waitSeconds * 1000;
    let result = await this.check(agentId, requestId, opts);
    if (result.status !== 'pending' || waitSeconds <= 0 || opts.signal?.aborted) return result;
    const lease = await this.deps.limits?.claimWait(agentId, waitSeconds * 1000);
    try {
      // A change may leave it pending (a vote short of the quorum): then wait on.
      while ((await this.waiting.wait(agentId, requestId, deadline, opts.signal)) === 'changed') {
        result = await this.check(agentId, requestId, opts);
        if (result.status !== 'pending') break;
      }
      return result;
    } finally {
      await lease?.release();
    }
  }

  /**
   * Mints the SVID of an approved request: claim → the approval proved from the chain → the
   * signed decision checked → mint → receipt → the issuance written. With the item's audit
   * pointers from the read before (`seqs`), the approval's events and the caller's key are read
   * while the claim is written (the events are immutable once sequenced, and are used only if
   * the claimed item points at exactly these seqs); otherwise after it.
   */
  private async issue(r: AuthorizationRecord, opts: CheckOptions, seqs?: ChainSeqs): Promise<CheckStatus> {
    this.issuing++;
    try {
      return await this.issueNow(r, opts, seqs);
    } finally {
      this.issuing--;
      this.nudgeAfterPickups();
    }
  }

  /** Pickups in flight in this process (issue()); while any is, the sequencer's nudge for the SVIDs issued waits (nudgeAfterPickups). */
  private issuing = 0;
  /** An issuance was written and the sequencer not yet told. */
  private nudgeHeld = false;
  private nudgeTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * Tells the sequencer of the svid_issued events written, off the agents' paths: after the
   * response that delivers the SVID is on its way (a sequencer run in this process shares its
   * thread), and while other pickups are in flight here, once the last of them is done (one run
   * for all their events), yet at most ISSUED_NUDGE_HOLD_MS after the first: the merge delay stays
   * bounded. (Where no sequencer runs in this process, `auditNudge` does nothing.)
   */
  private nudgeAfterPickups(): void {
    if (!this.nudgeHeld) return;
    if (this.issuing === 0) {
      this.nudgeHeld = false;
      clearTimeout(this.nudgeTimer);
      this.nudgeTimer = undefined;
      setImmediate(() => this.recorded());
      return;
    }
    this.nudgeTimer ??= setTimeout(() => {
      this.nudgeTimer = undefined;
      if (!this.nudgeHeld) return;
      this.nudgeHeld = false;
      this.recorded();
    }, ISSUED_NUDGE_HOLD_MS);
    this.nudgeTimer.unref?.(); // (never what keeps a process alive: a CLI that checked exits at once)
  }

  private async issueNow(r: AuthorizationRecord, opts: CheckOptions, seqs?: ChainSeqs): Promise<CheckStatus> {
    // No SVID before the approval is in the audit log: the claim requires the sequencer to have
    // put it there, and waits for that (a short, bounded wait: the sequencer runs seconds behind).
    const claim = randomUUID();
    let now: Date;
    let claimed: AuthorizationRecord;
    let decisionSeq: number | null;
    let requestedSeq: number | null;
    let voteSeqs: readonly number[];
    const early = seqs && seqs.decisionSeq !== null ? { wanted: wantedSeqs(seqs), events: quiet(this.deps.store.auditEvents(wantedSeqs(seqs))), key: quiet(opts.reauthorize?.()) } : undefined;
    // The SVID's key pair and CSR meanwhile: local work that asks the issuer nothing (the mint
    // itself waits for every check below); dropped if no mint follows.
    const prepared = this.prepareMint(r);
    let firstTry = true;
    const waitUntil = Date.now() + (this.config.auditWaitMs ?? 10_000);
    for (let pause = 20; ; pause = Math.min(500, pause * 2)) {
      try {
        now = this.deps.clock.now();
        const until = now.getTime() + (this.config.issuanceLeaseMs ?? 30_000);
        ({ record: claimed, decisionSeq, requestedSeq, voteSeqs } = await this.deps.store.apply('claimIssuance', r.request_id, { now: now.toISOString(), nowMs: now.getTime(), claim, until }));
        break;
      } catch (e) {
        firstTry = false;
        if (isAckdError(e, 'ERR_ISSUANCE_IN_PROGRESS') && e.message.endsWith(AWAITING_LOG_MESSAGE) && Date.now() + pause < waitUntil && !opts.signal?.aborted) {
          // Where the sequencer runs here, its next run is awaited (bounded by the pause); elsewhere, the pause.
          const run = this.deps.auditNudge?.();
          await (run ? Promise.race([run, delay(Math.max(pause, 250))]) : delay(pause));
          continue;
        }
        if (isAckdError(e, 'ERR_NOT_APPROVED') && e.message.endsWith(NOT_IN_LOG_MESSAGE)) {
          // The item says approved, the log holds no decision and nothing waits: written into the table.
          this.deps.logger.error('refusing to issue an SVID: the request is not approved in the audit log', { request_id: r.request_id, problem: 'no decision event' });
          await this.recordRefusal(r.request_id, SYSTEM_ACTOR, 'issuance refused: the audit log records no decision for it');
          throw e;
        }
        // Another check delivered the SVID between our read and our claim: report it as delivered.
        if (!isAckdError(e, 'ERR_CONFLICT')) throw e;
        const current = await this.getForAgent(r.agent_id, r.request_id);
        return { status: 'approved', svid_id: current.svid_id, spiffe_id: current.spiffe_id, expires_at: svidEnd(current), svid_delivered: true };
      }
    }
    const release = () =>
      this.deps.store.apply('releaseIssuance', r.request_id, { claim }).catch((err: unknown) =>
        this.deps.logger.warn('could not release issuance claim', { request_id: r.request_id, error: describe(err) }),
      );
    let minted: MintedSvid;
    let receipt: string | undefined;
    try {
      // The item alone proves nothing (anyone who can write the table can write "approved"): the
      // approval must be the chain's, of this request exactly as it stands. The caller's key is
      // checked again meanwhile.
      const wanted = wantedSeqs({ decisionSeq, requestedSeq, voteSeqs });
      // (the key read before the claim counts only if the claim did not have to wait)
      const sameSeqs = early !== undefined && early.wanted.join() === wanted.join();
      const [events] = await Promise.all([sameSeqs ? early.events.then(unquiet) : this.deps.store.auditEvents(wanted), early && firstTry ? early.key.then(unquiet) : opts.reauthorize?.()]);
      const bySeq = new Map(events.map((e) => [e.seq, e]));
      const event = (seq: number | null) => (seq === null ? undefined : bySeq.get(seq));
      const [approval, requested, votes] = [event(decisionSeq), event(requestedSeq), voteSeqs.map(event)];
      const problem = approvalProblem(claimed, approval, requested, votes) ?? payloadProblem(claimed);
      if (problem) {
        this.deps.logger.error('refusing to issue an SVID: the request is not approved in the audit log', { request_id: r.request_id, problem });
        await this.recordRefusal(r.request_id, SYSTEM_ACTOR, `issuance refused: ${problem}`);
        throw new AckdError('ERR_NOT_APPROVED', `request ${r.request_id} has no approval in the audit log; no SVID is issued`);
      }
      await this.checkDecisionAndReceiptKeys(claimed);
      const spiffeId = SpiffeId.parse(claimed.spiffe_id);
      minted = await this.deps.minter.mint(spiffeId, new Date(claimed.svid_expires_at!), prepared);
      receipt = await this.receiptOf(claimed, minted, now);
    } catch (e) {
      await release();
      if (isAckdError(e)) throw e;
      throw new AckdError('ERR_ISSUER_UNAVAILABLE', undefined, { cause: e });
    }
    // The SVID leaves with its issuance recorded (the `issue` write carries its event), and only to
    // a key that still authenticates: the key is read again while the issuance is written, and a
    // key revoked while this check was minting never receives the SVID (it is revoked unseen).
    const [issued, stillValid] = await Promise.allSettled([
      this.deps.store.apply(
        'issue',
        r.request_id,
        { now: now.toISOString(), claim, svidId: minted.svidId, notAfter: minted.expiresAt.toISOString() },
        auditEvent('svid_issued', { type: 'agent', id: r.agent_id }, now),
      ),
      opts.reauthorize?.(),
    ]);
    if (issued.status === 'rejected') throw issued.reason;
    const updated = issued.value.record;
    this.deps.logger.info('svid issued', { request_id: r.request_id, svid_id: minted.svidId, expires_at: minted.expiresAt.toISOString() });
    if (stillValid.status === 'rejected') {
      this.deps.logger.warn('caller lost its credential while its SVID was minted; revoking the SVID', { request_id: r.request_id, svid_id: minted.svidId });
      await this.revoke(null, r.request_id, minted.svidId, SYSTEM_ACTOR).catch((err: unknown) =>
        this.deps.logger.error('could not revoke an undelivered SVID', { request_id: r.request_id, error: describe(err) }),
      );
      throw stillValid.reason;
    }
    this.nudgeHeld = true;
    return {
      status: 'approved',
      svid: `${minted.certChainPem.trimEnd()}\n${minted.privateKeyPem.trimEnd()}\n`,
      svid_id: minted.svidId,
      spiffe_id: updated.spiffe_id,
      expires_at: minted.expiresAt.toISOString(),
      svid_delivered: false,
      ...(receipt === undefined ? {} : { receipt }),
    };
  }

  /** The minter's local work ahead of a mint (SvidMinter.prepare), when it has any; an item whose SPIFFE ID does not parse gets none (the mint refuses it after the claim, as before). */
  private prepareMint(r: AuthorizationRecord): MintPreparation | undefined {
    if (!this.deps.minter.prepare) return undefined;
    let spiffeId: SpiffeId;
    try {
      spiffeId = SpiffeId.parse(r.spiffe_id);
    } catch {
      return undefined;
    }
    return this.deps.minter.prepare(spiffeId);
  }

  async revoke(agentId: AgentId | null, requestId: RequestId, svidId: SvidId, by?: Actor): Promise<{ revoked: true; revoked_at: string }> {
    if (agentId !== null) await this.getForAgent(agentId, requestId);
    const actor: Actor = by ?? (agentId !== null ? { type: 'agent', id: agentId } : { type: 'operator', id: 'operator' });
    const now = this.deps.clock.now();
    let r: AuthorizationRecord;
    try {
      ({ record: r } = await this.deps.store.apply('revoke', requestId, { now: now.toISOString(), svidId, by: actorIdentity(actor) }, auditEvent('revoked', actor, now)));
    } catch (e) {
      if (isAckdError(e, 'ERR_SVID_MISMATCH') || isAckdError(e, 'ERR_NOT_ISSUED')) await this.recordRefusal(requestId, actor, `revocation refused: ${e.code}: ${e.message}`);
      throw e;
    }
    this.deps.logger.info('svid revoked', { request_id: requestId, svid_id: svidId });
    this.recorded();
    await this.deps.onRevoked?.(r).catch((e: unknown) => this.deps.logger.error('revocation hook failed', { request_id: requestId, error: describe(e) }));
    return { revoked: true, revoked_at: r.revoked_at! };
  }

  /**
   * A human pulls an approval back (the consent UI's Revoke, `ackd requests revoke --as`): the
   * request becomes revoked whether or not its SVID was picked up (one not yet picked up is never
   * minted), recorded as a `revoked` event by that human with the reason. `by` is a Cognito sub or
   * `operator:<name>`. Idempotent: revoking a revoked request returns it unchanged. Anything but an
   * approved request gets ERR_NOT_APPROVED, recorded as refused.
   */
  async revokeApproval(requestId: RequestId, by: string, email: string | null = null, reason: string | null = null): Promise<AuthorizationRecord> {
    if (!by.trim()) throw new AckdError('ERR_INVALID_INPUT', 'by: must not be empty', { field: 'by' });
    const actor = deciderActor(by);
    const now = this.deps.clock.now();
    let applied: { record: AuthorizationRecord; changed: boolean };
    try {
      applied = await this.deps.store.apply('revokeApproval', requestId, { now: now.toISOString(), by, email, reason }, auditEvent('revoked', actor, now, reason));
    } catch (e) {
      if (isAckdError(e, 'ERR_NOT_APPROVED')) await this.recordRefusal(requestId, actor, `revocation refused: ${e.code}: ${e.message}`);
      throw e;
    }
    if (applied.changed) {
      this.deps.logger.info('approval revoked', { request_id: requestId, revoked_by: by, svid_id: applied.record.svid_id, reason });
      this.recorded();
      await this.deps.onRevoked?.(applied.record).catch((e: unknown) => this.deps.logger.error('revocation hook failed', { request_id: requestId, error: describe(e) }));
    }
    (this.deps.waiting ?? this.ownWaiting)?.wake(requestId);
    return applied.record;
  }

  /**
   * The rule a new request is decided under: its policy (resolved now, from the agent and every
   * permission) and its agent's owner now. Fixed on the request, so later changes to either never
   * move a pending request.
   */
  private async quorumFor(agentId: AgentId, permissions: readonly string[]): Promise<Quorum> {
    const { policies, agents } = this.deps;
    if (!policies && !agents) return LEGACY_QUORUM;
    if (policies?.resolveWithOwner) {
      const { resolution, owner } = await policies.resolveWithOwner(agentId, permissions, agents);
      return quorumOf(resolution, owner);
    }
    const [resolution, owner] = await Promise.all([policies?.resolve(agentId, permissions), agents ? ownerOf(agents, agentId) : null]);
    return quorumOf(resolution ?? { policy: LEGACY_QUORUM, matched: [] }, owner);
  }

  /**
   * A human's vote. `approverIdentity` is the Cognito sub (or `operator:<name>` from the CLI),
   * `groups` the voter's Cognito groups. The vote counts under the request's quorum: a voter
   * outside it (not in an approver group, the owner under separation of duties, an operator where
   * operator decisions do not count) gets ERR_FORBIDDEN, a second vote ERR_ALREADY_VOTED; both are
   * recorded as refused. The vote that completes the quorum approves (or denies) the request in the
   * same conditional write that records it, so concurrent votes make exactly one decision; a vote
   * that lost a race to another vote is counted again. Returns the request after the vote.
   */
  async decide(
    requestId: RequestId,
    decision: 'approved' | 'denied',
    approverIdentity: string,
    approverEmail: string | null = null,
    opts: {
      groups?: readonly string[];
      /** What the decision is bound to (the view the approver saw, their passkey assertion); checked and recorded with the vote. */
      evidence?: DecisionEvidence;
    } = {},
  ): Promise<AuthorizationRecord> {
    if (!approverIdentity.trim()) throw new AckdError('ERR_INVALID_INPUT', 'approver: must not be empty', { field: 'approver' });
    const actor = deciderActor(approverIdentity);
    const verb = decision === 'approved' ? 'approval' : 'denial';
    let signed: VotePasskey | undefined;
    for (let attempt = 0; ; attempt++) {
      const now = this.deps.clock.now();
      const current = await this.deps.store.get(requestId);
      if (!current) throw new AckdError('ERR_NOT_FOUND', `request_id: no request ${requestId}`, { field: 'request_id' });
      await this.checkView(current, opts.evidence, actor, verb);
      const quorum = current.quorum ?? LEGACY_QUORUM;
      const votes = current.votes ?? [];
      const cast: CastVote = { voter: approverIdentity, email: approverEmail, vote: decision === 'approved' ? 'approve' : 'deny', at: now.toISOString(), groups: [...(opts.groups ?? [])] };
      if (stateOf(current) === 'pending' && !isPast(current.expires_at, now)) {
        const e = voterEligibility(quorum, voterOf(cast), quorum.owner);
        if (!e.eligible) {
          await this.recordRefusal(requestId, actor, `${verb} refused: ERR_FORBIDDEN: ${e.reason}`);
          throw new AckdError('ERR_FORBIDDEN', e.reason);
        }
        // Passkey: checked once (its nonce is single-use), before the vote is written.
        if (attempt === 0) signed = await this.passkeyVote(current, decision, approverIdentity, opts.evidence, actor, verb);
      }
      const vote: CastVote = signed ? { ...cast, passkey: signed } : cast;
      const outcome = outcomeOf(quorum, [...votes, vote]);
      const row = outcome === 'approved' ? 'approve' : outcome === 'denied' ? 'deny' : 'vote';
      const params = {
        now: now.toISOString(),
        approver: approverIdentity,
        email: approverEmail,
        svidExpiresAt: row === 'approve' ? addMinutes(now.toISOString(), current.ttl_minutes) : null,
        vote: { ...vote },
        seen: votes.length,
      };
      // ---- signed decision (issue 13): the deciding write carries the decision service's signature ----
      const signature = row === 'vote' ? undefined : await this.signDecisionOf(current, row === 'approve' ? 'approved' : 'denied', params, opts.evidence);
      const written = signature === undefined ? params : { ...params, decisionSignature: signature as unknown as Value };
      // ---- end signed decision ----
      let r: AuthorizationRecord;
      try {
        ({ record: r } = await this.deps.store.apply(row, requestId, written, auditEvent(row === 'approve' ? 'approved' : row === 'deny' ? 'denied' : 'voted', actor, now)));
      } catch (e) {
        // Another vote was recorded between our read and our write: count again.
        if (isAckdError(e, 'ERR_CONFLICT') && attempt < 8) continue;
        // A decision refused because the request ran out of time makes sure the expiry is recorded.
        if (isAckdError(e, 'ERR_EXPIRED')) await this.expireIfDue(current);
        if (isAckdError(e, 'ERR_EXPIRED') || isAckdError(e, 'ERR_ALREADY_DECIDED') || isAckdError(e, 'ERR_ALREADY_VOTED')) {
          await this.recordRefusal(requestId, actor, `${verb} refused: ${e.code}: ${e.message}`);
        }
        throw e;
      }
      const progress = approvalsOf(r);
      this.deps.logger.info(row === 'vote' ? 'vote recorded' : 'request decided', { request_id: requestId, decision: r.decision, vote: cast.vote, approvals: progress.have, need: progress.need, approver_identity: approverIdentity });
      this.recorded();
      (this.deps.waiting ?? this.ownWaiting)?.wake(requestId);
      return r;
    }
  }

  /** Why a decision on `r` must be signed with a passkey (the consent page asks for one), or null. */
  passkeyRequirement(r: AuthorizationRecord): string | null {
    return passkeyRequirement(this.config.passkeyRequired ?? 'none', r);
  }

  /**
   * Passkeys (issue 13, item 3). A decision that must be signed (passkeyRequirement: the request's
   * policy, or ACKD_PASSKEY_REQUIRED) and carries no assertion is refused with ERR_PASSKEY_REQUIRED
   * (a CLI operator's decision cannot carry one: it is refused where one is required); an
   * assertion it carries, required or not, must verify (PasskeyService.verifyDecision) or the
   * decision is refused with ERR_PASSKEY_INVALID. Refusals are recorded. Returns what the vote
   * records (undefined without an assertion).
   */
  private async passkeyVote(r: AuthorizationRecord, decision: 'approved' | 'denied', approverIdentity: string, evidence: DecisionEvidence | undefined, actor: Actor, verb: string): Promise<VotePasskey | undefined> {
    const assertion = evidence?.passkey ?? null;
    try {
      if (!assertion) {
        const required = this.passkeyRequirement(r);
        if (required === null) return undefined;
        const how = approverIdentity.startsWith('operator:') ? 'a CLI decision cannot carry a passkey: decide in the consent UI' : 'sign the decision with your passkey in the consent UI (add one under Passkeys on its requests page first if you have none)';
        throw new AckdError('ERR_PASSKEY_REQUIRED', `${required}; ${how}`);
      }
      if (!this.deps.passkeys) throw new AckdError('ERR_PASSKEY_INVALID', 'this deployment has no passkey verifier, so the assertion cannot be checked');
      return await this.deps.passkeys.verifyDecision({ approver: approverIdentity, record: r, decision, viewSha256: evidence?.view_sha256 ?? null, assertion });
    } catch (e) {
      if (isAckdError(e, 'ERR_PASSKEY_REQUIRED') || isAckdError(e, 'ERR_PASSKEY_INVALID')) await this.recordRefusal(r.request_id, actor, `${verb} refused: ${e.code}: ${e.message}`);
      throw e;
    }
  }

  /**
   * The view binding of a decision: with `evidence.view_sha256`, the decision stands only if it is
   * the hash of the request as stored now (core/view.ts), i.e. the approver decided on exactly what
   * the record says. Otherwise ERR_STALE_VIEW, recorded as refused; nothing else changes. Checked on
   * every read of the record in `decide` (a retry after a lost race reads it again).
   */
  private async checkView(current: AuthorizationRecord, evidence: DecisionEvidence | undefined, actor: Actor, verb: string): Promise<void> {
    const seen = evidence?.view_sha256;
    if (seen === undefined || seen === null) return;
    if (seen === viewSha256(approvalView(current))) return;
    const message = 'the request changed since the page showed it (the decision was made on another view of it); reload the request and decide on it as it is now';
    await this.recordRefusal(current.request_id, actor, `${verb} refused: ERR_STALE_VIEW: ${message}`);
    throw new AckdError('ERR_STALE_VIEW', message, { field: 'view_sha256' });
  }

  /**
   * The signed decision of a deciding write (issue 13): what the request will record once the
   * write applies (its votes then: those read, which the write's guard pins, plus this one),
   * signed with the decision key. The key unavailable: ERR_SIGNER_UNAVAILABLE, and nothing is
   * written. Without `decisions`, undefined (nothing signed).
   */
  private async signDecisionOf(
    current: AuthorizationRecord,
    decision: 'approved' | 'denied',
    p: { readonly now: string; readonly approver: string; readonly svidExpiresAt: string | null; readonly vote: CastVote },
    evidence: DecisionEvidence | undefined,
  ): Promise<SignedDecision | undefined> {
    const signer = this.deps.decisions?.signer;
    if (!signer) return undefined;
    const statement = decisionStatement(current, { decision, approver: p.approver, decidedAt: p.now, svidExpiresAt: p.svidExpiresAt, votes: [...(current.votes ?? []), p.vote], evidence });
    try {
      return await signDecision(signer, statement);
    } catch (e) {
      this.deps.logger.error('decision not signed: the decision key is unavailable; nothing was decided', { request_id: current.request_id, error: describe(e) });
      throw new AckdError('ERR_SIGNER_UNAVAILABLE', 'the decision signing key is unavailable; nothing was decided; try again later', { cause: e });
    }
  }

  /**
   * Before an SVID is minted (issue 13): the request's signed decision verifies under the decision
   * key and states exactly what the request records (the chain's approval carrying the same one is
   * approvalProblem's); else ERR_DECISION_UNSIGNED, recorded as refused. The receipt key must be
   * reachable too, so an SVID (whose key is delivered once) never leaves without its receipt.
   * A key that cannot be read: ERR_SIGNER_UNAVAILABLE (a later check retries).
   */
  private async checkDecisionAndReceiptKeys(r: AuthorizationRecord): Promise<void> {
    const decisions = this.deps.decisions;
    if (!decisions) return;
    let pem: string;
    try {
      [pem] = await Promise.all([decisions.publicKeyPem(), this.deps.receipts?.publicJwk()]);
    } catch (e) {
      this.deps.logger.error('refusing to issue an SVID now: the decision or receipt key is unavailable', { request_id: r.request_id, error: describe(e) });
      throw new AckdError('ERR_SIGNER_UNAVAILABLE', 'the decision or receipt key is unavailable; no SVID was issued; try again later', { cause: e });
    }
    const problem = decisionProblem(r, ...this.decisionKey(pem));
    if (problem) {
      this.deps.logger.error('refusing to issue an SVID: the decision is not signed by the decision service', { request_id: r.request_id, problem });
      await this.recordRefusal(r.request_id, SYSTEM_ACTOR, `issuance refused: ERR_DECISION_UNSIGNED: ${problem}`);
      throw new AckdError('ERR_DECISION_UNSIGNED', `request ${r.request_id} has no valid signed decision (${problem}); no SVID is issued`);
    }
  }

  private lastDecisionKey: { readonly pem: string; readonly key: KeyObject; readonly keyId: string } | undefined;

  /** The decision public key and its id, parsed once per PEM (the key a process verifies with rarely changes). */
  private decisionKey(pem: string): [KeyObject, string] {
    let k = this.lastDecisionKey;
    if (k?.pem !== pem) {
      const key = checkpointPublicKey(pem);
      k = this.lastDecisionKey = { pem, key, keyId: keyIdOf(key) };
    }
    return [k.key, k.keyId];
  }

  /** The receipt of an SVID just minted (before its issuance is written: both leave together or neither). */
  private async receiptOf(r: AuthorizationRecord, minted: MintedSvid, now: Date): Promise<string | undefined> {
    const receipts = this.deps.receipts;
    const sd = r.decision_signature;
    if (!receipts || !sd) return undefined;
    try {
      return await receipts.sign(receiptClaims(r, sd, { svidId: minted.svidId, notAfter: minted.expiresAt }, now));
    } catch (e) {
      this.deps.logger.error('receipt not signed; the SVID is not issued', { request_id: r.request_id, error: describe(e) });
      throw new AckdError('ERR_SIGNER_UNAVAILABLE', 'the receipt signing key is unavailable; no SVID was issued; try again later', { cause: e });
    }
  }

  /**
   * Records a refused attempt in the audit log; a failure to record it is logged, never thrown
   * over the refusal. With limits, only the first refusalsPerRequest refusals of a request per
   * kind of actor (agent, approver, operator, system) become events, so an agent cannot grow the
   * log without bound nor crowd out the approvers' refusals; the rest are counted and logged.
   */
  private async recordRefusal(requestId: RequestId, actor: Actor, reason: string): Promise<void> {
    try {
      const admitted = await this.deps.limits?.admitRefusal(requestId, actor);
      if (admitted && !admitted.record) {
        // Logged the first time and every 100th, so the log does not grow with the flood either.
        if (admitted.suppressed === 1 || admitted.suppressed % 100 === 0) this.deps.logger.warn('refused attempt not recorded as an audit event: over the limit of refused attempts per request', {
          request_id: requestId,
          actor_type: actor.type,
          actor_id: actor.id,
          limit: this.deps.limits!.config.refusalsPerRequest,
          not_recorded: admitted.suppressed,
        });
        return;
      }
      await this.deps.store.apply('recordRefusal', requestId, {}, auditEvent('refused', actor, this.deps.clock.now(), reason));
      this.recorded();
    } catch (e) {
      this.deps.logger.warn('could not record a refused attempt', { request_id: requestId, error: describe(e) });
    }
  }

  /**
   * A write just recorded an audit event: the sequencer is told (in a process that runs it, it
   * runs now; on AWS the table's stream wakes it).
   */
  private recorded(): void {
    void this.deps.auditNudge?.();
  }

  /** Records expiry if the request is pending past its deadline; returns the current record. */
  async expireIfDue(r: AuthorizationRecord): Promise<AuthorizationRecord> {
    const now = this.deps.clock.now();
    if (r.decision !== 'pending' || Date.parse(r.expires_at) > now.getTime()) return r;
    try {
      const { record: expired } = await this.deps.store.apply('expire', r.request_id, { now: now.toISOString() }, auditEvent('expired', SYSTEM_ACTOR, now));
      this.deps.logger.info('request expired', { request_id: r.request_id });
      this.recorded();
      (this.deps.waiting ?? this.ownWaiting)?.wake(r.request_id);
      return expired;
    } catch (e) {
      if (isAckdError(e, 'ERR_ALREADY_DECIDED')) return (await this.deps.store.get(r.request_id)) ?? r;
      throw e;
    }
  }

  /**
   * The periodic sweep: records expiry of overdue pending requests, retries failed notifications
   * and escalates. (Sequencing the audit log is the Sequencer's, run beside it.)
   */
  async sweep(limit = 100): Promise<{ expired: number; renotified: number; escalated: number }> {
    const due = await this.deps.store.listExpiredPending(this.deps.clock.now(), limit);
    let expired = 0;
    for (const r of due) {
      const after = await this.expireIfDue(r);
      if (after.decision === 'expired' && r.decision === 'pending') expired++;
    }
    return { expired, renotified: await this.retryNotifications(limit), escalated: await this.escalateDue(limit) };
  }

  /**
   * Asks the escalation routes of every pending request whose policy escalates and whose share of
   * the wait has passed with no decision: once per request (the `escalate` row claims it), with
   * the votes so far and why.
   */
  async escalateDue(limit = 100): Promise<number> {
    if (!this.deps.routes) return 0;
    const now = this.deps.clock.now();
    let escalated = 0;
    for (const r of await this.deps.store.listPending(now, limit)) {
      const esc = r.quorum?.escalation;
      if (!esc || esc.routes.length === 0) continue;
      const waitMs = r.ttl_minutes * 60_000;
      if (now.getTime() < Date.parse(r.requested_at) + (waitMs * esc.after_percent) / 100) continue;
      const why = `nobody decided within ${esc.after_percent}% of the ${r.ttl_minutes}-minute wait`;
      let claimed: AuthorizationRecord;
      try {
        const applied = await this.deps.store.apply('escalate', r.request_id, { now: now.toISOString() }, auditEvent('escalated', SYSTEM_ACTOR, now, `${why}; asking ${esc.routes.join(', ')}`));
        if (!applied.changed) continue;
        claimed = applied.record;
      } catch (e) {
        this.deps.logger.warn('could not escalate a request', { request_id: r.request_id, error: describe(e) });
        continue;
      }
      this.recorded();
      const { have, need } = approvalsOf(claimed);
      const progress = need > 1 ? `; ${have} of ${need} approvals so far` : '';
      await this.deliver(claimed, this.consentUrl(r.request_id), esc.routes, { escalation: true, reason: `Escalation: ${why}${progress}. ${describeQuorum(claimed.quorum ?? LEGACY_QUORUM)}` }, 'recordDelivery');
      escalated++;
    }
    return escalated;
  }

  /**
   * Re-sends consent emails that failed (or whose first send never got recorded) while the
   * request is still pending, then sends the approvers' digests that are due. A `pending` status
   * gets a grace period so an in-flight first send is not duplicated; attempts are bounded; the
   * re-sends obey the approvers' mail limits too. Returns how many mails were sent now.
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
      if (await this.notify(r, this.consentUrl(r.request_id), { retry: true })) sent++;
    }
    return sent + (await this.sendDigests(limit));
  }

  /**
   * Sends each due digest: one mail to one approver listing the queued requests still pending
   * (up to DIGEST_LISTED_MAX by name, the rest counted). Each listed request records email_sent
   * (reason: "digest"). A digest that cannot be sent is tried again by the next sweep, at most
   * DIGEST_ATTEMPTS_MAX times; its requests stay in the pending queue either way.
   */
  private async sendDigests(limit: number): Promise<number> {
    const notifier = this.deps.notifier;
    const limits = this.deps.limits;
    if (!notifier || !limits || !isRecipientNotifier(notifier)) return 0;
    let sent = 0;
    for (const d of await limits.claimDueDigests(limit)) {
      let listed: AuthorizationRecord[];
      let done: RequestId[];
      try {
        const now = this.deps.clock.now();
        const records = await Promise.all(d.requestIds.map((id) => this.deps.store.get(id)));
        const open = records.filter((r): r is AuthorizationRecord => r !== undefined && statusAt(r, now).status === 'pending');
        listed = open.slice(0, DIGEST_LISTED_MAX);
        done = d.requestIds.filter((id) => !open.some((r) => r.request_id === id)).concat(listed.map((r) => r.request_id));
        if (listed.length > 0) {
          const more = open.length - listed.length + d.overflow;
          await notifier.notifyDigest(d.recipient, { entries: listed.map((record) => ({ record, consentUrl: this.consentUrl(record.request_id) })), more });
          sent++;
          this.deps.logger.info('consent digest sent', { requests: listed.length, more });
        }
      } catch (e) {
        if (d.attempts >= DIGEST_ATTEMPTS_MAX) {
          this.deps.logger.error('consent digest dropped after repeated failures; its requests stay pending', { requests: d.requestIds.length, error: describe(e) });
          await limits.completeDigest(d, d.requestIds).catch(() => undefined);
        } else {
          this.deps.logger.warn('consent digest not sent; the next sweep tries again', { requests: d.requestIds.length, error: describe(e) });
          await limits.releaseDigest(d).catch(() => undefined);
        }
        continue;
      }
      // Sent: never again for these requests, even if the bookkeeping below fails.
      await limits.completeDigest(d, done).catch((e: unknown) => this.deps.logger.warn('could not clear a sent digest from its queue', { error: describe(e) }));
      for (const r of listed) await this.recordNotification(r.request_id, 'sent', `digest of ${listed.length} request${listed.length === 1 ? '' : 's'} to one approver`);
    }
    return sent;
  }
}

/** How long the sequencer's nudge for an SVID issued may wait for the other pickups in flight (nudgeAfterPickups). */
const ISSUED_NUDGE_HOLD_MS = 100;

/** Where a request's item points in the audit chain (RequestStore.getWithSeqs, or what a write returned). */
type ChainSeqs = Pick<Applied, 'decisionSeq' | 'requestedSeq' | 'voteSeqs'>;

/** The seqs of the events that prove an approval: the decision, the request, the votes. */
function wantedSeqs(s: ChainSeqs): number[] {
  return [s.decisionSeq, s.requestedSeq, ...s.voteSeqs].filter((x): x is number => x !== null);
}

/** A promise started ahead of need whose failure must surface only where it is used (unquiet), never as an unhandled rejection. */
function quiet<T>(p: Promise<T> | undefined): Promise<{ ok: true; value: T | undefined } | { ok: false; error: unknown }> {
  return (p ?? Promise.resolve(undefined)).then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

function unquiet<T>(r: { ok: true; value: T | undefined } | { ok: false; error: unknown }): T {
  if (!r.ok) throw r.error;
  return r.value as T;
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function describe(e: unknown): string {
  if (e instanceof AckdError) return `${e.code}: ${e.message}`;
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
