import { SESv2Client, SendEmailCommand } from '@aws-sdk/client-sesv2';
import { AckdError } from '../../core/errors.ts';
import type { DigestContent, RecipientNotifier } from '../../core/limits.ts';
import type { AuthorizationRecord } from '../../core/request.ts';
import { renderDigestEmail } from './digest.ts';
import { renderConsentEmail, type ConsentEmail } from './template.ts';

export interface ApproverRouting {
  /** Approvers for agents without a route of their own. */
  readonly defaultApprovers: readonly string[];
  /** agent_id → approvers; replaces the default list for that agent. */
  readonly routes: Readonly<Record<string, readonly string[]>>;
}

export function approversFor(routing: ApproverRouting, agentId: string): readonly string[] {
  const routed = Object.hasOwn(routing.routes, agentId) ? routing.routes[agentId] : undefined;
  return routed && routed.length > 0 ? routed : routing.defaultApprovers;
}

const EMAIL = /^[^\s@<>()[\]\\,;:"]+@[^\s@<>()[\]\\,;:"]+\.[^\s@<>()[\]\\,;:"]+$/;

export function parseEmail(value: string, field: string): string {
  const v = value.trim();
  if (v.length > 254 || !EMAIL.test(v)) throw new AckdError('ERR_CONFIG', `${field}: "${v}" is not an email address`, { field });
  return v;
}

/** Parses ACKD_APPROVERS ("a@x,b@y") and ACKD_APPROVER_ROUTES ('{"agent":["a@x"]}'). */
export function parseApproverRouting(approvers: string | undefined, routesJson: string | undefined): ApproverRouting {
  const defaultApprovers = (approvers ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => parseEmail(s, 'ACKD_APPROVERS'));
  const routes: Record<string, readonly string[]> = {};
  if (routesJson && routesJson.trim()) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(routesJson);
    } catch {
      throw new AckdError('ERR_CONFIG', 'ACKD_APPROVER_ROUTES: must be JSON like {"agent_id": ["approver@example.com"]}', { field: 'ACKD_APPROVER_ROUTES' });
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new AckdError('ERR_CONFIG', 'ACKD_APPROVER_ROUTES: must be a JSON object of agent_id to email list', { field: 'ACKD_APPROVER_ROUTES' });
    }
    for (const [agent, list] of Object.entries(parsed)) {
      if (!Array.isArray(list) || list.some((x) => typeof x !== 'string')) {
        throw new AckdError('ERR_CONFIG', `ACKD_APPROVER_ROUTES: "${agent}" must map to a list of emails`, { field: 'ACKD_APPROVER_ROUTES' });
      }
      routes[agent] = (list as string[]).map((s) => parseEmail(s, `ACKD_APPROVER_ROUTES.${agent}`));
    }
  }
  return { defaultApprovers, routes };
}

export interface SesNotifierOptions {
  readonly client: SESv2Client;
  /** Verified SES sender address, e.g. "ackd <ackd@example.com>". */
  readonly sender: string;
  readonly routing: ApproverRouting;
  /** SES configuration set, if any. */
  readonly configurationSetName?: string;
}

/**
 * Sends the consent email through the SES v2 API (SES on AWS, aws-ses-v2-local locally). The
 * core may name a subset of the recipients (the others are over their mail limit and get the
 * request in a digest instead), but never anyone outside the request's approvers.
 */
export class SesNotifier implements RecipientNotifier {
  constructor(private readonly opts: SesNotifierOptions) {}

  recipients(record: AuthorizationRecord): readonly string[] {
    return approversFor(this.opts.routing, record.agent_id);
  }

  async notify(record: AuthorizationRecord, consentUrl: string, only?: readonly string[]): Promise<void> {
    const approvers = this.recipients(record);
    const to = only === undefined ? approvers : approvers.filter((a) => only.includes(a));
    if (to.length === 0) throw new AckdError('ERR_CONFIG', `no approvers configured for agent ${record.agent_id}`);
    await this.send(to, renderConsentEmail(record, consentUrl));
  }

  /** One digest to one approver. */
  async notifyDigest(to: string, digest: DigestContent): Promise<void> {
    await this.send([parseEmail(to, 'digest recipient')], renderDigestEmail(digest));
  }

  private async send(to: readonly string[], mail: ConsentEmail): Promise<void> {
    await this.opts.client.send(
      new SendEmailCommand({
        FromEmailAddress: this.opts.sender,
        Destination: { ToAddresses: [...to] },
        Content: {
          Simple: {
            Subject: { Data: mail.subject, Charset: 'UTF-8' },
            Body: { Text: { Data: mail.text, Charset: 'UTF-8' }, Html: { Data: mail.html, Charset: 'UTF-8' } },
          },
        },
        ...(this.opts.configurationSetName ? { ConfigurationSetName: this.opts.configurationSetName } : {}),
      }),
    );
  }
}

/** An SESv2 client; `endpoint` overrides the AWS endpoint (aws-ses-v2-local). */
export function sesClient(opts: { region: string; endpoint?: string }): SESv2Client {
  return new SESv2Client({
    region: opts.region,
    ...(opts.endpoint
      ? { endpoint: opts.endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
      : {}),
    maxAttempts: 2,
  });
}
