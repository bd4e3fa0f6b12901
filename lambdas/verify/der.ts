/**
 * The DER fields of an X.509 certificate that ackd/verify reads and Node's X509Certificate does not
 * expose: where the signature algorithm fields, the serial, the issuer and subject names, the
 * validity and each extension (OID, critical flag, value) lie, and the few small values it
 * interprets itself (RFC 5280 times, basicConstraints, keyUsage; GeneralNames in path.ts).
 * Distinguished names are read with @peculiar/asn1-schema.
 *
 * Every certificate given here has already been parsed and accepted by OpenSSL (node:crypto
 * X509Certificate), and the reading is strict on top of that (DER definite minimal lengths, every
 * element exactly inside its parent, no trailing bytes, RFC 5280 time formats only; anything else
 * throws, which the verifier reports as ERR_SVID_MALFORMED). A general ASN.1 library is not used
 * here because decoding a whole certificate into objects on every verification (asn1js,
 * @peculiar/asn1-schema) costs more than OpenSSL's parse and signature check together; the
 * readers are checked against @peculiar/asn1-schema's decoding in test/unit/verify-svid-verifier.test.ts.
 */

/** One DER element: identifier octet, where its value starts and where it ends (exclusive). */
export interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly valueStart: number;
  readonly end: number;
}

export const TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  oid: 0x06,
  sequence: 0x30,
  /** [0] EXPLICIT, constructed (TBSCertificate.version) */
  ctx0: 0xa0,
  /** [1] IMPLICIT primitive (issuerUniqueID) */
  ctx1: 0x81,
  /** [2] IMPLICIT primitive (subjectUniqueID) */
  ctx2: 0x82,
  /** [3] EXPLICIT, constructed (TBSCertificate.extensions) */
  ctx3: 0xa3,
} as const;

class DerError extends Error {}

/** Reads the element at `pos`, which must end at or before `limit`. */
export function readTlv(buf: Uint8Array, pos: number, limit: number): Tlv {
  if (pos + 2 > limit) throw new DerError('truncated element');
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('high tag numbers are not used in certificates');
  let len = buf[pos + 1]!;
  let valueStart = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw new DerError('indefinite length is not DER');
    if (n > 4 || valueStart + n > limit) throw new DerError('length too long');
    if (buf[valueStart] === 0) throw new DerError('non-minimal length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[valueStart + i]!;
    if (len < 0x80) throw new DerError('non-minimal length');
    valueStart += n;
  }
  const end = valueStart + len;
  if (end > limit) throw new DerError('element runs past its parent');
  return { tag, start: pos, valueStart, end };
}

/** The elements inside a constructed element, which they must fill exactly. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let pos = parent.valueStart;
  while (pos < parent.end) {
    const t = readTlv(buf, pos, parent.end);
    out.push(t);
    pos = t.end;
  }
  return out;
}

function expect(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag) throw new DerError(`${what}: unexpected element`);
  return t;
}

/** Dotted-decimal text of an OBJECT IDENTIFIER's value octets. */
export function oidText(v: Uint8Array): string {
  if (v.length === 0) throw new DerError('empty OBJECT IDENTIFIER');
  let out = '';
  let acc = 0;
  let big: bigint | undefined; // an arc beyond 2^53 (never in practice, but exact)
  let started = false;
  for (let i = 0; i < v.length; i++) {
    const b = v[i]!;
    if (!started && b === 0x80) throw new DerError('non-minimal OBJECT IDENTIFIER arc');
    started = true;
    if (big !== undefined) big = (big << 7n) | BigInt(b & 0x7f);
    else if (acc >= 2 ** 45) big = (BigInt(acc) << 7n) | BigInt(b & 0x7f);
    else acc = acc * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) {
      if (out === '') {
        // the first subidentifier holds two arcs: 40 * X + Y, X in 0..2
        if (big !== undefined) out = `2.${big - 80n}`;
        else out = acc < 80 ? `${Math.floor(acc / 40)}.${acc % 40}` : `2.${acc - 80}`;
      } else out += `.${big ?? acc}`;
      acc = 0;
      big = undefined;
      started = false;
    }
  }
  if (started) throw new DerError('truncated OBJECT IDENTIFIER');
  return out;
}

const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;

/** A Time of RFC 5280 §4.1.2.5: UTCTime YYMMDDHHMMSSZ (YY ≥ 50 is 19YY) or GeneralizedTime YYYYMMDDHHMMSSZ. */
function readTime(der: Uint8Array, t: Tlv): Date {
  if (t.end - t.valueStart > 15) throw new DerError('a time longer than RFC 5280 allows');
  const s = String.fromCharCode(...der.subarray(t.valueStart, t.end));
  let m: RegExpExecArray | null;
  let year: number;
  if (t.tag === UTC_TIME && (m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) {
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (t.tag === GENERALIZED_TIME && (m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) {
    year = Number(m[1]);
  } else {
    throw new DerError('a time that is not an RFC 5280 UTCTime or GeneralizedTime');
  }
  const [month, day, hour, minute, second] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number];
  const d = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // Date.UTC rolls over (month 13, day 32, hour 24…): refuse what does not come back unchanged
  if (d.getUTCFullYear() !== year || d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day || d.getUTCHours() !== hour || d.getUTCMinutes() !== minute || d.getUTCSeconds() !== second) {
    throw new DerError('a time out of range');
  }
  return d;
}

/** notBefore and notAfter of a Validity element. */
export function readValidity(der: Uint8Array): { readonly notBefore: Date; readonly notAfter: Date } {
  const v = readTlv(der, 0, der.length);
  if (v.tag !== TAG.sequence || v.end !== der.length) throw new DerError('Validity: unexpected element');
  const [nb, na, extra] = children(der, v);
  if (!nb || !na || extra) throw new DerError('Validity: unexpected element');
  return { notBefore: readTime(der, nb), notAfter: readTime(der, na) };
}

export interface RawExtension {
  readonly extnID: string;
  readonly critical: boolean;
  /** The extnValue OCTET STRING's content: the extension's own DER. */
  readonly value: Uint8Array;
}

/** Where the fields of one certificate lie; byte ranges are views into the certificate's DER. */
export interface CertFields {
  /** TBSCertificate.signature and Certificate.signatureAlgorithm, whole AlgorithmIdentifier elements. */
  readonly tbsSignatureAlgorithm: Uint8Array;
  readonly signatureAlgorithm: Uint8Array;
  /** The algorithm OID of Certificate.signatureAlgorithm. */
  readonly signatureAlgorithmOid: string;
  /** The serial number INTEGER's content octets. */
  readonly serial: Uint8Array;
  /** Whole Name elements. */
  readonly issuer: Uint8Array;
  readonly subject: Uint8Array;
  /** The whole Validity element. */
  readonly validity: Uint8Array;
  /** In certificate order; duplicates are kept (the caller refuses them with a clear message). */
  readonly extensions: readonly RawExtension[];
}

/** Slices a DER certificate. Throws on anything that is not a certificate's DER shape. */
export function certFields(der: Uint8Array): CertFields {
  const cert = expect(readTlv(der, 0, der.length), TAG.sequence, 'Certificate');
  if (cert.end !== der.length) throw new DerError('trailing bytes after the certificate');
  const [tbs, sigAlg, sigValue, extra] = children(der, cert);
  expect(tbs, TAG.sequence, 'tbsCertificate');
  const sa = expect(sigAlg, TAG.sequence, 'signatureAlgorithm');
  expect(sigValue, TAG.bitString, 'signatureValue');
  if (extra) throw new DerError('Certificate has more than three fields');
  const saOid = expect(children(der, sa)[0], TAG.oid, 'signatureAlgorithm.algorithm');

  const f = children(der, tbs!);
  let i = 0;
  if (f[i]?.tag === TAG.ctx0) i++;
  const serial = expect(f[i++], TAG.integer, 'serialNumber');
  const tbsSig = expect(f[i++], TAG.sequence, 'signature');
  const issuer = expect(f[i++], TAG.sequence, 'issuer');
  const validity = expect(f[i++], TAG.sequence, 'validity');
  const subject = expect(f[i++], TAG.sequence, 'subject');
  expect(f[i++], TAG.sequence, 'subjectPublicKeyInfo');
  if (f[i]?.tag === TAG.ctx1) i++;
  if (f[i]?.tag === TAG.ctx2) i++;
  const extensions: RawExtension[] = [];
  if (f[i]?.tag === TAG.ctx3) {
    const wrapper = f[i++]!;
    const inner = children(der, wrapper);
    const list = expect(inner[0], TAG.sequence, 'extensions');
    if (inner.length !== 1) throw new DerError('extensions: unexpected element');
    for (const e of children(der, list)) {
      const parts = children(der, expect(e, TAG.sequence, 'Extension'));
      let j = 0;
      const id = expect(parts[j++], TAG.oid, 'extnID');
      let critical = false;
      if (parts[j]?.tag === TAG.boolean) {
        const b = parts[j++]!;
        if (b.end - b.valueStart !== 1) throw new DerError('critical: not one octet');
        critical = der[b.valueStart] !== 0;
      }
      const value = expect(parts[j++], TAG.octetString, 'extnValue');
      if (j !== parts.length) throw new DerError('Extension: unexpected element');
      extensions.push({ extnID: oidText(der.subarray(id.valueStart, id.end)), critical, value: der.subarray(value.valueStart, value.end) });
    }
  }
  if (i !== f.length) throw new DerError('tbsCertificate: unexpected element');
  const slice = (t: Tlv) => der.subarray(t.start, t.end);
  return {
    tbsSignatureAlgorithm: slice(tbsSig),
    signatureAlgorithm: slice(sa),
    signatureAlgorithmOid: oidText(der.subarray(saOid.valueStart, saOid.end)),
    serial: der.subarray(serial.valueStart, serial.end),
    issuer: slice(issuer),
    subject: slice(subject),
    validity: slice(validity),
    extensions,
  };
}

/** The one element that is all of `der`, with the given tag. */
export function whole(der: Uint8Array, tag: number, what: string): Tlv {
  const t = readTlv(der, 0, der.length);
  if (t.tag !== tag || t.end !== der.length) throw new DerError(`${what}: unexpected element`);
  return t;
}

/** basicConstraints (RFC 5280 §4.2.1.9): SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER (0..MAX) OPTIONAL }. */
export function readBasicConstraints(der: Uint8Array): { readonly cA: boolean; readonly pathLenConstraint: number | undefined } {
  const parts = children(der, whole(der, TAG.sequence, 'BasicConstraints'));
  let i = 0;
  let cA = false;
  if (parts[i]?.tag === TAG.boolean) {
    const b = parts[i++]!;
    if (b.end - b.valueStart !== 1) throw new DerError('cA: not one octet');
    cA = der[b.valueStart] !== 0;
  }
  let pathLenConstraint: number | undefined;
  if (parts[i]?.tag === TAG.integer) {
    const n = parts[i++]!;
    const v = der.subarray(n.valueStart, n.end);
    if (v.length === 0 || v[0]! & 0x80) throw new DerError('pathLenConstraint: not a non-negative INTEGER');
    // more than 6 octets is beyond any path: as good as no limit, and kept exact below 2^48
    pathLenConstraint = v.length > 6 ? Number.MAX_SAFE_INTEGER : v.reduce((acc, b) => acc * 256 + b, 0);
  }
  if (i !== parts.length) throw new DerError('BasicConstraints: unexpected element');
  return { cA, pathLenConstraint };
}

/**
 * keyUsage (RFC 5280 §4.2.1.3), a BIT STRING, as a number whose bit i is named bit i
 * (digitalSignature = 1, keyCertSign = 32, cRLSign = 64…: @peculiar/x509's KeyUsageFlags).
 */
export function readKeyUsage(der: Uint8Array): number {
  const t = whole(der, TAG.bitString, 'KeyUsage');
  const unused = der[t.valueStart];
  const bytes = t.end - t.valueStart - 1;
  if (unused === undefined || unused > 7 || (bytes === 0 && unused !== 0)) throw new DerError('KeyUsage: bad unused-bits octet');
  const bits = Math.min(bytes * 8 - unused, 53);
  let flags = 0;
  for (let i = 0; i < bits; i++) {
    if (der[t.valueStart + 1 + (i >> 3)]! & (0x80 >> (i & 7))) flags += 2 ** i;
  }
  return flags;
}
