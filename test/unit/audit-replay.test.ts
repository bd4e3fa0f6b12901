import { describe, expect, it } from 'vitest';
import { approvalProblem, auditEvent, chainEvent, GENESIS_HASH, snapshotOf, type Actor, type AuditEvent, type AuditEventType, type AuditSnapshot } from '../../lambdas/core/audit/event.ts';
import type { AgentId, RequestId, SvidId } from '../../lambdas/core/ids.ts';
import { ChainVerifier } from '../../lambdas/core/audit/verify.ts';
import { pendingRecord } from '../helpers/consent-fixtures.ts';

// The verifier replays each request: a chain whose hashes are all correct still fails when an
// event says what its request's lifecycle cannot (an SVID after a denial, a changed justification).
// These chains are what a table writer produces: the item is changed, and the next event linked
// after it records the change faithfully.

const T0 = Date.UTC(2026, 10, 1);
const at = (s: number) => new Date(T0 + s * 1000);
const AGENT: Actor = { type: 'agent', id: 'deploy-bot' };
const ALICE: Actor = { type: 'approver', id: 'sub-alice' };
const SYSTEM: Actor = { type: 'system', id: 'ackd' };

function base(i: number): AuditSnapshot {
  return snapshotOf(pendingRecord({ request_id: `req_${String(i).padStart(26, '0')}` as RequestId, agent_id: 'deploy-bot' as AgentId, requested_at: at(i).toISOString() }, at(i)));
}
const vote = (voter: string, v: 'approve' | 'deny', t: number) => ({ voter, email: null, vote: v, at: at(t).toISOString(), groups: [] });
const approved = (s: AuditSnapshot, t: number, who = 'sub-alice'): AuditSnapshot => ({
  ...s,
  decision: 'approved',
  approver_identity: who,
  decision_at: at(t).toISOString(),
  svid_expires_at: at(t + 900).toISOString(),
  votes: [...(s.votes ?? []), vote(who, 'approve', t)],
});
const denied = (s: AuditSnapshot, t: number): AuditSnapshot => ({ ...s, decision: 'denied', approver_identity: 'sub-alice', decision_at: at(t).toISOString(), votes: [...(s.votes ?? []), vote('sub-alice', 'deny', t)] });
const issued = (s: AuditSnapshot, svid: string): AuditSnapshot => ({ ...s, svid_id: svid as SvidId });

/** Chains `steps` from genesis (or after `startSeq`), one second apart. */
function chain(steps: [AuditEventType, Actor, AuditSnapshot][], startSeq = 0): AuditEvent[] {
  let prev = { seq: startSeq, hash: startSeq === 0 ? GENESIS_HASH : 'a'.repeat(64), logged_at: null as string | null };
  return steps.map(([type, actor, snap], i) => {
    const e = chainEvent(auditEvent(type, actor, at(100 + i)), snap, prev, at(100 + i));
    prev = { seq: e.seq, hash: e.hash, logged_at: e.logged_at };
    return e;
  });
}

function verify(events: AuditEvent[]) {
  const v = new ChainVerifier();
  for (const e of events) v.addEvent(structuredClone(e));
  return v.finish();
}

describe('per-request replay in the audit verifier', () => {
  it('an intact lifecycle passes: requested, email, approved, issued, revoked', () => {
    const r = base(1);
    const a = approved(r, 102);
    const report = verify(
      chain([
        ['requested', AGENT, r],
        ['email_sent', SYSTEM, r],
        ['approved', ALICE, a],
        ['svid_issued', AGENT, issued(a, 'ab01')],
        ['revoked', AGENT, { ...issued(a, 'ab01'), revoked: true, revoked_at: at(200).toISOString() }],
      ]),
    );
    expect(report.problems).toEqual([]);
    expect(report.svids_issued).toBe(1);
  });

  it('a denial flipped to an approval in the table: the SVID event after the denial fails', () => {
    const r = base(1);
    const d = denied(r, 102);
    const forged = { ...d, decision: 'approved' as const, approver_identity: 'operator:forged', svid_expires_at: at(2000).toISOString() };
    const report = verify(
      chain([
        ['requested', AGENT, r],
        ['email_sent', SYSTEM, r],
        ['denied', ALICE, d],
        ['svid_issued', AGENT, issued(forged, 'ab02')],
      ]),
    );
    expect(report.ok).toBe(false);
    expect(report.problems).toContainEqual(expect.objectContaining({ kind: 'svid', seq: 4 }));
    expect(report.problems.find((p) => p.kind === 'svid')!.message).toContain('no approval of the request precedes it');
  });

  it('an SVID after an expiry, or with no decision at all, fails', () => {
    const r = base(1);
    const expired = { ...r, decision: 'expired' as const, decision_at: at(900).toISOString() };
    const forged = approved(r, 901, 'operator:forged');
    const afterExpiry = verify(chain([['requested', AGENT, r], ['expired', SYSTEM, expired], ['svid_issued', AGENT, issued(forged, 'ab03')]]));
    expect(afterExpiry.problems).toContainEqual(expect.objectContaining({ kind: 'svid', seq: 3 }));
    const undecided = verify(chain([['requested', AGENT, r], ['svid_issued', AGENT, issued(forged, 'ab04')]]));
    expect(undecided.problems).toContainEqual(expect.objectContaining({ kind: 'svid', seq: 2 }));
  });

  it('a second SVID for one request fails', () => {
    const r = base(1);
    const a = approved(r, 102);
    const report = verify(chain([['requested', AGENT, r], ['approved', ALICE, a], ['svid_issued', AGENT, issued(a, 'ab05')], ['svid_issued', AGENT, issued(a, 'ab06')]]));
    expect(report.problems).toContainEqual(expect.objectContaining({ kind: 'svid', seq: 4 }));
  });

  it('a justification or approver changed on the item surfaces at the next event of the request', () => {
    const r = base(1);
    const a = approved(r, 102);
    const justification = verify(chain([['requested', AGENT, r], ['email_sent', SYSTEM, { ...r, justification: 'rewritten after the fact' }]]));
    expect(justification.problems).toContainEqual(expect.objectContaining({ kind: 'lifecycle', seq: 2 }));
    const approver = verify(chain([['requested', AGENT, r], ['approved', ALICE, a], ['refused', ALICE, { ...a, approver_identity: 'sub-mallory' }]]));
    expect(approver.problems).toContainEqual(expect.objectContaining({ kind: 'lifecycle', seq: 3 }));
    expect(approver.problems[0]!.message).toContain('approver_identity changed');
  });

  it('a second decision of one request fails', () => {
    const r = base(1);
    const report = verify(chain([['requested', AGENT, r], ['denied', ALICE, denied(r, 101)], ['approved', ALICE, approved(r, 102)]]));
    expect(report.problems).toContainEqual(expect.objectContaining({ kind: 'lifecycle', seq: 3 }));
  });

  it('a window that starts after a request was made accepts its SVID without its approval, but not a request made inside the window', () => {
    // The file starts at seq 11 (unanchored): request 1 began before it; request 2 inside it.
    const old = approved(base(1), 50);
    const fresh = base(700);
    const report = verify(
      chain(
        [
          ['svid_issued', AGENT, issued(old, 'ab07')],
          ['requested', AGENT, fresh],
          ['svid_issued', AGENT, issued(approved(fresh, 701), 'ab08')],
        ],
        10,
      ),
    );
    expect(report.start).toBe('unanchored');
    expect(report.problems.map((p) => p.seq)).toEqual([13]);
  });
});

describe('approvalProblem: issuance needs the chain\'s approval of the request as it stands', () => {
  const r = base(1);
  const a = approved(r, 102);
  const [requestedEvent, approvedEvent, , deniedEvent] = chain([['requested', AGENT, r], ['approved', ALICE, a], ['requested', AGENT, base(2)], ['denied', ALICE, denied(base(2), 103)]]);

  it('accepts the intact approval of the same request', () => {
    expect(approvalProblem(a, approvedEvent, requestedEvent, [approvedEvent])).toBeNull();
    expect(approvalProblem(a, approvedEvent, requestedEvent, [])).toContain('1 votes, but the audit log holds 0 vote events');
    expect(approvalProblem(a, approvedEvent, requestedEvent, [requestedEvent])).toContain('not recorded in an intact vote event');
  });

  it('refuses no event, another decision, a changed event or a changed item', () => {
    expect(approvalProblem(a, undefined, requestedEvent)).toContain('records no decision');
    expect(approvalProblem(a, deniedEvent, requestedEvent)).toContain('not approved');
    expect(approvalProblem(a, { ...approvedEvent!, approver_identity: 'operator:forged' })).toContain('does not match its hash');
    expect(approvalProblem({ ...a, approver_identity: 'operator:forged' }, approvedEvent, requestedEvent)).toContain('approver_identity differs');
    expect(approvalProblem({ ...a, svid_expires_at: at(99_999).toISOString() }, approvedEvent, requestedEvent)).toContain('svid_expires_at differs');
    expect(approvalProblem({ ...a, permissions: ['*'] }, approvedEvent, requestedEvent)).toContain('permissions differs');
    expect(approvalProblem({ ...a, request_id: base(2).request_id }, approvedEvent, requestedEvent)).toContain('request_id differs');
    expect(approvalProblem(a, approvedEvent)).toContain('no request event');
    expect(approvalProblem(a, approvedEvent, approvedEvent)).toContain('no request event');
  });
});
