/**
 * Notification channels over real HTTP: a node:http receiver on 127.0.0.1 (ephemeral port) stands
 * in for the webhook receiver and for Slack, and aws-ses-v2-local for SES. Nothing is mocked: the
 * channels use the global fetch.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  RouteNotifier,
  SlackChannel,
  WebhookChannel,
  buildChannels,
  parseRoutes,
  verifyWebhookSignature,
  type ApprovalMessage,
  type RetryPolicy,
} from '../../lambdas/adapters/channels/index.ts';
import { EmailChannel } from '../../lambdas/adapters/channels/email.ts';
import { sesClient } from '../../lambdas/adapters/ses/notifier.ts';
import { AckdError } from '../../lambdas/core/errors.ts';
import { startLocalSes, type LocalSes } from '../../lambdas/local/ses.ts';
import { pendingRecord } from '../helpers/consent-fixtures.ts';

interface Received {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** performance.now() when the request arrived. */
  readonly at: number;
}

type Reply = { status: number; headers?: Record<string, string>; body?: string } | 'hang';

interface Receiver {
  readonly url: string;
  readonly received: Received[];
  stop(): Promise<void>;
}

const receivers: Receiver[] = [];

/** A test receiver: answers the n-th request (0-based) with `reply(req, n)`; 'hang' never answers. */
async function startReceiver(reply: (req: Received, n: number) => Reply): Promise<Receiver> {
  const received: Received[] = [];
  const server: Server = createServer((req, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = { path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: performance.now() };
      received.push(r);
      const out = reply(r, received.length - 1);
      if (out === 'hang') return;
      res.writeHead(out.status, { 'content-type': 'text/plain', ...out.headers });
      res.end(out.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const r: Receiver = {
    url: `http://127.0.0.1:${port}`,
    received,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  receivers.push(r);
  return r;
}

afterEach(async () => {
  await Promise.all(receivers.splice(0).map((r) => r.stop()));
});

/** Fast retries for tests; each test overrides what it exercises. */
const FAST: Partial<RetryPolicy> = { attempts: 4, minDelayMs: 10, maxDelayMs: 40, attemptTimeoutMs: 2_000, totalTimeoutMs: 8_000, retryAfterCapMs: 2_000 };

const newSecret = () => randomBytes(32).toString('base64url');

function message(over: Partial<ApprovalMessage> = {}): ApprovalMessage {
  const record = pendingRecord();
  return {
    record,
    consentUrl: `https://approve.example.com/?request_id=${record.request_id}`,
    approvals: { have: 1, need: 2, voters: ['alice@example.com'] },
    reason: 'route oncall: nobody decided within 50% of the wait',
    route: 'oncall',
    escalation: true,
    ...over,
  };
}

/** The receiver's side: authentic and fresh, as a real receiver checks it. */
function verify(r: Received, secret: string): string | null {
  return verifyWebhookSignature({
    secret,
    timestamp: r.headers['x-ackd-timestamp'] as string | undefined,
    signature: r.headers['x-ackd-signature'] as string | undefined,
    body: r.body,
  });
}

async function failure(p: Promise<unknown>): Promise<AckdError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(AckdError);
    return e as AckdError;
  }
  throw new Error('expected the send to fail');
}

describe('signed webhook', () => {
  it('delivers a body the receiver authenticates with verifyWebhookSignature', async () => {
    const secret = newSecret();
    const rx = await startReceiver((r) => ({ status: verify(r, secret) === null ? 204 : 401 }));
    const m = message();
    await new WebhookChannel({ name: 'ops', url: `${rx.url}/ackd`, secret, policy: FAST }).send(m);

    expect(rx.received).toHaveLength(1);
    const [r] = rx.received;
    expect(verify(r!, secret)).toBeNull();
    expect(r!.path).toBe('/ackd');
    expect(r!.headers['content-type']).toBe('application/json');
    expect(r!.headers['user-agent']).toBe('ackd-webhook/1');
    expect(r!.headers['x-ackd-delivery']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(Math.abs(Number(r!.headers['x-ackd-timestamp']) - Date.now() / 1000)).toBeLessThan(5);
    expect(JSON.parse(r!.body)).toMatchObject({
      type: 'approval_requested',
      request: { request_id: m.record.request_id, agent_id: 'billing-bot', action: 'Refund order 1234' },
      approvals: { have: 1, need: 2, voters: ['alice@example.com'] },
      route: 'oncall',
      escalation: true,
      reason: 'route oncall: nobody decided within 50% of the wait',
      review_url: m.consentUrl,
    });
    // The same request, checked with another secret, is refused.
    expect(verify(r!, newSecret())).toBe('signature mismatch');
  });

  it('a receiver holding another secret refuses it (401), and a 401 is not retried', async () => {
    const rx = await startReceiver((r) => ({ status: verify(r, newSecret()) === null ? 204 : 401 }));
    const secret = newSecret();
    const e = await failure(new WebhookChannel({ name: 'ops', url: rx.url, secret, policy: FAST }).send(message()));
    expect(rx.received).toHaveLength(1);
    expect(e.message).toBe('notification channel webhook:ops: not delivered after 1 attempt: HTTP 401');
  });

  it('retries a 500 with the same delivery id and body, each attempt freshly signed', async () => {
    const secret = newSecret();
    const rx = await startReceiver((_r, n) => ({ status: n < 2 ? 500 : 200 }));
    await new WebhookChannel({ name: 'ops', url: rx.url, secret, policy: FAST }).send(message());
    expect(rx.received).toHaveLength(3);
    const ids = new Set(rx.received.map((r) => r.headers['x-ackd-delivery']));
    expect(ids.size).toBe(1);
    expect(new Set(rx.received.map((r) => r.body)).size).toBe(1);
    for (const r of rx.received) expect(verify(r, secret)).toBeNull();
    // A second message is another delivery.
    await new WebhookChannel({ name: 'ops', url: rx.url, secret, policy: FAST }).send(message());
    expect(rx.received[3]!.headers['x-ackd-delivery']).not.toBe(rx.received[0]!.headers['x-ackd-delivery']);
  });

  it('waits for a 429 Retry-After before retrying', async () => {
    const rx = await startReceiver((_r, n) => (n === 0 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 }));
    await new WebhookChannel({ name: 'ops', url: rx.url, secret: newSecret(), policy: FAST }).send(message());
    expect(rx.received).toHaveLength(2);
    expect(rx.received[1]!.at - rx.received[0]!.at).toBeGreaterThanOrEqual(950);
    expect(rx.received[1]!.headers['x-ackd-delivery']).toBe(rx.received[0]!.headers['x-ackd-delivery']);
  });

  it('caps a long Retry-After, and gives up when even the cap is past the time budget', async () => {
    const rx = await startReceiver((_r, n) => (n === 0 ? { status: 429, headers: { 'retry-after': '3600' } } : { status: 200 }));
    await new WebhookChannel({ name: 'ops', url: rx.url, secret: newSecret(), policy: { ...FAST, retryAfterCapMs: 100 } }).send(message());
    expect(rx.received).toHaveLength(2);
    const gap = rx.received[1]!.at - rx.received[0]!.at;
    expect(gap).toBeGreaterThanOrEqual(95);
    expect(gap).toBeLessThan(1_000);

    const busy = await startReceiver(() => ({ status: 429, headers: { 'retry-after': '30' } }));
    const started = performance.now();
    const e = await failure(new WebhookChannel({ name: 'ops', url: busy.url, secret: newSecret(), policy: { ...FAST, totalTimeoutMs: 1_000, retryAfterCapMs: 5_000 } }).send(message()));
    expect(performance.now() - started).toBeLessThan(900);
    expect(busy.received).toHaveLength(1);
    expect(e.message).toBe('notification channel webhook:ops: not delivered after 1 attempt: HTTP 429, Retry-After 30 s is past the time budget');
  });

  it('does not retry a 400, and its error names neither the URL nor the secret', async () => {
    const rx = await startReceiver(() => ({ status: 400, body: 'bad_request' }));
    const secret = newSecret();
    const url = `${rx.url}/hooks/${randomBytes(8).toString('hex')}?token=${randomBytes(8).toString('hex')}`;
    const e = await failure(new WebhookChannel({ name: 'ops', url, secret, policy: FAST }).send(message()));
    expect(rx.received).toHaveLength(1);
    expect(e.code).toBe('ERR_INTERNAL');
    expect(e.message).toBe('notification channel webhook:ops: not delivered after 1 attempt: HTTP 400 (bad_request)');
    const port = new URL(rx.url).port;
    for (const leak of [secret, port, 'token', '/hooks/', '127.0.0.1']) expect(`${e.message} ${String(e.cause)}`).not.toContain(leak);
  });

  it('does not follow a redirect', async () => {
    const rx = await startReceiver((r) => (r.path === '/start' ? { status: 302, headers: { location: '/elsewhere' } } : { status: 200 }));
    const e = await failure(new WebhookChannel({ name: 'ops', url: `${rx.url}/start`, secret: newSecret(), policy: FAST }).send(message()));
    expect(rx.received.map((r) => r.path)).toEqual(['/start']);
    expect(e.message).toBe('notification channel webhook:ops: not delivered after 1 attempt: HTTP 302, a redirect (not followed)');
  });

  it('gives up after the last attempt of a 503', async () => {
    const rx = await startReceiver(() => ({ status: 503 }));
    const e = await failure(new WebhookChannel({ name: 'ops', url: rx.url, secret: newSecret(), policy: { ...FAST, attempts: 3 } }).send(message()));
    expect(rx.received).toHaveLength(3);
    expect(e.message).toBe('notification channel webhook:ops: not delivered after 3 attempts: HTTP 503');
  });

  it('times an attempt out and retries it', async () => {
    const rx = await startReceiver((_r, n) => (n === 0 ? 'hang' : { status: 200 }));
    await new WebhookChannel({ name: 'ops', url: rx.url, secret: newSecret(), policy: { ...FAST, attemptTimeoutMs: 300 } }).send(message());
    expect(rx.received).toHaveLength(2);
    expect(rx.received[1]!.at - rx.received[0]!.at).toBeGreaterThanOrEqual(290);
    expect(rx.received[1]!.headers['x-ackd-delivery']).toBe(rx.received[0]!.headers['x-ackd-delivery']);

    const silent = await startReceiver(() => 'hang');
    const e = await failure(new WebhookChannel({ name: 'ops', url: silent.url, secret: newSecret(), policy: { ...FAST, attempts: 2, attemptTimeoutMs: 200 } }).send(message()));
    expect(silent.received).toHaveLength(2);
    expect(e.message).toBe('notification channel webhook:ops: not delivered after 2 attempts: timeout after 200 ms');
  });

  it('ends the whole delivery by the total time budget', async () => {
    const rx = await startReceiver(() => 'hang');
    const started = performance.now();
    const e = await failure(new WebhookChannel({ name: 'ops', url: rx.url, secret: newSecret(), policy: { ...FAST, attemptTimeoutMs: 5_000, totalTimeoutMs: 500 } }).send(message()));
    const took = performance.now() - started;
    expect(took).toBeGreaterThanOrEqual(450);
    expect(took).toBeLessThan(1_500);
    expect(rx.received).toHaveLength(1);
    expect(e.message).toBe('notification channel webhook:ops: not delivered after 1 attempt: time budget of 500 ms spent');
  });

  it('retries a refused connection and says so by its code only', async () => {
    const rx = await startReceiver(() => ({ status: 200 }));
    const url = rx.url;
    await rx.stop();
    receivers.splice(receivers.indexOf(rx), 1);
    const e = await failure(new WebhookChannel({ name: 'ops', url, secret: newSecret(), policy: { ...FAST, attempts: 2 } }).send(message()));
    expect(e.message).toBe('notification channel webhook:ops: not delivered after 2 attempts: network error ECONNREFUSED');
  });
});

describe('Slack incoming webhook', () => {
  const slackPath = () => `/services/T${randomBytes(4).toString('hex')}/B${randomBytes(4).toString('hex')}/${randomBytes(12).toString('hex')}`;

  it('posts Block Kit a Slack receiver accepts: header, escaped agent text, the review button', async () => {
    let checked: string[] = [];
    const rx = await startReceiver((r) => {
      // What Slack itself insists on: JSON, non-empty blocks, every text object sized.
      const problems: string[] = [];
      const msg = JSON.parse(r.body) as { text: string; blocks: { type: string; text?: { text: string } }[] };
      if (!String(r.headers['content-type']).startsWith('application/json')) problems.push('content-type');
      if (!Array.isArray(msg.blocks) || msg.blocks.length === 0 || msg.blocks.length > 50) problems.push('blocks');
      if (typeof msg.text !== 'string' || msg.text === '') problems.push('text');
      checked = problems;
      return problems.length === 0 ? { status: 200, body: 'ok' } : { status: 400, body: 'invalid_blocks' };
    });
    const record = pendingRecord({ action: 'ship it <!channel> & <https://evil.example|docs>' });
    const m = message({ record });
    await new SlackChannel({ name: 'pager', url: `${rx.url}${slackPath()}`, policy: FAST }).send(m);
    expect(checked).toEqual([]);
    expect(rx.received).toHaveLength(1);

    const msg = JSON.parse(rx.received[0]!.body) as {
      text: string;
      blocks: { type: string; text?: { text: string }; fields?: { text: string }[]; elements?: { type: string; url?: string; text?: unknown }[] }[];
    };
    expect(msg.blocks[0]).toEqual({ type: 'header', text: { type: 'plain_text', text: 'Approval needed: billing-bot', emoji: false } });
    const button = msg.blocks.find((b) => b.type === 'actions')!.elements![0]!;
    expect(button).toMatchObject({ type: 'button', url: m.consentUrl });
    const action = msg.blocks.flatMap((b) => b.fields ?? []).find((f) => f.text.startsWith('*Action*'))!;
    expect(action.text).toBe('*Action*\nship it &lt;!channel&gt; &amp; &lt;https://evil.example|docs&gt;');
    expect(rx.received[0]!.body).not.toMatch(/<!channel>|<https:\/\/evil/);
    expect(msg.blocks.map((b) => b.text?.text ?? '').join('\n')).toContain('*1 of 2 approvals* so far, from alice@example.com.');
  });

  it('reports Slack\'s refusal by its error word, never the webhook URL', async () => {
    const rx = await startReceiver(() => ({ status: 400, body: 'invalid_blocks' }));
    const path = slackPath();
    const e = await failure(new SlackChannel({ name: 'pager', url: `${rx.url}${path}`, policy: FAST }).send(message()));
    expect(rx.received).toHaveLength(1);
    expect(e.message).toBe('notification channel slack:pager: not delivered after 1 attempt: HTTP 400 (invalid_blocks)');
    expect(e.message).not.toContain(path.split('/').pop()!);
  });

  it('retries Slack\'s rate limit like the webhook does', async () => {
    const rx = await startReceiver((_r, n) => (n === 0 ? { status: 429, headers: { 'retry-after': '0' } } : { status: 200, body: 'ok' }));
    await new SlackChannel({ name: 'pager', url: `${rx.url}${slackPath()}`, policy: FAST }).send(message());
    expect(rx.received).toHaveLength(2);
    expect(rx.received[1]!.body).toBe(rx.received[0]!.body);
  });
});

describe('routes end to end: ACKD_ROUTES → buildChannels → RouteNotifier', () => {
  let ses: LocalSes;
  beforeAll(async () => {
    ses = await startLocalSes();
  });
  afterAll(async () => {
    await ses?.stop();
  });

  it('sends one message to every channel of the route; a failing channel fails alone', async () => {
    await fetch(`${ses.url}/clear-store`, { method: 'POST' });
    const secret = newSecret();
    const hook = await startReceiver((r) => ({ status: verify(r, secret) === null ? 204 : 401 }));
    const slack = await startReceiver(() => ({ status: 200, body: 'ok' }));
    const broken = await startReceiver(() => ({ status: 410, body: 'channel_is_archived' }));
    const env = {
      OPS_HOOK_SECRET: secret,
      ONCALL_SLACK_URL: `${slack.url}/services/T0/B0/${randomBytes(12).toString('hex')}`,
      OLD_SLACK_URL: `${broken.url}/services/T0/B1/${randomBytes(12).toString('hex')}`,
    };
    const routes = parseRoutes(
      JSON.stringify({
        default: { email: ['alice@example.com'] },
        oncall: {
          email: ['oncall@example.com', 'sre@example.com'],
          webhooks: [{ name: 'ops', url: `${hook.url}/ackd`, secret_env: 'OPS_HOOK_SECRET' }],
          slack: [{ url_env: 'ONCALL_SLACK_URL' }, { name: 'old', url_env: 'OLD_SLACK_URL' }],
        },
      }),
      { local: true },
    );
    const channels = await buildChannels(routes, {
      env,
      local: true,
      ses: sesClient({ region: 'us-east-1', endpoint: ses.endpoint }),
      sender: 'ackd@example.com',
      policy: FAST,
    });
    const notifier = new RouteNotifier(channels);
    const m = message();
    const outcomes = await notifier.send(m);

    expect(outcomes).toEqual([
      { channel: 'email:oncall', ok: true },
      { channel: 'webhook:ops', ok: true },
      { channel: 'slack:oncall-slack-1', ok: true },
      { channel: 'slack:old', ok: false, error: 'notification channel slack:old: not delivered after 1 attempt: HTTP 410 (channel_is_archived)' },
    ]);
    expect(hook.received).toHaveLength(1);
    expect(verify(hook.received[0]!, secret)).toBeNull();
    expect(slack.received).toHaveLength(1);
    expect(broken.received).toHaveLength(1);

    const store = (await (await fetch(`${ses.url}/store`)).json()) as { emails: { destination: { to: string[] }; subject: string; body: { text?: string; html?: string } }[] };
    expect(store.emails).toHaveLength(1);
    const mail = store.emails[0]!;
    expect(mail.destination.to).toEqual(['oncall@example.com', 'sre@example.com']);
    expect(mail.subject).toBe('Escalation: ackd: approve "Refund order 1234" for agent billing-bot?');
    expect(mail.body.text).toContain('Why you:       route oncall: nobody decided within 50% of the wait (route oncall)');
    expect(mail.body.text).toContain('Approvals:     1 of 2 approvals so far, from alice@example.com');
    expect(mail.body.text).toContain(m.consentUrl);
  });

  it('an email channel whose SES is down fails with a safe message', async () => {
    const down = new EmailChannel({ name: 'default', client: sesClient({ region: 'us-east-1', endpoint: 'http://127.0.0.1:9' }), sender: 'ackd@example.com', to: ['alice@example.com'] });
    const e = await failure(down.send(message()));
    expect(e.code).toBe('ERR_INTERNAL');
    expect(e.message).toMatch(/^notification channel email:default: SES did not send the message \(\w+/);
    expect(e.message).not.toContain('127.0.0.1');
  });
});
