import { handle } from 'hono/aws-lambda';
import { createApp } from '../app.ts';
import { loadConfig } from '../config.ts';
import { buildServiceDeps } from '../deps.ts';
import { issuerFromConfig } from '../issuer.ts';
import { observed, powertoolsLogger, traced } from '../adapters/powertools.ts';

// config → dependencies → handle. Built once per Lambda instance. Structured logs, metrics and
// X-Ray tracing through Powertools (inert outside Lambda).
// This function sends no consent notification: a new request is announced once its event is in
// the audit log, by the sequencer's follow-up, which runs in the sweeper (buildDeps sets
// notifyAfterSequencing; the sequencer loop never runs in a Lambda). So it gets no notifier and
// no routes, and neither passkeys (the consent API's), nor the audit log's reader, signer and
// sequencer (buildServiceDeps): SES, the channels, WebAuthn and AuditService stay out of its
// bundle (test/infra/bundle-mcp.test.ts).
const config = loadConfig();
const logger = powertoolsLogger('mcp', { level: config.logLevel });
const issuer = await issuerFromConfig(config);
const deps = buildServiceDeps(config, { minter: issuer.minter, logger, instrument: traced });

export const handler = observed(logger, handle(createApp(deps)));
