import { Hono } from 'hono';
import type { ApiKeyStore, BundleStore, Clock, Logger, SvidMinter } from './core/ports.ts';
import type { AuthorizationService } from './core/service.ts';
import type { HealthReport } from './issuer.ts';
import { svidRoutes } from './http/svid-routes.ts';
import { mcpHandler, whoamiHandler } from './mcp/http.ts';
import type { ToolCallRecorder } from './core/tool-calls.ts';
import { awsRoutes } from './http/aws-routes.ts';
import type { AwsCredentialBroker } from './core/aws-broker.ts';
import { evidenceKeyRoutes } from './http/evidence-keys.ts';
import { withFallbacks } from './http/fallbacks.ts';
import type { ReceiptSigner } from './core/receipt.ts';

export interface AppDeps {
  readonly service: AuthorizationService;
  readonly apiKeys: ApiKeyStore;
  /** Serves the trust bundle (/.well-known/spiffe-bundle) next to the SVID status endpoint. */
  readonly minter: SvidMinter;
  readonly logger: Logger;
  /** The last known trust bundle, served while the issuer is down. */
  readonly bundles?: BundleStore;
  readonly clock?: Clock;
  readonly sleep?: (ms: number) => Promise<void>;
  /**
   * What /healthz reports; `ok: false` answers 503. Must be cheap (a cached state, no call to a
   * dependency): /healthz is public. Without it, /healthz is a liveness check: `{"ok":true}`.
   */
  readonly health?: () => HealthReport;
  /** The AWS credential broker (POST /v1/aws/credentials), when roles are configured. */
  readonly awsBroker?: AwsCredentialBroker;
  /** The receipt key: its public key is served as a JWKS (/.well-known/ackd-receipt-keys.json, /.well-known/jwks.json). */
  readonly receipts?: ReceiptSigner;
  /** The decision public key, served as PEM (/.well-known/ackd-decision-key.pem). */
  readonly decisionPublicKeyPem?: () => Promise<string>;
  /** Records tool calls made through a gateway (the MCP tool record_tool_calls). */
  readonly toolCalls?: ToolCallRecorder;
}

/**
 * The HTTP surface of ackd as one web-standard `fetch` app. The local server and the tests call
 * the same app; on AWS it is split between two functions: the MCP function serves
 * createServiceApp (everything but the AWS credential broker), and POST /v1/aws/credentials has its
 * own function (lambdas/handlers/aws-credentials.ts), so the MCP function's bundle carries neither
 * STS nor the X.509 path validation of SVID proofs (test/infra/bundle-mcp.test.ts).
 */
export function createApp(deps: AppDeps, mount: (app: Hono) => void = () => undefined): Hono {
  return createServiceApp(deps, (app) => {
    if (deps.awsBroker) app.route('/', awsRoutes({ ...deps, broker: deps.awsBroker, trustDomain: deps.service.trustDomain }));
    mount(app);
  });
}

/** createApp without the AWS credential broker's route (the MCP function; the broker is its own function on AWS). */
export function createServiceApp(deps: AppDeps, mount: (app: Hono) => void = () => undefined): Hono {
  const app = new Hono();
  const mcp = mcpHandler(deps);
  app.all('/mcp', (c) => mcp(c.req.raw));
  const whoami = whoamiHandler(deps);
  app.get('/v1/whoami', (c) => whoami(c.req.raw));
  app.get('/healthz', (c) => {
    const h = deps.health?.() ?? { ok: true };
    return c.json(h, h.ok ? 200 : 503, { 'cache-control': 'no-store' });
  });
  app.route(
    '/',
    svidRoutes({
      minter: deps.minter,
      service: deps.service,
      trustDomain: deps.service.trustDomain,
      logger: deps.logger,
      ...(deps.bundles ? { bundles: deps.bundles } : {}),
      ...(deps.clock ? { clock: deps.clock } : {}),
    }),
  );
  app.route('/', evidenceKeyRoutes({ logger: deps.logger, ...(deps.receipts ? { receipts: deps.receipts } : {}), ...(deps.decisionPublicKeyPem ? { decisionPublicKeyPem: deps.decisionPublicKeyPem } : {}) }));
  mount(app);
  return withFallbacks(app, deps.logger);
}
