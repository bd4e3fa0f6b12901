/**
 * Certification path validation for ackd/verify: RFC 5280 §6.1 basic path validation, profiled for
 * X509-SVIDs, with every rule written out here and proved by test vectors that are also run
 * through OpenSSL's X509_verify_cert (test/unit/verify-path-vectors.test.ts).
 *
 * Why not a library: no maintained JavaScript validator does all of it. pkijs 4's
 * CertificateChainValidationEngine does not enforce pathLenConstraint, refuses a critical extension
 * only when it cannot parse it (and never on the leaf), ignores a trust anchor's name constraints
 * and joins the permitted subtrees of successive CAs instead of intersecting them (a lower CA can
 * widen what a higher one allowed); @peculiar/x509's X509ChainBuilder only builds chains; Node's
 * crypto.X509Certificate only checks one signature, and reaching OpenSSL's path validation from
 * Node needs a TLS handshake with the leaf's private key, which a verifier does not have. So the
 * path rules are here, and the pieces OpenSSL does well are OpenSSL's: every certificate is parsed
 * by node:crypto X509Certificate and every signature checked by its verify() with the issuer's
 * key (read and checked once per trust anchor a verifier keeps); the fields it does not expose
 * are sliced from the DER (der.ts).
 *
 * What is enforced, for the path leaf → intermediates (as presented) → a certificate of the bundle:
 * - every signature, with an allowed algorithm (ECDSA or RSA PKCS#1 v1.5 with SHA-256/384/512,
 *   Ed25519; RSA keys of at least 2048 bits) that is the same in the certificate and its TBS part;
 * - validity at the given time of every certificate, trust anchor included;
 * - intermediates: basicConstraints cA=true, keyUsage present with keyCertSign (SPIFFE X509-SVID
 *   §4.3); the anchor: cA=true and, when it has keyUsage, keyCertSign;
 * - pathLenConstraint of the anchor and of every intermediate (self-issued ones not counted, §6.1.4(l));
 * - name constraints of the anchor and of every intermediate (§6.1.3(b)(c), §6.1.4(g)): permitted
 *   subtrees intersect from CA to CA, excluded subtrees add up; names checked are the subject DN,
 *   every subjectAltName and subject emailAddress attributes; forms dNSName, rfc822Name,
 *   uniformResourceIdentifier (its host: the SPIFFE trust domain), iPAddress, directoryName. A
 *   constraint this code cannot evaluate (another name form present in the certificate, a
 *   minimum/maximum, a URI without a host) refuses the path: fail closed;
 * - no critical extension other than those processed here (basicConstraints, keyUsage,
 *   extKeyUsage, subjectAltName, subjectKeyIdentifier, authorityKeyIdentifier, and on CAs
 *   nameConstraints), on any certificate of the path, anchor included (§6.1.4(o)); so certificate
 *   policies, policy mappings/constraints and inhibitAnyPolicy, which are not processed, refuse
 *   the path when critical;
 * - no extension twice in one certificate (§4.2);
 * - SPIFFE: a CA on the path whose URI SAN is a spiffe:// ID is of the SVID's trust domain.
 * Paths are searched depth-first over candidate issuers (name chaining, then signature), with a
 * bound on length and on signature checks; the first path that passes every check wins.
 */
import type { KeyObject, X509Certificate as NodeX509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import * as asn from '@peculiar/asn1-x509';
import * as x509 from '@peculiar/x509';
import { TAG, certFields, children, readBasicConstraints, readKeyUsage, readValidity, whole, type CertFields, type RawExtension, type Tlv } from './der.ts';
import { SvidVerifyError } from './errors.ts';

/** Certificates on a path, leaf and anchor included. */
export const MAX_PATH = 8;
/** Signature checks one verification may make while searching for a path. */
const MAX_SIGNATURE_CHECKS = 64;
/** Partial paths one verification may try. */
const MAX_STEPS = 256;
/** Certificates presented with the leaf. */
export const MAX_PRESENTED = 16;

const OID = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  nameConstraints: '2.5.29.30',
  emailAddress: '1.2.840.113549.1.9.1',
} as const;

const HANDLED_LEAF = new Set<string>([OID.basicConstraints, OID.keyUsage, OID.extKeyUsage, OID.subjectAltName, OID.subjectKeyIdentifier, OID.authorityKeyIdentifier]);
const HANDLED_CA = new Set<string>([...HANDLED_LEAF, OID.nameConstraints]);

const EXTENSION_NAMES: Record<string, string> = {
  '2.5.29.32': 'certificatePolicies',
  '2.5.29.33': 'policyMappings',
  '2.5.29.36': 'policyConstraints',
  '2.5.29.54': 'inhibitAnyPolicy',
  '2.5.29.30': 'nameConstraints',
  '2.5.29.31': 'cRLDistributionPoints',
  '1.3.6.1.5.5.7.1.1': 'authorityInfoAccess',
};

const SIGNATURE_ALGORITHMS: Record<string, string> = {
  '1.2.840.10045.4.3.2': 'ecdsa-with-SHA256',
  '1.2.840.10045.4.3.3': 'ecdsa-with-SHA384',
  '1.2.840.10045.4.3.4': 'ecdsa-with-SHA512',
  '1.2.840.113549.1.1.11': 'sha256WithRSAEncryption',
  '1.2.840.113549.1.1.12': 'sha384WithRSAEncryption',
  '1.2.840.113549.1.1.13': 'sha512WithRSAEncryption',
  '1.3.101.112': 'Ed25519',
};
const MIN_RSA_BITS = 2048;

function quoted(s: string): string {
  return JSON.stringify(s.length > 120 ? s.slice(0, 120) + '…' : s);
}

/** A certificate as given: its DER, OpenSSL's parse of it and, when the caller passed one, its @peculiar/x509 object. */
export interface ParsedCert {
  readonly der: Uint8Array;
  readonly node: NodeX509Certificate;
  readonly peculiar?: x509.X509Certificate;
}

const EC_CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1']);

/**
 * A certificate prepared once for path validation. Parsing and signatures are OpenSSL's
 * (node:crypto X509Certificate); the fields OpenSSL does not expose are read from the DER
 * (der.ts; distinguished names with @peculiar/asn1-schema). What only some paths or messages need
 * (names as structures, the label, the @peculiar/x509 object, the public key) is read on first use
 * and kept, so a trust anchor kept by a verifier is prepared only once.
 */
export class PathCert {
  readonly der: Uint8Array;
  readonly node: NodeX509Certificate;
  readonly fields: CertFields;
  readonly extensions: ReadonlyMap<string, RawExtension>;
  readonly ca: boolean;
  readonly pathLength: number | undefined;
  /** keyUsage bits as x509.KeyUsageFlags, or null when the extension is absent. */
  readonly keyUsage: number | null;
  /** The subjectAltName's uniformResourceIdentifier names, in order. */
  readonly uris: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  private readonly role: 'leaf' | 'intermediate' | 'anchor';
  #peculiar: x509.X509Certificate | undefined;
  #label: string | undefined;
  #subject: asn.Name | undefined;
  #issuer: asn.Name | undefined;
  #selfIssued: boolean | undefined;
  #key: { readonly key: KeyObject } | { readonly problem: string } | undefined;
  #hex: string | undefined;

  /** ERR_SVID_MALFORMED when the certificate breaks §4.2 or a field cannot be read. */
  constructor(parsed: ParsedCert, role: 'leaf' | 'intermediate' | 'anchor') {
    this.der = parsed.der;
    this.node = parsed.node;
    this.#peculiar = parsed.peculiar;
    this.role = role;
    let fields: CertFields;
    try {
      fields = certFields(parsed.der);
    } catch (e) {
      throw new SvidVerifyError('ERR_SVID_MALFORMED', `${this.labelOr(role)} could not be parsed`, { cause: e });
    }
    this.fields = fields;
    const extensions = new Map<string, RawExtension>();
    for (const e of fields.extensions) {
      if (extensions.has(e.extnID)) throw new SvidVerifyError('ERR_SVID_MALFORMED', `${this.label} has the extension ${e.extnID} twice`);
      extensions.set(e.extnID, e);
    }
    this.extensions = extensions;
    const read = <T>(what: string, f: () => T): T => {
      try {
        return f();
      } catch (e) {
        throw new SvidVerifyError('ERR_SVID_MALFORMED', `${this.label} has ${what} that could not be parsed`, { cause: e });
      }
    };
    const bcExt = extensions.get(OID.basicConstraints);
    const bc = bcExt ? read('a basicConstraints extension', () => readBasicConstraints(bcExt.value)) : undefined;
    this.ca = bc?.cA === true;
    this.pathLength = bc?.cA === true ? bc.pathLenConstraint : undefined;
    const kuExt = extensions.get(OID.keyUsage);
    this.keyUsage = kuExt ? read('a keyUsage extension', () => readKeyUsage(kuExt.value)) : null;
    const sanExt = extensions.get(OID.subjectAltName);
    this.uris = sanExt ? read('a subjectAltName', () => subjectAltNames(sanExt.value).flatMap((g) => (g.form === 'uniformResourceIdentifier' ? [g.text!] : []))) : [];
    const validity = read('a validity', () => readValidity(fields.validity));
    this.notBefore = validity.notBefore;
    this.notAfter = validity.notAfter;
  }

  /** Names the certificate in messages (safe to show: quoted and bounded). */
  get label(): string {
    return (this.#label ??= this.labelOr(this.role));
  }

  private labelOr(role: 'leaf' | 'intermediate' | 'anchor'): string {
    if (role === 'leaf') return 'the SVID';
    let name: string;
    try {
      name = this.#peculiar?.subject ?? new x509.Name(new Uint8Array(this.fields.subject)).toString();
    } catch {
      name = this.node.subject.replace(/\n/g, ', ');
    }
    return `${role === 'anchor' ? 'the trust bundle CA' : 'the intermediate CA'} ${quoted(name)}`;
  }

  get subject(): asn.Name {
    return (this.#subject ??= this.readName(this.fields.subject, 'subject'));
  }

  get issuer(): asn.Name {
    return (this.#issuer ??= this.readName(this.fields.issuer, 'issuer'));
  }

  private readName(der: Uint8Array, what: string): asn.Name {
    try {
      return AsnConvert.parse(der, asn.Name);
    } catch (e) {
      throw new SvidVerifyError('ERR_SVID_MALFORMED', `${this.label} has a ${what} name that could not be parsed`, { cause: e });
    }
  }

  /** subject and issuer are the same name (RFC 5280 §6.1: self-issued). */
  get selfIssued(): boolean {
    return (this.#selfIssued ??= bytesEqual(this.fields.subject, this.fields.issuer) || nameEquals(this.subject, this.issuer));
  }

  /** This certificate as a @peculiar/x509 object (parsed on first use; the one passed in when there was one). */
  get cert(): x509.X509Certificate {
    return (this.#peculiar ??= new x509.X509Certificate(Uint8Array.from(this.der).buffer));
  }

  /** Serial number INTEGER as @peculiar/x509 gives it: hex, the sign padding octet dropped. */
  get serialHex(): string {
    const s = this.fields.serial;
    return Buffer.from(s.length > 1 && s[0] === 0 && s[1]! > 0x7f ? s.subarray(1) : s).toString('hex');
  }

  /** The DER in hex, to recognise one certificate presented twice. */
  get hex(): string {
    return (this.#hex ??= hex(this.der));
  }

  /** The public key, when ackd/verify accepts it for checking signatures (RSA ≥ 2048 bits, ECDSA P-256/384/521, Ed25519). */
  verificationKey(): { readonly key: KeyObject } | { readonly problem: string } {
    return (this.#key ??= this.readKey());
  }

  private readKey(): { readonly key: KeyObject } | { readonly problem: string } {
    let key: KeyObject;
    try {
      key = this.node.publicKey;
    } catch {
      return { problem: `${this.label} has a public key that could not be read` };
    }
    const type = key.asymmetricKeyType;
    if (type === 'rsa') {
      const bits = key.asymmetricKeyDetails?.modulusLength;
      if (bits === undefined || bits < MIN_RSA_BITS) return { problem: `${this.label} has an RSA key shorter than ${MIN_RSA_BITS} bits` };
    } else if (type === 'ec') {
      // the curves Web Crypto (and so the verifier before it used OpenSSL directly) accepts
      if (!EC_CURVES.has(key.asymmetricKeyDetails?.namedCurve ?? '')) return { problem: `${this.label} has an EC key on a curve ackd/verify does not accept` };
    } else if (type !== 'ed25519') {
      return { problem: `${this.label} has a key type ackd/verify does not accept` };
    }
    return { key };
  }
}

/** `child` names `parent` as its issuer (RFC 5280 §7.1 comparison; identical DER is the common case). */
function issuedBy(child: PathCert, parent: PathCert): boolean {
  return bytesEqual(child.fields.issuer, parent.fields.subject) || nameEquals(child.issuer, parent.subject);
}

/** Refuses a critical extension this verifier does not process (RFC 5280 §4.2, §6.1.4(o)). */
export function checkCriticalExtensions(c: PathCert, role: 'leaf' | 'ca'): void {
  const handled = role === 'leaf' ? HANDLED_LEAF : HANDLED_CA;
  for (const e of c.extensions.values()) {
    if (e.critical && !handled.has(e.extnID)) {
      const known = EXTENSION_NAMES[e.extnID];
      throw new SvidVerifyError('ERR_SVID_CRITICAL_EXTENSION', `${c.label} has a critical extension ackd/verify does not process: ${e.extnID}${known ? ` (${known})` : ''}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Path search

/**
 * Finds and validates a path from `leaf` through `presented` certificates to one of `anchors`.
 * Returns it, leaf first, ending with the anchor. Throws SvidVerifyError.
 */
export function validatePath(leaf: PathCert, presented: readonly PathCert[], anchors: readonly PathCert[], at: Date, trustDomain: string): PathCert[] {
  // a presented certificate that is the leaf again, a repeat, or an anchor itself adds nothing
  let intermediates: PathCert[] = [];
  if (presented.length > 0) {
    const seen = new Set<string>([leaf.hex, ...anchors.map((a) => a.hex)]);
    intermediates = presented.filter((c) => {
      if (seen.has(c.hex)) return false;
      seen.add(c.hex);
      return true;
    });
  }
  if (intermediates.length > MAX_PRESENTED) throw new SvidVerifyError('ERR_SVID_UNTRUSTED', `the chain holds more than ${MAX_PRESENTED} certificates besides the SVID`);

  const links = new Map<PathCert, Map<PathCert, string | null>>();
  let checks = 0;
  const link = (child: PathCert, issuer: PathCert): string | null => {
    let m = links.get(child);
    if (!m) links.set(child, (m = new Map()));
    let p = m.get(issuer);
    if (p === undefined) {
      if (++checks > MAX_SIGNATURE_CHECKS) throw new SvidVerifyError('ERR_SVID_UNTRUSTED', 'the chain offers too many candidate issuers');
      p = linkProblem(child, issuer);
      m.set(issuer, p);
    }
    return p;
  };

  let pathError: SvidVerifyError | undefined;
  let linkError: SvidVerifyError | undefined;
  let orphan: PathCert | undefined;
  let steps = 0;

  const extend = (path: PathCert[]): PathCert[] | undefined => {
    if (++steps > MAX_STEPS) throw new SvidVerifyError('ERR_SVID_UNTRUSTED', 'the chain offers too many candidate paths');
    const current = path[path.length - 1]!;
    let candidates = 0;
    for (const a of anchors) {
      if (!issuedBy(current, a)) continue;
      candidates++;
      const problem = link(current, a);
      if (problem !== null) {
        linkError ??= new SvidVerifyError('ERR_SVID_UNTRUSTED', problem);
        continue;
      }
      const full = [...path, a];
      try {
        checkPath(full, at, trustDomain);
        return full;
      } catch (e) {
        if (!(e instanceof SvidVerifyError)) throw e;
        pathError ??= e;
      }
    }
    for (const c of intermediates) {
      if (path.includes(c) || !issuedBy(current, c)) continue;
      candidates++;
      if (path.length + 2 > MAX_PATH) {
        linkError ??= new SvidVerifyError('ERR_SVID_UNTRUSTED', `the chain is too long (at most ${MAX_PATH} certificates, trust anchor included)`);
        continue;
      }
      const problem = link(current, c);
      if (problem !== null) {
        linkError ??= new SvidVerifyError('ERR_SVID_UNTRUSTED', problem);
        continue;
      }
      const found = extend([...path, c]);
      if (found) return found;
    }
    if (candidates === 0) orphan ??= current;
    return undefined;
  };

  const found = extend([leaf]);
  if (found) return found;
  throw (
    pathError ??
    linkError ??
    new SvidVerifyError('ERR_SVID_UNTRUSTED', orphan === undefined || orphan === leaf ? 'no CA in the trust bundle issued the SVID' : `no CA in the trust bundle issued ${orphan.label}`)
  );
}

/** Why `issuer` cannot be the issuer of `child` (algorithm, key, signature), or null. Signatures are checked by OpenSSL. */
function linkProblem(child: PathCert, issuer: PathCert): string | null {
  const alg = child.fields.signatureAlgorithmOid;
  if (!(alg in SIGNATURE_ALGORITHMS)) return `${child.label} is signed with an algorithm ackd/verify does not accept (${alg})`;
  if (!bytesEqual(child.fields.signatureAlgorithm, child.fields.tbsSignatureAlgorithm)) {
    return `${child.label} names a different signature algorithm inside its signed part`;
  }
  const k = issuer.verificationKey();
  if ('problem' in k) return k.problem;
  let ok: boolean;
  try {
    ok = child.node.verify(k.key);
  } catch {
    ok = false;
  }
  return ok ? null : `the signature of ${child.label} does not verify with the key of ${issuer.label}`;
}

// ---------------------------------------------------------------------------------------------
// One candidate path: leaf, intermediates, anchor

function checkValidity(c: PathCert, at: Date): void {
  if (at.getTime() < c.notBefore.getTime()) throw new SvidVerifyError('ERR_SVID_NOT_YET_VALID', `${c.label} is not valid before ${c.notBefore.toISOString()}`);
  if (at.getTime() > c.notAfter.getTime()) throw new SvidVerifyError('ERR_SVID_EXPIRED', `${c.label} expired at ${c.notAfter.toISOString()}`);
}

/** Checks a path whose signatures already verify. The leaf's own rules are checked by the caller. */
function checkPath(path: readonly PathCert[], at: Date, trustDomain: string): void {
  const n = path.length;
  const anchor = path[n - 1]!;

  if (!anchor.ca) throw new SvidVerifyError('ERR_SVID_UNTRUSTED', `${anchor.label} that signed the chain is not a CA`);
  if (anchor.keyUsage !== null && (anchor.keyUsage & x509.KeyUsageFlags.keyCertSign) === 0) throw new SvidVerifyError('ERR_SVID_UNTRUSTED', `${anchor.label} lacks keyUsage keyCertSign`);
  checkCriticalExtensions(anchor, 'ca');
  checkValidity(anchor, at);

  for (let i = n - 2; i >= 1; i--) {
    const c = path[i]!;
    if (!c.ca) {
      const bc = c.extensions.has(OID.basicConstraints);
      throw new SvidVerifyError('ERR_SVID_UNTRUSTED', `${c.label} is not a CA (${bc ? 'basicConstraints cA is false' : 'no basicConstraints'})`);
    }
    if (c.keyUsage === null) throw new SvidVerifyError('ERR_SVID_UNTRUSTED', `${c.label} has no keyUsage; a CA on an X509-SVID path must assert keyCertSign`);
    if ((c.keyUsage & x509.KeyUsageFlags.keyCertSign) === 0) throw new SvidVerifyError('ERR_SVID_UNTRUSTED', `${c.label} lacks keyUsage keyCertSign`);
    checkCriticalExtensions(c, 'ca');
    checkValidity(c, at);
  }

  // pathLenConstraint (§6.1.4(l)(m)): how many non-self-issued intermediates may still follow
  let max = anchor.pathLength ?? Number.POSITIVE_INFINITY;
  let maxFrom = anchor;
  for (let i = n - 2; i >= 1; i--) {
    const c = path[i]!;
    if (!c.selfIssued) {
      if (max <= 0) throw new SvidVerifyError('ERR_SVID_UNTRUSTED', `the chain violates the pathLenConstraint of ${maxFrom.label}`);
      max--;
    }
    if (c.pathLength !== undefined && c.pathLength < max) {
      max = c.pathLength;
      maxFrom = c;
    }
  }

  // name constraints (§6.1.3(b)(c), §6.1.4(g)), the anchor's included
  const state: ConstraintState = { permitted: [], excluded: [] };
  addConstraints(state, anchor);
  for (let i = n - 2; i >= 0; i--) {
    const c = path[i]!;
    if (i === 0 || !c.selfIssued) checkNames(c, state);
    if (i > 0) addConstraints(state, c);
  }

  // a CA that names a SPIFFE trust domain must name the SVID's (one bundle may hold several
  // trust domains' CAs; one trust domain's CA must not vouch for another's IDs)
  for (let i = 1; i < n; i++) {
    const c = path[i]!;
    for (const uri of c.uris) {
      if (!uri.toLowerCase().startsWith('spiffe://')) continue;
      const td = uri.slice('spiffe://'.length).split('/')[0]!.toLowerCase();
      if (td !== trustDomain) throw new SvidVerifyError('ERR_SVID_TRUST_DOMAIN', `${c.label} belongs to trust domain ${quoted(td)}, the SVID to ${trustDomain}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Names and name constraints

type Form = 'otherName' | 'rfc822Name' | 'dNSName' | 'x400Address' | 'directoryName' | 'ediPartyName' | 'uniformResourceIdentifier' | 'iPAddress' | 'registeredID';
const FORMS: readonly Form[] = ['otherName', 'rfc822Name', 'dNSName', 'x400Address', 'directoryName', 'ediPartyName', 'uniformResourceIdentifier', 'iPAddress', 'registeredID'];

interface GName {
  readonly form: Form;
  /** rfc822Name, dNSName, uniformResourceIdentifier */
  readonly text?: string;
  /** iPAddress: 4/16 octets for a name, 8/32 (address, mask) for a constraint */
  readonly octets?: Uint8Array;
  readonly dn?: asn.Name;
}

interface Subtrees {
  readonly from: PathCert;
  readonly names: readonly GName[];
}

interface ConstraintState {
  /** One entry per CA with permitted subtrees: a name of a form an entry constrains must match that entry. */
  readonly permitted: Subtrees[];
  readonly excluded: Subtrees[];
}

function ncError(message: string): SvidVerifyError {
  return new SvidVerifyError('ERR_SVID_NAME_CONSTRAINTS', message);
}

function addConstraints(state: ConstraintState, ca: PathCert): void {
  const ext = ca.extensions.get(OID.nameConstraints);
  if (!ext) return;
  let permitted: GName[] | undefined;
  let excluded: GName[] | undefined;
  try {
    const der = ext.value;
    for (const part of children(der, whole(der, TAG.sequence, 'NameConstraints'))) {
      // permittedSubtrees [0], excludedSubtrees [1], both constructed context-specific
      if (part.tag !== 0xa0 && part.tag !== 0xa1) throw new Error('unexpected field in NameConstraints');
      const list: GName[] = [];
      for (const subtree of children(der, part)) {
        if (subtree.tag !== TAG.sequence) throw new Error('GeneralSubtree is not a SEQUENCE');
        const [base, ...rest] = children(der, subtree);
        if (!base) throw new Error('GeneralSubtree without a base');
        for (const r of rest) {
          // minimum [0] (DEFAULT 0) and maximum [1]: RFC 5280 says they MUST be absent; evaluating them is not supported
          const isZeroMinimum = r.tag === 0x80 && der.subarray(r.valueStart, r.end).every((b) => b === 0);
          if (!isZeroMinimum) throw ncError(`${ca.label} has a name constraint with a minimum or maximum, which ackd/verify does not evaluate`);
        }
        list.push(generalName(der, base, true));
      }
      if (part.tag === 0xa0) permitted = list;
      else excluded = list;
    }
  } catch (e) {
    if (e instanceof SvidVerifyError) throw e;
    throw new SvidVerifyError('ERR_SVID_MALFORMED', `${ca.label} has a nameConstraints extension that could not be parsed`, { cause: e });
  }
  if (permitted) state.permitted.push({ from: ca, names: permitted });
  if (excluded) state.excluded.push({ from: ca, names: excluded });
}

/** The names a certificate is checked by: subject DN (when not empty), every subjectAltName, subject emailAddress attributes. */
function namesOf(c: PathCert): GName[] {
  const out: GName[] = [];
  if (c.subject.length > 0) out.push({ form: 'directoryName', dn: c.subject });
  for (const rdn of c.subject) {
    for (const atv of rdn) {
      if (atv.type !== OID.emailAddress) continue;
      const v = atv.value.ia5String ?? atv.value.utf8String ?? atv.value.printableString;
      if (v === undefined) throw new SvidVerifyError('ERR_SVID_MALFORMED', `${c.label} has an emailAddress attribute that is not a string`);
      out.push({ form: 'rfc822Name', text: v });
    }
  }
  const san = c.extensions.get(OID.subjectAltName);
  if (san) {
    try {
      out.push(...subjectAltNames(san.value));
    } catch (e) {
      throw new SvidVerifyError('ERR_SVID_MALFORMED', `${c.label} has a subjectAltName that could not be parsed`, { cause: e });
    }
  }
  return out;
}

/** The GeneralNames of a subjectAltName extension value. Throws when it cannot be read. */
function subjectAltNames(value: Uint8Array): GName[] {
  return children(value, whole(value, TAG.sequence, 'subjectAltName')).map((g) => generalName(value, g, false));
}

function checkNames(c: PathCert, state: ConstraintState): void {
  if (state.permitted.length === 0 && state.excluded.length === 0) return;
  for (const name of namesOf(c)) {
    for (const p of state.permitted) {
      const sameForm = p.names.filter((b) => b.form === name.form);
      if (sameForm.length > 0 && !sameForm.some((b) => matches(c, name, b))) {
        throw ncError(`${c.label}: ${describe(name)} is outside the permitted subtrees of ${p.from.label}`);
      }
    }
    for (const x of state.excluded) {
      if (x.names.some((b) => b.form === name.form && matches(c, name, b))) {
        throw ncError(`${c.label}: ${describe(name)} is in an excluded subtree of ${x.from.label}`);
      }
    }
  }
}

function describe(n: GName): string {
  if (n.text !== undefined) return `the ${n.form} ${quoted(n.text)}`;
  if (n.form === 'directoryName' && n.dn) return `the subject or directoryName ${quoted(new x509.Name(AsnConvert.serialize(n.dn)).toString())}`;
  return `a name of form ${n.form}`;
}

function matches(c: PathCert, name: GName, base: GName): boolean {
  switch (name.form) {
    case 'dNSName':
      return dnsMatch(name.text!, base.text!);
    case 'rfc822Name':
      return emailMatch(c, name.text!, base.text!);
    case 'uniformResourceIdentifier': {
      const host = uriHost(name.text!);
      if (host === null) throw ncError(`${c.label}: the URI ${quoted(name.text!)} has no host to check against name constraints`);
      return hostMatch(host, base.text!.toLowerCase());
    }
    case 'iPAddress':
      return ipMatch(name.octets!, base.octets!);
    case 'directoryName':
      return dnWithin(name.dn!, base.dn!);
    default:
      throw ncError(`${c.label} has a name of form ${name.form}, which a CA above it constrains and ackd/verify cannot evaluate`);
  }
}

/** dNSName: the constraint plus zero or more labels on the left (§4.2.1.10); a leading '.' requires at least one. */
function dnsMatch(name: string, constraint: string): boolean {
  const n = name.toLowerCase();
  const c = constraint.toLowerCase();
  if (c === '') return true;
  if (c.startsWith('.')) return n.endsWith(c);
  return n === c || n.endsWith('.' + c);
}

/** URI constraints apply to the host: 'host.example' is that host only, '.example' any host below it (§4.2.1.10). */
function hostMatch(host: string, constraint: string): boolean {
  if (constraint.startsWith('.')) return host.endsWith(constraint);
  return host === constraint;
}

/** The host of scheme://[userinfo@]host[:port]/…, lowercased; null when there is none. */
function uriHost(uri: string): string | null {
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(uri);
  if (!m) return null;
  let authority = m[1]!;
  const at = authority.lastIndexOf('@');
  if (at >= 0) authority = authority.slice(at + 1);
  let host: string;
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    if (end < 0) return null;
    host = authority.slice(0, end + 1);
  } else {
    const colon = authority.indexOf(':');
    host = colon >= 0 ? authority.slice(0, colon) : authority;
  }
  return host === '' ? null : host.toLowerCase();
}

/** rfc822Name: a full mailbox, a host ('example.com'), or any host below a domain ('.example.com'). */
function emailMatch(c: PathCert, name: string, constraint: string): boolean {
  const at = name.lastIndexOf('@');
  if (at <= 0) throw ncError(`${c.label}: the rfc822Name ${quoted(name)} is not a mailbox`);
  const host = name.slice(at + 1).toLowerCase();
  const cat = constraint.lastIndexOf('@');
  if (cat >= 0) return name.slice(0, at) === constraint.slice(0, cat) && host === constraint.slice(cat + 1).toLowerCase();
  const ch = constraint.toLowerCase();
  return ch.startsWith('.') ? host.endsWith(ch) : host === ch;
}

function ipMatch(addr: Uint8Array, constraint: Uint8Array): boolean {
  if (constraint.length !== addr.length * 2) return false;
  for (let i = 0; i < addr.length; i++) {
    const mask = constraint[addr.length + i]!;
    if ((addr[i]! & mask) !== (constraint[i]! & mask)) return false;
  }
  return true;
}

/** A DN is within a directoryName subtree when the subtree's RDNs are its first RDNs (§7.1 comparison). */
function dnWithin(name: asn.Name, base: asn.Name): boolean {
  if (base.length > name.length) return false;
  for (let i = 0; i < base.length; i++) if (!rdnEquals(name[i]!, base[i]!)) return false;
  return true;
}

/** Reads one GeneralName (an element of `der`); `constraint` selects 8/32-octet iPAddress (address and mask). */
function generalName(der: Uint8Array, t: Tlv, constraint: boolean): GName {
  // context-specific [0]..[8]; bit 0x20 is "constructed"
  const tagNumber = t.tag & 0x1f;
  if ((t.tag & 0xc0) !== 0x80 || tagNumber > 8) throw new Error('not a GeneralName');
  const form = FORMS[tagNumber]!;
  const constructed = (t.tag & 0x20) !== 0;
  const prim = () => {
    if (constructed) throw new Error(`${form} must be primitive`);
    return der.subarray(t.valueStart, t.end);
  };
  switch (form) {
    case 'rfc822Name':
    case 'dNSName':
    case 'uniformResourceIdentifier': {
      const bytes = prim();
      if (bytes.some((b) => b > 0x7e || b < 0x20)) throw new Error(`${form} is not printable IA5`);
      return { form, text: Buffer.from(bytes).toString('latin1') };
    }
    case 'iPAddress': {
      const octets = Uint8Array.from(prim());
      const ok = constraint ? octets.length === 8 || octets.length === 32 : octets.length === 4 || octets.length === 16;
      if (!ok) throw new Error('iPAddress has a wrong length');
      return { form, octets };
    }
    case 'directoryName': {
      if (!constructed) throw new Error('directoryName must be constructed');
      const inner = children(der, t);
      if (inner.length !== 1) throw new Error('directoryName holds one Name');
      return { form, dn: AsnConvert.parse(der.subarray(inner[0]!.start, inner[0]!.end), asn.Name) };
    }
    default:
      return { form };
  }
}

// ---------------------------------------------------------------------------------------------
// Distinguished names (RFC 5280 §7.1: compare attribute types exactly, string values caseless and
// with insignificant whitespace removed; an RDN is a set)

function atvKey(atv: asn.AttributeTypeAndValue): string {
  const v = atv.value;
  const s = v.utf8String ?? v.printableString ?? v.ia5String ?? v.bmpString ?? v.universalString ?? v.teletexString;
  if (s !== undefined) return `${atv.type}=s:${s.normalize('NFKC').trim().replace(/\s+/g, ' ').toLowerCase()}`;
  return `${atv.type}=x:${hex(new Uint8Array(AsnConvert.serialize(atv)))}`;
}

function rdnEquals(a: asn.RelativeDistinguishedName, b: asn.RelativeDistinguishedName): boolean {
  if (a.length !== b.length) return false;
  const ka = Array.from(a, atvKey).sort();
  const kb = Array.from(b, atvKey).sort();
  return ka.every((k, i) => k === kb[i]);
}

export function nameEquals(a: asn.Name, b: asn.Name): boolean {
  return a.length === b.length && a.every((rdn, i) => rdnEquals(rdn, b[i]!));
}

// ---------------------------------------------------------------------------------------------

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}
