/**
 * Approval policies and agent owners: the store contract run against BOTH implementations
 * (DynamoDB on real dynalite, and the in-memory stores the unit tests use), then the real `ackd`
 * bin against a running local stack.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { dynamoClient } from '../../lambdas/adapters/dynamodb/client.ts';
import { ensureTable } from '../../lambdas/adapters/dynamodb/schema.ts';
import { DynamoPolicyStore } from '../../lambdas/adapters/dynamodb/policies.ts';
import { DynamoAgentStore } from '../../lambdas/adapters/dynamodb/agents.ts';
import { documentClient } from '../../lambdas/adapters/dynamodb/send.ts';
import { MemoryPolicyStore } from '../../lambdas/adapters/memory/policies.ts';
import { MemoryAgentStore } from '../../lambdas/adapters/memory/agents.ts';
import { parseAgentId } from '../../lambdas/core/ids.ts';
import { authenticateApiKey } from '../../lambdas/core/apikeys.ts';
import { resolvePolicy, type Policy, type PolicyStore } from '../../lambdas/core/policy.ts';
import type { AgentStore } from '../../lambdas/core/agents.ts';
import { readItem, startTestStack, writeItemFields, type TestStack } from '../helpers/local-stack.ts';
import { cliEnv, runAckd } from '../helpers/cli.ts';

/** Each `ackd` run is a new Node process through tsx (1-2 s on two shared cores); the CLI tests run many. */
const CLI_TIMEOUT = 180_000;

let stack: TestStack;
let env: NodeJS.ProcessEnv;
const ackd = (...args: string[]) => runAckd(env, ...args);
const json = async <T>(...args: string[]): Promise<T> => {
  const r = await ackd(...args, '--json');
  if (r.code !== 0) throw new Error(`ackd ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
};

beforeAll(async () => {
  stack = await startTestStack();
  env = cliEnv(stack);
});
afterAll(async () => {
  await stack?.stop();
});

const T = (min: number) => new Date(Date.UTC(2026, 10, 21, 12, min)).toISOString();
function policy(over: Partial<Policy> & Pick<Policy, 'agent'>): Policy {
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
    updated_at: T(0),
    updated_by: 'operator:test',
    ...over,
  };
}

let tables = 0;
async function freshTable(): Promise<{ client: ReturnType<typeof dynamoClient>; name: string }> {
  const client = dynamoClient({ region: 'us-east-1', endpoint: stack.dynamodbEndpoint });
  const name = `policies-${++tables}`;
  await ensureTable(client, name);
  return { client, name };
}

const impls: [string, () => Promise<{ policies: PolicyStore; agents: AgentStore }>][] = [
  [
    'DynamoDB (dynalite)',
    async () => {
      const { client, name } = await freshTable();
      return { policies: new DynamoPolicyStore(client, name), agents: new DynamoAgentStore(client, name) };
    },
  ],
  ['memory', () => Promise.resolve({ policies: new MemoryPolicyStore(), agents: new MemoryAgentStore() })],
];

const deployer = parseAgentId('deployer');

describe.each(impls)('PolicyStore / AgentStore contract: %s', (_name, make) => {
  it('put returns what it replaced; get, list (sorted) and remove', async () => {
    const { policies: s } = await make();
    const a = policy({ agent: 'deployer', permission: 'deploy:*', approvals: 2, approvers: ['sre', 'ops'], deny: 'majority', separation_of_duties: true, operator_decisions: false });
    expect(await s.put(a, {})).toEqual({ previous: undefined });
    const b = { ...a, approvals: 3, updated_at: T(1) };
    expect(await s.put(b, {})).toEqual({ previous: a });
    const any = policy({ agent: '*' });
    await s.put(any, {});
    const hashed = policy({ agent: 'deployer', permission: 'repo#x' }); // "#" in a permission does not confuse the key
    await s.put(hashed, {});
    expect(await s.get('deployer', 'deploy:*')).toEqual(b);
    expect(await s.get('*', null)).toEqual(any);
    expect(await s.get('deployer', null)).toBeUndefined();
    expect(await s.list()).toEqual([any, b, hashed]);
    expect(await s.remove('deployer', 'deploy:*')).toEqual(b);
    expect(await s.remove('deployer', 'deploy:*')).toBeUndefined();
    expect(await s.list()).toEqual([any, hashed]);
  });

  it('conditional writes: null = must not exist, a time = must still carry it; a refused write changes nothing', async () => {
    const { policies: s } = await make();
    const a = policy({ agent: '*', approvals: 2 });
    await s.put(a, { expectedUpdatedAt: null });
    await expect(s.put({ ...a, approvals: 5 }, { expectedUpdatedAt: null })).rejects.toMatchObject({ code: 'ERR_CONFLICT', message: expect.stringMatching(/already exists/) });
    await expect(s.put({ ...a, approvals: 5 }, { expectedUpdatedAt: T(9) })).rejects.toMatchObject({ code: 'ERR_CONFLICT', message: expect.stringMatching(/changed or removed/) });
    expect(await s.get('*', null)).toEqual(a);
    const b = { ...a, approvals: 3, updated_at: T(1) };
    expect((await s.put(b, { expectedUpdatedAt: T(0) })).previous).toEqual(a);
    await expect(s.remove('*', null, { expectedUpdatedAt: T(0) })).rejects.toMatchObject({ code: 'ERR_CONFLICT' });
    expect(await s.get('*', null)).toEqual(b);
    expect(await s.remove('*', null, { expectedUpdatedAt: T(1) })).toEqual(b);
    await expect(s.put(b, { expectedUpdatedAt: T(1) })).rejects.toMatchObject({ code: 'ERR_CONFLICT' }); // gone
    expect(await s.list()).toEqual([]);
  });

  it('candidates hold every policy that matches the request (exact, pattern, any; this agent and "*"), and not other agents’', async () => {
    const { policies: s } = await make();
    const all = [
      policy({ agent: '*' }),
      policy({ agent: '*', permission: 'db:*', approvals: 2 }),
      policy({ agent: '*', permission: '*:prod', approvals: 3 }),
      policy({ agent: 'deployer', permission: 'deploy:prod', approvals: 4 }),
      policy({ agent: 'deployer', permission: 'deploy:*', approvals: 2 }),
      policy({ agent: 'deployer', permission: 'x*y*z', approvals: 2 }),
      policy({ agent: 'other', approvals: 5 }),
      policy({ agent: 'other', permission: 'deploy:*', approvals: 5 }),
    ];
    for (const p of all) await s.put(p, {});
    const perms = ['deploy:prod', 'db:write', 'xAyBz'];
    const got = await s.candidates(deployer, perms);
    const matching = resolvePolicy(all, deployer, perms);
    expect(resolvePolicy(got, deployer, perms)).toEqual(matching);
    expect(got.some((p) => p.agent === 'other')).toBe(false);
    const keys = got.map((p) => `${p.agent}#${p.permission ?? ''}`);
    expect(keys).toEqual(expect.arrayContaining(['*#', '*#db:*', '*#*:prod', 'deployer#deploy:prod', 'deployer#deploy:*', 'deployer#x*y*z']));
    // after a removal the pattern is no longer a candidate; setting it again brings it back
    await s.remove('deployer', 'deploy:*');
    expect((await s.candidates(deployer, perms)).some((p) => p.permission === 'deploy:*')).toBe(false);
    await s.put(policy({ agent: 'deployer', permission: 'deploy:*', approvals: 5 }), {});
    expect(resolvePolicy(await s.candidates(deployer, ['deploy:staging']), deployer, ['deploy:staging']).policy.approvals).toBe(5);
  });

  it('keeps route, escalate_to and escalate_after, and null routes, through put, get, list and candidates', async () => {
    const { policies: s } = await make();
    const routed = policy({ agent: 'deployer', permission: 'deploy:*', route: 'sre', escalate_to: 'oncall', escalate_after: 30 });
    const plain = policy({ agent: '*', permission: 'db:*', route: 'dba' });
    const none = policy({ agent: '*' });
    for (const p of [routed, plain, none]) await s.put(p, {});
    expect(await s.get('deployer', 'deploy:*')).toEqual(routed);
    expect(await s.get('*', 'db:*')).toEqual(plain);
    expect(await s.list()).toEqual([none, plain, routed]);
    const perms = ['deploy:prod', 'db:write', 'other'];
    expect(resolvePolicy(await s.candidates(deployer, perms), deployer, perms).policy).toMatchObject({ routes: ['dba', 'sre'], escalation: { routes: ['oncall'], after_percent: 30 } });
    expect((await s.put({ ...routed, escalate_to: null, escalate_after: 50, updated_at: T(1) }, {})).previous).toEqual(routed);
    expect(await s.get('deployer', 'deploy:*')).toMatchObject({ route: 'sre', escalate_to: null, escalate_after: 50 });
  });

  it('agents: put is an upsert keeping the first created_at; get', async () => {
    const { agents } = await make();
    expect(await agents.get(deployer)).toBeUndefined();
    await agents.put({ agent_id: deployer, owner: 'a@example.com', created_at: T(0), updated_at: T(0) });
    const second = await agents.put({ agent_id: deployer, owner: 'b@example.com', created_at: T(5), updated_at: T(5) });
    expect(second).toEqual({ agent_id: deployer, owner: 'b@example.com', created_at: T(0), updated_at: T(5) });
    expect(await agents.get(deployer)).toEqual(second);
    await agents.put({ agent_id: deployer, owner: null, created_at: T(6), updated_at: T(6) });
    expect((await agents.get(deployer))?.owner).toBeNull();
  });
});

describe('DynamoPolicyStore on the table', () => {
  it('stores one item per policy (kind "policy", pk policy#<agent>#<permission>) and fails closed on a tampered one', async () => {
    const { client, name } = await freshTable();
    const s = new DynamoPolicyStore(client, name);
    await s.put(policy({ agent: 'deployer', permission: 'deploy:*', approvals: 2 }), {});
    const t = { dynamodbEndpoint: stack.dynamodbEndpoint, tableName: name };
    expect(await readItem(t, 'policy#deployer#deploy:*')).toMatchObject({ kind: 'policy', agent: 'deployer', permission: 'deploy:*', approvals: 2 });
    expect(await readItem(t, 'policyidx#deployer')).toMatchObject({ kind: 'policy-index', patterns: new Set(['deploy:*']) });
    // An insider lowers the bar in the table: the policy is refused, not used and not skipped.
    await writeItemFields(t, 'policy#deployer#deploy:*', { approvals: 0 });
    await expect(s.candidates(deployer, ['deploy:prod'])).rejects.toMatchObject({ code: 'ERR_INTERNAL', message: expect.stringMatching(/approvals/) });
    await expect(s.list()).rejects.toMatchObject({ code: 'ERR_INTERNAL' });
    await writeItemFields(t, 'policy#deployer#deploy:*', { approvals: 2, agent: 'someone-else' });
    await expect(s.get('deployer', 'deploy:*')).rejects.toMatchObject({ code: 'ERR_INTERNAL', message: expect.stringMatching(/key does not match/) });
  });

  it('a policy item written before routes existed (no route, escalate_to, escalate_after) reads as the default route without escalation', async () => {
    const { client, name } = await freshTable();
    const s = new DynamoPolicyStore(client, name);
    const old = { agent: 'deployer', permission: null, approvals: 2, approvers: ['sre'], deny: 'any', separation_of_duties: false, operator_decisions: true, updated_at: T(0), updated_by: 'operator:before' };
    await documentClient(client).send(new PutCommand({ TableName: name, Item: { pk: 'policy#deployer#', kind: 'policy', ...old } }));
    const t = { dynamodbEndpoint: stack.dynamodbEndpoint, tableName: name };
    const item = await readItem(t, 'policy#deployer#');
    expect(item).not.toHaveProperty('route');
    expect(item).not.toHaveProperty('escalate_to');
    expect(item).not.toHaveProperty('escalate_after');
    const read = { ...old, route: null, escalate_to: null, escalate_after: 50 };
    expect(await s.get('deployer', null)).toEqual(read);
    expect(await s.list()).toEqual([read]);
    expect(resolvePolicy(await s.candidates(deployer, ['x']), deployer, ['x']).policy).toMatchObject({ approvals: 2, routes: [], escalation: null });
    // a route written into the table must follow the rule; escalate_after without escalate_to is one ackd never writes
    await writeItemFields(t, 'policy#deployer#', { route: 'Not A Route' });
    await expect(s.get('deployer', null)).rejects.toMatchObject({ code: 'ERR_INTERNAL', message: expect.stringMatching(/route: must be a route name/) });
    await writeItemFields(t, 'policy#deployer#', { route: 'sre', escalate_after: 10 });
    await expect(s.candidates(deployer, ['x'])).rejects.toMatchObject({ code: 'ERR_INTERNAL', message: expect.stringMatching(/escalate_after: needs escalate_to/) });
    await writeItemFields(t, 'policy#deployer#', { escalate_to: 'sre' });
    await expect(s.get('deployer', null)).rejects.toMatchObject({ code: 'ERR_INTERNAL', message: expect.stringMatching(/escalate_to: must differ from route/) });
    await writeItemFields(t, 'policy#deployer#', { escalate_to: 'oncall' });
    expect(await s.get('deployer', null)).toMatchObject({ route: 'sre', escalate_to: 'oncall', escalate_after: 10 });
  });

  it('the stack’s deps carry the policy service, agents, and record each policy change in the audit chain', async () => {
    await stack.deps.policies.set({ agent: 'deps-agent', approvals: 2 }, { type: 'operator', id: 'wiring' });
    await stack.settled(); // the change waits for the sequencer to take its place in the log
    const head = await stack.deps.store.audit.head();
    const last = (await stack.deps.store.audit.event(head.seq)) as unknown as Record<string, unknown>;
    expect(last).toMatchObject({ type: 'policy_set', actor_type: 'operator', actor_id: 'wiring', policy: { agent: 'deps-agent', approvals: 2 }, previous: null });
    expect((await stack.deps.policies.resolve(parseAgentId('deps-agent'), ['any:thing'])).policy.approvals).toBe(2);
    await stack.deps.policies.remove('deps-agent', null, { type: 'operator', id: 'wiring' });
  });
});

describe('ackd policy', () => {
  it('every policy command has --help', async () => {
    for (const cmd of [['policy'], ['policy', 'set'], ['policy', 'show'], ['policy', 'list'], ['policy', 'remove'], ['policy', 'explain'], ['agents', 'show']]) {
      const { stdout, code } = await ackd(...cmd, '--help');
      expect(code).toBe(0);
      expect(stdout).toMatch(/^Usage: ackd/m);
    }
  }, CLI_TIMEOUT);

  it('set, show, list, remove', async () => {
    const set = await json<{ policy: Policy; previous: Policy | null }>('policy', 'set', '--agent', 'cli-deployer', '--permission', 'deploy:*', '--approvals', '2', '--approvers', 'sre, ops', '--deny', 'majority', '--separation-of-duties', '--no-operator-decisions', '--as', 'alice');
    expect(set.previous).toBeNull();
    expect(set.policy).toMatchObject({ agent: 'cli-deployer', permission: 'deploy:*', approvals: 2, approvers: ['sre', 'ops'], deny: 'majority', separation_of_duties: true, operator_decisions: false, updated_by: 'operator:alice' });
    // set replaces the whole policy: options not given take their defaults
    const replaced = await json<{ policy: Policy; previous: Policy | null }>('policy', 'set', '--agent', 'cli-deployer', '--permission', 'deploy:*', '--approvals', '3', '--as', 'bob');
    expect(replaced.previous).toEqual(set.policy);
    expect(replaced.policy).toMatchObject({ approvals: 3, approvers: [], deny: 'any', separation_of_duties: false, operator_decisions: true, updated_by: 'operator:bob' });
    expect(await json('policy', 'show', '--agent', 'cli-deployer', '--permission', 'deploy:*')).toEqual(replaced.policy);
    const human = await ackd('policy', 'show', '--agent', 'cli-deployer', '--permission', 'deploy:*');
    expect(human.stdout).toMatch(/approvals\s+3 distinct humans/);
    expect(human.stdout).toMatch(/updated .* by operator:bob/);
    expect(await json<Policy[]>('policy', 'list')).toContainEqual(replaced.policy);
    expect((await ackd('policy', 'list')).stdout).toMatch(/^cli-deployer\s+deploy:\*\s+3 approvals, any approver, deny any$/m);
    const removed = await json<{ removed: Policy }>('policy', 'remove', '--agent', 'cli-deployer', '--permission', 'deploy:*', '--as', 'alice');
    expect(removed.removed).toEqual(replaced.policy);
    const gone = await ackd('policy', 'show', '--agent', 'cli-deployer', '--permission', 'deploy:*');
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/ERR_NOT_FOUND: policy: none for agent cli-deployer and permission deploy:\*/);
    expect((await ackd('policy', 'remove', '--agent', 'cli-deployer', '--permission', 'deploy:*', '--as', 'alice')).code).toBe(1);
    expect(await json<Policy[]>('policy', 'list')).not.toContainEqual(expect.objectContaining({ agent: 'cli-deployer' }));
  }, CLI_TIMEOUT);

  it('set --route --escalate-to --escalate-after; show, list and explain print them', async () => {
    const set = await json<{ policy: Policy }>('policy', 'set', '--agent', 'cli-routed', '--permission', 'deploy:*', '--approvals', '2', '--route', 'sre', '--escalate-to', 'oncall', '--escalate-after', '30', '--as', 'alice');
    expect(set.policy).toMatchObject({ route: 'sre', escalate_to: 'oncall', escalate_after: 30 });
    await json('policy', 'set', '--agent', 'cli-routed', '--permission', 'db:*', '--approvals', '1', '--route', 'dba', '--escalate-to', 'leads', '--as', 'alice');
    try {
      expect(await json('policy', 'show', '--agent', 'cli-routed', '--permission', 'deploy:*')).toEqual(set.policy);
      const shown = await ackd('policy', 'show', '--agent', 'cli-routed', '--permission', 'deploy:*');
      expect(shown.stdout).toMatch(/^ {2}route {17}sre$/m);
      expect(shown.stdout).toMatch(/^ {2}escalation {12}to oncall if nobody has decided after 30% of the wait$/m);
      const listed = (await ackd('policy', 'list')).stdout;
      expect(listed).toMatch(/^cli-routed\s+db:\*\s+1 approval, any approver, deny any, route dba, escalate to leads after 50%$/m);
      expect(listed).toMatch(/^cli-routed\s+deploy:\*\s+2 approvals, any approver, deny any, route sre, escalate to oncall after 30%$/m);

      const explained = await json<{ policy: Record<string, unknown>; warnings: string[] }>('policy', 'explain', '--agent', 'cli-routed', '--permission', 'deploy:prod', '--permission', 'db:write', '--permission', 'read:logs');
      expect(explained.policy).toMatchObject({ routes: ['dba', 'sre'], escalation: { routes: ['leads', 'oncall'], after_percent: 30 } });
      const human = await ackd('policy', 'explain', '--agent', 'cli-routed', '--permission', 'deploy:prod', '--permission', 'db:write');
      expect(human.stdout).toMatch(/^ {2}routes {16}dba, sre$/m);
      expect(human.stdout).toMatch(/^ {2}escalation {12}to leads, oncall if nobody has decided after 30% of the wait$/m);
      const plain = await ackd('policy', 'explain', '--agent', 'cli-routed', '--permission', 'read:logs');
      expect(plain.stdout).toMatch(/^ {2}route {17}the default route$/m);
      expect(plain.stdout).toMatch(/^ {2}escalation {12}none$/m);

      // a route asked first by one permission and on escalation by another is pointed out
      await json('policy', 'set', '--agent', 'cli-routed', '--permission', 'page:*', '--approvals', '1', '--route', 'oncall', '--as', 'alice');
      const twice = await json<{ policy: Record<string, unknown>; warnings: string[] }>('policy', 'explain', '--agent', 'cli-routed', '--permission', 'deploy:prod', '--permission', 'page:me');
      expect(twice.policy).toMatchObject({ routes: ['oncall', 'sre'], escalation: { routes: ['oncall'], after_percent: 30 } });
      expect(twice.warnings.join('\n')).toMatch(/route oncall is asked first and asked again on escalation/);

      // set replaces the whole policy: without the flags, the default route and no escalation
      const replaced = await json<{ policy: Policy; previous: Policy }>('policy', 'set', '--agent', 'cli-routed', '--permission', 'deploy:*', '--approvals', '2', '--as', 'bob');
      expect(replaced.previous).toEqual(set.policy);
      expect(replaced.policy).toMatchObject({ route: null, escalate_to: null, escalate_after: 50 });
    } finally {
      for (const permission of ['deploy:*', 'db:*', 'page:*']) await ackd('policy', 'remove', '--agent', 'cli-routed', '--permission', permission, '--as', 'alice');
    }
  }, CLI_TIMEOUT);

  it('refuses bad input with one line naming the field, exit 2, and changes nothing', async () => {
    await json('policy', 'set', '--agent', 'cli-strict', '--approvals', '2', '--as', 'alice');
    const before = (await ackd('policy', 'list', '--json')).stdout;
    const bad: [string[], RegExp][] = [
      [['--agent', 'cli-strict', '--approvals', '9'], /ERR_INVALID_INPUT: approvals: must be an integer from 1 to 5/],
      [['--agent', 'cli-strict', '--approvals', '2.5'], /ERR_INVALID_INPUT: approvals: must be an integer from 1 to 5/],
      [['--agent', 'cli-strict', '--approvals', '2', '--approvers', 'sre,on call'], /ERR_INVALID_INPUT: approvers: "on call" is not a group name/],
      [['--agent', 'cli-strict', '--approvals', '2', '--deny', 'all'], /ERR_INVALID_INPUT: deny: must be "any" or "majority"/],
      [['--agent', 'bad/agent', '--approvals', '2'], /ERR_INVALID_INPUT: agent: must be an agent id/],
      [['--agent', 'cli-strict', '--permission', 'deploy prod', '--approvals', '2'], /ERR_INVALID_INPUT: permission: contains U\+0020, which is not allowed/],
      [['--agent', 'cli-strict', '--permission', '*', '--approvals', '2'], /ERR_INVALID_INPUT: permission: a pattern of only "\*"/],
      [['--agent', 'cli-strict', '--approvals', '2', '--route', 'On-Call'], /ERR_INVALID_INPUT: route: must be a route name of ACKD_ROUTES/],
      [['--agent', 'cli-strict', '--approvals', '2', '--escalate-to', 'on call'], /ERR_INVALID_INPUT: escalate_to: must be a route name of ACKD_ROUTES/],
      [['--agent', 'cli-strict', '--approvals', '2', '--route', 'oncall', '--escalate-to', 'oncall'], /ERR_INVALID_INPUT: escalate_to: must differ from route/],
      [['--agent', 'cli-strict', '--approvals', '2', '--escalate-after', '30'], /ERR_INVALID_INPUT: escalate_after: needs escalate_to/],
      [['--agent', 'cli-strict', '--approvals', '2', '--escalate-to', 'oncall', '--escalate-after', '95'], /ERR_INVALID_INPUT: escalate_after: must be an integer percent of the request's wait from 10 to 90/],
      [['--agent', 'cli-strict', '--approvals', '2', '--escalate-to', 'oncall', '--escalate-after', '50%'], /ERR_INVALID_INPUT: escalate_after: must be an integer percent/],
    ];
    for (const [args, message] of bad) {
      const r = await ackd('policy', 'set', ...args, '--as', 'alice');
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    }
    const blankAs = await ackd('policy', 'set', '--agent', 'cli-strict', '--approvals', '4', '--as', ' ');
    expect([blankAs.code, blankAs.stderr.trim()]).toEqual([2, 'error: ERR_INVALID_INPUT: as: must name the operator']);
    const noAs = await ackd('policy', 'set', '--agent', 'cli-strict', '--approvals', '4');
    expect(noAs.code).not.toBe(0);
    expect(noAs.stderr).toMatch(/--as <operator>/);
    expect((await ackd('policy', 'list', '--json')).stdout).toBe(before);
    await json('policy', 'remove', '--agent', 'cli-strict', '--as', 'alice');
  }, CLI_TIMEOUT);

  it('explain: per permission the winning policy and why, the strictest combination, the owner, and warnings', async () => {
    await json('agents', 'create', 'cli-explain', '--owner', 'Owner@Example.com', '--as', 'lead');
    await json('policy', 'set', '--agent', '*', '--permission', 'db:*', '--approvals', '1', '--approvers', 'dba', '--separation-of-duties', '--as', 'alice');
    await json('policy', 'set', '--agent', 'cli-explain', '--permission', 'deploy:*', '--approvals', '3', '--deny', 'majority', '--approvers', 'sre', '--as', 'alice');
    await json('policy', 'set', '--agent', 'cli-explain', '--permission', 'deploy:staging', '--approvals', '1', '--deny', 'majority', '--as', 'alice');
    try {
      const r = await json<{
        agent_id: string;
        policy: Record<string, unknown>;
        matched: string[];
        per_permission: { permission: string; policies: string[] }[];
        owner: string | null;
        warnings: string[];
      }>('policy', 'explain', '--agent', 'cli-explain', '--permission', 'deploy:prod', '--permission', 'db:write', '--permission', 'read:logs');
      expect(r.per_permission).toEqual([
        { permission: 'deploy:prod', policies: ['cli-explain#deploy:*'] },
        { permission: 'db:write', policies: ['*#db:*'] },
        { permission: 'read:logs', policies: [] },
      ]);
      expect(r.policy).toEqual({ approvals: 3, approver_groups: [['dba'], ['sre']], deny: 'any', separation_of_duties: true, operator_decisions: true, routes: [], escalation: null });
      expect(r.matched).toEqual(['*#db:*', 'cli-explain#deploy:*']);
      expect(r.owner).toBe('Owner@Example.com');
      expect(r.warnings.join('\n')).toMatch(/each voter must be in a group of every list \(dba and sre\)/);
      expect(r.warnings.join('\n')).toMatch(/operator name \(--as\) is not verified/);
      // an exact permission beats the pattern; the single-permission request is not made stricter
      const staging = await json<{ policy: Record<string, unknown>; matched: string[] }>('policy', 'explain', '--agent', 'cli-explain', '--permission', 'deploy:staging');
      expect(staging).toMatchObject({ matched: ['cli-explain#deploy:staging'], policy: { approvals: 1, deny: 'majority', approver_groups: [] } });
      const human = await ackd('policy', 'explain', '--agent', 'cli-explain', '--permission', 'deploy:prod', '--permission', 'read:logs');
      expect(human.code).toBe(0);
      expect(human.stdout).toMatch(/deploy:prod\s+← policy agent cli-explain, permission deploy:\* \(exact agent, pattern with 7 literal characters\)/);
      expect(human.stdout).toMatch(/read:logs\s+← built-in default \(no policy matches\)/);
      expect(human.stdout).toMatch(/agent owner\s+Owner@Example.com/);
      const noOwner = await json<{ owner: string | null; warnings: string[] }>('policy', 'explain', '--agent', 'cli-explain-2', '--permission', 'db:write');
      expect(noOwner.owner).toBeNull();
      expect(noOwner.warnings.join('\n')).toMatch(/no owner recorded/);
      const bad = await ackd('policy', 'explain', '--agent', '*', '--permission', 'x');
      expect([bad.code, bad.stderr]).toEqual([2, expect.stringMatching(/ERR_INVALID_INPUT: agent:/)]);
      const badPermission = await ackd('policy', 'explain', '--agent', 'cli-explain', '--permission', 'a,b');
      expect([badPermission.code, badPermission.stderr]).toEqual([2, expect.stringMatching(/ERR_INVALID_INPUT: permission: contains ","/)]);
    } finally {
      for (const [agent, permission] of [['*', 'db:*'], ['cli-explain', 'deploy:*'], ['cli-explain', 'deploy:staging']] as const) {
        await ackd('policy', 'remove', '--agent', agent, '--permission', permission, '--as', 'alice');
      }
    }
  });
});

describe('ackd agents create --owner / agents show', () => {
  it('records the owner beside the key; show prints owner and key count', async () => {
    const unaudited = await ackd('agents', 'create', 'cli-owned', '--owner', 'lead@example.com');
    expect([unaudited.code, unaudited.stderr]).toEqual([2, expect.stringMatching(/ERR_INVALID_INPUT: --as: required with --owner/)]);
    const created = await json<{ agent_id: string; api_key: string; owner: string }>('agents', 'create', 'cli-owned', '--owner', 'lead@example.com', '--as', 'grace');
    expect(created).toMatchObject({ agent_id: 'cli-owned', owner: 'lead@example.com' });
    await stack.settled(); // the CLI's changes are sequenced by the stack's sequencer
    const head = await stack.deps.store.audit.head();
    // the owner first, then the key (by its id, never the key)
    expect(await stack.deps.store.audit.event(head.seq - 1)).toMatchObject({ type: 'owner_set', actor_type: 'operator', actor_id: 'grace', agent_id: 'cli-owned', owner: 'lead@example.com', previous_owner: null });
    expect(await stack.deps.store.audit.event(head.seq)).toMatchObject({ type: 'apikey_created', actor_type: 'operator', actor_id: 'grace', agent_id: 'cli-owned', key_id: (created as unknown as { key_id: string }).key_id });
    expect(created.api_key).toMatch(/^ackd_[A-Za-z0-9_-]{43}$/);
    // a second key without --owner keeps the owner
    const human = await ackd('agents', 'create', 'cli-owned');
    expect(human.stdout).not.toMatch(/owner/);
    expect(human.stdout).toMatch(/^api key: ackd_/m);
    const shown = await json<Record<string, unknown>>('agents', 'show', 'cli-owned');
    expect(shown).toMatchObject({ agent_id: 'cli-owned', owner: 'lead@example.com', keys: 2, active_keys: 2 });
    const text = await ackd('agents', 'show', 'cli-owned');
    expect(text.stdout).toMatch(/^owner:\s+lead@example.com$/m);
    expect(text.stdout).toMatch(/^keys:\s+2 \(2 active, 0 revoked\)$/m);
    expect((await stack.deps.agents.get(parseAgentId('cli-owned')))?.owner).toBe('lead@example.com');
  }, CLI_TIMEOUT);

  it('an agent with keys but no owner shows "none recorded"; an unknown agent is not found', async () => {
    await json('agents', 'create', 'cli-unowned');
    expect(await json('agents', 'show', 'cli-unowned')).toMatchObject({ owner: null, keys: 1 });
    expect((await ackd('agents', 'show', 'cli-unowned')).stdout).toMatch(/owner:\s+none recorded/);
    const unknown = await ackd('agents', 'show', 'nobody-here');
    expect([unknown.code, unknown.stderr]).toEqual([1, expect.stringMatching(/ERR_NOT_FOUND: agent_id: no agent nobody-here/)]);
  }, CLI_TIMEOUT);

  it('revoke-key is an audit event; a revocation taken back in the table lets the key in again, and audit verify --live names it', async () => {
    const verifyLive = () => runAckd({ ...env, ACKD_AUDIT_KEY: stack.auditKeyPath }, 'audit', 'verify', '--live');
    const created = await json<{ key_id: string; api_key: string }>('agents', 'create', 'cli-revoked', '--as', 'grace');
    const sealBefore = (await stack.deps.apiKeys.listAll()).find((k) => k.key_id === created.key_id)!.seal;
    const revoked = await json<Record<string, unknown>>('agents', 'revoke-key', created.key_id, '--as', 'heidi');
    expect(revoked).toEqual({ key_id: created.key_id, revoked: true, entries: 1, agents: ['cli-revoked'] });
    await stack.settled();
    const head = await stack.deps.store.audit.head();
    expect(await stack.deps.store.audit.event(head.seq)).toMatchObject({ type: 'apikey_revoked', actor_id: 'heidi', agent_id: 'cli-revoked', key_id: created.key_id });
    const before = await verifyLive();
    expect(before.code, before.stdout + before.stderr).toBe(0);
    const client = () => stack.client(created.api_key);
    await expect(client()).rejects.toThrow(/401|Unauthorized/i);

    // The insider takes the revocation back. Clearing revoked_at breaks the seal (made over it)…
    const pk = `apikey#${(await stack.deps.apiKeys.listAll()).find((k) => k.key_id === created.key_id)!.key_hash}`;
    await writeItemFields(stack, pk, { revoked_at: null });
    await expect(client()).rejects.toThrow(/401|Unauthorized/i);
    // …but the seal copied before the revocation puts the key back in…
    await writeItemFields(stack, pk, { seal: sealBefore });
    await (await client()).close();
    // …and live verification fails, naming the key and its revocation.
    const live = await verifyLive();
    expect(live.code, live.stdout).toBe(1);
    expect(live.stdout).toMatch(new RegExp(`API key ${created.key_id} of agent cli-revoked was revoked \\(event \\d+, .*by heidi\\), but its entry \\(agent cli-revoked\\) is active again`));
    // A twin planted under the id with a terminal escape in its agent: reported too, shown safe.
    await writeItemFields(stack, 'apikey#' + 'e'.repeat(64), { kind: 'apikey', key_id: created.key_id, key_hash: 'e'.repeat(64), agent_id: 'evil\u001b[2J', created_at: '2026-01-01T00:00:00.000Z', revoked_at: null });
    const shown = await verifyLive();
    expect(shown.code).toBe(1);
    expect(shown.stdout).toMatch(/but its entry \(agent evil.*\[2J\) is active again/);
    expect(shown.stdout).not.toContain('\u001b');
    // Revoked again (logged again): it passes.
    await json('agents', 'revoke-key', created.key_id, '--as', 'heidi');
    // (read from the table: the server may still remember the key from the call above for a few seconds)
    await expect(authenticateApiKey(stack.deps.apiKeys, created.api_key)).rejects.toThrow(/valid agent API key/);
    const after = await verifyLive();
    expect(after.code, after.stdout + after.stderr).toBe(0);
    const unknown = await ackd('agents', 'revoke-key', 'key_000000000000');
    expect([unknown.code, unknown.stderr]).toEqual([1, expect.stringMatching(/ERR_NOT_FOUND: key_id: no API key key_000000000000/)]);
  }, CLI_TIMEOUT);

  it('a policy weakened or an owner changed in the table (outside ackd): audit verify --live names each with its last event; set again, it passes', async () => {
    const verifyLive = () => runAckd({ ...env, ACKD_AUDIT_KEY: stack.auditKeyPath }, 'audit', 'verify', '--live');
    await json('policy', 'set', '--agent', 'cli-guarded', '--permission', 'prod:*', '--approvals', '2', '--as', 'grace');
    await json('agents', 'create', 'cli-guarded', '--owner', 'lead@example.com', '--as', 'grace');
    await stack.settled();
    const clean = await verifyLive();
    expect(clean.code, clean.stdout + clean.stderr).toBe(0);
    await writeItemFields(stack, 'policy#cli-guarded#prod:*', { approvals: 1 });
    await writeItemFields(stack, 'agent#cli-guarded', { owner: 'mallory@example.com' });
    const live = await verifyLive();
    expect(live.code, live.stdout).toBe(1);
    expect(live.stdout).toMatch(/approval policy cli-guarded#prod:\* differs from its last event \d+ \(policy_set, .*by grace\) in approvals: it was changed outside ackd/);
    expect(live.stdout).toMatch(/agent cli-guarded: owner mallory@example.com, but its last event \d+ \(owner_set, .*by grace\) set lead@example.com: it was changed outside ackd/);
    await json('policy', 'set', '--agent', 'cli-guarded', '--permission', 'prod:*', '--approvals', '2', '--as', 'grace');
    await json('agents', 'create', 'cli-guarded', '--owner', 'lead@example.com', '--as', 'grace');
    await stack.settled();
    const after = await verifyLive();
    expect(after.code, after.stdout + after.stderr).toBe(0);
    await json('policy', 'remove', '--agent', 'cli-guarded', '--permission', 'prod:*', '--as', 'grace');
  }, CLI_TIMEOUT);

  it('refuses a bad owner before anything is created', async () => {
    for (const owner of ['not-an-email', 'a@b', 'x\u202e@example.com']) {
      const r = await ackd('agents', 'create', 'cli-bad-owner', '--owner', owner);
      expect(r.code, owner).toBe(2);
      expect(r.stderr, owner).toMatch(/ERR_INVALID_INPUT: owner: must/);
    }
    expect(await json('agents', 'list', '--agent', 'cli-bad-owner')).toEqual([]);
    expect(await stack.deps.agents.get(parseAgentId('cli-bad-owner'))).toBeUndefined();
  });
});
