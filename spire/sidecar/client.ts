/**
 * The Lambda side of the SPIRE bridge: an X509SvidSigner that talks HTTP to the bridge sidecar in
 * the SPIRE task (spire/sidecar/server.ts). Plug it into SpireSvidMinter exactly like the local
 * gRPC SpireClient: the key pair and CSR are made here, only the CSR travels.
 *
 * Failures map to domain errors: cannot reach / timeout / 5xx / refused authentication →
 * ERR_ISSUER_UNAVAILABLE (fail closed, a later check may retry); SPIRE said no → ERR_ISSUER_REFUSED;
 * bad input → ERR_INVALID_INPUT. Their messages are the fixed sentences of spire/bridge/errors.ts: the
 * bridge's URL, host and port, the bridge's own error text and AWS errors stay in the cause (logged).
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { AckdError } from '../../lambdas/core/errors.ts';
import { systemClock, type Clock } from '../../lambdas/core/ports.ts';
import type { MintedX509, SpireBundle } from '../bridge/client.ts';
import { describeError, issuerError, type IssuerErrorCode } from '../bridge/errors.ts';
import { SpireSvidMinter, type X509SvidSigner } from '../bridge/minter.ts';
import {
  BRIDGE_PATHS,
  MIN_SECRET_LENGTH,
  authHeaders,
  b64,
  type BundleResponseBody,
  type ErrorBody,
  type MintResponseBody,
} from './protocol.ts';

export interface RemoteSpireClientOptions {
  /** Base URL of the bridge, e.g. http://spire-bridge.ackd-prod.internal:8080 */
  readonly url: string;
  /** The HMAC key, or a function that loads it (called once, then cached). */
  readonly secret: string | (() => Promise<string>);
  /** Deadline of each call (default 5 s). */
  readonly timeoutMs?: number;
  readonly clock?: Clock;
  /** For tests: a fetch implementation (default: global fetch). */
  readonly fetch?: typeof fetch;
}

export class RemoteSpireClient implements X509SvidSigner {
  private readonly base: string;
  private readonly where: string;
  private readonly timeoutMs: number;
  private readonly clock: Clock;
  private readonly fetchImpl: typeof fetch;
  private secretPromise: Promise<string> | undefined;

  constructor(private readonly opts: RemoteSpireClientOptions) {
    let u: URL;
    try {
      u = new URL(opts.url);
    } catch {
      throw new AckdError('ERR_CONFIG', 'ACKD_SPIRE_BRIDGE_URL: must be an absolute URL', { field: 'ACKD_SPIRE_BRIDGE_URL' });
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new AckdError('ERR_CONFIG', 'ACKD_SPIRE_BRIDGE_URL: must be an http(s) URL', { field: 'ACKD_SPIRE_BRIDGE_URL' });
    }
    this.base = opts.url.replace(/\/+$/, '');
    // For logs: the bridge's address without any user:password a URL might carry.
    this.where = `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.clock = opts.clock ?? systemClock;
    this.fetchImpl = opts.fetch ?? fetch;
  }

  async mintX509Svid(csrDer: Uint8Array, ttlSeconds: number): Promise<MintedX509> {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
      throw new AckdError('ERR_INVALID_INPUT', 'ttl: must be a positive whole number of seconds', { field: 'ttl' });
    }
    const res = await this.call<MintResponseBody>('POST', BRIDGE_PATHS.mint, { csr: b64.encode(csrDer), ttl: ttlSeconds });
    if (!Array.isArray(res.cert_chain) || res.cert_chain.length === 0 || typeof res.spiffe_id !== 'string' || typeof res.expires_at !== 'number') {
      throw issuerError('ERR_ISSUER_UNAVAILABLE', 'SPIRE bridge returned a malformed SVID response');
    }
    return { certChain: res.cert_chain.map(b64.decode), spiffeId: res.spiffe_id, expiresAt: new Date(res.expires_at * 1000) };
  }

  async getBundle(): Promise<SpireBundle> {
    const b = await this.call<BundleResponseBody>('GET', BRIDGE_PATHS.bundle);
    if (!Array.isArray(b.x509_authorities) || b.x509_authorities.length === 0) {
      throw issuerError('ERR_ISSUER_UNAVAILABLE', 'SPIRE bridge returned an empty trust bundle');
    }
    return {
      trustDomain: b.trust_domain,
      x509Authorities: b.x509_authorities.map(b64.decode),
      refreshHintSeconds: b.refresh_hint,
      sequenceNumber: b.sequence_number,
    };
  }

  private async send(method: 'GET' | 'POST', path: string, body?: unknown): Promise<Response> {
    let secret: string;
    try {
      secret = await this.secret();
    } catch (e) {
      throw issuerError('ERR_ISSUER_UNAVAILABLE', `SPIRE bridge secret could not be loaded: ${describeError(e)}`, { cause: e });
    }
    const bytes = body === undefined ? new Uint8Array() : new TextEncoder().encode(JSON.stringify(body));
    const headers: Record<string, string> = { ...authHeaders(secret, method, path, bytes, this.clock.now().getTime()), accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    try {
      return await this.fetchImpl(this.base + path, {
        method,
        headers,
        ...(body === undefined ? {} : { body: bytes }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      throw issuerError('ERR_ISSUER_UNAVAILABLE', `SPIRE bridge ${method} ${this.where}${path} unreachable: ${describeError(e)}`, { cause: e });
    }
  }

  private secret(): Promise<string> {
    if (!this.secretPromise) {
      const s = this.opts.secret;
      this.secretPromise = (typeof s === 'string' ? Promise.resolve(s) : s()).then((v) => {
        if (v.length < MIN_SECRET_LENGTH) throw new AckdError('ERR_CONFIG', `SPIRE bridge secret must be at least ${MIN_SECRET_LENGTH} characters`);
        return v;
      });
      // A failed load is not cached: the next call tries again.
      this.secretPromise.catch(() => (this.secretPromise = undefined));
    }
    return this.secretPromise;
  }

  private async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    let res = await this.send(method, path, body);
    // A refused signature may mean the key was rotated: load it again once (a loaded key only).
    if (res.status === 401 && typeof this.opts.secret !== 'string') {
      this.secretPromise = undefined;
      res = await this.send(method, path, body);
    }
    let json: unknown;
    try {
      json = await res.json();
    } catch (e) {
      throw issuerError('ERR_ISSUER_UNAVAILABLE', `SPIRE bridge ${method} ${this.where}${path} answered ${res.status} without JSON`, { cause: e });
    }
    if (res.ok) return json as T;
    const err = (json as Partial<ErrorBody> | null)?.error;
    // What the bridge says is not shown to callers as is: it is the detail (logged) of a fixed message.
    const detail = `SPIRE bridge ${method} ${this.where}${path}: ${res.status} ${String(err?.code ?? '')} ${String(err?.message ?? '')}`.trim();
    const code: IssuerErrorCode =
      res.status === 422 ? 'ERR_ISSUER_REFUSED' : res.status === 400 && err?.code === 'ERR_INVALID_INPUT' ? 'ERR_INVALID_INPUT' : 'ERR_ISSUER_UNAVAILABLE';
    const field = code === 'ERR_INVALID_INPUT' && (err?.field === 'csr' || err?.field === 'ttl') ? err.field : undefined;
    throw issuerError(code, detail, field === undefined ? {} : { field });
  }
}

/** Loads a secret string from Secrets Manager (the Lambda's role may read only that one secret). */
export function secretsManagerSecret(secretArn: string, region?: string): () => Promise<string> {
  return async () => {
    const sm = new SecretsManagerClient(region ? { region } : {});
    const out = await sm.send(new GetSecretValueCommand({ SecretId: secretArn }));
    if (!out.SecretString) throw new AckdError('ERR_CONFIG', 'SPIRE bridge secret has no string value');
    return out.SecretString;
  };
}

/**
 * The SvidMinter for ACKD_MINTER=spire-remote: SpireSvidMinter over the bridge, configured by
 * ACKD_SPIRE_BRIDGE_URL and ACKD_SPIRE_BRIDGE_SECRET_ARN (or, for tests and local use only,
 * ACKD_SPIRE_BRIDGE_SECRET).
 */
export function remoteSpireMinterFromEnv(
  env: Record<string, string | undefined>,
  opts: { clock?: Clock; local?: boolean; region?: string } = {},
): SpireSvidMinter {
  const url = env.ACKD_SPIRE_BRIDGE_URL?.trim();
  if (!url) throw new AckdError('ERR_CONFIG', 'ACKD_SPIRE_BRIDGE_URL: is required for ACKD_MINTER=spire-remote', { field: 'ACKD_SPIRE_BRIDGE_URL' });
  const arn = env.ACKD_SPIRE_BRIDGE_SECRET_ARN?.trim();
  const plain = env.ACKD_SPIRE_BRIDGE_SECRET;
  let secret: RemoteSpireClientOptions['secret'];
  if (arn) secret = secretsManagerSecret(arn, opts.region);
  else if (plain && opts.local) secret = plain;
  else {
    throw new AckdError(
      'ERR_CONFIG',
      'ACKD_SPIRE_BRIDGE_SECRET_ARN: is required for ACKD_MINTER=spire-remote (ACKD_SPIRE_BRIDGE_SECRET is accepted only in local mode)',
      { field: 'ACKD_SPIRE_BRIDGE_SECRET_ARN' },
    );
  }
  const clock = opts.clock ?? systemClock;
  const client = new RemoteSpireClient({ url, secret, clock });
  return new SpireSvidMinter(client, { clock });
}
