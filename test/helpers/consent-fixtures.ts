import { newRequestId, parseAgentId, parseTrustDomain, SpiffeId } from '../../lambdas/core/ids.ts';
import { addMinutes, type AuthorizationRecord } from '../../lambdas/core/request.ts';

/** A pending request record as the service would create it (for template and UI tests). */
export function pendingRecord(over: Partial<AuthorizationRecord> = {}, now = new Date('2026-02-03T14:05:00.000Z')): AuthorizationRecord {
  const requestId = newRequestId(now.getTime());
  const agentId = parseAgentId(over.agent_id ?? 'billing-bot');
  const ttl = over.ttl_minutes ?? 15;
  const requestedAt = now.toISOString();
  return {
    request_id: requestId,
    agent_id: agentId,
    action: 'Refund order 1234',
    permissions: ['payments:refund', 'orders:read'],
    justification: 'Customer was charged twice.',
    approver_identity: null,
    approver_email: null,
    requested_at: requestedAt,
    decision_at: null,
    decision: 'pending',
    svid_id: null,
    svid_expires_at: null,
    revoked: false,
    revoked_at: null,
    ttl_minutes: ttl,
    expires_at: addMinutes(requestedAt, ttl),
    spiffe_id: SpiffeId.forRequest(parseTrustDomain('ackd.test'), agentId, requestId).toString(),
    svid_issued_at: null,
    notify_status: 'pending',
    notify_attempts: 0,
    ...over,
  };
}

/** Agent input meant to break out of every context it lands in. */
export const HOSTILE = {
  action: `<script>alert("x")</script><img src=x onerror=alert(1)> "quoted" & 'single'\r\nBcc: victim@example.com`,
  justification: `</td></tr></table><a href="javascript:alert(1)">click</a>\n${'Ü🦀漢字 '.repeat(10)}\u202eevil\u202c ` + 'A'.repeat(3500),
  permissions: ['<b>bold</b>', 'perm:"quoted"', '🦀'.repeat(60)],
};
