import type { VotePasskey } from './passkeys.ts';
import { DEFAULT_POLICY, tally, voterEligibility, type EffectivePolicy, type Outcome, type Resolution, type Voter } from './policy.ts';

/**
 * What a request is decided under, fixed when it is made: the effective policy, the agent's
 * owner at that moment, and the policies it came from. A policy or owner changed later never
 * changes a pending request; the audit log records the quorum with every event, so a verifier
 * checks each SVID against the rule it was approved under.
 */
export interface Quorum extends EffectivePolicy {
  /** The agent's owner (email) when the request was made; null when none was recorded. */
  readonly owner: string | null;
  /** Keys of the stored policies the rule came from; [] = the built-in default. */
  readonly policies: readonly string[];
}

/** One human's vote, as recorded on the request and in its audit events. */
export interface CastVote {
  /** Cognito sub, or `operator:<name>` for a CLI decision (the form of approver_identity). */
  readonly voter: string;
  readonly email: string | null;
  readonly vote: 'approve' | 'deny';
  readonly at: string;
  /** The voter's Cognito groups when voting (what made the vote eligible); [] for operators. */
  readonly groups: readonly string[];
  /** The passkey assertion that signed this vote, raw, with the view hash its challenge covered (core/passkeys.ts); absent without one. */
  readonly passkey?: VotePasskey;
}

/** A request made before quorums: decided by its first vote, as before. */
export const LEGACY_QUORUM: Quorum = { ...DEFAULT_POLICY, owner: null, policies: [] };

export function quorumOf(resolution: Pick<Resolution, 'policy' | 'matched'>, owner: string | null): Quorum {
  const p = resolution.policy;
  return {
    approvals: p.approvals,
    approver_groups: p.approver_groups.map((g) => [...g]),
    deny: p.deny,
    separation_of_duties: p.separation_of_duties,
    operator_decisions: p.operator_decisions,
    routes: [...p.routes],
    escalation: p.escalation === null ? null : { routes: [...p.escalation.routes], after_percent: p.escalation.after_percent },
    ...(p.passkey === 'required' ? { passkey: 'required' as const } : {}),
    owner,
    policies: [...resolution.matched],
  };
}

/** The voter a recorded vote (or a decision's approver_identity) stands for. */
export function voterOf(v: Pick<CastVote, 'voter' | 'email' | 'groups'>): Voter {
  return v.voter.startsWith('operator:') ? { kind: 'operator', id: v.voter.slice('operator:'.length) } : { kind: 'approver', id: v.voter, email: v.email, groups: [...v.groups] };
}

/** Approval progress: distinct approvals so far, and how many decide. */
export function approvalsOf(r: { readonly quorum?: Quorum | null; readonly votes?: readonly CastVote[] }): { have: number; need: number } {
  const votes = r.votes ?? [];
  const approvers = new Set(votes.filter((v) => v.vote === 'approve').map((v) => v.voter));
  return { have: approvers.size, need: (r.quorum ?? LEGACY_QUORUM).approvals };
}

/** What the votes decide under the request's quorum. */
export function outcomeOf(quorum: Quorum | null | undefined, votes: readonly CastVote[]): Outcome {
  return tally(quorum ?? LEGACY_QUORUM, votes);
}

/**
 * Why the votes recorded on an approved request do not make its approval (null when they do):
 * enough distinct approvals, each by a voter eligible under the request's quorum. A request
 * from before quorums (no quorum, no votes) is approved by its one approver, as it was.
 */
export function quorumProblem(r: { readonly quorum?: Quorum | null; readonly votes?: readonly CastVote[]; readonly approver_identity: string | null }): string | null {
  const quorum = r.quorum ?? null;
  const votes = r.votes ?? [];
  if (quorum === null && votes.length === 0) return r.approver_identity ? null : 'it names no approver';
  const q = quorum ?? LEGACY_QUORUM;
  const seen = new Set<string>();
  for (const v of votes) {
    if (seen.has(v.voter)) return `${v.voter} voted twice`;
    seen.add(v.voter);
    const e = voterEligibility(q, voterOf(v), q.owner);
    if (!e.eligible) return `the vote of ${v.voter} does not count: ${e.reason}`;
  }
  if (outcomeOf(q, votes) !== 'approved') {
    const { have, need } = approvalsOf({ quorum: q, votes });
    return `it has ${have} of the ${need} approvals its quorum needs`;
  }
  return null;
}

/** Why a request asks the approver: the rule it is decided under, in words. */
export function describeQuorum(q: Quorum): string {
  const from = q.approver_groups.length === 0 ? 'approvers' : `approvers in ${q.approver_groups.map((g) => g.map((x) => `"${x}"`).join(' or ')).join(' and in ')}`;
  const rule = `needs ${q.approvals === 1 ? 'one approval' : `${q.approvals} approvals from different people`} from ${from}`;
  const deny = q.approvals > 1 ? (q.deny === 'any' ? '; one denial denies it' : `; ${q.approvals} denials deny it`) : '';
  const sod = q.separation_of_duties ? "; the agent's owner may not vote" : '';
  const source = q.policies.length === 0 ? 'This request' : `By the policy for ${q.policies.map(policyName).join('; ')}, this request`;
  return `${source} ${rule}${deny}${sod}.`;
}

/** A policy key (`<agent>#<permission>`) in words: "demo-agent, any permission", "every agent, deploy:*". */
function policyName(key: string): string {
  const i = key.indexOf('#');
  const agent = key.slice(0, i);
  const permission = key.slice(i + 1);
  return `${agent === '*' ? 'every agent' : agent}, ${permission === '' ? 'any permission' : permission}`;
}
