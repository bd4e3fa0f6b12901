/**
 * The one error type of ackd. Every failure that crosses a module boundary is an AckdError with a
 * code from a closed set. `message` is safe to show to the caller (it never contains secrets or
 * stack traces); `cause` is for logs only.
 */
export const ERROR_CODES = {
  ERR_INVALID_INPUT: 'input failed validation',
  ERR_UNAUTHENTICATED: 'missing or invalid credentials',
  ERR_FORBIDDEN: 'the caller may not do this',
  ERR_NOT_FOUND: 'no such request',
  ERR_ALREADY_DECIDED: 'the request was already decided',
  ERR_ALREADY_VOTED: 'you already voted on this request',
  ERR_EXPIRED: 'the request has expired',
  ERR_NOT_APPROVED: 'the request is not approved',
  ERR_SVID_MISMATCH: 'svid_id does not match the SVID issued for this request',
  ERR_NOT_ISSUED: 'no SVID has been issued for this request yet',
  ERR_ISSUANCE_IN_PROGRESS: 'SVID issuance for this request is in progress',
  ERR_ISSUER_UNAVAILABLE: 'the SVID issuer is unavailable',
  ERR_ISSUER_REFUSED: 'the SVID issuer refused the request',
  ERR_STORE_UNAVAILABLE: 'the request store is unavailable',
  ERR_RATE_LIMITED: 'too many requests; retry later',
  ERR_SIGNER_UNAVAILABLE: 'the audit checkpoint signing key is unavailable',
  ERR_CONFLICT: 'the resource already exists',
  ERR_CONFIG: 'invalid configuration',
  ERR_STALE_VIEW: 'the decision was made on a view of the request that differs from the request as stored',
  ERR_PASSKEY_REQUIRED: 'this decision must be signed with a passkey',
  ERR_PASSKEY_INVALID: 'the passkey assertion does not verify for this decision',
  ERR_DECISION_UNSIGNED: 'the decision carries no valid signature of the decision service',
  ERR_PAYLOAD_MISMATCH: 'the payload digest is not the one of the request',
  ERR_ALREADY_EXECUTED: 'the approved call of this request was already started; an approval runs one call',
  ERR_INTERNAL: 'internal error',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class AckdError extends Error {
  override readonly name = 'AckdError';
  readonly code: ErrorCode;
  /** The input field the error is about, when there is one (e.g. `ttl_minutes`). */
  readonly field: string | undefined;

  constructor(code: ErrorCode, message?: string, options?: { field?: string; cause?: unknown }) {
    super(message ?? ERROR_CODES[code], options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.field = options?.field;
  }

  toJSON(): { code: ErrorCode; message: string; field?: string } {
    return this.field === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, field: this.field };
  }
}

export function invalid(field: string, rule: string): AckdError {
  return new AckdError('ERR_INVALID_INPUT', `${field}: ${rule}`, { field });
}

export function isAckdError(e: unknown, code?: ErrorCode): e is AckdError {
  return e instanceof AckdError && (code === undefined || e.code === code);
}

/**
 * What a caller may see. Known errors pass through; anything else becomes ERR_INTERNAL and the
 * original is handed to `log` (never to the caller).
 */
export function exposeError(e: unknown, log: (msg: string, detail: Record<string, unknown>) => void): AckdError {
  if (e instanceof AckdError) {
    if (e.code === 'ERR_INTERNAL' || e.code === 'ERR_STORE_UNAVAILABLE' || e.code.startsWith('ERR_ISSUER')) {
      log('dependency error', { code: e.code, cause: describeCause(e.cause) });
    }
    return e;
  }
  log('unexpected error', { cause: describeCause(e) });
  return new AckdError('ERR_INTERNAL');
}

function describeCause(c: unknown): string | undefined {
  if (c === undefined) return undefined;
  if (c instanceof Error) return `${c.name}: ${c.message}`;
  return String(c);
}
