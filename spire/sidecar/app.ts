/**
 * The SPIRE bridge sidecar as a web-standard app: authenticates each request (protocol.ts) and
 * forwards it to SPIRE's admin socket through the bridge's SpireClient. It never sees a private key:
 * the caller sends a CSR.
 */
import { Hono } from 'hono';
import { AckdError, ERROR_CODES, isAckdError } from '../../lambdas/core/errors.ts';
import { systemClock, type Clock, type Logger } from '../../lambdas/core/ports.ts';
import { ISSUER_MESSAGES, describeError, type IssuerErrorCode } from '../bridge/errors.ts';
import type { X509SvidSigner } from '../bridge/minter.ts';
import {
  BRIDGE_PATHS,
  MAX_BODY_BYTES,
  MIN_SECRET_LENGTH,
  TIMESTAMP_HEADER,
  b64,
  verify,
  type BundleResponseBody,
  type ErrorBody,
  type MintResponseBody,
} from './protocol.ts';

export interface BridgeAppDeps {
  readonly spire: X509SvidSigner;
  readonly secret: string;
  readonly logger: Logger;
  readonly clock?: Clock;
}

type Status = 400 | 401 | 403 | 404 | 411 | 413 | 422 | 500 | 503;

function errorBody(code: string, message: string, field?: string): ErrorBody {
  return { error: field === undefined ? { code, message } : { code, message, field } };
}

function statusOf(e: AckdError): Status {
  switch (e.code) {
    case 'ERR_INVALID_INPUT':
      return 400;
    case 'ERR_ISSUER_REFUSED':
      return 422;
    case 'ERR_ISSUER_UNAVAILABLE':
      return 503;
    default:
      return 500;
  }
}

export function createBridgeApp(deps: BridgeAppDeps): Hono {
  if (deps.secret.length < MIN_SECRET_LENGTH) {
    throw new AckdError('ERR_CONFIG', `ACKD_BRIDGE_SECRET: must be at least ${MIN_SECRET_LENGTH} characters`, { field: 'ACKD_BRIDGE_SECRET' });
  }
  const clock = deps.clock ?? systemClock;
  const app = new Hono();

  app.get(BRIDGE_PATHS.health, (c) => c.json({ ok: true }));

  // Authentication for everything else; the body is read (bounded) once, here.
  app.use('/v1/*', async (c, next) => {
    const len = c.req.header('content-length');
    if (c.req.method !== 'GET' && len === undefined) return c.json(errorBody('ERR_INVALID_INPUT', 'content-length is required'), 411);
    if (len !== undefined && (!/^\d+$/.test(len) || Number(len) > MAX_BODY_BYTES)) {
      return c.json(errorBody('ERR_INVALID_INPUT', `body must be at most ${MAX_BODY_BYTES} bytes`), 413);
    }
    const body = new Uint8Array(await c.req.arrayBuffer());
    if (body.length > MAX_BODY_BYTES) return c.json(errorBody('ERR_INVALID_INPUT', `body must be at most ${MAX_BODY_BYTES} bytes`), 413);
    const v = verify(
      deps.secret,
      { method: c.req.method, path: c.req.path, authorization: c.req.header('authorization'), timestamp: c.req.header(TIMESTAMP_HEADER), body },
      clock.now().getTime(),
    );
    if (!v.ok) {
      deps.logger.warn('bridge request refused', { path: c.req.path, reason: v.reason });
      return c.json(errorBody('ERR_UNAUTHENTICATED', v.reason), 401);
    }
    c.set('body' as never, body as never);
    await next();
  });

  app.post(BRIDGE_PATHS.mint, async (c) => {
    const body = c.get('body' as never) as Uint8Array;
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder().decode(body));
    } catch {
      return c.json(errorBody('ERR_INVALID_INPUT', 'body: must be JSON'), 400);
    }
    const p = parsed as { csr?: unknown; ttl?: unknown };
    if (typeof p !== 'object' || p === null || typeof p.csr !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(p.csr)) {
      return c.json(errorBody('ERR_INVALID_INPUT', 'csr: must be base64 DER', 'csr'), 400);
    }
    if (typeof p.ttl !== 'number' || !Number.isInteger(p.ttl) || p.ttl < 1 || p.ttl > 86_400) {
      return c.json(errorBody('ERR_INVALID_INPUT', 'ttl: must be an integer number of seconds from 1 to 86400', 'ttl'), 400);
    }
    try {
      const minted = await deps.spire.mintX509Svid(b64.decode(p.csr), p.ttl);
      const res: MintResponseBody = {
        cert_chain: minted.certChain.map(b64.encode),
        spiffe_id: minted.spiffeId,
        expires_at: Math.floor(minted.expiresAt.getTime() / 1000),
      };
      deps.logger.info('minted x509-svid', { spiffe_id: minted.spiffeId, expires_at: res.expires_at });
      return c.json(res);
    } catch (e) {
      return fail(c, e);
    }
  });

  app.get(BRIDGE_PATHS.bundle, async (c) => {
    try {
      const b = await deps.spire.getBundle();
      const res: BundleResponseBody = {
        trust_domain: b.trustDomain,
        x509_authorities: b.x509Authorities.map(b64.encode),
        refresh_hint: b.refreshHintSeconds,
        sequence_number: b.sequenceNumber,
      };
      return c.json(res);
    } catch (e) {
      return fail(c, e);
    }
  });

  app.notFound((c) => c.json(errorBody('ERR_NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`), 404));
  app.onError((err, c) => {
    deps.logger.error('bridge error', { cause: describeError(err) });
    return c.json(errorBody('ERR_INTERNAL', 'internal error'), 500);
  });

  // The detail (gRPC status, SPIRE's words, the admin socket) is logged here; the answer carries only
  // the fixed message of its code, so nothing internal travels on even if a caller passed it along.
  function fail(c: { json: (b: ErrorBody, s: Status) => Response }, e: unknown): Response {
    if (isAckdError(e)) {
      const status = statusOf(e);
      const detail = { code: e.code, cause: describeError(e.cause ?? e) };
      if (status >= 500) deps.logger.error('spire call failed', detail);
      else deps.logger.warn('spire call refused', detail);
      const message = e.code in ISSUER_MESSAGES ? ISSUER_MESSAGES[e.code as IssuerErrorCode] : ERROR_CODES[e.code];
      return c.json(errorBody(e.code, message, e.field), status);
    }
    deps.logger.error('spire call failed', { cause: describeError(e) });
    return c.json(errorBody('ERR_INTERNAL', 'internal error'), 500);
  }

  return app;
}
