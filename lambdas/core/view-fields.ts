import type { Payload } from './payload.ts';

/**
 * What an approver is shown and decides on: exactly these fields of the request. The consent page
 * renders them, computes `view_sha256` over their canonical JSON (RFC 8785) and sends it with the
 * decision; the server recomputes it from the stored record and refuses a decision made on any
 * other view (stale or altered). One definition, used by the server, the page and the email; no
 * runtime imports here, so the consent page bundles this very file (consent-ui/src/view-hash.ts).
 */
export interface ApprovalView {
  readonly request_id: string;
  readonly agent_id: string;
  readonly action: string;
  readonly permissions: readonly string[];
  readonly justification: string;
  /** The operation's exact parameters; null when the agent sent none. */
  readonly payload: Payload | null;
  readonly ttl_minutes: number;
  /** The deadline: when the request expires if nobody decides. */
  readonly expires_at: string;
}

export function approvalView(r: Omit<ApprovalView, 'payload'> & { readonly payload?: Payload | null }): ApprovalView {
  return {
    request_id: r.request_id,
    agent_id: r.agent_id,
    action: r.action,
    permissions: [...r.permissions],
    justification: r.justification,
    payload: r.payload ?? null,
    ttl_minutes: r.ttl_minutes,
    expires_at: r.expires_at,
  };
}
