import { describe, expect, it } from 'vitest';
import { approvalsText, dashboardFingerprint, recentAt, timeLeftText, yourPart, type Summary } from '../../consent-ui/src/dashboard.ts';

const NOW = Date.parse('2026-01-05T20:00:00.000Z');

function summary(over: Partial<Summary> = {}): Summary {
  return {
    request_id: 'req_00000000000000000000000000',
    agent_id: 'demo-agent',
    action: 'Deploy',
    status: 'pending',
    requested_at: '2026-01-05T19:55:00.000Z',
    expires_at: '2026-01-05T20:04:12.000Z',
    decision_at: null,
    revoked_at: null,
    approvals: { have: 0, need: 1 },
    your_vote: null,
    decidable: true,
    ...over,
  };
}

describe('dashboard texts', () => {
  it('time left ticks from the server clock; "expired" at the deadline', () => {
    expect(timeLeftText('2026-01-05T20:04:12.000Z', NOW)).toBe('4 min 12 s left');
    expect(timeLeftText('2026-01-05T20:00:09.900Z', NOW)).toBe('9 s left');
    expect(timeLeftText('2026-01-05T20:00:00.000Z', NOW)).toBe('expired');
  });

  it('progress only when more than one approval is needed', () => {
    expect(approvalsText(summary())).toBeNull();
    expect(approvalsText(summary({ approvals: { have: 1, need: 2 } }))).toBe('1 of 2 approvals');
  });

  it("the reader's part: voted, may not vote, or theirs to decide", () => {
    expect(yourPart(summary())).toBeNull();
    expect(yourPart(summary({ your_vote: 'approve', decidable: false }))).toBe('You approved');
    expect(yourPart(summary({ your_vote: 'deny', decidable: false }))).toBe('You denied');
    expect(yourPart(summary({ decidable: false }))).toBe('You cannot vote');
    expect(yourPart(summary({ status: 'approved', decidable: false }))).toBeNull();
  });

  it('when a recent request reached its state', () => {
    expect(recentAt(summary({ status: 'approved', decision_at: '2026-01-05T19:58:00.000Z' }))).toBe('2026-01-05T19:58:00.000Z');
    expect(recentAt(summary({ status: 'revoked', decision_at: '2026-01-05T19:58:00.000Z', revoked_at: '2026-01-05T19:59:00.000Z' }))).toBe('2026-01-05T19:59:00.000Z');
    expect(recentAt(summary({ status: 'expired' }))).toBe('2026-01-05T20:04:12.000Z');
  });

  it('a refresh that changes nothing but the server time redraws nothing', () => {
    const a = { pending: [summary()], recent: [] };
    expect(dashboardFingerprint(a)).toBe(dashboardFingerprint({ ...a, server_time: 'later' } as never));
    expect(dashboardFingerprint(a)).not.toBe(dashboardFingerprint({ pending: [summary({ approvals: { have: 1, need: 2 } })], recent: [] }));
  });
});
