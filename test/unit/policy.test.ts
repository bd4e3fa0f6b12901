import { describe, expect, it } from 'vitest';
import { isAckdError } from '../../lambdas/core/errors.ts';
import { parseAgentId } from '../../lambdas/core/ids.ts';
import {
  DEFAULT_POLICY,
  PolicyService,
  ROUTE_NAME,
  assertMayVote,
  parsePolicyInput,
  parseStoredPolicyInput,
  patternMatches,
  resolvePolicy,
  strictest,
  tally,
  toEffective,
  voterEligibility,
  type EffectivePolicy,
  type Policy,
  type PolicyInput,
  type Vote,
} from '../../lambdas/core/policy.ts';
import { recordOwner, ownerOf } from '../../lambdas/core/agents.ts';
import { MemoryPolicyAudit, MemoryPolicyStore } from '../../lambdas/adapters/memory/policies.ts';
import { MemoryAgentStore } from '../../lambdas/adapters/memory/agents.ts';
import { ManualClock } from '../helpers/clock.ts';
import { ROUTE_NAME as CHANNELS_ROUTE_NAME } from '../../lambdas/adapters/channels/config.ts';

const agent = parseAgentId('deployer');

function policy(over: Partial<PolicyInput> & Pick<PolicyInput, 'agent'>): Policy {
  return {
    permission: null,
    approvals: 1,
    approvers: [],
    deny: 'any',
    separation_of_duties: false,
    operator_decisions: true,
    route: null,
    escalate_to: null,
    escalate_after: 50,
    updated_at: '2026-11-21T12:00:00.000Z',
    updated_by: 'operator:test',
    ...over,
  };
}

function fieldError(fn: () => unknown): { code: string; field: string | undefined; message: string } {
  try {
    fn();
  } catch (e) {
    if (isAckdError(e)) return { code: e.code, field: e.field, message: e.message };
    throw e;
  }
  throw new Error('expected an error');
}

describe('parsePolicyInput', () => {
  it('fills the defaults (today’s behaviour) and keeps what is given', () => {
    expect(parsePolicyInput({ agent: '*', approvals: 1 })).toEqual({
      agent: '*',
      permission: null,
      approvals: 1,
      approvers: [],
      deny: 'any',
      separation_of_duties: false,
      operator_decisions: true,
      route: null,
      escalate_to: null,
      escalate_after: 50,
    });
    expect(
      parsePolicyInput({
        agent: 'deployer',
        permission: 'deploy:*',
        approvals: 3,
        approvers: ['sre', 'ops', 'sre'],
        deny: 'majority',
        separation_of_duties: true,
        operator_decisions: false,
        route: 'sre',
        escalate_to: 'oncall',
        escalate_after: 30,
      }),
    ).toEqual({
      agent: 'deployer',
      permission: 'deploy:*',
      approvals: 3,
      approvers: ['sre', 'ops'],
      deny: 'majority',
      separation_of_duties: true,
      operator_decisions: false,
      route: 'sre',
      escalate_to: 'oncall',
      escalate_after: 30,
    });
    // escalate_after defaults to 50 once there is somewhere to escalate to; null is the same as left out
    expect(parsePolicyInput({ agent: '*', approvals: 1, route: null, escalate_to: 'oncall' })).toMatchObject({ route: null, escalate_to: 'oncall', escalate_after: 50 });
  });

  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    ['agent with a slash', { agent: 'bad/agent' }, 'agent', /agent id .* or "\*"/],
    ['agent ".."', { agent: '..' }, 'agent', /agent id/],
    ['agent missing', { agent: undefined }, 'agent', /agent id/],
    ['agent too long', { agent: 'a'.repeat(65) }, 'agent', /1-64/],
    ['permission with a comma', { permission: 'a,b' }, 'permission', /"," \(U\+002C\).*A-Z a-z 0-9/],
    ['permission empty', { permission: '' }, 'permission', /must not be empty/],
    ['permission too long', { permission: 'p'.repeat(129) }, 'permission', /at most 128/],
    ['permission only "*"', { permission: '*' }, 'permission', /leave the permission out/],
    ['permission "**"', { permission: 'deploy:**' }, 'permission', /write one "\*"/],
    ['permission not ASCII', { permission: 'dеploy' }, 'permission', /U\+0435/],
    ['approvals 0', { approvals: 0 }, 'approvals', /integer from 1 to 5/],
    ['approvals 6', { approvals: 6 }, 'approvals', /integer from 1 to 5/],
    ['approvals 2.5', { approvals: 2.5 }, 'approvals', /integer from 1 to 5/],
    ['approvals as text', { approvals: '2' }, 'approvals', /integer from 1 to 5/],
    ['approvals missing', { approvals: undefined }, 'approvals', /integer from 1 to 5/],
    ['approvers not a list', { approvers: 'sre' }, 'approvers', /list of group names/],
    ['11 approver groups', { approvers: Array.from({ length: 11 }, (_, i) => `g${i}`) }, 'approvers', /at most 10/],
    ['group with a comma', { approvers: ['sre,ops'] }, 'approvers', /"sre,ops" is not a group name/],
    ['group with a space', { approvers: ['on call'] }, 'approvers', /is not a group name/],
    ['group empty', { approvers: [''] }, 'approvers', /"" is not a group name/],
    ['group too long', { approvers: ['g'.repeat(129)] }, 'approvers', /1-128 characters/],
    ['group not a string', { approvers: [3] }, 'approvers', /a non-string is not a group name/],
    ['deny "all"', { deny: 'all' }, 'deny', /"any" or "majority"/],
    ['separation_of_duties "yes"', { separation_of_duties: 'yes' }, 'separation_of_duties', /true or false/],
    ['operator_decisions 0', { operator_decisions: 0 }, 'operator_decisions', /true or false/],
    ['an unknown field', { approval: 2 }, 'approval', /is not a policy field/],
    ['route with a capital', { route: 'Oncall' }, 'route', /route name of ACKD_ROUTES: 1-32 lowercase letters, digits and dashes, starting with a letter/],
    ['route starting with a digit', { route: '1st-line' }, 'route', /starting with a letter/],
    ['route with an underscore', { route: 'on_call' }, 'route', /route name/],
    ['route empty', { route: '' }, 'route', /route name/],
    ['route of 33 characters', { route: `r${'o'.repeat(32)}` }, 'route', /1-32/],
    ['route not a string', { route: 7 }, 'route', /route name/],
    ['escalate_to with a space', { escalate_to: 'on call' }, 'escalate_to', /route name of ACKD_ROUTES/],
    ['escalate_to a list', { escalate_to: ['oncall'] }, 'escalate_to', /route name/],
    ['escalate_to the route asked first', { route: 'oncall', escalate_to: 'oncall' }, 'escalate_to', /must differ from route: "oncall" is already asked first/],
    ['escalate_after without escalate_to', { escalate_after: 30 }, 'escalate_after', /needs escalate_to/],
    ['escalate_after (even the default) without escalate_to', { route: 'sre', escalate_after: 50 }, 'escalate_after', /needs escalate_to/],
    ['escalate_after 9', { escalate_to: 'oncall', escalate_after: 9 }, 'escalate_after', /integer percent .* from 10 to 90/],
    ['escalate_after 91', { escalate_to: 'oncall', escalate_after: 91 }, 'escalate_after', /from 10 to 90/],
    ['escalate_after 50.5', { escalate_to: 'oncall', escalate_after: 50.5 }, 'escalate_after', /integer percent/],
    ['escalate_after as text', { escalate_to: 'oncall', escalate_after: '50' }, 'escalate_after', /integer percent/],
    ['escalate_after null', { escalate_to: 'oncall', escalate_after: null }, 'escalate_after', /integer percent/],
  ];
  it.each(cases)('refuses %s, naming the field', (_name, over, field, rule) => {
    const err = fieldError(() => parsePolicyInput({ agent: 'deployer', approvals: 2, ...over }));
    expect(err.code).toBe('ERR_INVALID_INPUT');
    expect(err.field).toBe(field);
    expect(err.message.startsWith(`${field}: `)).toBe(true);
    expect(err.message).toMatch(rule);
  });

  it('accepts 10 groups, 128-character groups and patterns, and Cognito-style names', () => {
    const groups = [...Array.from({ length: 9 }, (_, i) => `g${i}`), 'a'.repeat(128)];
    expect(parsePolicyInput({ agent: '*', approvals: 5, approvers: groups }).approvers).toHaveLength(10);
    expect(parsePolicyInput({ agent: '*', approvals: 1, approvers: ['team_a+b=c.d@e-f'] }).approvers).toEqual(['team_a+b=c.d@e-f']);
    expect(parsePolicyInput({ agent: '*', approvals: 1, permission: `${'p'.repeat(127)}*` }).permission).toHaveLength(128);
  });

  it('accepts route names at the edges of the rule, and escalate_after from 10 to 90', () => {
    const longest = `r${'-9'.repeat(15)}z`;
    expect(longest).toHaveLength(32);
    expect(parsePolicyInput({ agent: '*', approvals: 1, route: 'a', escalate_to: longest, escalate_after: 10 })).toMatchObject({ route: 'a', escalate_to: longest, escalate_after: 10 });
    expect(parsePolicyInput({ agent: '*', approvals: 1, escalate_to: 'default', escalate_after: 90 })).toMatchObject({ route: null, escalate_to: 'default', escalate_after: 90 });
  });

  it('route names follow the rule of ACKD_ROUTES exactly', () => {
    expect(ROUTE_NAME.source).toBe(CHANNELS_ROUTE_NAME.source);
    expect(ROUTE_NAME.flags).toBe(CHANNELS_ROUTE_NAME.flags);
  });
});

describe('parseStoredPolicyInput', () => {
  const old = { agent: 'deployer', permission: 'deploy:*', approvals: 2, approvers: ['sre'], deny: 'any', separation_of_duties: false, operator_decisions: true };

  it('a policy stored before routes existed reads as the default route without escalation', () => {
    expect(parseStoredPolicyInput(old)).toEqual({ ...old, route: null, escalate_to: null, escalate_after: 50 });
    // as the DynamoDB store hands it over: absent attributes as null / undefined
    expect(parseStoredPolicyInput({ ...old, route: null, escalate_to: null, escalate_after: undefined })).toEqual({ ...old, route: null, escalate_to: null, escalate_after: 50 });
  });

  it('accepts what ackd writes (escalate_after 50 without escalate_to), which new input may not say', () => {
    const written = { ...old, route: 'sre', escalate_to: null, escalate_after: 50 };
    expect(parseStoredPolicyInput(written)).toEqual(written);
    expect(fieldError(() => parsePolicyInput(written)).message).toMatch(/^escalate_after: needs escalate_to/);
  });

  it('refuses a stored policy ackd would not have written', () => {
    expect(fieldError(() => parseStoredPolicyInput({ ...old, escalate_after: 30 }))).toMatchObject({ field: 'escalate_after', message: expect.stringMatching(/needs escalate_to/) });
    expect(fieldError(() => parseStoredPolicyInput({ ...old, route: 'Bad Route' }))).toMatchObject({ field: 'route' });
    expect(fieldError(() => parseStoredPolicyInput({ ...old, escalate_to: 'x', escalate_after: 95 }))).toMatchObject({ field: 'escalate_after' });
    expect(fieldError(() => parseStoredPolicyInput({ ...old, route: 'x', escalate_to: 'x' }))).toMatchObject({ field: 'escalate_to' });
    expect(fieldError(() => parseStoredPolicyInput({ ...old, approvals: 0 }))).toMatchObject({ field: 'approvals' });
  });
});

describe('patternMatches', () => {
  it.each([
    ['deploy:*', 'deploy:prod', true],
    ['deploy:*', 'deploy:', true],
    ['deploy:*', 'deploy', false],
    ['deploy:*', 'xdeploy:prod', false],
    ['*:prod', 'db:prod', true],
    ['*:prod', 'db:prod2', false],
    ['a*b*c', 'aXXbYYc', true],
    ['a*b*c', 'acb', false],
    ['a*b*c', 'abcabc', true],
    ['db:write', 'db:write', true],
    ['db:write', 'db:writer', false],
    ['s3:*', 's3:GetObject/*', true],
    ['s3:GetObject/*', 's3:GetObject/*', true],
  ])('%s ~ %s → %s', (pattern, permission, expected) => {
    expect(patternMatches(pattern, permission)).toBe(expected);
  });

  it('stays linear on patterns that make a backtracking regex explode', () => {
    const pattern = `${'a*'.repeat(60)}b`;
    const permission = 'a'.repeat(128);
    const t0 = performance.now();
    expect(patternMatches(pattern, permission)).toBe(false);
    expect(performance.now() - t0).toBeLessThan(100);
  });
});

describe('resolvePolicy', () => {
  it('no policy: the built-in default, which is today’s behaviour', () => {
    const r = resolvePolicy([], agent, ['deploy:prod']);
    expect(r.policy).toEqual({ approvals: 1, approver_groups: [], deny: 'any', separation_of_duties: false, operator_decisions: true, routes: [], escalation: null });
    expect(r.policy).toEqual(DEFAULT_POLICY);
    expect(r.matched).toEqual([]);
    expect(r.per_permission).toEqual([{ permission: 'deploy:prod', policies: [] }]);
  });

  it('ignores other agents’ policies and non-matching patterns', () => {
    const r = resolvePolicy([policy({ agent: 'other', approvals: 5 }), policy({ agent: '*', permission: 'db:*', approvals: 4 })], agent, ['deploy:prod']);
    expect(r.policy.approvals).toBe(1);
    expect(r.matched).toEqual([]);
  });

  it('the most specific policy wins per permission: exact agent, then exact permission, then more literal characters, then any pattern over none', () => {
    const ladder = [
      policy({ agent: '*', approvals: 5 }), // any agent, any permission
      policy({ agent: '*', permission: 'deploy:prod', approvals: 4 }), // any agent, exact permission
      policy({ agent: 'deployer', approvals: 3 }), // exact agent, any permission: beats everything for '*'
      policy({ agent: 'deployer', permission: '*:prod', approvals: 2 }), // pattern, 5 literals
      policy({ agent: 'deployer', permission: 'deploy:*', approvals: 1, approvers: ['sre'] }), // pattern, 7 literals
    ];
    // Each step removes the current winner and shows the next one takes over.
    const winners: string[] = [];
    let left = [...ladder];
    while (left.length > 0) {
      const r = resolvePolicy(left, agent, ['deploy:prod']);
      expect(r.matched).toHaveLength(1);
      winners.push(r.matched[0]!);
      left = left.filter((p) => `${p.agent}#${p.permission ?? ''}` !== r.matched[0]);
    }
    expect(winners).toEqual(['deployer#deploy:*', 'deployer#*:prod', 'deployer#', '*#deploy:prod', '*#']);
    // an exact permission beats a pattern of the same agent scope
    expect(resolvePolicy([...ladder, policy({ agent: 'deployer', permission: 'deploy:prod', approvals: 1 })], agent, ['deploy:prod']).matched).toEqual(['deployer#deploy:prod']);
  });

  it('equally specific winners are combined, not chosen between', () => {
    const r = resolvePolicy([policy({ agent: '*', permission: 'db*', approvals: 2 }), policy({ agent: '*', permission: '*db', approvals: 1, deny: 'any', separation_of_duties: true, approvers: ['dba'] })], agent, ['dbdb']);
    expect(r.matched).toEqual(['*#*db', '*#db*']);
    expect(r.policy).toMatchObject({ approvals: 2, separation_of_duties: true, approver_groups: [['dba']] });
  });

  it('a mixed request takes the strictest of its permissions’ winners, field by field', () => {
    const policies = [
      policy({ agent: '*', permission: 'deploy:*', approvals: 3, deny: 'majority', approvers: ['sre', 'ops'] }),
      policy({ agent: '*', permission: 'db:write', approvals: 1, approvers: ['dba'], separation_of_duties: true, operator_decisions: false }),
      policy({ agent: '*', permission: 'read:*', approvals: 1, deny: 'majority' }),
    ];
    const r = resolvePolicy(policies, agent, ['deploy:prod', 'db:write', 'read:logs']);
    expect(r.policy).toEqual({ approvals: 3, approver_groups: [['dba'], ['ops', 'sre']], deny: 'any', separation_of_duties: true, operator_decisions: false, routes: [], escalation: null }); // db:write says any
    expect(r.matched).toEqual(['*#db:write', '*#deploy:*', '*#read:*']);
    // The harmless permission alone is not made stricter by the others
    expect(resolvePolicy(policies, agent, ['read:logs']).policy).toEqual({ ...DEFAULT_POLICY, deny: 'majority' });
  });

  it('a permission no policy matches brings the default into the combination (one denial decides)', () => {
    const policies = [policy({ agent: '*', permission: 'deploy:*', approvals: 2, deny: 'majority' })];
    const r = resolvePolicy(policies, agent, ['deploy:prod', 'unrelated']);
    expect(r.policy).toMatchObject({ approvals: 2, deny: 'any' });
    expect(r.per_permission).toEqual([
      { permission: 'deploy:prod', policies: ['*#deploy:*'] },
      { permission: 'unrelated', policies: [] },
    ]);
    // A catch-all policy replaces the default for every permission
    const withCatchAll = resolvePolicy([...policies, policy({ agent: '*', approvals: 1, deny: 'majority' })], agent, ['deploy:prod', 'unrelated']);
    expect(withCatchAll.policy).toMatchObject({ approvals: 2, deny: 'majority' });
  });

  it('a mixed request asks every route its winners name and escalates to all of theirs, as early as the earliest', () => {
    const policies = [
      policy({ agent: '*', permission: 'deploy:*', route: 'sre', escalate_to: 'oncall', escalate_after: 70 }),
      policy({ agent: '*', permission: 'db:*', route: 'dba', escalate_to: 'leads', escalate_after: 30 }),
      policy({ agent: '*', permission: 'read:*', approvals: 1 }), // default route, no escalation
      policy({ agent: '*', permission: 'cache:*', route: 'sre' }), // a route without escalation
    ];
    expect(resolvePolicy(policies, agent, ['deploy:prod', 'db:write', 'read:logs']).policy).toMatchObject({ routes: ['dba', 'sre'], escalation: { routes: ['leads', 'oncall'], after_percent: 30 } });
    // each alone keeps its own
    expect(resolvePolicy(policies, agent, ['deploy:prod']).policy).toMatchObject({ routes: ['sre'], escalation: { routes: ['oncall'], after_percent: 70 } });
    expect(resolvePolicy(policies, agent, ['read:logs']).policy).toMatchObject({ routes: [], escalation: null });
    // a winner that names no route adds none, and one that does not escalate does not cancel another's escalation
    expect(resolvePolicy(policies, agent, ['read:logs', 'deploy:prod']).policy).toMatchObject({ routes: ['sre'], escalation: { routes: ['oncall'], after_percent: 70 } });
    // a route named twice is asked once
    expect(resolvePolicy(policies, agent, ['cache:x', 'deploy:prod']).policy).toMatchObject({ routes: ['sre'], escalation: { routes: ['oncall'], after_percent: 70 } });
    // a permission without a policy (the built-in default) adds no route either
    expect(resolvePolicy(policies, agent, ['unrelated', 'db:write']).policy).toMatchObject({ routes: ['dba'], escalation: { routes: ['leads'], after_percent: 30 } });
  });

  it('routes come from the winners only: a less specific policy’s route and escalation are not asked', () => {
    const policies = [policy({ agent: '*', route: 'general', escalate_to: 'oncall', escalate_after: 20 }), policy({ agent: 'deployer', permission: 'deploy:*', route: 'sre' })];
    expect(resolvePolicy(policies, agent, ['deploy:prod']).policy).toMatchObject({ routes: ['sre'], escalation: null });
    expect(resolvePolicy(policies, agent, ['deploy:prod', 'other']).policy).toMatchObject({ routes: ['general', 'sre'], escalation: { routes: ['oncall'], after_percent: 20 } });
    // equally specific winners of one permission combine the same way
    const tied = [policy({ agent: '*', permission: 'db*', route: 'b', escalate_to: 'y', escalate_after: 60 }), policy({ agent: '*', permission: '*db', route: 'a', escalate_to: 'x', escalate_after: 40 })];
    expect(resolvePolicy(tied, agent, ['dbdb']).policy).toMatchObject({ routes: ['a', 'b'], escalation: { routes: ['x', 'y'], after_percent: 40 } });
  });

  it('counts a permission listed twice once', () => {
    expect(resolvePolicy([], agent, ['a', 'a', 'b']).per_permission.map((p) => p.permission)).toEqual(['a', 'b']);
  });
});

describe('strictest', () => {
  const rule = (over: Partial<EffectivePolicy>): EffectivePolicy => ({ ...DEFAULT_POLICY, ...over });
  it('keeps every approver restriction, dropping only lists a smaller one implies', () => {
    expect(strictest([rule({ approver_groups: [['sre', 'ops']] }), rule({ approver_groups: [['sre']] }), rule({ approver_groups: [['sre']] }), rule({ approver_groups: [['dba']] })]).approver_groups).toEqual([['dba'], ['sre']]);
    expect(strictest([rule({}), rule({ approver_groups: [['sre']] })]).approver_groups).toEqual([['sre']]);
    expect(strictest([rule({ approver_groups: [['b', 'a']] }), rule({ approver_groups: [['a', 'b']] })]).approver_groups).toEqual([['a', 'b']]);
  });
  it('never weakens a field: max approvals, any over majority, duties on, operators off', () => {
    expect(strictest([rule({ approvals: 2, deny: 'majority' }), rule({ approvals: 4, deny: 'majority', operator_decisions: false }), rule({ separation_of_duties: true, deny: 'majority' })])).toEqual({
      approvals: 4,
      approver_groups: [],
      deny: 'majority',
      separation_of_duties: true,
      operator_decisions: false,
      routes: [],
      escalation: null,
    });
    expect(strictest([rule({ approvals: 5, deny: 'majority' }), rule({ deny: 'any' })]).deny).toBe('any');
  });
  it('routes: the sorted union of named routes ([] adds none); escalation: every route at the smallest share, null when none escalates', () => {
    const r = strictest([
      rule({ routes: ['sre'], escalation: { routes: ['oncall'], after_percent: 60 } }),
      rule({}),
      rule({ routes: ['dba', 'sre'], escalation: { routes: ['leads', 'oncall'], after_percent: 25 } }),
      rule({ routes: ['audit'] }),
    ]);
    expect(r.routes).toEqual(['audit', 'dba', 'sre']);
    expect(r.escalation).toEqual({ routes: ['leads', 'oncall'], after_percent: 25 });
    expect(strictest([rule({ routes: ['sre'] }), rule({})])).toMatchObject({ routes: ['sre'], escalation: null });
    expect(strictest([rule({}), rule({ escalation: { routes: ['oncall'], after_percent: 80 } })]).escalation).toEqual({ routes: ['oncall'], after_percent: 80 });
    expect(strictest([])).toBe(DEFAULT_POLICY);
  });
  it('is associative: combining in groups gives what combining everything at once gives', () => {
    const rules = [
      rule({ routes: ['c'], escalation: { routes: ['z'], after_percent: 70 }, approvals: 2 }),
      rule({ routes: ['a'], escalation: { routes: ['y'], after_percent: 20 } }),
      rule({ routes: ['b', 'c'] }),
    ];
    expect(strictest([strictest(rules.slice(0, 2)), strictest(rules.slice(2))])).toEqual(strictest(rules));
  });
  it('toEffective sorts and dedupes a policy’s groups, and carries its route and escalation', () => {
    expect(toEffective(policy({ agent: '*', approvers: ['b', 'a', 'b'] })).approver_groups).toEqual([['a', 'b']]);
    expect(toEffective(policy({ agent: '*' }))).toMatchObject({ routes: [], escalation: null });
    expect(toEffective(policy({ agent: '*', route: 'sre', escalate_to: 'oncall', escalate_after: 35 }))).toMatchObject({ routes: ['sre'], escalation: { routes: ['oncall'], after_percent: 35 } });
    // escalate_after without escalate_to means nothing
    expect(toEffective(policy({ agent: '*', route: 'sre', escalate_after: 10 })).escalation).toBeNull();
  });
});

describe('tally', () => {
  const votes = (s: string): Vote[] => [...s].map((c, i) => ({ voter: `v${i}`, vote: c === 'A' ? 'approve' : 'deny' }));
  const any = (n: number) => ({ approvals: n, deny: 'any' as const });
  const majority = (n: number) => ({ approvals: n, deny: 'majority' as const });

  it.each([
    // deny any: the first denial decides; N approvals approve
    [any(1), '', 'pending'],
    [any(1), 'A', 'approved'],
    [any(1), 'D', 'denied'],
    [any(3), 'AA', 'pending'],
    [any(3), 'AAD', 'denied'],
    [any(3), 'AAA', 'approved'],
    [any(2), 'AAD', 'approved'], // decided before the denial came
    // majority with N=1 is the same as any
    [majority(1), 'D', 'denied'],
    [majority(1), 'A', 'approved'],
    // N=2: decided when either side reaches 2 (a majority of 3 voters)
    [majority(2), 'D', 'pending'],
    [majority(2), 'DA', 'pending'],
    [majority(2), 'DAA', 'approved'],
    [majority(2), 'DAD', 'denied'],
    [majority(2), 'DD', 'denied'],
    [majority(2), 'ADD', 'denied'],
    // N=3: a majority of 5
    [majority(3), 'DD', 'pending'],
    [majority(3), 'DDAA', 'pending'],
    [majority(3), 'DDAAA', 'approved'],
    [majority(3), 'AADDD', 'denied'],
    [majority(3), 'DDD', 'denied'],
    [majority(5), 'DDDDAAAA', 'pending'],
    [majority(5), 'DDDDAAAAD', 'denied'],
    [majority(5), 'DDDDAAAAA', 'approved'],
  ])('%o with %s → %s', (policy, cast, expected) => {
    expect(tally(policy, votes(cast))).toBe(expected);
  });

  it('counts a voter once: a second vote by the same human neither approves nor denies', () => {
    expect(tally(any(2), [{ voter: 'alice', vote: 'approve' }, { voter: 'alice', vote: 'approve' }])).toBe('pending');
    expect(tally(any(2), [{ voter: 'alice', vote: 'approve' }, { voter: 'alice', vote: 'deny' }])).toBe('pending');
    expect(tally(majority(2), [{ voter: 'bob', vote: 'deny' }, { voter: 'bob', vote: 'deny' }, { voter: 'carol', vote: 'approve' }])).toBe('pending');
  });

  it('when denials decide under majority, they outnumber the approvals', () => {
    for (let n = 1; n <= 5; n++) {
      for (let mask = 0; mask < 1 << (2 * n - 1); mask++) {
        const cast = Array.from({ length: 2 * n - 1 }, (_, i) => ((mask >> i) & 1 ? 'A' : 'D')).join('');
        const outcome = tally(majority(n), votes(cast));
        // 2N-1 voters always decide, and the outcome is what the majority of them said
        const yes = [...cast].filter((c) => c === 'A').length;
        expect(outcome).toBe(yes >= n ? 'approved' : 'denied');
      }
    }
  });
});

describe('voterEligibility', () => {
  const approver = (groups: string[], email: string | null = 'pat@example.com') => ({ kind: 'approver' as const, id: 'sub-1', email, groups });
  const operator = (id: string) => ({ kind: 'operator' as const, id });
  const rule = (over: Partial<EffectivePolicy>): EffectivePolicy => ({ ...DEFAULT_POLICY, ...over });

  it('the default lets any approver and any operator vote', () => {
    expect(voterEligibility(DEFAULT_POLICY, approver([]), 'owner@example.com')).toEqual({ eligible: true });
    expect(voterEligibility(DEFAULT_POLICY, operator('alice'), 'owner@example.com')).toEqual({ eligible: true });
  });

  it('approver groups: one group of every list', () => {
    const r = rule({ approver_groups: [['dba'], ['ops', 'sre']] });
    expect(voterEligibility(r, approver(['approvers', 'dba', 'sre']), null).eligible).toBe(true);
    expect(voterEligibility(r, approver(['dba', 'ops']), null).eligible).toBe(true);
    expect(voterEligibility(r, approver(['sre']), null)).toEqual({ eligible: false, reason: 'only members of "dba" may vote on this request' });
    expect(voterEligibility(r, approver(['dba']), null)).toEqual({ eligible: false, reason: 'only members of "ops" or "sre" may vote on this request' });
  });

  it('separation of duties: the owner (any case) may not vote; an approver without email cannot prove they are not the owner', () => {
    const r = rule({ separation_of_duties: true });
    expect(voterEligibility(r, approver([], 'Owner@Example.com'), 'owner@example.com')).toMatchObject({ eligible: false, reason: expect.stringMatching(/separation of duties/) });
    expect(voterEligibility(r, approver([], null), 'owner@example.com')).toMatchObject({ eligible: false, reason: expect.stringMatching(/no email/) });
    expect(voterEligibility(r, approver([], 'other@example.com'), 'owner@example.com').eligible).toBe(true);
    expect(voterEligibility(r, approver([], null), null).eligible).toBe(true); // no owner: no one to exclude
    expect(voterEligibility(rule({}), approver([], 'owner@example.com'), 'owner@example.com').eligible).toBe(true); // off
  });

  it('operators: refused when operator decisions are off, or when they name the owner under separation of duties', () => {
    expect(voterEligibility(rule({ operator_decisions: false }), operator('alice'), null)).toMatchObject({ eligible: false, reason: expect.stringMatching(/consent UI/) });
    expect(voterEligibility(rule({ separation_of_duties: true }), operator('OWNER@example.com'), 'owner@example.com').eligible).toBe(false);
    expect(voterEligibility(rule({ separation_of_duties: true }), operator('alice'), 'owner@example.com').eligible).toBe(true);
    expect(voterEligibility(rule({ approver_groups: [['sre']] }), operator('alice'), null).eligible).toBe(true); // operators have no groups
  });

  it('assertMayVote throws ERR_FORBIDDEN with the reason', () => {
    expect(() => assertMayVote(rule({ operator_decisions: false }), operator('alice'), null)).toThrow(expect.objectContaining({ code: 'ERR_FORBIDDEN', message: expect.stringMatching(/operator decisions/) }));
    expect(() => assertMayVote(DEFAULT_POLICY, operator('alice'), null)).not.toThrow();
  });
});

describe('PolicyService (memory adapters)', () => {
  const setup = () => {
    const store = new MemoryPolicyStore();
    const audit = new MemoryPolicyAudit();
    const clock = new ManualClock('2026-11-21T12:00:00.000Z');
    return { store, audit, clock, service: new PolicyService({ store, audit, clock }) };
  };
  const alice = { type: 'operator' as const, id: 'alice' };

  it('set, show, list, remove; every change audited with what it replaced', async () => {
    const { service, audit, clock } = setup();
    const first = await service.set({ agent: 'deployer', permission: 'deploy:*', approvals: 2 }, alice);
    expect(first.previous).toBeNull();
    expect(first.policy).toMatchObject({ agent: 'deployer', permission: 'deploy:*', approvals: 2, updated_at: '2026-11-21T12:00:00.000Z', updated_by: 'operator:alice' });
    clock.advance(1000);
    const second = await service.set({ agent: 'deployer', permission: 'deploy:*', approvals: 3, deny: 'majority' }, { type: 'operator', id: 'bob' });
    expect(second.previous).toEqual(first.policy);
    await service.set({ agent: '*', approvals: 1 }, alice);
    expect(await service.show('deployer', 'deploy:*')).toEqual(second.policy);
    expect((await service.list()).map((p) => [p.agent, p.permission])).toEqual([
      ['*', null],
      ['deployer', 'deploy:*'],
    ]);
    const removed = await service.remove('deployer', 'deploy:*', alice);
    expect(removed).toEqual(second.policy);
    await expect(service.show('deployer', 'deploy:*')).rejects.toMatchObject({ code: 'ERR_NOT_FOUND', field: 'policy' });
    expect(audit.changes.map((c) => [c.action, c.policy.approvals, c.previous?.approvals ?? null, c.actor.id])).toEqual([
      ['set', 2, null, 'alice'],
      ['set', 3, 2, 'bob'],
      ['set', 1, null, 'alice'],
      ['removed', 3, null, 'alice'],
    ]);
  });

  it('refuses bad input and a missing policy without changing or auditing anything', async () => {
    const { service, store, audit } = setup();
    await service.set({ agent: '*', approvals: 2 }, alice);
    const before = [...store.policies.entries()];
    await expect(service.set({ agent: '*', approvals: 9 }, alice)).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT', field: 'approvals' });
    await expect(service.set({ agent: '*', approvals: 1 }, { type: 'operator', id: ' ' })).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT', field: 'as' });
    await expect(service.set({ agent: '*', approvals: 1 }, { type: 'operator', id: 'a\u0007b' })).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT', field: 'as' });
    await expect(service.remove('deployer', null, alice)).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
    await expect(service.remove('bad/agent', null, alice)).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT', field: 'agent' });
    await expect(service.show('*', '**')).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT', field: 'permission' });
    expect([...store.policies.entries()]).toEqual(before);
    expect(audit.changes).toHaveLength(1);
  });

  it('a change whose audit fails is undone: a new policy removed, a replaced one restored, a removed one put back', async () => {
    const { service, store, audit, clock } = setup();
    const original = (await service.set({ agent: '*', permission: 'db:*', approvals: 2 }, alice)).policy;
    audit.failWith = new Error('audit chain unavailable');
    clock.advance(1000);
    await expect(service.set({ agent: '*', permission: 'new:*', approvals: 1 }, alice)).rejects.toThrow('audit chain unavailable');
    await expect(service.set({ agent: '*', permission: 'db:*', approvals: 1 }, alice)).rejects.toThrow('audit chain unavailable');
    await expect(service.remove('*', 'db:*', alice)).rejects.toThrow('audit chain unavailable');
    expect(await store.list()).toEqual([original]);
    expect(audit.changes).toHaveLength(1);
  });

  it('the undo never overwrites a newer change', async () => {
    const store = new MemoryPolicyStore();
    const clock = new ManualClock('2026-11-21T12:00:00.000Z');
    let newer: Policy | undefined;
    // An audit that fails after someone else changed the same policy in the meantime.
    const audit = {
      async policyChanged() {
        newer = { ...policy({ agent: '*', approvals: 4 }), updated_at: '2026-11-21T13:00:00.000Z' };
        await store.put(newer, {});
        throw new Error('audit failed');
      },
    };
    const service = new PolicyService({ store, audit, clock });
    await expect(service.set({ agent: '*', approvals: 2 }, alice)).rejects.toThrow('audit failed');
    expect(await store.list()).toEqual([newer]);
  });

  it('optimistic concurrency: expectedUpdatedAt null refuses an existing policy, a stale time refuses a changed one', async () => {
    const { service, clock } = setup();
    const a = (await service.set({ agent: '*', approvals: 2 }, alice, { expectedUpdatedAt: null })).policy;
    await expect(service.set({ agent: '*', approvals: 3 }, alice, { expectedUpdatedAt: null })).rejects.toMatchObject({ code: 'ERR_CONFLICT', message: expect.stringMatching(/already exists/) });
    clock.advance(1000);
    await service.set({ agent: '*', approvals: 3 }, alice, { expectedUpdatedAt: a.updated_at });
    await expect(service.set({ agent: '*', approvals: 4 }, alice, { expectedUpdatedAt: a.updated_at })).rejects.toMatchObject({ code: 'ERR_CONFLICT' });
    expect((await service.show('*', null)).approvals).toBe(3);
  });

  it('set keeps route and escalation, replaces them like any other field, and refuses bad ones without a change', async () => {
    const { service, store, audit } = setup();
    const first = await service.set({ agent: 'deployer', permission: 'deploy:*', approvals: 2, route: 'sre', escalate_to: 'oncall', escalate_after: 40 }, alice);
    expect(first.policy).toMatchObject({ route: 'sre', escalate_to: 'oncall', escalate_after: 40 });
    expect(await service.show('deployer', 'deploy:*')).toEqual(first.policy);
    expect((await service.resolve(agent, ['deploy:prod'])).policy).toMatchObject({ routes: ['sre'], escalation: { routes: ['oncall'], after_percent: 40 } });
    const before = [...store.policies.entries()];
    await expect(service.set({ agent: 'deployer', permission: 'deploy:*', approvals: 2, escalate_after: 40 }, alice)).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT', field: 'escalate_after' });
    await expect(service.set({ agent: 'deployer', permission: 'deploy:*', approvals: 2, route: 'oncall', escalate_to: 'oncall' }, alice)).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT', field: 'escalate_to' });
    expect([...store.policies.entries()]).toEqual(before);
    // set replaces the whole policy: left out, the route and escalation go back to their defaults
    const second = await service.set({ agent: 'deployer', permission: 'deploy:*', approvals: 2 }, alice);
    expect(second.policy).toMatchObject({ route: null, escalate_to: null, escalate_after: 50 });
    expect(audit.changes.map((c) => [c.policy.route, c.policy.escalate_to, c.previous?.escalate_to ?? null])).toEqual([
      ['sre', 'oncall', null],
      [null, null, 'oncall'],
    ]);
  });

  it('resolve reads the candidates and resolves them', async () => {
    const { service } = setup();
    await service.set({ agent: 'deployer', permission: 'deploy:*', approvals: 3, separation_of_duties: true }, alice);
    await service.set({ agent: 'someone-else', approvals: 5 }, alice);
    const r = await service.resolve(agent, ['deploy:prod']);
    expect(r.policy).toMatchObject({ approvals: 3, separation_of_duties: true });
    expect(r.matched).toEqual(['deployer#deploy:*']);
  });
});

describe('agent records', () => {
  it('recordOwner replaces the owner and keeps the first created_at', async () => {
    const store = new MemoryAgentStore();
    const clock = new ManualClock('2026-11-21T12:00:00.000Z');
    expect(await ownerOf(store, agent)).toBeNull();
    await recordOwner(store, agent, 'a@example.com', clock);
    clock.advance(60_000);
    const second = await recordOwner(store, agent, 'b@example.com', clock);
    expect(second).toEqual({ agent_id: agent, owner: 'b@example.com', created_at: '2026-11-21T12:00:00.000Z', updated_at: '2026-11-21T12:01:00.000Z' });
    expect(await ownerOf(store, agent)).toBe('b@example.com');
  });
});
