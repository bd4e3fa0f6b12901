import { LEGACY_QUORUM } from '../../lambdas/core/quorum.ts';
import { newRequestId, parseAgentId, parseTrustDomain } from '../../lambdas/core/ids.ts';
import { newRecord, type AuthorizationRecord } from '../../lambdas/core/request.ts';

/** A pending request record as the service would create it (for template and UI tests). */
export function pendingRecord(over: Partial<AuthorizationRecord> = {}, now = new Date('2026-02-03T14:05:00.000Z')): AuthorizationRecord {
  const input = {
    agent_id: parseAgentId(over.agent_id ?? 'billing-bot'),
    action: 'Refund order 1234',
    permissions: ['payments:refund', 'orders:read'],
    justification: 'Customer was charged twice.',
    ttl_minutes: over.ttl_minutes ?? 15,
  };
  return { ...newRecord(input, newRequestId(now.getTime()), parseTrustDomain('ackd.test'), now, LEGACY_QUORUM), ...over };
}

/** Agent input meant to break out of every context it lands in. */
export const HOSTILE = {
  action: `<script>alert("x")</script><img src=x onerror=alert(1)> "quoted" & 'single'\r\nBcc: victim@example.com`,
  justification: `</td></tr></table><a href="javascript:alert(1)">click</a>\n${'Ü🦀漢字 '.repeat(10)}\u202eevil\u202c ` + 'A'.repeat(3500),
  permissions: ['<b>bold</b>', 'perm:"quoted"', '🦀'.repeat(60)],
};
