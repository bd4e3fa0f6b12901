import { AckdError, invalid } from './errors.ts';

/**
 * The AWS roles an approval may open, and the rules that go with them. One source for every edge:
 * the deploy setting `awsRoles` (lib/config.ts), the functions' ACKD_AWS_ROLES, `npm start`, the
 * request-time check and the broker all parse the map and read the permission here.
 *
 * A permission `aws:role/<name>` names a role of the operator's map. The name is ackd's, not
 * IAM's: it keeps role ARNs (and accounts) out of what agents send and approvers read.
 */

/** AWS STS: the shortest session AssumeRole issues, and the longest a role may allow. */
export const STS_MIN_SESSION_SECONDS = 900;
export const STS_MAX_SESSION_SECONDS = 43_200;
/** The longest session ackd asks for when a role does not say (AssumeRole's own default). */
export const DEFAULT_MAX_SESSION_SECONDS = 3600;
/** STS limits an inline session policy to 2,048 characters (before packing). */
export const SESSION_POLICY_MAX = 2048;
/** Every approval that opens a role must last at least this long, or STS could not issue a session within it. */
export const AWS_MIN_TTL_MINUTES = STS_MIN_SESSION_SECONDS / 60;

export const AWS_ROLE_PERMISSION_PREFIX = 'aws:role/';

/** ackd's name for a role: the characters of an IAM role name that a permission may also carry (no comma), 1-64. */
const ROLE_NAME = /^[A-Za-z0-9+=.@_-]{1,64}$/;
/** An IAM role ARN (any partition; a path is allowed). */
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/(?:[A-Za-z0-9+=,.@_-]+\/)*[A-Za-z0-9+=,.@_-]{1,64}$/;

/** One role an approval may open. */
export interface AwsRole {
  /** ackd's name of the role (what `aws:role/<name>` names). */
  readonly name: string;
  readonly roleArn: string;
  /** The longest session ackd asks STS for (900-43,200 s; the role's own MaxSessionDuration must allow it). */
  readonly maxSessionSeconds: number;
  /** An inline session policy (JSON) that narrows every session further, or null. */
  readonly sessionPolicy: string | null;
}

export type AwsRoleMap = ReadonlyMap<string, AwsRole>;

/**
 * Parses the role map: a JSON object (or its text) of name → `{roleArn, maxSessionSeconds?,
 * sessionPolicy?}`, or name → role ARN as a string. `field` names the setting in errors
 * (ERR_CONFIG: it is configuration, refused at start).
 */
export function parseAwsRoles(value: unknown, field = 'ACKD_AWS_ROLES'): AwsRoleMap {
  const fail = (rule: string): never => {
    throw new AckdError('ERR_CONFIG', `${field}${rule}`, { field });
  };
  let parsed = value;
  if (value === undefined || value === null || value === '') return new Map();
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch {
      fail(': must be a JSON object of role name → {"roleArn": …, "maxSessionSeconds": …, "sessionPolicy": …}');
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) fail(': must be an object of role name → role');
  const out = new Map<string, AwsRole>();
  for (const [name, raw] of Object.entries(parsed as Record<string, unknown>)) {
    const at = `.${name}`;
    if (!ROLE_NAME.test(name)) fail(`: role name ${JSON.stringify(name)} must be 1-64 of A-Z a-z 0-9 + = . @ _ -`);
    const spec = typeof raw === 'string' ? { roleArn: raw } : raw;
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) fail(`${at}: must be a role ARN or {"roleArn": …}`);
    const o = spec as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!['roleArn', 'maxSessionSeconds', 'sessionPolicy'].includes(k)) fail(`${at}: unknown key ${JSON.stringify(k)} (allowed: roleArn, maxSessionSeconds, sessionPolicy)`);
    if (typeof o.roleArn !== 'string' || !ROLE_ARN.test(o.roleArn)) fail(`${at}.roleArn: must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)`);
    const max = o.maxSessionSeconds ?? DEFAULT_MAX_SESSION_SECONDS;
    if (typeof max !== 'number' || !Number.isInteger(max) || max < STS_MIN_SESSION_SECONDS || max > STS_MAX_SESSION_SECONDS) {
      fail(`${at}.maxSessionSeconds: must be an integer from ${STS_MIN_SESSION_SECONDS} to ${STS_MAX_SESSION_SECONDS}`);
    }
    let sessionPolicy: string | null = null;
    if (o.sessionPolicy !== undefined && o.sessionPolicy !== null) {
      const doc = typeof o.sessionPolicy === 'string' ? safeJson(o.sessionPolicy) : o.sessionPolicy;
      if (typeof doc !== 'object' || doc === null || Array.isArray(doc) || !('Statement' in doc)) fail(`${at}.sessionPolicy: must be an IAM policy document (an object with "Statement")`);
      sessionPolicy = JSON.stringify(doc);
      if (sessionPolicy.length > SESSION_POLICY_MAX) fail(`${at}.sessionPolicy: is ${sessionPolicy.length} characters as JSON; STS takes at most ${SESSION_POLICY_MAX}`);
    }
    out.set(name, { name, roleArn: o.roleArn as string, maxSessionSeconds: max as number, sessionPolicy });
  }
  return out;
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

/** The permission that opens `role`. */
export function awsRolePermission(role: string): string {
  return `${AWS_ROLE_PERMISSION_PREFIX}${role}`;
}

/** The role names a request's permissions ask for, in order, once each. */
export function awsRolesAsked(permissions: readonly string[]): string[] {
  const names = permissions.filter((p) => p.startsWith(AWS_ROLE_PERMISSION_PREFIX)).map((p) => p.slice(AWS_ROLE_PERMISSION_PREFIX.length));
  return [...new Set(names)];
}

/**
 * The request-time rule (AuthorizationService's `permissionRules`): every `aws:role/<name>` must
 * name a role of the map, and a request that asks for one must last at least AWS_MIN_TTL_MINUTES
 * (STS issues no session shorter than 900 s, and ackd never issues one that outlives its approval).
 * Refused with ERR_INVALID_INPUT naming the permission; nothing is stored.
 */
export function checkAwsRolePermissions(input: { readonly permissions: readonly string[]; readonly ttl_minutes: number }, roles: AwsRoleMap): void {
  let asks = false;
  input.permissions.forEach((p, i) => {
    if (!p.startsWith(AWS_ROLE_PERMISSION_PREFIX)) return;
    asks = true;
    const name = p.slice(AWS_ROLE_PERMISSION_PREFIX.length);
    if (roles.has(name)) return;
    const known = [...roles.keys()];
    const offer = known.length === 0 ? 'this ackd opens no AWS roles' : `known roles: ${known.join(', ')}`;
    throw invalid(`permissions[${i}]`, `${JSON.stringify(p)} names no AWS role this ackd may open (${offer})`);
  });
  if (asks && input.ttl_minutes < AWS_MIN_TTL_MINUTES) {
    throw invalid('ttl_minutes', `must be at least ${AWS_MIN_TTL_MINUTES} when an aws:role/ permission is asked: AWS STS issues sessions of at least ${STS_MIN_SESSION_SECONDS} seconds, and ackd never issues one that outlives the approval`);
  }
}

/**
 * How long a session may last: the role's maximum, cut to what is left of the approval (whole
 * seconds, rounded down). Less than STS's minimum left: ERR_EXPIRED, no session (ackd will not
 * issue credentials that outlive the approval).
 */
export function sessionSeconds(role: AwsRole, remainingMs: number): number {
  const left = Math.floor(remainingMs / 1000);
  if (left < STS_MIN_SESSION_SECONDS) {
    throw new AckdError(
      'ERR_EXPIRED',
      `only ${Math.max(0, left)} s of the approval remain; AWS STS issues sessions of at least ${STS_MIN_SESSION_SECONDS} s and ackd issues none that outlive the approval (ask while at least ${AWS_MIN_TTL_MINUTES} minutes of the approval remain, or request again)`,
    );
  }
  return Math.min(role.maxSessionSeconds, left);
}

/** The trust policy of a role ackd opens: only the broker may assume it, only with ackd's session tags. One source for the local emulator and the CDK stack. */
export function brokerTrustPolicy(brokerPrincipalArn: string): Record<string, unknown> {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'OnlyAckdBrokerWithSessionTags',
        Effect: 'Allow',
        Principal: { AWS: brokerPrincipalArn },
        Action: ['sts:AssumeRole', 'sts:TagSession'],
        Condition: {
          StringLike: { 'aws:RequestTag/ackd_request_id': 'req_*', 'aws:RequestTag/ackd_agent': '?*', 'aws:RequestTag/ackd_approver': '?*' },
        },
      },
    ],
  };
}
