/**
 * ackd receipts: the compact JWS (ES256, typ "ackd-receipt+jwt") ackd returns with an SVID on the
 * first approved check. It says, signed by ackd, who approved what for which SVID:
 *
 *   { iss:"ackd", sub:<spiffe_id>, request_id, agent_id, spiffe_id, svid_id, permissions,
 *     payload_sha256|null, view_sha256|null, approver, decided_at, passkey_assertion_sha256|null,
 *     decision_signature_sha256, iat, exp (= the SVID's notAfter) }
 *
 * `verifyReceipt` checks the signature against ackd's published keys (a JWKS, local or at a URL:
 * `<ackd origin>/.well-known/ackd-receipt-keys.json`), that `kid` is the RFC 7638 thumbprint of the
 * key that verified it, the header, the claims' shapes, expiry, and — when given — that it was
 * issued for this SVID and that a payload is the one approved (SHA-256 over its RFC 8785 canonical
 * JSON). Every refusal is a ReceiptVerifyError (a SvidVerifyError) with an ERR_RECEIPT_* /
 * ERR_PAYLOAD_MISMATCH code. The signature checks are jose's; nothing here parses JWS by hand.
 */
import { calculateJwkThumbprint, createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, jwtVerify, type JSONWebKeySet, type JWSHeaderParameters, type JWK, type CryptoKey } from 'jose';
import { ReceiptVerifyError } from './errors.ts';
import { SpiffeId } from '../core/ids.ts';
import { canonicalJson, sha256Hex } from '../core/jcs.ts'; // the one RFC 8785 (JCS) rule ackd hashes payloads with

import { RECEIPT_ALG, RECEIPT_ISSUER, RECEIPT_KEYS_PATH, RECEIPT_TYP, type ReceiptClaims } from '../core/receipt-format.ts';

export { RECEIPT_ALG, RECEIPT_ISSUER, RECEIPT_KEYS_PATH, RECEIPT_TYP, type ReceiptClaims };

/** ackd's receipt keys: a JWKS, or where to fetch it (kept per URL, refreshed when an unknown kid shows up). */
export type ReceiptKeys = JSONWebKeySet | URL | string;

export interface ReceiptVerifyOptions {
  readonly keys: ReceiptKeys;
  /** The SVID the receipt must be for (as verifySvid returns it): ERR_RECEIPT_MISMATCH otherwise. */
  readonly svid?: { readonly svid_id: string; readonly spiffe_id: string };
  /**
   * The operation's parameters as received (JSON-parsed): their canonical SHA-256 must be the
   * receipt's payload_sha256 (ERR_PAYLOAD_MISMATCH otherwise, also when the receipt has none).
   * Leave it out to skip the check.
   */
  readonly payload?: unknown;
  /** When to judge expiry (default: now). */
  readonly now?: Date;
  /** For a remote JWKS: the fetch timeout, ms (default 5000). */
  readonly timeoutMs?: number;
}

/** The URL of ackd's receipt keys, given any URL of that ackd (its MCP endpoint, its base URL). */
export function receiptKeysUrl(ackdUrl: string | URL): URL {
  return new URL(RECEIPT_KEYS_PATH, new URL(ackdUrl).origin);
}

/** Lowercase hex SHA-256 of the value's RFC 8785 canonical JSON: what ackd records as payload_sha256. */
export function canonicalSha256(value: unknown): string {
  let text: string;
  try {
    text = canonicalJson(value);
  } catch (e) {
    throw new ReceiptVerifyError('ERR_PAYLOAD_MISMATCH', `the payload is not JSON (${(e as Error).message}), so it cannot be the approved one`, { cause: e });
  }
  return sha256Hex(text);
}

/** Verifies a receipt; returns its claims. Throws ReceiptVerifyError. */
export async function verifyReceipt(receipt: string, opts: ReceiptVerifyOptions): Promise<ReceiptClaims> {
  if (typeof receipt !== 'string' || receipt.trim() === '') throw new ReceiptVerifyError('ERR_RECEIPT_MISSING');
  const getKey = keyResolver(opts.keys, opts.timeoutMs);
  let claims: ReceiptClaims;
  try {
    const verified = await jwtVerify(receipt.trim(), getKey, {
      algorithms: [RECEIPT_ALG],
      typ: RECEIPT_TYP,
      issuer: RECEIPT_ISSUER,
      requiredClaims: ['exp', 'iat', 'sub'],
      currentDate: opts.now ?? new Date(),
    });
    claims = parseClaims(verified.payload);
  } catch (e) {
    throw asReceiptError(e);
  }
  if (opts.svid) {
    if (claims.svid_id !== opts.svid.svid_id.toLowerCase()) {
      throw new ReceiptVerifyError('ERR_RECEIPT_MISMATCH', `the receipt is for SVID ${claims.svid_id}, not for the one presented (${opts.svid.svid_id})`);
    }
    if (claims.spiffe_id !== opts.svid.spiffe_id) {
      throw new ReceiptVerifyError('ERR_RECEIPT_MISMATCH', `the receipt is for ${claims.spiffe_id}, not for the SVID presented (${opts.svid.spiffe_id})`);
    }
  }
  if (opts.payload !== undefined) {
    if (claims.payload_sha256 === null) throw new ReceiptVerifyError('ERR_PAYLOAD_MISMATCH', 'a payload was given but the receipt approves none (its payload_sha256 is null)');
    const got = canonicalSha256(opts.payload);
    if (got !== claims.payload_sha256) {
      throw new ReceiptVerifyError('ERR_PAYLOAD_MISMATCH', `the payload's SHA-256 (RFC 8785 canonical JSON) is ${got}; the approved one is ${claims.payload_sha256}`);
    }
  }
  return claims;
}

// ---------------------------------------------------------------------------------------------

type KeyResolver = (header: JWSHeaderParameters) => Promise<CryptoKey>;

/** Remote key sets by URL, so a resource verifying many receipts fetches the JWKS once (jose caches it, refetching on an unknown kid). */
const remoteSets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();
const REMOTE_SETS_MAX = 16;

function keyResolver(keys: ReceiptKeys, timeoutMs = 5000): KeyResolver {
  if (typeof keys === 'string' || keys instanceof URL) {
    const url = new URL(keys);
    const cacheKey = `${url.href} ${timeoutMs}`;
    let set = remoteSets.get(cacheKey);
    if (!set) {
      set = createRemoteJWKSet(url, { timeoutDuration: timeoutMs });
      remoteSets.set(cacheKey, set);
      if (remoteSets.size > REMOTE_SETS_MAX) remoteSets.delete(remoteSets.keys().next().value!);
    }
    const remote = set;
    return async (header) => {
      let key: CryptoKey;
      try {
        key = await remote(header);
      } catch (e) {
        // a key set that answered but has no such key is the receipt's problem; not reaching it is not
        if (e instanceof joseErrors.JWKSNoMatchingKey || e instanceof joseErrors.JWKSMultipleMatchingKeys || e instanceof joseErrors.JOSENotSupported) throw e;
        throw new ReceiptVerifyError('ERR_RECEIPT_KEYS_UNAVAILABLE', `ackd's receipt keys could not be read from ${url.href}: ${(e as Error).message}`, { cause: e });
      }
      await checkKid(header, remote.jwks());
      return key;
    };
  }
  let resolver = localSets.get(keys);
  if (!resolver) {
    let local: ReturnType<typeof createLocalJWKSet>;
    try {
      local = createLocalJWKSet(keys);
    } catch (e) {
      throw new TypeError(`verifyReceipt: keys is not a JSON Web Key Set (${(e as Error).message})`, { cause: e });
    }
    const snapshot = local.jwks(); // what the set holds, whatever later happens to the object given
    resolver = async (header) => {
      const key = await local(header);
      await checkKid(header, snapshot);
      return key;
    };
    localSets.set(keys, resolver);
  }
  return resolver;
}

/** Local key sets by the object given, so a resource passing the same JWKS each time imports its keys once. */
const localSets = new WeakMap<JSONWebKeySet, KeyResolver>();

/** The receipt format names its key by the key's RFC 7638 thumbprint: a kid the verifying key does not hash to is refused. */
async function checkKid(header: JWSHeaderParameters, jwks: JSONWebKeySet | undefined): Promise<void> {
  const jwk: JWK | undefined = jwks?.keys.find((k) => k.kid === header.kid);
  if (typeof header.kid !== 'string' || !jwk) throw new ReceiptVerifyError('ERR_RECEIPT_INVALID', 'the receipt names no key of ackd (kid)');
  const thumbprint = await thumbprintOf(jwk);
  if (thumbprint !== header.kid) throw new ReceiptVerifyError('ERR_RECEIPT_INVALID', `the receipt's kid ${header.kid} is not the RFC 7638 thumbprint of the key published under it`);
}

/** RFC 7638 thumbprints of the keys seen (by their members), bounded. */
const thumbprints = new Map<string, string>();
async function thumbprintOf(jwk: JWK): Promise<string> {
  const id = JSON.stringify([jwk.kty, jwk.crv, jwk.x, jwk.y, jwk.n, jwk.e]);
  let t = thumbprints.get(id);
  if (t === undefined) {
    t = await calculateJwkThumbprint(jwk, 'sha256');
    thumbprints.set(id, t);
    if (thumbprints.size > 64) thumbprints.delete(thumbprints.keys().next().value!);
  }
  return t;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const SERIAL_HEX = /^[0-9a-f]{1,64}$/;

function parseClaims(p: Record<string, unknown>): ReceiptClaims {
  const problem = (claim: string, rule: string) => new ReceiptVerifyError('ERR_RECEIPT_INVALID', `malformed receipt: ${claim} ${rule}`);
  const str = (k: string): string => {
    const v = p[k];
    if (typeof v !== 'string' || v === '') throw problem(k, 'must be a non-empty string');
    return v;
  };
  const hex = (k: string, nullable: boolean): string | null => {
    const v = p[k];
    if (v === null && nullable) return null;
    if (typeof v !== 'string' || !SHA256_HEX.test(v)) throw problem(k, `must be 64 lowercase hex digits${nullable ? ' or null' : ''}`);
    return v;
  };
  const strings = (k: string): string[] => {
    const v = p[k];
    if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'string')) throw problem(k, 'must be a non-empty list of strings');
    return v as string[];
  };
  const spiffe_id = str('spiffe_id');
  let id: SpiffeId;
  try {
    id = SpiffeId.parse(spiffe_id);
  } catch {
    throw problem('spiffe_id', 'must be an ackd SPIFFE ID (spiffe://<td>/agent/<agent_id>/<request_id>)');
  }
  const claims: ReceiptClaims = {
    iss: 'ackd',
    sub: str('sub'),
    request_id: str('request_id'),
    agent_id: str('agent_id'),
    spiffe_id,
    svid_id: str('svid_id'),
    permissions: strings('permissions'),
    payload_sha256: hex('payload_sha256', true),
    view_sha256: hex('view_sha256', true),
    approver: str('approver'),
    decided_at: str('decided_at'),
    passkey_assertion_sha256: hex('passkey_assertion_sha256', true),
    decision_signature_sha256: hex('decision_signature_sha256', false)!,
    iat: p['iat'] as number,
    exp: p['exp'] as number,
  };
  if (!SERIAL_HEX.test(claims.svid_id)) throw problem('svid_id', 'must be the serial number in lowercase hex');
  if (claims.sub !== spiffe_id) throw problem('sub', 'must be the spiffe_id');
  if (id.agentId !== claims.agent_id || id.requestId !== claims.request_id) throw problem('spiffe_id', 'must name the receipt\'s agent_id and request_id');
  return Object.freeze(claims);
}

function asReceiptError(e: unknown): ReceiptVerifyError {
  if (e instanceof ReceiptVerifyError) return e;
  if (e instanceof joseErrors.JWTExpired) return new ReceiptVerifyError('ERR_RECEIPT_EXPIRED', `the receipt expired at ${new Date(Number(e.payload.exp) * 1000).toISOString()}`, { cause: e });
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return new ReceiptVerifyError('ERR_RECEIPT_INVALID', 'the receipt\'s signature does not verify with ackd\'s key', { cause: e });
  if (e instanceof joseErrors.JWKSNoMatchingKey) return new ReceiptVerifyError('ERR_RECEIPT_INVALID', 'the receipt names no key of ackd (kid)', { cause: e });
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return new ReceiptVerifyError('ERR_RECEIPT_INVALID', `the receipt is not signed with ${RECEIPT_ALG}`, { cause: e });
  if (e instanceof joseErrors.JWTClaimValidationFailed) return new ReceiptVerifyError('ERR_RECEIPT_INVALID', `not an ackd receipt: ${e.claim === 'typ' ? `its typ is not ${RECEIPT_TYP}` : `${e.claim}: ${e.reason}`}`, { cause: e });
  if (e instanceof joseErrors.JOSEError) return new ReceiptVerifyError('ERR_RECEIPT_INVALID', `malformed receipt: ${e.message}`, { cause: e });
  throw e;
}
