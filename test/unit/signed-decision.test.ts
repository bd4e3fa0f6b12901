import { createHash, generateKeyPairSync, sign, verify } from 'node:crypto';
import { derToJose, joseToDer } from 'ecdsa-sig-formatter';
import { calculateJwkThumbprint, createLocalJWKSet, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { LocalCaMinter } from '../../lambdas/adapters/local-ca/index.ts';
import { MemoryRequestStore } from '../../lambdas/adapters/memory/store.ts';
import { decisionPublicKeyFrom, decisionSignerFrom, receiptSignerFrom } from '../../lambdas/adapters/signing/index.ts';
import { LocalKeySigner } from '../../lambdas/adapters/signing/local.ts';
import { LocalReceiptSigner } from '../../lambdas/adapters/signing/receipt.ts';
import { canonicalJson } from '../../lambdas/core/audit/event.ts';
import { checkpointPublicKey, keyIdOf } from '../../lambdas/core/audit/signing.ts';
import { ChainVerifier } from '../../lambdas/core/audit/verify.ts';
import {
  assertionSha256,
  decisionPayload,
  decisionProblem,
  decisionSignatureSha256,
  decisionStatement,
  signDecision,
  statementMismatch,
  votesSha256,
  type PasskeyAssertion,
} from '../../lambdas/core/evidence.ts';
import { parseAgentId, parseTrustDomain, type RequestId } from '../../lambdas/core/ids.ts';
import { payloadSha256 } from '../../lambdas/core/payload.ts';
import type { Logger } from '../../lambdas/core/ports.ts';
import type { CastVote } from '../../lambdas/core/quorum.ts';
import { receiptClaims, RECEIPT_TYP } from '../../lambdas/core/receipt.ts';
import { newRecord, type AuthorizationRecord } from '../../lambdas/core/request.ts';
import { AuthorizationService } from '../../lambdas/core/service.ts';
import { approvalView, viewSha256 } from '../../lambdas/core/view.ts';
import { LEGACY_QUORUM } from '../../lambdas/core/quorum.ts';
import { ManualClock } from '../helpers/clock.ts';
import { refusal } from '../helpers/refusal.ts';

// Keys are made here, at test time; nothing is committed.
const T0 = new Date('2026-11-30T10:00:00.000Z');
const trustDomain = parseTrustDomain('ackd.test');
const agent = parseAgentId('deploy-bot');
const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** A request as the deciding write leaves it: approved by `approver` with `votes`. */
function decided(over: Partial<AuthorizationRecord> = {}): AuthorizationRecord {
  const r = newRecord({ agent_id: agent, action: 'deploy v2', permissions: ['deploy:prod', 'cache:purge'], justification: 'release', ttl_minutes: 10, payload: { image: 'app@sha256:ab', replicas: 3 } }, 'req_01jdzzzzzzzzzzzzzzzzzzzzzz' as RequestId, trustDomain, T0, LEGACY_QUORUM);
  const vote: CastVote = { voter: 'sub-alice', email: 'alice@example.com', vote: 'approve', at: '2026-11-30T10:01:00.000Z', groups: ['approvers'] };
  return { ...r, decision: 'approved', approver_identity: 'sub-alice', decision_at: vote.at, svid_expires_at: '2026-11-30T10:11:00.000Z', votes: [vote], ...over };
}

const passkey: PasskeyAssertion = { credential_id: 'Y3JlZA', authenticator_data: 'YXV0aA', client_data_json: 'Y2xpZW50', signature: 'c2ln', user_handle: null, nonce: 'bm9uY2U' };

function statementOf(r: AuthorizationRecord, evidence?: { view_sha256?: string | null; passkey?: PasskeyAssertion | null }) {
  return decisionStatement(r, { decision: 'approved', approver: r.approver_identity!, decidedAt: r.decision_at!, svidExpiresAt: r.svid_expires_at, votes: r.votes ?? [], evidence });
}

describe('the decision statement', () => {
  it('states exactly the decision: request, agent, SPIFFE ID, permissions, approver, time, lifetime, payload, view, passkey and votes digests', () => {
    const r = decided();
    const view = viewSha256(approvalView(r));
    const s = statementOf(r, { view_sha256: view, passkey });
    expect(s).toEqual({
      v: 1,
      purpose: 'ackd-decision',
      request_id: r.request_id,
      agent_id: agent,
      spiffe_id: `spiffe://ackd.test/agent/deploy-bot/${r.request_id}`,
      permissions: ['deploy:prod', 'cache:purge'],
      decision: 'approved',
      approver: 'sub-alice',
      decided_at: '2026-11-30T10:01:00.000Z',
      svid_expires_at: '2026-11-30T10:11:00.000Z',
      payload_sha256: payloadSha256({ image: 'app@sha256:ab', replicas: 3 }),
      view_sha256: view,
      passkey_assertion_sha256: assertionSha256(passkey),
      votes_sha256: createHash('sha256').update(canonicalJson(r.votes)).digest('hex'),
    });
    expect(votesSha256(r.votes!)).toBe(s.votes_sha256);
    // Signed bytes: the statement's RFC 8785 canonical JSON (keys sorted, no whitespace).
    expect(new TextDecoder().decode(decisionPayload(s))).toBe(canonicalJson(s));
    expect(new TextDecoder().decode(decisionPayload(s))).toMatch(/^\{"agent_id":"deploy-bot","approver":"sub-alice",/);
  });
});

describe('signing and verifying a decision (fresh P-256 keys)', () => {
  const signer = LocalKeySigner.generate();
  const other = LocalKeySigner.generate();

  it('verifies under the decision key and matches the record it was made for', async () => {
    const r = decided();
    const sd = await signDecision(signer, statementOf(r, { view_sha256: viewSha256(approvalView(r)) }));
    const key = checkpointPublicKey(await signer.publicKeyPem());
    expect(sd.key_id).toBe(keyIdOf(key));
    expect(sd.alg).toBe('ECDSA_P256_SHA256');
    expect(verify('sha256', decisionPayload(sd.statement), { key, dsaEncoding: 'der' }, Buffer.from(sd.signature, 'base64'))).toBe(true);
    expect(decisionProblem({ ...r, decision_signature: sd }, key)).toBeNull();
    expect(decisionSignatureSha256(sd)).toBe(createHash('sha256').update(Buffer.from(sd.signature, 'base64')).digest('hex'));
  });

  it('refuses: no signed decision, another key, an altered statement or signature, another algorithm', async () => {
    const r = decided();
    const sd = await signDecision(signer, statementOf(r));
    const key = checkpointPublicKey(await signer.publicKeyPem());
    expect(decisionProblem(r, key)).toBe('it carries no signed decision');
    expect(decisionProblem({ ...r, decision_signature: null }, key)).toBe('it carries no signed decision');
    const byOther = await signDecision(other, statementOf(r));
    expect(decisionProblem({ ...r, decision_signature: byOther }, key)).toMatch(/^its decision was signed by key [0-9a-f]{16}…, not by the decision key/);
    // A key_id rewritten to the decision key's does not make another key's signature verify.
    expect(decisionProblem({ ...r, decision_signature: { ...byOther, key_id: sd.key_id } }, key)).toBe('its decision signature does not verify (forged or altered)');
    const widened = { ...sd, statement: { ...sd.statement, permissions: ['*'] } };
    expect(decisionProblem({ ...r, permissions: ['*'], decision_signature: widened }, key)).toBe('its decision signature does not verify (forged or altered)');
    const flipped = Buffer.from(sd.signature, 'base64');
    flipped.writeUInt8(flipped.readUInt8(flipped.length - 1) ^ 1, flipped.length - 1);
    expect(decisionProblem({ ...r, decision_signature: { ...sd, signature: flipped.toString('base64') } }, key)).toBe('its decision signature does not verify (forged or altered)');
    expect(decisionProblem({ ...r, decision_signature: { ...sd, alg: 'RS256' as never } }, key)).toMatch(/uses algorithm RS256/);
  });

  it('a genuine signature refuses a record that changed after the decision, field by field', async () => {
    const r = decided();
    const sd = await signDecision(signer, statementOf(r, { view_sha256: viewSha256(approvalView(r)), passkey }));
    const key = checkpointPublicKey(await signer.publicKeyPem());
    const changes: [string, Partial<AuthorizationRecord>][] = [
      ['request_id', { request_id: 'req_01jdyyyyyyyyyyyyyyyyyyyyyy' as RequestId }],
      ['agent_id', { agent_id: parseAgentId('other-bot') }],
      ['spiffe_id', { spiffe_id: 'spiffe://ackd.test/agent/other-bot/x' }],
      ['permissions', { permissions: ['deploy:prod', 'cache:purge', 'db:drop'] }],
      ['decision', { decision: 'denied' }],
      ['approver', { approver_identity: 'operator:mallory' }],
      ['decided_at', { decision_at: '2026-11-30T10:02:00.000Z' }],
      ['svid_expires_at', { svid_expires_at: '2026-11-30T11:00:00.000Z' }],
      ['payload_sha256', { payload: { image: 'evil@sha256:ff', replicas: 3 } }],
      ['payload_sha256', { payload_sha256: 'f'.repeat(64) }],
      ['votes_sha256', { votes: [...decided().votes!, { voter: 'sub-bob', email: null, vote: 'approve', at: T0.toISOString(), groups: [] }] }],
      // What the approver was shown changed (the view no longer hashes to the one they signed off).
      ['view_sha256', { justification: 'release (and drop the db)' }],
      ['passkey_assertion_sha256', { votes: [{ ...decided().votes![0]!, passkey: { assertion: { ...passkey, signature: 'b3RoZXI' }, view_sha256: null } } as CastVote] }],
    ];
    for (const [field, change] of changes) {
      const problem = decisionProblem({ ...r, ...change, decision_signature: sd }, key);
      expect(problem ?? `no problem found for ${field}`, field).toMatch(new RegExp(`^its signed decision states another .*\\b${field}\\b`));
    }
    // The passkey on the deciding vote that the statement names, and the view as shown: no mismatch.
    const withPasskey = [{ ...r.votes![0]!, passkey: { assertion: passkey, view_sha256: null } } as CastVote];
    const sd2 = await signDecision(signer, statementOf({ ...r, votes: withPasskey }, { passkey }));
    expect(statementMismatch(sd2.statement, { ...r, votes: withPasskey })).toEqual([]);
  });
});

describe('DER ↔ JOSE (r‖s) ECDSA signatures, as KMS returns and JWS wants them', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });

  it('converts both ways for every shape of r and s (short and high-bit integers included)', () => {
    let padded = 0;
    let short = 0;
    for (let i = 0; i < 400; i++) {
      const message = Buffer.from(`message ${i}`);
      const der = sign('sha256', message, { key: privateKey, dsaEncoding: 'der' });
      // DER INTEGERs: a leading 0x00 before a high bit, fewer than 32 bytes for a small value.
      const rLen = der[3]!;
      if (rLen === 33) padded++;
      if (rLen < 32) short++;
      const jose = Buffer.from(derToJose(der, 'ES256'), 'base64url');
      expect(jose).toHaveLength(64);
      expect(verify('sha256', message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, jose)).toBe(true);
      expect(joseToDer(jose, 'ES256').equals(der)).toBe(true);
      const p1363 = sign('sha256', message, { key: privateKey, dsaEncoding: 'ieee-p1363' });
      expect(verify('sha256', message, { key: publicKey, dsaEncoding: 'der' }, joseToDer(p1363, 'ES256'))).toBe(true);
    }
    expect(padded).toBeGreaterThan(0);
    expect(short + padded).toBeGreaterThan(0);
  });

  it('refuses a signature that is not DER ECDSA', () => {
    expect(() => derToJose(Buffer.from('not a signature'), 'ES256')).toThrow();
  });
});

describe('the receipt (local key, jose)', () => {
  it('is a compact ES256 JWS that verifies against the published JWK, whose kid is its RFC 7638 thumbprint', async () => {
    const signer = new LocalReceiptSigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    const jwk = await signer.publicJwk();
    expect(jwk).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(jwk).not.toHaveProperty('d');
    expect(jwk.kid).toBe(await calculateJwkThumbprint({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, 'sha256'));
    const r = decided();
    const sd = await signDecision(LocalKeySigner.generate(), statementOf(r));
    const claims = receiptClaims(r, sd, { svidId: '0a1b2c', notAfter: new Date('2026-11-30T10:10:59.000Z') }, T0);
    expect(claims).toMatchObject({ iss: 'ackd', sub: r.spiffe_id, spiffe_id: r.spiffe_id, svid_id: '0a1b2c', exp: Date.parse('2026-11-30T10:10:59.000Z') / 1000, iat: T0.getTime() / 1000, decision_signature_sha256: decisionSignatureSha256(sd) });
    const jws = await signer.sign(claims);
    const { payload, protectedHeader } = await jwtVerify(jws, createLocalJWKSet({ keys: [jwk] }), { issuer: 'ackd', typ: RECEIPT_TYP, algorithms: ['ES256'], currentDate: T0 });
    expect(protectedHeader).toEqual({ alg: 'ES256', typ: 'ackd-receipt+jwt', kid: jwk.kid });
    expect(payload).toEqual(claims);
    // Another key's JWKS does not verify it.
    const stranger = await new LocalReceiptSigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey).publicJwk();
    await expect(jwtVerify(jws, createLocalJWKSet({ keys: [{ ...stranger, kid: jwk.kid }] }), { currentDate: T0 })).rejects.toThrow(/signature/);
  });

  it('refuses a key that is not EC P-256', async () => {
    const signer = new LocalReceiptSigner(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey);
    await expect(signer.publicJwk()).rejects.toThrow(/ACKD_RECEIPT_KEY: the receipt key must be EC P-256/);
  });
});

describe('the service fails closed without its keys (the real "not configured" adapters)', () => {
  async function setup(keys: { decision: boolean; receipt: boolean }) {
    const clock = new ManualClock(T0);
    const store = new MemoryRequestStore(clock);
    const minter = await LocalCaMinter.create({ trustDomain, clock });
    let mints = 0;
    const counting = { ...minter, mint: (...a: Parameters<typeof minter.mint>) => (mints++, minter.mint(...a)), trustBundlePem: () => minter.trustBundlePem() };
    const signer = LocalKeySigner.generate();
    const decisionSigner = keys.decision ? signer : decisionSignerFrom({ decisionKey: undefined, region: 'us-east-1' });
    const publicKeyPem = keys.decision ? () => signer.publicKeyPem() : decisionPublicKeyFrom({ decisionKey: undefined, decisionPublicKey: undefined, region: 'us-east-1' });
    const receipts = keys.receipt ? new LocalReceiptSigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey) : receiptSignerFrom({ receiptKey: undefined, region: 'us-east-1' });
    const service = new AuthorizationService(
      { trustDomain, consentBaseUrl: 'https://consent.example', retentionDays: 30 },
      { store, minter: counting, clock, logger: quiet, decisions: { signer: decisionSigner, publicKeyPem }, receipts },
    );
    const { request_id } = await service.requestAuthorization({ agent_id: agent, action: 'deploy v2', permissions: ['deploy:prod'], justification: 'release', ttl_minutes: 10 });
    return { store, service, request_id, mints: () => mints, signer };
  }

  it('no decision key: the decision is refused with ERR_SIGNER_UNAVAILABLE and nothing is written', async () => {
    const { store, service, request_id } = await setup({ decision: false, receipt: true });
    const e = await refusal(service.decide(request_id, 'approved', 'sub-alice'));
    expect(e.code).toBe('ERR_SIGNER_UNAVAILABLE');
    expect(e.message).toBe('the decision signing key is unavailable; nothing was decided; try again later');
    expect((await service.get(request_id)).decision).toBe('pending');
    expect((await service.get(request_id)).votes).toEqual([]);
    expect(store.chainEvents().map((ev) => ev.type)).toEqual(['requested']);
  });

  it('no receipt key: no SVID is minted (its key would leave without a receipt), nothing is marked issued', async () => {
    const { store, service, request_id, mints } = await setup({ decision: true, receipt: false });
    await service.decide(request_id, 'approved', 'sub-alice');
    const e = await refusal(service.check(agent, request_id));
    expect(e.code).toBe('ERR_SIGNER_UNAVAILABLE');
    expect(mints()).toBe(0);
    expect((await service.get(request_id)).svid_id).toBeNull();
    expect(store.chainEvents().map((ev) => ev.type)).toEqual(['requested', 'approved']);
  });

  it('with both keys: the approval is signed in the chain, the SVID comes with its receipt, and the verifier counts the decision as signed', async () => {
    const { store, service, request_id, signer } = await setup({ decision: true, receipt: true });
    await service.decide(request_id, 'approved', 'sub-alice');
    const r = await service.check(agent, request_id);
    expect(r).toMatchObject({ status: 'approved', svid_delivered: false, receipt: expect.stringMatching(/^ey/) });
    const v = new ChainVerifier({ decisionKey: checkpointPublicKey(await signer.publicKeyPem()) });
    for (const ev of store.chainEvents()) v.addEvent(ev);
    const report = v.finish();
    expect(report.problems).toEqual([]);
    expect(report.decisions).toMatchObject({ checked: 1, valid: 1, unsigned: 0, invalid: 0, examples: [] });
  });
});
