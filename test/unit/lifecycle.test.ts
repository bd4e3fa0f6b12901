import { describe, expect, it, vi } from 'vitest';
import { MemoryRequestStore } from '../../lambdas/adapters/memory/store.ts';
import { LocalCaMinter } from '../../lambdas/adapters/local-ca/index.ts';
import { compileTransition } from '../../lambdas/adapters/dynamodb/store.ts';
import { ChainVerifier } from '../../lambdas/core/audit/verify.ts';
import { parseAgentId, parseTrustDomain, type RequestId, type SpiffeId, type SvidId } from '../../lambdas/core/ids.ts';
import {
  conditionOf,
  fieldsChangedBy,
  holds,
  refusal,
  stateOf,
  statesBefore,
  STATES,
  TRANSITIONS,
  type Params,
  type State,
  type StoredItem,
  type Transition,
  type TransitionName,
} from '../../lambdas/core/lifecycle.ts';
import type { Logger } from '../../lambdas/core/ports.ts';
import { AuthorizationService } from '../../lambdas/core/service.ts';
import { pendingRecord } from '../helpers/consent-fixtures.ts';
import { ManualClock } from '../helpers/clock.ts';
import { refusal as refusalOf } from '../helpers/refusal.ts';

const T0 = new Date('2026-11-30T10:00:00.000Z');

/** A stored request in `state`, as the table's fields make it. */
function itemIn(state: State, over: Partial<StoredItem> = {}): StoredItem {
  const base = pendingRecord({ ttl_minutes: 10 }, T0);
  const decided = { decision_at: '2026-11-30T10:01:00.000Z', approver_identity: 'sub-a' };
  const byState: Record<State, Partial<StoredItem>> = {
    pending: {},
    denied: { decision: 'denied', ...decided },
    expired: { decision: 'expired', decision_at: base.expires_at },
    approved: { decision: 'approved', ...decided, svid_expires_at: '2026-11-30T10:11:00.000Z' },
    issued: { decision: 'approved', ...decided, svid_expires_at: '2026-11-30T10:11:00.000Z', svid_id: 'ab' as SvidId },
    revoked: { decision: 'approved', ...decided, svid_expires_at: '2026-11-30T10:11:00.000Z', svid_id: 'ab' as SvidId, revoked: true, revoked_at: '2026-11-30T10:02:00.000Z' },
  };
  return { ...base, ...byState[state], ...over } as StoredItem;
}

/** Parameters for every row, at `now`. */
function paramsAt(now: Date, over: Params = {}): Params {
  return {
    now: now.toISOString(),
    nowMs: now.getTime(),
    approver: 'sub-b',
    email: null,
    svidExpiresAt: new Date(now.getTime() + 600_000).toISOString(),
    claim: 'claim-1',
    until: now.getTime() + 30_000,
    svidId: 'ab',
    by: 'agent:deploy-bot',
    reason: null,
    outcome: 'sent',
    seen: 0,
    vote: { voter: 'sub-b', email: null, vote: 'approve', at: now.toISOString(), groups: [] },
    ...over,
  };
}

describe('the lifecycle table', () => {
  const names = Object.keys(TRANSITIONS) as TransitionName[];
  const moments = [new Date(T0.getTime() + 60_000), new Date(T0.getTime() + 20 * 60_000)];
  const variants: Partial<StoredItem>[] = [{}, { issuing_claim: 'claim-1', issuing_until: T0.getTime() + 90_000 }, { issuing_claim: 'other', issuing_until: T0.getTime() + 90_000 }];

  it('each write applies exactly when the table names no refusal (the condition and the refusals are one rule)', () => {
    let cases = 0;
    for (const name of names) {
      const t: Transition = TRANSITIONS[name];
      for (const state of STATES) {
        for (const now of moments) {
          for (const v of variants) {
            for (const svidId of ['ab', 'cd']) {
              const item = itemIn(state, v);
              const params = paramsAt(now, { svidId });
              const applies = holds(conditionOf(t), item, params);
              const rf = refusal(t, item, params);
              expect(applies, `${name} in ${state} at ${params.now as string}`).toBe(rf === null);
              if (!t.from.includes(state) && !t.doneIn?.includes(state)) expect(rf).not.toBeNull();
              cases++;
            }
          }
        }
      }
    }
    expect(cases).toBe(names.length * STATES.length * moments.length * variants.length * 2);
  });

  it('names the refusals the API documents', () => {
    const at = paramsAt(moments[0]!);
    const late = paramsAt(moments[1]!);
    const code = (name: TransitionName, state: State, params: Params, over: Partial<StoredItem> = {}) => {
      const rf = refusal(TRANSITIONS[name], itemIn(state, over), params);
      return rf === null || rf === 'unchanged' ? rf : rf.code;
    };
    expect(code('approve', 'pending', at)).toBeNull();
    expect(code('approve', 'pending', late)).toBe('ERR_EXPIRED');
    expect(code('approve', 'expired', at)).toBe('ERR_EXPIRED');
    expect(code('deny', 'approved', at)).toBe('ERR_ALREADY_DECIDED');
    expect(code('expire', 'pending', at)).toBe('ERR_CONFLICT');
    expect(code('expire', 'pending', late)).toBeNull();
    expect(code('claimIssuance', 'pending', at)).toBe('ERR_NOT_APPROVED');
    expect(code('claimIssuance', 'issued', at)).toBe('ERR_CONFLICT');
    expect(code('claimIssuance', 'approved', late)).toBe('ERR_EXPIRED');
    const inLog = { decision_seq: 7 };
    expect(code('claimIssuance', 'approved', at, { ...inLog, issuing_until: moments[0]!.getTime() + 1 })).toBe('ERR_ISSUANCE_IN_PROGRESS');
    expect(code('claimIssuance', 'approved', at, { ...inLog, issuing_until: moments[0]!.getTime() })).toBeNull();
    // The approval not yet sequenced: wait; nothing waiting and no decision in the log: written into the table.
    expect(code('claimIssuance', 'approved', at, { audit_outbox: [{ row: 'approve' }] as never })).toBe('ERR_ISSUANCE_IN_PROGRESS');
    expect(code('claimIssuance', 'approved', at)).toBe('ERR_NOT_APPROVED');
    expect(code('issue', 'approved', at, { issuing_claim: 'other' })).toBe('ERR_ISSUANCE_IN_PROGRESS');
    expect(code('revoke', 'approved', at)).toBe('ERR_NOT_ISSUED');
    expect(code('revoke', 'issued', paramsAt(moments[0]!, { svidId: 'cd' }))).toBe('ERR_SVID_MISMATCH');
    expect(code('revoke', 'revoked', at)).toBe('unchanged');
    expect(code('revoke', 'revoked', paramsAt(moments[0]!, { svidId: 'cd' }))).toBe('ERR_SVID_MISMATCH');
    expect(code('vote', 'pending', at, { voters: ['sub-b'] })).toBe('ERR_ALREADY_VOTED');
    expect(code('approve', 'pending', paramsAt(moments[0]!, { seen: 1 }))).toBe('ERR_CONFLICT'); // a vote landed since the tally was read
  });

  it('states come from the stored fields alone', () => {
    for (const s of STATES) expect(stateOf(itemIn(s))).toBe(s);
  });

  it('tells the verifier which event changes what, from where', () => {
    expect([...fieldsChangedBy('approved')].sort()).toEqual(['approver_email', 'approver_identity', 'decision', 'decision_at', 'decision_signature', 'svid_expires_at', 'voters', 'votes']);
    expect([...fieldsChangedBy('voted')].sort()).toEqual(['voters', 'votes']);
    expect([...fieldsChangedBy('svid_issued')]).toContain('svid_id');
    expect(fieldsChangedBy('refused').has('decision')).toBe(false);
    expect([...statesBefore('revoked')!].sort()).toEqual(['approved', 'issued']); // the agent revokes its SVID; a human, an approval with or without one
    expect([...statesBefore('approved')!]).toEqual(['pending']);
    expect(statesBefore('requested')).toBeUndefined();
  });

  it('compiles to one DynamoDB condition holding the from-state and the guards', () => {
    const u = compileTransition(TRANSITIONS.approve, paramsAt(moments[0]!));
    const shape = (x: string | undefined) => x?.replace(/:v\d+/g, ':v');
    expect(shape(u.ConditionExpression)).toBe(
      'attribute_exists(pk) AND #decision = :v AND #expires_at > :v AND NOT contains(#voters, :v) AND (attribute_not_exists(#votes) OR size(#votes) = :v)',
    );
    expect(shape(u.UpdateExpression)).toBe(
      'SET #votes = list_append(if_not_exists(#votes, :v), :v), #voters = list_append(if_not_exists(#voters, :v), :v), #decision = :v, #decision_at = :v, #approver_identity = :v, #approver_email = :v, #svid_expires_at = :v, #decision_signature = :v REMOVE #pending',
    );
    expect(Object.values(u.ExpressionAttributeValues ?? {})).toContain('pending');
    const claim = compileTransition(TRANSITIONS.claimIssuance, paramsAt(moments[0]!));
    expect(claim.ConditionExpression).toContain('(attribute_not_exists(#issuing_until) OR #issuing_until <= :');
    // Parentheses only where precedence needs them (an OR group inside an AND; AND binds tighter
    // than OR): DynamoDB refuses redundant ones such as `((a OR b))`, and the local store's parser
    // slows exponentially with their nesting.
    const either = compileTransition(TRANSITIONS.revokeApproval, paramsAt(moments[0]!)).ConditionExpression!;
    expect(shape(either)).toBe(
      'attribute_exists(pk) AND (#decision = :v AND attribute_type(#svid_id, :v) AND #revoked = :v OR #decision = :v AND attribute_exists(#svid_id) AND NOT attribute_type(#svid_id, :v) AND #revoked = :v)',
    );
    expect(shape(claim.ConditionExpression)).toBe(
      // (its guard "in the log, or nothing waits" is absorbed by the next, "in the log": A AND (A OR B) is A; both still name the refusal)
      'attribute_exists(pk) AND #decision = :v AND attribute_type(#svid_id, :v) AND #revoked = :v AND #svid_expires_at > :v AND (attribute_not_exists(#issuing_until) OR #issuing_until <= :v) AND attribute_exists(#decision_seq) AND NOT attribute_type(#decision_seq, :v)',
    );
    expect(Object.keys(claim.ExpressionAttributeValues ?? {})).toHaveLength(8); // no value left unused (DynamoDB refuses those)
    expect(compileTransition(TRANSITIONS.recordRefusal, paramsAt(moments[0]!)).ConditionExpression).toBe('attribute_exists(pk)');
    for (const [name, t] of Object.entries(TRANSITIONS)) {
      const cond = compileTransition(t, paramsAt(moments[0]!, { call: 'c', status: 's', payloadSha256: 'd', notAfter: 'n' })).ConditionExpression;
      expect(groupingDepth(cond ?? ''), `${name}: ${cond}`).toBeLessThanOrEqual(1);
    }
    expect(() => compileTransition(TRANSITIONS.revoke, { now: 'x', by: 'agent:a' })).toThrow(/parameter svidId is missing/);
  });
});

/** How deep grouping parentheses nest in a condition (a function call's are not grouping). */
function groupingDepth(cond: string): number {
  let depth = 0;
  let max = 0;
  const stack: boolean[] = [];
  for (let i = 0; i < cond.length; i++) {
    if (cond[i] === '(') {
      const grouping = !/[A-Za-z_]/.test(cond[i - 1] ?? ' ');
      stack.push(grouping);
      if (grouping) max = Math.max(max, ++depth);
    } else if (cond[i] === ')' && stack.pop()) depth--;
  }
  return max;
}

const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

async function setup() {
  const clock = new ManualClock(T0);
  const trustDomain = parseTrustDomain('ackd.test');
  const store = new MemoryRequestStore(clock);
  const minter = await LocalCaMinter.create({ trustDomain, clock });
  const service = new AuthorizationService({ trustDomain, consentBaseUrl: 'https://consent.example', retentionDays: 30 }, { store, minter, clock, logger: quiet });
  return { clock, store, service };
}

const agent = parseAgentId('deploy-bot');
const ask = (service: AuthorizationService, ttl = 10) =>
  service.requestAuthorization({ agent_id: agent, action: 'deploy v2', permissions: ['deploy:prod'], justification: 'release', ttl_minutes: ttl });


function verifyChain(store: MemoryRequestStore) {
  const v = new ChainVerifier();
  for (const e of store.chainEvents()) v.addEvent(e);
  return v.finish();
}

describe('the service on in-memory adapters', () => {
  it('request → approve → one SVID → delivered → revoke, every step in a chain that verifies', async () => {
    const { store, service } = await setup();
    const { request_id } = await ask(service);
    expect(await service.check(agent, request_id)).toEqual({ status: 'pending', approvals: { have: 0, need: 1 }, payload_sha256: null });
    await service.decide(request_id, 'approved', 'sub-alice', 'alice@example.com');
    const first = await service.check(agent, request_id);
    expect(first).toMatchObject({ status: 'approved', svid_delivered: false });
    expect(first.status === 'approved' && first.svid).toContain('BEGIN CERTIFICATE');
    const again = await service.check(agent, request_id);
    expect(again).toMatchObject({ status: 'approved', svid_delivered: true });
    expect('svid' in again).toBe(false);
    const svidId = (first as unknown as { svid_id: SvidId }).svid_id;
    expect((await refusalOf(service.revoke(agent, request_id, 'ffff' as SvidId))).code).toBe('ERR_SVID_MISMATCH');
    const revoked = await service.revoke(agent, request_id, svidId);
    expect(await service.revoke(agent, request_id, svidId)).toEqual(revoked); // idempotent, no second event
    expect(await service.check(agent, request_id)).toMatchObject({ status: 'revoked' });
    expect(store.chainEvents().map((e) => e.type)).toEqual(['requested', 'approved', 'svid_issued', 'refused', 'revoked']);
    const report = verifyChain(store);
    expect(report.problems).toEqual([]);
    expect(report.svids_issued).toBe(1);
  });

  it('a second decision is refused and recorded; a late one records the expiry first', async () => {
    const { store, service, clock } = await setup();
    const a = (await ask(service)).request_id;
    await service.decide(a, 'denied', 'sub-alice');
    expect((await refusalOf(service.decide(a, 'approved', 'sub-bob'))).code).toBe('ERR_ALREADY_DECIDED');
    expect(await service.check(agent, a)).toEqual({ status: 'denied', payload_sha256: null });
    const b = (await ask(service, 1)).request_id;
    clock.advanceMinutes(2);
    expect((await refusalOf(service.decide(b, 'approved', 'sub-alice'))).code).toBe('ERR_EXPIRED');
    const types = store.chainEvents().filter((e) => e.request_id === b).map((e) => e.type);
    expect(types).toEqual(['requested', 'expired', 'refused']);
    expect((await store.get(b))!.decision).toBe('expired');
    expect(verifyChain(store).ok).toBe(true);
  });

  it('the sweeper expires overdue requests once', async () => {
    const { store, service, clock } = await setup();
    const ids: RequestId[] = [];
    for (let i = 0; i < 3; i++) ids.push((await ask(service, 1)).request_id);
    clock.advanceMinutes(1);
    expect((await service.sweep()).expired).toBe(3);
    expect((await service.sweep()).expired).toBe(0);
    for (const id of ids) expect((await store.get(id))!.decision).toBe('expired');
  });

  it('tells the sequencer of issued SVIDs after the pickups that issued them, once for pickups in flight together', async () => {
    const clock = new ManualClock(T0);
    const trustDomain = parseTrustDomain('ackd.test');
    const store = new MemoryRequestStore(clock);
    const minter = await LocalCaMinter.create({ trustDomain, clock });
    let nudges = 0;
    const service = new AuthorizationService({ trustDomain, consentBaseUrl: 'https://consent.example', retentionDays: 30 }, { store, minter, clock, logger: quiet, auditNudge: () => void nudges++ });
    const ids = [(await ask(service)).request_id, (await ask(service, 2)).request_id, (await ask(service, 3)).request_id];
    for (const id of ids) await service.decide(id, 'approved', 'sub-alice');
    const tick = () => new Promise((r) => setImmediate(r));
    nudges = 0;
    expect(await service.check(agent, ids[0]!)).toMatchObject({ svid_delivered: false });
    expect(nudges).toBe(0); // not before the SVID's response is on its way
    await tick();
    expect(nudges).toBe(1);
    nudges = 0;
    const both = await Promise.all(ids.slice(1).map((id) => service.check(agent, id)));
    expect(both.map((r) => r.status === 'approved' && r.svid_delivered)).toEqual([false, false]);
    await tick();
    expect(nudges).toBe(1); // one run for both
    await new Promise((r) => setTimeout(r, 150));
    expect(nudges).toBe(1);
    expect(store.chainEvents().filter((e) => e.type === 'svid_issued')).toHaveLength(3);
  });

  it('a pickup that stays in flight holds back the sequencer for the others for a bounded time only', async () => {
    const clock = new ManualClock(T0);
    const trustDomain = parseTrustDomain('ackd.test');
    const store = new MemoryRequestStore(clock);
    const ca = await LocalCaMinter.create({ trustDomain, clock });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let slow = '';
    const minter = { ...ca, trustBundlePem: () => ca.trustBundlePem(), mint: async (id: SpiffeId, notAfter: Date) => (id.toString() === slow ? gate.then(() => ca.mint(id, notAfter)) : ca.mint(id, notAfter)) };
    let nudges = 0;
    const service = new AuthorizationService({ trustDomain, consentBaseUrl: 'https://consent.example', retentionDays: 30 }, { store, minter, clock, logger: quiet, auditNudge: () => void nudges++ });
    const [a, b] = [(await ask(service)).request_id, (await ask(service, 2)).request_id];
    for (const id of [a, b]) await service.decide(id, 'approved', 'sub-alice');
    slow = (await store.get(b))!.spiffe_id;
    nudges = 0;
    const held = service.check(agent, b); // its mint waits for the gate
    expect(await service.check(agent, a)).toMatchObject({ svid_delivered: false });
    await new Promise((r) => setImmediate(r));
    expect(nudges).toBe(0); // b is in flight: a's event waits for it ...
    await vi.waitFor(() => expect(nudges).toBe(1), { timeout: 2_000, interval: 10 }); // ... 100 ms at most
    release();
    expect(await held).toMatchObject({ svid_delivered: false });
    await new Promise((r) => setImmediate(r));
    expect(nudges).toBe(2);
  });

  it('an item set to approved without an approval in the chain gets no SVID', async () => {
    const { store, service } = await setup();
    const { request_id } = await ask(service);
    store.tamper(request_id, { decision: 'approved', approver_identity: 'sub-mallory', decision_at: T0.toISOString(), svid_expires_at: new Date(T0.getTime() + 600_000).toISOString() });
    expect((await refusalOf(service.check(agent, request_id))).code).toBe('ERR_NOT_APPROVED');
    expect(store.raw(request_id)!.issuing_claim).toBeUndefined(); // the claim was given back
    expect(store.chainEvents().at(-1)).toMatchObject({ type: 'refused', actor_type: 'system' });
  });

  it('a human revokes an approval before or after its SVID; anything else is refused; the chain verifies', async () => {
    const { store, service } = await setup();
    const early = (await ask(service)).request_id;
    await service.decide(early, 'approved', 'sub-alice', 'alice@example.com');
    const r = await service.revokeApproval(early, 'sub-bob', 'bob@example.com', 'wrong ticket');
    expect(r).toMatchObject({ revoked: true, revoked_by: 'sub-bob', revoked_by_email: 'bob@example.com', revoke_reason: 'wrong ticket', svid_id: null });
    expect(await service.check(agent, early)).toMatchObject({ status: 'revoked' }); // never minted
    expect(await service.revokeApproval(early, 'operator:carol')).toMatchObject({ revoked_by: 'sub-bob' }); // idempotent
    const late = (await ask(service)).request_id;
    await service.decide(late, 'approved', 'sub-alice');
    expect(await service.check(agent, late)).toMatchObject({ status: 'approved', svid_delivered: false });
    expect((await service.revokeApproval(late, 'operator:carol', null, null)).revoked_by).toBe('operator:carol');
    const pending = (await ask(service)).request_id;
    expect((await refusalOf(service.revokeApproval(pending, 'operator:carol'))).code).toBe('ERR_NOT_APPROVED');
    const revokedEvents = store.chainEvents().filter((e) => e.type === 'revoked');
    expect(revokedEvents.map((e) => [e.actor_type, e.actor_id, e.reason])).toEqual([
      ['approver', 'sub-bob', 'wrong ticket'],
      ['operator', 'carol', null],
    ]);
    expect(verifyChain(store).problems).toEqual([]);
  });

  it('an approval revoked while its SVID is being minted: the SVID is never recorded or handed out', async () => {
    const { store, service, clock } = await setup();
    const { request_id } = await ask(service);
    await service.decide(request_id, 'approved', 'sub-alice');
    const trustDomain = parseTrustDomain('ackd.test');
    const ca = await LocalCaMinter.create({ trustDomain, clock });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = new AuthorizationService(
      { trustDomain, consentBaseUrl: 'https://consent.example', retentionDays: 30 },
      { store, clock, logger: quiet, minter: { mint: async (id, notAfter) => (await gate, ca.mint(id, notAfter)), trustBundlePem: () => ca.trustBundlePem() } },
    );
    const checking = slow.check(agent, request_id);
    await new Promise((r) => setTimeout(r, 10)); // the check holds the claim and is minting
    await service.revokeApproval(request_id, 'sub-bob', null, 'changed my mind');
    release();
    const e = await refusalOf(checking);
    expect(e.code).toBe('ERR_ISSUANCE_IN_PROGRESS');
    expect((await store.get(request_id))!).toMatchObject({ revoked: true, svid_id: null });
    expect(await service.check(agent, request_id)).toMatchObject({ status: 'revoked' });
    expect(store.chainEvents().some((ev) => ev.type === 'svid_issued')).toBe(false);
  });

  it('a lease held by another call refuses a second mint until it runs out', async () => {
    const { store, service, clock } = await setup();
    const { request_id } = await ask(service);
    await service.decide(request_id, 'approved', 'sub-alice');
    store.tamper(request_id, { issuing_claim: 'someone-else', issuing_until: clock.now().getTime() + 30_000 });
    expect((await refusalOf(service.check(agent, request_id))).code).toBe('ERR_ISSUANCE_IN_PROGRESS');
    clock.advance(30_000);
    expect(await service.check(agent, request_id)).toMatchObject({ status: 'approved', svid_delivered: false });
  });
});
