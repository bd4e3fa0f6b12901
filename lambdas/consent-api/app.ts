import { Hono, type Context } from 'hono';
import { AckdError, exposeError, type ErrorCode } from '../core/errors.ts';
import { parseRequestId, type RequestId } from '../core/ids.ts';
import { systemClock, type Clock, type Logger } from '../core/ports.ts';
import { parseRevokeReason, type AuthorizationRecord, type RequestStatus } from '../core/request.ts';
import type { AuthorizationService } from '../core/service.ts';
import type { Approver, ApproverVerifier } from '../adapters/cognito/verifier.ts';
import { parseWindow, type AuditService } from '../core/audit/service.ts';
import { formatExport, parseFormat } from '../core/audit/format.ts';
import { textStream } from '../http/stream.ts';
import { approvalsOf, describeQuorum, LEGACY_QUORUM } from '../core/quorum.ts';
import { voterEligibility } from '../core/policy.ts';
import { payloadSha256 } from '../core/payload.ts';
import { approvalView, viewSha256, type ApprovalView } from '../core/view.ts';
import { decisionEvidence } from './decision.ts';
import type { PasskeyService } from '../core/passkeys.ts';
import { passkeyRoutes } from './passkeys.ts';

export interface ConsentApiDeps {
  readonly service: AuthorizationService;
  readonly verifier: ApproverVerifier;
  readonly logger: Logger;
  /**
   * Origins allowed to call the API cross-origin. Empty (the default) for the same-origin
   * deployment (CloudFront serves UI and API together; the local server does the same).
   */
  readonly allowedOrigins?: readonly string[];
  /** The same clock as the service's (server_time in responses). */
  readonly clock?: Clock;
  /** Serves the audit export (GET /audit/export) when given. */
  readonly audit?: AuditService;
  /** Serve the request and decision routes (default true; the audit export function serves only /audit). */
  readonly decisions?: boolean;
  /** Approvers' passkeys (routes in passkeys.ts); without it, no passkey routes. */
  readonly passkeys?: PasskeyService;
}

/**
 * What the consent page shows: the approval view (core/view-fields.ts: what the approver decides
 * on, and what view_sha256 covers) and the state around it. Only fields an approver needs; nothing
 * secret exists on a record.
 */
export interface RequestView extends ApprovalView {
  /** Lowercase hex SHA-256 of the payload's canonical JSON (RFC 8785); null without a payload. */
  readonly payload_sha256: string | null;
  /**
   * SHA-256 of the approval view of the request as stored (core/view.ts): what the page's own
   * computation over the fields it rendered must equal for a decision to be accepted.
   */
  readonly view_sha256: string;
  readonly requested_at: string;
  /** The status now: pending | approved | denied | expired | revoked. */
  readonly status: RequestStatus['status'];
  readonly decision_at: string | null;
  readonly approver_email: string | null;
  /** Whether the caller may still vote: pending, not yet voted, and eligible under its quorum. */
  readonly decidable: boolean;
  /** Distinct approvals so far, and how many approve the request. */
  readonly approvals: { readonly have: number; readonly need: number };
  /** The votes cast so far, in order: who (email, or the operator's name), how, when. */
  readonly votes: readonly { readonly who: string; readonly vote: 'approve' | 'deny'; readonly at: string }[];
  /** The caller's own vote, if any. */
  readonly your_vote: 'approve' | 'deny' | null;
  /** Why the caller may not vote (not in an approver group, the agent's owner …), when that is so. */
  readonly not_eligible: string | null;
  /** Why this request needs the caller: its policy and what it asks of approvers. */
  readonly why_you: string;
  /** Whether the caller may revoke it now (it is approved, with or without its SVID). */
  readonly revocable: boolean;
  readonly revoked_at: string | null;
  /** Who revoked it: an approver's email, `operator:<name>`, `agent:<id>`, or `system`. */
  readonly revoked_by: string | null;
  readonly revoke_reason: string | null;
  /** The SVID minted for it, if any (serial, lowercase hex), and until when the approval holds. */
  readonly svid_id: string | null;
  readonly svid_expires_at: string | null;
  /** Whether a decision must be signed with the approver's passkey (policy or ACKD_PASSKEY_REQUIRED). */
  readonly passkey_required: boolean;
  /** Server time, so the page can show time left without trusting the phone's clock. */
  readonly server_time: string;
}

const HTTP_STATUS: Partial<Record<ErrorCode, 400 | 401 | 403 | 404 | 409 | 429 | 503>> = {
  ERR_SIGNER_UNAVAILABLE: 503,
  ERR_CONFIG: 503,
  ERR_INVALID_INPUT: 400,
  ERR_UNAUTHENTICATED: 401,
  ERR_FORBIDDEN: 403,
  ERR_NOT_FOUND: 404,
  ERR_ALREADY_DECIDED: 409,
  ERR_ALREADY_VOTED: 409,
  ERR_NOT_APPROVED: 409,
  ERR_EXPIRED: 409,
  ERR_STALE_VIEW: 409,
  ERR_STORE_UNAVAILABLE: 503,
  ERR_RATE_LIMITED: 429,
  ERR_CONFLICT: 409,
  ERR_PASSKEY_REQUIRED: 403,
  ERR_PASSKEY_INVALID: 403,
};

/** Bytes of a POST body: room for a decision with a passkey assertion (a few KB of base64url). */
export const MAX_BODY = 16 * 1024;

/**
 * The consent API (mounted at /api): an approver reads a request and approves or denies it.
 *
 *   GET  /requests              → { pending: [...], recent: [...], server_time } (the dashboard)
 *   GET  /requests/:id          → { request: RequestView }
 *   POST /requests/:id/approve  body { request_id, view_sha256, passkey? } → { request: RequestView }
 *   POST /requests/:id/deny     body { request_id, view_sha256, passkey? } → { request: RequestView }
 *   … and the passkey routes (passkeys.ts: /passkeys, /requests/:id/challenge) with `passkeys`
 *   POST /requests/:id/revoke   body { request_id, reason? } → { request: RequestView }
 *   GET  /audit/export?since=&until=&format=jsonl|csv → the audit log, streamed (with `audit`)
 *   GET  /audit/public-key      → PEM key that verifies the export's checkpoints (with `audit`)
 *
 * Every route needs `Authorization: Bearer <Cognito ID token>` of a member of `approvers`; an
 * agent API key (or anything else) gets 401. The body's request_id must repeat the path's: a
 * decision is bound to the request the page displayed, and its view_sha256 to exactly what the
 * page displayed of it (ERR_STALE_VIEW, 409, when the request as stored differs). Responses are
 * never cached.
 */
export function consentApi(deps: ConsentApiDeps): Hono<{ Variables: { approver: Approver } }> {
  const app = new Hono<{ Variables: { approver: Approver } }>();
  const allowed = new Set(deps.allowedOrigins ?? []);
  const clock = deps.clock ?? systemClock;

  app.use('*', async (c, next) => {
    const origin = c.req.header('origin');
    const corsOk = origin !== undefined && allowed.has(origin);
    if (c.req.method === 'OPTIONS') {
      const h: Record<string, string> = { 'cache-control': 'no-store', vary: 'Origin' };
      if (corsOk) {
        Object.assign(h, {
          'access-control-allow-origin': origin,
          'access-control-allow-methods': 'GET, POST, DELETE',
          'access-control-allow-headers': 'authorization, content-type',
          'access-control-max-age': '600',
        });
      }
      return new Response(null, { status: 204, headers: h });
    }
    await next();
    c.res.headers.set('cache-control', 'no-store');
    c.res.headers.set('x-content-type-options', 'nosniff');
    c.res.headers.set('referrer-policy', 'no-referrer');
    c.res.headers.append('vary', 'Origin, Authorization');
    if (corsOk) c.res.headers.set('access-control-allow-origin', origin);
  });

  // Authentication before anything else, for every route (even unknown ones).
  app.use('*', async (c, next) => {
    const approver = await deps.verifier.verify(bearer(c.req.header('authorization')));
    c.set('approver', approver);
    await next();
  });

  if (deps.decisions !== false) {
    app.get('/requests/:id', async (c) => {
      const id = parseRequestId(c.req.param('id'));
      const r = await deps.service.get(id);
      return c.json({ request: view(deps.service, r, clock.now(), c.get('approver')) });
    });

    const decideRoute = (decision: 'approved' | 'denied') => async (c: Context<{ Variables: { approver: Approver } }>) => {
      const id = parseRequestId(c.req.param('id'));
      const body = await bodyBinding(c.req.raw, id);
      const approver = c.get('approver');
      const r = await deps.service.decide(id, decision, approver.sub, approver.email, { groups: approver.groups, evidence: decisionEvidence(body) });
      return c.json({ request: view(deps.service, r, clock.now(), approver) });
    };
    app.post('/requests/:id/approve', decideRoute('approved'));
    app.post('/requests/:id/deny', decideRoute('denied'));
    if (deps.passkeys) passkeyRoutes(app, { passkeys: deps.passkeys, service: deps.service });

    // An approver pulls an approval back (with its SVID, if picked up), saying why if they like.
    app.post('/requests/:id/revoke', async (c) => {
      const id = parseRequestId(c.req.param('id'));
      const body = await bodyBinding(c.req.raw, id);
      const reason = parseRevokeReason(body.reason);
      const approver = c.get('approver');
      const r = await deps.service.revokeApproval(id, approver.sub, approver.email, reason);
      return c.json({ request: view(deps.service, r, clock.now(), approver) });
    });

    // The dashboard: what awaits a decision, and what was decided lately.
    app.get('/requests', async (c) => {
      for (const k of Object.keys(c.req.query())) throw new AckdError('ERR_INVALID_INPUT', `${k}: unknown parameter (GET /requests takes none)`, { field: k });
      const approver = c.get('approver');
      const now = clock.now();
      const { pending, recent } = await deps.service.dashboard();
      const summary = (r: AuthorizationRecord) => {
        const v = view(deps.service, r, now, approver);
        return { request_id: v.request_id, agent_id: v.agent_id, action: v.action, status: v.status, requested_at: v.requested_at, expires_at: v.expires_at, decision_at: v.decision_at, revoked_at: v.revoked_at, approvals: v.approvals, your_vote: v.your_vote, decidable: v.decidable };
      };
      return c.json({ pending: pending.map(summary), recent: recent.map(summary), server_time: now.toISOString() });
    });
  }

  const audit = deps.audit;
  if (audit) {
    app.get('/audit/export', async (c) => {
      const q = c.req.query();
      for (const k of Object.keys(q)) {
        if (!['since', 'until', 'format'].includes(k)) throw new AckdError('ERR_INVALID_INPUT', `${k}: unknown parameter (use since, until, format)`, { field: k });
      }
      const window = parseWindow(q.since, q.until);
      let format: 'jsonl' | 'csv';
      try {
        format = parseFormat(q.format ?? 'jsonl');
      } catch (e) {
        throw new AckdError('ERR_INVALID_INPUT', (e as Error).message, { field: 'format' });
      }
      const approver = c.get('approver');
      deps.logger.info('audit export', { approver_identity: approver.sub, since: window.since, until: window.until, format });
      const body = await textStream(formatExport(audit.export(window), format), (e) =>
        deps.logger.error('audit export failed mid-stream', { error: e instanceof Error ? e.message : String(e) }),
      );
      const stamp = (window.until ?? clock.now().toISOString()).replace(/[:.]/g, '-');
      return new Response(body, {
        status: 200,
        headers: {
          'content-type': format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
          'content-disposition': `attachment; filename="ackd-audit-${stamp}.${format}"`,
        },
      });
    });
    app.get('/audit/public-key', async (c) => c.body(await audit.publicKeyPem(), 200, { 'content-type': 'application/x-pem-file' }));
  }

  app.notFound((c) => c.json({ error: { code: 'ERR_NOT_FOUND', message: `no route for ${c.req.method} ${c.req.path}` } }, 404));

  app.onError((err, c) => {
    const approver = c.get('approver') as Approver | undefined;
    const e = exposeError(err, (msg, detail) => deps.logger.error(msg, { ...detail, path: c.req.path }));
    const status = HTTP_STATUS[e.code] ?? 500;
    if (status === 401 || status === 403) {
      deps.logger.warn('consent api refused', { code: e.code, reason: e.message, path: c.req.path, method: c.req.method });
    } else if (status === 409) {
      deps.logger.warn('decision refused', { code: e.code, path: c.req.path, approver_identity: approver?.sub });
    }
    const headers: Record<string, string> = {};
    if (status === 401) headers['www-authenticate'] = 'Bearer realm="ackd-consent", error="invalid_token"';
    const message = status === 500 ? 'internal error' : e.message;
    return c.json({ error: { code: status === 500 ? 'ERR_INTERNAL' : e.code, message, ...(e.field ? { field: e.field } : {}) } }, status, headers);
  });

  return app;
}

function bearer(h: string | undefined): string | undefined {
  const m = h ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null;
  return m?.[1];
}

async function bodyBinding(req: Request, id: RequestId): Promise<Record<string, unknown>> {
  const type = req.headers.get('content-type') ?? '';
  if (!/^application\/json\b/i.test(type)) throw new AckdError('ERR_INVALID_INPUT', 'body: must be application/json {"request_id": "..."}', { field: 'body' });
  const text = await req.text();
  if (new TextEncoder().encode(text).length > MAX_BODY) throw new AckdError('ERR_INVALID_INPUT', `body: too large (at most ${MAX_BODY} bytes)`, { field: 'body' });
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new AckdError('ERR_INVALID_INPUT', 'body: must be JSON', { field: 'body' });
  }
  const fields = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
  if (fields.request_id !== id) throw new AckdError('ERR_INVALID_INPUT', 'request_id: the body must name the same request as the URL', { field: 'request_id' });
  return fields;
}

export function view(service: AuthorizationService, r: AuthorizationRecord, now: Date, approver: Approver): RequestView {
  const s = service.status(r);
  const quorum = r.quorum ?? LEGACY_QUORUM;
  const votes = r.votes ?? [];
  const mine = votes.find((v) => v.voter === approver.sub) ?? null;
  const eligibility = voterEligibility(quorum, { kind: 'approver', id: approver.sub, email: approver.email, groups: approver.groups }, quorum.owner);
  const shown = approvalView(r);
  return {
    ...shown,
    payload_sha256: r.payload_sha256 ?? (r.payload ? payloadSha256(r.payload) : null),
    view_sha256: viewSha256(shown),
    requested_at: r.requested_at,
    status: s.status,
    decision_at: r.decision_at,
    approver_email: r.approver_email,
    decidable: s.status === 'pending' && mine === null && eligibility.eligible,
    approvals: approvalsOf(r),
    votes: votes.map((v) => ({ who: v.voter.startsWith('operator:') ? v.voter : (v.email ?? 'an approver'), vote: v.vote, at: v.at })),
    your_vote: mine?.vote ?? null,
    not_eligible: eligibility.eligible ? null : eligibility.reason,
    why_you: describeQuorum(quorum),
    revocable: s.status === 'approved',
    revoked_at: r.revoked_at,
    revoked_by: r.revoked ? (r.revoked_by_email ?? r.revoked_by ?? null) : null,
    revoke_reason: r.revoke_reason ?? null,
    svid_id: r.svid_id,
    svid_expires_at: r.svid_expires_at,
    passkey_required: service.passkeyRequirement(r) !== null,
    server_time: now.toISOString(),
  };
}

