/**
 * The approval receipt's format (core/receipt.ts makes receipts, ackd/verify checks them): its
 * header values, its claims, and where ackd publishes the keys. No runtime imports, so the verify
 * package shares it without server code.
 */

export const RECEIPT_ALG = 'ES256';
export const RECEIPT_TYP = 'ackd-receipt+jwt';
export const RECEIPT_ISSUER = 'ackd';

export interface ReceiptClaims {
  readonly iss: typeof RECEIPT_ISSUER;
  /** The SVID's SPIFFE ID. */
  readonly sub: string;
  readonly request_id: string;
  readonly agent_id: string;
  readonly spiffe_id: string;
  /** The leaf certificate's serial number, lowercase hex. */
  readonly svid_id: string;
  readonly permissions: readonly string[];
  readonly payload_sha256: string | null;
  readonly view_sha256: string | null;
  /** approver_identity of the approving vote. */
  readonly approver: string;
  readonly decided_at: string;
  readonly passkey_assertion_sha256: string | null;
  /** SHA-256 hex of the signed decision's signature bytes (core/evidence.ts). */
  readonly decision_signature_sha256: string;
  /** When the receipt was signed (epoch seconds). */
  readonly iat: number;
  /** The SVID's notAfter (epoch seconds). */
  readonly exp: number;
}

/** Where ackd publishes its receipt keys (a JWKS), relative to the MCP server's origin. */
export const RECEIPT_KEYS_PATH = '/.well-known/ackd-receipt-keys.json';
