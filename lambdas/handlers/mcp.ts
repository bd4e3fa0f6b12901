import { handle } from 'hono/aws-lambda';
import { createApp } from '../app.ts';
import { loadConfig } from '../config.ts';
import { buildDeps } from '../deps.ts';
import { issuerFromConfig } from '../issuer.ts';
import { notifierFromEnv, routesFromEnv } from '../consent-api/deps.ts';

// config → dependencies → handle. Built once per Lambda instance.
const config = loadConfig();
const issuer = await issuerFromConfig(config);
const routes = await routesFromEnv(process.env, config);
const deps = buildDeps(config, { minter: issuer.minter, notifier: notifierFromEnv(process.env, config), ...(routes ? { routes } : {}) });

export const handler = handle(createApp(deps));
