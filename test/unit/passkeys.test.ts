import { createHash } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryRequestStore } from '../../lambdas/adapters/memory/store.ts';
import { MemoryNonceStore, MemoryPasskeyStore } from '../../lambdas/adapters/memory/passkeys.ts';
import { MemoryPolicyStore } from '../../lambdas/adapters/memory/policies.ts';
import { SimpleWebAuthnVerifier } from '../../lambdas/adapters/webauthn/simplewebauthn.ts';
import { LocalCaMinter } from '../../lambdas/adapters/local-ca/index.ts';
import { decisionChallenge, decisionChallengeB64, parsePasskeyAssertion, passkeyChangeChallengeB64, passkeyRequirement, PasskeyService, verifyLoggedPasskeys, withPasskeyRule, type PasskeyRule } from '../../lambdas/core/passkeys.ts';
import { AuthorizationService } from '../../lambdas/core/service.ts';
import { PolicyService, parsePolicyInput, resolvePolicy, type Policy } from '../../lambdas/core/policy.ts';
import { quorumOf } from '../../lambdas/core/quorum.ts';
import { Sequencer } from '../../lambdas/core/audit/sequencer.ts';
import { parseAgentId, type RequestId } from '../../lambdas/core/ids.ts';
import { AckdError } from '../../lambdas/core/errors.ts';
import type { PasskeyAssertion } from '../../lambdas/core/evidence.ts';
import type { Payload } from '../../lambdas/core/payload.ts';
import { ManualClock } from '../helpers/clock.ts';
import { SoftPasskey } from '../helpers/soft-passkey.ts';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const agent = parseAgentId('deploy-bot');
const ORIGIN = 'https://consent.test';
/** These decisions carry no view hash (as the CLI's): the view binding has its own tests (decide-view, consent-view); here the challenge covers an empty view. */
const VIEW: string | null = null;

async function setup(rule: PasskeyRule = 'all') {
  const clock = new ManualClock('2026-11-30T10:00:00.000Z');
  const store = new MemoryRequestStore(clock);
  const passkeyStore = new MemoryPasskeyStore();
  const passkeys = new PasskeyService({ store: passkeyStore, nonces: new MemoryNonceStore(), verifier: new SimpleWebAuthnVerifier(`${ORIGIN}/`), clock });
  const policyStore = new MemoryPolicyStore();
  const policies = new PolicyService({ store: policyStore, audit: { policyChanged: async () => undefined }, clock });
  const minter = await LocalCaMinter.create({ trustDomain: 'ackd.test' as never, clock });
  const service = new AuthorizationService(
    { trustDomain: 'ackd.test' as never, consentBaseUrl: ORIGIN, retentionDays: 30, passkeyRequired: rule },
    { store, minter, clock, logger: quiet, passkeys, policies },
  );
  const alice = new SoftPasskey('consent.test', ORIGIN);
  await passkeyStore.put(alice.stored('sub-alice', clock.now().toISOString()), 10);
  const request = async (payload?: Payload): Promise<RequestId> =>
    (await service.requestAuthorization({ agent_id: agent, action: 'deploy', permissions: ['deploy:prod'], justification: 'release', ttl_minutes: 10, ...(payload ? { payload } : {}) })).request_id;
  /** Alice asks for a challenge and signs it. */
  const signed = async (id: RequestId, decision: 'approved' | 'denied', view: string | null = VIEW, key = alice): Promise<PasskeyAssertion> => {
    const c = await passkeys.decisionChallenge('sub-alice', await service.get(id), decision, view);
    return key.assert(c.challenge, c.nonce);
  };
  const refusals = async () => {
    await new Sequencer({ store, clock, logger: quiet, sealer: store.sealer }).run();
    return store.chainEvents().filter((e) => e.type === 'refused').map((e) => e.reason);
  };
  return { clock, store, passkeys, passkeyStore, policies, service, alice, request, signed, refusals };
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof AckdError) return `${e.code}: ${e.message}`;
    throw e;
  }
  return 'no error';
}

describe('decisionChallenge', () => {
  it('is SHA-256 over the UTF-8 fields joined by "\\n", null as empty', () => {
    const want = createHash('sha256').update('bm9uY2U\nreq_1\napproved\n\n' + 'b'.repeat(64), 'utf8').digest();
    expect(Buffer.from(decisionChallenge('bm9uY2U', 'req_1', 'approved', null, 'b'.repeat(64)))).toEqual(want);
    expect(decisionChallengeB64('bm9uY2U', 'req_1', 'approved', null, 'b'.repeat(64))).toBe(want.toString('base64url'));
    // Every field moves it.
    const base = decisionChallengeB64('n', 'req_1', 'approved', 'c'.repeat(64), 'a'.repeat(64));
    for (const other of [
      decisionChallengeB64('m', 'req_1', 'approved', 'c'.repeat(64), 'a'.repeat(64)),
      decisionChallengeB64('n', 'req_2', 'approved', 'c'.repeat(64), 'a'.repeat(64)),
      decisionChallengeB64('n', 'req_1', 'denied', 'c'.repeat(64), 'a'.repeat(64)),
      decisionChallengeB64('n', 'req_1', 'approved', 'd'.repeat(64), 'a'.repeat(64)),
      decisionChallengeB64('n', 'req_1', 'approved', 'c'.repeat(64), null),
    ])
      expect(other).not.toBe(base);
    expect(() => decisionChallenge('a\nb', 'req_1', 'approved', null, null)).toThrow(/line break/);
  });
});

describe('passkeyRequirement', () => {
  it('the policy on the quorum, ACKD_PASSKEY_REQUIRED=all, or =payload with a payload', () => {
    const none = { payload_sha256: null, quorum: null };
    const withPayload = { payload_sha256: 'e'.repeat(64), quorum: null };
    expect(passkeyRequirement('none', none)).toBeNull();
    expect(passkeyRequirement('payload', none)).toBeNull();
    expect(passkeyRequirement('payload', withPayload)).toMatch(/ACKD_PASSKEY_REQUIRED=payload/);
    expect(passkeyRequirement('all', none)).toMatch(/ACKD_PASSKEY_REQUIRED=all/);
    const q = quorumOf(resolvePolicy([{ ...parsePolicyInput({ agent: '*', approvals: 1, passkey: 'required' }), updated_at: 'x', updated_by: 'operator:x' } as Policy], 'a', ['p']), null);
    expect(q.passkey).toBe('required');
    expect(passkeyRequirement('none', { payload_sha256: null, quorum: q })).toMatch(/its approval policy/);
    // The deployment's rule is fixed on the request when it is made.
    expect(withPasskeyRule(q, 'none', false)).toBe(q);
    const plain = quorumOf(resolvePolicy([], 'a', ['p']), null);
    expect(withPasskeyRule(plain, 'none', true)).not.toHaveProperty('passkey');
    expect(withPasskeyRule(plain, 'payload', false)).not.toHaveProperty('passkey');
    expect(withPasskeyRule(plain, 'payload', true).passkey).toBe('required');
    expect(withPasskeyRule(plain, 'all', false).passkey).toBe('required');
  });

  it('a policy field: "required" or absent; the strictest of several requires it if one does', () => {
    expect(parsePolicyInput({ agent: '*', approvals: 1 })).not.toHaveProperty('passkey');
    expect(parsePolicyInput({ agent: '*', approvals: 1, passkey: null })).not.toHaveProperty('passkey');
    expect(() => parsePolicyInput({ agent: '*', approvals: 1, passkey: 'yes' })).toThrow(/passkey: must be "required"/);
    const p = (permission: string, passkey?: 'required'): Policy => ({ ...parsePolicyInput({ agent: '*', permission, approvals: 1, ...(passkey ? { passkey } : {}) }), updated_at: 'x', updated_by: 'operator:x' });
    expect(resolvePolicy([p('a:*'), p('b:*', 'required')], 'x', ['a:1', 'b:1']).policy.passkey).toBe('required');
    expect(resolvePolicy([p('a:*'), p('b:*', 'required')], 'x', ['a:1']).policy).not.toHaveProperty('passkey');
  });
});

describe('decisions signed with a passkey (memory adapters)', () => {
  let s: Awaited<ReturnType<typeof setup>>;
  beforeEach(async () => {
    s = await setup('all');
  });

  it('required and missing: ERR_PASSKEY_REQUIRED, recorded; a CLI operator is told it cannot carry one', async () => {
    const id = await s.request();
    expect(await code(s.service.decide(id, 'approved', 'sub-alice', 'alice@x', { evidence: { view_sha256: VIEW } }))).toMatch(/^ERR_PASSKEY_REQUIRED: this request requires a passkey for every decision.*sign the decision with your passkey/);
    expect(await code(s.service.decide(id, 'denied', 'operator:bob'))).toMatch(/^ERR_PASSKEY_REQUIRED: .*a CLI decision cannot carry a passkey: decide in the consent UI/);
    expect((await s.service.get(id)).decision).toBe('pending');
    const refused = await s.refusals();
    expect(refused).toHaveLength(2);
    expect(refused[0]).toMatch(/^approval refused: ERR_PASSKEY_REQUIRED/);
  });

  it('a valid assertion approves; the vote and its event carry it raw; the counter moves; the log re-verifies offline', async () => {
    const id = await s.request({ commit: 'abc123', env: 'prod' });
    const assertion = await s.signed(id, 'approved');
    const r = await s.service.decide(id, 'approved', 'sub-alice', 'alice@x', { evidence: { view_sha256: VIEW, passkey: assertion } });
    expect(r.decision).toBe('approved');
    expect(r.votes?.[0]?.passkey).toEqual({ assertion, view_sha256: VIEW });
    expect((await s.passkeyStore.get('sub-alice', s.alice.credentialId))?.counter).toBe(1);
    await new Sequencer({ store: s.store, clock: s.clock, logger: quiet, sealer: s.store.sealer }).run();
    const approved = s.store.chainEvents().find((e) => e.type === 'approved')!;
    expect(approved.votes?.[0]?.passkey?.assertion).toEqual(assertion);
    const verifier = new SimpleWebAuthnVerifier(ORIGIN);
    const keys = (voter: string, cred: string) => s.passkeyStore.get(voter, cred);
    const events = s.store.chainEvents().map((e) => ({ ...e, payload_sha256: r.payload_sha256 ?? null }));
    expect(await verifyLoggedPasskeys(events, keys, verifier)).toEqual({ checked: 1, verified: 1, failures: [] });
    // One byte of the signature changed, or the view hash it claims: the offline check fails.
    const sig = Buffer.from(assertion.signature, 'base64url');
    sig[sig.length - 1]! ^= 1;
    const forged = events.map((e) => (e.type === 'approved' ? { ...e, votes: [{ ...e.votes![0]!, passkey: { assertion: { ...assertion, signature: sig.toString('base64url') }, view_sha256: VIEW } }] } : e));
    expect((await verifyLoggedPasskeys(forged, keys, verifier)).failures).toHaveLength(1);
    const moved = events.map((e) => (e.type === 'approved' ? { ...e, votes: [{ ...e.votes![0]!, passkey: { assertion, view_sha256: 'f'.repeat(64) } }] } : e));
    expect((await verifyLoggedPasskeys(moved, keys, verifier)).failures[0]?.reason).toMatch(/challenge/);
    // A vote on a request that required a passkey, without one (written around the service): a failure.
    const { passkey: _dropped, ...unsigned } = events.find((e) => e.type === 'approved')!.votes![0]!;
    const stripped = events.map((e) => (e.type === 'approved' ? { ...e, votes: [unsigned] } : e));
    expect(stripped.find((e) => e.type === 'approved')!.quorum?.passkey).toBe('required');
    expect((await verifyLoggedPasskeys(stripped, keys, verifier)).failures).toEqual([expect.objectContaining({ reason: 'its request required a passkey, but the vote carries none' })]);
  });

  it('refuses: a replayed nonce, another request, the other verdict, another view or payload, no UV, another origin, a key not yours, an expired nonce', async () => {
    await s.policies.set({ agent: '*', approvals: 2 }, { type: 'operator', id: 'ops' });
    const id = await s.request({ amount: 10 });
    const other = await s.request({ amount: 10 });
    const decide = (a: PasskeyAssertion, decision: 'approved' | 'denied' = 'approved', view = VIEW, rid = id) => code(s.service.decide(rid, decision, 'sub-alice', 'alice@x', { evidence: { view_sha256: view, passkey: a } }));

    // Replay: the first vote counts, the same assertion again is refused on its nonce.
    const first = await s.signed(id, 'approved');
    expect(await decide(first)).toBe('no error');
    expect(await decide(first)).toMatch(/^ERR_PASSKEY_INVALID: .*nonce is unknown, already used or expired/);

    expect(await decide(await s.signed(id, 'approved'), 'approved', VIEW, other)).toMatch(/issued for another request/);
    expect(await decide(await s.signed(other, 'approved'), 'denied', VIEW, other)).toMatch(/issued for an approval, not a denial/);
    expect(await decide(await s.signed(other, 'approved', 'b'.repeat(64)), 'approved', VIEW, other)).toMatch(/challenge is not the one of this decision/);
    // A payload other than the stored one: the challenge the approver signed differs.
    const c = await s.passkeys.decisionChallenge('sub-alice', await s.service.get(other), 'approved', VIEW);
    const forPayload = decisionChallengeB64(c.nonce, other, 'approved', 'd'.repeat(64), VIEW);
    expect(await decide(s.alice.assert(forPayload, c.nonce), 'approved', VIEW, other)).toMatch(/challenge is not the one/);
    const noUv = await s.passkeys.decisionChallenge('sub-alice', await s.service.get(other), 'approved', VIEW);
    expect(await decide(s.alice.assert(noUv.challenge, noUv.nonce, { uv: false }), 'approved', VIEW, other)).toMatch(/user could not be verified/);
    const phish = await s.passkeys.decisionChallenge('sub-alice', await s.service.get(other), 'approved', VIEW);
    expect(await decide(s.alice.assert(phish.challenge, phish.nonce, { origin: 'https://evil.test' }), 'approved', VIEW, other)).toMatch(/origin/);
    const mallory = new SoftPasskey('consent.test', ORIGIN);
    expect(await decide(await s.signed(other, 'approved', VIEW, mallory), 'approved', VIEW, other)).toMatch(/not one of yours/);
    const late = await s.signed(other, 'approved');
    s.clock.advance(5 * 60_000 + 1);
    expect(await decide(late, 'approved', VIEW, other)).toMatch(/already used or expired/);

    expect((await s.service.get(other)).votes).toEqual([]);
    const refused = await s.refusals();
    expect(refused.filter((r) => r?.includes('ERR_PASSKEY_INVALID'))).toHaveLength(9);
  });

  it('the rule in force when the request was made holds in a process without it (the CLI)', async () => {
    const id = await s.request();
    expect((await s.service.get(id)).quorum?.passkey).toBe('required');
    const cli = new AuthorizationService({ trustDomain: 'ackd.test' as never, consentBaseUrl: ORIGIN, retentionDays: 30 }, { store: s.store, minter: undefined as never, clock: s.clock, logger: quiet });
    expect(await code(cli.decide(id, 'approved', 'operator:ops'))).toMatch(/^ERR_PASSKEY_REQUIRED: .*a CLI decision cannot carry a passkey/);
  });

  it('not required: no passkey needed; one given must still verify', async () => {
    const t = await setup('none');
    const id = await t.request();
    const bad = { ...(await t.signed(id, 'approved')), signature: Buffer.from('nope').toString('base64url') };
    expect(await code(t.service.decide(id, 'approved', 'sub-alice', null, { evidence: { view_sha256: VIEW, passkey: bad } }))).toMatch(/^ERR_PASSKEY_INVALID/);
    expect((await t.service.decide(id, 'approved', 'operator:ops')).decision).toBe('approved');
  });

  it('registration needs a nonce issued to you; a challenge needs a passkey of yours; assertions are parsed strictly', async () => {
    await expect(s.passkeys.register('sub-bob', { nonce: 'x', response: {}, label: 'k' })).rejects.toMatchObject({ code: 'ERR_PASSKEY_INVALID' });
    const { nonce, options } = await s.passkeys.registrationOptions({ sub: 'sub-alice', email: 'alice@x' });
    expect(options).toMatchObject({ challenge: nonce, rp: { id: 'consent.test' }, authenticatorSelection: { userVerification: 'required' } });
    expect((options as { excludeCredentials: { id: string }[] }).excludeCredentials.map((c) => c.id)).toEqual([s.alice.credentialId]);
    await expect(s.passkeys.register('sub-bob', { nonce, response: {}, label: 'k' })).rejects.toThrow(/not made with a fresh nonce issued to you/);
    await expect(s.passkeys.decisionChallenge('sub-bob', { request_id: 'req_x' as RequestId, payload_sha256: null }, 'approved', VIEW)).rejects.toMatchObject({ code: 'ERR_PASSKEY_REQUIRED' });
    expect(() => parsePasskeyAssertion({ credential_id: 'a', authenticator_data: 'a', client_data_json: 'a', signature: 'a', user_handle: null, nonce: 'a', extra: 1 })).toThrow(/passkey.extra/);
    expect(() => parsePasskeyAssertion({ credential_id: 'a+/', authenticator_data: 'a', client_data_json: 'a', signature: 'a', user_handle: null, nonce: 'a' })).toThrow(/credential_id: must be base64url/);
  });
});

describe('changes to an approver\'s passkeys are confirmed with one of them (a stolen session alone cannot add or remove one)', () => {
  let s: Awaited<ReturnType<typeof setup>>;
  beforeEach(async () => {
    s = await setup('all');
  });

  /** New registration options for `sub` and a registration response by `key` over them. */
  const options = async (sub = 'sub-alice') => s.passkeys.registrationOptions({ sub, email: null });

  it('the first passkey needs only the session; its options carry no confirm challenge', async () => {
    const o = await options('sub-bob');
    expect(o.confirm).toBeUndefined();
    const bob = new SoftPasskey('consent.test', ORIGIN);
    expect((await s.passkeys.register('sub-bob', { nonce: o.nonce, response: bob.register(o.nonce), label: 'bob' })).credential_id).toBe(bob.credentialId);
    // Now Bob has one: the next options carry a confirm challenge listing it, bound to the new nonce and its purpose.
    const next = await options('sub-bob');
    expect(next.confirm).toMatchObject({ nonce: next.nonce, rpId: 'consent.test', userVerification: 'required', allowCredentials: [{ id: bob.credentialId, type: 'public-key' }] });
    expect(next.confirm!.challenge).toBe(createHash('sha256').update(`{"nonce":"${next.nonce}","purpose":"ackd-passkey-add"}`, 'utf8').digest('base64url'));
    expect(passkeyChangeChallengeB64({ purpose: 'ackd-passkey-add', nonce: next.nonce })).toBe(next.confirm!.challenge);
  });

  it('a second passkey: refused without confirm, with another approver\'s passkey, a decision\'s assertion, another nonce, no UV; stored with a correct one (counter moved)', async () => {
    const laptop = new SoftPasskey('consent.test', ORIGIN);
    const register = async (confirm?: (o: Awaited<ReturnType<typeof options>>) => Promise<unknown> | unknown) => {
      const o = await options();
      return code(s.passkeys.register('sub-alice', { nonce: o.nonce, response: laptop.register(o.nonce), label: 'laptop', ...(confirm ? { confirm: await confirm(o) } : {}) }));
    };
    expect(await register()).toMatch(/^ERR_PASSKEY_REQUIRED: confirm: you already have a passkey, so adding one must be confirmed with it/);
    // Mallory (another approver, with her own passkey) signs the confirm challenge: not one of Alice's passkeys.
    const mallory = new SoftPasskey('consent.test', ORIGIN);
    await s.passkeyStore.put(mallory.stored('sub-mallory'), 10);
    expect(await register((o) => mallory.assert(o.confirm!.challenge, o.nonce))).toMatch(/^ERR_PASSKEY_INVALID: .*this registration: the passkey that signed it is not one of yours/);
    // The attacker's own new key cannot confirm itself either.
    expect(await register((o) => laptop.assert(o.confirm!.challenge, o.nonce))).toMatch(/not one of yours/);
    // An assertion Alice made for a decision (its own nonce and challenge) is no confirmation …
    const id = await s.request();
    expect(await register(() => s.signed(id, 'approved'))).toMatch(/^ERR_PASSKEY_INVALID: .*confirm.nonce is not this registration's nonce/);
    // … nor a decision's challenge signed with the registration's nonce.
    expect(await register((o) => s.alice.assert(decisionChallengeB64(o.nonce, id, 'approved', null, null), o.nonce))).toMatch(/^ERR_PASSKEY_INVALID: .*this registration: its challenge is not the one of this registration/);
    expect(await register((o) => s.alice.assert(o.confirm!.challenge, o.nonce, { uv: false }))).toMatch(/user could not be verified/);
    expect(await register((o) => s.alice.assert(o.confirm!.challenge, o.nonce, { origin: 'https://evil.test' }))).toMatch(/origin/);
    expect(await register((o) => ({ ...s.alice.assert(o.confirm!.challenge, o.nonce), extra: 1 }))).toMatch(/^ERR_INVALID_INPUT: confirm.extra/);
    expect((await s.passkeys.list('sub-alice')).map((p) => p.credential_id)).toEqual([s.alice.credentialId]);
    // The correct one: stored; Alice's counter moved.
    const before = (await s.passkeyStore.get('sub-alice', s.alice.credentialId))!.counter;
    expect(await register((o) => s.alice.assert(o.confirm!.challenge, o.nonce))).toBe('no error');
    expect((await s.passkeys.list('sub-alice')).map((p) => p.credential_id)).toEqual([s.alice.credentialId, laptop.credentialId]);
    expect((await s.passkeyStore.get('sub-alice', s.alice.credentialId))!.counter).toBeGreaterThan(before);
  });

  it('the registration nonce is single-use: a confirmed registration cannot be replayed', async () => {
    const laptop = new SoftPasskey('consent.test', ORIGIN);
    const o = await options();
    const input = { nonce: o.nonce, response: laptop.register(o.nonce), label: 'laptop', confirm: s.alice.assert(o.confirm!.challenge, o.nonce) };
    await s.passkeys.register('sub-alice', input);
    await s.passkeys.remove('sub-alice', laptop.credentialId, await confirmRemoval(laptop.credentialId));
    expect(await code(s.passkeys.register('sub-alice', input))).toMatch(/^ERR_PASSKEY_INVALID: the registration was not made with a fresh nonce/);
    // Options made while Alice had no passkey cannot be used once she has one (the first is stored only while there is none).
    const bob = new SoftPasskey('consent.test', ORIGIN);
    const first = await options('sub-bob');
    await s.passkeyStore.put(new SoftPasskey('consent.test', ORIGIN).stored('sub-bob'), 10);
    expect(await code(s.passkeys.register('sub-bob', { nonce: first.nonce, response: bob.register(first.nonce), label: 'x' }))).toMatch(/^ERR_PASSKEY_REQUIRED: confirm/);
  });

  /** Alice asks to remove `credentialId` and confirms with `key` (default: her passkey). */
  const confirmRemoval = async (credentialId: string, key?: SoftPasskey) => {
    const c = await s.passkeys.removalChallenge('sub-alice', credentialId);
    return (key ?? s.alice).assert(c.challenge, c.nonce);
  };

  it('removal: refused without a confirmation, with another approver\'s passkey, a decision\'s or another removal\'s assertion, a reused nonce; done with a correct one', async () => {
    const laptop = new SoftPasskey('consent.test', ORIGIN);
    await s.passkeyStore.put(laptop.stored('sub-alice'), 10);
    const remove = async (a: unknown, id = laptop.credentialId) => code(s.passkeys.remove('sub-alice', id, a));
    expect(await remove(undefined)).toMatch(/^ERR_PASSKEY_REQUIRED: confirm: removing a passkey must be confirmed with one of your passkeys/);
    const mallory = new SoftPasskey('consent.test', ORIGIN);
    await s.passkeyStore.put(mallory.stored('sub-mallory'), 10);
    expect(await remove(await confirmRemoval(laptop.credentialId, mallory))).toMatch(/^ERR_PASSKEY_INVALID: .*this removal: the passkey that signed it is not one of yours/);
    const id = await s.request();
    expect(await remove(await s.signed(id, 'approved'))).toMatch(/^ERR_PASSKEY_INVALID: .*nonce was not issued to you for a passkey's removal/);
    // A removal's assertion for Alice's other passkey does not remove this one.
    expect(await remove(await confirmRemoval(s.alice.credentialId))).toMatch(/^ERR_PASSKEY_INVALID: .*its challenge is not the one of this removal/);
    // A removal's nonce is no decision's either.
    const r = await s.passkeys.removalChallenge('sub-alice', laptop.credentialId);
    expect(await code(s.service.decide(id, 'approved', 'sub-alice', null, { evidence: { view_sha256: VIEW, passkey: s.alice.assert(decisionChallengeB64(r.nonce, id, 'approved', null, null), r.nonce) } }))).toMatch(/nonce was not issued to you for a decision/);
    // Asking to remove a passkey that is not yours.
    expect(await code(s.passkeys.removalChallenge('sub-alice', mallory.credentialId))).toMatch(/^ERR_NOT_FOUND: credential_id: you have no passkey/);
    expect((await s.passkeys.list('sub-alice'))).toHaveLength(2);
    // Correct: signed by the passkey being removed itself.
    const good = await confirmRemoval(laptop.credentialId, laptop);
    expect(await remove(good)).toBe('no error');
    expect((await s.passkeys.list('sub-alice')).map((p) => p.credential_id)).toEqual([s.alice.credentialId]);
    expect(await remove(good)).toMatch(/^ERR_PASSKEY_INVALID: .*nonce is unknown, already used or expired/);
    // The last one, confirmed by itself; then a challenge for it is ERR_NOT_FOUND.
    expect(await remove(await confirmRemoval(s.alice.credentialId), s.alice.credentialId)).toBe('no error');
    expect(await s.passkeys.list('sub-alice')).toEqual([]);
    expect(await code(s.passkeys.removalChallenge('sub-alice', s.alice.credentialId))).toMatch(/^ERR_NOT_FOUND/);
  });

  it('an expired removal nonce is refused', async () => {
    const a = await confirmRemoval(s.alice.credentialId);
    s.clock.advance(5 * 60_000 + 1);
    expect(await code(s.passkeys.remove('sub-alice', s.alice.credentialId, a))).toMatch(/already used or expired/);
    expect(await s.passkeys.list('sub-alice')).toHaveLength(1);
  });

  it('reset (the operator\'s recovery) removes every passkey of one approver; the first one then needs only the session', async () => {
    const laptop = new SoftPasskey('consent.test', ORIGIN);
    await s.passkeyStore.put(laptop.stored('sub-alice'), 10);
    const bob = new SoftPasskey('consent.test', ORIGIN);
    await s.passkeyStore.put(bob.stored('sub-bob'), 10);
    expect((await s.passkeys.reset('sub-alice', { type: 'operator', id: 'ops' })).map((p) => p.credential_id).sort()).toEqual([s.alice.credentialId, laptop.credentialId].sort());
    expect(await s.passkeys.list('sub-alice')).toEqual([]);
    expect(await s.passkeys.list('sub-bob')).toHaveLength(1);
    // Removed, their public keys are kept: what they signed can still be re-verified (and only under their own approver).
    expect((await s.passkeys.registered('sub-alice', laptop.credentialId))?.public_key).toBe(laptop.publicKeyCose);
    expect(await s.passkeys.registered('sub-bob', laptop.credentialId)).toBeUndefined();
    expect(await s.passkeys.reset('sub-alice', { type: 'operator', id: 'ops' })).toEqual([]);
    const o = await options();
    expect(o.confirm).toBeUndefined();
    const fresh = new SoftPasskey('consent.test', ORIGIN);
    expect(await code(s.passkeys.register('sub-alice', { nonce: o.nonce, response: fresh.register(o.nonce), label: 'new' }))).toBe('no error');
  });
});
