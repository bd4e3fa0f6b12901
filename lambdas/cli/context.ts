import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, type Config } from '../config.ts';
import { AckdError } from '../core/errors.ts';
import { buildDeps, noMinter, type Deps } from '../deps.ts';
import { jsonLogger } from '../adapters/log.ts';
import { awsConfigFromLocalInfo } from '../local/moto.ts';

/** Where `npm start` keeps local state and writes the values scripts need. */
export const LOCAL_DIR = process.env.ACKD_HOME ?? join(process.cwd(), '.ackd');
export const LOCAL_JSON = join(LOCAL_DIR, 'local.json');

export interface LocalInfo {
  mcpUrl: string;
  agentId: string;
  agentApiKey: string;
  trustDomain: string;
  trustBundlePath: string;
  dynamodbEndpoint: string;
  tableName: string;
  auditKeyPath?: string;
  decisionKeyPath?: string;
  receiptKeyPath?: string;
  [k: string]: unknown;
}

export function readLocalInfo(path = LOCAL_JSON): LocalInfo | undefined {
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, 'utf8')) as LocalInfo;
}

/**
 * The CLI's configuration: the environment (ACKD_* variables, AWS credentials) and, when no
 * table is configured and `npm start` is running here, the local stack from .ackd/local.json.
 */
export function cliConfig(env: Record<string, string | undefined> = process.env): Config {
  if (!env.ACKD_TABLE_NAME && !env.ACKD_STAGE) {
    const local = readLocalInfo();
    if (local) {
      return loadConfig({
        ...env,
        ACKD_STAGE: 'local',
        ACKD_DYNAMODB_ENDPOINT: local.dynamodbEndpoint,
        ACKD_TABLE_NAME: local.tableName,
        ACKD_TRUST_DOMAIN: local.trustDomain,
        ...(local.auditKeyPath && !env.ACKD_AUDIT_KEY ? { ACKD_AUDIT_KEY: local.auditKeyPath } : {}),
        // Operator decisions are signed with the local decision key (on AWS: ACKD_DECISION_KEY=kms:…).
        ...(local.decisionKeyPath && !env.ACKD_DECISION_KEY ? { ACKD_DECISION_KEY: local.decisionKeyPath } : {}),
        ...(local.receiptKeyPath && !env.ACKD_RECEIPT_KEY ? { ACKD_RECEIPT_KEY: local.receiptKeyPath } : {}),
        // Operator changes (policies, owners, decisions) write audit events: sealed with the local seal key (on AWS: ACKD_OUTBOX_SEAL_KEY=kms:…).
        ...(typeof local.outboxSealKeyPath === 'string' && !env.ACKD_OUTBOX_SEAL_KEY ? { ACKD_OUTBOX_SEAL_KEY: local.outboxSealKeyPath } : {}),
        ...(typeof local.consentUiUrl === 'string' ? { ACKD_CONSENT_URL: local.consentUiUrl } : {}),
      });
    }
    throw new AckdError('ERR_CONFIG', 'no ackd to talk to: set ACKD_TABLE_NAME (and AWS credentials), or run `npm start` in this directory first');
  }
  return loadConfig(env);
}

let cached: Deps | undefined;
export function cliDeps(): Deps {
  if (!cached) {
    const config = cliConfig();
    // Locally, revocations deny the emulator's AWS sessions too (npm start wrote its role map and keys).
    const aws = config.local ? awsConfigFromLocalInfo(readLocalInfo() ?? {}) : undefined;
    cached = buildDeps(config, { minter: noMinter, logger: cliLogger(config.logLevel, process.env.ACKD_LOG_LEVEL !== undefined, config.stage), ...(aws ? { aws } : {}) });
  }
  return cached;
}

/**
 * The service's log in the CLI: JSON lines on stderr (never stdout, which carries the command's
 * result), like the functions' logs. Errors only, unless ACKD_LOG_LEVEL is set: then that level,
 * so an operator can keep the CLI's decisions and revocations with the other logs.
 */
export function cliLogger(level: Config['logLevel'], levelSet: boolean, stage: string) {
  return jsonLogger({ level: levelSet ? level : 'error', base: { stage, source: 'cli' }, write: (line) => process.stderr.write(line + '\n') });
}

/** A mistake in how a command was called: printed as one line `error: <message>`, exit status 2. */
export class UsageError extends Error {}

/** Prints either JSON (for scripts) or human text. */
export function output(json: boolean | undefined, data: unknown, human: () => string): void {
  process.stdout.write((json ? JSON.stringify(data, null, 2) : human()) + '\n');
}
