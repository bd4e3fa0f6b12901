/**
 * API keys created and revoked, and passkeys added, removed and reset, are events of the audit log (on the in-memory
 * adapters: the core's sequencer and verifier, no stack). A key revoked in the log but active in the
 * table (a table writer took the revocation back) fails live verification, naming the key.
 */
import { describe, expect, it } from 'vitest';
import { MemoryApiKeyStore, MemoryRequestStore } from '../../lambdas/adapters/memory/store.ts';
import { MemoryNonceStore, MemoryPasskeyStore } from '../../lambdas/adapters/memory/passkeys.ts';
import { LocalKeySigner } from '../../lambdas/adapters/signing/local.ts';
import { ChainAdminAudit } from '../../lambdas/core/audit/admin-audit.ts';
import { auditEvent, chainAdminEvent, GENESIS_HASH } from '../../lambdas/core/audit/event.ts';
import { ChainVerifier } from '../../lambdas/core/audit/verify.ts';
import { AuditService } from '../../lambdas/core/audit/service.ts';
import { checkpointPublicKey } from '../../lambdas/core/audit/signing.ts';
import { authenticateApiKey, createApiKey, revokeApiKey, SealedApiKeyStore } from '../../lambdas/core/apikeys.ts';
import { isAckdError } from '../../lambdas/core/errors.ts';
import { parseAgentId } from '../../lambdas/core/ids.ts';
import { PasskeyService, type PasskeyAudit, type StoredPasskey } from '../../lambdas/core/passkeys.ts';
import { SoftPasskey } from '../helpers/soft-passkey.ts';
import { SimpleWebAuthnVerifier } from '../../lambdas/adapters/webauthn/simplewebauthn.ts';
import { ManualClock } from '../helpers/clock.ts';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const bot = parseAgentId('deploy-bot');
const ops = { type: 'operator' as const, id: 'ops-alice' };

function setup() {
  const clock = new ManualClock('2026-11-30T10:00:00.000Z');
  const log = new MemoryRequestStore(clock);
  const raw = new MemoryApiKeyStore();
  const keys = new SealedApiKeyStore(raw, log.sealer, quiet);
  const admin = new ChainAdminAudit(log, clock);
  const signer = LocalKeySigner.generate();
  const audit = new AuditService({ log, clock, logger: quiet, signer, retentionDays: 30, settings: { apiKeys: keys } });
  return { clock, log, raw, keys, admin, signer, audit };
}

type Setup = ReturnType<typeof setup>;

async function verifyLive(s: Setup) {
  await s.audit.checkpoint();
  return s.audit.verifyLive({}, { publicKey: checkpointPublicKey(await s.signer.publicKeyPem()) });
}

const adminEvents = (s: Setup) => s.log.chainEvents().filter((e) => (e.type as string).startsWith('apikey_') || (e.type as string).startsWith('passkey')) as unknown as Record<string, unknown>[];

/** An audit log whose writes fail (the store or the seal key unavailable). */
const failing = { keyCreated: () => Promise.reject(new Error('store down')), keyRevoked: () => Promise.reject(new Error('store down')) };

describe('API key events in the audit log', () => {
  it('creating and revoking a key are events naming the key id (never the key or its hash), the agent and the operator; the log verifies', async () => {
    const s = setup();
    const { apiKey, entry } = await createApiKey(s.keys, bot, s.clock, { log: s.admin, actor: ops });
    expect(await authenticateApiKey(s.keys, apiKey)).toBe(bot);
    const revoked = await revokeApiKey(s.keys, entry.key_id, s.clock, { log: s.admin, actor: { type: 'operator', id: 'ops-bob' } });
    expect(revoked.map((e) => e.key_id)).toEqual([entry.key_id]);
    await expect(authenticateApiKey(s.keys, apiKey)).rejects.toThrow(/valid agent API key/);

    const events = adminEvents(s);
    expect(events.map((e) => [e.type, e.agent_id, e.key_id, e.actor_type, e.actor_id])).toEqual([
      ['apikey_created', bot, entry.key_id, 'operator', 'ops-alice'],
      ['apikey_revoked', bot, entry.key_id, 'operator', 'ops-bob'],
    ]);
    const text = JSON.stringify(events);
    expect(text).not.toContain(apiKey);
    expect(text).not.toContain(entry.key_hash);
    const report = await verifyLive(s);
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
  });

  it('a key whose creation cannot be logged is not stored (no key exists that the log does not name)', async () => {
    const s = setup();
    await expect(createApiKey(s.keys, bot, s.clock, { log: failing, actor: ops })).rejects.toThrow(/store down/);
    expect(await s.raw.listAll()).toEqual([]);
  });

  it('a revocation that cannot be logged still revokes, says so, and running it again records it', async () => {
    const s = setup();
    const { apiKey, entry } = await createApiKey(s.keys, bot, s.clock, { log: s.admin, actor: ops });
    const e = await revokeApiKey(s.keys, entry.key_id, s.clock, { log: failing, actor: ops }).catch((x: unknown) => x);
    expect(isAckdError(e, 'ERR_INTERNAL')).toBe(true);
    expect((e as Error).message).toMatch(new RegExp(`API key ${entry.key_id} is revoked, but its audit event could not be recorded \\(store down\\): run the command again`));
    await expect(authenticateApiKey(s.keys, apiKey)).rejects.toThrow(/valid agent API key/);
    await revokeApiKey(s.keys, entry.key_id, s.clock, { log: s.admin, actor: ops });
    expect(adminEvents(s).map((x) => x.type)).toEqual(['apikey_created', 'apikey_revoked']);
  });

  it('an unknown key id: ERR_NOT_FOUND, nothing logged', async () => {
    const s = setup();
    const e = await revokeApiKey(s.keys, 'key_000000000000', s.clock, { log: s.admin, actor: ops }).catch((x: unknown) => x);
    expect(isAckdError(e, 'ERR_NOT_FOUND')).toBe(true);
    expect(adminEvents(s)).toEqual([]);
  });

  it('a twin planted under the same key id does not take the revocation: every entry with the id is revoked, each logged', async () => {
    const s = setup();
    const { apiKey, entry } = await createApiKey(s.keys, bot, s.clock, { log: s.admin, actor: ops });
    // A table writer's decoy, listed before the real entry, under the same key id.
    s.raw.writeRaw({ ...entry, key_hash: '0'.repeat(64), agent_id: parseAgentId('decoy'), seal: undefined as never });
    const revoked = await revokeApiKey(s.keys, entry.key_id, s.clock, { log: s.admin, actor: ops });
    expect(revoked).toHaveLength(2);
    await expect(authenticateApiKey(s.keys, apiKey)).rejects.toThrow(/valid agent API key/);
    expect((await s.raw.listAll()).every((k) => k.revoked_at !== null)).toBe(true);
    expect(adminEvents(s).filter((x) => x.type === 'apikey_revoked').map((x) => x.agent_id).sort()).toEqual(['decoy', bot]);
  });

  it('a revocation taken back in the table (the entry as copied before it put back): the key works again, and live verification fails naming it', async () => {
    const s = setup();
    const { apiKey, entry } = await createApiKey(s.keys, bot, s.clock, { log: s.admin, actor: ops });
    const copied = (await s.raw.listAll())[0]!;
    await revokeApiKey(s.keys, entry.key_id, s.clock, { log: s.admin, actor: ops });
    s.raw.writeRaw(copied);
    // What the attack gains: the entry and seal from before the revocation authenticate.
    expect(await authenticateApiKey(s.keys, apiKey)).toBe(bot);
    const report = await verifyLive(s);
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => p.message)).toEqual([expect.stringMatching(new RegExp(`^API key ${entry.key_id} of agent deploy-bot was revoked \\(event \\d+, .*by ops-alice\\), but its entry \\(agent deploy-bot\\) is active again: it was changed outside ackd`))]);
    // Revoked again: verification passes.
    await revokeApiKey(s.keys, entry.key_id, s.clock, { log: s.admin, actor: ops });
    expect((await verifyLive(s)).ok).toBe(true);
  });
});

describe('changes to passkeys in the audit log', () => {
  const passkey = (approver: string, id: string): StoredPasskey => ({ credential_id: id, approver, public_key: 'pk', counter: 0, transports: [], created_at: '2026-11-30T09:00:00.000Z', label: id });
  const ORIGIN = 'https://consent.test';

  function passkeys(clock: ManualClock, audit: PasskeyAudit) {
    const store = new MemoryPasskeyStore();
    const service = new PasskeyService({ store, nonces: new MemoryNonceStore(), verifier: new SimpleWebAuthnVerifier(`${ORIGIN}/`), clock, audit });
    return { store, service };
  }
  const down: PasskeyAudit = { passkeyChanged: () => Promise.reject(new Error('store down')) };

  it('a reset is one event naming the approver and every credential, recorded before they are removed', async () => {
    const s = setup();
    const p = passkeys(s.clock, s.admin);
    await p.store.put(passkey('sub-alice', 'cred-a'), 10);
    await p.store.put(passkey('sub-alice', 'cred-b'), 10);
    const removed = await p.service.reset('sub-alice', ops);
    expect(removed.map((x) => x.credential_id)).toEqual(['cred-a', 'cred-b']);
    expect(adminEvents(s).map((e) => [e.type, e.approver_identity, e.credential_ids, e.actor_type, e.actor_id])).toEqual([['passkeys_reset', 'sub-alice', ['cred-a', 'cred-b'], 'operator', 'ops-alice']]);
    expect((await verifyLive(s)).ok).toBe(true);
    // Nothing to reset: no event.
    expect(await p.service.reset('sub-alice', ops)).toEqual([]);
    expect(adminEvents(s)).toHaveLength(1);
  });

  it('a reset that cannot be logged removes nothing', async () => {
    const s = setup();
    const p = passkeys(s.clock, down);
    await p.store.put(passkey('sub-alice', 'cred-a'), 10);
    await expect(p.service.reset('sub-alice', ops)).rejects.toThrow(/store down/);
    expect((await p.store.list('sub-alice')).map((x) => x.credential_id)).toEqual(['cred-a']);
  });

  it('an approver adding and removing a passkey: passkey_added / passkey_removed by the approver; the log verifies', async () => {
    const s = setup();
    const p = passkeys(s.clock, s.admin);
    const first = new SoftPasskey('consent.test', ORIGIN);
    const second = new SoftPasskey('consent.test', ORIGIN);
    let o = await p.service.registrationOptions({ sub: 'sub-alice', email: null });
    await p.service.register('sub-alice', { nonce: o.nonce, response: first.register(o.nonce), label: 'laptop' });
    o = await p.service.registrationOptions({ sub: 'sub-alice', email: null });
    await p.service.register('sub-alice', { nonce: o.nonce, response: second.register(o.nonce), label: 'key', confirm: first.assert(o.confirm!.challenge, o.nonce) });
    const c = await p.service.removalChallenge('sub-alice', first.credentialId);
    await p.service.remove('sub-alice', first.credentialId, second.assert(c.challenge, c.nonce));
    expect(adminEvents(s).map((e) => [e.type, e.approver_identity, e.credential_ids, e.actor_type, e.actor_id])).toEqual([
      ['passkey_added', 'sub-alice', [first.credentialId], 'approver', 'sub-alice'],
      ['passkey_added', 'sub-alice', [second.credentialId], 'approver', 'sub-alice'],
      ['passkey_removed', 'sub-alice', [first.credentialId], 'approver', 'sub-alice'],
    ]);
    expect((await verifyLive(s)).ok).toBe(true);
  });

  it('a passkey whose adding cannot be logged is not kept; a removal that cannot be logged removes nothing', async () => {
    const s = setup();
    const p = passkeys(s.clock, down);
    const first = new SoftPasskey('consent.test', ORIGIN);
    const o = await p.service.registrationOptions({ sub: 'sub-alice', email: null });
    await expect(p.service.register('sub-alice', { nonce: o.nonce, response: first.register(o.nonce), label: 'laptop' })).rejects.toThrow(/store down/);
    expect(await p.store.list('sub-alice')).toEqual([]);
    await p.store.put(first.stored('sub-alice'), 10);
    const c = await p.service.removalChallenge('sub-alice', first.credentialId);
    await expect(p.service.remove('sub-alice', first.credentialId, first.assert(c.challenge, c.nonce))).rejects.toThrow(/store down/);
    expect((await p.store.list('sub-alice')).map((x) => x.credential_id)).toEqual([first.credentialId]);
  });
});

describe('the verifier holds passkey events to their approver', () => {
  it('a passkey_added or passkey_removed made by anyone but the approver whose passkey it is fails verification', () => {
    const at = new Date('2026-11-30T10:00:00.000Z');
    const cases: [string, { type: 'approver' | 'operator'; id: string }, boolean][] = [
      ['passkey_added', { type: 'approver', id: 'sub-alice' }, true],
      ['passkey_added', { type: 'approver', id: 'sub-mallory' }, false],
      ['passkey_removed', { type: 'operator', id: 'ops' }, false],
      ['passkeys_reset', { type: 'approver', id: 'sub-alice' }, false],
      ['passkeys_reset', { type: 'operator', id: 'ops' }, true],
    ];
    for (const [type, actor, ok] of cases) {
      const e = chainAdminEvent({ ...auditEvent(type as 'passkey_added', actor, at), type: type as 'passkey_added' }, { approver_identity: 'sub-alice', credential_ids: ['cred-a'] }, { seq: 0, hash: GENESIS_HASH, logged_at: null }, at);
      const v = new ChainVerifier();
      v.addEvent(e as never);
      const r = v.finish();
      expect(r.problems.filter((p) => p.kind === 'lifecycle').length === 0, `${type} by ${actor.type} ${actor.id}`).toBe(ok);
    }
  });
});

