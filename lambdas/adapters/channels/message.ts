import { AckdError } from '../../core/errors.ts';
import type { RouteMessage } from '../../core/ports.ts';

/**
 * What every notification channel renders: one request, the link to review it, and why these
 * recipients are being asked (the core's RouteMessage). The channels (email, signed webhook, Slack)
 * differ only in how they render and deliver it; which route is asked, and when, is the core's decision.
 */
export type ApprovalMessage = RouteMessage;

export type ChannelKind = 'email' | 'webhook' | 'slack';

/**
 * One configured destination. `send` resolves once the destination accepted the message and throws
 * an AckdError (ERR_INTERNAL) naming the channel after its retries failed. Its message never holds
 * a secret: not the signing key, not a Slack URL, not the webhook URL at all (its query may carry a
 * token), only the channel (`<kind>:<name>`) and what went wrong (HTTP status, timeout, error code).
 */
export interface ChannelNotifier {
  readonly kind: ChannelKind;
  readonly name: string;
  send(m: ApprovalMessage): Promise<void>;
}

/** `<kind>:<name>`, how a channel is named in errors, logs and outcomes. */
export function channelLabel(c: Pick<ChannelNotifier, 'kind' | 'name'>): string {
  return `${c.kind}:${c.name}`;
}

/** The one failure of a channel: ERR_INTERNAL with a message that is safe to log and to show. */
export function channelError(channel: string, what: string): AckdError {
  return new AckdError('ERR_INTERNAL', `notification channel ${channel}: ${what}`);
}

/** The review link, checked once before anything is rendered: never send a malformed or non-http(s) link. */
export function reviewUrl(consentUrl: string): string {
  let u: URL;
  try {
    u = new URL(consentUrl);
  } catch {
    throw new AckdError('ERR_INTERNAL', 'notification: the review URL is not an absolute URL');
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new AckdError('ERR_INTERNAL', 'notification: the review URL must be http(s)');
  return u.toString();
}

/** "1 of 2 approvals", or null when one approval decides. */
export function approvalsLine(a: ApprovalMessage['approvals']): string | null {
  if (a === null) return null;
  return `${a.have} of ${a.need} approval${a.need === 1 ? '' : 's'}`;
}
