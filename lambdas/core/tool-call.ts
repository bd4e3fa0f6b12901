import type { RequestId, SvidId } from './ids.ts';
import type { ErrorCode } from './errors.ts';

/**
 * A tool call made through an enforcement point (the ackd gateway, issue 14) as the audit log
 * records it: its vocabulary and shapes, without dependencies (schemas, the verifier and the
 * recorder, core/tool-calls.ts, all read it).
 */

export const EFFECTS = ['read', 'mutating', 'destructive', 'admin'] as const;
export type Effect = (typeof EFFECTS)[number];

/** Outcomes of calls that change no request. */
export const CALL_EVENT_OUTCOMES = ['allowed', 'refused', 'denied', 'expired'] as const;
/** Outcomes that are steps of an approved request's one call. */
export const CALL_LIFECYCLE_OUTCOMES = ['started', 'executed', 'failed'] as const;
export const CALL_OUTCOMES = [...CALL_EVENT_OUTCOMES, ...CALL_LIFECYCLE_OUTCOMES] as const;
export type CallOutcome = (typeof CALL_OUTCOMES)[number];

/** One tool call as the audit log records it (on a request as `call`, or as a `tool_call` event). */
export interface ToolCall {
  readonly server: string;
  readonly tool: string;
  readonly effect: Effect;
  readonly outcome: CallOutcome;
  /** SHA-256 of the call's payload ({server, tool, arguments}) as RFC 8785 canonical JSON. */
  readonly payload_sha256: string;
  /** The agent on whose behalf the gateway made the call (the gateway's caller), when known. */
  readonly caller: string | null;
  readonly request_id: string | null;
  /** SHA-256 of the downstream result as canonical JSON (executed calls; allowed ones when given). */
  readonly result_sha256: string | null;
  /** Why it was refused or failed. */
  readonly reason: string | null;
}

/** What a gateway reports for one call (record_tool_calls). */
export interface CallReport {
  readonly server: string;
  readonly tool: string;
  readonly effect: Effect;
  readonly outcome: CallOutcome;
  readonly payload_sha256: string;
  readonly caller?: string | undefined;
  readonly request_id?: RequestId | undefined;
  readonly svid_id?: SvidId | undefined;
  readonly result_sha256?: string | undefined;
  readonly reason?: string | undefined;
}

export type CallResult = { readonly ok: true; readonly event_id: string } | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

/** The fields a report must or must not carry for its outcome: null when it is complete. */
export function reportProblem(r: CallReport): { field: string; rule: string } | null {
  const lifecycle = (CALL_LIFECYCLE_OUTCOMES as readonly string[]).includes(r.outcome);
  if (lifecycle && !r.request_id) return { field: 'request_id', rule: `is required for outcome ${r.outcome}` };
  if (lifecycle && !r.svid_id) return { field: 'svid_id', rule: `is required for outcome ${r.outcome}` };
  if ((r.outcome === 'denied' || r.outcome === 'expired') && !r.request_id) return { field: 'request_id', rule: `is required for outcome ${r.outcome}` };
  if ((r.outcome === 'allowed' || r.outcome === 'refused') && (r.request_id || r.svid_id)) {
    return { field: r.request_id ? 'request_id' : 'svid_id', rule: `must be absent for outcome ${r.outcome}: such a call has no request` };
  }
  if (r.outcome === 'executed' && !r.result_sha256) return { field: 'result_sha256', rule: 'is required for outcome executed' };
  if (r.outcome !== 'executed' && r.outcome !== 'allowed' && r.result_sha256) return { field: 'result_sha256', rule: `must be absent for outcome ${r.outcome}` };
  return null;
}

