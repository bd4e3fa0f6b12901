import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { getRequestListener } from '@hono/node-server';
import { createApp } from '../app.ts';
import { writeTrustBundle } from '../http/svid-routes.ts';
import { LIMIT_ENV, loadConfig } from '../config.ts';
import type { LimitsConfig } from '../core/limits.ts';
import type { WaitingOptions } from '../core/waiting.ts';
import { buildDeps, periodicWork, type Deps } from '../deps.ts';
import { createKeyFileOnce, LocalKeySigner } from '../adapters/signing/local.ts';
import { createSealKeyFileOnce } from '../adapters/signing/outbox-seal.ts';
import { ensureTable, upgradeLocalTable } from '../adapters/dynamodb/schema.ts';
import { dynamoClient } from '../adapters/dynamodb/client.ts';
import { SesNotifier, sesClient, parseApproverRouting } from '../adapters/ses/index.ts';
import { authenticateApiKey, createApiKey } from '../core/apikeys.ts';
import { parseAgentId } from '../core/ids.ts';
import type { Clock, Logger, SvidMinter } from '../core/ports.ts';
import { startLocalSes, type LocalSes } from './ses.ts';
import { startLocalCognito, type LocalCognito } from './cognito.ts';
import { consentUiRoutes } from './consent-ui.ts';
import { consentApi } from '../consent-api/app.ts';
import { routesFromEnv } from '../consent-api/deps.ts';
import { CognitoVerifier } from '../adapters/cognito/verifier.ts';
import { SimpleWebAuthnVerifier } from '../adapters/webauthn/simplewebauthn.ts';
import { buildConsentUi } from '../../consent-ui/build.ts';
import { startIssuer } from '../../spire/issuer.ts';
import { healthReport, type IssuerHealth } from '../issuer.ts';
import { makeOwnerOnly, usePrivateUmask, type TightenResult } from './private-files.ts';
import { startLocalAws, type AwsDemo } from './moto.ts';
import type { AwsBrokerConfig } from '../adapters/aws/config.ts';
import type { PasskeyRule } from '../core/passkeys.ts';

const require = createRequire(import.meta.url);

export interface LocalStackOptions {
  /** State directory (dynalite data, CA, local.json). */
  readonly dir: string;
  /** Keep DynamoDB data on disk under dir (npm start) or in memory (tests). */
  readonly persist: boolean;
  /** 0 = ephemeral. */
  readonly ports?: { app?: number; dynalite?: number; ses?: number; cognito?: number };
  readonly trustDomain?: string;
  readonly tableName?: string;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** The SVID issuer; defaults to the in-process CA kept under dir. */
  readonly issuer?: (ctx: { dir: string; trustDomain: string }) => Promise<LocalIssuer>;
  /** Demo agent created on first run. */
  readonly demoAgentId?: string;
  /** The demo agent's key from an earlier run (.ackd/local.json); a new one is made if it no longer works. */
  readonly demoAgentApiKey?: string;
  /** Approver email addresses for consent mail. */
  readonly approvers?: string;
  /** Run the periodic work (expiry sweep, mail retry, escalation, audit checkpoint) this often (ms); 0 disables it. (The audit sequencer always runs.) */
  readonly sweepIntervalMs?: number;
  /** Start cognito-local and serve the consent UI (/) and consent API (/api). Default true. */
  readonly consent?: boolean;
  /**
   * Set the process umask to 077 while the stack runs, so every file created under dir (also by
   * dynalite, cognito-local and spire-server) is the owner's alone. Process-wide; default: persist
   * (npm start). Existing files under dir are made owner-only either way.
   */
  readonly privateUmask?: boolean;
  /** Overrides of the flood limits (ACKD_LIMIT_* otherwise); tests that create many requests at once raise them. */
  readonly limits?: Partial<LimitsConfig>;
  /** Notification routes, as ACKD_ROUTES JSON (default: the ACKD_ROUTES variable); email channels go to the local inbox. */
  readonly routes?: string;
  /** Variables the routes' secrets are read from (default: the process environment). */
  readonly routeEnv?: Record<string, string | undefined>;
  /** The shared long-poll's pace (tests). */
  readonly waiting?: WaitingOptions;
  /**
   * The AWS credential broker: `emulator` starts moto (installed on first use) with the demo role
   * and bucket (npm start; without Python: said so, no broker); a config: that one (tests start
   * their own moto). Default: none.
   */
  readonly aws?: 'emulator' | AwsBrokerConfig;
  /** Which decisions must be signed with a passkey (default: the ACKD_PASSKEY_REQUIRED variable, else none). */
  readonly passkeyRequired?: PasskeyRule;
}

export interface LocalIssuer {
  readonly kind: string;
  readonly minter: SvidMinter;
  /** Its state for /healthz (cheap). Without it, /healthz does not report the issuer. */
  health?(): IssuerHealth;
  /** Registers a listener for "the issuer came back after an unexpected exit". */
  onRestarted?(listener: () => void): void;
  stop(): Promise<void>;
}

export interface LocalStack {
  readonly appUrl: string;
  readonly mcpUrl: string;
  readonly dynamodbEndpoint: string;
  readonly tableName: string;
  readonly trustDomain: string;
  readonly trustBundlePath: string;
  /** The PEM private key that signs audit checkpoints (created on first start). */
  readonly auditKeyPath: string;
  /** The PEM private key that signs decisions (ACKD_DECISION_KEY; created on first start; on AWS a KMS key). */
  readonly decisionKeyPath: string;
  /** The PEM private key that signs approval receipts (ACKD_RECEIPT_KEY; created on first start; on AWS a KMS key). */
  readonly receiptKeyPath: string;
  /** The key that seals audit outbox entries (ACKD_OUTBOX_SEAL_KEY; 32 random bytes made on first start; on AWS a KMS HMAC key). */
  readonly outboxSealKeyPath: string;
  readonly issuerKind: string;
  readonly ses: LocalSes;
  /** The consent UI (same origin as /api). */
  readonly consentUiUrl: string;
  /** The local inbox web page (aws-ses-v2-local). */
  readonly mailUrl: string;
  /** cognito-local, when consent is on. */
  readonly cognito: LocalCognito | undefined;
  readonly approverUsername: string | undefined;
  readonly approverPassword: string | undefined;
  readonly deps: Deps;
  readonly agentId: string;
  /** The demo agent's API key. */
  readonly agentApiKey: string;
  /** The AWS emulator's demo (endpoint, demo role and bucket), when `aws: 'emulator'` started one. */
  readonly awsDemo?: AwsDemo;
  stop(): Promise<void>;
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * Starts everything ackd needs on this machine: dynalite, the SVID issuer, the local SES inbox
 * and the ackd HTTP app (MCP, consent UI/API, bundle). Used by `npm start` and by the tests.
 */
export async function startLocalStack(opts: LocalStackOptions): Promise<LocalStack> {
  const log = opts.logger ?? console;
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const s of stops.splice(0).reverse()) await s().catch(() => undefined);
  };
  if (opts.privateUmask ?? opts.persist) {
    const previous = usePrivateUmask();
    stops.push(async () => void process.umask(previous));
  }
  // Owner-only, also what an earlier run left readable to others (first), and whatever was created
  // since (again once all is up, and at stop).
  const ownerOnly = async (when: string) => reportTightened(log, when, await makeOwnerOnly(opts.dir));
  stops.push(() => ownerOnly('at stop'));
  try {
    await mkdir(opts.dir, { recursive: true, mode: 0o700 });
    await ownerOnly('from an earlier run');
    // DynamoDB (dynalite)
    const dynalite = require('dynalite') as (o: Record<string, unknown>) => Server;
    const ddbServer = dynalite(opts.persist ? { path: join(opts.dir, 'dynalite'), createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 } : { createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    const ddbPort = await listen(ddbServer, opts.ports?.dynalite ?? 0);
    stops.push(() => close(ddbServer));
    const dynamodbEndpoint = `http://127.0.0.1:${ddbPort}`;
    const ddb = dynamoClient({ region: 'us-east-1', endpoint: dynamodbEndpoint });
    const tableName = await upgradeLocalTable(ddb, opts.tableName ?? 'ackd', (msg) => (opts.logger ?? console).info(msg));
    await ensureTable(ddb, tableName);

    // SVID issuer
    const trustDomain = opts.trustDomain ?? 'ackd.local';
    const issuer = await (opts.issuer ?? (({ dir }) => startIssuer({ trustDomain, stateDir: dir, issuer: 'local-ca', log: () => undefined, ...(opts.clock ? { clock: opts.clock } : {}) })))({ dir: opts.dir, trustDomain });
    stops.push(() => issuer.stop());
    const trustBundlePath = join(opts.dir, 'trust-bundle.pem');
    await writeTrustBundle(issuer.minter, trustBundlePath);
    // After SPIRE came back from a crash, its bundle may have changed (it rotates on its own clock).
    issuer.onRestarted?.(() => {
      writeTrustBundle(issuer.minter, trustBundlePath).then(
        () => log.info('trust bundle file refreshed after the issuer restarted', { path: trustBundlePath }),
        (e: unknown) => log.warn('could not refresh the trust bundle file after the issuer restarted', { error: e instanceof Error ? e.message : String(e) }),
      );
    });

    // AWS (the credential broker's STS and IAM; locally an emulator)
    const localAws = opts.aws === 'emulator' ? await startLocalAws(log) : undefined;
    if (localAws) stops.push(() => localAws.stop());
    const aws = opts.aws === 'emulator' ? localAws?.config : opts.aws;

    // Mail
    const ses = await startLocalSes({ port: opts.ports?.ses ?? 0 });
    stops.push(() => ses.stop());

    // Approver sign-in (cognito-local) and the consent UI build.
    let cognito: LocalCognito | undefined;
    let uiDist: string | undefined;
    if (opts.consent ?? true) {
      cognito = await startLocalCognito({ dir: join(opts.dir, 'cognito'), port: opts.ports?.cognito ?? 0 });
      const c = cognito;
      stops.push(() => c.stop());
      uiDist = await buildConsentUi(join(opts.dir, 'consent-ui'));
    }

    // The ackd app: listen first (the consent URL needs the port), then build the app.
    const routed: { listener?: (req: IncomingMessage, res: ServerResponse) => void } = {};
    const http = createServer((req, res) => {
      if (routed.listener) routed.listener(req, res);
      else res.writeHead(503).end();
    });
    const appPort = await listen(http, opts.ports?.app ?? 0);
    stops.push(() => close(http));
    const appUrl = `http://127.0.0.1:${appPort}`;
    // The consent UI under a host name: WebAuthn refuses an IP address as RP ID, and browsers treat
    // http://localhost as a secure context, so passkeys work there (the server still listens on 127.0.0.1 only).
    const consentUrl = `http://localhost:${appPort}`;

    // Audit checkpoints are signed with a key kept beside the data (on AWS: a KMS key).
    const auditKeyPath = join(opts.dir, 'audit-signing-key.pem');
    const signer = LocalKeySigner.fileCreatingOnce(auditKeyPath);
    // Decisions and approval receipts are signed with keys of their own, made once and kept beside it too.
    const decisionKeyPath = join(opts.dir, 'decision-signing-key.pem');
    const receiptKeyPath = join(opts.dir, 'receipt-signing-key.pem');
    createKeyFileOnce(decisionKeyPath);
    createKeyFileOnce(receiptKeyPath);
    // Audit outbox entries are sealed with a key that is not in the table (on AWS: a KMS HMAC key).
    const outboxSealKeyPath = createSealKeyFileOnce(join(opts.dir, 'outbox-seal.key'));
    const config = loadConfig({
      ACKD_OUTBOX_SEAL_KEY: outboxSealKeyPath,
      ACKD_AUDIT_KEY: auditKeyPath,
      ACKD_DECISION_KEY: decisionKeyPath,
      ACKD_RECEIPT_KEY: receiptKeyPath,
      ACKD_STAGE: 'local',
      ACKD_TRUST_DOMAIN: trustDomain,
      ACKD_TABLE_NAME: tableName,
      ACKD_DYNAMODB_ENDPOINT: dynamodbEndpoint,
      ACKD_CONSENT_URL: consentUrl,
      ACKD_LOG_LEVEL: process.env.ACKD_LOG_LEVEL,
      ACKD_PASSKEY_REQUIRED: opts.passkeyRequired ?? process.env.ACKD_PASSKEY_REQUIRED,
      ...Object.fromEntries(Object.values(LIMIT_ENV).map((name) => [name, process.env[name]])),
    });
    const notifier = new SesNotifier({
      client: sesClient({ region: config.region, endpoint: ses.endpoint }),
      sender: 'ackd <ackd@ackd.local>',
      routing: parseApproverRouting(opts.approvers ?? 'approver@ackd.local', undefined),
    });
    const routeEnv = { ...(opts.routeEnv ?? process.env), ACKD_ROUTES: opts.routes ?? process.env.ACKD_ROUTES };
    const routes = await routesFromEnv(routeEnv, config, { mail: { sender: 'ackd <ackd@ackd.local>', sesEndpoint: ses.endpoint }, ...(opts.logger ? { logger: opts.logger } : {}) });
    const deps = buildDeps(config, {
      minter: issuer.minter,
      notifier,
      ...(routes ? { routes } : {}),
      signer,
      passkeyVerifier: new SimpleWebAuthnVerifier(config.consentUrl),
      ...(opts.limits ? { limits: opts.limits } : {}),
      ...(opts.waiting ? { waiting: opts.waiting } : {}),
      ...(opts.clock ? { clock: opts.clock } : {}),
      ...(aws ? { aws } : {}),
      ...(opts.logger ? { logger: opts.logger } : {}),
    });
    stops.push(async () => deps.waiting.stop());

    // The audit sequencer: right after each write, and on a timer for what other processes wrote.
    deps.sequencerLoop.start();
    stops.push(() => deps.sequencerLoop.stop());

    // Demo agent key, created once.
    const agentId = parseAgentId(opts.demoAgentId ?? 'demo-agent');
    let agentApiKey = opts.demoAgentApiKey;
    const stillValid = agentApiKey !== undefined && (await authenticateApiKey(deps.apiKeys, agentApiKey).then((a) => a === agentId, () => false));
    if (!stillValid) agentApiKey = (await createApiKey(deps.apiKeys, agentId, deps.clock, { log: deps.apiKeyAudit, actor: { type: 'operator', id: 'npm start' } })).apiKey;
    // Keys kept by a version before keys were sealed no longer authenticate until the operator seals them.
    // (two scans of the table at start-up, side by side)
    const [keys, passkeys] = await Promise.all([deps.apiKeys.listAll(), deps.passkeyStore.all()]);
    const unsealed = keys.filter((k) => k.sealed === false && k.revoked_at === null).length;
    if (unsealed > 0) log.warn(`${unsealed} API key(s) stored before keys were sealed do not authenticate: check npx ackd agents list, then run npx ackd agents seal-keys (docs/agents.md)`);
    const unsealedPasskeys = passkeys.filter((p) => p.sealed === false).length;
    if (unsealedPasskeys > 0) log.warn(`${unsealedPasskeys} passkey(s) stored before passkeys were sealed are not used: check npx ackd passkeys list, then run npx ackd passkeys seal (docs/evidence.md)`);

    const handles = {
      appUrl,
      mcpUrl: `${appUrl}/mcp`,
      dynamodbEndpoint,
      tableName,
      trustDomain,
      trustBundlePath,
      auditKeyPath,
      decisionKeyPath,
      receiptKeyPath,
      outboxSealKeyPath,
      issuerKind: issuer.kind,
      ses,
      deps,
      agentId,
      agentApiKey: agentApiKey!,
      consentUiUrl: `${consentUrl}/`,
      mailUrl: ses.url,
      cognito,
      approverUsername: cognito?.approverUsername,
      approverPassword: cognito?.approverPassword,
      ...(localAws ? { awsDemo: localAws.demo } : {}),
    };
    if (cognito) await cognito.setCallbackUrls([`${consentUrl}/`]);
    const app = createApp({ ...deps, health: () => healthReport(issuer.health?.()) }, (a) => {
      if (cognito && uiDist) {
        const verifier = new CognitoVerifier({ issuer: cognito.issuer, jwksUrl: cognito.jwksUrl, clientId: cognito.clientId, clock: deps.clock });
        a.route('/api', consentApi({ service: deps.service, verifier, logger: deps.logger, clock: deps.clock, audit: deps.audit, passkeys: deps.passkeys }));
        a.route('/', consentUiRoutes(uiDist, { cognitoDomain: cognito.authorizeBase, clientId: cognito.clientId, redirectUri: `${consentUrl}/`, apiBase: '/api' }));
      }
    });
    routed.listener = getRequestListener(app.fetch);

    const sweepMs = opts.sweepIntervalMs ?? 30_000;
    if (sweepMs > 0) {
      const timer = setInterval(() => {
        periodicWork(deps, 100).catch((e: unknown) => deps.logger.warn('sweep failed', { error: e instanceof Error ? e.message : String(e) }));
      }, sweepMs);
      timer.unref();
      stops.push(async () => clearInterval(timer));
      // SPIRE rotates its CA (at half of ca_ttl); keep the PEM bundle on disk current.
      const bundleTimer = setInterval(() => {
        writeTrustBundle(issuer.minter, trustBundlePath).catch((e: unknown) =>
          deps.logger.warn('could not refresh the trust bundle file', { error: e instanceof Error ? e.message : String(e) }),
        );
      }, Math.max(sweepMs, 60_000));
      bundleTimer.unref();
      stops.push(async () => clearInterval(bundleTimer));
    }

    await ownerOnly('created while starting');
    return { ...handles, stop: stopAll };
  } catch (e) {
    await stopAll();
    throw e;
  }
}

function reportTightened(log: Pick<Logger, 'info' | 'warn'>, when: string, r: TightenResult): void {
  if (r.changed.length > 0) {
    // Left by an earlier run: worth a warning (others could read secrets). Since this start: what
    // a child made with an explicit mode (spire-server's admin socket), or anything made while the
    // umask is not 077 (tests), so just noted.
    const note = when === 'from an earlier run' ? log.warn.bind(log) : log.info.bind(log);
    note(`made ${r.changed.length} path(s) in the state directory owner-only (${when}); group or others could use them`, {
      paths: r.changed.slice(0, 20).map((c) => `${c.path} ${c.from}->${c.to}`),
    });
  }
  if (r.failed.length > 0) log.warn('could not make these paths in the state directory owner-only', { paths: r.failed.slice(0, 20) });
}
