import { Hono } from 'hono';
import { handle } from 'hono/aws-lambda';
import { loadConfig } from '../config.ts';
import { buildDeps, noMinter } from '../deps.ts';
import { consentApi } from '../consent-api/app.ts';
import { loadCognitoConfig } from '../consent-api/config.ts';
import { verifierFromConfig } from '../consent-api/deps.ts';
import { observed, powertoolsLogger, traced } from '../adapters/powertools.ts';
import { SimpleWebAuthnVerifier } from '../adapters/webauthn/simplewebauthn.ts';

// config → dependencies → handle. Built once per Lambda instance. This function decides; it
// never issues SVIDs (issuance happens at the agent's check), so it gets no minter; it is the one
// function that verifies passkeys (WebAuthn), so only its bundle carries @simplewebauthn/server. Structured
// logs, metrics and X-Ray tracing through Powertools (inert outside Lambda).
const config = loadConfig();
const logger = powertoolsLogger('consent-api', { level: config.logLevel });
const cognito = loadCognitoConfig(process.env, config.local);
const deps = buildDeps(config, { minter: noMinter, logger, instrument: traced, passkeyVerifier: new SimpleWebAuthnVerifier(config.consentUrl) });
const api = consentApi({ service: deps.service, verifier: verifierFromConfig(cognito, deps.clock), logger: deps.logger, clock: deps.clock, allowedOrigins: cognito.allowedOrigins, passkeys: deps.passkeys });

// CloudFront forwards /api/* with the path intact.
export const handler = observed(logger, handle(new Hono().route('/api', api)));
