import { handle } from 'hono/aws-lambda';
import { createApp } from '../app.ts';
import { loadConfig } from '../config.ts';
import { buildDeps } from '../deps.ts';
import { issuerFromConfig } from '../issuer.ts';
import { notifierFromEnv, routesFromEnv } from '../consent-api/deps.ts';
import { observed, powertoolsLogger, traced } from '../adapters/powertools.ts';

// config → dependencies → handle. Built once per Lambda instance. Structured logs, metrics and
// X-Ray tracing through Powertools (inert outside Lambda).
const config = loadConfig();
const logger = powertoolsLogger('mcp', { level: config.logLevel });
const issuer = await issuerFromConfig(config);
const routes = await routesFromEnv(process.env, config);
const deps = buildDeps(config, { minter: issuer.minter, notifier: notifierFromEnv(process.env, config), logger, instrument: traced, ...(routes ? { routes } : {}) });

export const handler = observed(logger, handle(createApp(deps)));
