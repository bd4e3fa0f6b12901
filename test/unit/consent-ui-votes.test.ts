import { describe, expect, it } from 'vitest';
import { isMine, isQuorum, localWithZone, modeOf, progressText, refusalText, sentence, waitingText, type QuorumFields } from '../../consent-ui/src/votes.ts';

const AT = '2026-01-05T20:04:05.000Z';

function view(over: Partial<QuorumFields> = {}): QuorumFields {
  return { status: 'pending', decidable: true, approvals: { have: 0, need: 2 }, votes: [], your_vote: null, not_eligible: null, ...over };
}

describe('consent page: quorum texts', () => {
  it('modes: decide, voted, not eligible, closed', () => {
    expect(modeOf(view())).toBe('decide');
    expect(modeOf(view({ decidable: false, your_vote: 'approve' }))).toBe('voted');
    expect(modeOf(view({ decidable: false, not_eligible: 'separation of duties: …' }))).toBe('ineligible');
    // Voted and (now) not eligible: what the person did comes first.
    expect(modeOf(view({ decidable: false, your_vote: 'deny', not_eligible: 'x' }))).toBe('voted');
    for (const status of ['approved', 'denied', 'expired', 'revoked'] as const) expect(modeOf(view({ status, decidable: false }))).toBe('closed');
  });

  it('progress only for more than one approval', () => {
    expect(isQuorum(view({ approvals: { have: 0, need: 1 } }))).toBe(false);
    expect(isQuorum(view())).toBe(true);
    expect(progressText({ have: 1, need: 2 })).toBe('1 of 2 approvals');
    expect(progressText({ have: 0, need: 3 })).toBe('0 of 3 approvals');
  });

  it('what a vote that did not decide waits for', () => {
    expect(waitingText(view({ your_vote: 'approve', approvals: { have: 1, need: 2 }, votes: [{ who: 'a@x', vote: 'approve', at: AT }] }))).toBe('You approved. Waiting for 1 more approval.');
    expect(waitingText(view({ your_vote: 'approve', approvals: { have: 1, need: 3 } }))).toBe('You approved. Waiting for 2 more approvals.');
    // Deny by majority of 3: one denial so far.
    expect(waitingText(view({ your_vote: 'deny', approvals: { have: 1, need: 3 }, votes: [{ who: 'b@x', vote: 'approve', at: AT }, { who: 'a@x', vote: 'deny', at: AT }] }))).toBe(
      'You denied. Waiting for more votes: 2 more approvals approve it, 2 more denials deny it.',
    );
    expect(waitingText(view({ your_vote: 'deny', approvals: { have: 0, need: 2 }, votes: [{ who: 'a@x', vote: 'deny', at: AT }] }))).toBe(
      'You denied. Waiting for more votes: 2 more approvals approve it, 1 more denial denies it.',
    );
  });

  it('refused votes become sentences, by code', () => {
    expect(refusalText('ERR_ALREADY_VOTED', '3f1c… already voted on request req_x; one vote per person')).toBe(
      'You have already voted on this request. Each person votes once; your first vote is the one that counts.',
    );
    expect(refusalText('ERR_FORBIDDEN', "separation of duties: the agent's owner may not vote on its requests")).toBe(
      "Your vote was not accepted. Separation of duties: the agent's owner may not vote on its requests.",
    );
    expect(refusalText('ERR_FORBIDDEN', 'only members of "sre" may vote on this request')).toBe('Your vote was not accepted. Only members of "sre" may vote on this request.');
    expect(refusalText('ERR_ALREADY_DECIDED', 'x')).toBe('Someone else decided this request first.');
    expect(refusalText('ERR_EXPIRED', 'x')).toBe('The request expired before your decision was recorded.');
    expect(refusalText('ERR_INTERNAL', 'x')).toBeUndefined();
    expect(sentence('done!')).toBe('Done!');
    expect(sentence('  ')).toBe('');
  });

  it('vote times in the reader\'s zone, with the zone; "you" by email, case-insensitively', () => {
    expect(localWithZone(AT, 'en-US', 'America/New_York')).toBe('Jan 5, 2026, 3:04:05 PM EST');
    expect(localWithZone(AT, 'en-US', 'UTC')).toBe('Jan 5, 2026, 8:04:05 PM UTC');
    expect(isMine('Approver@Example.com', 'approver@example.com')).toBe(true);
    expect(isMine('operator:alice', 'alice@example.com')).toBe(false);
    expect(isMine('a@x', null)).toBe(false);
  });
});
