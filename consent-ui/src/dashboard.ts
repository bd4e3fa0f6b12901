/**
 * The words of the dashboard (the page at `/`: what awaits a decision, what was decided lately).
 * No DOM here, so the texts are unit-tested (test/unit/consent-ui-dashboard.test.ts).
 */
import { duration, type Status } from './review.ts';
import { isQuorum, progressText } from './votes.ts';

/** One request of GET /api/requests (lambdas/consent-api/app.ts). */
export interface Summary {
  readonly request_id: string;
  readonly agent_id: string;
  readonly action: string;
  readonly status: Status;
  readonly requested_at: string;
  readonly expires_at: string;
  readonly decision_at: string | null;
  readonly revoked_at: string | null;
  readonly approvals: { readonly have: number; readonly need: number };
  readonly your_vote: 'approve' | 'deny' | null;
  readonly decidable: boolean;
}

/** GET /api/requests: pending soonest deadline first; recent (last 24 h) most recent first. */
export interface Dashboard {
  readonly pending: readonly Summary[];
  readonly recent: readonly Summary[];
  readonly server_time: string;
}

/** "4 min 12 s left"; "expired" once the deadline has passed. */
export function timeLeftText(expiresAt: string, nowMs: number): string {
  const ms = Date.parse(expiresAt) - nowMs;
  return ms <= 0 ? 'expired' : `${duration(ms)} left`;
}

/** The pending row's note on the reader: "You approved", "You denied", "You cannot vote", or null (it is theirs to decide). */
export function yourPart(s: Pick<Summary, 'status' | 'your_vote' | 'decidable'>): string | null {
  if (s.your_vote === 'approve') return 'You approved';
  if (s.your_vote === 'deny') return 'You denied';
  if (s.status === 'pending' && !s.decidable) return 'You cannot vote';
  return null;
}

/** "1 of 2 approvals" for a request that needs more than one, else null. */
export function approvalsText(s: Pick<Summary, 'approvals'>): string | null {
  return isQuorum(s) ? progressText(s.approvals) : null;
}

export const RECENT_STATUS: Record<Status, string> = {
  pending: 'Pending',
  approved: 'Approved',
  denied: 'Denied',
  expired: 'Expired',
  revoked: 'Revoked',
};

/** When a recent request reached its state: revoked → when revoked; else its decision (or deadline, for an expiry). */
export function recentAt(s: Pick<Summary, 'status' | 'decision_at' | 'revoked_at' | 'expires_at'>): string {
  if (s.status === 'revoked' && s.revoked_at) return s.revoked_at;
  return s.decision_at ?? s.expires_at;
}

export const EMPTY_PENDING = 'Nothing is waiting for a decision.';
export const EMPTY_RECENT = 'Nothing was decided in the last 24 hours.';

/** What changes the lists (not server_time): a refresh that brings the same redraws nothing. */
export function dashboardFingerprint(d: Pick<Dashboard, 'pending' | 'recent'>): string {
  return JSON.stringify([d.pending, d.recent]);
}
