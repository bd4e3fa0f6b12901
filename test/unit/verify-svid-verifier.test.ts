/**
 * ackd/verify (issue 12): the kept verifier (createSvidVerifier), the one-shot functions' bundle
 * cache, the input forms, the key and algorithm rules now checked through OpenSSL, and the DER
 * field readers (der.ts) against @peculiar/asn1-schema's decoding of the same bytes.
 */
import 'reflect-metadata';
import { generateKeyPairSync, webcrypto } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { AsnConvert } from '@peculiar/asn1-schema';
import * as asn from '@peculiar/asn1-x509';
import * as x509 from '@peculiar/x509';
import { SvidVerifyError, createSvidVerifier, verifyAckdSvid, verifySvid, type SvidVerifyCode } from '../../lambdas/verify/index.ts';
import { certFields, oidText, readBasicConstraints, readKeyUsage, readValidity } from '../../lambdas/verify/der.ts';
import { ID_A, REQ_A, REQ_B, makeCa, makeLeaf, type TestCa } from '../helpers/x509-fixtures.ts';

async function code(p: Promise<unknown>): Promise<SvidVerifyCode> {
  try {
    await p;
  } catch (e) {
    if (e instanceof SvidVerifyError) return e.code;
    throw e;
  }
  throw new Error('expected a SvidVerifyError, but verification passed');
}

const HOUR = 3600_000;

describe('createSvidVerifier: a kept trust bundle', () => {
  let ca: TestCa;
  beforeAll(async () => {
    ca = await makeCa();
  });

  it('gives the same result as the one-shot verifySvid', async () => {
    const leaf = await makeLeaf(ca, { uris: [ID_A] });
    const verifier = createSvidVerifier(ca.pem);
    expect(verifier.trustDomains).toEqual(['ackd.test']);
    const kept = await verifier.verifySvid(leaf.pem + leaf.keyPem);
    const once = await verifySvid(leaf.pem + leaf.keyPem, { bundle: ca.pem });
    for (const k of ['spiffe_id', 'trust_domain', 'agent_id', 'request_id', 'svid_id', 'not_before', 'not_after'] as const) expect(kept[k]).toEqual(once[k]);
    expect(kept.spiffe_id).toBe(ID_A);
    expect(kept.svid_id).toBe(leaf.cert.serialNumber.toLowerCase().replace(/^0+/, ''));
    expect(kept.not_after.getTime()).toBe(leaf.cert.notAfter.getTime());
    expect(kept.path.map((c) => c.serialNumber)).toEqual([leaf.cert.serialNumber, ca.cert.serialNumber]);
    expect(kept.path[0]).toBeInstanceOf(x509.X509Certificate);
  });

  it('refuses what the one-shot form refuses, with the same codes', async () => {
    const verifier = createSvidVerifier(ca.pem);
    const imposter = await makeCa({ name: ca.cert.subject });
    const forged = await makeLeaf(imposter, { uris: [ID_A] });
    expect(await code(verifier.verifySvid(forged.pem))).toBe('ERR_SVID_UNTRUSTED');
    const two = await makeLeaf(ca, { uris: [ID_A, `spiffe://ackd.test/agent/agent-1/${REQ_B}`] });
    expect(await code(verifier.verifySvid(two.pem))).toBe('ERR_SVID_URI_SAN');
    const leaf = await makeLeaf(ca, { uris: [ID_A] });
    expect(await code(verifier.verifySvid(leaf.pem, { at: new Date(leaf.cert.notAfter.getTime() + 1000) }))).toBe('ERR_SVID_EXPIRED');
    expect(await code(verifier.verifyAckdSvid(leaf.pem, { expect: { requestId: REQ_B } }))).toBe('ERR_SVID_WRONG_REQUEST');
    expect(await code(verifier.verifyAckdSvid(leaf.pem, { expect: { agentId: 'agent-2' } }))).toBe('ERR_SVID_WRONG_AGENT');
    await expect(verifier.verifyAckdSvid(leaf.pem, { expect: { permissions: ['x'] } })).rejects.toThrow(/needs statusUrl/);
    const ok = await verifier.verifyAckdSvid(leaf.pem, { expect: { requestId: REQ_A, agentId: 'agent-1' } });
    expect(ok.svid.request_id).toBe(REQ_A);
    expect(ok.status).toBeUndefined();
  });

  it('judges the kept CA\u2019s validity on every call, not once', async () => {
    const shortCa = await makeCa({ notAfter: new Date(Date.now() + HOUR) });
    const leaf = await makeLeaf(shortCa, { uris: [ID_A], notAfter: new Date(Date.now() + 2 * HOUR) });
    const verifier = createSvidVerifier(shortCa.pem);
    await expect(verifier.verifySvid(leaf.pem)).resolves.toBeTruthy();
    const later = new Date(Date.now() + 90 * 60_000);
    await expect(verifier.verifySvid(leaf.pem, { at: later })).rejects.toMatchObject({ code: 'ERR_SVID_EXPIRED', message: expect.stringMatching(/trust bundle CA .* expired at/) });
  });

  it('checks the bundle when it is created', async () => {
    expect(() => createSvidVerifier('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')).toThrow(SvidVerifyError);
    expect(() => createSvidVerifier('')).toThrow(/holds no certificate/);
    const anonymous = await makeCa({ uris: [] });
    expect(() => createSvidVerifier(anonymous.pem)).toThrow(/pass trustDomain/);
    const verifier = createSvidVerifier(anonymous.pem, { trustDomain: 'ackd.test' });
    expect(verifier.trustDomains).toEqual(['ackd.test']);
    const leaf = await makeLeaf(anonymous, { uris: [ID_A] });
    await expect(verifier.verifySvid(leaf.pem)).resolves.toBeTruthy();
  });

  it('holds a copy of a DER bundle: changing the caller\u2019s buffer later changes nothing', async () => {
    const der = new Uint8Array(ca.cert.rawData.slice(0));
    const verifier = createSvidVerifier([der]);
    der.fill(0);
    const leaf = await makeLeaf(ca, { uris: [ID_A] });
    await expect(verifier.verifySvid(leaf.pem)).resolves.toBeTruthy();
  });
});

describe('the one-shot functions\u2019 bundle cache', () => {
  it('never answers for one bundle with another', async () => {
    const ca1 = await makeCa();
    const ca2 = await makeCa({ name: ca1.cert.subject }); // same name and trust domain, other key
    const leaf = await makeLeaf(ca1, { uris: [ID_A] });
    await expect(verifySvid(leaf.pem, { bundle: ca1.pem })).resolves.toBeTruthy();
    expect(await code(verifySvid(leaf.pem, { bundle: ca2.pem }))).toBe('ERR_SVID_UNTRUSTED');
    await expect(verifySvid(leaf.pem, { bundle: ca1.pem })).resolves.toBeTruthy();
    // as DER: a buffer the caller overwrites between calls is judged by what it holds at each call
    const buf = new Uint8Array(4096);
    const der1 = new Uint8Array(ca1.cert.rawData);
    const der2 = new Uint8Array(ca2.cert.rawData);
    buf.set(der1);
    await expect(verifySvid(leaf.pem, { bundle: [buf.subarray(0, der1.length)] })).resolves.toBeTruthy();
    buf.set(der2);
    expect(await code(verifySvid(leaf.pem, { bundle: [buf.subarray(0, der2.length)] }))).toBe('ERR_SVID_UNTRUSTED');
  });

  it('keeps a bounded number of bundles and stays correct past the bound', async () => {
    const cas = await Promise.all(Array.from({ length: 20 }, () => makeCa()));
    const leaves = await Promise.all(cas.map((c) => makeLeaf(c, { uris: [ID_A] })));
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < cas.length; i++) {
        await expect(verifySvid(leaves[i]!.pem, { bundle: cas[i]!.pem })).resolves.toBeTruthy();
        expect(await code(verifySvid(leaves[(i + 1) % cas.length]!.pem, { bundle: cas[i]!.pem }))).toBe('ERR_SVID_UNTRUSTED');
      }
    }
  });

  it('reports a broken bundle on every call, never caching the failure as a success', async () => {
    const garbage = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
    const ca = await makeCa();
    const leaf = await makeLeaf(ca, { uris: [ID_A] });
    for (let i = 0; i < 2; i++) expect(await code(verifySvid(leaf.pem, { bundle: garbage }))).toBe('ERR_SVID_MALFORMED');
  });
});

describe('input forms', () => {
  let ca: TestCa;
  beforeAll(async () => {
    ca = await makeCa();
  });

  it('accepts PEM (with the private key, CRLF line ends), DER buffers, ArrayBuffers and @peculiar/x509 objects', async () => {
    const inter = await makeCa({ issuer: ca });
    const leaf = await makeLeaf(inter, { uris: [ID_A] });
    const crlf = (leaf.pem + inter.pem + leaf.keyPem).replace(/\n/g, '\r\n');
    expect((await verifySvid(crlf, { bundle: ca.pem })).path).toHaveLength(3);
    expect((await verifySvid([new Uint8Array(leaf.cert.rawData), new Uint8Array(inter.cert.rawData)], { bundle: [new Uint8Array(ca.cert.rawData)] })).path).toHaveLength(3);
    expect((await verifySvid([leaf.cert.rawData, inter.cert.rawData], { bundle: [ca.cert.rawData] })).path).toHaveLength(3);
    const v = await verifySvid([leaf.cert, inter.cert], { bundle: [ca.cert] });
    expect(v.path[0]).toBe(leaf.cert); // the objects passed in come back
    expect(v.path[2]).toBe(ca.cert);
  });

  it('refuses DER with trailing bytes, and a chain whose first block is not a certificate', async () => {
    const leaf = await makeLeaf(ca, { uris: [ID_A] });
    const der = new Uint8Array(leaf.cert.rawData);
    const padded = new Uint8Array(der.length + 2);
    padded.set(der);
    expect(await code(verifySvid([padded], { bundle: ca.pem }))).toBe('ERR_SVID_MALFORMED');
    expect(await code(verifySvid(leaf.keyPem, { bundle: ca.pem }))).toBe('ERR_SVID_NO_CERTIFICATE');
  });

  it('verifyAckdSvid and the kept verifier agree on DER input', async () => {
    const leaf = await makeLeaf(ca, { uris: [ID_A] });
    const chain = [new Uint8Array(leaf.cert.rawData)];
    const a = await verifyAckdSvid(chain, { bundle: ca.pem, expect: { requestId: REQ_A } });
    const b = await createSvidVerifier(ca.pem).verifyAckdSvid(chain, { expect: { requestId: REQ_A } });
    expect(b.svid.svid_id).toBe(a.svid.svid_id);
  });
});

describe('keys and signature algorithms (signatures checked by OpenSSL)', () => {
  it('accepts ECDSA P-384 and RSA 2048 CAs, refuses an RSA key under 2048 bits', async () => {
    const p384 = await makeCa({
      keys: (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, ['sign', 'verify'])) as CryptoKeyPair,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-384' } as Algorithm,
    });
    const l384 = await makeLeaf(p384, { uris: [ID_A], signingAlgorithm: { name: 'ECDSA', hash: 'SHA-384' } as Algorithm });
    await expect(verifySvid(l384.pem, { bundle: p384.pem })).resolves.toBeTruthy();

    const rsa = async (modulusLength: number) => {
      const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength };
      const c = await makeCa({ keys: (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair, signingAlgorithm: alg });
      const l = await makeLeaf(c, { uris: [ID_A], signingAlgorithm: alg });
      return { c, l };
    };
    const strong = await rsa(2048);
    await expect(verifySvid(strong.l.pem, { bundle: strong.c.pem })).resolves.toBeTruthy();
    const weak = await rsa(1024);
    await expect(verifySvid(weak.l.pem, { bundle: weak.c.pem })).rejects.toMatchObject({ code: 'ERR_SVID_UNTRUSTED', message: expect.stringMatching(/RSA key shorter than 2048 bits/) });
  });

  it('accepts an Ed25519 CA', async () => {
    const alg = { name: 'Ed25519' };
    const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
    const ed = await makeCa({ keys, signingAlgorithm: alg });
    const leaf = await makeLeaf(ed, { uris: [ID_A], signingAlgorithm: alg });
    await expect(verifySvid(leaf.pem, { bundle: ed.pem })).resolves.toBeTruthy();
  });

  it('refuses a CA key on a curve outside P-256/384/521', async () => {
    // a CA whose SubjectPublicKeyInfo is a secp256k1 key: the leaf cannot be signed by it through
    // Web Crypto, so the leaf is signed by another key; the curve is refused before any signature check
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
    const signer = await makeCa();
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    const odd = await x509.X509CertificateGenerator.create({
      serialNumber: '01',
      subject: 'CN=k1 CA',
      issuer: signer.cert.subject,
      notBefore: new Date(Date.now() - HOUR),
      notAfter: new Date(Date.now() + HOUR),
      publicKey: new x509.PublicKey(new Uint8Array(spki)),
      signingKey: signer.keys.privateKey,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as Algorithm,
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true), new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://ackd.test' }])],
    });
    const leaf = await makeLeaf({ cert: odd, keys: signer.keys, pem: odd.toString('pem') }, { uris: [ID_A] });
    await expect(verifySvid(leaf.pem, { bundle: odd.toString('pem') })).rejects.toMatchObject({ code: 'ERR_SVID_UNTRUSTED', message: expect.stringMatching(/EC key on a curve ackd\/verify does not accept/) });
  });
});

describe('der.ts readers agree with @peculiar/asn1-schema', () => {
  it('keyUsage bits', () => {
    for (const flags of [1, 2, 4, 32, 64, 96, 1 | 32 | 64, 128, 256, 256 | 1, 511]) {
      const der = new Uint8Array(AsnConvert.serialize(new asn.KeyUsage(flags)));
      expect(readKeyUsage(der)).toBe(AsnConvert.parse(der, asn.KeyUsage).toNumber());
      expect(readKeyUsage(der)).toBe(flags);
    }
    expect(() => readKeyUsage(new Uint8Array([0x03, 0x01, 0x01]))).toThrow(); // one octet, unused bits ≠ 0
    expect(() => readKeyUsage(new Uint8Array([0x03, 0x02, 0x08, 0x80]))).toThrow(); // unused bits > 7
  });

  it('basicConstraints', () => {
    for (const bc of [new asn.BasicConstraints({}), new asn.BasicConstraints({ cA: true }), new asn.BasicConstraints({ cA: true, pathLenConstraint: 0 }), new asn.BasicConstraints({ cA: true, pathLenConstraint: 300 })]) {
      const der = new Uint8Array(AsnConvert.serialize(bc));
      const want = AsnConvert.parse(der, asn.BasicConstraints);
      expect(readBasicConstraints(der)).toEqual({ cA: want.cA, pathLenConstraint: want.pathLenConstraint });
    }
    expect(() => readBasicConstraints(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0xff]))).toThrow(); // negative pathLen
    expect(() => readBasicConstraints(new Uint8Array([0x30, 0x03, 0x04, 0x01, 0x00]))).toThrow(); // not BOOLEAN / INTEGER
  });

  it('validity: RFC 5280 UTCTime and GeneralizedTime only', () => {
    const t = (tag: number, s: string) => [tag, s.length, ...Buffer.from(s, 'latin1')];
    const validity = (a: number[], b: number[]) => new Uint8Array([0x30, a.length + b.length, ...a, ...b]);
    const v = readValidity(validity(t(0x17, '491231235959Z'), t(0x18, '20500101000000Z')));
    expect(v.notBefore.toISOString()).toBe('2049-12-31T23:59:59.000Z');
    expect(v.notAfter.toISOString()).toBe('2050-01-01T00:00:00.000Z');
    expect(readValidity(validity(t(0x17, '500101000000Z'), t(0x18, '99991231235959Z'))).notBefore.toISOString()).toBe('1950-01-01T00:00:00.000Z');
    for (const bad of ['5001010000Z', '500101000000+0100', '501301000000Z', '500132000000Z', '500101240000Z', '500101000060Z']) {
      expect(() => readValidity(validity(t(0x17, bad), t(0x17, '500101000000Z'))), bad).toThrow();
    }
    expect(() => readValidity(validity(t(0x18, '20500101000000.5Z'), t(0x17, '500101000000Z')))).toThrow();
    expect(() => readValidity(validity(t(0x18, '2050010100Z'), t(0x17, '500101000000Z')))).toThrow();
  });

  it('object identifiers', () => {
    const enc = (oid: string) => {
      const der = new Uint8Array(AsnConvert.serialize(new asn.AlgorithmIdentifier({ algorithm: oid })));
      return der.subarray(4, 4 + der[3]!); // SEQUENCE { OID } → the OID's value octets
    };
    for (const oid of ['2.5.29.17', '1.2.840.10045.4.3.2', '1.3.6.1.4.1.99999.7.1', '2.999.1', '0.9.2342.19200300.100.1.1']) expect(oidText(enc(oid))).toBe(oid);
    expect(oidText(new Uint8Array([0x2a, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]))).toBe('1.2.' + (2n ** 56n).toString());
    expect(() => oidText(new Uint8Array([0x2a, 0x80, 0x01]))).toThrow(); // non-minimal arc
    expect(() => oidText(new Uint8Array([0x2a, 0x81]))).toThrow(); // truncated
  });

  it('certificate slicing is strict DER', async () => {
    const ca = await makeCa();
    const der = new Uint8Array(ca.cert.rawData);
    const f = certFields(der);
    expect(Buffer.from(f.subject).equals(Buffer.from(AsnConvert.serialize(AsnConvert.parse(der, asn.Certificate).tbsCertificate.subject)))).toBe(true);
    expect(f.extensions.map((e) => e.extnID)).toEqual(ca.cert.extensions.map((e) => e.type));
    expect(() => certFields(new Uint8Array([...der, 0]))).toThrow(/trailing/);
    const indefinite = Uint8Array.from(der);
    indefinite[1] = 0x80;
    expect(() => certFields(indefinite)).toThrow();
  });
});
