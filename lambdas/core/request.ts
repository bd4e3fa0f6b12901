import { AckdError } from './errors.ts';
import { SpiffeId, type AgentId, type RequestId, type SvidId, type TrustDomain } from './ids.ts';
import type { CastVote, Quorum } from './quorum.ts';
import { payloadSha256, type Payload } from './payload.ts';
import type { SignedDecision } from './evidence.ts';
import type { ToolCall } from './tool-call.ts';

/** Limits on agent-supplied input. Everything an agent sends is bounded. */
export const LIMITS = {
  agentIdMax: 64,
  actionMax: 1000,
  permissionMax: 128,
  permissionsMax: 32,
  justificationMax: 4000,
  ttlMinutesMin: 1,
  ttlMinutesMax: 60,
  waitSecondsMax: 25,
} as const;

export type Decision = 'pending' | 'approved' | 'denied' | 'expired';

/**
 * One authorization request as stored: the 13 audit fields of the seed
 * (request_id … revoked_at) plus what the lifecycle needs. Fields not yet known are null, so an
 * exported record always has every field.
 */
export interface AuthorizationRecord {
  readonly request_id: RequestId;
  readonly agent_id: AgentId;
  readonly action: string;
  readonly permissions: readonly string[];
  readonly justification: string;
  /** Cognito `sub` (or operator name for CLI decisions) of the human who decided. */
  readonly approver_identity: string | null;
  /** For display only: the approver's email, when known. */
  readonly approver_email: string | null;
  readonly requested_at: string;
  readonly decision_at: string | null;
  readonly decision: Decision;
  readonly svid_id: SvidId | null;
  readonly svid_expires_at: string | null;
  readonly revoked: boolean;
  readonly revoked_at: string | null;
  /** Who revoked it: `agent:<id>`, a Cognito sub, `operator:<name>`, or `system` (absent on requests from before human revocation). */
  readonly revoked_by?: string | null;
  /** For display: the revoking approver's email, when known. */
  readonly revoked_by_email?: string | null;
  /** Why, when the human who revoked it said. */
  readonly revoke_reason?: string | null;
  /** The rule the request is decided under, fixed when it was made (absent on requests from before quorums). */
  readonly quorum?: Quorum | null;
  /** The votes cast so far, in order (absent on requests from before quorums). */
  readonly votes?: readonly CastVote[];
  /** The operation's exact parameters, as the agent sent them (core/payload.ts); null or absent without one. */
  readonly payload?: Payload | null;
  /** Lowercase hex SHA-256 over the payload's canonical JSON; null or absent without a payload. */
  readonly payload_sha256?: string | null;
  /** The decision service's signature over the decision (core/evidence.ts), set by the deciding write; absent before a decision and on older requests. */
  readonly decision_signature?: SignedDecision | null;
  /** The one call the approval ran through the ackd gateway (core/tool-calls.ts); absent until it starts. */
  readonly call?: ToolCall | null;
  // lifecycle
  readonly ttl_minutes: number;
  /** When a pending request expires: requested_at + ttl_minutes. */
  readonly expires_at: string;
  readonly spiffe_id: string;
  readonly svid_issued_at: string | null;
  /** The issued certificate's notAfter (at most svid_expires_at): when the SVID really ends. Every API reports this one instant as `expires_at`. */
  readonly svid_not_after?: string | null;
  /** Notification bookkeeping (consent email). */
  readonly notify_status: 'pending' | 'sent' | 'failed';
  readonly notify_attempts: number;
}

export interface NewRequest {
  readonly agent_id: AgentId;
  readonly action: string;
  readonly permissions: readonly string[];
  readonly justification: string;
  readonly ttl_minutes: number;
  /** The operation's exact parameters (checked with parsePayload); absent or null: none. */
  readonly payload?: Payload | null;
}

/** A new pending record: every audit field present, the unknown ones null. */
export function newRecord(input: NewRequest, requestId: RequestId, trustDomain: TrustDomain, now: Date, quorum: Quorum): AuthorizationRecord {
  const requestedAt = now.toISOString();
  return {
    request_id: requestId,
    agent_id: input.agent_id,
    action: input.action,
    permissions: [...input.permissions],
    justification: input.justification,
    approver_identity: null,
    approver_email: null,
    requested_at: requestedAt,
    decision_at: null,
    decision: 'pending',
    svid_id: null,
    svid_expires_at: null,
    revoked: false,
    revoked_at: null,
    revoked_by: null,
    revoked_by_email: null,
    revoke_reason: null,
    quorum,
    votes: [],
    payload: input.payload ?? null,
    payload_sha256: input.payload ? payloadSha256(input.payload) : null,
    ttl_minutes: input.ttl_minutes,
    expires_at: addMinutes(requestedAt, input.ttl_minutes),
    spiffe_id: SpiffeId.forRequest(trustDomain, input.agent_id, requestId).toString(),
    svid_issued_at: null,
    svid_not_after: null,
    notify_status: 'pending',
    notify_attempts: 0,
  };
}

/** The status an agent sees, derived from the record and the current time. */
export type RequestStatus =
  | { status: 'pending'; expires_at: string }
  | { status: 'approved'; svid_expires_at: string; issued: boolean; svid_id: SvidId | null }
  | { status: 'denied'; decision_at: string }
  | { status: 'expired'; expired_at: string }
  | { status: 'revoked'; revoked_at: string };

/**
 * A human's reason for revoking (consent API `reason`, CLI `--reason`): one line of at most 500
 * characters; empty or absent is no reason. The one rule for every edge.
 */
export function parseRevokeReason(value: unknown, field = 'reason'): string | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string' || value.length > 500 || /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(value)) {
    throw new AckdError('ERR_INVALID_INPUT', `${field}: must be one line of at most 500 characters`, { field });
  }
  return value.trim() || null;
}

export function addMinutes(iso: string, minutes: number): string {
  return new Date(Date.parse(iso) + minutes * 60_000).toISOString();
}
