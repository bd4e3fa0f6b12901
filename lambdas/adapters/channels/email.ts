import { SendEmailCommand, type SESv2Client } from '@aws-sdk/client-sesv2';
import { parseEmail } from '../ses/notifier.ts';
import { emailSubject, escapeHtml, oneLine, renderConsentEmail, SUBJECT_MAX, truncate, type ConsentEmail } from '../ses/template.ts';
import { approvalsLine, channelError, channelLabel, reviewUrl, type ApprovalMessage, type ChannelNotifier } from './message.ts';

/**
 * Email as a channel: the consent email of lambdas/adapters/ses (same template, same escaping),
 * sent through SES to a route's fixed address list, so one route can mix email, webhooks and
 * Slack. The mail also says why these recipients were asked and, under a quorum, how many
 * approvals the request has: the two things a routed notification adds to the plain consent email.
 */

export interface EmailChannelOptions {
  readonly name: string;
  readonly client: SESv2Client;
  /** Verified SES sender address, e.g. "ackd <ackd@example.com>". */
  readonly sender: string;
  readonly to: readonly string[];
  readonly configurationSetName?: string;
}

/** The consent email for a routed message (pure): the template's mail plus the reason and the quorum progress. */
export function routedConsentEmail(m: ApprovalMessage): ConsentEmail {
  const mail = renderConsentEmail(m.record, reviewUrl(m.consentUrl));
  const progress = approvalsLine(m.approvals);
  const voters = m.approvals && m.approvals.voters.length > 0 ? m.approvals.voters.map(oneLine).join(', ') : null;
  const why = `${oneLine(m.reason)} (route ${oneLine(m.route)})`;

  const textLines = [
    ...(m.escalation ? ['This is an escalation: the approvers asked first have not decided.'] : []),
    `Why you:       ${why}`,
    ...(progress ? [`Approvals:     ${progress} so far${voters ? `, from ${voters}` : ''}`] : []),
  ];
  const [first, ...rest] = mail.text.split('\n');
  const text = [first, '', ...textLines, ...rest].join('\n');

  const e = escapeHtml;
  // Long reasons and voter lists wrap inside the card (anywhere, if need be) rather than widen it.
  const note = (s: string) => `<p style="margin:0 0 8px;font-size:15px;overflow-wrap:anywhere;word-break:break-word">${s}</p>`;
  const htmlBlock = [
    ...(m.escalation ? [note('<strong>Escalation:</strong> the approvers asked first have not decided.')] : []),
    note(`<strong>Why you:</strong> ${e(why)}`),
    ...(progress ? [note(`<strong>Approvals:</strong> ${e(progress)} so far${voters ? `, from ${e(voters)}` : ''}`)] : []),
  ].join('\n');
  // The template has one heading; the notes go right under it (or first in the body, should it change).
  const at = mail.html.indexOf('</h1>');
  const html = at === -1 ? mail.html.replace(/<body[^>]*>/, (b) => `${b}\n${htmlBlock}`) : `${mail.html.slice(0, at + 5)}\n${htmlBlock}${mail.html.slice(at + 5)}`;

  const subject = m.escalation ? truncate(oneLine(`Escalation: ${emailSubject(m.record)}`), SUBJECT_MAX) : mail.subject;
  return { subject, text, html };
}

export class EmailChannel implements ChannelNotifier {
  readonly kind = 'email' as const;
  readonly name: string;
  readonly #opts: EmailChannelOptions;
  readonly #to: readonly string[];

  constructor(opts: EmailChannelOptions) {
    if (opts.to.length === 0) throw new RangeError(`email ${opts.name}: no recipients`);
    this.name = opts.name;
    this.#opts = opts;
    this.#to = opts.to.map((a, i) => parseEmail(a, `email ${opts.name} recipient ${i + 1}`));
  }

  /** The fixed recipients of this channel. */
  get recipients(): readonly string[] {
    return this.#to;
  }

  async send(m: ApprovalMessage): Promise<void> {
    const mail = routedConsentEmail(m);
    try {
      // The SES client retries throttling and 5xx itself (sesClient: maxAttempts 2).
      await this.#opts.client.send(
        new SendEmailCommand({
          FromEmailAddress: this.#opts.sender,
          Destination: { ToAddresses: [...this.#to] },
          Content: {
            Simple: {
              Subject: { Data: mail.subject, Charset: 'UTF-8' },
              Body: { Text: { Data: mail.text, Charset: 'UTF-8' }, Html: { Data: mail.html, Charset: 'UTF-8' } },
            },
          },
          ...(this.#opts.configurationSetName ? { ConfigurationSetName: this.#opts.configurationSetName } : {}),
        }),
      );
    } catch (e) {
      const status = (e as { $metadata?: { httpStatusCode?: unknown } }).$metadata?.httpStatusCode;
      const name = e instanceof Error && /^[A-Za-z]{1,64}$/.test(e.name) ? e.name : 'error';
      throw channelError(channelLabel(this), `SES did not send the message (${name}${typeof status === 'number' ? `, HTTP ${status}` : ''})`);
    }
  }

  toJSON(): { kind: 'email'; name: string; recipients: number } {
    return { kind: this.kind, name: this.name, recipients: this.#to.length };
  }
}
