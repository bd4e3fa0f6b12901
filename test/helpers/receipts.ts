/**
 * Receipts in the agreed format (issue 13), signed by a key generated at test time. Stands in for
 * ackd's own receipt signer in the verifier's unit tests: the tests take a `ReceiptSigner`, so they
 * run unchanged against ackd's signer once it is on main (give them one whose `sign` is the real one
 * and whose `jwks` is what ackd publishes).
 */
import { createHash } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, type JSONWebKeySet, type CryptoKey } from 'jose';
import { canonicalSha256 } from '../../lambdas/verify/receipt.ts';

export interface ReceiptFor {
  readonly spiffe_id: string;
  readonly svid_id: string;
  /** SVID notAfter: the receipt's exp. */
  readonly not_after: Date;
  readonly permissions?: readonly string[];
  /** The approved payload; its canonical SHA-256 goes in the receipt (null: none). */
  readonly payload?: unknown;
}

export interface ReceiptSigner {
  readonly jwks: JSONWebKeySet;
  readonly kid: string;
  /** A receipt for this SVID; `claims` overrides any claim, `header` any header field. */
  sign(svid: ReceiptFor, over?: { claims?: Record<string, unknown>; header?: Record<string, unknown> }): Promise<string>;
}

export async function testReceiptSigner(): Promise<ReceiptSigner> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  const jwks = { keys: [{ kty: jwk.kty!, crv: jwk.crv!, x: jwk.x!, y: jwk.y!, kid, alg: 'ES256', use: 'sig' }] };
  return { jwks, kid, sign: (svid, over) => signReceipt(privateKey, kid, svid, over) };
}

export async function signReceipt(key: CryptoKey, kid: string, svid: ReceiptFor, over: { claims?: Record<string, unknown>; header?: Record<string, unknown> } = {}): Promise<string> {
  const [, , agent_id, request_id] = new URL(svid.spiffe_id).pathname.split('/');
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: 'ackd',
    sub: svid.spiffe_id,
    request_id,
    agent_id,
    spiffe_id: svid.spiffe_id,
    svid_id: svid.svid_id,
    permissions: svid.permissions ?? ['deploy:prod'],
    payload_sha256: svid.payload === undefined ? null : canonicalSha256(svid.payload),
    view_sha256: createHash('sha256').update('view').digest('hex'),
    approver: 'approver@ackd.test',
    decided_at: new Date().toISOString(),
    passkey_assertion_sha256: null,
    decision_signature_sha256: createHash('sha256').update('decision signature').digest('hex'),
    iat: now,
    exp: Math.floor(svid.not_after.getTime() / 1000),
    ...over.claims,
  };
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'ackd-receipt+jwt', kid, ...over.header } as { alg: string }).sign(key);
}
