/** The closed set of reasons ackd/verify refuses an SVID for, and its one error type. */
export const SVID_VERIFY_CODES = {
  ERR_SVID_NO_CERTIFICATE: 'no certificate was presented',
  ERR_SVID_MALFORMED: 'the certificate could not be parsed',
  ERR_SVID_URI_SAN: 'an X509-SVID has exactly one URI SAN',
  ERR_SVID_NOT_SPIFFE: 'the URI SAN is not a spiffe:// ID',
  ERR_SVID_NOT_ACKD_ID: 'the SPIFFE ID is not an ackd ID (spiffe://<td>/agent/<agent_id>/<request_id>)',
  ERR_SVID_TRUST_DOMAIN: 'the SVID belongs to another trust domain',
  ERR_SVID_LEAF_IS_CA: 'the leaf certificate is a CA',
  ERR_SVID_KEY_USAGE: 'the leaf key usage is not that of an X509-SVID',
  ERR_SVID_CRITICAL_EXTENSION: 'a certificate on the path has a critical extension the verifier does not process',
  ERR_SVID_UNTRUSTED: 'the chain does not lead to a CA in the trust bundle',
  ERR_SVID_NAME_CONSTRAINTS: 'a name on the path is outside the name constraints of a CA above it',
  ERR_SVID_EXPIRED: 'the SVID has expired',
  ERR_SVID_NOT_YET_VALID: 'the SVID is not valid yet',
  ERR_SVID_WRONG_REQUEST: 'the SVID is for a different request',
  ERR_SVID_WRONG_AGENT: 'the SVID is for a different agent',
  ERR_SVID_REVOKED: 'the SVID has been revoked',
  ERR_SVID_NOT_APPROVED: 'the request behind the SVID is not (or no longer) approved',
  ERR_SVID_UNKNOWN: 'ackd does not know this SVID',
  ERR_SVID_STATUS_UNAVAILABLE: "ackd's status endpoint could not be asked",
  ERR_SVID_ACTION_MISMATCH: 'the SVID was approved for a different action',
  ERR_SVID_PERMISSION_MISSING: 'the SVID was not approved for a required permission',
  // receipts (receipt.ts)
  ERR_RECEIPT_MISSING: 'no ackd receipt was presented',
  ERR_RECEIPT_INVALID: 'the receipt is not a valid ackd receipt (signature, kid, typ or claims)',
  ERR_RECEIPT_EXPIRED: 'the receipt has expired (with its SVID)',
  ERR_RECEIPT_MISMATCH: 'the receipt was issued for a different SVID',
  ERR_RECEIPT_KEYS_UNAVAILABLE: "ackd's receipt keys could not be read",
  ERR_PAYLOAD_MISMATCH: 'the payload is not the one the human approved',
} as const;
export type SvidVerifyCode = keyof typeof SVID_VERIFY_CODES;

/** Why an SVID was refused. `code` is stable; `message` is safe to show. */
export class SvidVerifyError extends Error {
  override readonly name: string = 'SvidVerifyError';
  constructor(
    readonly code: SvidVerifyCode,
    message?: string,
    options?: { cause?: unknown },
  ) {
    super(message ?? SVID_VERIFY_CODES[code], options);
  }
  toJSON(): { code: SvidVerifyCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** The codes a receipt is refused with. */
export const RECEIPT_VERIFY_CODES = ['ERR_RECEIPT_MISSING', 'ERR_RECEIPT_INVALID', 'ERR_RECEIPT_EXPIRED', 'ERR_RECEIPT_MISMATCH', 'ERR_RECEIPT_KEYS_UNAVAILABLE', 'ERR_PAYLOAD_MISMATCH'] as const satisfies readonly SvidVerifyCode[];
export type ReceiptVerifyCode = (typeof RECEIPT_VERIFY_CODES)[number];

/**
 * Why a receipt (or the payload it binds) was refused. A SvidVerifyError, so one `catch` handles
 * every refusal of ackd/verify; `code` is one of RECEIPT_VERIFY_CODES.
 */
export class ReceiptVerifyError extends SvidVerifyError {
  override readonly name: string = 'ReceiptVerifyError';
  declare readonly code: ReceiptVerifyCode;
  constructor(code: ReceiptVerifyCode, message?: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
