/**
 * Wire protocol between the MCP Lambda (RemoteSpireClient) and the SPIRE bridge sidecar.
 *
 * Every request carries `x-ackd-timestamp` (unix seconds) and
 * `authorization: ACKD-HMAC-SHA256 <hex>` where the MAC is HMAC-SHA256(key, canonical) over
 *   METHOD \n PATH \n TIMESTAMP \n hex(SHA-256(body)).
 * The key itself never crosses the network. A captured request is only good for MAX_SKEW_SECONDS
 * and replaying it yields nothing useful: a mint signs a CSR whose private key stays with the
 * Lambda that made it, and the bundle is public.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const BRIDGE_PATHS = {
  mint: '/v1/mint-x509-svid',
  bundle: '/v1/bundle',
  health: '/healthz',
} as const;

export const AUTH_SCHEME = 'ACKD-HMAC-SHA256';
export const TIMESTAMP_HEADER = 'x-ackd-timestamp';
export const MAX_SKEW_SECONDS = 60;
/** A CSR is well under 2 KiB; anything much larger is refused unread. */
export const MAX_BODY_BYTES = 16 * 1024;
/** HMAC keys shorter than this are refused at start (Secrets Manager generates 64 characters). */
export const MIN_SECRET_LENGTH = 32;

export interface MintRequestBody {
  /** base64 DER PKCS#10 CSR. */
  csr: string;
  /** seconds */
  ttl: number;
}
export interface MintResponseBody {
  /** base64 DER certificates, leaf first. */
  cert_chain: string[];
  spiffe_id: string;
  /** unix seconds */
  expires_at: number;
}
export interface BundleResponseBody {
  trust_domain: string;
  /** base64 DER CA certificates. */
  x509_authorities: string[];
  refresh_hint: number;
  sequence_number: number;
}
export interface ErrorBody {
  error: { code: string; message: string; field?: string };
}

function canonical(method: string, path: string, timestamp: string, body: Uint8Array): string {
  const bodyHash = createHash('sha256').update(body).digest('hex');
  return `${method.toUpperCase()}\n${path}\n${timestamp}\n${bodyHash}`;
}

export function sign(secret: string, method: string, path: string, timestamp: string, body: Uint8Array): string {
  return createHmac('sha256', secret).update(canonical(method, path, timestamp, body)).digest('hex');
}

/** Headers that authenticate one request. */
export function authHeaders(secret: string, method: string, path: string, body: Uint8Array, nowMs: number): Record<string, string> {
  const ts = String(Math.floor(nowMs / 1000));
  return { [TIMESTAMP_HEADER]: ts, authorization: `${AUTH_SCHEME} ${sign(secret, method, path, ts, body)}` };
}

export type VerifyResult = { ok: true } | { ok: false; reason: string };

/** Checks a request's MAC and timestamp in constant time (with respect to the MAC). */
export function verify(
  secret: string,
  req: { method: string; path: string; authorization: string | undefined; timestamp: string | undefined; body: Uint8Array },
  nowMs: number,
): VerifyResult {
  const auth = req.authorization ?? '';
  const prefix = `${AUTH_SCHEME} `;
  if (!auth.startsWith(prefix)) return { ok: false, reason: 'missing or malformed authorization' };
  const mac = auth.slice(prefix.length).trim();
  if (!/^[0-9a-f]{64}$/.test(mac)) return { ok: false, reason: 'missing or malformed authorization' };
  const ts = req.timestamp ?? '';
  if (!/^\d{1,12}$/.test(ts)) return { ok: false, reason: 'missing or malformed timestamp' };
  if (Math.abs(Number(ts) - nowMs / 1000) > MAX_SKEW_SECONDS) return { ok: false, reason: 'timestamp outside the allowed window' };
  const expected = Buffer.from(sign(secret, req.method, req.path, ts, req.body), 'hex');
  if (!timingSafeEqual(expected, Buffer.from(mac, 'hex'))) return { ok: false, reason: 'bad signature' };
  return { ok: true };
}

export const b64 = {
  encode: (u: Uint8Array): string => Buffer.from(u).toString('base64'),
  decode: (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64')),
};
