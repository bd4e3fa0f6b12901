import { Hono } from 'hono';
import { streamHandle } from 'hono/aws-lambda';
import { loadConfig } from '../config.ts';
import { buildDeps, noMinter } from '../deps.ts';
import { consentApi } from '../consent-api/app.ts';
import { loadCognitoConfig } from '../consent-api/config.ts';
import { verifierFromConfig } from '../consent-api/deps.ts';
import { observeRequests, powertoolsLogger, traced } from '../adapters/powertools.ts';

// The approver-authenticated audit export, with response streaming (CloudFront routes
// /api/audit/* here through a streaming API Gateway REST integration): the export leaves in
// pieces as it is read, instead of being buffered whole. Same approver authentication as the
// consent API, but only the /audit routes: this function only reads the table. Structured logs,
// metrics and X-Ray tracing through Powertools (inert outside Lambda).
const config = loadConfig();
const logger = powertoolsLogger('audit-export', { level: config.logLevel });
const cognito = loadCognitoConfig(process.env, config.local);
const deps = buildDeps(config, { minter: noMinter, logger, instrument: traced });
const api = consentApi({
  service: deps.service,
  verifier: verifierFromConfig(cognito, deps.clock),
  logger: deps.logger,
  clock: deps.clock,
  allowedOrigins: cognito.allowedOrigins,
  audit: deps.audit,
  decisions: false,
});

export const handler = streamHandle(new Hono().use(observeRequests(logger)).route('/api', api));
