import { AckdError } from './errors.ts';
import { canonicalJson, sha256Hex } from './jcs.ts';

/**
 * The exact parameters of an operation an agent asks to perform (commit, environment, amount,
 * SQL migration …): a JSON object the approver sees field by field and decides on, bound to the
 * decision, the receipt and the SVID by its SHA-256.
 *
 * `payload_sha256` is lowercase hex SHA-256 over the payload's RFC 8785 (JCS) canonical JSON, so
 * anyone can recompute it from the JSON with any language's JCS library.
 */
export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [k: string]: JsonValue };
export type Payload = { readonly [k: string]: JsonValue };

export const PAYLOAD_LIMITS = {
  /** Bytes of the canonical JSON (UTF-8). */
  maxBytes: 32 * 1024,
  /** Nesting: the payload object itself is depth 1. */
  maxDepth: 10,
} as const;

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Whether `s` is a payload digest as ackd writes it (64 lowercase hex digits). */
export function isSha256Hex(s: unknown): s is string {
  return typeof s === 'string' && SHA256_HEX.test(s);
}

/**
 * A payload as sent (already JSON-parsed), checked: a JSON object of plain JSON values, at most
 * PAYLOAD_LIMITS.maxDepth deep and PAYLOAD_LIMITS.maxBytes of canonical JSON, with no unpaired
 * surrogates (they are not text and JCS cannot encode them). Refused with ERR_INVALID_INPUT naming
 * the path of the offending value (`payload.steps[2].sql`).
 */
export function parsePayload(value: unknown, field = 'payload'): Payload {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(field, 'must be a JSON object');
  check(value, field, 1);
  const bytes = Buffer.byteLength(canonicalJson(value), 'utf8');
  if (bytes > PAYLOAD_LIMITS.maxBytes) throw bad(field, `is ${bytes} bytes as canonical JSON (RFC 8785); at most ${PAYLOAD_LIMITS.maxBytes} are allowed`);
  return value as Payload;
}

function check(v: unknown, path: string, depth: number): void {
  if (v === null || typeof v === 'boolean') return;
  if (typeof v === 'string') {
    if (/\p{Cs}/u.test(v)) throw bad(path, 'contains an unpaired surrogate, which is not text');
    return;
  }
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw bad(path, 'must be a finite number');
    return;
  }
  if (typeof v !== 'object') throw bad(path, `is a ${typeof v}, not a JSON value`);
  if (depth > PAYLOAD_LIMITS.maxDepth) throw bad(path, `nests deeper than ${PAYLOAD_LIMITS.maxDepth} levels`);
  if (Array.isArray(v)) {
    v.forEach((x, i) => check(x, `${path}[${i}]`, depth + 1));
    return;
  }
  const proto = Object.getPrototypeOf(v) as unknown;
  if (proto !== Object.prototype && proto !== null) throw bad(path, 'must be a plain JSON object');
  for (const [k, x] of Object.entries(v)) {
    if (/\p{Cs}/u.test(k)) throw bad(path, 'has a key with an unpaired surrogate, which is not text');
    check(x, `${path}${/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`}`, depth + 1);
  }
}

function bad(field: string, rule: string): AckdError {
  return new AckdError('ERR_INVALID_INPUT', `${field}: ${rule}`, { field });
}

/** Lowercase hex SHA-256 over the payload's canonical JSON (RFC 8785). */
export function payloadSha256(payload: Payload): string {
  return sha256Hex(canonicalJson(payload));
}

/** A digest in groups of 4, for a person comparing it with what a pipeline printed. */
export function groupedHex(hex: string): string {
  return hex.replace(/(.{4})(?=.)/g, '$1 ');
}

/**
 * Why a stored request's payload and its digest disagree (a payload or digest written into the
 * table afterwards), or null when they agree (or it has neither).
 */
export function payloadProblem(r: { readonly payload?: Payload | null; readonly payload_sha256?: string | null }): string | null {
  const payload = r.payload ?? null;
  const digest = r.payload_sha256 ?? null;
  if (payload === null) return digest === null ? null : 'it records a payload digest but holds no payload';
  if (digest === null) return 'it holds a payload but records no payload digest';
  return payloadSha256(payload) === digest ? null : 'its payload does not match its payload_sha256 (the payload was changed after it was requested)';
}
