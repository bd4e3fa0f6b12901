import { CognitoVerifier } from '../adapters/cognito/verifier.ts';
import { SesNotifier, sesClient } from '../adapters/ses/notifier.ts';
import type { ApprovalNotifier, Clock } from '../core/ports.ts';
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
