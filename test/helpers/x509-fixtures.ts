/**
 * Certificates for verifier tests, generated at test time: a CA and leaves that break one
 * X509-SVID rule each.
 */
import { webcrypto } from 'node:crypto';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

export interface TestCa {
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
  pem: string;
}

export async function makeCa(opts: { trustDomain?: string; issuer?: TestCa; name?: string; notBefore?: Date; notAfter?: Date; ca?: boolean; pathLength?: number } = {}): Promise<TestCa> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const name = opts.name ?? `CN=test CA ${Math.random().toString(36).slice(2)}`;
  const params = {
    serialNumber: '01' + Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex'),
    notBefore: opts.notBefore ?? new Date(Date.now() - 3600_000),
    notAfter: opts.notAfter ?? new Date(Date.now() + 86_400_000),
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(opts.ca ?? true, opts.pathLength, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${opts.trustDomain ?? 'ackd.test'}` }]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  };
  const cert = opts.issuer
    ? await x509.X509CertificateGenerator.create({ ...params, subject: name, issuer: opts.issuer.cert.subject, publicKey: keys.publicKey, signingKey: opts.issuer.keys.privateKey })
    : await x509.X509CertificateGenerator.createSelfSigned({ ...params, name, keys });
  return { cert, keys, pem: cert.toString('pem') + '\n' };
}

export interface LeafSpec {
  uris?: string[];
  ca?: boolean;
  keyUsage?: number | null;
  notBefore?: Date;
  notAfter?: Date;
}

export async function makeLeaf(issuer: TestCa, spec: LeafSpec = {}): Promise<{ pem: string; cert: x509.X509Certificate; keyPem: string }> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const ext: x509.Extension[] = [
    new x509.BasicConstraintsExtension(spec.ca ?? false, undefined, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
    new x509.SubjectAlternativeNameExtension((spec.uris ?? []).map((u) => ({ type: 'url' as const, value: u }))),
  ];
  if (spec.keyUsage !== null) ext.push(new x509.KeyUsagesExtension(spec.keyUsage ?? x509.KeyUsageFlags.digitalSignature, true));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '7f' + Buffer.from(webcrypto.getRandomValues(new Uint8Array(15))).toString('hex'),
    subject: 'O=test',
    issuer: issuer.cert.subject,
    notBefore: spec.notBefore ?? new Date(Date.now() - 60_000),
    notAfter: spec.notAfter ?? new Date(Date.now() + 600_000),
    publicKey: keys.publicKey,
    signingKey: issuer.keys.privateKey,
    signingAlgorithm: ALG,
    extensions: ext,
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { pem: cert.toString('pem') + '\n', cert, keyPem: x509.PemConverter.encode([{ type: 'PRIVATE KEY', rawData: pkcs8 }]) + '\n' };
}

export const REQ_A = 'req_01m8097t68bqmsxsfk9emc3g6q';
export const REQ_B = 'req_01m8097t68bqmsxsfk9emc3g6r';
export const ID_A = `spiffe://ackd.test/agent/agent-1/${REQ_A}`;
export const ID_B = `spiffe://ackd.test/agent/agent-1/${REQ_B}`;
