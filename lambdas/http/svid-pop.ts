/**
 * Proof of possession of an SVID's private key, for calls that an SVID alone must authorize (the
 * AWS credential broker). Not a bearer token: a compact JWS signed with the SVID's key, that
 * carries the SVID's chain and names one call, and is good once, within a minute, at one URL.
 *
 *   header  {alg: "ES256", typ: "ackd-svid-pop+jwt", x5c: [leaf, intermediates… (base64 DER)]}
 *   payload {request_id, role, iat, jti, aud}   aud: the URL the proof is sent to
 *
 * Sent as `Authorization: SVID-PoP <jws>`. The verifier validates the chain against the trust
 * bundle with ackd/verify (path, X509-SVID rules, SPIFFE ID, validity now), the signature with the
 * leaf's key, the type, the audience, `iat` within ±60 s, and that the payload's request is the
 * SVID's own. Single use of `jti` is the caller's (it needs a store: lambdas/core/aws-broker.ts).
 */
import { createPrivateKey, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { CompactSign, compactVerify, decodeProtectedHeader, errors as joseErrors } from 'jose';
import { AckdError } from '../core/errors.ts';
import { parseRequestId, type RequestId } from '../core/ids.ts';
import type { PresentedSvid } from '../core/aws-broker.ts';
import { SvidVerifyError } from '../verify/errors.ts';

export const POP_SCHEME = 'SVID-PoP';
export const POP_TYP = 'ackd-svid-pop+jwt';
/** How far `iat` may be from the verifier's clock, either way. */
export const POP_MAX_SKEW_SECONDS = 60;
/** Signature algorithms by key: SVIDs from SPIRE and the local CA are EC P-256 (ES256). */
const ALGORITHMS = ['ES256', 'ES384', 'EdDSA'] as const;
const MAX_CHAIN = 8;
const JTI = /^[A-Za-z0-9_-]{16,128}$/;
const ROLE = /^[A-Za-z0-9+=.@_-]{1,64}$/;

export interface ProofClaims {
  readonly request_id: string;
  readonly role: string;
  readonly iat: number;
  readonly jti: string;
  readonly aud: string;
}

function algFor(key: KeyObject): (typeof ALGORITHMS)[number] {
  const d = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec' && d?.namedCurve === 'prime256v1') return 'ES256';
  if (key.asymmetricKeyType === 'ec' && d?.namedCurve === 'secp384r1') return 'ES384';
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
  throw new AckdError('ERR_INVALID_INPUT', `svid: its key (${key.asymmetricKeyType ?? 'unknown'}) cannot sign a proof; ackd SVIDs have EC P-256 keys`, { field: 'svid' });
}

/** The certificates (base64 DER, leaf first) and the private key of an SVID PEM file (chain, then PKCS#8 key). */
export function readSvidPem(pem: string): { readonly x5c: string[]; readonly key: KeyObject } {
  const certs = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const keyPem = /-----BEGIN (?:EC )?PRIVATE KEY-----[\s\S]+?-----END (?:EC )?PRIVATE KEY-----/.exec(pem)?.[0];
  if (certs.length === 0 || !keyPem) throw new AckdError('ERR_INVALID_INPUT', 'svid: must be PEM with the certificate chain (leaf first) and the private key, as check_authorization returns it', { field: 'svid' });
  return { x5c: certs.map((c) => new X509Certificate(c).raw.toString('base64')), key: createPrivateKey(keyPem) };
}

/** Signs a proof for one call with the SVID's key (the agent's side: `ackd aws credential-process`). */
export async function signSvidProof(svidPem: string, claims: { readonly requestId: string; readonly role: string; readonly aud: string; readonly now?: Date; readonly jti?: string }): Promise<string> {
  const { x5c, key } = readSvidPem(svidPem);
  const payload: ProofClaims = {
    request_id: claims.requestId,
    role: claims.role,
    iat: Math.floor((claims.now ?? new Date()).getTime() / 1000),
    jti: claims.jti ?? randomBytes(24).toString('base64url'),
    aud: claims.aud,
  };
  return new CompactSign(new TextEncoder().encode(JSON.stringify(payload))).setProtectedHeader({ alg: algFor(key), typ: POP_TYP, x5c }).sign(key);
}

export interface VerifiedProof {
  readonly presented: PresentedSvid;
  readonly requestId: RequestId;
  readonly role: string;
  readonly jti: string;
  /** Until when this proof could be accepted anywhere (iat + the skew): keep its jti that long. */
  readonly replayUntil: Date;
}

const unauthenticated = (why: string, cause?: unknown) => new AckdError('ERR_UNAUTHENTICATED', `SVID proof: ${why}`, cause === undefined ? undefined : { cause });

/**
 * Verifies a proof against the trust bundle at `now` for the URL `aud`. Throws ERR_UNAUTHENTICATED
 * naming what failed (a chain refused by ackd/verify names its reason code).
 */
export async function verifySvidProof(jws: string, opts: { readonly bundlePem: string; readonly trustDomain: string; readonly aud: string; readonly now: Date }): Promise<VerifiedProof> {
  let header;
  try {
    header = decodeProtectedHeader(jws);
  } catch (e) {
    throw unauthenticated('not a compact JWS', e);
  }
  if (header.typ !== POP_TYP) throw unauthenticated(`typ must be ${POP_TYP}`);
  if (!ALGORITHMS.includes(header.alg as (typeof ALGORITHMS)[number])) throw unauthenticated(`alg must be one of ${ALGORITHMS.join(', ')}`);
  const x5c = header.x5c;
  if (!Array.isArray(x5c) || x5c.length === 0 || x5c.length > MAX_CHAIN || !x5c.every((c) => typeof c === 'string' && /^[A-Za-z0-9+/]+={0,2}$/.test(c))) {
    throw unauthenticated(`x5c must carry the SVID chain, leaf first (1-${MAX_CHAIN} base64 DER certificates)`);
  }
  const der = x5c.map((c) => new Uint8Array(Buffer.from(c, 'base64')));
  let svid;
  try {
    // Loaded on the first proof: the X.509 path validation (and @peculiar/x509 under it) is not evaluated at a cold start.
    const { verifySvid } = await import('./svid-chain.ts');
    svid = await verifySvid(der, { bundle: opts.bundlePem, trustDomain: opts.trustDomain, at: opts.now });
  } catch (e) {
    if (e instanceof SvidVerifyError) throw unauthenticated(`the SVID is not accepted: ${e.code}: ${e.message}`, e);
    throw e;
  }
  let payload: Uint8Array;
  try {
    const leafKey = new X509Certificate(Buffer.from(der[0]!)).publicKey;
    ({ payload } = await compactVerify(jws, leafKey, { algorithms: [...ALGORITHMS] }));
  } catch (e) {
    if (e instanceof joseErrors.JOSEError) throw unauthenticated("the signature is not the SVID key's", e);
    throw e;
  }
  let claims: Partial<ProofClaims>;
  try {
    claims = JSON.parse(new TextDecoder().decode(payload)) as Partial<ProofClaims>;
  } catch (e) {
    throw unauthenticated('the payload is not JSON', e);
  }
  if (typeof claims !== 'object' || claims === null) throw unauthenticated('the payload is not an object');
  if (claims.aud !== opts.aud) throw unauthenticated(`aud must be ${opts.aud}`);
  if (typeof claims.iat !== 'number' || !Number.isInteger(claims.iat)) throw unauthenticated('iat must be a Unix time in seconds');
  const skew = claims.iat - opts.now.getTime() / 1000;
  if (Math.abs(skew) > POP_MAX_SKEW_SECONDS) throw unauthenticated(`iat is ${Math.round(Math.abs(skew))} s ${skew > 0 ? 'ahead of' : 'behind'} ackd's clock; a proof is good for ${POP_MAX_SKEW_SECONDS} s (sign a new one for every call)`);
  if (typeof claims.jti !== 'string' || !JTI.test(claims.jti)) throw unauthenticated('jti must be 16-128 characters of A-Z a-z 0-9 _ -, new for every call');
  if (typeof claims.role !== 'string' || !ROLE.test(claims.role)) throw unauthenticated('role must name a role (1-64 of A-Z a-z 0-9 + = . @ _ -)');
  let requestId: RequestId;
  try {
    requestId = parseRequestId(claims.request_id);
  } catch (e) {
    throw unauthenticated('request_id must be a request id', e);
  }
  if (requestId !== svid.request_id) throw new AckdError('ERR_FORBIDDEN', `the SVID is for request ${svid.request_id}, not ${requestId}`);
  return {
    presented: { agentId: svid.agent_id, requestId: svid.request_id, svidId: svid.svid_id, notAfter: svid.not_after },
    requestId,
    role: claims.role,
    jti: claims.jti,
    replayUntil: new Date((claims.iat + POP_MAX_SKEW_SECONDS + 1) * 1000),
  };
}
