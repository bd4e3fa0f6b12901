/**
 * Trust bundle distribution and SVID status, as a Hono sub-app:
 *
 *   GET /.well-known/spiffe-bundle            the trust domain's bundle, SPIFFE bundle format (JWKS)
 *   GET /v1/svid-status/:request_id?svid_id=  what a resource owner needs to know about one SVID
 *
 * Both are public: the bundle is public by nature, and the status answers only to someone who
 * holds the SVID's request_id and serial (404 otherwise, whether the request exists or not).
 */
import { X509Certificate } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Hono } from 'hono';
import { exportJWK } from 'jose';
import { isAckdError } from '../core/errors.ts';
import { svidEnd } from '../core/lifecycle.ts';
import { parseRequestId, parseSvidId, type TrustDomain } from '../core/ids.ts';
import { systemClock, type BundleStore, type Clock, type KnownBundle, type Logger, type SvidMinter } from '../core/ports.ts';
import type { AuthorizationService } from '../core/service.ts';
import { describeError } from '../../spire/bridge/errors.ts';

export interface SvidRoutesDeps {
  readonly minter: SvidMinter;
  readonly service: AuthorizationService;
  readonly trustDomain: TrustDomain;
  /** spiffe_refresh_hint in seconds (default 300). */
  readonly refreshHintSeconds?: number;
  /** Where the reason a bundle could not be had goes (the answer carries only a fixed message). */
  readonly logger?: Logger;
  /** The last bundle the issuer gave, served while the issuer is down (without it: 503 then). */
  readonly bundles?: BundleStore;
  /** How long one fetched bundle answers requests before the issuer is asked again (default 30 s). */
  readonly bundleCacheMs?: number;
  readonly clock?: Clock;
}

/** While the issuer is down, a last known bundle asks to be fetched again this soon. */
const STALE_REFRESH_HINT_SECONDS = 60;

/** One JWK of a SPIFFE bundle (SPIFFE Trust Domain and Bundle §4). */
export interface SpiffeBundleKey {
  readonly kty: string;
  readonly use: 'x509-svid';
  readonly x5c: [string];
  readonly [k: string]: unknown;
}
export interface SpiffeBundle {
  readonly keys: SpiffeBundleKey[];
  readonly spiffe_sequence: number;
  readonly spiffe_refresh_hint: number;
}

/** PEM CA certificates → SPIFFE bundle (JWKS with one `x509-svid` key per CA certificate). */
export async function spiffeBundleFromPem(pem: string, refreshHintSeconds = 300): Promise<SpiffeBundle> {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const keys: SpiffeBundleKey[] = [];
  let sequence = 0;
  for (const block of blocks) {
    const cert = new X509Certificate(block);
    const jwk = await exportJWK(cert.publicKey);
    keys.push({ ...jwk, kty: jwk.kty!, use: 'x509-svid', x5c: [cert.raw.toString('base64')] });
    // Monotonic: a new CA (rotation) has a later notBefore, so the sequence goes up with it.
    sequence = Math.max(sequence, Math.floor(Date.parse(cert.validFrom) / 1000));
  }
  return { keys, spiffe_sequence: sequence, spiffe_refresh_hint: refreshHintSeconds };
}

/**
 * Writes the trust bundle PEM atomically (the local runner writes `.ackd/trust-bundle.pem`). Owner-only
 * like everything in the state directory: the bundle is public, but it is served at
 * /.well-known/spiffe-bundle for anyone else.
 */
export async function writeTrustBundle(minter: SvidMinter, path: string): Promise<string> {
  const pem = await minter.trustBundlePem();
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, pem, { mode: 0o600 });
  await rename(tmp, path);
  return pem;
}

export function svidRoutes(deps: SvidRoutesDeps): Hono {
  const app = new Hono();

  // The issuer is asked at most once per bundleCacheMs per instance; each new bundle it gives is
  // remembered (in the table on AWS), and while it is down the last one is served, marked stale
  // with a short refresh hint, instead of a 503 that would leave every resource without trust.
  const clock = deps.clock ?? systemClock;
  let fresh: KnownBundle | undefined;
  let freshUntil = 0;
  const refreshHint = deps.refreshHintSeconds ?? 300;
  app.get('/.well-known/spiffe-bundle', async (c) => {
    const now = clock.now();
    if (!fresh || now.getTime() >= freshUntil) {
      try {
        const pem = await deps.minter.trustBundlePem();
        const changed = fresh?.pem !== pem;
        fresh = { pem, fetched_at: now.toISOString() };
        freshUntil = now.getTime() + (deps.bundleCacheMs ?? 30_000);
        if (changed) await deps.bundles?.remember(fresh).catch((e: unknown) => deps.logger?.warn('could not remember the trust bundle', { cause: describeError(e) }));
      } catch (e) {
        const code = isAckdError(e) ? e.code : 'ERR_ISSUER_UNAVAILABLE';
        deps.logger?.warn('trust bundle unavailable from the issuer', { code, cause: describeError(e) });
        const last = fresh ?? (await deps.bundles?.lastKnown().catch(() => undefined));
        if (!last) return c.json({ error: { code, message: 'the trust bundle is unavailable' } }, 503, { 'cache-control': 'no-store' });
        const bundle = await spiffeBundleFromPem(last.pem, STALE_REFRESH_HINT_SECONDS);
        return c.json(bundle, 200, { 'cache-control': 'no-store', 'x-ackd-bundle-fetched-at': last.fetched_at });
      }
    }
    const bundle = await spiffeBundleFromPem(fresh.pem, refreshHint);
    return c.json(bundle, 200, { 'cache-control': `public, max-age=${Math.min(refreshHint, 300)}`, 'x-ackd-bundle-fetched-at': fresh.fetched_at });
  });

  app.get('/v1/svid-status/:request_id', async (c) => {
    const headers = { 'cache-control': 'no-store' };
    let requestId, svidId;
    try {
      requestId = parseRequestId(c.req.param('request_id'));
      svidId = parseSvidId(c.req.query('svid_id') ?? '');
    } catch (e) {
      if (isAckdError(e)) return c.json({ error: e.toJSON() }, 400, headers);
      throw e;
    }
    const notFound = () => c.json({ error: { code: 'ERR_NOT_FOUND', message: 'no SVID with this request_id and svid_id' } }, 404, headers);
    let r;
    try {
      r = await deps.service.get(requestId);
    } catch (e) {
      if (isAckdError(e, 'ERR_NOT_FOUND')) return notFound();
      if (isAckdError(e, 'ERR_STORE_UNAVAILABLE')) return c.json({ error: { code: e.code, message: 'status unavailable' } }, 503, headers);
      throw e;
    }
    if (r.svid_id === null || r.svid_id !== svidId) return notFound();
    const s = deps.service.status(r);
    return c.json(
      {
        request_id: r.request_id,
        agent_id: r.agent_id,
        spiffe_id: r.spiffe_id,
        svid_id: r.svid_id,
        status: s.status,
        revoked: r.revoked,
        revoked_at: r.revoked_at,
        svid_expires_at: r.svid_expires_at,
        expires_at: svidEnd(r),
        action: r.action,
        permissions: [...r.permissions],
        payload_sha256: r.payload_sha256 ?? null,
        decision_at: r.decision_at,
      },
      200,
      headers,
    );
  });

  return app;
}

