import type { Config } from './config.ts';
import { dynamoClient } from './adapters/dynamodb/client.ts';
import { DynamoApiKeyStore, DynamoRequestStore } from './adapters/dynamodb/store.ts';
import { SealedApiKeyStore, type ApiKeyAudit } from './core/apikeys.ts';
import { DynamoLimitStore } from './adapters/dynamodb/limits.ts';
import { DynamoPolicyStore } from './adapters/dynamodb/policies.ts';
import { DynamoAgentStore } from './adapters/dynamodb/agents.ts';
import { PolicyService, type PolicyAudit, type PolicyStore } from './core/policy.ts';
import type { AgentStore, OwnerAudit } from './core/agents.ts';
import { Limits, type LimitsConfig } from './core/limits.ts';
import { KmsSigner } from './adapters/signing/kms.ts';
import { LocalKeySigner } from './adapters/signing/local.ts';
import { AuditService } from './core/audit/service.ts';
import { ChainAdminAudit } from './core/audit/admin-audit.ts';
import { ToolCallRecorder } from './core/tool-calls.ts';
import { Sequencer, SequencerLoop, type SequencerRun } from './core/audit/sequencer.ts';
import type { ChainEvent } from './core/audit/event.ts';
import type { CheckpointSigner } from './core/audit/signing.ts';
import { jsonLogger } from './adapters/log.ts';
import { AckdError } from './core/errors.ts';
import { systemClock, type ApprovalNotifier, type BundleStore, type Clock, type Logger, type RouteSender, type SvidMinter } from './core/ports.ts';
import { DynamoBundleStore } from './adapters/dynamodb/bundle.ts';
import { AuthorizationService } from './core/service.ts';
import { Waiting, type WaitingOptions } from './core/waiting.ts';
import { checkAwsRolePermissions } from './core/aws-roles.ts';
import type { AuthorizationRecord, NewRequest } from './core/request.ts';
import type { AwsCredentialBroker } from './core/aws-broker.ts';
import { awsBrokerConfigFromEnv, buildAwsBroker, buildAwsRevoker, type AwsBrokerConfig } from './adapters/aws/config.ts';
import { PasskeyService, type PasskeyVerifier } from './core/passkeys.ts';
import { SealedPasskeyStore } from './core/passkey-seal.ts';
import { DynamoNonceStore, DynamoPasskeyStore } from './adapters/dynamodb/passkeys.ts';
import { decisionPublicKeyFrom, decisionSignerFrom, receiptSignerFrom } from './adapters/signing/index.ts';
import { outboxSealerFrom } from './adapters/signing/outbox-seal.ts';
import type { DecisionSigner } from './core/evidence.ts';
import type { ReceiptSigner } from './core/receipt.ts';

/** What serves requests: the service and the stores, signers and adapters under it (buildServiceDeps). */
export interface ServiceDeps {
  readonly config: Config;
  readonly service: AuthorizationService;
  readonly store: DynamoRequestStore;
  readonly apiKeys: SealedApiKeyStore;
  readonly minter: SvidMinter;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly limits: Limits;
  /** Approval policies: runtime management (CLI) and resolution at request time. */
  readonly policies: PolicyService;
  /** Their store (live verification reads the policies as stored). */
  readonly policyStore: PolicyStore;
  /** Where policy changes are recorded (a log line for now; the audit chain next). */
  readonly policyAudit: PolicyAudit;
  /** Records owner changes (events in the audit chain). */
  readonly ownerAudit: OwnerAudit;
  /** Records API keys created and revoked (events in the audit chain). */
  readonly apiKeyAudit: ApiKeyAudit;
  /** The last trust bundle the issuer gave (served while it is down). */
  readonly bundles: BundleStore;
  /** Agent records (owners). */
  readonly agents: AgentStore;
  /** The process's shared long-poll. */
  readonly waiting: Waiting;
  /** The AWS credential broker, when roles are configured (ACKD_AWS_ROLES). */
  readonly awsBroker?: AwsCredentialBroker;
  /** Approvers' passkeys (same table; RP = the consent UI's origin). */
  readonly passkeys: PasskeyService;
  /** Their store, sealed (operators: listing and sealing passkeys stored before passkeys were sealed). */
  readonly passkeyStore: SealedPasskeyStore;
  /** Signs approval receipts (ACKD_RECEIPT_KEY); its public key is served as a JWKS. */
  readonly receipts: ReceiptSigner;
  /** The PEM public key decisions are verified with (ACKD_DECISION_PUBLIC_KEY, else ACKD_DECISION_KEY's); served for auditors. */
  readonly decisionPublicKeyPem: () => Promise<string>;
  /** Records tool calls made through a gateway (record_tool_calls, core/tool-calls.ts). */
  readonly toolCalls: ToolCallRecorder;
}

/** Everything, the audit log's reader, signer and sequencer included (buildDeps). */
export interface Deps extends ServiceDeps {
  /** The audit sequencer over this table (runs where the composition root runs it: the sweeper, the local loop). */
  readonly sequencer: Sequencer;
  /** In a long-running process: the loop that runs the sequencer on a timer and right after writes (not started here). */
  readonly sequencerLoop: SequencerLoop;
  /** The audit log: export, verification, signed checkpoints. */
  readonly audit: AuditService;
}

/** A minter for processes that never issue (the CLI): any attempt fails closed. */
export const noMinter: SvidMinter = {
  mint: () => Promise.reject(new AckdError('ERR_ISSUER_UNAVAILABLE', 'this process has no SVID issuer')),
  trustBundlePem: () => Promise.reject(new AckdError('ERR_ISSUER_UNAVAILABLE', 'this process has no SVID issuer')),
};

/**
 * A passkey verifier for processes that never verify a WebAuthn ceremony (the MCP function, the
 * sweeper, the CLI): registration and assertions are refused, so a decision that needs a passkey
 * fails closed. Only the consent API (its Lambda and the local server) passes the real one
 * (adapters/webauthn), which keeps @simplewebauthn/server out of every other function's bundle.
 */
export function noPasskeyVerifier(consentUrl: string): PasskeyVerifier {
  const u = new URL(consentUrl);
  const refuse = (): Promise<never> => Promise.reject(new AckdError('ERR_PASSKEY_INVALID', 'this process has no passkey verifier (passkeys are the consent API\'s)'));
  return { rpId: u.hostname, origin: u.origin, registrationOptions: refuse, verifyRegistration: refuse, verifyAssertion: refuse };
}

/** What buildServiceDeps and buildDeps take besides the configuration. */
export interface ServiceOptions {
  minter: SvidMinter;
  notifier?: ApprovalNotifier;
  /** Notification routes (ACKD_ROUTES). */
  routes?: RouteSender;
  clock?: Clock;
  logger?: Logger;
  /** Overrides of the configured limits (tests, benchmarks). */
  limits?: Partial<LimitsConfig>;
  /** Records policy changes; default: events in the audit chain. */
  policyAudit?: PolicyAudit;
  /** Wraps the AWS SDK client (X-Ray tracing on Lambda: adapters/powertools.ts `traced`); default: as is. */
  instrument?: <C extends object>(client: C) => C;
  /** The shared long-poll's pace (tests). */
  waiting?: WaitingOptions;
  /** The AWS roles an approval may open and where STS/IAM are; default: ACKD_AWS_ROLES (none: no broker). */
  aws?: AwsBrokerConfig;
  /** The decision key (default: ACKD_DECISION_KEY) and receipt key (default: ACKD_RECEIPT_KEY). */
  decisionSigner?: DecisionSigner;
  receipts?: ReceiptSigner;
  /** Verifies WebAuthn ceremonies (the consent API: adapters/webauthn); default: noPasskeyVerifier. */
  passkeyVerifier?: PasskeyVerifier;
}

/** buildDeps's options: ServiceOptions and the audit log's. */
export interface DepsOptions extends ServiceOptions {
  /** Signs audit checkpoints; default: ACKD_AUDIT_KEY (none: checkpoints are not signed here). */
  signer?: CheckpointSigner;
  /** Also called with each batch of sequenced events (metrics). */
  onSequenced?: (events: readonly ChainEvent[]) => Promise<void> | void;
}

/**
 * config → what serves requests, for a function that neither sequences nor reads the audit log
 * (the MCP function): its composition root then carries no AuditService, sequencer or checkpoint
 * signer (bundle and cold start). The service still writes its audit events; the sweeper sequences them.
 * Nor does it issue AWS credentials (the AWS credentials function does: adapters/aws/deps.ts):
 * with roles configured it only denies a revoked request's sessions (IAM), so it has no `awsBroker`
 * and no STS client.
 */
export function buildServiceDeps(config: Config, opts: ServiceOptions): ServiceDeps {
  return composeService(config, opts, () => undefined, { build: buildAwsRevoker, serves: false });
}

/** config → dependencies. Adapters are chosen here and nowhere else. */
export function buildDeps(config: Config, opts: DepsOptions): Deps {
  // The sequencer and the service refer to each other (the service nudges it, its follow-up
  // notifies through the service): bound once both exist.
  let nudge: () => Promise<void> | undefined = () => undefined;
  const deps = composeService(config, opts, () => nudge(), { build: buildAwsBroker, serves: true });
  const { store, clock, logger, service } = deps;
  const audit = new AuditService({ log: store.audit, clock, logger, signer: opts.signer ?? signerFromConfig(config), retentionDays: config.retentionDays, settings: { apiKeys: deps.apiKeys, policies: deps.policyStore, agents: deps.agents } });
  const sequencer = new Sequencer({
    store: store.audit,
    clock,
    logger,
    sealer: store.audit.sealer,
    ...(config.outboxUnsealedBefore ? { admitUnsealedBefore: config.outboxUnsealedBefore } : {}),
    onSequenced: async (events) => {
      await Promise.all([service.afterSequenced(events), opts.onSequenced?.(events)]);
    },
  });
  const sealer = checkpointSealer(audit, logger, config.checkpointEverySeconds * 1000);
  const sequencerLoop = new SequencerLoop(sequencer, { intervalMs: config.sequencerIntervalMs, logger, after: sealer });
  nudge = () => sequencerLoop.nudge();
  return { ...deps, sequencer, sequencerLoop, audit };
}

/**
 * How the AWS credential broker is made: buildAwsBroker (issues and revokes; `serves`: it is
 * `awsBroker` of the result) or buildAwsRevoker (its revocation side only). Passed in, not chosen
 * here, so a bundle of buildServiceDeps never references STS.
 */
interface AwsBrokerChoice {
  readonly build: (config: AwsBrokerConfig, d: Parameters<typeof buildAwsBroker>[1]) => AwsCredentialBroker;
  readonly serves: boolean;
}

function composeService(config: Config, opts: ServiceOptions, nudge: () => Promise<void> | undefined, aws: AwsBrokerChoice): ServiceDeps {
  const logger = opts.logger ?? jsonLogger({ level: config.logLevel, base: { stage: config.stage } });
  const clock = opts.clock ?? systemClock;
  const ddb = (opts.instrument ?? ((c) => c))(dynamoClient({ region: config.region, endpoint: config.dynamodbEndpoint }));
  const sealer = outboxSealerFrom(config);
  const store = DynamoRequestStore.withAudit(ddb, config.tableName, { clock, retentionDays: config.retentionDays, sealer });
  // Agent keys are sealed with the outbox seal key: a table writer cannot make one (core/apikeys.ts).
  const apiKeys = new SealedApiKeyStore(new DynamoApiKeyStore(ddb, config.tableName), sealer, logger);
  // Limits live in the same table, so they hold across every instance that shares it.
  const limits = new Limits({ ...config.limits, ...opts.limits }, { store: new DynamoLimitStore(ddb, config.tableName), clock, retentionDays: config.retentionDays });
  const adminAudit = new ChainAdminAudit(store.audit, clock, () => nudge());
  const policyAudit = opts.policyAudit ?? adminAudit;
  const policyStore = new DynamoPolicyStore(ddb, config.tableName);
  const policies = new PolicyService({ store: policyStore, audit: policyAudit, clock, logger });
  const agents = new DynamoAgentStore(ddb, config.tableName);
  const awsConfig = opts.aws ?? awsBrokerConfigFromEnv(process.env, config);
  const awsBroker = awsConfig ? aws.build(awsConfig, { store, ddb, tableName: config.tableName, clock, logger }) : undefined;
  // aws:role/<name> must name a configured role (none configured: every one is refused); a revocation denies the request's AWS sessions.
  const awsRoles = awsConfig?.roles ?? new Map();
  const awsRules = {
    permissionRules: (input: NewRequest) => checkAwsRolePermissions(input, awsRoles),
    ...(awsBroker ? { onRevoked: async (r: AuthorizationRecord) => void (await awsBroker.revoked(r)) } : {}),
  };
  const waiting = new Waiting({ store, clock, logger }, opts.waiting);
  // Approvers' passkeys are sealed with the outbox seal key too: a table writer cannot add one (core/passkey-seal.ts).
  const passkeyStore = new SealedPasskeyStore(new DynamoPasskeyStore(ddb, config.tableName), sealer, logger);
  const passkeys = new PasskeyService({ store: passkeyStore, nonces: new DynamoNonceStore(ddb, config.tableName), verifier: opts.passkeyVerifier ?? noPasskeyVerifier(config.consentUrl), clock, audit: adminAudit });
  // Signed decisions and receipts (issue 13): keys not configured here refuse when used (fail closed).
  const decisionSigner = opts.decisionSigner ?? decisionSignerFrom(config);
  const decisionPublicKeyPem = opts.decisionSigner && !config.decisionPublicKey ? () => decisionSigner.publicKeyPem() : decisionPublicKeyFrom(config);
  const receipts = opts.receipts ?? receiptSignerFrom(config);
  const service = new AuthorizationService(
    { trustDomain: config.trustDomain, consentBaseUrl: config.consentUrl, retentionDays: config.retentionDays, passkeyRequired: config.passkeyRequired },
    {
      store,
      minter: opts.minter,
      clock,
      logger,
      limits,
      policies,
      agents,
      waiting,
      auditNudge: () => nudge(),
      notifyAfterSequencing: true,
      passkeys,
      decisions: { signer: decisionSigner, publicKeyPem: decisionPublicKeyPem },
      receipts,
      ...awsRules,
      ...(opts.notifier ? { notifier: opts.notifier } : {}),
      ...(opts.routes ? { routes: opts.routes } : {}),
    },
  );
  return {
    config,
    service,
    store,
    apiKeys,
    minter: opts.minter,
    logger,
    clock,
    limits,
    policies,
    policyStore,
    policyAudit,
    ownerAudit: adminAudit,
    apiKeyAudit: adminAudit,
    agents,
    bundles: new DynamoBundleStore(ddb, config.tableName),
    waiting,
    passkeys,
    passkeyStore,
    ...(awsBroker && aws.serves ? { awsBroker } : {}),
    receipts,
    decisionPublicKeyPem,
    toolCalls: new ToolCallRecorder({ store, log: store.audit, clock, nudge: () => nudge(), limits }),
  };
}

/**
 * After a sequencer run: signs a tree head when the log has grown and the last one this process
 * signed is at least `everyMs` old (where checkpoints can be signed). A failure is logged; the
 * next run tries again.
 */
export function checkpointSealer(audit: AuditService, logger: Logger, everyMs: number): (run: SequencerRun) => Promise<{ signed: boolean; failed: boolean }> {
  let lastSignedMs = 0;
  return async (run) => {
    if (!audit.canSign || run.head === null || run.head.size === 0 || Date.now() - lastSignedMs < everyMs) return { signed: false, failed: false };
    try {
      const cp = await audit.checkpoint();
      if (cp.created) lastSignedMs = Date.now();
      return { signed: cp.created, failed: false };
    } catch (e) {
      logger.error('audit tree head not signed', { error: e instanceof Error ? e.message : String(e) });
      return { signed: false, failed: true };
    }
  };
}

/**
 * The periodic work (the sweeper Lambda's schedule, the local loop, `ackd sweep`): sequence the
 * audit events waiting, record expiries, retry consent mail, escalate, sequence what that wrote,
 * then sign a tree head of the audit log.
 */
export async function periodicWork(
  deps: Deps,
  limit: number,
): Promise<{ expired: number; renotified: number; escalated: number; sequenced: number; checkpoint_seq: number | null; checkpoint_error?: string }> {
  const before = await deps.sequencer.run();
  const swept = await deps.service.sweep(limit);
  await deps.awsBroker?.sweep().catch((e: unknown) => deps.logger.warn('aws revocation denies not reconciled', { error: e instanceof Error ? e.message : String(e) }));
  const after = await deps.sequencer.run();
  const sequenced = before.sequenced + after.sequenced;
  if (!deps.audit.canSign) return { ...swept, sequenced, checkpoint_seq: null };
  try {
    const cp = await deps.audit.checkpoint();
    return { ...swept, sequenced, checkpoint_seq: cp.checkpoint?.seq ?? null };
  } catch (e) {
    // The sweep itself succeeded; a checkpoint that cannot be signed (KMS down, or a log that
    // does not verify, already logged as an error) is reported, and the next run tries again.
    const message = e instanceof Error ? e.message : String(e);
    deps.logger.error('audit checkpoint not signed', { error: message });
    return { ...swept, sequenced, checkpoint_seq: null, checkpoint_error: message };
  }
}

/** The checkpoint signer ACKD_AUDIT_KEY names: `kms:<key id or ARN>`, or a PEM private key file. */
export function signerFromConfig(config: Pick<Config, 'auditKey' | 'region'>): CheckpointSigner | undefined {
  const k = config.auditKey;
  if (!k) return undefined;
  if (k.startsWith('kms:')) return KmsSigner.forKey(k.slice(4), config.region);
  return LocalKeySigner.fromFile(k);
}
