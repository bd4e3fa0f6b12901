/**
 * The ports of the gateway's call flow (flow.ts). Adapters: lambdas/gateway/ (ackd over MCP, the
 * downstream MCP clients); in-memory ones beside the flow's unit tests.
 */
import type { Payload } from '../payload.ts';
import type { CallOutcome, Effect } from '../tool-call.ts';

export type { CallOutcome };

/** One call as ackd's `record_tool_calls` records it. */
export interface CallEvent {
  readonly server: string;
  readonly tool: string;
  readonly effect: Effect;
  readonly outcome: CallOutcome;
  readonly payload_sha256: string;
  readonly caller?: string;
  readonly request_id?: string;
  readonly svid_id?: string;
  readonly result_sha256?: string;
  readonly reason?: string;
}

export type RecordResult = { readonly ok: true; readonly event_id: string } | { readonly ok: false; readonly code: string; readonly message: string };

/** ackd's `record_tool_calls`: results per call, same order. Throws when ackd could not be asked (transport). */
export interface CallRecorder {
  record(calls: readonly CallEvent[]): Promise<readonly RecordResult[]>;
}

/** check_authorization's answer, as ackd sends it (the seed's shape and its extensions). */
export type Check =
  | { readonly status: 'pending'; readonly approvals?: { readonly have: number; readonly need: number } }
  | {
      readonly status: 'approved';
      /** Present on the first check after approval only (the private key is not kept). */
      readonly svid?: string;
      readonly svid_id: string;
      readonly spiffe_id: string;
      readonly expires_at: string;
      readonly svid_delivered?: boolean;
      readonly payload_sha256?: string | null;
      readonly receipt?: string;
    }
  | { readonly status: 'denied' | 'expired' }
  | { readonly status: 'revoked'; readonly revoked_at?: string };

export type Approved = Extract<Check, { status: 'approved' }> & { readonly svid: string };

/** ackd, as the gateway's own agent. Every method throws an Error whose message says what went wrong. */
export interface AckdPort {
  requestAuthorization(input: { action: string; permissions: string[]; justification: string; payload: Payload }): Promise<{ request_id: string; consent_url: string; expires_at: number }>;
  /** One long-poll of at most `waitSeconds` (≤ 25). */
  checkAuthorization(requestId: string, waitSeconds: number, signal: AbortSignal): Promise<Check>;
  /** Throws unless the approval is of exactly this payload (digest, SVID serial, ackd's signed receipt). */
  verifyApproval(approved: Approved, payload: Payload, payloadSha256: string): Promise<void>;
  revoke(requestId: string, svidId: string): Promise<void>;
}

/** A downstream tool result (MCP CallToolResult), passed through as it came. */
export type ToolResult = { readonly content: readonly unknown[]; readonly isError?: boolean; readonly structuredContent?: Record<string, unknown>; readonly [k: string]: unknown };

export interface DownstreamPort {
  /** Calls the tool once; throws on a transport failure, a crash or a timeout (never retries). */
  call(server: string, tool: string, args: Record<string, unknown>, signal?: AbortSignal): Promise<ToolResult>;
}
