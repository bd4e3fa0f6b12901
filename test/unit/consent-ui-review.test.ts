import { describe, expect, it } from 'vitest';
import { approvedText, cleanReason, duration, lifetimeText, notRevocableText, REASON_MAX, revokeConsequence, revokedWhenBy, revokeRefusalText, revokerText, usableUntil } from '../../consent-ui/src/review.ts';

const AT = '2026-01-05T20:04:05.000Z';
const NY = ['en-US', 'America/New_York'] as const;

describe('consent page: time and revocation texts', () => {
  it('time left, and how long an approval lasts, without "TTL"', () => {
    expect(duration(599_000)).toBe('9 min 59 s');
    expect(duration(45_500)).toBe('45 s');
    expect(duration(3_900_000)).toBe('1 h 5 min');
    expect(duration(0)).toBe('none — expired');
    expect(duration(-5)).toBe('none — expired');
    expect(lifetimeText(15)).toBe('The agent may use this approval for 15 minutes.');
    expect(lifetimeText(1)).toBe('The agent may use this approval for 1 minute.');
    expect(lifetimeText(15)).not.toMatch(/TTL/);
  });

  it('an approval is usable until its SVID ends, else until decision + its minutes', () => {
    expect(usableUntil({ decision_at: AT, ttl_minutes: 15, svid_expires_at: null })).toBe('2026-01-05T20:19:05.000Z');
    expect(usableUntil({ decision_at: AT, ttl_minutes: 15, svid_expires_at: '2026-01-05T20:19:06.000Z' })).toBe('2026-01-05T20:19:06.000Z');
    expect(usableUntil({ decision_at: null, ttl_minutes: 15, svid_expires_at: null })).toBeNull();
  });

  it('what an approved page says about the identity, in local time with the zone', () => {
    const now = Date.parse(AT);
    expect(approvedText({ svid_id: null, decision_at: AT, ttl_minutes: 15, svid_expires_at: null }, now, ...NY)).toBe(
      'The agent has not picked up its identity yet. It may use this approval until Jan 5, 2026, 3:19:05 PM EST.',
    );
    expect(approvedText({ svid_id: 'ab12', decision_at: AT, ttl_minutes: 15, svid_expires_at: '2026-01-05T20:19:05.000Z' }, now, ...NY)).toBe(
      'The agent picked up its identity for this request; it may use it until Jan 5, 2026, 3:19:05 PM EST.',
    );
    const later = now + 3_600_000;
    expect(approvedText({ svid_id: 'ab12', decision_at: AT, ttl_minutes: 15, svid_expires_at: '2026-01-05T20:19:05.000Z' }, later, ...NY)).toBe('The agent picked up its identity for this request; it ran out at Jan 5, 2026, 3:19:05 PM EST.');
    expect(approvedText({ svid_id: null, decision_at: AT, ttl_minutes: 15, svid_expires_at: null }, later, ...NY)).toBe('The agent did not pick up its identity before Jan 5, 2026, 3:19:05 PM EST; it can no longer use this approval.');
  });

  it('who revoked, in words', () => {
    expect(revokerText('alice@example.com', 'bob@example.com')).toBe('alice@example.com');
    expect(revokerText('Alice@Example.com', 'alice@example.com')).toBe('Alice@Example.com (you)');
    expect(revokerText('operator:carol', 'alice@example.com')).toBe('operator carol (ackd CLI)');
    expect(revokerText('agent:demo-agent', null)).toBe('the agent demo-agent itself');
    expect(revokerText('system', null)).toBe('ackd itself');
    expect(revokerText(null, null)).toBeNull();
    expect(revokedWhenBy({ revoked_at: AT, revoked_by: 'operator:carol' }, null, ...NY)).toBe('Jan 5, 2026, 3:04:05 PM EST by operator carol (ackd CLI)');
    expect(revokedWhenBy({ revoked_at: AT, revoked_by: null }, null, 'en-US', 'UTC')).toBe('Jan 5, 2026, 8:04:05 PM UTC');
  });

  it('what revoking does depends on whether the agent picked up its identity', () => {
    expect(revokeConsequence({ agent_id: 'a1', svid_id: 'ab12' })).toMatch(/^The identity the agent "a1" picked up for this request stops being accepted/);
    expect(revokeConsequence({ agent_id: 'a1', svid_id: null })).toBe('The agent "a1" has not picked up its identity yet; after this it never can. This cannot be undone.');
  });

  it('the reason: one line, trimmed, at most 500 characters, empty is none', () => {
    expect(cleanReason('  ')).toEqual({ ok: true, reason: null });
    expect(cleanReason(' wrong target\tcluster ')).toEqual({ ok: true, reason: 'wrong target cluster' });
    expect(cleanReason('a\nb\u2028c')).toEqual({ ok: true, reason: 'a b c' });
    expect(cleanReason('x'.repeat(REASON_MAX))).toEqual({ ok: true, reason: 'x'.repeat(500) });
    expect(cleanReason('x'.repeat(501))).toEqual({ ok: false, problem: 'The reason is 501 characters long; it may have at most 500.' });
  });

  it('a refused revocation (409) becomes a sentence for the state the request is in now', () => {
    expect(revokeRefusalText('ERR_NOT_APPROVED', 'denied')).toBe('This request was denied, so there is no approval to revoke.');
    expect(revokeRefusalText('ERR_NOT_APPROVED', 'expired')).toBe('This request expired without an approval, so there is nothing to revoke.');
    expect(revokeRefusalText('ERR_NOT_APPROVED', 'pending')).toBe('This request has not been approved, so there is no approval to revoke.');
    expect(revokeRefusalText('ERR_NOT_APPROVED', 'revoked')).toBe('This approval has already been revoked.');
    expect(revokeRefusalText('ERR_ALREADY_DECIDED', 'revoked')).toBe('This approval has already been revoked.');
    expect(revokeRefusalText('ERR_ALREADY_DECIDED', 'approved')).toBe('The request changed while you were revoking it. It is still approved; try again.');
    expect(notRevocableText('approved')).toBe('The approval could not be revoked just now. Try again.');
  });
});
