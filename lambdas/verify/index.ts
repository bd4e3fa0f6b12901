/**
 * ackd/verify — checks an ackd X.509-SVID before acting on it.
 *
 *   import { verifySvid, checkSvidStatus, verifyAckdSvid, createSvidVerifier } from 'ackd/verify';
 *
 * Offline (`verifySvid`): the chain against a trust bundle (RFC 5280 path validation in path.ts:
 * signatures, validity of every certificate at a given time, CA flags and keyCertSign,
 * pathLenConstraint, name constraints, no unprocessed critical extension) and the SPIFFE X509-SVID
 * rules (exactly one URI SAN, a spiffe:// ID, leaf not a CA, digitalSignature present, no
 * keyCertSign / cRLSign); the SPIFFE ID parsed into trust domain,
 * agent_id and request_id. Online (`checkSvidStatus`): asks ackd's status endpoint whether the SVID
 * is revoked and what it was approved for. `verifyAckdSvid` does both and checks expectations
 * (request, agent, action, permissions). Every refusal is an SvidVerifyError with a reason code.
 * `createSvidVerifier(bundle)` keeps a prepared trust bundle for many verifications (the one-shot
 * functions keep the last few bundles they saw, by content).
 *
 * Receipts (receipt.ts): `verifyReceipt` checks ackd's signed receipt of an approval (ES256 JWS
 * against ackd's published JWKS) and, given the operation's parameters, that they are exactly the
 * approved payload (SHA-256 of RFC 8785 canonical JSON). `verifyAckdSvid` / a kept verifier do it in
 * the same call when given `receipt` (+ `receiptKeys`, `payload`): SVID, then receipt bound to that
 * SVID, then payload, then (with statusUrl) revocation.
 *
 * Parsing and signature checks are OpenSSL's (node:crypto X509Certificate, cert.verify with the
 * issuer's key); the fields OpenSSL does not expose (extensions with their critical flags,
 * keyUsage bits, basicConstraints, subjectAltName, validity) are read from the DER by der.ts, and
 * distinguished names by @peculiar/asn1-schema.
 */
import { X509Certificate as NodeX509Certificate, webcrypto } from 'node:crypto';
import 'reflect-metadata'; // @peculiar/x509's CommonJS build needs the Reflect polyfill under Node
import * as x509 from '@peculiar/x509';
import { AckdError } from '../core/errors.ts';
import { SVID_VERIFY_CODES, SvidVerifyError } from './errors.ts';
import { PathCert, checkCriticalExtensions, validatePath, type ParsedCert } from './path.ts';
import { SpiffeId, svidIdFromSerial, type AgentId, type RequestId, type SvidId, type TrustDomain } from '../core/ids.ts';

import { verifyReceipt, type ReceiptClaims, type ReceiptKeys } from './receipt.ts';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { SVID_VERIFY_CODES, SvidVerifyError, ReceiptVerifyError, RECEIPT_VERIFY_CODES, type SvidVerifyCode, type ReceiptVerifyCode } from './errors.ts';
export { verifyReceipt, canonicalSha256, receiptKeysUrl, RECEIPT_KEYS_PATH, RECEIPT_TYP, type ReceiptClaims, type ReceiptKeys, type ReceiptVerifyOptions } from './receipt.ts';

/** A chain as PEM text (private keys in it are ignored), DER buffers, or parsed certificates. Leaf first. */
export type CertificatesInput = string | readonly (Uint8Array | ArrayBuffer | x509.X509Certificate)[];

export interface VerifyOptions {
  /** The trust bundle: PEM CA certificates (or DER / parsed). */
  readonly bundle: CertificatesInput;
  /**
   * The trust domain the SVID must belong to. Default: the trust domain(s) named by the bundle's
   * CA certificates (their spiffe://<td> URI SAN); required when the bundle names none.
   */
  readonly trustDomain?: string;
  /** When to judge validity (default: now). */
  readonly at?: Date;
}

export interface VerifiedSvid {
  readonly spiffeId: SpiffeId;
  readonly spiffe_id: string;
  readonly trust_domain: TrustDomain;
  readonly agent_id: AgentId;
  readonly request_id: RequestId;
  /** Leaf serial number, lowercase hex (ackd's svid_id). */
  readonly svid_id: SvidId;
  readonly not_before: Date;
  readonly not_after: Date;
  /** The validated path, leaf first, ending with the trust anchor (@peculiar/x509 objects, made on first access). */
  readonly path: readonly x509.X509Certificate[];
}

const KU = x509.KeyUsageFlags;

/** The chain or bundle as given, each certificate parsed by OpenSSL; ERR_SVID_MALFORMED when one cannot be. */
function parseCertificates(input: CertificatesInput, what: string): ParsedCert[] {
  try {
    if (typeof input === 'string') {
      // OpenSSL reads each CERTIFICATE block (base64 included); its DER is what it parsed
      return (input.match(PEM_CERTIFICATE) ?? []).map((pem) => {
        const node = new NodeX509Certificate(pem);
        return { der: new Uint8Array(node.raw), node };
      });
    }
    return input.map((c) => {
      if (c instanceof x509.X509Certificate) {
        const der = new Uint8Array(c.rawData.slice(0));
        return { der, node: new NodeX509Certificate(der), peculiar: c };
      }
      // a copy: a verifier may keep it, and the caller may reuse its buffer
      const der = c instanceof Uint8Array ? Uint8Array.from(c) : new Uint8Array(c.slice(0));
      return { der, node: new NodeX509Certificate(der) };
    });
  } catch (e) {
    throw new SvidVerifyError('ERR_SVID_MALFORMED', `${what}: ${SVID_VERIFY_CODES.ERR_SVID_MALFORMED}`, { cause: e });
  }
}

/** A CERTIFICATE block of PEM text (RFC 7468); other blocks, e.g. a private key, are skipped. */
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]*-----END CERTIFICATE-----/g;

/** A trust bundle prepared once: its CAs parsed, their keys read on first use and kept. */
interface PreparedBundle {
  /** The CAs that could be prepared. */
  readonly anchors: readonly PathCert[];
  /** Why a CA of the bundle could not be prepared (reported where the verifier used to report it). */
  readonly problem: SvidVerifyError | undefined;
  /** The trust domains the CAs name (their spiffe://<td> URI SAN). */
  readonly trustDomains: readonly string[];
}

function prepareBundle(input: CertificatesInput): PreparedBundle {
  const parsed = parseCertificates(input, 'bundle');
  if (parsed.length === 0) throw new TypeError('verifySvid: the trust bundle holds no certificate');
  const anchors: PathCert[] = [];
  let problem: SvidVerifyError | undefined;
  for (const p of parsed) {
    try {
      anchors.push(new PathCert(p, 'anchor'));
    } catch (e) {
      if (!(e instanceof SvidVerifyError)) throw e;
      problem ??= e;
    }
  }
  const domains = new Set<string>();
  for (const a of anchors) {
    for (const u of a.uris) {
      const m = /^spiffe:\/\/([^/]+)\/?$/.exec(u);
      if (m) domains.add(m[1]!);
    }
  }
  return { anchors, problem, trustDomains: [...domains] };
}

/**
 * Bundles prepared by the one-shot functions (verifySvid, verifyAckdSvid), by content (PEM text or
 * DER bytes): a resource server that passes the same bundle on every call has it parsed once.
 * Preparing depends on the bundle's bytes only (time is judged on every call), so a kept bundle
 * gives the same verdicts. Bounded: the least recently used goes first.
 */
const BUNDLE_CACHE_SIZE = 16;
/** By PEM text, and by the base64 of DER certificates joined with ',' (two maps: a text never stands for DER). */
const pemBundles = new Map<string, PreparedBundle>();
const derBundles = new Map<string, PreparedBundle>();

function cachedBundle(input: CertificatesInput): PreparedBundle {
  let cache: Map<string, PreparedBundle>;
  let key: string;
  if (typeof input === 'string') {
    cache = pemBundles;
    key = input;
  } else {
    // @peculiar/x509 objects are prepared each time, so the path returned holds the very objects given
    if (input.some((c) => c instanceof x509.X509Certificate)) return prepareBundle(input);
    cache = derBundles;
    key = input.map((c) => (c instanceof Uint8Array ? Buffer.from(c.buffer, c.byteOffset, c.byteLength) : Buffer.from(c as ArrayBuffer)).toString('base64')).join(',');
  }
  const hit = cache.get(key);
  if (hit) {
    if (cache.size > 1) {
      cache.delete(key); // least recently used goes first
      cache.set(key, hit);
    }
    return hit;
  }
  const prepared = prepareBundle(input);
  cache.set(key, prepared);
  if (cache.size > BUNDLE_CACHE_SIZE) cache.delete(cache.keys().next().value!);
  return prepared;
}

/** Verifies an X.509-SVID offline. Throws SvidVerifyError. */
export async function verifySvid(chainInput: CertificatesInput, opts: VerifyOptions): Promise<VerifiedSvid> {
  const chain = parseCertificates(chainInput, 'svid');
  return verifyPrepared(chain, cachedBundle(opts.bundle), opts.trustDomain, opts.at);
}

function verifyPrepared(chain: readonly ParsedCert[], bundle: PreparedBundle, trustDomain: string | undefined, atOpt: Date | undefined): VerifiedSvid {
  const first = chain[0];
  if (!first) throw new SvidVerifyError('ERR_SVID_NO_CERTIFICATE');
  const leaf = new PathCert(first, 'leaf'); // ERR_SVID_MALFORMED when an extension appears twice
  const at = atOpt ?? new Date();

  // --- X509-SVID rules on the leaf (SPIFFE X509-SVID §4, §5) ---
  const uris = leaf.uris;
  if (uris.length !== 1) throw new SvidVerifyError('ERR_SVID_URI_SAN', `the leaf has ${uris.length} URI SANs; an X509-SVID has exactly one`);
  const uri = uris[0]!;
  if (!uri.toLowerCase().startsWith('spiffe://')) throw new SvidVerifyError('ERR_SVID_NOT_SPIFFE', `the URI SAN ${JSON.stringify(uri.slice(0, 200))} is not a spiffe:// ID`);
  if (leaf.ca) throw new SvidVerifyError('ERR_SVID_LEAF_IS_CA', 'the leaf has basicConstraints CA=true');
  const ku = leaf.keyUsage;
  if (ku === null || (ku & KU.digitalSignature) === 0) throw new SvidVerifyError('ERR_SVID_KEY_USAGE', 'the leaf lacks keyUsage digitalSignature');
  if ((ku & (KU.keyCertSign | KU.cRLSign)) !== 0) throw new SvidVerifyError('ERR_SVID_KEY_USAGE', 'the leaf has keyUsage keyCertSign or cRLSign');
  checkCriticalExtensions(leaf, 'leaf');

  let spiffeId: SpiffeId;
  try {
    spiffeId = SpiffeId.parse(uri);
  } catch (e) {
    if (e instanceof AckdError) throw new SvidVerifyError('ERR_SVID_NOT_ACKD_ID', `${SVID_VERIFY_CODES.ERR_SVID_NOT_ACKD_ID}: ${uri.slice(0, 200)}`, { cause: e });
    throw e;
  }

  if (trustDomain === undefined && bundle.problem) throw bundle.problem;
  const expectedDomains = trustDomain !== undefined ? [trustDomain] : bundle.trustDomains;
  if (expectedDomains.length === 0) throw new TypeError('verifySvid: pass trustDomain (the bundle names no trust domain)');
  if (!expectedDomains.includes(spiffeId.trustDomain)) {
    throw new SvidVerifyError('ERR_SVID_TRUST_DOMAIN', `the SVID is for trust domain ${spiffeId.trustDomain}, expected ${expectedDomains.join(' or ')}`);
  }

  // --- path validation (RFC 5280 §6.1, see path.ts): leaf → intermediates presented with it → an anchor of the bundle ---
  checkValidity(leaf, at);
  const intermediates = chain.slice(1).map((c) => new PathCert(c, 'intermediate'));
  if (bundle.problem) throw bundle.problem;
  const path = validatePath(leaf, intermediates, bundle.anchors, at, spiffeId.trustDomain);

  const svid = {
    spiffeId,
    spiffe_id: spiffeId.toString(),
    trust_domain: spiffeId.trustDomain,
    agent_id: spiffeId.agentId,
    request_id: spiffeId.requestId,
    svid_id: svidIdFromSerial(leaf.serialHex),
    not_before: leaf.notBefore,
    not_after: leaf.notAfter,
  };
  // the @peculiar/x509 objects of the path are made when first asked for (most callers never do)
  let certs: readonly x509.X509Certificate[] | undefined;
  return Object.defineProperty(svid, 'path', { enumerable: true, get: () => (certs ??= path.map((p) => p.cert)) }) as VerifiedSvid;
}

function checkValidity(leaf: PathCert, at: Date): void {
  if (at.getTime() < leaf.notBefore.getTime()) throw new SvidVerifyError('ERR_SVID_NOT_YET_VALID', `the SVID is not valid before ${leaf.notBefore.toISOString()}`);
  if (at.getTime() > leaf.notAfter.getTime()) throw new SvidVerifyError('ERR_SVID_EXPIRED', `the SVID expired at ${leaf.notAfter.toISOString()}`);
}

// ---------------------------------------------------------------------------------------------
// Online status

/** What ackd's status endpoint says about one SVID. */
export interface SvidStatus {
  readonly request_id: string;
  readonly agent_id: string;
  readonly spiffe_id: string;
  readonly svid_id: string;
  /** approved | revoked | expired | denied | pending */
  readonly status: string;
  readonly revoked: boolean;
  readonly revoked_at: string | null;
  readonly svid_expires_at: string | null;
  readonly action: string;
  readonly permissions: readonly string[];
}

export interface StatusOptions {
  /** ackd's base URL, e.g. http://127.0.0.1:8787 (the status path is appended). */
  readonly statusUrl: string;
  readonly fetch?: typeof fetch;
  /** Default 5 s. */
  readonly timeoutMs?: number;
}

export function svidStatusUrl(base: string, requestId: string, svidId: string): string {
  return `${base.replace(/\/+$/, '')}/v1/svid-status/${encodeURIComponent(requestId)}?svid_id=${encodeURIComponent(svidId)}`;
}

/**
 * Asks ackd about a verified SVID and refuses unless it is current: ERR_SVID_REVOKED,
 * ERR_SVID_NOT_APPROVED, ERR_SVID_UNKNOWN, or ERR_SVID_STATUS_UNAVAILABLE (fail closed).
 */
export async function checkSvidStatus(svid: { readonly request_id: string; readonly svid_id: string; readonly spiffe_id: string }, opts: StatusOptions): Promise<SvidStatus> {
  const f = opts.fetch ?? fetch;
  let res: Response;
  try {
    res = await f(svidStatusUrl(opts.statusUrl, svid.request_id, svid.svid_id), {
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(opts.timeoutMs ?? 5000),
    });
  } catch (e) {
    throw new SvidVerifyError('ERR_SVID_STATUS_UNAVAILABLE', `${SVID_VERIFY_CODES.ERR_SVID_STATUS_UNAVAILABLE}: ${(e as Error).message}`, { cause: e });
  }
  if (res.status === 404) throw new SvidVerifyError('ERR_SVID_UNKNOWN');
  if (!res.ok) throw new SvidVerifyError('ERR_SVID_STATUS_UNAVAILABLE', `${SVID_VERIFY_CODES.ERR_SVID_STATUS_UNAVAILABLE}: HTTP ${res.status}`);
  let body: unknown;
  try {
    body = await res.json();
  } catch (e) {
    throw new SvidVerifyError('ERR_SVID_STATUS_UNAVAILABLE', `${SVID_VERIFY_CODES.ERR_SVID_STATUS_UNAVAILABLE}: not JSON`, { cause: e });
  }
  const s = parseStatus(body);
  if (s.spiffe_id !== svid.spiffe_id || s.svid_id !== svid.svid_id) {
    throw new SvidVerifyError('ERR_SVID_UNKNOWN', 'the status endpoint answered for a different SVID');
  }
  if (s.revoked || s.status === 'revoked') throw new SvidVerifyError('ERR_SVID_REVOKED', `the SVID was revoked at ${s.revoked_at ?? 'an unknown time'}`);
  if (s.status !== 'approved') throw new SvidVerifyError('ERR_SVID_NOT_APPROVED', `the request is ${s.status}`);
  return s;
}

function parseStatus(b: unknown): SvidStatus {
  const o = (typeof b === 'object' && b !== null ? b : {}) as Record<string, unknown>;
  const str = (k: string) => (typeof o[k] === 'string' ? (o[k] as string) : null);
  const permissions = Array.isArray(o['permissions']) && o['permissions'].every((p) => typeof p === 'string') ? (o['permissions'] as string[]) : null;
  const s = {
    request_id: str('request_id'),
    agent_id: str('agent_id'),
    spiffe_id: str('spiffe_id'),
    svid_id: str('svid_id'),
    status: str('status'),
    revoked: o['revoked'],
    revoked_at: str('revoked_at'),
    svid_expires_at: str('svid_expires_at'),
    action: str('action'),
    permissions,
  };
  if (s.request_id === null || s.agent_id === null || s.spiffe_id === null || s.svid_id === null || s.status === null || typeof s.revoked !== 'boolean' || s.action === null || s.permissions === null) {
    throw new SvidVerifyError('ERR_SVID_STATUS_UNAVAILABLE', `${SVID_VERIFY_CODES.ERR_SVID_STATUS_UNAVAILABLE}: unexpected response shape`);
  }
  return s as SvidStatus;
}

// ---------------------------------------------------------------------------------------------
// All in one

export interface Expectations {
  /** The request the resource demands (e.g. from its own job record). */
  readonly requestId?: string;
  readonly agentId?: string;
  /** Needs the status endpoint: the action must equal this. */
  readonly action?: string;
  /** Needs the status endpoint or a receipt: every one of these must have been approved. */
  readonly permissions?: readonly string[];
}

export interface AckdVerifyOptions extends VerifyOptions {
  /** ackd base URL; when given, the SVID's status is checked online (recommended). */
  readonly statusUrl?: string;
  readonly fetch?: typeof fetch;
  readonly timeoutMs?: number;
  readonly expect?: Expectations;
  /**
   * ackd's receipt of the approval (compact JWS), e.g. from a request header. When given — or when
   * `payload` is — it must verify against `receiptKeys` and be for the SVID presented
   * (ERR_RECEIPT_MISSING when `payload` is given without it).
   */
  readonly receipt?: string | undefined;
  /** ackd's receipt keys: a JWKS or its URL (receiptKeysUrl(ackdUrl)). Required with `receipt`. */
  readonly receiptKeys?: ReceiptKeys;
  /** The operation's parameters as received: must be the payload the receipt approves (ERR_PAYLOAD_MISMATCH). */
  readonly payload?: unknown;
}

export interface AckdVerifyResult {
  readonly svid: VerifiedSvid;
  /** Present when the status was checked online. */
  readonly status?: SvidStatus;
  /** Present when a receipt was verified. */
  readonly receipt?: ReceiptClaims;
}

/** verifySvid + expectations + (optionally) checkSvidStatus. Throws SvidVerifyError. */
export async function verifyAckdSvid(chain: CertificatesInput, opts: AckdVerifyOptions): Promise<AckdVerifyResult> {
  return withExpectations(opts, () => verifySvid(chain, opts));
}

async function withExpectations(opts: Omit<AckdVerifyOptions, 'bundle' | 'trustDomain'>, offline: () => Promise<VerifiedSvid>): Promise<AckdVerifyResult> {
  const e = opts.expect ?? {};
  const withReceipt = opts.receipt !== undefined || opts.payload !== undefined;
  if (e.action !== undefined && opts.statusUrl === undefined) throw new TypeError('verifyAckdSvid: checking the action needs statusUrl');
  if (e.permissions !== undefined && opts.statusUrl === undefined && !withReceipt) throw new TypeError('verifyAckdSvid: checking permissions needs statusUrl or a receipt');
  if (withReceipt && opts.receiptKeys === undefined) throw new TypeError('verifyAckdSvid: checking a receipt needs receiptKeys (a JWKS or its URL)');
  const svid = await offline();
  if (e.requestId !== undefined && e.requestId !== svid.request_id) {
    throw new SvidVerifyError('ERR_SVID_WRONG_REQUEST', `the SVID is for request ${svid.request_id}, this resource demands ${e.requestId}`);
  }
  if (e.agentId !== undefined && e.agentId !== svid.agent_id) {
    throw new SvidVerifyError('ERR_SVID_WRONG_AGENT', `the SVID is for agent ${svid.agent_id}, expected ${e.agentId}`);
  }
  let receipt: ReceiptClaims | undefined;
  if (withReceipt) {
    receipt = await verifyReceipt(opts.receipt ?? '', {
      keys: opts.receiptKeys!,
      svid,
      ...(opts.payload !== undefined ? { payload: opts.payload } : {}),
      ...(opts.at ? { now: opts.at } : {}),
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    });
    const missing = (e.permissions ?? []).filter((p) => !receipt!.permissions.includes(p));
    if (missing.length > 0) throw new SvidVerifyError('ERR_SVID_PERMISSION_MISSING', `the receipt does not approve: ${missing.join(', ')}`);
  }
  if (opts.statusUrl === undefined) return { svid, ...(receipt ? { receipt } : {}) };
  const status = await checkSvidStatus(svid, {
    statusUrl: opts.statusUrl,
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
  });
  if (e.action !== undefined && status.action !== e.action) {
    throw new SvidVerifyError('ERR_SVID_ACTION_MISMATCH', `the SVID was approved for a different action than ${JSON.stringify(e.action.slice(0, 200))}`);
  }
  const missing = (e.permissions ?? []).filter((p) => !status.permissions.includes(p));
  if (missing.length > 0) throw new SvidVerifyError('ERR_SVID_PERMISSION_MISSING', `the SVID was not approved for: ${missing.join(', ')}`);
  return { svid, status, ...(receipt ? { receipt } : {}) };
}

// ---------------------------------------------------------------------------------------------
// A kept verifier

export interface SvidVerifierOptions {
  /** As VerifyOptions.trustDomain: default, the trust domain(s) the bundle's CAs name. */
  readonly trustDomain?: string;
}

/** What a kept verifier takes per call: AckdVerifyOptions without the bundle and trust domain it holds. */
export type SvidVerifierCallOptions = Omit<AckdVerifyOptions, 'bundle' | 'trustDomain'>;

/** A trust bundle prepared once (see createSvidVerifier). Same checks, results and errors as the one-shot functions. */
export interface SvidVerifier {
  /** The trust domains an SVID may belong to: the one given, else those the bundle's CAs name. */
  readonly trustDomains: readonly string[];
  /** verifySvid against the kept bundle. */
  verifySvid(chain: CertificatesInput, opts?: { readonly at?: Date }): Promise<VerifiedSvid>;
  /** verifyAckdSvid against the kept bundle. */
  verifyAckdSvid(chain: CertificatesInput, opts?: SvidVerifierCallOptions): Promise<AckdVerifyResult>;
}

/**
 * Prepares a trust bundle once and returns a verifier that keeps it: the CA certificates parsed,
 * their public keys read and checked once, so each verification only parses the presented chain
 * (OpenSSL, via node:crypto X509Certificate) and checks its signatures natively.
 *
 *   const verifier = createSvidVerifier(bundlePem);          // at start-up, and again when the bundle rotates
 *   const { svid } = await verifier.verifyAckdSvid(chain, { statusUrl, expect: { requestId } });
 *
 * The bundle is checked now: ERR_SVID_MALFORMED when a certificate of it cannot be parsed, a
 * TypeError when it holds none or names no trust domain and none is given. Validity (of the CAs
 * too) is judged on every call, at `at` or now. The one-shot verifySvid / verifyAckdSvid keep the
 * last few bundles they were given, by content, so passing the same bundle text on every call is
 * nearly as fast; a kept verifier also skips looking the bundle up.
 */
export function createSvidVerifier(bundle: CertificatesInput, opts: SvidVerifierOptions = {}): SvidVerifier {
  const prepared = prepareBundle(bundle);
  if (prepared.problem) throw prepared.problem;
  const trustDomains = Object.freeze(opts.trustDomain !== undefined ? [opts.trustDomain] : [...prepared.trustDomains]);
  if (trustDomains.length === 0) throw new TypeError('createSvidVerifier: pass trustDomain (the bundle names no trust domain)');
  const offline = async (chain: CertificatesInput, at: Date | undefined): Promise<VerifiedSvid> => verifyPrepared(parseCertificates(chain, 'svid'), prepared, opts.trustDomain, at);
  return Object.freeze({
    trustDomains,
    verifySvid: (chain: CertificatesInput, o: { readonly at?: Date } = {}) => offline(chain, o.at),
    verifyAckdSvid: (chain: CertificatesInput, o: SvidVerifierCallOptions = {}) => withExpectations(o, () => offline(chain, o.at)),
  });
}
