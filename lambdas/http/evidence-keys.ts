import { RECEIPT_KEYS_PATH } from '../core/receipt-format.ts';
import { Hono } from 'hono';
import type { Logger } from '../core/ports.ts';
import { receiptJwks, type ReceiptSigner } from '../core/receipt.ts';

/**
 * The public keys that verify ackd's evidence, on the MCP server's origin:
 *
 *   GET /.well-known/ackd-receipt-keys.json   the approval receipts' keys, a JWKS (alias /.well-known/jwks.json)
 *   GET /.well-known/ackd-decision-key.pem    the decision service's public key (PEM SPKI): what signed
 *                                             decisions in the audit log verify with (`ackd audit verify --decision-key`)
 *
 * Cached briefly (5 minutes): a verifier that meets an unknown kid fetches again soon after a key
 * change. A key that cannot be read answers 503 (never a partial or empty key set).
 */
export const RECEIPT_JWKS_PATH = RECEIPT_KEYS_PATH;
export const JWKS_ALIAS_PATH = '/.well-known/jwks.json';
export const DECISION_KEY_PATH = '/.well-known/ackd-decision-key.pem';
const CACHE = 'public, max-age=300';

export function evidenceKeyRoutes(deps: { readonly logger: Logger; readonly receipts?: ReceiptSigner; readonly decisionPublicKeyPem?: () => Promise<string> }): Hono {
  const app = new Hono();
  const unavailable = (what: string, e: unknown) => {
    deps.logger.warn(`${what} could not be read`, { error: e instanceof Error ? e.message : String(e) });
    return new Response(JSON.stringify({ error: { code: 'ERR_SIGNER_UNAVAILABLE', message: `the ${what} is unavailable; try again later` } }), {
      status: 503,
      headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
    });
  };
  const receipts = deps.receipts;
  if (receipts) {
    const jwks = async () => {
      try {
        return new Response(JSON.stringify(await receiptJwks(receipts)), { status: 200, headers: { 'content-type': 'application/jwk-set+json', 'cache-control': CACHE } });
      } catch (e) {
        return unavailable('receipt key', e);
      }
    };
    app.get(RECEIPT_JWKS_PATH, jwks);
    app.get(JWKS_ALIAS_PATH, jwks);
  }
  const decisionKey = deps.decisionPublicKeyPem;
  if (decisionKey) {
    app.get(DECISION_KEY_PATH, async () => {
      try {
        return new Response(await decisionKey(), { status: 200, headers: { 'content-type': 'application/x-pem-file', 'cache-control': CACHE } });
      } catch (e) {
        return unavailable('decision key', e);
      }
    });
  }
  return app;
}
