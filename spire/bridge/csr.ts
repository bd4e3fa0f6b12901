/**
 * Key pair + CSR for one SVID, kept apart from the SPIRE call so the two can run in different
 * places (e.g. a Lambda makes the key and CSR and a sidecar next to SPIRE forwards the CSR).
 *
 * The CSR is one fixed shape, so it is written as DER here (a few bytes of ASN.1, no ASN.1 or
 * X.509 library in the MCP function's cold start) and signed by node:crypto (OpenSSL):
 *
 *   CertificationRequest ::= SEQUENCE {                         -- RFC 2986
 *     certificationRequestInfo SEQUENCE {
 *       version INTEGER 0,
 *       subject Name,                                          -- O=ackd (PrintableString)
 *       subjectPKInfo SubjectPublicKeyInfo,                    -- EC P-256, as OpenSSL exports it
 *       attributes [0] { extensionRequest { SEQUENCE { subjectAltName (not critical): URI } } } },
 *     signatureAlgorithm SEQUENCE { ecdsa-with-SHA256 },       -- no parameters (RFC 5758)
 *     signature BIT STRING }                                   -- ECDSA-Sig-Value, DER
 *
 * The signed part is byte for byte what @peculiar/x509's Pkcs10CertificateRequestGenerator made for
 * the same key and SPIFFE ID; spire-server's MintX509SVID accepts it
 * (test/integration/spire-server.test.ts, svid-minter.contract.test.ts).
 */
import { generateKeyPair, sign } from 'node:crypto';
import { promisify } from 'node:util';
import type { SpiffeId } from '../../lambdas/core/ids.ts';

const generateEcKeyPair = promisify(generateKeyPair);

export interface KeyAndCsr {
  /** PKCS#10 DER with exactly one URI SAN: the SPIFFE ID. */
  readonly csrDer: Uint8Array;
  /** PEM PKCS#8. Lives only in memory and in the response that delivers the SVID. */
  readonly privateKeyPem: string;
  /** DER SubjectPublicKeyInfo, to check the minted leaf certifies this key. */
  readonly publicKeySpki: Uint8Array;
}

// ---------- DER ----------

/** One DER TLV: `tag`, definite length (short or long form), the contents. */
function tlv(tag: number, ...contents: readonly Uint8Array[]): Buffer {
  const body = Buffer.concat(contents);
  const n = body.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    len = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), len, body]);
}

const SEQUENCE = 0x30;
const SET = 0x31;
const hex = (h: string): Buffer => Buffer.from(h, 'hex');

/** Encoded OBJECT IDENTIFIERs (tag and length included). */
const OID = {
  organizationName: hex('060355040a'), // 2.5.4.10
  extensionRequest: hex('06092a864886f70d01090e'), // 1.2.840.113549.1.9.14
  subjectAltName: hex('0603551d11'), // 2.5.29.17
  ecdsaWithSha256: hex('06082a8648ce3d040302'), // 1.2.840.10045.4.3.2
} as const;

const VERSION_1 = hex('020100'); // INTEGER 0
/** Name: one RDN, O=ackd as a PrintableString. */
const SUBJECT = tlv(SEQUENCE, tlv(SET, tlv(SEQUENCE, OID.organizationName, tlv(0x13, Buffer.from('ackd', 'ascii')))));
const SIGNATURE_ALGORITHM = tlv(SEQUENCE, OID.ecdsaWithSha256);

/** The certificationRequestInfo (what is signed) for a public key and a SPIFFE ID. */
export function certificationRequestInfo(spki: Uint8Array, spiffeId: string): Buffer {
  // A URI SAN is an IA5String (ASCII); a SPIFFE ID is ASCII by definition.
  if (!/^[\x20-\x7e]+$/.test(spiffeId)) throw new TypeError('a SPIFFE ID in a CSR must be printable ASCII');
  const generalNames = tlv(SEQUENCE, tlv(0x86, Buffer.from(spiffeId, 'ascii'))); // [6] uniformResourceIdentifier
  const extensions = tlv(SEQUENCE, tlv(SEQUENCE, OID.subjectAltName, tlv(0x04, generalNames))); // critical: absent (FALSE)
  const attributes = tlv(0xa0, tlv(SEQUENCE, OID.extensionRequest, tlv(SET, extensions))); // [0] IMPLICIT SET OF Attribute
  return tlv(SEQUENCE, VERSION_1, SUBJECT, spki, attributes);
}

// ---------- key and CSR ----------

/** Generates an ECDSA P-256 key pair in memory and a CSR naming `spiffeId`. */
export async function createKeyAndCsr(spiffeId: SpiffeId | string): Promise<KeyAndCsr> {
  const { publicKey, privateKey } = await generateEcKeyPair('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const info = certificationRequestInfo(spki, spiffeId.toString());
  const signature = sign('sha256', info, { key: privateKey, dsaEncoding: 'der' });
  // BIT STRING: 0 unused bits, then the DER ECDSA-Sig-Value.
  const csr = tlv(SEQUENCE, info, SIGNATURE_ALGORITHM, tlv(0x03, Buffer.from([0]), signature));
  return {
    csrDer: new Uint8Array(csr),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeySpki: new Uint8Array(spki),
  };
}

/** One PEM block: base64 in lines of 64 characters, ending with a newline. */
function pem(type: string, der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  const lines = (b64.match(/.{1,64}/g) ?? []).map((l) => `${l}\n`).join('');
  return `-----BEGIN ${type}-----\n${lines}-----END ${type}-----\n`;
}

/** DER certificates → PEM, in order. */
export function derChainToPem(chain: readonly Uint8Array[]): string {
  return chain.map((der) => pem('CERTIFICATE', der)).join('');
}
