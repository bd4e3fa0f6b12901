/**
 * Sealed passkeys: whoever can write the table but does not hold the seal key cannot put a public
 * key of their own among an approver's passkeys, so a stolen session plus table access still cannot
 * pass the step-up that guards adding a passkey, nor sign a decision, nor vouch for a forged
 * assertion on re-verification. (In-memory adapters; the dynalite path: test/adversarial/passkey-forgery.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { MemoryNonceStore, MemoryPasskeyStore } from '../../lambdas/adapters/memory/passkeys.ts';
import { SimpleWebAuthnVerifier } from '../../lambdas/adapters/webauthn/simplewebauthn.ts';
import { HmacOutboxSealer, unavailableSealer } from '../../lambdas/core/audit/seal.ts';
import { isAckdError } from '../../lambdas/core/errors.ts';
import { SealedPasskeyStore } from '../../lambdas/core/passkey-seal.ts';
import { PasskeyService } from '../../lambdas/core/passkeys.ts';
import { ManualClock } from '../helpers/clock.ts';
import { memoryLogger } from '../helpers/local-stack.ts';
import { SoftPasskey } from '../helpers/soft-passkey.ts';

const ORIGIN = 'https://consent.test';

function setup() {
  const clock = new ManualClock('2026-11-30T10:00:00.000Z');
  const inner = new MemoryPasskeyStore();
  const logger = memoryLogger();
  const sealer = HmacOutboxSealer.random();
  const store = new SealedPasskeyStore(inner, sealer, logger);
  const passkeys = new PasskeyService({ store, nonces: new MemoryNonceStore(), verifier: new SimpleWebAuthnVerifier(`${ORIGIN}/`), clock });
  const alice = new SoftPasskey('consent.test', ORIGIN);
  return { clock, inner, logger, sealer, store, passkeys, alice };
}

const unsealedLines = (logger: ReturnType<typeof memoryLogger>) => logger.lines.filter((l) => l.includes('ERR_PASSKEY_UNSEALED')).map((l) => JSON.parse(l) as Record<string, unknown>);

describe('sealed passkeys', () => {
  it('a passkey registered through ackd is sealed: listed, found, and kept as registered after its removal', async () => {
    const s = setup();
    const o = await s.passkeys.registrationOptions({ sub: 'sub-alice', email: null });
    await s.passkeys.register('sub-alice', { nonce: o.nonce, response: s.alice.register(o.nonce), label: 'laptop' });
    const [stored] = await s.inner.list('sub-alice');
    expect(stored!.seal).toMatch(/^v1\./);
    expect((await s.store.list('sub-alice')).map((p) => p.credential_id)).toEqual([s.alice.credentialId]);
    expect(await s.store.get('sub-alice', s.alice.credentialId)).toBeDefined();
    await s.inner.delete('sub-alice', s.alice.credentialId);
    expect((await s.store.registered('sub-alice', s.alice.credentialId))?.public_key).toBe(stored!.public_key);
    expect(unsealedLines(s.logger)).toEqual([]);
  });

  it('credentials a table writer puts among an approver\'s (no seal, a made-up seal, a genuine seal over another key, moved from another approver) are not theirs, and a warning names each', async () => {
    const s = setup();
    await s.store.put(s.alice.stored('sub-alice'), 10);
    const genuine = (await s.inner.list('sub-alice'))[0]!;
    const mallory = new SoftPasskey('consent.test', ORIGIN);
    const made = new SoftPasskey('consent.test', ORIGIN);
    const forged = [
      mallory.stored('sub-alice'),
      { ...made.stored('sub-alice'), seal: 'v1.' + 'A'.repeat(43) },
      { ...new SoftPasskey('consent.test', ORIGIN).stored('sub-alice'), credential_id: 'swapped', seal: genuine.seal! },
    ];
    // Mallory's own genuine passkey (sealed for sub-mallory), copied under Alice.
    await s.store.put(mallory.stored('sub-mallory'), 10);
    const moved = { ...(await s.inner.list('sub-mallory'))[0]!, approver: 'sub-alice', credential_id: 'moved' };
    for (const p of [...forged, moved]) s.inner.writeRaw(p);
    expect((await s.store.list('sub-alice')).map((p) => p.credential_id)).toEqual([s.alice.credentialId]);
    for (const p of [...forged, moved]) {
      expect(await s.store.get('sub-alice', p.credential_id)).toBeUndefined();
      expect(await s.store.registered('sub-alice', p.credential_id)).toBeUndefined();
    }
    expect(unsealedLines(s.logger).map((l) => [l.credential_id, l.reason])).toEqual(
      expect.arrayContaining([
        [mallory.credentialId, 'missing'],
        [made.credentialId, 'mismatch'],
        ['swapped', 'mismatch'],
        ['moved', 'mismatch'],
      ]),
    );
    // A genuine passkey whose public key a table writer replaced is no longer found either.
    s.inner.writeRaw({ ...genuine, public_key: mallory.stored('sub-alice').public_key });
    expect(await s.store.get('sub-alice', s.alice.credentialId)).toBeUndefined();
  });

  it('a stolen session plus a passkey written into the table cannot add a passkey: the confirmation signed with the planted one is refused', async () => {
    const s = setup();
    await s.store.put(s.alice.stored('sub-alice'), 10);
    const mallory = new SoftPasskey('consent.test', ORIGIN);
    s.inner.writeRaw(mallory.stored('sub-alice'));
    const o = await s.passkeys.registrationOptions({ sub: 'sub-alice', email: null });
    // The confirm challenge lists only Alice's own passkey.
    expect(o.confirm!.allowCredentials.map((c) => c.id)).toEqual([s.alice.credentialId]);
    const second = new SoftPasskey('consent.test', ORIGIN);
    const e = await s.passkeys
      .register('sub-alice', { nonce: o.nonce, response: second.register(o.nonce), label: 'mallory', confirm: mallory.assert(o.confirm!.challenge, o.nonce) })
      .catch((x: unknown) => x);
    expect(isAckdError(e, 'ERR_PASSKEY_INVALID')).toBe(true);
    expect((e as Error).message).toMatch(/the passkey that signed it is not one of yours/);
    expect((await s.inner.list('sub-alice')).map((p) => p.credential_id)).not.toContain(second.credentialId);
  });

  it('seal seals passkeys stored before passkeys were sealed (current and retired), once, only as listed; a wrongly sealed one stays as it is', async () => {
    const s = setup();
    const legacy = new SoftPasskey('consent.test', ORIGIN);
    const old = new SoftPasskey('consent.test', ORIGIN);
    s.inner.writeRaw(legacy.stored('sub-alice', '2026-01-01T00:00:00.000Z'));
    s.inner.writeRaw(old.stored('sub-alice', '2026-01-02T00:00:00.000Z'));
    await s.inner.delete('sub-alice', old.credentialId); // retired before the upgrade
    s.inner.writeRaw({ ...new SoftPasskey('consent.test', ORIGIN).stored('sub-bob'), seal: 'v1.' + 'B'.repeat(43) });
    expect((await s.store.all()).map((p) => [p.approver, p.retired, p.sealed])).toEqual(
      expect.arrayContaining([
        ['sub-alice', false, false],
        ['sub-alice', true, false],
        ['sub-bob', false, false],
      ]),
    );
    const sealed = await s.store.sealUnsealed();
    expect(sealed.map((p) => [p.credential_id, p.retired]).sort()).toEqual([[legacy.credentialId, false], [old.credentialId, true]].sort());
    expect(await s.store.get('sub-alice', legacy.credentialId)).toBeDefined();
    expect(await s.store.registered('sub-alice', old.credentialId)).toBeDefined();
    expect(await s.store.sealUnsealed()).toEqual([]);
    expect((await s.store.all()).filter((p) => p.sealed !== true).map((p) => p.approver)).toEqual(['sub-bob']);
  });

  it('seal with credential ids seals only those; an id that names no unsealed passkey seals nothing and says so', async () => {
    const s = setup();
    const mine = new SoftPasskey('consent.test', ORIGIN);
    const planted = new SoftPasskey('consent.test', ORIGIN);
    s.inner.writeRaw(mine.stored('sub-alice'));
    s.inner.writeRaw(planted.stored('sub-alice'));
    const e = await s.store.sealUnsealed([mine.credentialId, 'nope']).catch((x: unknown) => x);
    expect(isAckdError(e, 'ERR_NOT_FOUND') && /no unsealed passkey nope/.test((e as Error).message)).toBe(true);
    expect(await s.store.list('sub-alice')).toEqual([]);
    expect((await s.store.sealUnsealed([mine.credentialId])).map((p) => p.credential_id)).toEqual([mine.credentialId]);
    expect((await s.store.list('sub-alice')).map((p) => p.credential_id)).toEqual([mine.credentialId]);
  });

  it('sealing is conditional on the credential as listed: one changed in between is not sealed', async () => {
    const s = setup();
    const legacy = new SoftPasskey('consent.test', ORIGIN);
    s.inner.writeRaw(legacy.stored('sub-alice'));
    const [listed] = await s.inner.all();
    s.inner.writeRaw({ ...legacy.stored('sub-alice'), public_key: new SoftPasskey('consent.test', ORIGIN).stored('x').public_key });
    expect(await s.store.setSeal(listed!, 'v1.' + 'C'.repeat(43))).toBe(false);
  });

  it('a reset removes every credential of the approver, unsealed ones too', async () => {
    const s = setup();
    await s.store.put(s.alice.stored('sub-alice'), 10);
    s.inner.writeRaw(new SoftPasskey('consent.test', ORIGIN).stored('sub-alice'));
    expect(await s.passkeys.reset('sub-alice', { type: 'operator', id: 'ops' })).toHaveLength(2);
    expect(await s.inner.list('sub-alice')).toEqual([]);
  });

  it('without the seal key, nothing is listed or found (fail closed) and nothing can be registered; listing for operators says "not checked"', async () => {
    const s = setup();
    await s.store.put(s.alice.stored('sub-alice'), 10);
    const down = new SealedPasskeyStore(s.inner, unavailableSealer(), s.logger);
    await expect(down.list('sub-alice')).rejects.toThrow(/ACKD_OUTBOX_SEAL_KEY is not set/);
    await expect(down.get('sub-alice', s.alice.credentialId)).rejects.toThrow(/ACKD_OUTBOX_SEAL_KEY/);
    await expect(down.put(new SoftPasskey('consent.test', ORIGIN).stored('sub-bob'), 10)).rejects.toThrow(/ACKD_OUTBOX_SEAL_KEY/);
    expect(await s.inner.list('sub-bob')).toEqual([]);
    expect((await down.all()).map((p) => p.sealed)).toEqual([null]);
  });
});
