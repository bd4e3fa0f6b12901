import { canonicalJson, sha256Hex } from './jcs.ts';

/**
 * What a human's decision carries besides its verdict: the evidence that binds it to what they saw
 * and to them. Every edge that decides (consent API, CLI) passes it to AuthorizationService.decide.
 */

/**
 * A WebAuthn assertion exactly as the authenticator produced it (base64url fields, as
 * @simplewebauthn/browser returns them), plus the single-use nonce its challenge was made from.
 * Stored raw on the decision and in its audit event, so anyone holding the approver's registered
 * public key can verify it later.
 */
export interface PasskeyAssertion {
  readonly credential_id: string;
  readonly authenticator_data: string;
  readonly client_data_json: string;
  readonly signature: string;
  readonly user_handle: string | null;
  /** The server-issued single-use nonce of the challenge. */
  readonly nonce: string;
}

export interface DecisionEvidence {
  /** SHA-256 of the canonical view the approver decided on (core/view.ts); null when the edge shows no view (CLI). */
  readonly view_sha256?: string | null;
  /** The approver's passkey assertion over this decision; null or absent without one. */
  readonly passkey?: PasskeyAssertion | null;
}

/** Lowercase hex SHA-256 over the assertion's canonical JSON: what a signed decision and a receipt commit to. */
export function assertionSha256(a: PasskeyAssertion): string {
  return sha256Hex(canonicalJson(a));
}
