import { CognitoVerifier } from '../adapters/cognito/verifier.ts';
import { SesNotifier, sesClient } from '../adapters/ses/notifier.ts';
import type { ApprovalNotifier, Clock, Logger, RouteSender } from '../core/ports.ts';
import { buildChannels, parseRoutes, RouteNotifier } from '../adapters/channels/index.ts';
import { loadMailConfig, type CognitoConfig, type MailConfig } from './config.ts';

/** The approver-token verifier for a configuration (same code for cognito-local and AWS). */
export function verifierFromConfig(c: CognitoConfig, clock?: Clock): CognitoVerifier {
  return new CognitoVerifier({ issuer: c.issuer, jwksUrl: c.jwksUrl, clientId: c.clientId, ...(clock ? { clock } : {}) });
}

/** The consent-email notifier for a configuration. */
export function notifierFromConfig(m: MailConfig, region: string): ApprovalNotifier {
  return new SesNotifier({
    client: sesClient({ region, ...(m.sesEndpoint ? { endpoint: m.sesEndpoint } : {}) }),
    sender: m.sender,
    routing: m.routing,
    ...(m.configurationSetName ? { configurationSetName: m.configurationSetName } : {}),
  });
}

/**
 * For the Lambda handlers that create requests (MCP) or retry mail (sweeper):
 * `buildDeps(config, { minter, notifier: notifierFromEnv(process.env, config) })`.
 * Needs ACKD_SENDER and ACKD_APPROVERS (or ACKD_APPROVER_ROUTES) outside local mode.
 */
export function notifierFromEnv(env: Record<string, string | undefined>, config: { local: boolean; region: string }): ApprovalNotifier | undefined {
  const mail = loadMailConfig(env, config.local);
  return mail ? notifierFromConfig(mail, config.region) : undefined;
}

/**
 * The notification routes of ACKD_ROUTES (email, signed webhook, Slack), with their secrets read
 * now (a bad one fails the start, not the first notification); undefined when none are set.
 * Email channels send with the SES sender of ACKD_SENDER (or `mail` when given).
 */
export async function routesFromEnv(
  env: Record<string, string | undefined>,
  config: { local: boolean; region: string },
  opts: { logger?: Logger; mail?: { sender: string; sesEndpoint?: string } } = {},
): Promise<RouteSender | undefined> {
  const routes = parseRoutes(env.ACKD_ROUTES, { local: config.local });
  if (routes.size === 0) return undefined;
  const mail = opts.mail ?? loadMailConfig(env, config.local);
  const endpoint = mail?.sesEndpoint;
  const channels = await buildChannels(routes, {
    env,
    local: config.local,
    ...(mail ? { ses: sesClient({ region: config.region, ...(endpoint ? { endpoint } : {}) }), sender: mail.sender } : {}),
  });
  return new RouteNotifier(channels, opts.logger ? { logger: opts.logger } : {});
}
