/**
 * SpireSvidMinter never hands out an SVID that outlives its approval, whatever SPIRE's clock or the
 * time the key takes. SPIRE sets notAfter = its own now + the TTL asked for, so the signer here is a
 * CA (made at test time) that signs the minter's CSR the same way, from a "now" the test controls.
 * The real spire-server path is covered by svid-minter.contract.test.ts and spire-fail-closed.test.ts.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { beforeAll, describe, expect, it } from 'vitest';
import { isAckdError } from '../../lambdas/core/errors.ts';
import { SpiffeId, newRequestId, parseAgentId, parseTrustDomain } from '../../lambdas/core/ids.ts';
import type { Clock } from '../../lambdas/core/ports.ts';
import { SpireSvidMinter, type X509SvidSigner } from '../../spire/bridge/minter.ts';
import type { MintedX509, SpireBundle } from '../../spire/bridge/client.ts';

const EC: EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIG: EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
x509.cryptoProvider.set(webcrypto as Crypto);

let ca: { cert: x509.X509Certificate; keys: CryptoKeyPair };
beforeAll(async () => {
  const keys = (await webcrypto.subtle.generateKey(EC, false, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01', name: 'O=test ca', notBefore: new Date(Date.now() - 3_600_000), notAfter: new Date(Date.now() + 86_400_000), keys, signingAlgorithm: SIG,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  ca = { cert, keys };
});

/** Signs like SPIRE: notAfter = spireNow() + ttl, in whole seconds (X.509 UTCTime). */
function fakeSpire(spireNow: () => number): X509SvidSigner & { ttls: number[] } {
  const ttls: number[] = [];
  return {
    ttls,
    async mintX509Svid(csrDer: Uint8Array, ttlSeconds: number): Promise<MintedX509> {
      ttls.push(ttlSeconds);
      const csr = new x509.Pkcs10CertificateRequest(Buffer.from(csrDer));
      const san = new x509.SubjectAlternativeNameExtension(csr.getExtension('2.5.29.17')!.rawData);
      const now = spireNow();
      const notAfter = new Date(Math.floor((now + ttlSeconds * 1000) / 1000) * 1000);
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: (ttls.length + 16).toString(16).padStart(2, '0'), subject: 'O=ackd', issuer: ca.cert.subject,
        notBefore: new Date(now - 30_000), notAfter, publicKey: csr.publicKey, signingKey: ca.keys.privateKey, signingAlgorithm: SIG,
        extensions: [new x509.SubjectAlternativeNameExtension(san.names.toJSON(), true)],
      });
      return { certChain: [new Uint8Array(leaf.rawData)], spiffeId: san.names.items[0]!.value, expiresAt: notAfter };
    },
    async getBundle(): Promise<SpireBundle> {
      throw new Error('not used');
    },
  };
}

const id = () => SpiffeId.forRequest(parseTrustDomain('ackd.test'), parseAgentId('agent-1'), newRequestId(Date.now()));
const clockAt = (...times: number[]): Clock => {
  let i = 0;
  return { now: () => new Date(times[Math.min(i++, times.length - 1)]!) };
};

describe('SpireSvidMinter: the SVID ends no later than the approval', () => {
  it('same clocks: one mint, ending within a couple of seconds before the approved end', async () => {
    const base = Date.now();
    const spire = fakeSpire(() => base);
    const approvedEnd = new Date(base + 60_000);
    const svid = await new SpireSvidMinter(spire, { clock: clockAt(base) }).mint(id(), approvedEnd);
    expect(spire.ttls).toEqual([59]);
    expect(svid.expiresAt.getTime()).toBeLessThanOrEqual(approvedEnd.getTime());
    expect(svid.expiresAt.getTime()).toBeGreaterThanOrEqual(approvedEnd.getTime() - 2_000);
  });

  it('the TTL is counted when the CSR is ready, not when the mint began (a slow key does not stretch the SVID)', async () => {
    const base = Math.floor(Date.now() / 1000) * 1000;
    // the key took 5 s: the minter's clock reads base, then base + 5 s; SPIRE signs at base + 5 s
    const spire = fakeSpire(() => base + 5_000);
    const approvedEnd = new Date(base + 60_000);
    const svid = await new SpireSvidMinter(spire, { clock: clockAt(base, base + 5_000) }).mint(id(), approvedEnd);
    expect(spire.ttls).toEqual([54]);
    expect(svid.expiresAt.getTime()).toBeLessThanOrEqual(approvedEnd.getTime());
  });

  it("SPIRE's clock 3.5 s ahead: the first SVID would outlive the approval, so it is dropped and a shorter one minted", async () => {
    const base = Math.floor(Date.now() / 1000) * 1000;
    const spire = fakeSpire(() => base + 3_500);
    const approvedEnd = new Date(base + 60_000);
    const svid = await new SpireSvidMinter(spire, { clock: clockAt(base) }).mint(id(), approvedEnd);
    expect(spire.ttls).toHaveLength(2);
    expect(spire.ttls[1]).toBeLessThan(spire.ttls[0]!);
    expect(svid.expiresAt.getTime()).toBeLessThanOrEqual(approvedEnd.getTime());
    expect(svid.svidId).toBe('12'); // the second certificate's serial: the first one is not what was returned
  });

  it("SPIRE's clock beyond the whole approval: refused (ERR_ISSUER_REFUSED, the fixed message), no SVID", async () => {
    const base = Date.now();
    const spire = fakeSpire(() => base + 120_000);
    const e = await new SpireSvidMinter(spire, { clock: clockAt(base) }).mint(id(), new Date(base + 60_000)).catch((x: unknown) => x);
    expect(isAckdError(e, 'ERR_ISSUER_REFUSED')).toBe(true);
    expect((e as Error).message).toBe('the SVID issuer refused to issue this SVID');
    expect(String(((e as Error).cause as Error).message)).toMatch(/after the approved end .*is SPIRE's clock ahead/);
    expect(spire.ttls.length).toBeLessThanOrEqual(2);
  });

  it('nothing left of the approval: ERR_EXPIRED before any key is made or SPIRE is called', async () => {
    const base = Date.now();
    const spire = fakeSpire(() => base);
    const e = await new SpireSvidMinter(spire, { clock: clockAt(base) }).mint(id(), new Date(base + 500)).catch((x: unknown) => x);
    expect(isAckdError(e, 'ERR_EXPIRED')).toBe(true);
    expect(spire.ttls).toEqual([]);
  });
});
