/**
 * Deploy configuration of the ackd CDK app: one typed place, parsed once, refusing missing or
 * insecure values with a message that names the setting.
 *
 * Every setting can come from CDK context (`-c ackd:trustDomain=example.com`, or the `context`
 * block of cdk.json / cdk.context.json) or from an environment variable (`ACKD_DEPLOY_TRUST_DOMAIN`).
 * Context wins over the environment. README.md ("Deploy on AWS") lists every setting.
 */

import { LIMIT_RANGES, type LimitsConfig } from '../lambdas/core/limits.ts';
import { parseRoutes, routeSecretArns, type RoutesConfig } from '../lambdas/adapters/channels/config.ts';
import { AckdError } from '../lambdas/core/errors.ts';
import { parseAwsRoles, type AwsRoleMap } from '../lambdas/core/aws-roles.ts';

export interface DeployConfig {
  /** Deployment stage: names resources (`Ackd-<stage>`) and picks defaults. Not "local". */
  readonly stage: string;
  /** True for the stage "prod": retains data on stack deletion, two NAT gateways. */
  readonly production: boolean;
  /** SPIFFE trust domain of the SVIDs ackd issues. */
  readonly trustDomain: string;
  /** Default approvers: receive every consent email unless a route names others. */
  readonly approverEmails: readonly string[];
  /** Per-agent approver routing: agent_id → emails. */
  readonly approverRoutes: Readonly<Record<string, readonly string[]>>;
  /** The SES identity to create: an email address or a domain. */
  readonly senderIdentity: { readonly kind: 'email' | 'domain'; readonly value: string };
  /** The From address of consent emails (the email itself, or `ackd@<domain>`). */
  readonly senderAddress: string;
  /** Days an authorization record is kept (DynamoDB TTL). */
  readonly retentionDays: number;
  /** Cognito managed-login domain prefix (globally unique per region). */
  readonly cognitoDomainPrefix: string | undefined;
  /** Optional custom domain for the consent UI (CloudFront), with an ACM certificate in us-east-1. */
  readonly consentDomain: { readonly name: string; readonly certificateArn: string } | undefined;
  /** NAT gateways (or instances) of the VPC (Lambda → AWS APIs, Fargate → image registry): one per AZ used, up to 2. */
  readonly natGateways: number;
  /** What does the NAT: managed NAT gateways, or NAT instances (cheaper, yours to keep running; docs/operations.md, "Cost at idle"). */
  readonly natProvider: 'gateway' | 'instance';
  /** The EC2 instance type of NAT instances (natProvider instance); a Graviton type by default. */
  readonly natInstanceType: string;
  /** SPIRE servers: 1 (SQLite on EFS, one task) or 2 (HA: two tasks on a shared Aurora PostgreSQL datastore). */
  readonly spireServers: 1 | 2;
  /** The SPIRE server image; the version the project tests against, pinned by digest (required in prod). */
  readonly spireServerImage: string;
  /**
   * An existing KMS key (ECC_NIST_P256, SIGN_VERIFY, in the stack's region) that signs audit
   * checkpoints, e.g. the key a deleted stack left behind; undefined: the stack creates one.
   */
  readonly auditKeyArn: string | undefined;
  /**
   * An existing KMS key (ECC_NIST_P256, SIGN_VERIFY, in the stack's region) that signs decisions
   * (the consent function signs, the MCP function reads its public key); undefined: the stack creates one.
   */
  readonly decisionKeyArn: string | undefined;
  /** An existing KMS key (ECC_NIST_P256, SIGN_VERIFY, in the stack's region) that signs approval receipts (the MCP function); undefined: the stack creates one. */
  readonly receiptKeyArn: string | undefined;
  /**
   * Flood limits the functions enforce (lambdas/core/limits.ts), only those set: the others keep
   * the functions' defaults (DEFAULT_LIMITS). Each within LIMIT_RANGES.
   */
  readonly limits: Partial<LimitsConfig>;
  /**
   * Notification routes (ACKD_ROUTES of lambdas/adapters/channels/config.ts): undefined when none
   * are configured. Secrets only by Secrets Manager ARN (the stack sets no other environment).
   */
  readonly routes: DeployRoutes | undefined;
  /** API Gateway throttle of the MCP routes (`$default`: /mcp, /healthz, the trust bundle): agents. */
  readonly mcpThrottle: ThrottleConfig;
  /** API Gateway throttle of the consent API route (`ANY /api/{proxy+}`): approvers. Its own bucket, so agents cannot use it up. */
  readonly consentThrottle: ThrottleConfig;
  /** Reserved concurrency of each function (the sweeper's is always SWEEPER_RESERVED_CONCURRENCY). */
  readonly reservedConcurrency: ReservedConcurrencyConfig;
  /** Who gets the CloudWatch alarms (email subscriptions of the alarm topic); empty: nobody until someone subscribes. */
  readonly alarmEmails: readonly string[];
  /** How long the audit sequencer's stream trigger gathers records before invoking the sweeper (seconds, 0-10). */
  readonly sequencerBatchWindowSeconds: number;
  /** The audit sequencer alarms when an event has waited this long to be sequenced (AuditSequencerLagMs, milliseconds). */
  readonly sequencerLagAlarmMs: number;
  /** Base image of the SPIRE bridge sidecar (pinned by digest; lib/constructs/sidecar-image.ts). */
  readonly sidecarBaseImage: string;
  /** Years each daily audit archive is locked (S3 Object Lock, compliance mode; lib/constructs/archive.ts). */
  readonly archiveRetentionYears: number;
  /** Optional custom domain of the MCP endpoint (HTTP API custom domain, TLS 1.2; lib/constructs/domain.ts). */
  readonly customDomain: CustomDomainConfig | undefined;
  /** The AWS roles an approval may open (issue 17): name → role; empty: no broker. */
  readonly awsRoles?: AwsRoleMap;
  /** ACKD_PASSKEY_REQUIRED of every function: all | payload | none. */
  readonly passkeyRequired: 'all' | 'payload' | 'none';
}

export interface CustomDomainConfig {
  /** The MCP endpoint's host name, e.g. ackd.acme-corp.io. */
  readonly name: string;
  /** An ACM certificate in the stack's region covering `name`; without it the stack requests one (DNS-validated in hostedZoneId). */
  readonly certificateArn: string | undefined;
  /** A Route 53 public hosted zone of `name`'s domain: the stack adds the alias record (and validates its certificate there). */
  readonly hostedZoneId: string | undefined;
}

/** An API Gateway token bucket: steady requests per second and the burst on top. */
export interface ThrottleConfig {
  readonly rateLimit: number;
  readonly burstLimit: number;
}

/** Reserved concurrent executions of the request-serving functions. */
export interface ReservedConcurrencyConfig {
  readonly mcp: number;
  readonly consent: number;
  readonly auditExport: number;
  /** The AWS credential broker's function (only with awsRoles). */
  readonly awsCredentials: number;
}

/** Agents: 50 requests per second, bursts of 100 (what the single stage throttle allowed before). */
export const DEFAULT_MCP_THROTTLE: ThrottleConfig = { rateLimit: 50, burstLimit: 100 };
/** Approvers: people clicking in the consent UI, 20 per second with bursts of 40, never shared with agents. */
export const DEFAULT_CONSENT_THROTTLE: ThrottleConfig = { rateLimit: 20, burstLimit: 40 };
/** rateLimit and burstLimit ranges: up to API Gateway's default account quotas (10,000 rps, burst 5,000). */
export const THROTTLE_RANGES = { rateLimit: [1, 10000], burstLimit: [1, 5000] } as const satisfies Record<keyof ThrottleConfig, readonly [number, number]>;
/**
 * Reserved concurrency: the MCP function (long-polls hold an execution up to 25 s) may take at
 * most 200 executions, so it can never starve the consent function (20 reserved for it alone), the
 * audit export (5: exports are occasional and long) or the sweeper; 226 in all, leaving 774 of the
 * default account quota of 1,000 (Lambda requires 100 to stay unreserved). With awsRoles, the AWS
 * credentials function (one short call per credential_process run) gets 10 more: 236.
 */
export const DEFAULT_RESERVED_CONCURRENCY: ReservedConcurrencyConfig = { mcp: 200, consent: 20, auditExport: 5, awsCredentials: 10 };
export const RESERVED_CONCURRENCY_RANGE = [1, 10000] as const;
/** The sweeper runs one at a time: two sweeps would sign audit checkpoints concurrently. Not configurable. */
export const SWEEPER_RESERVED_CONCURRENCY = 1;

/** The audit sequencer's stream batching window: default 1 s, at most 10 s (events wait at most this long for a batch). */
export const DEFAULT_SEQUENCER_BATCH_WINDOW_SECONDS = 1;
export const SEQUENCER_BATCH_WINDOW_RANGE = [0, 10] as const;
/** AuditSequencerLagMs above this (2 minutes) alarms: events are not being sequenced and checkpointed. */
export const DEFAULT_SEQUENCER_LAG_ALARM_MS = 120_000;
/** 10 s (a few stream batches) to a day. */
export const SEQUENCER_LAG_ALARM_RANGE = [10_000, 86_400_000] as const;

export interface DeployRoutes {
  /** ACKD_ROUTES as the notifying function (the sweeper) receives it (compact JSON). */
  readonly json: string;
  /** Every secret the routes name: the notifying function may read exactly these. */
  readonly secretArns: readonly string[];
}

/**
 * The most ACKD_ROUTES may take: every environment variable of a function together is limited to
 * 4 KB by Lambda, and the other settings need some of it.
 */
export const ROUTES_MAX_CHARS = 2048;

/** The SPIRE server version ackd is tested against (spire/ builds the same version locally). */
export const SPIRE_VERSION = '1.15.3';
/**
 * Images are referenced by digest: a tag can be moved to other bytes, a digest cannot, so a
 * redeploy (or ECS replacing a task) runs exactly the image that was reviewed. The tag is kept
 * for readers; the registry resolves the digest. Update both together (docs/spire.md, "Upgrading SPIRE").
 */
export const DEFAULT_SPIRE_IMAGE = `ghcr.io/spiffe/spire-server:${SPIRE_VERSION}@sha256:4082f30d3e0ddc4000a171392c4ea174345ee44d161ee917c70b97b2ecfba141`;
/** Node 22 LTS on Alpine (the ECR Public mirror of the Docker Official Image), pinned by digest. */
export const DEFAULT_SIDECAR_BASE_IMAGE = 'public.ecr.aws/docker/library/node:22-alpine@sha256:8094c002d08262dba12645a3b4a15cd6cd627d30bc782f53229a2ec13ee22a00';
/** Years an archived day stays locked: HIPAA's six-year documentation retention in prod, one year elsewhere. */
export const DEFAULT_ARCHIVE_RETENTION_YEARS = { production: 6, other: 1 } as const;
export const ARCHIVE_RETENTION_YEARS_RANGE = [1, 100] as const;

/** NAT instance type by default: the smallest Graviton burstable (2 vCPU, 0.5 GiB, up to 5 Gbit/s), ample for ackd's egress. */
export const DEFAULT_NAT_INSTANCE_TYPE = 't4g.nano';

/** Every setting: its context key, its environment variable, and what it means. */
export const SETTINGS = {
  stage: { env: 'ACKD_DEPLOY_STAGE', doc: 'deployment stage, e.g. dev or prod (lowercase, digits, dashes; not "local")' },
  trustDomain: { env: 'ACKD_DEPLOY_TRUST_DOMAIN', doc: 'SPIFFE trust domain, e.g. agents.example.com' },
  approverEmails: { env: 'ACKD_DEPLOY_APPROVER_EMAILS', doc: 'comma-separated default approver emails' },
  approverRoutes: { env: 'ACKD_DEPLOY_APPROVER_ROUTES', doc: 'JSON object agent_id → [emails] (optional)' },
  sender: { env: 'ACKD_DEPLOY_SENDER', doc: 'SES identity: an email address or a domain you control' },
  retentionDays: { env: 'ACKD_DEPLOY_RETENTION_DAYS', doc: 'days records are kept, 1-3650 (default 365)' },
  cognitoDomainPrefix: { env: 'ACKD_DEPLOY_COGNITO_DOMAIN_PREFIX', doc: 'Cognito login domain prefix (default ackd-<stage>-<account>)' },
  consentDomainName: { env: 'ACKD_DEPLOY_CONSENT_DOMAIN_NAME', doc: 'custom domain of the consent UI (optional)' },
  consentCertificateArn: { env: 'ACKD_DEPLOY_CONSENT_CERTIFICATE_ARN', doc: 'ACM certificate (us-east-1) for that domain' },
  natGateways: { env: 'ACKD_DEPLOY_NAT_GATEWAYS', doc: 'NAT gateways (or NAT instances), 1-3 (default 2 in prod, 1 elsewhere)' },
  natProvider: { env: 'ACKD_DEPLOY_NAT_PROVIDER', doc: 'gateway (managed NAT gateways, default) or instance (EC2 NAT instances: about $29 a month less each, patched by redeploying)' },
  natInstanceType: { env: 'ACKD_DEPLOY_NAT_INSTANCE_TYPE', doc: `EC2 instance type of the NAT instances with natProvider instance (default ${DEFAULT_NAT_INSTANCE_TYPE})` },
  spireServers: { env: 'ACKD_DEPLOY_SPIRE_SERVERS', doc: '1 (one SPIRE task, SQLite on EFS; default) or 2 (HA: two tasks in two AZs sharing an Aurora PostgreSQL Serverless v2 datastore; docs/spire.md, "Availability")' },
  spireServerImage: { env: 'ACKD_DEPLOY_SPIRE_SERVER_IMAGE', doc: `SPIRE server image, by digest in prod (default ${DEFAULT_SPIRE_IMAGE})` },
  auditKeyArn: { env: 'ACKD_DEPLOY_AUDIT_KEY_ARN', doc: 'existing KMS key ARN (ECC_NIST_P256, SIGN_VERIFY) for audit checkpoints (default: the stack creates one)' },
  decisionKeyArn: { env: 'ACKD_DEPLOY_DECISION_KEY_ARN', doc: 'existing KMS key ARN (ECC_NIST_P256, SIGN_VERIFY) that signs decisions (default: the stack creates one; its key policy is yours: docs/aws.md)' },
  receiptKeyArn: { env: 'ACKD_DEPLOY_RECEIPT_KEY_ARN', doc: 'existing KMS key ARN (ECC_NIST_P256, SIGN_VERIFY) that signs approval receipts (default: the stack creates one; its key policy is yours: docs/aws.md)' },
  limits: { env: 'ACKD_DEPLOY_LIMITS', doc: 'JSON object of flood limits, any of requestsPerMinute, openPending, concurrentWaits, mailsPerApprover, mailWindowMinutes, refusalsPerRequest, refusalsPerAgentPerHour, toolCallsPerMinute (default: the functions\' defaults)' },
  routes: {
    env: 'ACKD_DEPLOY_ROUTES',
    doc: 'JSON object of notification routes, route → {email, webhooks, slack} (ACKD_ROUTES); webhook secrets and Slack URLs by Secrets Manager ARN only (secret_arn, url_secret_arn: the complete ARN; a secret encrypted with your own KMS key also needs kms:Decrypt granted by its key policy) (optional)',
  },
  mcpThrottle: {
    env: 'ACKD_DEPLOY_MCP_THROTTLE',
    doc: `JSON object {rateLimit, burstLimit} of the MCP routes (agents) (default ${JSON.stringify(DEFAULT_MCP_THROTTLE)})`,
  },
  consentThrottle: {
    env: 'ACKD_DEPLOY_CONSENT_THROTTLE',
    doc: `JSON object {rateLimit, burstLimit} of the consent API routes (approvers) (default ${JSON.stringify(DEFAULT_CONSENT_THROTTLE)})`,
  },
  reservedConcurrency: {
    env: 'ACKD_DEPLOY_RESERVED_CONCURRENCY',
    doc: `JSON object of reserved concurrency, any of mcp, consent, auditExport, awsCredentials (default ${JSON.stringify(DEFAULT_RESERVED_CONCURRENCY)}; awsCredentials only with awsRoles; the sweeper's is always 1)`,
  },
  alarmEmails: { env: 'ACKD_DEPLOY_ALARM_EMAILS', doc: 'comma-separated emails subscribed to the CloudWatch alarm topic (optional; each must confirm the subscription mail)' },
  sequencerBatchWindowSeconds: {
    env: 'ACKD_DEPLOY_SEQUENCER_BATCH_WINDOW_SECONDS',
    doc: `seconds the audit sequencer's stream trigger gathers events per batch, ${SEQUENCER_BATCH_WINDOW_RANGE[0]}-${SEQUENCER_BATCH_WINDOW_RANGE[1]} (default ${DEFAULT_SEQUENCER_BATCH_WINDOW_SECONDS})`,
  },
  sequencerLagAlarmMs: {
    env: 'ACKD_DEPLOY_SEQUENCER_LAG_ALARM_MS',
    doc: `milliseconds an audit event may wait to be sequenced before the lag alarm fires, ${SEQUENCER_LAG_ALARM_RANGE[0]}-${SEQUENCER_LAG_ALARM_RANGE[1]} (default ${DEFAULT_SEQUENCER_LAG_ALARM_MS})`,
  },
  sidecarBaseImage: { env: 'ACKD_DEPLOY_SIDECAR_BASE_IMAGE', doc: `base image of the SPIRE bridge sidecar, by digest in prod (default ${DEFAULT_SIDECAR_BASE_IMAGE})` },
  archiveRetentionYears: {
    env: 'ACKD_DEPLOY_ARCHIVE_RETENTION_YEARS',
    doc: `years each daily audit archive is locked in S3 (Object Lock, compliance mode: nobody can delete it sooner), ${ARCHIVE_RETENTION_YEARS_RANGE[0]}-${ARCHIVE_RETENTION_YEARS_RANGE[1]} (default ${DEFAULT_ARCHIVE_RETENTION_YEARS.production} in prod, ${DEFAULT_ARCHIVE_RETENTION_YEARS.other} elsewhere)`,
  },
  customDomain: {
    env: 'ACKD_DEPLOY_CUSTOM_DOMAIN',
    doc: 'JSON object {name, certificateArn?, hostedZoneId?}: a stable host name for the MCP endpoint (certificate in the stack\'s region; without certificateArn, hostedZoneId is required to validate a new one) (optional)',
  },
  passkeyRequired: {
    env: 'ACKD_DEPLOY_PASSKEY_REQUIRED',
    doc: 'which decisions must be signed with the approver\'s passkey besides what policies say: all, payload (requests with a payload) or none (default none); set as ACKD_PASSKEY_REQUIRED on every function',
  },
  awsRoles: {
    env: 'ACKD_DEPLOY_AWS_ROLES',
    doc: 'JSON object of the AWS roles an approval may open: name → role ARN, or {roleArn, maxSessionSeconds (900-43200, default 3600), sessionPolicy}; permission aws:role/<name> (optional; docs/aws.md)',
  },
} as const;

export type SettingName = keyof typeof SETTINGS;

/** Where settings are read from: CDK context (`ackd:<name>`) and the environment. */
export interface ConfigSource {
  context(key: string): unknown;
  env: Record<string, string | undefined>;
}

export class DeployConfigError extends Error {
  override readonly name = 'DeployConfigError';
  constructor(
    readonly setting: SettingName,
    rule: string,
  ) {
    super(
      `ackd deploy config: ${setting} (context "ackd:${setting}" or env ${SETTINGS[setting].env}) ${rule}. ` +
        `See README.md ("Deploy on AWS", "2. Configure").`,
    );
  }
}

const EMAIL = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;
const DOMAIN = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/;
const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;
const AGENT_ID = /^[A-Za-z0-9._-]{1,64}$/;
/** A KMS key ARN (not an alias: IAM scopes kms:Sign to the key itself). */
const KMS_KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:key\/(?:mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;
/** Names reserved for documentation/testing (RFC 2606 / 6761): never a real deployment. */
const PLACEHOLDER_DOMAINS = /(^|\.)(example\.(com|org|net)|example|test|invalid|localhost|local)$/;

function raw(src: ConfigSource, name: SettingName): unknown {
  const c = src.context(`ackd:${name}`);
  if (c !== undefined && c !== null && c !== '') return c;
  const e = src.env[SETTINGS[name].env]?.trim();
  return e ? e : undefined;
}

function str(src: ConfigSource, name: SettingName): string | undefined {
  const v = raw(src, name);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new DeployConfigError(name, 'must be a string');
  return v.trim();
}

function req(src: ConfigSource, name: SettingName): string {
  const v = str(src, name);
  if (!v) throw new DeployConfigError(name, 'is required');
  return v;
}

function emailList(name: SettingName, v: unknown): string[] {
  const items = Array.isArray(v) ? v : typeof v === 'string' ? v.split(',') : undefined;
  if (!items) throw new DeployConfigError(name, 'must be a comma-separated list of emails');
  const out = items.map((x) => (typeof x === 'string' ? x.trim() : '')).filter((x) => x !== '');
  if (out.length === 0) throw new DeployConfigError(name, 'must name at least one approver email');
  for (const e of out) if (!EMAIL.test(e)) throw new DeployConfigError(name, `contains an invalid email address "${e}"`);
  return [...new Set(out.map((e) => e.toLowerCase()))];
}

function intSetting(src: ConfigSource, name: SettingName, def: number, min: number, max: number): number {
  const v = raw(src, name);
  if (v === undefined) return def;
  const s = typeof v === 'number' ? String(v) : typeof v === 'string' ? v.trim() : '';
  if (!/^\d+$/.test(s)) throw new DeployConfigError(name, `must be an integer from ${min} to ${max}`);
  const n = Number(s);
  if (n < min || n > max) throw new DeployConfigError(name, `must be an integer from ${min} to ${max}`);
  return n;
}

const LIMIT_KEYS = Object.keys(LIMIT_RANGES) as (keyof LimitsConfig)[];

/** The `limits` setting: a JSON object (env, `-c`) or an object (cdk.json) of LimitsConfig keys, each an integer in its range. */
function limitsSetting(src: ConfigSource): Partial<LimitsConfig> {
  const v = raw(src, 'limits');
  if (v === undefined) return {};
  const shape = `must be a JSON object with any of the keys ${LIMIT_KEYS.join(', ')}`;
  let parsed: unknown = v;
  if (typeof v === 'string') {
    try {
      parsed = JSON.parse(v);
    } catch {
      throw new DeployConfigError('limits', shape);
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new DeployConfigError('limits', shape);
  const out: Partial<Record<keyof LimitsConfig, number>> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (!Object.hasOwn(LIMIT_RANGES, key)) {
      throw new DeployConfigError('limits', `has an unknown key ${JSON.stringify(key)} (allowed: ${LIMIT_KEYS.join(', ')})`);
    }
    const k = key as keyof LimitsConfig;
    const [min, max] = LIMIT_RANGES[k];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new DeployConfigError('limits', `key "${k}" must be an integer from ${min} to ${max} (got ${JSON.stringify(value) ?? String(value)})`);
    }
    out[k] = value === 0 ? 0 : value; // never -0
  }
  return out;
}

/** A setting that is a JSON string (env, `-c`) or an object (cdk.json); undefined when unset. */
function jsonObject(src: ConfigSource, name: SettingName, shape: string): Record<string, unknown> | undefined {
  const v = raw(src, name);
  if (v === undefined) return undefined;
  let parsed: unknown = v;
  if (typeof v === 'string') {
    try {
      parsed = JSON.parse(v);
    } catch {
      throw new DeployConfigError(name, shape);
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new DeployConfigError(name, shape);
  return parsed as Record<string, unknown>;
}

/** Integer keys of a JSON-object setting, each in its range; unknown keys refused. */
function intKeys<K extends string>(name: SettingName, obj: Record<string, unknown>, ranges: Readonly<Record<K, readonly [number, number]>>, unknown?: (key: string) => string | undefined): Partial<Record<K, number>> {
  const keys = Object.keys(ranges);
  const out: Partial<Record<K, number>> = {};
  for (const [key, value] of Object.entries(obj)) {
    if (!Object.hasOwn(ranges, key)) {
      throw new DeployConfigError(name, unknown?.(key) ?? `has an unknown key ${JSON.stringify(key)} (allowed: ${keys.join(', ')})`);
    }
    const k = key as K;
    const [min, max] = ranges[k];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new DeployConfigError(name, `key "${k}" must be an integer from ${min} to ${max} (got ${JSON.stringify(value) ?? String(value)})`);
    }
    out[k] = value;
  }
  return out;
}

/** `mcpThrottle` / `consentThrottle`: {rateLimit, burstLimit}, either key alone keeps the other's default. */
function throttleSetting(src: ConfigSource, name: 'mcpThrottle' | 'consentThrottle', def: ThrottleConfig): ThrottleConfig {
  const obj = jsonObject(src, name, 'must be a JSON object {"rateLimit": <requests per second>, "burstLimit": <requests>}');
  if (obj === undefined) return def;
  return { ...def, ...intKeys(name, obj, THROTTLE_RANGES) };
}

function reservedConcurrencySetting(src: ConfigSource): ReservedConcurrencyConfig {
  const keys = Object.keys(DEFAULT_RESERVED_CONCURRENCY) as (keyof ReservedConcurrencyConfig)[];
  const obj = jsonObject(src, 'reservedConcurrency', `must be a JSON object with any of the keys ${keys.join(', ')}`);
  if (obj === undefined) return DEFAULT_RESERVED_CONCURRENCY;
  const ranges = Object.fromEntries(keys.map((k) => [k, RESERVED_CONCURRENCY_RANGE])) as Record<keyof ReservedConcurrencyConfig, readonly [number, number]>;
  const set = intKeys('reservedConcurrency', obj, ranges, (key) =>
    key === 'sweeper' ? `may not set "sweeper": its reserved concurrency is always ${SWEEPER_RESERVED_CONCURRENCY} (two sweeps would sign audit checkpoints concurrently)` : undefined,
  );
  return { ...DEFAULT_RESERVED_CONCURRENCY, ...set };
}

/** `alarmEmails`: optional; when set, a list of valid addresses (a setting given but empty is a mistake, not "nobody"). */
function alarmEmailsSetting(src: ConfigSource): string[] {
  const v = raw(src, 'alarmEmails');
  if (v === undefined) return [];
  const items = Array.isArray(v) ? v : typeof v === 'string' ? v.split(',') : undefined;
  if (!items || items.length === 0 || items.every((x) => typeof x !== 'string' || x.trim() === '')) {
    throw new DeployConfigError('alarmEmails', 'must be a comma-separated list of at least one email address (or be left unset)');
  }
  return emailList('alarmEmails', items);
}

/** "ACKD_ROUTES.oncall.slack[0]: rule" → "is invalid at oncall.slack[0]: rule" (the setting is named already). */
function routesRule(message: string): string {
  const m = /^ACKD_ROUTES((?:\.|\[)[^:]*)?: (.*)$/s.exec(message);
  if (!m) return `is invalid: ${message}`;
  return m[1] ? `is invalid at ${m[1].replace(/^\./, '')}: ${m[2]}` : `is invalid: ${m[2]}`;
}

/**
 * The `routes` setting: a JSON string (env, `-c`) or an object (cdk.json), checked by the very
 * parser the functions run (so a deploy never ships routes its functions refuse at cold start),
 * plus what only a deployment requires: secrets by Secrets Manager ARN (the stack sets no other
 * environment variable), and a size that fits Lambda's environment.
 */
function routesSetting(src: ConfigSource): DeployRoutes | undefined {
  const v = raw(src, 'routes');
  if (v === undefined) return undefined;
  let parsed: unknown = v;
  if (typeof v === 'string') {
    try {
      parsed = JSON.parse(v);
    } catch {
      throw new DeployConfigError('routes', 'must be a JSON object of route name → {email, webhooks, slack}');
    }
  }
  const json = JSON.stringify(parsed);
  let routes: RoutesConfig;
  try {
    routes = parseRoutes(json, { local: false });
  } catch (e) {
    if (e instanceof AckdError) throw new DeployConfigError('routes', routesRule(e.message));
    throw e;
  }
  if (routes.size === 0) return undefined;
  for (const r of routes.values()) {
    for (const ref of [...r.webhooks.map((w) => w.secret), ...r.slack.map((s) => s.url)]) {
      if ('env' in ref) {
        const arnKey = ref.field.endsWith('.secret_env') ? 'secret_arn' : 'url_secret_arn';
        throw new DeployConfigError('routes', routesRule(`${ref.field}: the deployed functions get no such variable; name a Secrets Manager secret with ${arnKey}`));
      }
    }
  }
  if (json.length > ROUTES_MAX_CHARS) {
    throw new DeployConfigError('routes', `is ${json.length} characters as JSON; at most ${ROUTES_MAX_CHARS} fit the functions' environment`);
  }
  return { json, secretArns: routeSecretArns(routes) };
}

export function loadDeployConfig(src: ConfigSource): DeployConfig {
  const stage = req(src, 'stage');
  if (!/^[a-z][a-z0-9-]{0,15}$/.test(stage)) {
    throw new DeployConfigError('stage', 'must be 1-16 lowercase letters, digits or dashes, starting with a letter');
  }
  if (stage === 'local') throw new DeployConfigError('stage', 'may not be "local" (that is `npm start`, not AWS)');
  const production = stage === 'prod';

  const trustDomain = req(src, 'trustDomain');
  if (!TRUST_DOMAIN.test(trustDomain) || trustDomain === '.' || trustDomain === '..') {
    throw new DeployConfigError('trustDomain', 'must be a SPIFFE trust domain name (lowercase a-z, 0-9, ".", "-", "_")');
  }
  if (production && PLACEHOLDER_DOMAINS.test(trustDomain)) {
    throw new DeployConfigError('trustDomain', `"${trustDomain}" is a reserved placeholder name; use a domain you own in prod`);
  }

  const approversRaw = raw(src, 'approverEmails');
  if (approversRaw === undefined) throw new DeployConfigError('approverEmails', 'is required');
  const approverEmails = emailList('approverEmails', approversRaw);

  let approverRoutes: Record<string, string[]> = {};
  const routesRaw = raw(src, 'approverRoutes');
  if (routesRaw !== undefined) {
    let parsed: unknown = routesRaw;
    if (typeof routesRaw === 'string') {
      try {
        parsed = JSON.parse(routesRaw);
      } catch {
        throw new DeployConfigError('approverRoutes', 'must be a JSON object of agent_id → [emails]');
      }
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new DeployConfigError('approverRoutes', 'must be a JSON object of agent_id → [emails]');
    }
    approverRoutes = {};
    for (const [agent, emails] of Object.entries(parsed)) {
      if (!AGENT_ID.test(agent) || agent === '.' || agent === '..') {
        throw new DeployConfigError('approverRoutes', `has an invalid agent_id "${agent}"`);
      }
      approverRoutes[agent] = emailList('approverRoutes', emails);
    }
  }

  const sender = req(src, 'sender');
  let senderIdentity: DeployConfig['senderIdentity'];
  let senderAddress: string;
  if (sender.includes('@')) {
    if (!EMAIL.test(sender)) throw new DeployConfigError('sender', `"${sender}" is not a valid email address`);
    senderIdentity = { kind: 'email', value: sender };
    senderAddress = sender;
  } else {
    const d = sender.toLowerCase();
    if (!DOMAIN.test(d)) throw new DeployConfigError('sender', `"${sender}" is neither an email address nor a domain name`);
    senderIdentity = { kind: 'domain', value: d };
    senderAddress = `ackd@${d}`;
  }
  const senderDomain = senderAddress.split('@')[1]!.toLowerCase();
  if (PLACEHOLDER_DOMAINS.test(senderDomain)) {
    throw new DeployConfigError('sender', `"${senderDomain}" is a reserved placeholder domain; SES cannot send from it`);
  }

  const retentionDays = intSetting(src, 'retentionDays', 365, 1, 3650);

  const cognitoDomainPrefix = str(src, 'cognitoDomainPrefix');
  if (cognitoDomainPrefix !== undefined) {
    if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(cognitoDomainPrefix)) {
      throw new DeployConfigError('cognitoDomainPrefix', 'must be lowercase letters, digits and dashes (max 63)');
    }
    if (/aws|amazon|cognito/.test(cognitoDomainPrefix)) {
      throw new DeployConfigError('cognitoDomainPrefix', 'may not contain "aws", "amazon" or "cognito" (Cognito refuses it)');
    }
  }

  const domainName = str(src, 'consentDomainName');
  const certificateArn = str(src, 'consentCertificateArn');
  let consentDomain: DeployConfig['consentDomain'];
  if (domainName !== undefined || certificateArn !== undefined) {
    if (!domainName) throw new DeployConfigError('consentDomainName', 'is required when consentCertificateArn is set');
    if (!certificateArn) throw new DeployConfigError('consentCertificateArn', 'is required when consentDomainName is set');
    if (!DOMAIN.test(domainName)) throw new DeployConfigError('consentDomainName', `"${domainName}" is not a domain name`);
    if (!/^arn:aws[a-z-]*:acm:us-east-1:\d{12}:certificate\/[A-Za-z0-9-]+$/.test(certificateArn)) {
      throw new DeployConfigError('consentCertificateArn', 'must be an ACM certificate ARN in us-east-1 (CloudFront requires it)');
    }
    consentDomain = { name: domainName, certificateArn };
  }

  const natGateways = intSetting(src, 'natGateways', production ? 2 : 1, 1, 3);
  const natProvider = str(src, 'natProvider') || 'gateway';
  if (natProvider !== 'gateway' && natProvider !== 'instance') throw new DeployConfigError('natProvider', `must be gateway or instance (got "${natProvider}")`);
  const natInstanceTypeSet = str(src, 'natInstanceType') || undefined;
  if (natInstanceTypeSet !== undefined && natProvider !== 'instance') throw new DeployConfigError('natInstanceType', 'is used only with natProvider instance (set natProvider too, or leave natInstanceType unset)');
  const natInstanceType = natInstanceTypeSet ?? DEFAULT_NAT_INSTANCE_TYPE;
  if (!/^[a-z][a-z0-9-]*\.[a-z0-9]+$/.test(natInstanceType)) throw new DeployConfigError('natInstanceType', `must be an EC2 instance type like ${DEFAULT_NAT_INSTANCE_TYPE} (got "${natInstanceType}")`);

  const spireServers = intSetting(src, 'spireServers', 1, 1, 2) as 1 | 2;
  const spireServerImage = imageSetting(src, 'spireServerImage', DEFAULT_SPIRE_IMAGE, production);

  const auditKeyArn = keyArnSetting(src, 'auditKeyArn');
  const decisionKeyArn = keyArnSetting(src, 'decisionKeyArn');
  const receiptKeyArn = keyArnSetting(src, 'receiptKeyArn');
  // One key, one role: a key that signed both would let a receipt pass for a decision (and the
  // audit key's policy must name the sweeper alone).
  const keyUses = [['auditKeyArn', auditKeyArn], ['decisionKeyArn', decisionKeyArn], ['receiptKeyArn', receiptKeyArn]] as const;
  for (const [i, [a, arnA]] of keyUses.entries()) {
    for (const [b, arnB] of keyUses.slice(i + 1)) {
      if (arnA !== undefined && arnA === arnB) throw new DeployConfigError(b, `names the same key as ${a}; each kind of evidence needs its own key`);
    }
  }

  const limits = limitsSetting(src);
  const routes = routesSetting(src);
  const mcpThrottle = throttleSetting(src, 'mcpThrottle', DEFAULT_MCP_THROTTLE);
  const consentThrottle = throttleSetting(src, 'consentThrottle', DEFAULT_CONSENT_THROTTLE);
  const reservedConcurrency = reservedConcurrencySetting(src);
  const alarmEmails = alarmEmailsSetting(src);
  const sequencerBatchWindowSeconds = intSetting(src, 'sequencerBatchWindowSeconds', DEFAULT_SEQUENCER_BATCH_WINDOW_SECONDS, ...SEQUENCER_BATCH_WINDOW_RANGE);
  const sequencerLagAlarmMs = intSetting(src, 'sequencerLagAlarmMs', DEFAULT_SEQUENCER_LAG_ALARM_MS, ...SEQUENCER_LAG_ALARM_RANGE);
  const sidecarBaseImage = imageSetting(src, 'sidecarBaseImage', DEFAULT_SIDECAR_BASE_IMAGE, production);
  const archiveRetentionYears = intSetting(
    src,
    'archiveRetentionYears',
    production ? DEFAULT_ARCHIVE_RETENTION_YEARS.production : DEFAULT_ARCHIVE_RETENTION_YEARS.other,
    ...ARCHIVE_RETENTION_YEARS_RANGE,
  );
  const customDomain = customDomainSetting(src);
  const passkeyRequired = str(src, 'passkeyRequired') || 'none';
  if (passkeyRequired !== 'all' && passkeyRequired !== 'payload' && passkeyRequired !== 'none') throw new DeployConfigError('passkeyRequired', `must be all, payload or none (got "${passkeyRequired}")`);

  return {
    stage,
    production,
    trustDomain,
    approverEmails,
    approverRoutes,
    senderIdentity,
    senderAddress,
    retentionDays,
    cognitoDomainPrefix,
    consentDomain,
    natGateways,
    natProvider,
    natInstanceType,
    spireServers,
    spireServerImage,
    auditKeyArn,
    decisionKeyArn,
    receiptKeyArn,
    limits,
    routes,
    mcpThrottle,
    consentThrottle,
    reservedConcurrency,
    alarmEmails,
    sequencerBatchWindowSeconds,
    sequencerLagAlarmMs,
    sidecarBaseImage,
    archiveRetentionYears,
    customDomain,
    awsRoles: awsRolesSetting(src),
    passkeyRequired,
  };
}

/** An existing KMS key named by its key ARN (not an alias: IAM statements and key policies need the key's ARN). */
function keyArnSetting(src: ConfigSource, name: 'auditKeyArn' | 'decisionKeyArn' | 'receiptKeyArn'): string | undefined {
  const v = str(src, name) || undefined;
  if (v !== undefined && !KMS_KEY_ARN.test(v)) {
    throw new DeployConfigError(name, 'must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key id>; not an alias)');
  }
  return v;
}

const IMAGE_REF = /^[a-z0-9][a-z0-9./_-]*(:[A-Za-z0-9._-]+)?(@sha256:[a-f0-9]{64})?$/;

/** A container image reference: pinned by digest in production; a tag (never "latest") elsewhere. */
function imageSetting(src: ConfigSource, name: 'spireServerImage' | 'sidecarBaseImage', def: string, production: boolean): string {
  const v = str(src, name) ?? def;
  const m = IMAGE_REF.exec(v);
  if (!m || /:latest(@|$)/.test(v) || (!m[1] && !m[2])) {
    throw new DeployConfigError(name, 'must be an image reference pinned to a tag or digest (not "latest")');
  }
  if (production && !m[2]) {
    throw new DeployConfigError(name, `"${v}" names a tag only; in prod it must be pinned by digest (<image>:<tag>@sha256:<64 hex>), so every task runs the bytes that were reviewed`);
  }
  return v;
}

const ACM_CERT_ARN = /^arn:aws[a-z-]*:acm:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:certificate\/[A-Za-z0-9-]+$/;
const HOSTED_ZONE_ID = /^Z[A-Z0-9]{1,31}$/;

/** `customDomain`: {name, certificateArn?, hostedZoneId?}; a new certificate needs the zone to validate it. */
function customDomainSetting(src: ConfigSource): CustomDomainConfig | undefined {
  const obj = jsonObject(src, 'customDomain', 'must be a JSON object {"name": <host name>, "certificateArn"?: <ACM ARN>, "hostedZoneId"?: <Route 53 zone id>}');
  if (obj === undefined) return undefined;
  for (const k of Object.keys(obj)) {
    if (!['name', 'certificateArn', 'hostedZoneId'].includes(k)) throw new DeployConfigError('customDomain', `has an unknown key ${JSON.stringify(k)} (allowed: name, certificateArn, hostedZoneId)`);
  }
  const { name, certificateArn, hostedZoneId } = obj;
  if (typeof name !== 'string' || !DOMAIN.test(name.toLowerCase())) throw new DeployConfigError('customDomain', `key "name" must be a host name (got ${JSON.stringify(name)})`);
  if (certificateArn !== undefined && (typeof certificateArn !== 'string' || !ACM_CERT_ARN.test(certificateArn))) {
    throw new DeployConfigError('customDomain', 'key "certificateArn" must be an ACM certificate ARN in the stack\'s region');
  }
  if (hostedZoneId !== undefined && (typeof hostedZoneId !== 'string' || !HOSTED_ZONE_ID.test(hostedZoneId))) {
    throw new DeployConfigError('customDomain', 'key "hostedZoneId" must be a Route 53 hosted zone id like Z0123456789ABCDEFGHIJ');
  }
  if (certificateArn === undefined && hostedZoneId === undefined) {
    throw new DeployConfigError('customDomain', 'needs "certificateArn" (an ACM certificate for the name) or "hostedZoneId" (the stack then requests one, validated by DNS in that zone)');
  }
  return { name: name.toLowerCase(), certificateArn: certificateArn as string | undefined, hostedZoneId: hostedZoneId as string | undefined };
}

/** The most ACKD_AWS_ROLES may take of the functions' 4 KB environment. */
export const AWS_ROLES_MAX_CHARS = 1536;

/** `awsRoles`: the role map (lambdas/core/aws-roles.ts, the rule the functions apply), small enough for the functions' environment. */
function awsRolesSetting(src: ConfigSource): AwsRoleMap {
  const v = raw(src, 'awsRoles');
  let roles: AwsRoleMap;
  try {
    roles = parseAwsRoles(v, 'awsRoles');
  } catch (e) {
    if (e instanceof AckdError) throw new DeployConfigError('awsRoles', `is invalid: ${e.message.replace(/^awsRoles:? ?/, '')}`);
    throw e;
  }
  const size = JSON.stringify([...roles.values()]).length;
  if (size > AWS_ROLES_MAX_CHARS) throw new DeployConfigError('awsRoles', `is ${size} characters as JSON; at most ${AWS_ROLES_MAX_CHARS} fit the functions' environment (shorten the session policies)`);
  return roles;
}
