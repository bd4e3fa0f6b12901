import { AckdError, invalid } from './errors.ts';
import { parseAgentId, type AgentId } from './ids.ts';
import type { Clock, Logger } from './ports.ts';
import { ownerOf, type AgentStore } from './agents.ts';
import { permissionProblem } from './permission.ts';

/**
 * Approval policies: how many humans must approve an agent's request, who may vote, how denials
 * count, whether the agent's owner and the CLI may take part, which notification route is asked
 * first and which one if nobody decides in time. Policies are set at runtime
 * (`ackd policy set`) and matched against each request by agent id and permission.
 *
 * Everything in this file is pure except PolicyService, which only talks to its ports.
 */

/** One stored policy. `agent` + `permission` is its key: there is at most one policy per pair. */
export interface Policy {
  /** An agent id, or '*' for every agent. */
  readonly agent: string;
  /**
   * A permission pattern: permission characters where `*` matches any run of characters
   * (including none, and including a literal `*` in a permission), e.g. `deploy:*`, `*:prod`.
   * A pattern without `*` is exact. null: any permission.
   */
  readonly permission: string | null;
  /** Distinct humans who must approve: 1-5. */
  readonly approvals: number;
  /** Cognito groups whose members may vote (they must also be approvers); [] = any approver. */
  readonly approvers: readonly string[];
  /** any: the first denial decides. majority: see `tally`. */
  readonly deny: DenyRule;
  /** The agent's owner (`ackd agents create --owner`) may not vote on its requests. */
  readonly separation_of_duties: boolean;
  /** Whether CLI decisions (`ackd requests approve|deny --as`) count as votes. */
  readonly operator_decisions: boolean;
  /** The notification route (a name in ACKD_ROUTES) asked when a request is made; null: the deployment's default route. */
  readonly route: string | null;
  /** The route asked, once, if nobody has decided by `escalate_after` percent of the request's wait; null: no escalation. */
  readonly escalate_to: string | null;
  /** Percent of the request's TTL after which `escalate_to` is asked: an integer 10-90, default 50. Meaningful only with `escalate_to`. */
  readonly escalate_after: number;
  /** `required`: every decision on a request under this policy must be signed with the approver's passkey (core/passkeys.ts). Absent: not required by this policy. */
  readonly passkey?: 'required';
  readonly updated_at: string;
  /** `operator:<name>` of whoever set it. */
  readonly updated_by: string;
}

export type DenyRule = 'any' | 'majority';
export type PolicyInput = Omit<Policy, 'updated_at' | 'updated_by'>;

/**
 * The rule a request is decided under: one policy, or the strictest combination of several
 * (see resolvePolicy). `approver_groups` is a conjunction: a voter must be in at least one group
 * of EVERY list; [] lets any approver vote.
 */
export interface EffectivePolicy {
  readonly approvals: number;
  readonly approver_groups: readonly (readonly string[])[];
  readonly deny: DenyRule;
  readonly separation_of_duties: boolean;
  readonly operator_decisions: boolean;
  /** The routes asked when the request is made, sorted and unique; [] = the deployment's default route. */
  readonly routes: readonly string[];
  /** Who is asked if nobody has decided by `after_percent` of the request's wait; null: no escalation. */
  readonly escalation: Escalation | null;
  /** `required`: a decision must be signed with a passkey. Absent (not false) when not required, so rules without it read as before. */
  readonly passkey?: 'required';
}

export interface Escalation {
  /** The routes asked, sorted and unique (never empty). */
  readonly routes: readonly string[];
  /** Percent of the request's TTL: an integer 10-90. */
  readonly after_percent: number;
}

/** What a request gets when no policy matches one of its permissions: ackd's behaviour before policies. */
export const DEFAULT_POLICY: EffectivePolicy = Object.freeze({
  approvals: 1,
  approver_groups: [],
  deny: 'any',
  separation_of_duties: false,
  operator_decisions: true,
  routes: Object.freeze([]) as readonly string[],
  escalation: null,
});

export const POLICY_LIMITS = {
  approvalsMin: 1,
  approvalsMax: 5,
  approversMax: 10,
  groupMax: 128,
  patternMax: 128,
  operatorMax: 128,
  escalateAfterMin: 10,
  escalateAfterMax: 90,
  escalateAfterDefault: 50,
} as const;

// ---------------------------------------------------------------------------------------------
// Parsing: every value is checked once, here; a stored policy is parsed again when read.

const FIELDS = new Set(['agent', 'permission', 'approvals', 'approvers', 'deny', 'separation_of_duties', 'operator_decisions', 'route', 'escalate_to', 'escalate_after', 'passkey']);

/**
 * A Cognito group name as ackd accepts it: ASCII letters, digits and `_ + = . @ -`, 1-128
 * characters. A subset of what Cognito allows (any Unicode letter, mark, symbol, number or
 * punctuation): no look-alike letters, and no "," because groups are listed comma-separated.
 */
const GROUP = /^[A-Za-z0-9_+=.@-]{1,128}$/;
const GROUP_RULE = 'a group name is 1-128 characters of A-Z a-z 0-9 _ + = . @ -';

/**
 * A route name: the rule of ACKD_ROUTES (ROUTE_NAME in lambdas/adapters/channels/config.ts, kept
 * equal by a test; not imported, so the core does not load the channel adapters). Whether the
 * route is defined is known only where ACKD_ROUTES is (the functions that notify), not here.
 */
export const ROUTE_NAME = /^[a-z][a-z0-9-]{0,31}$/;
const ROUTE_RULE = 'must be a route name of ACKD_ROUTES: 1-32 lowercase letters, digits and dashes, starting with a letter';

/** `agent` of a policy: an agent id, or '*' for every agent. */
export function parsePolicyAgent(value: unknown, field = 'agent'): string {
  if (value === '*') return '*';
  try {
    return parseAgentId(value, field);
  } catch (e) {
    if (e instanceof AckdError) throw invalid(field, 'must be an agent id (1-64 characters of A-Z a-z 0-9 . _ -, not "." or "..") or "*" for every agent');
    throw e;
  }
}

/**
 * `permission` of a policy: null (any permission), or a pattern of 1-128 permission characters
 * (the rule of core/permission.ts, which already admits `*`) in which `*` is the wildcard.
 */
export function parsePermissionPattern(value: unknown, field = 'permission'): string | null {
  if (value === undefined || value === null) return null;
  const problem = permissionProblem(value);
  if (problem !== undefined) throw invalid(field, problem);
  const p = value as string;
  if (/^\*+$/.test(p)) throw invalid(field, 'a pattern of only "*" matches every permission: leave the permission out instead');
  if (p.includes('**')) throw invalid(field, '"**" matches the same as "*": write one "*"');
  return p;
}

/** Validates a policy's settings; unknown fields are refused, omitted ones take their defaults. */
export function parsePolicyInput(input: unknown): PolicyInput {
  return parsePolicy(input, false);
}

/**
 * Validates a policy as a store holds it: the rules of parsePolicyInput, except that a policy
 * without escalation may carry `escalate_after` at its default (every stored Policy has the
 * field). A policy stored before routes existed has no route, escalate_to or escalate_after and
 * reads as `route: null, escalate_to: null, escalate_after: 50`.
 */
export function parseStoredPolicyInput(input: unknown): PolicyInput {
  return parsePolicy(input, true);
}

function parsePolicy(input: unknown, stored: boolean): PolicyInput {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw invalid('policy', 'must be an object');
  const o = input as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!FIELDS.has(k)) throw invalid(k, 'is not a policy field');
  const agent = parsePolicyAgent(o.agent);
  const permission = parsePermissionPattern(o.permission);
  const approvals = parseApprovals(o.approvals);
  const approvers = parseApprovers(o.approvers);
  const deny = parseDeny(o.deny);
  const separation_of_duties = parseFlag(o.separation_of_duties, 'separation_of_duties', false);
  const operator_decisions = parseFlag(o.operator_decisions, 'operator_decisions', true);
  const route = parseRoute(o.route, 'route');
  const escalate_to = parseRoute(o.escalate_to, 'escalate_to');
  if (escalate_to !== null && escalate_to === route) throw invalid('escalate_to', `must differ from route: "${route}" is already asked first`);
  if (escalate_to === null && o.escalate_after !== undefined && !(stored && o.escalate_after === POLICY_LIMITS.escalateAfterDefault)) {
    throw invalid('escalate_after', 'needs escalate_to: it says when to escalate, and without escalate_to the policy does not escalate');
  }
  const escalate_after = parseEscalateAfter(o.escalate_after);
  const passkey = parsePasskey(o.passkey);
  return { agent, permission, approvals, approvers, deny, separation_of_duties, operator_decisions, route, escalate_to, escalate_after, ...(passkey ? { passkey } : {}) };
}

/** `passkey`: "required", or absent / null for "not required by this policy". */
function parsePasskey(v: unknown): 'required' | undefined {
  if (v === undefined || v === null) return undefined;
  if (v !== 'required') throw invalid('passkey', 'must be "required" (or left out: a passkey is then not required by this policy)');
  return v;
}

function parseRoute(v: unknown, field: string): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || !ROUTE_NAME.test(v)) throw invalid(field, ROUTE_RULE);
  return v;
}

function parseEscalateAfter(v: unknown): number {
  const { escalateAfterMin: min, escalateAfterMax: max, escalateAfterDefault } = POLICY_LIMITS;
  if (v === undefined) return escalateAfterDefault;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw invalid('escalate_after', `must be an integer percent of the request's wait from ${min} to ${max}`);
  return v;
}

function parseApprovals(v: unknown): number {
  const { approvalsMin: min, approvalsMax: max } = POLICY_LIMITS;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw invalid('approvals', `must be an integer from ${min} to ${max}`);
  return v;
}

function parseApprovers(v: unknown): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw invalid('approvers', 'must be a list of group names');
  if (v.length > POLICY_LIMITS.approversMax) throw invalid('approvers', `must name at most ${POLICY_LIMITS.approversMax} groups`);
  for (const g of v) {
    if (typeof g !== 'string' || !GROUP.test(g)) throw invalid('approvers', `${typeof g === 'string' ? JSON.stringify(g) : 'a non-string'} is not a group name; ${GROUP_RULE}`);
  }
  return [...new Set(v as string[])];
}

function parseDeny(v: unknown): DenyRule {
  if (v === undefined) return 'any';
  if (v !== 'any' && v !== 'majority') throw invalid('deny', 'must be "any" or "majority"');
  return v;
}

function parseFlag(v: unknown, field: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw invalid(field, 'must be true or false');
  return v;
}

/** Who changes policies: an operator on the CLI, by the name given with `--as`. */
export interface OperatorActor {
  readonly type: 'operator';
  readonly id: string;
}

/** `--as <name>`: 1-128 characters, no control characters (it is written to the audit log). */
export function parseOperator(value: unknown, field = 'as'): OperatorActor {
  if (typeof value !== 'string' || value.trim().length === 0) throw invalid(field, 'must name the operator');
  const id = value.trim();
  if (id.length > POLICY_LIMITS.operatorMax) throw invalid(field, `must be at most ${POLICY_LIMITS.operatorMax} characters`);
  if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(id)) throw invalid(field, 'must not contain control characters');
  return { type: 'operator', id };
}

/** The key of a policy: `<agent>#<permission>`, the permission empty for "any". Unambiguous: agent ids have no "#". */
export function policyKey(agent: string, permission: string | null): string {
  return `${agent}#${permission ?? ''}`;
}

// ---------------------------------------------------------------------------------------------
// Matching and resolution.

/**
 * Whether `pattern` matches `permission` (`*` = any run of characters). Iterative, with one
 * backtrack point: O(pattern × permission) at worst, never exponential like a naive regex.
 */
export function patternMatches(pattern: string, permission: string): boolean {
  let p = 0;
  let s = 0;
  let star = -1;
  let mark = 0;
  while (s < permission.length) {
    if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = s;
    } else if (p < pattern.length && pattern[p] === permission[s]) {
      p++;
      s++;
    } else if (star >= 0) {
      p = star + 1;
      s = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

function matches(policy: Pick<Policy, 'agent' | 'permission'>, agentId: string, permission: string): boolean {
  return (policy.agent === '*' || policy.agent === agentId) && (policy.permission === null || patternMatches(policy.permission, permission));
}

/**
 * How specific a policy is, compared left to right: an exact agent beats '*'; then an exact
 * permission beats a pattern, which beats "any permission"; then a pattern with more literal
 * (non-`*`) characters beats one with fewer.
 */
export function specificity(policy: Pick<Policy, 'agent' | 'permission'>): readonly [number, number, number] {
  const perm = policy.permission;
  const kind = perm === null ? 0 : perm.includes('*') ? 1 : 2;
  const literals = perm === null ? 0 : perm.replaceAll('*', '').length;
  return [policy.agent === '*' ? 0 : 1, kind, literals];
}

function compareSpecificity(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

export function toEffective(p: Omit<PolicyInput, 'agent' | 'permission'>): EffectivePolicy {
  return {
    approvals: p.approvals,
    approver_groups: p.approvers.length === 0 ? [] : [[...new Set(p.approvers)].sort()],
    deny: p.deny,
    separation_of_duties: p.separation_of_duties,
    operator_decisions: p.operator_decisions,
    routes: p.route === null ? [] : [p.route],
    escalation: p.escalate_to === null ? null : { routes: [p.escalate_to], after_percent: p.escalate_after },
    ...(p.passkey === 'required' ? { passkey: 'required' as const } : {}),
  };
}

/**
 * The strictest combination of several rules, field by field, so that no rule is weakened by
 * another: the most approvals; `any` if any says `any` (one denial decides); separation of
 * duties if any asks for it; operator decisions only if all allow them; and every approver
 * restriction at once (a voter must satisfy each). Picking one whole "strictest" policy instead
 * would drop the others' settings: 3 approvals from anyone would replace 1 approval that must
 * come from the `dba` group.
 *
 * Notification is combined toward asking more routes, sooner: every route any rule names (a rule
 * without a route, [], adds none: the default route is asked only when no rule names one), and,
 * when any rule escalates, every escalation route at the earliest share of the wait. Associative, so combining per permission and then across
 * permissions gives the same as combining every winner at once.
 */
export function strictest(rules: readonly EffectivePolicy[]): EffectivePolicy {
  if (rules.length === 0) return DEFAULT_POLICY;
  const escalations = rules.flatMap((r) => (r.escalation === null ? [] : [r.escalation]));
  return {
    approvals: Math.max(...rules.map((r) => r.approvals)),
    approver_groups: simplifyGroups(rules.flatMap((r) => r.approver_groups)),
    deny: rules.some((r) => r.deny === 'any') ? 'any' : 'majority',
    separation_of_duties: rules.some((r) => r.separation_of_duties),
    operator_decisions: rules.every((r) => r.operator_decisions),
    routes: sortedUnique(rules.flatMap((r) => r.routes)),
    escalation:
      escalations.length === 0 ? null : { routes: sortedUnique(escalations.flatMap((e) => e.routes)), after_percent: Math.min(...escalations.map((e) => e.after_percent)) },
    // A passkey is required if any rule requires one.
    ...(rules.some((r) => r.passkey === 'required') ? { passkey: 'required' as const } : {}),
  };
}

function sortedUnique(names: readonly string[]): string[] {
  return [...new Set(names)].sort();
}

/** Drops duplicate lists and lists implied by a smaller one (in a group of [a] ⇒ in a group of [a, b]). */
function simplifyGroups(lists: readonly (readonly string[])[]): string[][] {
  const sets = lists.map((l) => [...new Set(l)].sort());
  const kept = sets.filter((l, i) => !sets.some((m, j) => j !== i && m.every((g) => l.includes(g)) && (m.length < l.length || j < i)));
  return kept.sort((a, b) => a.join(',').localeCompare(b.join(',')));
}

export interface Resolution {
  /** The rule the request is decided under. */
  readonly policy: EffectivePolicy;
  /** Keys of the stored policies that decided some permission (sorted); [] = built-in default only. */
  readonly matched: readonly string[];
  /** For each distinct permission, the keys of its winning policies ([] = built-in default). */
  readonly per_permission: readonly { readonly permission: string; readonly policies: readonly string[] }[];
}

/**
 * Which rule a request of `agentId` for `permissions` is decided under.
 *
 * 1. For each permission, the most specific matching policy wins (see `specificity`); policies
 *    equally specific are all winners. A permission no policy matches gets the built-in default
 *    (DEFAULT_POLICY: 1 approval from any approver, one denial decides, as before policies): it
 *    acts as an implicit `agent '*'`, any-permission policy, so set one to change the default.
 * 2. The request takes the strictest combination of every permission's winners (`strictest`),
 *    so a dangerous permission in a mixed request is never diluted by a harmless one; it asks
 *    every route any winner names, and escalates to every winner's escalation route as early as
 *    the earliest of them.
 *
 * `policies` may hold policies that do not match (they are filtered here).
 */
export function resolvePolicy(policies: readonly Policy[], agentId: string, permissions: readonly string[]): Resolution {
  const perPermission = [...new Set(permissions)].map((permission) => {
    let best: Policy[] = [];
    let bestSpec: readonly number[] = [];
    for (const p of policies) {
      if (!matches(p, agentId, permission)) continue;
      const spec = specificity(p);
      const c = best.length === 0 ? 1 : compareSpecificity(spec, bestSpec);
      if (c > 0) {
        best = [p];
        bestSpec = spec;
      } else if (c === 0) {
        best.push(p);
      }
    }
    return { permission, winners: best };
  });
  const rules = perPermission.map(({ winners }) => (winners.length === 0 ? DEFAULT_POLICY : strictest(winners.map(toEffective))));
  const keyed = perPermission.map(({ permission, winners }) => ({ permission, policies: winners.map((p) => policyKey(p.agent, p.permission)).sort() }));
  return {
    policy: strictest(rules),
    matched: [...new Set(keyed.flatMap((k) => k.policies))].sort(),
    per_permission: keyed,
  };
}

// ---------------------------------------------------------------------------------------------
// Voting: who may vote, and when the votes decide.

export interface Vote {
  /** The voter's identity as recorded: a Cognito sub, or `operator:<name>`. */
  readonly voter: string;
  readonly vote: 'approve' | 'deny';
}

export type Outcome = 'approved' | 'denied' | 'pending';

/**
 * The outcome of `votes`, in the order they were cast (each voter's first vote counts; a
 * repeated voter is ignored, never counted twice). Replayed in order, the first vote that
 * decides decides, so a list that runs past its decision still gives that decision.
 *
 * - approved: `approvals` distinct humans approved.
 * - deny 'any': denied at the first denial.
 * - deny 'majority': denied once `approvals` distinct humans denied, the same quorum that is
 *   needed to approve. ackd does not know how many people may vote (groups change), so
 *   "majority" cannot mean a share of the electorate; it means the majority of 2N-1 voters
 *   (N = approvals): the request is decided as soon as either side has N votes, which no later
 *   votes could overturn. When that happens to the denials, they also outnumber the approvals
 *   (an approval count of N would already have decided), so "denials ≥ N and denials >
 *   approvals" holds. With N = 1 it is the same as 'any'. A pending request whose approvers
 *   never reach either quorum expires.
 */
export function tally(policy: Pick<EffectivePolicy, 'approvals' | 'deny'>, votes: readonly Vote[]): Outcome {
  const seen = new Set<string>();
  let approvals = 0;
  let denials = 0;
  for (const v of votes) {
    if (seen.has(v.voter)) continue;
    seen.add(v.voter);
    if (v.vote === 'approve') approvals++;
    else denials++;
    if (approvals >= policy.approvals) return 'approved';
    if (denials >= (policy.deny === 'any' ? 1 : policy.approvals)) return 'denied';
  }
  return 'pending';
}

/** Someone casting a vote: a signed-in approver (with the token's email and groups), or an operator on the CLI. */
export type Voter =
  | { readonly kind: 'approver'; readonly id: string; readonly email: string | null; readonly groups: readonly string[] }
  | { readonly kind: 'operator'; readonly id: string };

export type Eligibility = { readonly eligible: true } | { readonly eligible: false; readonly reason: string };

/**
 * Whether `voter` may vote on a request decided under `policy`, for an agent owned by `owner`
 * (null: no owner recorded). Approvers must be in a group of every `approver_groups` list.
 * Separation of duties compares emails case-insensitively and refuses an approver whose token
 * carries no email (it cannot be told apart from the owner). Operators have no groups: they
 * vote only when `operator_decisions` is on, and their `--as` name is self-declared, so
 * separation of duties can refuse only an operator who names the owner; turn operator
 * decisions off where that matters.
 */
export function voterEligibility(policy: EffectivePolicy, voter: Voter, owner: string | null): Eligibility {
  const isOwner = (email: string) => owner !== null && email.trim().toLowerCase() === owner.trim().toLowerCase();
  if (voter.kind === 'operator') {
    if (!policy.operator_decisions) return { eligible: false, reason: 'the policy of this request does not count operator decisions; an approver must decide in the consent UI' };
    if (policy.separation_of_duties && isOwner(voter.id)) return { eligible: false, reason: "separation of duties: the agent's owner may not vote on its requests" };
    return { eligible: true };
  }
  for (const groups of policy.approver_groups) {
    if (!groups.some((g) => voter.groups.includes(g))) return { eligible: false, reason: `only members of ${groups.map((g) => `"${g}"`).join(' or ')} may vote on this request` };
  }
  if (policy.separation_of_duties && owner !== null) {
    if (voter.email === null) return { eligible: false, reason: 'separation of duties: your sign-in carries no email, so it cannot be told apart from the agent owner' };
    if (isOwner(voter.email)) return { eligible: false, reason: "separation of duties: the agent's owner may not vote on its requests" };
  }
  return { eligible: true };
}

/** voterEligibility as a guard: ERR_FORBIDDEN with the reason when the voter may not vote. */
export function assertMayVote(policy: EffectivePolicy, voter: Voter, owner: string | null): void {
  const e = voterEligibility(policy, voter, owner);
  if (!e.eligible) throw new AckdError('ERR_FORBIDDEN', e.reason);
}

// ---------------------------------------------------------------------------------------------
// Ports and the service.

/**
 * Storage of policies. `put` and `remove` are single writes; `expectedUpdatedAt` makes them
 * conditional (null: the policy must not exist; a time: it must still carry that updated_at),
 * failing with ERR_CONFLICT and changing nothing. Stored policies that no longer validate are
 * refused on read (ERR_INTERNAL): a tampered policy fails closed instead of being skipped.
 */
export interface PolicyStore {
  put(policy: Policy, opts: { expectedUpdatedAt?: string | null }): Promise<{ previous: Policy | undefined }>;
  get(agent: string, permission: string | null): Promise<Policy | undefined>;
  /** Every policy (operators' tools: may scan). */
  list(): Promise<Policy[]>;
  remove(agent: string, permission: string | null, opts?: { expectedUpdatedAt?: string }): Promise<Policy | undefined>;
  /**
   * Every policy that could match a request of `agentId` for `permissions` (a superset is
   * fine; resolvePolicy filters). On the request path: reads by key, never a scan.
   */
  candidates(agentId: AgentId, permissions: readonly string[]): Promise<Policy[]>;
  /**
   * `candidates` and the agent's owner as its AgentStore holds it (null when none), read
   * together: one BatchGetItem on DynamoDB, where the agent record lives in the same table.
   * Optional; without it the two are read side by side.
   */
  candidatesWithOwner?(agentId: AgentId, permissions: readonly string[]): Promise<{ policies: Policy[]; owner: string | null }>;
}

export interface PolicyChange {
  readonly action: 'set' | 'removed';
  /** The policy as set, or as it was when removed. */
  readonly policy: Policy;
  /** What it replaced (set), or null. */
  readonly previous: Policy | null;
  readonly actor: OperatorActor;
}

/** Records policy changes in the audit log. A failure undoes the change (see PolicyService). */
export interface PolicyAudit {
  policyChanged(change: PolicyChange): Promise<void>;
}

/**
 * Runtime management of policies, and the resolution the lifecycle asks for at request time.
 * Every change is audited; a change whose audit fails is undone (a conditional write back to
 * what was there, so a newer change is never overwritten) and the error is thrown, so a policy
 * never stays in force without its audit record unless even the undo fails (logged as an error).
 */
export class PolicyService {
  constructor(private readonly deps: { store: PolicyStore; audit: PolicyAudit; clock: Clock; logger?: Logger }) {}

  async set(input: unknown, actor: OperatorActor, opts: { expectedUpdatedAt?: string | null } = {}): Promise<{ policy: Policy; previous: Policy | null }> {
    const parsed = parsePolicyInput(input);
    const who = parseOperator(actor.id);
    const policy: Policy = { ...parsed, updated_at: this.deps.clock.now().toISOString(), updated_by: `operator:${who.id}` };
    const { previous } = await this.deps.store.put(policy, opts);
    await this.audited({ action: 'set', policy, previous: previous ?? null, actor: who }, () =>
      previous ? this.deps.store.put(previous, { expectedUpdatedAt: policy.updated_at }) : this.deps.store.remove(policy.agent, policy.permission, { expectedUpdatedAt: policy.updated_at }),
    );
    return { policy, previous: previous ?? null };
  }

  async remove(agent: unknown, permission: unknown, actor: OperatorActor): Promise<Policy> {
    const a = parsePolicyAgent(agent);
    const p = parsePermissionPattern(permission);
    const who = parseOperator(actor.id);
    const removed = await this.deps.store.remove(a, p);
    if (!removed) throw notFound(a, p);
    await this.audited({ action: 'removed', policy: removed, previous: null, actor: who }, () => this.deps.store.put(removed, { expectedUpdatedAt: null }));
    return removed;
  }

  async show(agent: unknown, permission: unknown): Promise<Policy> {
    const a = parsePolicyAgent(agent);
    const p = parsePermissionPattern(permission);
    const found = await this.deps.store.get(a, p);
    if (!found) throw notFound(a, p);
    return found;
  }

  /** Every policy, by key ('*' policies first, then agents; "any permission" first within one). */
  async list(): Promise<Policy[]> {
    return (await this.deps.store.list()).sort((x, y) => comparePolicies(x, y));
  }

  /** The rule a request of this agent for these permissions is decided under (one batched read on DynamoDB, two with pattern policies). */
  async resolve(agentId: AgentId, permissions: readonly string[]): Promise<Resolution> {
    return resolvePolicy(await this.deps.store.candidates(agentId, permissions), agentId, permissions);
  }

  /**
   * `resolve` and the agent's owner in `agents` (null without it): what a new request's quorum is
   * made from. One batched read on DynamoDB when the store can read the owner with the policies.
   */
  async resolveWithOwner(agentId: AgentId, permissions: readonly string[], agents: AgentStore | undefined): Promise<{ resolution: Resolution; owner: string | null }> {
    const store = this.deps.store;
    if (agents && store.candidatesWithOwner) {
      const { policies, owner } = await store.candidatesWithOwner(agentId, permissions);
      return { resolution: resolvePolicy(policies, agentId, permissions), owner };
    }
    const [policies, owner] = await Promise.all([store.candidates(agentId, permissions), agents ? ownerOf(agents, agentId) : null]);
    return { resolution: resolvePolicy(policies, agentId, permissions), owner };
  }

  private async audited(change: PolicyChange, undo: () => Promise<unknown>): Promise<void> {
    try {
      await this.deps.audit.policyChanged(change);
    } catch (e) {
      try {
        await undo();
      } catch (undoError) {
        this.deps.logger?.error('policy change not audited and not undone', {
          policy_key: policyKey(change.policy.agent, change.policy.permission),
          action: change.action,
          error: undoError instanceof Error ? undoError.message : String(undoError),
        });
      }
      throw e;
    }
  }
}

/** The error of a conditional put/remove whose condition did not hold (every PolicyStore). */
export function policyConflict(key: string, expected: string | null): AckdError {
  return new AckdError(
    'ERR_CONFLICT',
    expected === null ? `policy: ${key} already exists` : `policy: ${key} was changed or removed since ${expected}; show it and try again`,
    { field: 'policy' },
  );
}

function notFound(agent: string, permission: string | null): AckdError {
  return new AckdError('ERR_NOT_FOUND', `policy: none for agent ${agent} and ${permission === null ? 'any permission' : `permission ${permission}`}`, { field: 'policy' });
}

export function comparePolicies(x: Pick<Policy, 'agent' | 'permission'>, y: Pick<Policy, 'agent' | 'permission'>): number {
  if (x.agent !== y.agent) return x.agent === '*' ? -1 : y.agent === '*' ? 1 : x.agent < y.agent ? -1 : 1;
  if (x.permission === y.permission) return 0;
  if (x.permission === null) return -1;
  if (y.permission === null) return 1;
  return x.permission < y.permission ? -1 : 1;
}
