import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { AckdError } from '../../core/errors.ts';
import type { Clock } from '../../core/ports.ts';

/** A human who proved, with a verified Cognito token, that they are in the approvers group. */
export interface Approver {
  /** Cognito `sub`: recorded as approver_identity. */
  readonly sub: string;
  /** For display only. */
  readonly email: string | null;
  readonly username: string | null;
  readonly groups: readonly string[];
}

/** Port of the consent API: turns a bearer token into an approver or throws AckdError. */
export interface ApproverVerifier {
  /**
   * ERR_UNAUTHENTICATED: missing, malformed, unsigned/badly signed, wrong issuer/audience/use, expired.
   * ERR_FORBIDDEN: a valid user who is not in the approvers group.
   */
  verify(token: string | undefined): Promise<Approver>;
}

export interface CognitoVerifierOptions {
  /** `https://cognito-idp.<region>.amazonaws.com/<poolId>` on AWS; `http://127.0.0.1:<port>/<poolId>` with cognito-local. */
  readonly issuer: string;
  /** The pool's JWKS: `${issuer}/.well-known/jwks.json`. */
  readonly jwksUrl: string;
  /** The consent UI's app client id: the ID token's `aud`. */
  readonly clientId: string;
  readonly group?: string;
  /** Time is passed in (token expiry is judged against it). */
  readonly clock?: Clock;
  /** Key source override (tests of key rotation); defaults to the remote JWKS at `jwksUrl`. */
  readonly keys?: JWTVerifyGetKey;
  readonly clockToleranceSeconds?: number;
}

export const APPROVERS_GROUP = 'approvers';
const MAX_TOKEN = 8192;

/**
 * Verifies Cognito **ID tokens** (token_use=id, aud=client id) with jose against the pool's JWKS.
 * The same code runs against cognito-local and AWS: it is configured by issuer and JWKS URL, not
 * by region. ID tokens are what the consent UI holds for its own first-party API; they carry the
 * approver's email for display and the `cognito:groups` claim.
 */
export class CognitoVerifier implements ApproverVerifier {
  private readonly keys: JWTVerifyGetKey;
  private readonly group: string;

  constructor(private readonly opts: CognitoVerifierOptions) {
    this.keys = opts.keys ?? createRemoteJWKSet(new URL(opts.jwksUrl), { timeoutDuration: 5000, cooldownDuration: 30_000, cacheMaxAge: 600_000 });
    this.group = opts.group ?? APPROVERS_GROUP;
  }

  async verify(token: string | undefined): Promise<Approver> {
    if (!token) throw unauthenticated('a Cognito ID token is required');
    if (token.length > MAX_TOKEN || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)) {
      throw unauthenticated('the bearer credential is not a Cognito token');
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keys, {
        issuer: this.opts.issuer,
        audience: this.opts.clientId,
        algorithms: ['RS256'],
        requiredClaims: ['sub', 'exp', 'iat', 'token_use'],
        clockTolerance: this.opts.clockToleranceSeconds ?? 5,
        ...(this.opts.clock ? { currentDate: this.opts.clock.now() } : {}),
      }));
    } catch (e) {
      // Not being able to fetch the pool's keys is our failure, not the caller's: fail closed, say so.
      if (e instanceof joseErrors.JWKSTimeout || (e instanceof TypeError && /fetch/i.test(e.message))) {
        throw new AckdError('ERR_INTERNAL', 'could not fetch the user pool keys', { cause: e });
      }
      throw unauthenticated(reason(e), e);
    }
    if (payload.token_use !== 'id') throw unauthenticated('token_use must be "id"');
    if (typeof payload.sub !== 'string' || !payload.sub) throw unauthenticated('token has no subject');
    const groupsClaim = payload['cognito:groups'];
    const groups = Array.isArray(groupsClaim) ? groupsClaim.filter((g): g is string => typeof g === 'string') : [];
    if (!groups.includes(this.group)) {
      throw new AckdError('ERR_FORBIDDEN', `only members of the "${this.group}" group may review requests`);
    }
    const email = typeof payload.email === 'string' ? payload.email : null;
    const username = typeof payload['cognito:username'] === 'string' ? (payload['cognito:username'] as string) : null;
    return { sub: payload.sub, email, username, groups };
  }
}

function unauthenticated(message: string, cause?: unknown): AckdError {
  return new AckdError('ERR_UNAUTHENTICATED', message, cause === undefined ? undefined : { cause });
}

function reason(e: unknown): string {
  if (e instanceof joseErrors.JWTExpired) return 'token expired';
  if (e instanceof joseErrors.JWTClaimValidationFailed) return `token claim "${e.claim}" is not valid here`;
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return 'token signature is not valid';
  if (e instanceof joseErrors.JWKSNoMatchingKey) return 'token was not signed by this user pool';
  return 'token is not valid';
}
