import type { Config } from './config.ts';
import { AckdError } from './core/errors.ts';
import type { SvidMinter } from './core/ports.ts';
import { remoteSpireMinterFromEnv } from '../spire/sidecar/client.ts';

/** The issuers of a Lambda function (ACKD_MINTER). */
export type IssuerKind = 'spire-remote';

/**
 * What `/healthz` says about the SVID issuer. Only `ready` is healthy (HTTP 200); every other state
 * answers 503. It never names a path, socket, host or port: `/healthz` is unauthenticated.
 *
 * ready: issuing · starting: first start, not healthy yet · restarting: the issuer exited unexpectedly
 * and is being started again (with backoff) · unresponsive: running, but its last readiness probe
 * failed · down: exited and nobody restarts it · stopped: shut down on purpose.
 */
export interface IssuerHealth {
  readonly kind: string;
  readonly state: 'ready' | 'starting' | 'restarting' | 'unresponsive' | 'down' | 'stopped';
  /** Automatic restarts since the issuer started. */
  readonly restarts?: number;
  /** How it last exited unexpectedly, e.g. "signal SIGKILL at 2026-01-01T00:00:00.000Z". */
  readonly last_exit?: string;
  /** When the next start attempt is due, while restarting. */
  readonly next_attempt_at?: string;
}

export interface HealthReport {
  readonly ok: boolean;
  readonly issuer?: IssuerHealth;
}

/** The `/healthz` body for an issuer's health (no issuer health known: the process is up, so ok). */
export function healthReport(issuer: IssuerHealth | undefined): HealthReport {
  return issuer === undefined ? { ok: true } : { ok: issuer.state === 'ready', issuer };
}

/**
 * The SVID issuer of a Lambda function (ACKD_MINTER): always SPIRE, through the bridge sidecar
 * (`spire-remote`, the default). Which issuer is used where, in one place: a Lambda function mints
 * through SPIRE only (here); the in-process CA is the local server's alone (spire/issuer.ts
 * `startIssuer`, local mode), so it is not even in a function's bundle and a deployment can never
 * issue from a CA without SPIRE.
 */
export function issuerFromConfig(config: Config, env: Record<string, string | undefined> = process.env): { kind: IssuerKind; minter: SvidMinter } {
  const kind = env.ACKD_MINTER?.trim() || 'spire-remote';
  switch (kind) {
    case 'spire-remote':
      // On AWS: SPIRE on Fargate through the bridge sidecar (spire/sidecar). ACKD_SPIRE_BRIDGE_URL +
      // ACKD_SPIRE_BRIDGE_SECRET_ARN (a plain ACKD_SPIRE_BRIDGE_SECRET only in local mode).
      // Its health is not reported on the public /healthz (see docs/spire.md, "Health"): ECS checks
      // spire-server and the bridge in their task and replaces it when either fails.
      return { kind, minter: remoteSpireMinterFromEnv(env, { local: config.local, region: config.region }) };
    case 'local-ca':
      throw new AckdError('ERR_CONFIG', 'ACKD_MINTER: local-ca is the local server\'s issuer (npm start); a Lambda function mints through SPIRE (spire-remote)', { field: 'ACKD_MINTER' });
    default:
      throw new AckdError('ERR_CONFIG', `ACKD_MINTER: unknown issuer "${kind}" (a Lambda function mints through SPIRE: spire-remote)`, { field: 'ACKD_MINTER' });
  }
}
