/**
 * Certificates for verifier tests, generated at test time: CAs (roots and intermediates) and
 * leaves that break one X509-SVID or RFC 5280 rule each.
 */
import { webcrypto } from 'node:crypto';
import 'reflect-metadata';
import { AsnConvert } from '@peculiar/asn1-schema';
import { GeneralName, GeneralSubtree, GeneralSubtrees, Name as AsnName, NameConstraints, id_ce_nameConstraints } from '@peculiar/asn1-x509';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

export interface TestCa {
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
  pem: string;
}

/** A GeneralName for name constraints and SANs, in @peculiar/asn1-x509's shape. */
export type NameSpec = Partial<Pick<GeneralName, 'uniformResourceIdentifier' | 'dNSName' | 'rfc822Name' | 'iPAddress' | 'registeredID'>> & { directoryName?: string };

function generalName(n: NameSpec): GeneralName {
  const { directoryName, ...rest } = n;
  return new GeneralName(directoryName !== undefined ? { directoryName: AsnConvert.parse(new x509.Name(directoryName).toArrayBuffer(), AsnName) } : rest);
}

/** A nameConstraints extension (critical, as RFC 5280 demands). */
export function nameConstraints(c: { permitted?: NameSpec[]; excluded?: NameSpec[] }, critical = true): x509.Extension {
  const subtrees = (xs: NameSpec[]) => new GeneralSubtrees(xs.map((n) => new GeneralSubtree({ base: generalName(n) })));
  const nc = new NameConstraints({
    ...(c.permitted ? { permittedSubtrees: subtrees(c.permitted) } : {}),
    ...(c.excluded ? { excludedSubtrees: subtrees(c.excluded) } : {}),
  });
  return new x509.Extension(id_ce_nameConstraints, critical, AsnConvert.serialize(nc));
}

/** An extension no verifier knows (a private OID with a NULL value). */
export function unknownExtension(critical: boolean, oid = '1.3.6.1.4.1.99999.7.1'): x509.Extension {
  return new x509.Extension(oid, critical, new Uint8Array([0x05, 0x00]));
}

export interface CaSpec {
  trustDomain?: string;
  issuer?: TestCa;
  name?: string;
  notBefore?: Date;
  notAfter?: Date;
  /** basicConstraints cA (default true); null leaves basicConstraints out. */
  ca?: boolean | null;
  pathLength?: number;
  /** Default keyCertSign | cRLSign; null leaves keyUsage out. */
  keyUsage?: number | null;
  /** URI SANs; default [spiffe://<trustDomain>]. */
  uris?: string[];
  extensions?: x509.Extension[];
  keys?: CryptoKeyPair;
  signingAlgorithm?: Algorithm & { hash?: string };
}

export async function makeCa(opts: CaSpec = {}): Promise<TestCa> {
  const keys = opts.keys ?? ((await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair);
  const name = opts.name ?? `CN=test CA ${Math.random().toString(36).slice(2)}`;
  const uris = opts.uris ?? [`spiffe://${opts.trustDomain ?? 'ackd.test'}`];
  const extensions: x509.Extension[] = [];
  if (opts.ca !== null) extensions.push(new x509.BasicConstraintsExtension(opts.ca ?? true, opts.pathLength, true));
  if (opts.keyUsage !== null) extensions.push(new x509.KeyUsagesExtension(opts.keyUsage ?? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true));
  if (uris.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(uris.map((u) => ({ type: 'url' as const, value: u }))));
  extensions.push(await x509.SubjectKeyIdentifierExtension.create(keys.publicKey));
  if (opts.issuer) extensions.push(await x509.AuthorityKeyIdentifierExtension.create(opts.issuer.keys.publicKey));
  extensions.push(...(opts.extensions ?? []));
  const params = {
    serialNumber: '01' + Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex'),
    notBefore: opts.notBefore ?? new Date(Date.now() - 3600_000),
    notAfter: opts.notAfter ?? new Date(Date.now() + 86_400_000),
    signingAlgorithm: opts.signingAlgorithm ?? ALG,
    extensions,
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
  subject?: string;
  /** More subjectAltNames besides the URIs. */
  names?: x509.JsonGeneralName[];
  extensions?: x509.Extension[];
  signingAlgorithm?: Algorithm & { hash?: string };
}

export async function makeLeaf(issuer: TestCa, spec: LeafSpec = {}): Promise<{ pem: string; cert: x509.X509Certificate; keyPem: string }> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const ext: x509.Extension[] = [
    new x509.BasicConstraintsExtension(spec.ca ?? false, undefined, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
    new x509.SubjectAlternativeNameExtension([...(spec.uris ?? []).map((u) => ({ type: 'url' as const, value: u })), ...(spec.names ?? [])]),
    await x509.AuthorityKeyIdentifierExtension.create(issuer.keys.publicKey),
  ];
  if (spec.keyUsage !== null) ext.push(new x509.KeyUsagesExtension(spec.keyUsage ?? x509.KeyUsageFlags.digitalSignature, true));
  ext.push(...(spec.extensions ?? []));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '7f' + Buffer.from(webcrypto.getRandomValues(new Uint8Array(15))).toString('hex'),
    subject: spec.subject ?? 'O=test',
    issuer: issuer.cert.subject,
    notBefore: spec.notBefore ?? new Date(Date.now() - 60_000),
    notAfter: spec.notAfter ?? new Date(Date.now() + 600_000),
    publicKey: keys.publicKey,
    signingKey: issuer.keys.privateKey,
    signingAlgorithm: spec.signingAlgorithm ?? ALG,
    extensions: ext,
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { pem: cert.toString('pem') + '\n', cert, keyPem: x509.PemConverter.encode([{ type: 'PRIVATE KEY', rawData: pkcs8 }]) + '\n' };
}

export const REQ_A = 'req_01m8097t68bqmsxsfk9emc3g6q';
export const REQ_B = 'req_01m8097t68bqmsxsfk9emc3g6r';
export const ID_A = `spiffe://ackd.test/agent/agent-1/${REQ_A}`;
export const ID_B = `spiffe://ackd.test/agent/agent-1/${REQ_B}`;
