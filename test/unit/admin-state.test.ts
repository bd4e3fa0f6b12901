/**
 * Live verification holds the operators' settings in the table to what the log last says of them
 * (core/audit/admin-state.ts): a policy changed, removed or put back, or an owner changed, outside
 * ackd is a problem naming the setting and its last event. (The stack path: policy-cli.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { MemoryAgentStore } from '../../lambdas/adapters/memory/agents.ts';
import { MemoryPolicyStore } from '../../lambdas/adapters/memory/policies.ts';
import { AdminStateCheck } from '../../lambdas/core/audit/admin-state.ts';
import { parseAgentId } from '../../lambdas/core/ids.ts';
import { policyKey, type Policy } from '../../lambdas/core/policy.ts';

const policy = (over: Partial<Policy> = {}): Policy => ({
  agent: 'deploy-bot',
  permission: 'deploy:*',
  approvals: 2,
  approvers: [],
  deny: 'any',
  separation_of_duties: true,
  operator_decisions: false,
  route: null,
  escalate_to: null,
  escalate_after: 50,
  passkey: 'required',
  updated_at: '2026-11-30T10:00:00.000Z',
  updated_by: 'operator:alice',
  ...over,
});
let seq = 0;
const ev = (type: string, fields: Record<string, unknown>) => ({ type, seq: ++seq, at: '2026-11-30T10:00:00.000Z', actor_id: 'alice', ...fields });

async function check(events: Record<string, unknown>[], policies: MemoryPolicyStore, agents: MemoryAgentStore, settings = true) {
  const c = new AdminStateCheck();
  for (const e of events) c.add(e as { type: string });
  return (await c.problems({ policies, agents }, { settings })).map((p) => p.message);
}

describe('operators\' settings against their last event', () => {
  it('as logged: no problem; the last event per setting counts', async () => {
    const policies = new MemoryPolicyStore();
    const agents = new MemoryAgentStore();
    const p = policy();
    policies.policies.set(policyKey(p.agent, p.permission), p);
    await agents.put({ agent_id: parseAgentId('deploy-bot'), owner: 'lead@example.com', created_at: 'x', updated_at: 'x' });
    const events = [ev('policy_set', { policy: policy({ approvals: 1 }) }), ev('policy_set', { policy: p }), ev('owner_set', { agent_id: 'deploy-bot', owner: null }), ev('owner_set', { agent_id: 'deploy-bot', owner: 'lead@example.com' })];
    expect(await check(events, policies, agents)).toEqual([]);
  });

  it('a policy weakened, removed or put back, and an owner changed, outside ackd: each named with its last event', async () => {
    const policies = new MemoryPolicyStore();
    const agents = new MemoryAgentStore();
    const weakened = policy();
    policies.policies.set(policyKey(weakened.agent, weakened.permission), { ...weakened, approvals: 1, passkey: undefined as never });
    const removed = policy({ permission: 'db:*' });
    const putBack = policy({ permission: 'aws:*' });
    policies.policies.set(policyKey(putBack.agent, putBack.permission), putBack);
    await agents.put({ agent_id: parseAgentId('deploy-bot'), owner: 'mallory@example.com', created_at: 'x', updated_at: 'x' });
    const events = [ev('policy_set', { policy: weakened }), ev('policy_set', { policy: removed }), ev('policy_set', { policy: putBack }), ev('policy_removed', { policy: putBack }), ev('owner_set', { agent_id: 'deploy-bot', owner: 'lead@example.com' })];
    const problems = await check(events, policies, agents);
    expect(problems).toEqual([
      expect.stringMatching(/^approval policy deploy-bot#deploy:\* differs from its last event \d+ \(policy_set, .*by alice\) in approvals, passkey: it was changed outside ackd$/),
      expect.stringMatching(/^approval policy deploy-bot#db:\* is gone, but its last event \d+ \(policy_set.*\) set it: it was removed outside ackd$/),
      expect.stringMatching(/^approval policy deploy-bot#aws:\* is in force, but its last event \d+ \(policy_removed.*\) removed it: it was put back outside ackd$/),
      expect.stringMatching(/^agent deploy-bot: owner mallory@example.com, but its last event \d+ \(owner_set.*\) set lead@example.com: it was changed outside ackd$/),
    ]);
    // While changes wait to be sequenced, settings are not compared (a change made a moment ago is not logged yet).
    expect(await check(events, policies, agents, false)).toEqual([]);
  });

  it('a field the logged policy does not have (logged by an older version) is not compared', async () => {
    const policies = new MemoryPolicyStore();
    const { route: _r, escalate_to: _e, escalate_after: _a, passkey: _p, ...old } = policy();
    policies.policies.set(policyKey(old.agent, old.permission), policy({ passkey: undefined as never }));
    expect(await check([ev('policy_set', { policy: old })], policies, new MemoryAgentStore())).toEqual([]);
  });
});
