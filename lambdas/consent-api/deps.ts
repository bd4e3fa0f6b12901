import { CognitoVerifier } from '../adapters/cognito/verifier.ts';
import { SesNotifier, sesClient } from '../adapters/ses/notifier.ts';
import type { ApprovalNotifier, Clock } from '../core/ports.ts';
import type { CognitoConfig, MailConfig } from './config.ts';

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
