import { AckdError } from '../../core/errors.ts';
import { visible } from '../../core/visible.ts';
import { humanUtc, oneLine } from '../ses/template.ts';
import { postWithRetry, type RetryPolicy } from './delivery.ts';
import { approvalsLine, channelLabel, moreFieldsLine, payloadListing, reviewUrl, type ApprovalMessage, type ChannelNotifier } from './message.ts';

/**
 * The Slack channel: a Block Kit message POSTed to a Slack incoming webhook (or anything that
 * speaks its format: Mattermost, Rocket.Chat …). The webhook URL is itself the credential, so it
 * is configured through a secret and never appears in an error or a log line.
 *
 * Everything the agent wrote is rendered inert: `&`, `<` and `>` are escaped (so no `<!channel>`,
 * `<@U123>` or `<https://evil|innocent>` can be spelled), the text objects are `verbatim` (Slack
 * does not link bare URLs, channel names or mentions in them), control characters are dropped and
 * invisible or direction-changing ones shown as `[U+XXXX]`, as in the consent email. Lengths are
 * cut to Block Kit's limits so Slack never refuses the message for size.
 */

/** Block Kit limits (https://api.slack.com/reference/block-kit). */
export const SLACK_LIMITS = {
  header: 150,
  sectionText: 3000,
  field: 2000,
  contextText: 3000,
  buttonText: 75,
  buttonUrl: 3000,
  /** The top-level fallback text (notifications, screen readers); Slack shows about this much. */
  fallbackText: 3000,
} as const;

/** Payload fields a Slack message lists (each cut at 200 characters; the consent page shows them all). */
const SLACK_PAYLOAD_FIELDS = 10;

const SLACK_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;' };

/** Escapes Slack's control characters (&, <, >): the text can no longer form a link, mention or date. */
export function escapeSlack(s: string): string {
  return s.replace(/[&<>]/g, (c) => SLACK_ESCAPES[c]!);
}

/** Keeps line breaks, drops other control characters, makes bidi and invisible characters visible. */
function multiLine(s: string): string {
  return visible(s.replace(/\r\n?/g, '\n')).replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/g, '');
}

/** Agent text for one mrkdwn line: one line, then escaped. */
function inline(s: string): string {
  return escapeSlack(oneLine(s));
}

/**
 * Cuts escaped text to `max` UTF-16 units with an ellipsis, never inside an entity (`&amp;`) or a
 * surrogate pair, so the cut text is still well-formed.
 */
export function fitSlack(s: string, max: number): string {
  if (s.length <= max) return s;
  let cut = max - 1;
  const amp = s.lastIndexOf('&', cut - 1);
  if (amp !== -1 && cut - amp < 5 && !s.slice(amp, cut).includes(';')) cut = amp;
  const code = s.charCodeAt(cut - 1);
  if (code >= 0xd800 && code <= 0xdbff) cut--;
  return `${s.slice(0, cut)}…`;
}

type TextObject = { type: 'mrkdwn'; text: string; verbatim: true } | { type: 'plain_text'; text: string; emoji: boolean };

function md(text: string, max: number): TextObject {
  return { type: 'mrkdwn', text: fitSlack(text, max), verbatim: true };
}

function plain(text: string, max: number): TextObject {
  return { type: 'plain_text', text: fitSlack(text, max), emoji: false };
}

/** Slack shows the deadline in the reader's own time zone; the fallback is the UTC time. */
function slackDate(iso: string): string {
  const unix = Math.floor(Date.parse(iso) / 1000);
  return `<!date^${unix}^{date_short_pretty} at {time}|${escapeSlack(humanUtc(iso))}>`;
}

export interface SlackMessage {
  readonly text: string;
  readonly blocks: readonly Record<string, unknown>[];
  readonly unfurl_links: false;
  readonly unfurl_media: false;
}

/** The Block Kit message for one approval request (pure). */
export function slackMessage(m: ApprovalMessage): SlackMessage {
  const r = m.record;
  const href = reviewUrl(m.consentUrl);
  if (href.length > SLACK_LIMITS.buttonUrl) throw new AckdError('ERR_INTERNAL', `notification: the review URL is longer than Slack's ${SLACK_LIMITS.buttonUrl} characters`);
  const agent = oneLine(r.agent_id);
  const progress = approvalsLine(m.approvals);

  const justification = multiLine(r.justification)
    .split('\n')
    .map((l) => `>${escapeSlack(l)}`)
    .join('\n');

  const blocks: Record<string, unknown>[] = [
    { type: 'header', text: plain(`Approval needed: ${agent}`, SLACK_LIMITS.header) },
  ];
  if (m.escalation) {
    blocks.push({ type: 'context', elements: [md(':rotating_light: *Escalation*: the first approvers have not decided yet.', SLACK_LIMITS.contextText)] });
  }
  blocks.push(
    {
      type: 'section',
      fields: [
        md(`*Agent*\n${inline(agent)}`, SLACK_LIMITS.field),
        md(`*Action*\n${inline(r.action)}`, SLACK_LIMITS.field),
        md(`*Permissions*\n${r.permissions.map((p) => `• ${inline(p)}`).join('\n')}`, SLACK_LIMITS.field),
        md(`*Deadline*\n${slackDate(r.expires_at)} (${r.ttl_minutes} min after the request)`, SLACK_LIMITS.field),
      ],
    },
    { type: 'section', text: md(`*Justification* _(the agent's claim, not verified by ackd)_\n${justification}`, SLACK_LIMITS.sectionText) },
  );
  const payload = payloadListing(r, SLACK_PAYLOAD_FIELDS);
  if (payload) {
    // The digest first, in a block of its own, so no cut of the list can take it away.
    blocks.push({ type: 'section', text: md(`*Parameters SHA-256* _(compare it with what the pipeline printed)_\n${escapeSlack(payload.sha256)}`, SLACK_LIMITS.sectionText) });
    const rows = payload.fields.map((f) => `• ${escapeSlack(f.path)}: ${escapeSlack(f.value)}`);
    const more = moreFieldsLine(payload.more);
    blocks.push({ type: 'section', text: md(`*Parameters* _(exactly what is approved)_\n${rows.length === 0 ? '(an empty object)' : rows.join('\n')}${more ? `\n${escapeSlack(more)}` : ''}`, SLACK_LIMITS.sectionText) });
  }
  if (m.approvals !== null && progress !== null) {
    const voters = m.approvals.voters.length > 0 ? ` so far, from ${m.approvals.voters.map(inline).join(', ')}` : ' so far';
    blocks.push({ type: 'section', text: md(`*${progress}*${voters}.`, SLACK_LIMITS.sectionText) });
  }
  blocks.push(
    {
      type: 'context',
      elements: [md(`*Why you:* ${inline(m.reason)} · route \`${inline(m.route)}\` · request \`${inline(r.request_id)}\``, SLACK_LIMITS.contextText)],
    },
    {
      type: 'actions',
      elements: [
        {
          type: 'button',
          action_id: 'ackd_review',
          style: 'primary',
          text: plain('Review request', SLACK_LIMITS.buttonText),
          url: href,
        },
      ],
    },
  );

  const fallback = `${m.escalation ? 'Escalation: ' : ''}Approval needed: agent ${inline(agent)} asks to ${inline(r.action)}${progress ? ` (${progress})` : ''}. Review: ${escapeSlack(href)}`;
  return { text: fitSlack(fallback, SLACK_LIMITS.fallbackText), blocks, unfurl_links: false, unfurl_media: false };
}

export interface SlackChannelOptions {
  readonly name: string;
  /** The incoming-webhook URL: a credential. Kept in this object only; never logged or thrown. */
  readonly url: string;
  readonly fetch?: typeof fetch;
  readonly policy?: Partial<RetryPolicy>;
}

export class SlackChannel implements ChannelNotifier {
  readonly kind = 'slack' as const;
  readonly name: string;
  readonly #url: string;
  readonly #fetch: typeof fetch | undefined;
  readonly #policy: Partial<RetryPolicy> | undefined;

  constructor(opts: SlackChannelOptions) {
    this.name = opts.name;
    this.#url = opts.url;
    this.#fetch = opts.fetch;
    this.#policy = opts.policy;
  }

  async send(m: ApprovalMessage): Promise<void> {
    const body = JSON.stringify(slackMessage(m));
    await postWithRetry({
      channel: channelLabel(this),
      url: this.#url,
      body,
      headers: () => ({ 'Content-Type': 'application/json; charset=utf-8', 'User-Agent': 'ackd-slack/1' }),
      ...(this.#fetch ? { fetch: this.#fetch } : {}),
      ...(this.#policy ? { policy: this.#policy } : {}),
    });
  }

  /** Never the URL, should the channel end up in a log line. */
  toJSON(): { kind: 'slack'; name: string } {
    return { kind: this.kind, name: this.name };
  }
}
