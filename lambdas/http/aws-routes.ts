/**
 * The AWS credential broker over HTTP:
 *
 *   POST /v1/aws/credentials   {request_id, role}   Authorization: SVID-PoP <proof>
 *   → 200 {Version: 1, AccessKeyId, SecretAccessKey, SessionToken, Expiration}
 *
 * The body is what `credential_process` prints (AWS CLI, Terraform and every SDK read it). The
 * proof (lambdas/http/svid-pop.ts) is signed with the SVID's key for this URL, this request and
 * this role; the body must say the same. Refusals: `{error: {code, message}}` with 400 (input),
 * 401 (no or bad proof), 403 (not this agent's or not approved for the role, pending, denied,
 * revoked, expired, replayed proof), 404, 503 (store or STS unavailable).
 */
import { Hono, type Context } from 'hono';
import { AckdError, exposeError, isAckdError, type ErrorCode } from '../core/errors.ts';
import { parseRequestId } from '../core/ids.ts';
import { systemClock, type BundleStore, type Clock, type Logger, type SvidMinter } from '../core/ports.ts';
import type { AwsCredentialBroker } from '../core/aws-broker.ts';
import { POP_SCHEME, verifySvidProof } from './svid-pop.ts';
import { withFallbacks } from './fallbacks.ts';

export const AWS_CREDENTIALS_PATH = '/v1/aws/credentials';

export interface AwsRoutesDeps {
  readonly broker: AwsCredentialBroker;
  /** The issuer's trust bundle verifies the SVIDs; while it is down, the last known bundle. */
  readonly minter: Pick<SvidMinter, 'trustBundlePem'>;
  readonly bundles?: Pick<BundleStore, 'lastKnown'>;
  readonly trustDomain: string;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** The URL proofs must name as `aud`; default: the URL the request was sent to. */
  readonly audience?: string;
}

const STATUS: Partial<Record<ErrorCode, 400 | 401 | 403 | 404 | 429 | 503>> = {
  ERR_INVALID_INPUT: 400,
  ERR_UNAUTHENTICATED: 401,
  ERR_FORBIDDEN: 403,
  ERR_NOT_APPROVED: 403,
  ERR_EXPIRED: 403,
  ERR_SVID_MISMATCH: 403,
  ERR_NOT_ISSUED: 403,
  ERR_NOT_FOUND: 404,
  ERR_RATE_LIMITED: 429,
  ERR_STORE_UNAVAILABLE: 503,
  ERR_ISSUER_UNAVAILABLE: 503,
};

export function awsRoutes(deps: AwsRoutesDeps): Hono {
  const app = new Hono();
  const clock = deps.clock ?? systemClock;
  // The bundle changes rarely (CA rotation overlaps old and new): asked at most every 30 s.
  let bundle: { pem: string; until: number } | undefined;
  const bundlePem = async (now: number) => {
    if (!bundle || now >= bundle.until) {
      const pem = await deps.minter.trustBundlePem().catch(async (e: unknown) => (await deps.bundles?.lastKnown().catch(() => undefined))?.pem ?? Promise.reject(e));
      bundle = { pem, until: now + 30_000 };
    }
    return bundle.pem;
  };

  app.post(AWS_CREDENTIALS_PATH, async (c) => {
    const noStore = { 'cache-control': 'no-store' };
    try {
      const auth = c.req.header('authorization') ?? '';
      const m = new RegExp(`^${POP_SCHEME} +([A-Za-z0-9_.-]+)$`).exec(auth.trim());
      if (!m) throw new AckdError('ERR_UNAUTHENTICATED', `send Authorization: ${POP_SCHEME} <proof signed with the SVID's key> (ackd aws credential-process makes one)`);
      const body = await readBody(c);
      const requestId = parseRequestId(body.request_id);
      if (typeof body.role !== 'string') throw new AckdError('ERR_INVALID_INPUT', 'role: must be the name of an AWS role', { field: 'role' });
      const now = clock.now();
      const aud = deps.audience ?? `${new URL(c.req.url).origin}${AWS_CREDENTIALS_PATH}`;
      const proof = await verifySvidProof(m[1]!, { bundlePem: await bundlePem(now.getTime()).catch((e: unknown) => Promise.reject(new AckdError('ERR_ISSUER_UNAVAILABLE', 'the trust bundle is unavailable; try again later', { cause: e }))), trustDomain: deps.trustDomain, aud, now });
      if (proof.requestId !== requestId || proof.role !== body.role) throw new AckdError('ERR_UNAUTHENTICATED', 'SVID proof: it was signed for another request_id or role than the body names');
      const creds = await deps.broker.issue({ presented: proof.presented, role: proof.role, jti: proof.jti, replayUntil: proof.replayUntil });
      return c.json({ Version: 1, AccessKeyId: creds.accessKeyId, SecretAccessKey: creds.secretAccessKey, SessionToken: creds.sessionToken, Expiration: creds.expiration.toISOString() }, 200, noStore);
    } catch (e) {
      const err = exposeError(e, (msg, detail) => deps.logger.error(msg, { route: AWS_CREDENTIALS_PATH, ...detail }));
      const status = STATUS[err.code] ?? 500;
      if (status < 500) deps.logger.warn('aws credentials refused', { code: err.code, reason: err.message });
      const headers: Record<string, string> = status === 401 ? { ...noStore, 'www-authenticate': POP_SCHEME } : noStore;
      return c.json({ error: isAckdError(err) ? err.toJSON() : { code: 'ERR_INTERNAL', message: 'internal error' } }, status, headers);
    }
  });
  return app;
}

/**
 * The AWS credentials function's whole app (lambdas/handlers/aws-credentials.ts): the broker's
 * route and the fallbacks every ackd app answers with. API Gateway routes /v1/aws/* here.
 */
export function awsCredentialsApp(deps: AwsRoutesDeps): Hono {
  return withFallbacks(new Hono().route('/', awsRoutes(deps)), deps.logger);
}

async function readBody(c: Context): Promise<{ request_id?: unknown; role?: unknown }> {
  const text = await c.req.text();
  if (text.length > 4096) throw new AckdError('ERR_INVALID_INPUT', 'body: must be a JSON object {request_id, role} of at most 4 KB');
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as { request_id?: unknown; role?: unknown };
  } catch {
    // refused below
  }
  throw new AckdError('ERR_INVALID_INPUT', 'body: must be a JSON object {request_id, role}');
}
