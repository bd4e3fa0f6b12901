import { AckdError } from './core/errors.ts';
import { parseTrustDomain, type TrustDomain } from './core/ids.ts';
import { DEFAULT_LIMITS, LIMIT_RANGES, type LimitsConfig } from './core/limits.ts';
import { PASSKEY_RULES, type PasskeyRule } from './core/passkeys.ts';

/**
 * Runtime configuration, parsed once at start from environment variables. Every variable is
 * documented in README.md ("Configuration"). Outside local mode, insecure values are refused.
 */
export interface Config {
  readonly stage: string;
  readonly local: boolean;
  readonly trustDomain: TrustDomain;
  readonly tableName: string;
  /** Local only: DynamoDB endpoint override (dynalite). */
  readonly dynamodbEndpoint: string | undefined;
  readonly region: string;
  /** Base URL of the consent UI. */
  readonly consentUrl: string;
  readonly retentionDays: number;
  /** Signing key of audit checkpoints: `kms:<key id or ARN>` or a path to a PEM EC P-256 private key. */
  readonly auditKey: string | undefined;
  /**
   * Signing key of decisions (ACKD_DECISION_KEY), where decisions are made (consent API, CLI):
   * `kms:<key id or ARN>`, or locally a path to a PEM EC P-256 private key. Without it, deciding
   * fails closed (ERR_SIGNER_UNAVAILABLE).
   */
  readonly decisionKey: string | undefined;
  /**
   * What decisions are verified with before an SVID is minted (ACKD_DECISION_PUBLIC_KEY):
   * `kms:<key id or ARN>` (its public key, by kms:GetPublicKey), a path to a PEM public (or
   * private) key, or the PEM itself. Default: the public half of ACKD_DECISION_KEY. Without
   * either, no SVID is minted (ERR_SIGNER_UNAVAILABLE).
   */
  readonly decisionPublicKey: string | undefined;
  /**
   * Signing key of approval receipts (ACKD_RECEIPT_KEY), where SVIDs are minted (MCP):
   * `kms:<key id or ARN>`, or locally a path to a PEM EC P-256 private key. Without it, no SVID
   * is minted (ERR_SIGNER_UNAVAILABLE): an SVID leaves only with its receipt.
   */
  readonly receiptKey: string | undefined;
  /**
   * The key that seals audit outbox entries (ACKD_OUTBOX_SEAL_KEY): `kms:<key id or ARN>` of an
   * HMAC_256 key, or locally a key file. Without it, no event can be written or sequenced.
   */
  readonly outboxSealKey: string | undefined;
  /** Upgrade only (ACKD_OUTBOX_UNSEALED_BEFORE, ISO time): unsealed entries written before it are still sequenced. */
  readonly outboxUnsealedBefore: string | undefined;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** How often a long-running process runs the audit sequencer besides right after writes (ACKD_SEQUENCER_INTERVAL_MS). */
  readonly sequencerIntervalMs: number;
  /** Signed tree heads at most this often while the log grows (ACKD_CHECKPOINT_EVERY_SECONDS). */
  readonly checkpointEverySeconds: number;
  /** Flood limits per agent and per approver (ACKD_LIMIT_*). */
  readonly limits: LimitsConfig;
  /** Which decisions must be signed with the approver's passkey besides what policies say (ACKD_PASSKEY_REQUIRED: all | payload | none). */
  readonly passkeyRequired: PasskeyRule;
}

/** The environment variable of each limit. */
export const LIMIT_ENV = {
  requestsPerMinute: 'ACKD_LIMIT_REQUESTS_PER_MINUTE',
  openPending: 'ACKD_LIMIT_OPEN_PENDING',
  concurrentWaits: 'ACKD_LIMIT_CONCURRENT_WAITS',
  mailsPerApprover: 'ACKD_LIMIT_MAILS_PER_APPROVER',
  mailWindowMinutes: 'ACKD_LIMIT_MAIL_WINDOW_MINUTES',
  refusalsPerRequest: 'ACKD_LIMIT_REFUSALS_PER_REQUEST',
  refusalsPerAgentPerHour: 'ACKD_LIMIT_REFUSALS_PER_AGENT_PER_HOUR',
  toolCallsPerMinute: 'ACKD_LIMIT_TOOL_CALLS_PER_MINUTE',
} as const satisfies Record<keyof LimitsConfig, string>;

/** The ACKD_LIMIT_* variables, each an integer in its range, defaulting to DEFAULT_LIMITS. */
export function loadLimits(env: Env): LimitsConfig {
  const out: Record<string, number> = {};
  for (const k of Object.keys(LIMIT_ENV) as (keyof LimitsConfig)[]) {
    const [min, max] = LIMIT_RANGES[k];
    out[k] = intIn(env, LIMIT_ENV[k], DEFAULT_LIMITS[k], min, max);
  }
  return out as unknown as LimitsConfig;
}

type Env = Record<string, string | undefined>;

function fail(name: string, rule: string): never {
  throw new AckdError('ERR_CONFIG', `${name}: ${rule}`, { field: name });
}

export function required(env: Env, name: string): string {
  const v = env[name]?.trim();
  if (!v) fail(name, 'is required');
  return v;
}

export function optional(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

export function intIn(env: Env, name: string, def: number, min: number, max: number): number {
  const raw = optional(env, name);
  if (raw === undefined) return def;
  if (!/^\d+$/.test(raw)) fail(name, `must be an integer from ${min} to ${max}`);
  const n = Number(raw);
  if (n < min || n > max) fail(name, `must be an integer from ${min} to ${max}`);
  return n;
}

/** A URL that must be https outside local mode (loopback http is fine locally). */
export function url(env: Env, name: string, local: boolean, def?: string): string {
  const raw = optional(env, name) ?? def;
  if (raw === undefined) fail(name, 'is required');
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    fail(name, `must be an absolute URL (got "${raw}")`);
  }
  if (u.protocol !== 'https:' && !(local && u.protocol === 'http:')) fail(name, 'must be an https URL outside local mode');
  return raw.replace(/\/+$/, '');
}

/** ACKD_PASSKEY_REQUIRED: all (every decision), payload (decisions on requests with a payload) or none (the default: only policies with `passkey: "required"`). */
export function passkeyRule(env: Env): PasskeyRule {
  const v = optional(env, 'ACKD_PASSKEY_REQUIRED') ?? 'none';
  if (!(PASSKEY_RULES as readonly string[]).includes(v)) fail('ACKD_PASSKEY_REQUIRED', `must be all, payload or none (got "${v}")`);
  return v as PasskeyRule;
}

/** A private signing key setting: `kms:<key id or ARN>`, or (local mode only) a PEM key file. */
function signingKeySetting(env: Env, name: string, local: boolean): string | undefined {
  const v = optional(env, name);
  if (v === undefined) return undefined;
  if (v.startsWith('kms:')) {
    if (v.length === 4) fail(name, 'kms: must name a key id or ARN');
    return v;
  }
  if (!local) fail(name, 'must be kms:<key id or ARN> outside local mode (a key file is for local use)');
  return v;
}

export function loadConfig(env: Env = process.env): Config {
  const stage = optional(env, 'ACKD_STAGE') ?? 'local';
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(stage)) fail('ACKD_STAGE', 'must be lowercase letters, digits and dashes');
  const local = stage === 'local';
  const dynamodbEndpoint = optional(env, 'ACKD_DYNAMODB_ENDPOINT');
  if (dynamodbEndpoint && !local) fail('ACKD_DYNAMODB_ENDPOINT', 'is for local mode only (ACKD_STAGE=local)');
  const logLevel = optional(env, 'ACKD_LOG_LEVEL') ?? 'info';
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) fail('ACKD_LOG_LEVEL', 'must be debug, info, warn or error');
  const auditKey = optional(env, 'ACKD_AUDIT_KEY');
  if (auditKey !== undefined && !local && !auditKey.startsWith('kms:')) fail('ACKD_AUDIT_KEY', 'must be kms:<key id or ARN> outside local mode (a key file is for local use)');
  const decisionKey = signingKeySetting(env, 'ACKD_DECISION_KEY', local);
  const receiptKey = signingKeySetting(env, 'ACKD_RECEIPT_KEY', local);
  const outboxSealKey = signingKeySetting(env, 'ACKD_OUTBOX_SEAL_KEY', local);
  const outboxUnsealedBefore = optional(env, 'ACKD_OUTBOX_UNSEALED_BEFORE');
  if (outboxUnsealedBefore !== undefined && !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/.test(outboxUnsealedBefore)) fail('ACKD_OUTBOX_UNSEALED_BEFORE', 'must be an ISO-8601 UTC time (2026-01-31T12:00:00Z)');
  const decisionPublicKey = optional(env, 'ACKD_DECISION_PUBLIC_KEY');
  if (decisionPublicKey?.startsWith('kms:') && decisionPublicKey.length === 4) fail('ACKD_DECISION_PUBLIC_KEY', 'kms: must name a key id or ARN');
  return {
    stage,
    local,
    trustDomain: parseTrustDomain(optional(env, 'ACKD_TRUST_DOMAIN') ?? (local ? 'ackd.local' : required(env, 'ACKD_TRUST_DOMAIN')), 'ACKD_TRUST_DOMAIN'),
    tableName: optional(env, 'ACKD_TABLE_NAME') ?? (local ? 'ackd' : required(env, 'ACKD_TABLE_NAME')),
    dynamodbEndpoint,
    region: optional(env, 'AWS_REGION') ?? optional(env, 'AWS_DEFAULT_REGION') ?? 'us-east-1',
    consentUrl: url(env, 'ACKD_CONSENT_URL', local, local ? 'http://127.0.0.1:8787' : undefined),
    retentionDays: intIn(env, 'ACKD_RETENTION_DAYS', 365, 1, 3650),
    auditKey,
    decisionKey,
    decisionPublicKey,
    receiptKey,
    outboxSealKey,
    outboxUnsealedBefore,
    logLevel: logLevel as Config['logLevel'],
    sequencerIntervalMs: intIn(env, 'ACKD_SEQUENCER_INTERVAL_MS', 250, 20, 60_000),
    checkpointEverySeconds: intIn(env, 'ACKD_CHECKPOINT_EVERY_SECONDS', 5, 1, 3600),
    limits: loadLimits(env),
    passkeyRequired: passkeyRule(env),
  };
}
