import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { systemClock, type Clock } from '../../core/ports.ts';
import { postWithRetry, type RetryPolicy } from './delivery.ts';
import { channelLabel, reviewUrl, type ApprovalMessage, type ChannelNotifier } from './message.ts';

/**
 * The signed webhook channel: a JSON POST a receiver can authenticate.
 *
 * ## The wire format (for receivers)
 *
 * ```
 * POST <url>
 * Content-Type: application/json
 * User-Agent: ackd-webhook/1
 * X-Ackd-Delivery: 6f1c…            (a UUID, the same on every retry of one delivery: dedupe on it)
 * X-Ackd-Timestamp: 1767225600      (unix seconds of this attempt)
 * X-Ackd-Signature: v1=<hex>        (lowercase hex HMAC-SHA256(secret, "<timestamp>.<raw body>"))
 *
 * {"type":"approval_requested","request":{…},"approvals":null,"route":"default",
 *  "escalation":false,"reason":"…","review_url":"https://…","sent_at":"2026-01-01T00:00:00.000Z"}
 * ```
 *
 * To verify (as Stripe and Slack do it): take the raw body bytes as received (before any JSON
 * parsing), compute HMAC-SHA256 with the shared secret over `<X-Ackd-Timestamp>.<raw body>`,
 * compare it with every `v1=` value of X-Ackd-Signature in constant time, and refuse a timestamp
 * more than 5 minutes from your clock (that bounds replays; dedupe on X-Ackd-Delivery within the
 * window to refuse them entirely). `verifyWebhookSignature` below does all of it. Respond 2xx
 * quickly; a 429 or 5xx is retried (same body, same delivery id, a fresh timestamp and signature),
 * any other status is final. Redirects are not followed.
 *
 * Everything under `request` except the ids and times was written by the agent: treat it as
 * untrusted text (escape it wherever you render it).
 */

export const WEBHOOK_USER_AGENT = 'ackd-webhook/1';
export const SIGNATURE_HEADER = 'X-Ackd-Signature';
export const TIMESTAMP_HEADER = 'X-Ackd-Timestamp';
export const DELIVERY_HEADER = 'X-Ackd-Delivery';
/** The shortest HMAC secret accepted (32 characters). */
export const MIN_WEBHOOK_SECRET_LENGTH = 32;
/** How far a receiver lets a timestamp drift from its clock by default. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

export interface WebhookBody {
  readonly type: 'approval_requested';
  readonly request: {
    readonly request_id: string;
    readonly agent_id: string;
    readonly action: string;
    readonly permissions: readonly string[];
    readonly justification: string;
    readonly requested_at: string;
    readonly expires_at: string;
    readonly ttl_minutes: number;
  };
  readonly approvals: ApprovalMessage['approvals'];
  readonly route: string;
  readonly escalation: boolean;
  readonly reason: string;
  readonly review_url: string;
  readonly sent_at: string;
}

/** The JSON body of one delivery (pure). Only the fields a receiver needs: no approver identities of the record, no SVID data. */
export function webhookBody(m: ApprovalMessage, sentAt: Date): WebhookBody {
  const r = m.record;
  return {
    type: 'approval_requested',
    request: {
      request_id: r.request_id,
      agent_id: r.agent_id,
      action: r.action,
      permissions: [...r.permissions],
      justification: r.justification,
      requested_at: r.requested_at,
      expires_at: r.expires_at,
      ttl_minutes: r.ttl_minutes,
    },
    approvals: m.approvals === null ? null : { have: m.approvals.have, need: m.approvals.need, voters: [...m.approvals.voters] },
    route: m.route,
    escalation: m.escalation,
    reason: m.reason,
    review_url: reviewUrl(m.consentUrl),
    sent_at: sentAt.toISOString(),
  };
}

/** `v1=<lowercase hex HMAC-SHA256(secret, "<timestamp>.<body>")>`: the X-Ackd-Signature value. */
export function signWebhook(secret: string, timestamp: number | string, body: string | Uint8Array): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
  return `v1=${mac}`;
}

export interface VerifyWebhookInput {
  readonly secret: string;
  /** The X-Ackd-Timestamp header as received. */
  readonly timestamp: string | null | undefined;
  /** The X-Ackd-Signature header as received (one or more `v1=` values, comma-separated). */
  readonly signature: string | null | undefined;
  /** The raw body, exactly as received. */
  readonly body: string | Uint8Array;
  /** The receiver's clock (default: now). */
  readonly now?: Date;
  /** How far the timestamp may be from `now`, either way (default 300 s). */
  readonly toleranceSeconds?: number;
}

/**
 * For receivers: null when the delivery is authentic and fresh, otherwise why not (a short reason
 * to log; answer 401 either way). The comparison is constant-time.
 */
export function verifyWebhookSignature(input: VerifyWebhookInput): string | null {
  const tolerance = input.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const ts = input.timestamp?.trim();
  if (!ts) return 'missing timestamp';
  if (!/^\d{1,12}$/.test(ts)) return 'malformed timestamp';
  const now = Math.floor((input.now ?? new Date()).getTime() / 1000);
  if (Math.abs(now - Number(ts)) > tolerance) return 'timestamp outside the tolerance';
  const header = input.signature?.trim();
  if (!header) return 'missing signature';
  const candidates = header
    .split(/[,\s]+/)
    .filter((p) => p.startsWith('v1='))
    .map((p) => p.slice(3));
  if (candidates.length === 0 || candidates.some((c) => !/^[0-9a-f]{64}$/.test(c))) return 'malformed signature';
  const expected = Buffer.from(signWebhook(input.secret, ts, input.body).slice(3), 'hex');
  let match = false;
  for (const c of candidates) match = timingSafeEqual(expected, Buffer.from(c, 'hex')) || match;
  return match ? null : 'signature mismatch';
}

export interface WebhookChannelOptions {
  readonly name: string;
  readonly url: string;
  /** The HMAC key (at least 32 characters). Kept in this object only; never logged or thrown. */
  readonly secret: string;
  readonly clock?: Clock;
  readonly fetch?: typeof fetch;
  readonly policy?: Partial<RetryPolicy>;
}

export class WebhookChannel implements ChannelNotifier {
  readonly kind = 'webhook' as const;
  readonly name: string;
  readonly #url: string;
  readonly #secret: string;
  readonly #clock: Clock;
  readonly #fetch: typeof fetch | undefined;
  readonly #policy: Partial<RetryPolicy> | undefined;

  constructor(opts: WebhookChannelOptions) {
    if (opts.secret.length < MIN_WEBHOOK_SECRET_LENGTH) throw new RangeError(`webhook ${opts.name}: the secret must be at least ${MIN_WEBHOOK_SECRET_LENGTH} characters`);
    this.name = opts.name;
    this.#url = opts.url;
    this.#secret = opts.secret;
    this.#clock = opts.clock ?? systemClock;
    this.#fetch = opts.fetch;
    this.#policy = opts.policy;
  }

  async send(m: ApprovalMessage): Promise<void> {
    // One body and one delivery id for every attempt; each attempt is signed with its own timestamp.
    const body = JSON.stringify(webhookBody(m, this.#clock.now()));
    const delivery = randomUUID();
    await postWithRetry({
      channel: channelLabel(this),
      url: this.#url,
      body,
      headers: () => {
        const ts = Math.floor(this.#clock.now().getTime() / 1000);
        return {
          'Content-Type': 'application/json',
          'User-Agent': WEBHOOK_USER_AGENT,
          [TIMESTAMP_HEADER]: String(ts),
          [SIGNATURE_HEADER]: signWebhook(this.#secret, ts, body),
          [DELIVERY_HEADER]: delivery,
        };
      },
      ...(this.#fetch ? { fetch: this.#fetch } : {}),
      ...(this.#policy ? { policy: this.#policy } : {}),
    });
  }

  /** Never the URL or the secret, should the channel end up in a log line. */
  toJSON(): { kind: 'webhook'; name: string } {
    return { kind: this.kind, name: this.name };
  }
}
