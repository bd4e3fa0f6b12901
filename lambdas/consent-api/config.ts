import { AckdError } from '../core/errors.ts';
import { optional, required, url } from '../config.ts';
import { parseApproverRouting, parseEmail, type ApproverRouting } from '../adapters/ses/notifier.ts';

type Env = Record<string, string | undefined>;

/**
 * Configuration of the human side, parsed once at start (documented in docs/consent.md):
 *
 * | variable | meaning |
 * |---|---|
 * | ACKD_COGNITO_ISSUER | token issuer: `https://cognito-idp.<region>.amazonaws.com/<pool id>` (cognito-local: `http://127.0.0.1:<port>/<pool id>`) |
 * | ACKD_COGNITO_JWKS_URL | the pool's JWKS (default `<issuer>/.well-known/jwks.json`) |
 * | ACKD_COGNITO_CLIENT_ID | the consent UI's app client (the ID token's `aud`) |
 * | ACKD_COGNITO_USER_POOL_ID | the pool (approver management) |
 * | ACKD_COGNITO_DOMAIN | managed-login base URL (`https://<prefix>.auth.<region>.amazoncognito.com`) |
 * | ACKD_COGNITO_ENDPOINT | local only: Cognito API endpoint override (cognito-local) |
 * | ACKD_CONSENT_ALLOWED_ORIGINS | extra origins allowed to call /api cross-origin (comma separated; default none) |
 * | ACKD_SENDER | consent email sender (an SES-verified identity) |
 * | ACKD_APPROVERS | default approver emails, comma separated |
 * | ACKD_APPROVER_ROUTES | per-agent approvers, JSON `{"agent_id": ["a@example.com"]}` |
 * | ACKD_SES_ENDPOINT | local only: SES endpoint override (aws-ses-v2-local) |
 * | ACKD_SES_CONFIGURATION_SET | optional SES configuration set |
 */
export interface CognitoConfig {
  readonly issuer: string;
  readonly jwksUrl: string;
  readonly clientId: string;
  readonly userPoolId: string | undefined;
  readonly domain: string | undefined;
  readonly endpoint: string | undefined;
  readonly allowedOrigins: readonly string[];
}

export interface MailConfig {
  readonly sender: string;
  readonly routing: ApproverRouting;
  readonly sesEndpoint: string | undefined;
  readonly configurationSetName: string | undefined;
}

function fail(name: string, rule: string): never {
  throw new AckdError('ERR_CONFIG', `${name}: ${rule}`, { field: name });
}

function localOnly(env: Env, name: string, local: boolean): string | undefined {
  const v = optional(env, name);
  if (v && !local) fail(name, 'is for local mode only (ACKD_STAGE=local)');
  return v ? url(env, name, true) : undefined;
}

/** For the consent API: how to verify approvers' tokens. */
export function loadCognitoConfig(env: Env, local: boolean): CognitoConfig {
  const issuer = url(env, 'ACKD_COGNITO_ISSUER', local);
  const jwksUrl = url(env, 'ACKD_COGNITO_JWKS_URL', local, `${issuer}/.well-known/jwks.json`);
  const clientId = required(env, 'ACKD_COGNITO_CLIENT_ID');
  if (!/^[\w+]{1,128}$/.test(clientId)) fail('ACKD_COGNITO_CLIENT_ID', 'must be a Cognito app client id');
  const allowedOrigins = (optional(env, 'ACKD_CONSENT_ALLOWED_ORIGINS') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((o) => {
      let u: URL;
      try {
        u = new URL(o);
      } catch {
        fail('ACKD_CONSENT_ALLOWED_ORIGINS', `"${o}" is not an origin`);
      }
      if (u.origin !== o || (u.protocol !== 'https:' && !local)) fail('ACKD_CONSENT_ALLOWED_ORIGINS', `"${o}" must be an https origin (scheme://host[:port])`);
      return o;
    });
  return {
    issuer,
    jwksUrl,
    clientId,
    userPoolId: optional(env, 'ACKD_COGNITO_USER_POOL_ID'),
    domain: optional(env, 'ACKD_COGNITO_DOMAIN') ? url(env, 'ACKD_COGNITO_DOMAIN', local) : undefined,
    endpoint: localOnly(env, 'ACKD_COGNITO_ENDPOINT', local),
    allowedOrigins,
  };
}

/** For the functions that create requests (MCP) and retry mail (sweeper). Undefined when mail is off (local only). */
export function loadMailConfig(env: Env, local: boolean): MailConfig | undefined {
  const sender = optional(env, 'ACKD_SENDER');
  if (!sender) {
    if (local) return undefined;
    fail('ACKD_SENDER', 'is required (an SES-verified sender address)');
  }
  const addr = /<([^>]+)>\s*$/.exec(sender)?.[1] ?? sender;
  parseEmail(addr, 'ACKD_SENDER');
  if (/[\r\n]/.test(sender)) fail('ACKD_SENDER', 'must be one line');
  const routing = parseApproverRouting(optional(env, 'ACKD_APPROVERS'), optional(env, 'ACKD_APPROVER_ROUTES'));
  if (routing.defaultApprovers.length === 0 && Object.keys(routing.routes).length === 0) {
    fail('ACKD_APPROVERS', 'at least one approver email is required (or ACKD_APPROVER_ROUTES)');
  }
  return { sender, routing, sesEndpoint: localOnly(env, 'ACKD_SES_ENDPOINT', local), configurationSetName: optional(env, 'ACKD_SES_CONFIGURATION_SET') };
}
