/**
 * The words of the consent page for quorum requests (several approvers vote on one request).
 * No DOM here, so the texts are unit-tested (test/unit/consent-ui-votes.test.ts); main.ts puts
 * them on the page, always as text.
 */
import { STALE_VIEW_TEXT } from './payload-view.ts';

export type Vote = 'approve' | 'deny';

export interface VoteView {
  readonly who: string;
  readonly vote: Vote;
  readonly at: string;
}

/** The quorum fields of the API's RequestView (lambdas/consent-api/app.ts). */
export interface QuorumFields {
  readonly status: 'pending' | 'approved' | 'denied' | 'expired' | 'revoked';
  readonly decidable: boolean;
  readonly approvals: { readonly have: number; readonly need: number };
  readonly votes: readonly VoteView[];
  readonly your_vote: Vote | null;
  readonly not_eligible: string | null;
}

/**
 * What the signed-in person can do with the request now:
 * - decide: it is pending and they may still vote (buttons);
 * - voted: it is pending and they voted (it waits for others);
 * - ineligible: it is pending and they may not vote (the reason, no buttons);
 * - closed: it is decided, expired or revoked.
 */
export type Mode = 'decide' | 'voted' | 'ineligible' | 'closed';

export function modeOf(r: Pick<QuorumFields, 'status' | 'decidable' | 'your_vote'>): Mode {
  if (r.status !== 'pending') return 'closed';
  if (r.decidable) return 'decide';
  return r.your_vote !== null ? 'voted' : 'ineligible';
}

/** Whether the request needs more than one approval: only then the page shows progress and votes. */
export function isQuorum(r: Pick<QuorumFields, 'approvals'>): boolean {
  return r.approvals.need > 1;
}

function count(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** "1 of 2 approvals". */
export function progressText(a: QuorumFields['approvals']): string {
  return `${a.have} of ${a.need} approvals`;
}

/** After the caller's vote, while the request is still pending: what it waits for. */
export function waitingText(r: Pick<QuorumFields, 'approvals' | 'votes' | 'your_vote'>): string {
  const approvalsLeft = Math.max(0, r.approvals.need - r.approvals.have);
  if (r.your_vote !== 'deny') return `You approved. Waiting for ${count(approvalsLeft, 'more approval', 'more approvals')}.`;
  // A denial that did not decide: the policy denies by majority, i.e. once `need` people denied.
  const denialsLeft = Math.max(0, r.approvals.need - r.votes.filter((v) => v.vote === 'deny').length);
  return `You denied. Waiting for more votes: ${count(approvalsLeft, 'more approval approves', 'more approvals approve')} it, ${count(denialsLeft, 'more denial denies', 'more denials deny')} it.`;
}

/** A reason from the API ("separation of duties: …") as a sentence of its own. */
export function sentence(s: string): string {
  const t = s.trim();
  if (t === '') return t;
  const first = t[0]!.toUpperCase() + t.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

/** The page's line for a refused vote (the HTTP error of POST approve|deny), by error code. */
export function refusalText(code: string, message: string): string | undefined {
  switch (code) {
    case 'ERR_ALREADY_VOTED':
      return 'You have already voted on this request. Each person votes once; your first vote is the one that counts.';
    case 'ERR_FORBIDDEN':
      return `Your vote was not accepted. ${sentence(message)}`;
    case 'ERR_ALREADY_DECIDED':
      return 'Someone else decided this request first.';
    case 'ERR_EXPIRED':
      return 'The request expired before your decision was recorded.';
    case 'ERR_STALE_VIEW':
      return STALE_VIEW_TEXT;
    case 'ERR_PASSKEY_REQUIRED':
    case 'ERR_PASSKEY_INVALID':
      return `Your decision was not recorded. ${sentence(message)}`;
    default:
      return undefined;
  }
}

/** A moment in the reader's own time zone, with the zone: "Jan 5, 2026, 3:04:05 PM EST". */
export function localWithZone(iso: string, locale?: string, timeZone?: string): string {
  return new Date(iso).toLocaleString(locale, { dateStyle: 'medium', timeStyle: 'long', ...(timeZone ? { timeZone } : {}) });
}

/** "approved" / "denied". */
export function voteVerb(v: Vote): string {
  return v === 'approve' ? 'approved' : 'denied';
}

/** Whether a vote's `who` is the signed-in person (emails compare case-insensitively). */
export function isMine(who: string, email: string | null | undefined): boolean {
  return !!email && who.trim().toLowerCase() === email.trim().toLowerCase();
}
