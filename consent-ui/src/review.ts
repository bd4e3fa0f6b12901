/**
 * The words of the review page about time and revocation. No DOM here, so the texts are
 * unit-tested (test/unit/consent-ui-review.test.ts); main.ts puts them on the page, as text.
 */
import { isMine, localWithZone } from './votes.ts';

export type Status = 'pending' | 'approved' | 'denied' | 'expired' | 'revoked';

/** "9 min 59 s", "45 s", "1 h 5 min"; "none — expired" at or below zero. */
export function duration(ms: number): string {
  if (ms <= 0) return 'none — expired';
  const s = Math.floor(ms / 1000);
  const m = Math.floor(s / 60);
  if (m >= 60) return `${Math.floor(m / 60)} h ${m % 60} min`;
  return m > 0 ? `${m} min ${s % 60} s` : `${s} s`;
}

function minutes(n: number): string {
  return `${n} minute${n === 1 ? '' : 's'}`;
}

/** How long an approval lasts, before anyone decides: no "TTL". */
export function lifetimeText(ttlMinutes: number): string {
  return `The agent may use this approval for ${minutes(ttlMinutes)}.`;
}

/** Until when an approval given at `decisionAt` may be used: its SVID's end, else decision + TTL. */
export function usableUntil(r: { decision_at: string | null; ttl_minutes: number; svid_expires_at: string | null }): string | null {
  if (r.svid_expires_at) return r.svid_expires_at;
  if (!r.decision_at) return null;
  return new Date(Date.parse(r.decision_at) + r.ttl_minutes * 60_000).toISOString();
}

/** The line under an approved request: whether the agent picked up its identity, and until when it may use it. */
export function approvedText(r: { svid_id: string | null; decision_at: string | null; ttl_minutes: number; svid_expires_at: string | null }, nowMs: number, locale?: string, timeZone?: string): string {
  const until = usableUntil(r);
  const when = until ? localWithZone(until, locale, timeZone) : null;
  const over = until !== null && Date.parse(until) <= nowMs;
  if (r.svid_id) {
    return over ? `The agent picked up its identity for this request; it ran out at ${when}.` : `The agent picked up its identity for this request; it may use it until ${when}.`;
  }
  if (over) return `The agent did not pick up its identity before ${when}; it can no longer use this approval.`;
  return when ? `The agent has not picked up its identity yet. It may use this approval until ${when}.` : 'The agent has not picked up its identity yet.';
}

/**
 * Who revoked a request, in words: an approver's email ("… (you)" for the reader), `operator:<name>`,
 * `agent:<id>`, `system`; null when the record does not say.
 */
export function revokerText(by: string | null, myEmail: string | null | undefined): string | null {
  if (by === null || by.trim() === '') return null;
  if (isMine(by, myEmail)) return `${by} (you)`;
  if (by.startsWith('operator:')) return `operator ${by.slice('operator:'.length)} (ackd CLI)`;
  if (by.startsWith('agent:')) return `the agent ${by.slice('agent:'.length)} itself`;
  if (by === 'system') return 'ackd itself';
  return by;
}

/** "Jan 5, 2026, 3:04:05 PM EST by alice@example.com" — when and by whom a request was revoked. */
export function revokedWhenBy(r: { revoked_at: string | null; revoked_by: string | null }, myEmail: string | null | undefined, locale?: string, timeZone?: string): string {
  const when = r.revoked_at ? localWithZone(r.revoked_at, locale, timeZone) : 'at an unrecorded time';
  const who = revokerText(r.revoked_by, myEmail);
  return who ? `${when} by ${who}` : when;
}

/** What revoking does, for the confirmation. */
export function revokeConsequence(r: { agent_id: string; svid_id: string | null }): string {
  return r.svid_id
    ? `The identity the agent "${r.agent_id}" picked up for this request stops being accepted: protected resources refuse it from now on. This cannot be undone.`
    : `The agent "${r.agent_id}" has not picked up its identity yet; after this it never can. This cannot be undone.`;
}

/** The most characters a revocation reason may have (the consent API's limit). */
export const REASON_MAX = 500;

/**
 * The reason typed into the revoke confirmation, as the API takes it: one line (tabs, line breaks
 * and other control characters become spaces), trimmed, null when empty; or why it cannot be sent.
 */
export function cleanReason(raw: string): { ok: true; reason: string | null } | { ok: false; problem: string } {
  const reason = raw.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ').trim();
  if (reason.length > REASON_MAX) return { ok: false, problem: `The reason is ${reason.length} characters long; it may have at most ${REASON_MAX}.` };
  return { ok: true, reason: reason === '' ? null : reason };
}

/** Why a request that is `status` now could not be revoked (the API said 409 ERR_NOT_APPROVED). */
export function notRevocableText(status: Status): string {
  switch (status) {
    case 'pending':
      return 'This request has not been approved, so there is no approval to revoke.';
    case 'denied':
      return 'This request was denied, so there is no approval to revoke.';
    case 'expired':
      return 'This request expired without an approval, so there is nothing to revoke.';
    case 'revoked':
      return 'This approval has already been revoked.';
    case 'approved':
      return 'The approval could not be revoked just now. Try again.';
  }
}

/** The page's line for a refused revocation (a 409 of POST revoke), by error code, given the request's status now. */
export function revokeRefusalText(code: string, statusNow: Status): string {
  if (code === 'ERR_NOT_APPROVED') return notRevocableText(statusNow);
  if (statusNow === 'revoked') return 'This approval has already been revoked.';
  return statusNow === 'approved' ? 'The request changed while you were revoking it. It is still approved; try again.' : notRevocableText(statusNow);
}
