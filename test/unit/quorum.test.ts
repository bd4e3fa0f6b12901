import { describe, expect, it } from 'vitest';
import { MemoryRequestStore } from '../../lambdas/adapters/memory/store.ts';
import { MemoryPolicyAudit, MemoryPolicyStore } from '../../lambdas/adapters/memory/policies.ts';
import { MemoryAgentStore } from '../../lambdas/adapters/memory/agents.ts';
import { LocalCaMinter } from '../../lambdas/adapters/local-ca/index.ts';
import { recordOwner } from '../../lambdas/core/agents.ts';
import { approvalProblem, auditEvent, chainEvent, type AuditEvent } from '../../lambdas/core/audit/event.ts';
import { ChainVerifier } from '../../lambdas/core/audit/verify.ts';
import type { AckdError } from '../../lambdas/core/errors.ts';
import { parseAgentId, parseTrustDomain } from '../../lambdas/core/ids.ts';
import { PolicyService } from '../../lambdas/core/policy.ts';
import type { Logger } from '../../lambdas/core/ports.ts';
import { quorumProblem } from '../../lambdas/core/quorum.ts';
import { ChainAdminAudit } from '../../lambdas/core/audit/admin-audit.ts';
import { AuthorizationService } from '../../lambdas/core/service.ts';
import { ManualClock } from '../helpers/clock.ts';
import { refusal } from '../helpers/refusal.ts';

const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
const agent = parseAgentId('deploy-bot');
const OPS = { type: 'operator' as const, id: 'lead' };

async function setup(policy: Record<string, unknown>, owner: string | null = null) {
  const clock = new ManualClock('2026-11-30T10:00:00.000Z');
  const trustDomain = parseTrustDomain('ackd.test');
  const store = new MemoryRequestStore(clock);
  const policies = new PolicyService({ store: new MemoryPolicyStore(), audit: new MemoryPolicyAudit(), clock });
  await policies.set({ agent: 'deploy-bot', permission: 'deploy:*', approvals: 1, approvers: [], deny: 'any', separation_of_duties: false, operator_decisions: true, ...policy }, OPS);
  const agents = new MemoryAgentStore();
  if (owner) await recordOwner(agents, agent, owner, clock);
  const minter = await LocalCaMinter.create({ trustDomain, clock });
  const service = new AuthorizationService({ trustDomain, consentBaseUrl: 'https://consent.example', retentionDays: 30 }, { store, minter, clock, logger: quiet, policies, agents });
  const { request_id } = await service.requestAuthorization({ agent_id: agent, action: 'deploy v2', permissions: ['deploy:prod'], justification: 'release', ttl_minutes: 10 });
  return { clock, store, service, id: request_id };
}


function verify(events: readonly AuditEvent[]) {
  const v = new ChainVerifier();
  for (const e of events) v.addEvent(e);
  return v.finish();
}

describe('quorum on the in-memory adapters', () => {
  it('2 of 2: the first vote leaves it pending (1 of 2), a repeat vote is refused, the second approves; the SVID comes only then', async () => {
    const { store, service, id } = await setup({ approvals: 2 });
    expect((await store.get(id))!.quorum).toMatchObject({ approvals: 2, policies: ['deploy-bot#deploy:*'] });
    const first = await service.decide(id, 'approved', 'sub-alice', 'alice@example.com');
    expect(first.decision).toBe('pending');
    expect(await service.check(agent, id)).toEqual({ status: 'pending', approvals: { have: 1, need: 2 }, payload_sha256: null });
    expect((await refusal(service.decide(id, 'approved', 'sub-alice', 'alice@example.com'))).code).toBe('ERR_ALREADY_VOTED');
    expect((await refusal(service.decide(id, 'denied', 'sub-alice', 'alice@example.com'))).code).toBe('ERR_ALREADY_VOTED');
    const second = await service.decide(id, 'approved', 'sub-bob', 'bob@example.com');
    expect(second).toMatchObject({ decision: 'approved', approver_identity: 'sub-bob' });
    expect(second.votes!.map((v) => [v.voter, v.vote])).toEqual([
      ['sub-alice', 'approve'],
      ['sub-bob', 'approve'],
    ]);
    expect(await service.check(agent, id)).toMatchObject({ status: 'approved', svid_delivered: false });
    const types = store.chainEvents().map((e) => e.type);
    expect(types).toEqual(['requested', 'voted', 'refused', 'refused', 'approved', 'svid_issued']);
    const report = verify(store.chainEvents());
    expect(report.problems).toEqual([]);
    expect(report.svids_issued).toBe(1);
  });

  it("separation of duties: the agent's owner cannot vote on its requests; others can", async () => {
    const { store, service, id } = await setup({ separation_of_duties: true }, 'Owner@Example.com');
    const e = await refusal(service.decide(id, 'approved', 'sub-owner', 'owner@example.com'));
    expect(e.code).toBe('ERR_FORBIDDEN');
    expect(e.message).toMatch(/separation of duties/);
    expect((await store.get(id))!.decision).toBe('pending');
    expect(store.chainEvents().at(-1)).toMatchObject({ type: 'refused', actor_id: 'sub-owner' });
    expect((await service.decide(id, 'approved', 'sub-other', 'other@example.com')).decision).toBe('approved');
  });

  it('approver groups and operator decisions decide who may vote', async () => {
    const { service, id } = await setup({ approvers: ['sre'], operator_decisions: false });
    expect((await refusal(service.decide(id, 'approved', 'sub-dev', 'dev@example.com', { groups: ['approvers', 'dev'] }))).message).toMatch(/"sre"/);
    expect((await refusal(service.decide(id, 'approved', 'operator:root'))).message).toMatch(/operator decisions/);
    expect((await service.decide(id, 'approved', 'sub-sre', 'sre@example.com', { groups: ['approvers', 'sre'] })).decision).toBe('approved');
  });

  it('deny any: one denial decides a 3-of-3; deny majority: it takes as many denials as approvals', async () => {
    const any = await setup({ approvals: 3 });
    await any.service.decide(any.id, 'approved', 'sub-a');
    expect((await any.service.decide(any.id, 'denied', 'sub-b')).decision).toBe('denied');
    expect(await any.service.check(agent, any.id)).toEqual({ status: 'denied', payload_sha256: null });

    const majority = await setup({ approvals: 2, deny: 'majority' });
    expect((await majority.service.decide(majority.id, 'denied', 'sub-a')).decision).toBe('pending');
    expect((await majority.service.decide(majority.id, 'approved', 'sub-b')).decision).toBe('pending');
    expect((await majority.service.decide(majority.id, 'denied', 'sub-c')).decision).toBe('denied');
    expect(verify(majority.store.chainEvents()).problems).toEqual([]);
  });

  it('concurrent votes make exactly one decision, and every vote is counted once', async () => {
    const { store, service, id } = await setup({ approvals: 5 });
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => service.decide(id, 'approved', `sub-${i}`)));
    const decided = store.chainEvents().filter((e) => e.type === 'approved');
    expect(decided).toHaveLength(1);
    expect(decided[0]!.votes).toHaveLength(5);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as AckdError).code).toBe('ERR_ALREADY_DECIDED');
    expect(verify(store.chainEvents()).problems).toEqual([]);
  });

  it('an approval short of its quorum, planted in the table and the chain, gets no SVID and fails verification', async () => {
    const { store, service, id, clock } = await setup({ approvals: 2 });
    await service.decide(id, 'approved', 'sub-alice');
    const now = clock.now().toISOString();
    // A table writer marks it approved with one vote.
    store.tamper(id, { decision: 'approved', approver_identity: 'sub-alice', decision_at: now, svid_expires_at: new Date(Date.parse(now) + 600_000).toISOString() });
    expect((await refusal(service.check(agent, id))).code).toBe('ERR_NOT_APPROVED');
    // And an approved event forged with a recomputed hash still names only one approval.
    const rec = (await store.get(id))!;
    const last = store.chainEvents().at(-1)!;
    const forged = chainEvent(auditEvent('approved', { type: 'approver', id: 'sub-alice' }, clock.now()), rec, last, clock.now());
    expect(approvalProblem(rec, forged, store.chainEvents()[0])).toMatch(/1 of the 2 approvals/);
    expect(quorumProblem(rec)).toMatch(/1 of the 2/);
    const report = verify([...store.chainEvents(), forged]);
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => p.message).join('\n')).toMatch(/quorum/);
  });

  it('policy changes are events of the chain: a rewritten one breaks its hash', async () => {
    const clock = new ManualClock('2026-11-30T10:00:00.000Z');
    const store = new MemoryRequestStore(clock);
    const policies = new PolicyService({ store: new MemoryPolicyStore(), audit: new ChainAdminAudit(store), clock });
    const base = { agent: '*', permission: 'db:*', approvers: [], deny: 'any', separation_of_duties: false, operator_decisions: true };
    await policies.set({ ...base, approvals: 2 }, OPS);
    await policies.set({ ...base, approvals: 3 }, OPS);
    await policies.remove('*', 'db:*', OPS);
    const chain = store.chainEvents() as unknown as Record<string, unknown>[];
    expect(chain.map((e) => e.type)).toEqual(['policy_set', 'policy_set', 'policy_removed']);
    expect(chain[1]).toMatchObject({ actor_type: 'operator', actor_id: 'lead', policy: { approvals: 3 }, previous: { approvals: 2 } });
    expect(verify(store.chainEvents()).problems).toEqual([]);
    const rewritten = { ...chain[1], policy: { ...(chain[1]!.policy as object), approvals: 1 } } as unknown as AuditEvent;
    const report = verify([store.chainEvents()[0]!, rewritten, store.chainEvents()[2]!]);
    expect(report.problems.map((p) => p.kind)).toContain('hash');
  });

  it('a quorum lowered in the table gets no SVID: the rule must be the one the request was made with', async () => {
    const { store, service, id } = await setup({ approvals: 2 });
    store.tamper(id, { quorum: { ...(await store.get(id))!.quorum!, approvals: 1 } });
    expect((await service.decide(id, 'approved', 'sub-mallory')).decision).toBe('approved'); // the item alone says one is enough
    const e = await refusal(service.check(agent, id));
    expect(e.code).toBe('ERR_NOT_APPROVED');
    expect(store.chainEvents().at(-1)!.reason).toMatch(/quorum differs from (its request|the approval recorded)/);
    expect(verify(store.chainEvents()).problems.map((p) => p.message).join('\n')).toMatch(/differs from the request's earlier events|does not meet its quorum/);
  });

  it('votes written onto the item without their events do not count: no SVID', async () => {
    const { store, service, id, clock } = await setup({ approvals: 2 });
    const at = clock.now().toISOString();
    store.tamper(id, { votes: [{ voter: 'sub-ghost', email: null, vote: 'approve', at, groups: [] }] });
    expect((await service.decide(id, 'approved', 'sub-alice')).decision).toBe('approved');
    const e = await refusal(service.check(agent, id));
    expect(e.code).toBe('ERR_NOT_APPROVED');
    // The approval event replays the votes actually cast (alice's), so the item's extra vote stands out.
    expect(store.chainEvents().at(-1)!.reason).toMatch(/votes differs from the approval recorded|counts 2 votes, but the audit log holds 1 vote events/);
  });

  it('the verifier refuses votes that no voter cast: one added by someone else, two at once, or one removed', async () => {
    const { store, service, id, clock } = await setup({ approvals: 3 });
    await service.decide(id, 'approved', 'sub-alice');
    const rec = (await store.get(id))!;
    const last = store.chainEvents().at(-1)!;
    const at = clock.now().toISOString();
    const forge = (actor: string, votes: typeof rec.votes) => chainEvent(auditEvent('voted', { type: 'approver', id: actor }, clock.now()), { ...rec, votes }, last, clock.now());
    const messages = (e: AuditEvent) => verify([...store.chainEvents(), e]).problems.map((p) => p.message).join('\n');
    expect(messages(forge('sub-bob', [...rec.votes!, { voter: 'sub-carol', email: null, vote: 'approve', at, groups: [] }]))).toMatch(/sub-carol's, but the event was made by sub-bob/);
    const two = [...rec.votes!, { voter: 'sub-bob', email: null, vote: 'approve' as const, at, groups: [] }, { voter: 'sub-carol', email: null, vote: 'approve' as const, at, groups: [] }];
    expect(messages(forge('sub-bob', two))).toMatch(/exactly one vote/);
    expect(messages(forge('sub-bob', []))).toMatch(/exactly one vote/);
  });
});
