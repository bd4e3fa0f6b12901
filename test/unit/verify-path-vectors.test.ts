/**
 * Path-validation vectors for ackd/verify (security review "Hardening": the verifier walked the
 * path by hand, without name constraints or unknown-critical-extension checks).
 *
 * Every vector is generated here at test time and judged twice: by verifySvid, which must give the
 * listed reason code (or accept), and by OpenSSL's X509_verify_cert (`openssl verify -x509_strict
 * -purpose sslclient`), the maintained validator the TLS stack uses, which must agree on accept or
 * refuse. Where ackd/verify is deliberately stricter than OpenSSL, the vector says so and why; it is
 * never more lenient.
 */
import 'reflect-metadata';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as x509 from '@peculiar/x509';
import { SvidVerifyError, verifyAckdSvid, verifySvid, type SvidVerifyCode } from '../../lambdas/verify/index.ts';
import { ID_A, REQ_A, makeCa, makeLeaf, nameConstraints, unknownExtension, type TestCa } from '../helpers/x509-fixtures.ts';

const run = promisify(execFile);
const KU = x509.KeyUsageFlags;
const HOUR = 3600_000;

interface Case {
  /** leaf first, then the intermediates the client presents */
  chain: string[];
  bundle: string;
  /** when the bundle names no trust domain */
  trustDomain?: string;
}

interface Vector {
  name: string;
  build: () => Promise<Case>;
  /** verifySvid's verdict */
  want: 'accept' | SvidVerifyCode;
  /** the refusal message must name the problem */
  message?: RegExp;
  /** OpenSSL's verdict, when it differs from ours: only ever 'accept' where we are stricter, with the reason */
  opensslAccepts?: string;
}

let root: TestCa;
let work: string;

async function opensslVerdict(c: Case): Promise<{ ok: boolean; out: string }> {
  const dir = await mkdtemp(join(work, 'v-'));
  const [leaf, ...inter] = c.chain;
  await writeFile(join(dir, 'leaf.pem'), leaf!);
  await writeFile(join(dir, 'bundle.pem'), c.bundle);
  const args = ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', join(dir, 'bundle.pem')];
  if (inter.length > 0) {
    await writeFile(join(dir, 'inter.pem'), inter.join(''));
    args.push('-untrusted', join(dir, 'inter.pem'));
  }
  args.push(join(dir, 'leaf.pem'));
  try {
    const { stdout, stderr } = await run('openssl', args);
    return { ok: /: OK\s*$/.test(stdout), out: stdout + stderr };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    return { ok: false, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

async function ourVerdict(c: Case): Promise<{ verdict: 'accept' | SvidVerifyCode; message: string }> {
  try {
    await verifySvid(c.chain.join(''), { bundle: c.bundle, ...(c.trustDomain ? { trustDomain: c.trustDomain } : {}) });
    return { verdict: 'accept', message: '' };
  } catch (e) {
    if (e instanceof SvidVerifyError) return { verdict: e.code, message: e.message };
    throw e;
  }
}

/** root → leaf */
const direct = async (leafSpec: Parameters<typeof makeLeaf>[1] = {}): Promise<Case> => {
  const leaf = await makeLeaf(root, { uris: [ID_A], ...leafSpec });
  return { chain: [leaf.pem], bundle: root.pem };
};
/** root → intermediate(spec) → leaf */
const viaIntermediate = async (spec: Parameters<typeof makeCa>[0] = {}, leafSpec: Parameters<typeof makeLeaf>[1] = {}): Promise<Case> => {
  const inter = await makeCa({ issuer: root, ...spec });
  const leaf = await makeLeaf(inter, { uris: [ID_A], ...leafSpec });
  return { chain: [leaf.pem, inter.pem], bundle: root.pem };
};

const vectors: Vector[] = [
  // --- accepted: the shapes SPIRE issues ---
  { name: 'valid: root → leaf (SPIRE as its own CA)', build: () => direct(), want: 'accept' },
  { name: 'valid: root → intermediate → leaf (SPIRE with an UpstreamAuthority)', build: () => viaIntermediate(), want: 'accept' },
  {
    name: 'valid: root → intermediate → intermediate → leaf (nested SPIRE)',
    build: async () => {
      const i1 = await makeCa({ issuer: root });
      const i2 = await makeCa({ issuer: i1 });
      const leaf = await makeLeaf(i2, { uris: [ID_A] });
      return { chain: [leaf.pem, i2.pem, i1.pem], bundle: root.pem };
    },
    want: 'accept',
  },
  {
    name: 'valid: intermediates presented out of order and with the root appended',
    build: async () => {
      const i1 = await makeCa({ issuer: root });
      const i2 = await makeCa({ issuer: i1 });
      const leaf = await makeLeaf(i2, { uris: [ID_A] });
      return { chain: [leaf.pem, i1.pem, root.pem, i2.pem], bundle: root.pem };
    },
    want: 'accept',
  },
  { name: 'valid: intermediate whose name constraints permit the trust domain (URI ackd.test)', build: () => viaIntermediate({ extensions: [nameConstraints({ permitted: [{ uniformResourceIdentifier: 'ackd.test' }] })] }), want: 'accept' },
  { name: 'valid: intermediate permitting a parent domain (URI .test)', build: () => viaIntermediate({ extensions: [nameConstraints({ permitted: [{ uniformResourceIdentifier: '.test' }] })] }), want: 'accept' },
  { name: 'valid: intermediate excluding another trust domain (URI evil.test)', build: () => viaIntermediate({ extensions: [nameConstraints({ excluded: [{ uniformResourceIdentifier: 'evil.test' }] })] }), want: 'accept' },
  { name: 'valid: constraints on a name form the leaf does not have (dNSName) do not apply', build: () => viaIntermediate({ extensions: [nameConstraints({ permitted: [{ dNSName: 'example.com' }] })] }), want: 'accept' },
  {
    name: 'valid: SPIRE-shaped leaf subject (C=US, O=SPIRE, x500UniqueIdentifier) within a permitted directoryName C=US, O=SPIRE',
    build: () => viaIntermediate({ extensions: [nameConstraints({ permitted: [{ directoryName: 'C=US, O=SPIRE' }] })] }, { subject: 'C=US, O=SPIRE, 2.5.4.45=#030201ab' }),
    want: 'accept',
  },
  {
    name: 'valid: the bundle holds an expired and a renewed root with one name and key (the search backtracks)',
    build: async () => {
      const keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
      const old = await makeCa({ keys, name: 'CN=rotating root', notBefore: new Date(Date.now() - 2 * HOUR), notAfter: new Date(Date.now() - HOUR) });
      const renewed = await makeCa({ keys, name: 'CN=rotating root' });
      const leaf = await makeLeaf(renewed, { uris: [ID_A] });
      return { chain: [leaf.pem], bundle: old.pem + renewed.pem };
    },
    want: 'accept',
  },
  {
    name: 'valid: an expired and a current intermediate with one name and key are presented (the search backtracks)',
    build: async () => {
      const keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
      const old = await makeCa({ keys, issuer: root, name: 'CN=rotating intermediate', notBefore: new Date(Date.now() - 2 * HOUR), notAfter: new Date(Date.now() - HOUR) });
      const current = await makeCa({ keys, issuer: root, name: 'CN=rotating intermediate' });
      const leaf = await makeLeaf(current, { uris: [ID_A] });
      return { chain: [leaf.pem, old.pem, current.pem], bundle: root.pem };
    },
    want: 'accept',
  },
  { name: 'valid: root pathLenConstraint 1 with one intermediate', build: async () => ({ ...(await viaIntermediateUnder(await makeCa({ pathLength: 1 }))) }), want: 'accept' },
  { name: 'valid: an unknown NON-critical extension on leaf and intermediate is ignored', build: () => viaIntermediate({ extensions: [unknownExtension(false)] }, { extensions: [unknownExtension(false)] }), want: 'accept' },

  // --- (a) unknown critical extensions ---
  { name: '(a) leaf with an unknown critical extension', build: () => direct({ extensions: [unknownExtension(true)] }), want: 'ERR_SVID_CRITICAL_EXTENSION', message: /the SVID has a critical extension .*1\.3\.6\.1\.4\.1\.99999\.7\.1/ },
  { name: '(a) intermediate with an unknown critical extension', build: () => viaIntermediate({ extensions: [unknownExtension(true)] }), want: 'ERR_SVID_CRITICAL_EXTENSION', message: /intermediate CA .* critical extension .*99999/ },
  {
    name: '(a) trust anchor with an unknown critical extension',
    build: async () => {
      const odd = await makeCa({ extensions: [unknownExtension(true)] });
      const leaf = await makeLeaf(odd, { uris: [ID_A] });
      return { chain: [leaf.pem], bundle: odd.pem };
    },
    want: 'ERR_SVID_CRITICAL_EXTENSION',
    message: /trust bundle CA .* critical extension/,
  },
  {
    name: '(a) intermediate with a critical certificatePolicies extension (policies are not processed)',
    build: () => viaIntermediate({ extensions: [new x509.CertificatePolicyExtension(['2.5.29.32.0'], true)] }),
    want: 'ERR_SVID_CRITICAL_EXTENSION',
    message: /certificatePolicies/,
    opensslAccepts: 'OpenSSL processes certificate policies; ackd/verify does not, so it refuses them when critical (SPIRE never sets them)',
  },
  {
    name: '(a) leaf with a critical nameConstraints extension (meaningless on a leaf)',
    build: () => direct({ extensions: [nameConstraints({ permitted: [{ uniformResourceIdentifier: 'ackd.test' }] })] }),
    want: 'ERR_SVID_CRITICAL_EXTENSION',
    message: /nameConstraints/,
    opensslAccepts: 'OpenSSL knows the extension and ignores it on a leaf; ackd/verify processes name constraints only on CAs, so on the leaf it is an unprocessed critical extension',
  },

  // --- (b) name constraints ---
  { name: '(b) intermediate permits only URI .other.example', build: () => viaIntermediate({ extensions: [nameConstraints({ permitted: [{ uniformResourceIdentifier: '.other.example' }] })] }), want: 'ERR_SVID_NAME_CONSTRAINTS', message: /uniformResourceIdentifier "spiffe:\/\/ackd\.test\/agent\/agent-1\/req_.*" is outside the permitted subtrees of the intermediate CA/ },
  { name: '(b) intermediate permits only another trust domain (URI other.test)', build: () => viaIntermediate({ extensions: [nameConstraints({ permitted: [{ uniformResourceIdentifier: 'other.test' }] })] }), want: 'ERR_SVID_NAME_CONSTRAINTS', message: /outside the permitted subtrees/ },
  { name: '(b) intermediate permits only subdomains (URI .ackd.test), not ackd.test itself', build: () => viaIntermediate({ uris: [], extensions: [nameConstraints({ permitted: [{ uniformResourceIdentifier: '.ackd.test' }] })] }), want: 'ERR_SVID_NAME_CONSTRAINTS', message: /outside the permitted subtrees/ },
  { name: '(b) intermediate excludes the trust domain (URI ackd.test)', build: () => viaIntermediate({ uris: [], extensions: [nameConstraints({ excluded: [{ uniformResourceIdentifier: 'ackd.test' }] })] }), want: 'ERR_SVID_NAME_CONSTRAINTS', message: /is in an excluded subtree of the intermediate CA/ },
  { name: '(b) excluded subtree matches case-insensitively (URI ACKD.TEST)', build: () => viaIntermediate({ uris: [], extensions: [nameConstraints({ excluded: [{ uniformResourceIdentifier: 'ACKD.TEST' }] })] }), want: 'ERR_SVID_NAME_CONSTRAINTS', message: /excluded subtree/ },
  {
    name: '(b) the trust anchor itself permits only another trust domain',
    build: async () => {
      const narrow = await makeCa({ uris: [], extensions: [nameConstraints({ permitted: [{ uniformResourceIdentifier: 'other.test' }] })] });
      const leaf = await makeLeaf(narrow, { uris: [ID_A] });
      return { chain: [leaf.pem], bundle: narrow.pem, trustDomain: 'ackd.test' };
    },
    want: 'ERR_SVID_NAME_CONSTRAINTS',
    message: /permitted subtrees of the trust bundle CA/,
  },
  {
    name: '(b) permitted subtrees intersect: a lower CA cannot widen what a higher one allowed',
    build: async () => {
      const i1 = await makeCa({ issuer: root, uris: [], extensions: [nameConstraints({ permitted: [{ uniformResourceIdentifier: 'other.test' }] })] });
      const i2 = await makeCa({ issuer: i1, uris: [], extensions: [nameConstraints({ permitted: [{ uniformResourceIdentifier: 'ackd.test' }] })] });
      const leaf = await makeLeaf(i2, { uris: [ID_A] });
      return { chain: [leaf.pem, i2.pem, i1.pem], bundle: root.pem };
    },
    want: 'ERR_SVID_NAME_CONSTRAINTS',
    message: /outside the permitted subtrees of the intermediate CA/,
  },
  {
    name: '(b) the intermediate CA\u2019s own URI SAN is checked against the root\u2019s constraints',
    build: async () => {
      const narrowRoot = await makeCa({ uris: [], extensions: [nameConstraints({ permitted: [{ uniformResourceIdentifier: 'ackd.test' }] })] });
      const i1 = await makeCa({ issuer: narrowRoot, uris: ['spiffe://evil.test'] });
      const leaf = await makeLeaf(i1, { uris: [ID_A] });
      return { chain: [leaf.pem, i1.pem], bundle: narrowRoot.pem, trustDomain: 'ackd.test' };
    },
    want: 'ERR_SVID_NAME_CONSTRAINTS',
    message: /the intermediate CA .*spiffe:\/\/evil\.test/,
  },
  { name: '(b) directoryName: leaf subject O=test outside permitted O=elsewhere', build: () => viaIntermediate({ extensions: [nameConstraints({ permitted: [{ directoryName: 'O=elsewhere' }] })] }), want: 'ERR_SVID_NAME_CONSTRAINTS', message: /subject or directoryName "O=test"/ },
  { name: '(b) directoryName: leaf subject in an excluded subtree (o=TEST, caseless)', build: () => viaIntermediate({ extensions: [nameConstraints({ excluded: [{ directoryName: 'O=TEST' }] })] }), want: 'ERR_SVID_NAME_CONSTRAINTS', message: /excluded subtree/ },
  { name: '(b) dNSName SAN outside permitted .example.com', build: () => viaIntermediate({ extensions: [nameConstraints({ permitted: [{ dNSName: '.example.com' }] })] }, { names: [{ type: 'dns', value: 'svc.evil.test' }] }), want: 'ERR_SVID_NAME_CONSTRAINTS', message: /dNSName "svc\.evil\.test"/ },
  { name: '(b) iPAddress SAN outside permitted 10.0.0.0/8', build: () => viaIntermediate({ extensions: [nameConstraints({ permitted: [{ iPAddress: '10.0.0.0/8' }] })] }, { names: [{ type: 'ip', value: '192.168.1.1' }] }), want: 'ERR_SVID_NAME_CONSTRAINTS', message: /iPAddress/ },
  { name: '(b) rfc822Name SAN in excluded evil.test', build: () => viaIntermediate({ extensions: [nameConstraints({ excluded: [{ rfc822Name: 'evil.test' }] })] }, { names: [{ type: 'email', value: 'bot@evil.test' }] }), want: 'ERR_SVID_NAME_CONSTRAINTS', message: /rfc822Name "bot@evil\.test" is in an excluded subtree/ },

  // --- SPIFFE trust domains along the path ---
  {
    name: 'intermediate CA of another trust domain (URI SAN spiffe://other.test)',
    build: () => viaIntermediate({ uris: ['spiffe://other.test'] }),
    want: 'ERR_SVID_TRUST_DOMAIN',
    message: /intermediate CA .* belongs to trust domain "other.test", the SVID to ackd.test/,
    opensslAccepts: 'OpenSSL knows nothing of SPIFFE trust domains',
  },
  {
    name: 'federated bundle: an ackd.test SVID signed by the other.test CA of the same bundle',
    build: async () => {
      const other = await makeCa({ trustDomain: 'other.test' });
      const leaf = await makeLeaf(other, { uris: [ID_A] });
      return { chain: [leaf.pem], bundle: root.pem + other.pem };
    },
    want: 'ERR_SVID_TRUST_DOMAIN',
    message: /trust bundle CA .* belongs to trust domain "other.test"/,
    opensslAccepts: 'OpenSSL knows nothing of SPIFFE trust domains',
  },

  // --- (c) validity of intermediates and anchors ---
  { name: '(c) expired intermediate', build: () => viaIntermediate({ notBefore: new Date(Date.now() - 2 * HOUR), notAfter: new Date(Date.now() - HOUR) }), want: 'ERR_SVID_EXPIRED', message: /intermediate CA .* expired at/ },
  { name: '(c) intermediate not yet valid', build: () => viaIntermediate({ notBefore: new Date(Date.now() + HOUR), notAfter: new Date(Date.now() + 2 * HOUR) }), want: 'ERR_SVID_NOT_YET_VALID', message: /intermediate CA .* is not valid before/ },
  {
    name: '(c) expired trust anchor',
    build: async () => {
      const old = await makeCa({ notBefore: new Date(Date.now() - 2 * HOUR), notAfter: new Date(Date.now() - HOUR) });
      const leaf = await makeLeaf(old, { uris: [ID_A] });
      return { chain: [leaf.pem], bundle: old.pem };
    },
    want: 'ERR_SVID_EXPIRED',
    message: /trust bundle CA .* expired at/,
  },

  // --- CA flags, key usage, path length ---
  { name: 'intermediate without basicConstraints', build: () => viaIntermediate({ ca: null }), want: 'ERR_SVID_UNTRUSTED', message: /intermediate CA .* is not a CA \(no basicConstraints\)/ },
  { name: 'intermediate with basicConstraints cA=false', build: () => viaIntermediate({ ca: false }), want: 'ERR_SVID_UNTRUSTED', message: /is not a CA \(basicConstraints cA is false\)/ },
  { name: 'intermediate whose keyUsage lacks keyCertSign', build: () => viaIntermediate({ keyUsage: KU.digitalSignature | KU.cRLSign }), want: 'ERR_SVID_UNTRUSTED', message: /lacks keyUsage keyCertSign/ },
  { name: 'intermediate without keyUsage (SPIFFE: signing certificates MUST set keyCertSign)', build: () => viaIntermediate({ keyUsage: null }), want: 'ERR_SVID_UNTRUSTED', message: /has no keyUsage/ },
  { name: 'root pathLenConstraint 0 exceeded by one intermediate', build: async () => viaIntermediateUnder(await makeCa({ pathLength: 0 })), want: 'ERR_SVID_UNTRUSTED', message: /pathLenConstraint of the trust bundle CA/ },
  {
    name: 'intermediate pathLenConstraint 0 exceeded by a second intermediate',
    build: async () => {
      const i1 = await makeCa({ issuer: root, pathLength: 0 });
      const i2 = await makeCa({ issuer: i1 });
      const leaf = await makeLeaf(i2, { uris: [ID_A] });
      return { chain: [leaf.pem, i2.pem, i1.pem], bundle: root.pem };
    },
    want: 'ERR_SVID_UNTRUSTED',
    message: /pathLenConstraint of the intermediate CA/,
  },

  // --- signatures ---
  {
    name: 'intermediate with a broken signature',
    build: async () => {
      const inter = await makeCa({ issuer: root });
      const leaf = await makeLeaf(inter, { uris: [ID_A] });
      const der = Buffer.from(inter.cert.rawData);
      der[der.length - 5]! ^= 0x01;
      return { chain: [leaf.pem, new x509.X509Certificate(der).toString('pem') + '\n'], bundle: root.pem };
    },
    want: 'ERR_SVID_UNTRUSTED',
    message: /signature of the intermediate CA .* does not verify with the key of the trust bundle CA/,
  },
  {
    name: 'leaf signed by another key than that of the intermediate with its issuer name',
    build: async () => {
      const inter = await makeCa({ issuer: root });
      const imposter = await makeCa({ issuer: root, name: inter.cert.subject });
      const leaf = await makeLeaf(imposter, { uris: [ID_A] });
      return { chain: [leaf.pem, inter.pem], bundle: root.pem };
    },
    want: 'ERR_SVID_UNTRUSTED',
    message: /signature of the SVID does not verify/,
  },
  {
    name: 'intermediate from another root with the same name',
    build: async () => {
      const otherRoot = await makeCa({ name: root.cert.subject });
      const inter = await makeCa({ issuer: otherRoot });
      const leaf = await makeLeaf(inter, { uris: [ID_A] });
      return { chain: [leaf.pem, inter.pem], bundle: root.pem };
    },
    want: 'ERR_SVID_UNTRUSTED',
  },
  { name: 'intermediate missing from the chain', build: async () => ({ chain: [(await viaIntermediate()).chain[0]!], bundle: root.pem }), want: 'ERR_SVID_UNTRUSTED', message: /no CA in the trust bundle issued the SVID/ },
  {
    name: 'leaf signed with ECDSA over SHA-1',
    build: () => direct({ signingAlgorithm: { name: 'ECDSA', hash: 'SHA-1' } as Algorithm }),
    want: 'ERR_SVID_UNTRUSTED',
    message: /algorithm ackd\/verify does not accept \(1\.2\.840\.10045\.4\.1\)/,
    opensslAccepts: 'SHA-1 is collision-broken (chosen-prefix); OpenSSL 3.0 at its default security level still accepts it in certificates',
  },

  // --- encoding ---
  {
    name: 'leaf with the subjectAltName extension twice',
    build: () => direct({ extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://ackd.test/agent/agent-1/req_01m8097t68bqmsxsfk9emc3g6r' }])] }),
    want: 'ERR_SVID_MALFORMED',
    message: /extension 2\.5\.29\.17 twice/,
  },
];

async function viaIntermediateUnder(top: TestCa): Promise<Case> {
  const inter = await makeCa({ issuer: top });
  const leaf = await makeLeaf(inter, { uris: [ID_A] });
  return { chain: [leaf.pem, inter.pem], bundle: top.pem };
}

describe('ackd/verify path validation vectors, cross-checked with OpenSSL', () => {
  beforeAll(async () => {
    root = await makeCa();
    work = await mkdtemp(join(tmpdir(), 'ackd-verify-vectors-'));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it.each(vectors.map((v) => [v.name, v] as const))('%s', async (_name, v) => {
    const c = await v.build();
    const ours = await ourVerdict(c);
    expect(ours.verdict, ours.message).toBe(v.want);
    if (v.message) expect(ours.message).toMatch(v.message);
    const theirs = await opensslVerdict(c);
    const opensslShouldAccept = v.want === 'accept' || v.opensslAccepts !== undefined;
    expect(theirs.ok, `openssl verify said: ${theirs.out}`).toBe(opensslShouldAccept);
  });

  it('verifyAckdSvid reports the path refusal code unchanged (public API)', async () => {
    const c = await viaIntermediate({ extensions: [nameConstraints({ permitted: [{ uniformResourceIdentifier: 'other.test' }] })] });
    await expect(verifyAckdSvid(c.chain.join(''), { bundle: c.bundle, expect: { requestId: REQ_A } })).rejects.toMatchObject({ code: 'ERR_SVID_NAME_CONSTRAINTS' });
    const ok = await viaIntermediate();
    const r = await verifyAckdSvid(ok.chain.join(''), { bundle: ok.bundle, expect: { requestId: REQ_A } });
    expect(r.svid.path).toHaveLength(3);
  });

  it('a search over many same-named candidates is bounded and fails closed', async () => {
    // 16 intermediates with one name and one key: every one verifies under every other
    const keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    const base = await makeCa({ keys, name: 'CN=loop' });
    const loop: TestCa[] = [];
    for (let i = 0; i < 16; i++) loop.push(await makeCa({ keys, name: 'CN=loop', issuer: base }));
    const leaf = await makeLeaf(base, { uris: [ID_A] });
    const started = Date.now();
    const r = await ourVerdict({ chain: [leaf.pem, ...loop.map((l) => l.pem)], bundle: root.pem });
    expect(r.verdict).toBe('ERR_SVID_UNTRUSTED');
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
