import { decisionSignatureSha256, type SignedDecision } from './evidence.ts';
import type { AuthorizationRecord } from './request.ts';

/**
 * The approval receipt (issue 13, item 5): with the SVID, the check that picks it up returns a
 * compact JWS (ES256) signed by ackd with ACKD_RECEIPT_KEY, binding the SVID (serial, SPIFFE ID,
 * notAfter) to the request, its payload, the view the approver saw, their passkey and the decision
 * service's signature. Anyone verifies it with the public keys ackd publishes as a JWKS
 * (`GET /.well-known/ackd-receipt-keys.json`, `npx ackd receipt keys`).
 *
 * Protected header: {alg: "ES256", typ: "ackd-receipt+jwt", kid: <RFC 7638 JWK thumbprint>}.
 */

import { RECEIPT_ALG, RECEIPT_ISSUER, RECEIPT_TYP, type ReceiptClaims } from './receipt-format.ts';

export { RECEIPT_ALG, RECEIPT_ISSUER, RECEIPT_KEYS_PATH, RECEIPT_TYP, type ReceiptClaims } from './receipt-format.ts';

/** A receipt public key as published: an EC P-256 JWK with its thumbprint as kid. */
export interface ReceiptJwk {
  readonly kty: 'EC';
  readonly crv: 'P-256';
  readonly x: string;
  readonly y: string;
  /** RFC 7638 JWK thumbprint (SHA-256, base64url) of {crv, kty, x, y}. */
  readonly kid: string;
  readonly alg: typeof RECEIPT_ALG;
  readonly use: 'sig';
}

export interface ReceiptJwks {
  readonly keys: readonly ReceiptJwk[];
}

/** Signs receipts. Implementations: a local PEM key (jose), AWS KMS (adapters/signing). */
export interface ReceiptSigner {
  /** The public key receipts verify with (cheap after the first call). Throws ERR_SIGNER_UNAVAILABLE when the key cannot be reached. */
  publicJwk(): Promise<ReceiptJwk>;
  /** The compact JWS of `claims`, protected header {alg: ES256, typ: ackd-receipt+jwt, kid}. */
  sign(claims: ReceiptClaims): Promise<string>;
}

/** The protected header of a receipt signed with the key of thumbprint `kid`. */
export function receiptHeader(kid: string): { alg: typeof RECEIPT_ALG; typ: typeof RECEIPT_TYP; kid: string } {
  return { alg: RECEIPT_ALG, typ: RECEIPT_TYP, kid };
}

/** The claims of the receipt of an SVID minted for `record`, approved by the signed decision `sd`, signed at `now`. */
export function receiptClaims(
  record: Pick<AuthorizationRecord, 'request_id' | 'agent_id' | 'spiffe_id' | 'permissions' | 'payload_sha256'>,
  sd: SignedDecision,
  svid: { readonly svidId: string; readonly notAfter: Date },
  now: Date,
): ReceiptClaims {
  const s = sd.statement;
  return {
    iss: RECEIPT_ISSUER,
    sub: record.spiffe_id,
    request_id: record.request_id,
    agent_id: record.agent_id,
    spiffe_id: record.spiffe_id,
    svid_id: svid.svidId,
    permissions: [...record.permissions],
    payload_sha256: record.payload_sha256 ?? null,
    view_sha256: s.view_sha256,
    approver: s.approver,
    decided_at: s.decided_at,
    passkey_assertion_sha256: s.passkey_assertion_sha256,
    decision_signature_sha256: decisionSignatureSha256(sd),
    iat: Math.floor(now.getTime() / 1000),
    exp: Math.floor(svid.notAfter.getTime() / 1000),
  };
}

/** The JWKS that verifies receipts signed by `signer`. */
export async function receiptJwks(signer: ReceiptSigner): Promise<ReceiptJwks> {
  return { keys: [await signer.publicJwk()] };
}
