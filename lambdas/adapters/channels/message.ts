import { AckdError } from '../../core/errors.ts';
import type { RouteMessage } from '../../core/ports.ts';
import type { AuthorizationRecord } from '../../core/request.ts';
import { fold, FOLD_CHARS, groupedHex, moreCharacters, payloadFields } from '../../core/payload-fields.ts';
import { payloadSha256 } from '../../core/payload.ts';

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

/** Characters of a field's path a message shows before cutting it. */
export const MESSAGE_PATH_MAX = 120;

/** A request's payload as a notification lists it (raw text: each channel escapes it its own way). */
export interface PayloadListing {
  /** The first fields, `path` and `value` as the consent page shows them, long ones cut with how much the page has besides. */
  readonly fields: readonly { readonly path: string; readonly value: string }[];
  /** Fields not listed (the consent page shows them). */
  readonly more: number;
  /** The payload's SHA-256 in groups of 4. */
  readonly sha256: string;
}

/** A value (or path) cut for a message: its first line, at most `max` characters, and how much the page has besides. */
export function cutForMessage(text: string, max = FOLD_CHARS): string {
  const f = fold(text, max);
  return f.folded ? `${f.preview} (… ${moreCharacters(f.hidden)}: see the consent page)` : text;
}

/**
 * The payload for a notification: its first `maxFields` rows (core/payload-fields.ts, the consent
 * page's rows), paths and values cut, how many rows are left out, and the SHA-256 grouped. Bounded
 * whatever the payload. Null when the request has none.
 */
export function payloadListing(r: Pick<AuthorizationRecord, 'payload' | 'payload_sha256'>, maxFields: number): PayloadListing | null {
  if (!r.payload) return null;
  const all = payloadFields(r.payload);
  const fields = all.slice(0, maxFields).map((f) => ({ path: cutForMessage(f.path, MESSAGE_PATH_MAX), value: cutForMessage(f.text) }));
  return { fields, more: all.length - fields.length, sha256: groupedHex(r.payload_sha256 ?? payloadSha256(r.payload)) };
}

/** "… and 12 more fields: see the consent page", or null when every field is listed. */
export function moreFieldsLine(more: number): string | null {
  return more > 0 ? `… and ${more.toLocaleString('en-US')} more field${more === 1 ? '' : 's'}: see the consent page` : null;
}
