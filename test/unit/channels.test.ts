/** lambdas/adapters/channels: signing, rendering, escaping and ACKD_ROUTES, as pure functions. */
import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AckdError } from '../../lambdas/core/errors.ts';
import {
  DEFAULT_RETRY_POLICY,
  RouteNotifier,
  SLACK_LIMITS,
  buildChannels,
  escapeSlack,
  fitSlack,
  parseRetryAfter,
  parseRoutes,
  retryPolicy,
  routeSecretArns,
  routedConsentEmail,
  signWebhook,
  slackMessage,
  verifyWebhookSignature,
  webhookBody,
  type ApprovalMessage,
  type ChannelNotifier,
} from '../../lambdas/adapters/channels/index.ts';
import { sesClient } from '../../lambdas/adapters/ses/notifier.ts';
import { HOSTILE, pendingRecord } from '../helpers/consent-fixtures.ts';

const secret = () => randomBytes(32).toString('base64url');

function message(over: Partial<ApprovalMessage> = {}): ApprovalMessage {
  const record = pendingRecord();
  return {
    record,
    consentUrl: `https://approve.example.com/?request_id=${record.request_id}`,
    approvals: null,
    reason: 'route default: the agent has no route of its own',
    route: 'default',
    escalation: false,
    ...over,
  };
}

function refusal(fn: () => unknown): AckdError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AckdError);
    return e as AckdError;
  }
  throw new Error('expected a refusal');
}

async function refusalAsync(p: Promise<unknown>): Promise<AckdError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(AckdError);
    return e as AckdError;
  }
  throw new Error('expected a refusal');
}

describe('webhook signatures', () => {
  const body = JSON.stringify({ type: 'approval_requested', n: 1 });
  const now = new Date('2026-02-03T14:05:00Z');
  const ts = String(Math.floor(now.getTime() / 1000));

  it('is v1= and the lowercase hex HMAC-SHA256 of "<timestamp>.<body>"', () => {
    const key = secret();
    const expected = createHmac('sha256', key).update(`${ts}.${body}`).digest('hex');
    expect(signWebhook(key, ts, body)).toBe(`v1=${expected}`);
    expect(signWebhook(key, Number(ts), Buffer.from(body))).toBe(`v1=${expected}`);
    expect(signWebhook(key, ts, body)).toMatch(/^v1=[0-9a-f]{64}$/);
  });

  it('verifies an authentic, fresh delivery', () => {
    const key = secret();
    expect(verifyWebhookSignature({ secret: key, timestamp: ts, signature: signWebhook(key, ts, body), body, now })).toBeNull();
    expect(verifyWebhookSignature({ secret: key, timestamp: ts, signature: signWebhook(key, ts, body), body: Buffer.from(body), now })).toBeNull();
    // Several v1 values (a receiver rotating secrets): one match is enough.
    const other = signWebhook(secret(), ts, body);
    expect(verifyWebhookSignature({ secret: key, timestamp: ts, signature: `${other}, ${signWebhook(key, ts, body)}`, body, now })).toBeNull();
  });

  it('refuses a tampered body, a wrong secret, a moved timestamp and a stale or future one', () => {
    const key = secret();
    const sig = signWebhook(key, ts, body);
    expect(verifyWebhookSignature({ secret: key, timestamp: ts, signature: sig, body: body.replace('1', '2'), now })).toBe('signature mismatch');
    expect(verifyWebhookSignature({ secret: secret(), timestamp: ts, signature: sig, body, now })).toBe('signature mismatch');
    // A replay with a fresh timestamp but the old signature.
    const later = String(Number(ts) + 10);
    expect(verifyWebhookSignature({ secret: key, timestamp: later, signature: sig, body, now })).toBe('signature mismatch');
    // Correctly signed, but too old or too far ahead.
    const stale = String(Number(ts) - 301);
    expect(verifyWebhookSignature({ secret: key, timestamp: stale, signature: signWebhook(key, stale, body), body, now })).toBe('timestamp outside the tolerance');
    const ahead = String(Number(ts) + 301);
    expect(verifyWebhookSignature({ secret: key, timestamp: ahead, signature: signWebhook(key, ahead, body), body, now })).toBe('timestamp outside the tolerance');
    // …within a wider tolerance it verifies.
    expect(verifyWebhookSignature({ secret: key, timestamp: stale, signature: signWebhook(key, stale, body), body, now, toleranceSeconds: 600 })).toBeNull();
  });

  it('refuses missing and malformed headers', () => {
    const key = secret();
    const sig = signWebhook(key, ts, body);
    expect(verifyWebhookSignature({ secret: key, timestamp: undefined, signature: sig, body, now })).toBe('missing timestamp');
    expect(verifyWebhookSignature({ secret: key, timestamp: '12abc', signature: sig, body, now })).toBe('malformed timestamp');
    expect(verifyWebhookSignature({ secret: key, timestamp: ts, signature: null, body, now })).toBe('missing signature');
    expect(verifyWebhookSignature({ secret: key, timestamp: ts, signature: sig.slice(3), body, now })).toBe('malformed signature');
    expect(verifyWebhookSignature({ secret: key, timestamp: ts, signature: sig.toUpperCase().replace('V1', 'v1'), body, now })).toBe('malformed signature');
    expect(verifyWebhookSignature({ secret: key, timestamp: ts, signature: sig.slice(0, -2), body, now })).toBe('malformed signature');
  });
});

describe('webhook body', () => {
  it('carries the request, the quorum, the route and the review link, and nothing else of the record', () => {
    const m = message({ approvals: { have: 1, need: 2, voters: ['alice@example.com'] }, escalation: true, route: 'oncall' });
    const b = webhookBody(m, new Date('2026-02-03T14:06:00Z'));
    expect(Object.keys(b)).toEqual(['type', 'request', 'approvals', 'route', 'escalation', 'reason', 'review_url', 'sent_at']);
    expect(Object.keys(b.request)).toEqual(['request_id', 'agent_id', 'action', 'permissions', 'justification', 'requested_at', 'expires_at', 'ttl_minutes']);
    expect(b).toMatchObject({
      type: 'approval_requested',
      request: { request_id: m.record.request_id, agent_id: 'billing-bot', permissions: ['payments:refund', 'orders:read'], ttl_minutes: 15 },
      approvals: { have: 1, need: 2, voters: ['alice@example.com'] },
      route: 'oncall',
      escalation: true,
      review_url: m.consentUrl,
      sent_at: '2026-02-03T14:06:00.000Z',
    });
  });

  it('refuses a review link that is not http(s)', () => {
    expect(refusal(() => webhookBody(message({ consentUrl: 'javascript:alert(1)' }), new Date())).code).toBe('ERR_INTERNAL');
  });
});

describe('Slack message', () => {
  const hostile = pendingRecord({
    ...HOSTILE,
    action: 'deploy <!channel> <https://evil.example|the runbook> & <@U123>',
    justification: `<!here> please\n> fake quote\n${'J'.repeat(5000)}`,
  });

  function textObjects(v: unknown, out: { type: string; text: string; verbatim?: boolean }[] = []) {
    if (Array.isArray(v)) v.forEach((x) => textObjects(x, out));
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if ((o.type === 'mrkdwn' || o.type === 'plain_text') && typeof o.text === 'string') out.push(o as never);
      Object.values(o).forEach((x) => textObjects(x, out));
    }
    return out;
  }

  it('escapes &, < and > in agent text so it cannot mention, link or quote', () => {
    expect(escapeSlack('a & <!channel> > b')).toBe('a &amp; &lt;!channel&gt; &gt; b');
    const s = slackMessage(message({ record: hostile }));
    const texts = textObjects(s.blocks).map((t) => t.text);
    const all = [s.text, ...texts].join('\n');
    expect(all).not.toMatch(/<!channel>|<!here>|<@U123>|<https:\/\/evil/);
    expect(all).toContain('&lt;!channel&gt;');
    expect(all).toContain('&lt;https://evil.example|the runbook&gt; &amp; &lt;@U123&gt;');
    // The agent's "> fake quote" is text, not a quote: only ackd's own ">" starts a quoted line.
    expect(all).toContain('>&gt; fake quote');
    // Every mrkdwn object is verbatim: no automatic links or mentions.
    for (const t of textObjects(s.blocks)) if (t.type === 'mrkdwn') expect(t.verbatim).toBe(true);
    expect(s.unfurl_links).toBe(false);
  });

  it('has the header, the fields, the justification marked as the claim, and a button to the review link', () => {
    const m = message({ approvals: { have: 1, need: 2, voters: ['alice@example.com'] }, reason: 'route oncall: nobody decided within 50% of the wait' });
    const s = slackMessage(m);
    const blocks = s.blocks as { type: string; text?: { text: string }; fields?: { text: string }[]; elements?: Record<string, unknown>[] }[];
    expect(blocks[0]).toEqual({ type: 'header', text: { type: 'plain_text', text: 'Approval needed: billing-bot', emoji: false } });
    const fields = blocks.find((b) => b.fields)!.fields!.map((f) => f.text);
    expect(fields).toEqual([
      '*Agent*\nbilling-bot',
      '*Action*\nRefund order 1234',
      '*Permissions*\n• payments:refund\n• orders:read',
      expect.stringMatching(/^\*Deadline\*\n<!date\^\d+\^\{date_short_pretty\} at \{time\}\|Tue, 03 Feb 2026 14:20:00 UTC> \(15 min after the request\)$/),
    ]);
    const texts = blocks.map((b) => b.text?.text ?? '').join('\n');
    expect(texts).toContain("*Justification* _(the agent's claim, not verified by ackd)_\n>Customer was charged twice.");
    expect(texts).toContain('*1 of 2 approvals* so far, from alice@example.com.');
    expect(JSON.stringify(blocks)).toContain('route oncall: nobody decided within 50% of the wait');
    const actions = blocks.find((b) => b.type === 'actions')!;
    expect(actions.elements![0]).toMatchObject({ type: 'button', url: m.consentUrl, text: { type: 'plain_text', text: 'Review request' } });
    expect(s.text).toBe(`Approval needed: agent billing-bot asks to Refund order 1234 (1 of 2 approvals). Review: ${m.consentUrl.replace(/&/g, '&amp;')}`);
    expect(slackMessage(message()).blocks.some((b) => JSON.stringify(b).includes('approvals*'))).toBe(false);
  });

  it('stays within Block Kit limits for the longest input an agent may send', () => {
    const big = pendingRecord({
      action: '&'.repeat(1000),
      permissions: Array.from({ length: 32 }, (_, i) => `${i}${'<'.repeat(127)}`),
      justification: '&'.repeat(4000),
    });
    const s = slackMessage(message({ record: big, reason: 'r'.repeat(5000), escalation: true }));
    const blocks = s.blocks as { type: string; text?: { text: string }; fields?: { text: string }[] }[];
    expect(blocks[0]!.text!.text.length).toBeLessThanOrEqual(SLACK_LIMITS.header);
    for (const b of blocks) {
      if (b.type === 'section' && b.text) expect(b.text.text.length).toBeLessThanOrEqual(SLACK_LIMITS.sectionText);
      for (const f of b.fields ?? []) expect(f.text.length).toBeLessThanOrEqual(SLACK_LIMITS.field);
    }
    expect(s.text.length).toBeLessThanOrEqual(SLACK_LIMITS.fallbackText);
    // Cut text never ends inside an entity.
    for (const t of textObjects(s.blocks)) expect(t.text).not.toMatch(/&[a-z]{0,3}…$/);
  });

  it('cuts escaped text without splitting an entity or a surrogate pair', () => {
    expect(fitSlack('ab&amp;cd', 5)).toBe('ab…');
    expect(fitSlack('abc&lt;', 7)).toBe('abc&lt;');
    expect(fitSlack('a🦀b', 3)).toBe('a…');
    expect(fitSlack('abcdef', 4)).toBe('abc…');
  });
});

describe('routed consent email', () => {
  it('adds the reason and the quorum to the template, escaped', () => {
    const m = message({ reason: 'route <b>oncall</b>: nobody decided', approvals: { have: 1, need: 3, voters: ['alice@example.com', 'bob@example.com'] }, escalation: true });
    const mail = routedConsentEmail(m);
    expect(mail.subject).toBe('Escalation: ackd: approve "Refund order 1234" for agent billing-bot?');
    expect(mail.text).toContain('Why you:       route <b>oncall</b>: nobody decided (route default)');
    expect(mail.text).toContain('Approvals:     1 of 3 approvals so far, from alice@example.com, bob@example.com');
    expect(mail.html).toContain('<strong>Why you:</strong> route &lt;b&gt;oncall&lt;/b&gt;: nobody decided (route default)');
    expect(mail.html).not.toContain('<b>oncall</b>');
    expect(mail.html.indexOf('Why you')).toBeGreaterThan(mail.html.indexOf('</h1>'));
    expect(mail.text.split('\n')[0]).toBe('An agent is asking for your approval.');
    const plain = routedConsentEmail(message());
    expect(plain.subject).toBe('ackd: approve "Refund order 1234" for agent billing-bot?');
    expect(plain.text).not.toContain('Approvals:');
  });
});

describe('ACKD_ROUTES', () => {
  const ok = {
    default: {
      email: ['A@Example.com', 'a@example.com'],
      webhooks: [{ url: 'https://hooks.example.com/ackd', secret_env: 'ACKD_WEBHOOK_SECRET' }],
      slack: [{ url_env: 'ACKD_SLACK_URL' }],
    },
    oncall: { slack: [{ name: 'pager', url_secret_arn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:oncall/slack-AbC123' }] },
  };

  it('parses routes, naming channels and deduplicating addresses', () => {
    const r = parseRoutes(JSON.stringify(ok), { local: false });
    expect([...r.keys()]).toEqual(['default', 'oncall']);
    expect(r.get('default')).toEqual({
      name: 'default',
      email: ['a@example.com'],
      webhooks: [{ name: 'default-webhook-1', url: 'https://hooks.example.com/ackd', secret: { env: 'ACKD_WEBHOOK_SECRET', field: 'ACKD_ROUTES.default.webhooks[0].secret_env' } }],
      slack: [{ name: 'default-slack-1', url: { env: 'ACKD_SLACK_URL', field: 'ACKD_ROUTES.default.slack[0].url_env' } }],
    });
    expect(routeSecretArns(r)).toEqual(['arn:aws:secretsmanager:eu-west-1:123456789012:secret:oncall/slack-AbC123']);
    expect(parseRoutes(undefined, { local: false }).size).toBe(0);
    expect(parseRoutes('  ', { local: false }).size).toBe(0);
  });

  it.each([
    ['not json', '{', 'ACKD_ROUTES: must be JSON'],
    ['an array', '[]', 'ACKD_ROUTES: must be a JSON object of route name to channels'],
    ['a bad route name', '{"On-Call":{"email":["a@example.com"]}}', 'ACKD_ROUTES.On-Call: route names are'],
    ['a too long route name', `{"${'a'.repeat(33)}":{"email":["a@example.com"]}}`, `ACKD_ROUTES.${'a'.repeat(33)}: route names are`],
    ['an empty route', '{"default":{}}', 'ACKD_ROUTES.default: must name at least one channel'],
    ['an unknown key', '{"default":{"emails":["a@example.com"]}}', 'ACKD_ROUTES.default.emails: is not a known setting'],
    ['a bad email', '{"default":{"email":["a@example.com","nope"]}}', 'ACKD_ROUTES.default.email[1]: must be an email address'],
    ['an http webhook', '{"default":{"webhooks":[{"url":"http://hooks.example.com","secret_env":"S"}]}}', 'ACKD_ROUTES.default.webhooks[0].url: must be an https URL'],
    ['a relative webhook URL', '{"default":{"webhooks":[{"url":"/x","secret_env":"S"}]}}', 'ACKD_ROUTES.default.webhooks[0].url: must be an absolute URL'],
    ['credentials in a URL', '{"default":{"webhooks":[{"url":"https://u:p@hooks.example.com","secret_env":"S"}]}}', 'ACKD_ROUTES.default.webhooks[0].url: may not carry credentials'],
    ['a secret in the config', '{"default":{"webhooks":[{"url":"https://hooks.example.com","secret":"abc"}]}}', 'ACKD_ROUTES.default.webhooks[0].secret: is not a known setting'],
    ['no secret', '{"default":{"webhooks":[{"url":"https://hooks.example.com"}]}}', 'ACKD_ROUTES.default.webhooks[0]: needs exactly one of secret_env or secret_arn'],
    ['two secrets', '{"default":{"slack":[{"url_env":"A","url_secret_arn":"arn:aws:secretsmanager:eu-west-1:123456789012:secret:x-AbC123"}]}}', 'ACKD_ROUTES.default.slack[0]: needs exactly one of url_env or url_secret_arn'],
    ['a Slack URL in the config', '{"default":{"slack":[{"url":"https://hooks.slack.com/services/x"}]}}', 'ACKD_ROUTES.default.slack[0].url: is not a known setting'],
    ['a bad variable name', '{"default":{"slack":[{"url_env":"MY-VAR"}]}}', 'ACKD_ROUTES.default.slack[0].url_env: must be an environment variable name'],
    ['a partial ARN', '{"default":{"slack":[{"url_secret_arn":"arn:aws:secretsmanager:eu-west-1:123456789012:secret:x"}]}}', 'ACKD_ROUTES.default.slack[0].url_secret_arn: must be the complete ARN'],
    ['a duplicate channel name', '{"default":{"webhooks":[{"name":"ops","url":"https://a.example.com","secret_env":"A"},{"name":"ops","url":"https://b.example.com","secret_env":"B"}]}}', 'ACKD_ROUTES.default.webhooks[1].name: channel name "ops" is used twice'],
    ['too many addresses', JSON.stringify({ default: { email: Array.from({ length: 51 }, (_, i) => `a${i}@example.com`) } }), 'ACKD_ROUTES.default.email: may list at most 50'],
  ])('refuses %s, naming the field', (_what, json, message) => {
    const e = refusal(() => parseRoutes(json, { local: false }));
    expect(e.code).toBe('ERR_CONFIG');
    expect(e.field).toBe('ACKD_ROUTES');
    expect(e.message.startsWith(message)).toBe(true);
  });

  it('allows http only to loopback, and only in local mode', () => {
    const hook = (url: string) => JSON.stringify({ default: { webhooks: [{ url, secret_env: 'S' }] } });
    expect(parseRoutes(hook('http://127.0.0.1:8080/hook'), { local: true }).get('default')!.webhooks[0]!.url).toBe('http://127.0.0.1:8080/hook');
    expect(parseRoutes(hook('http://localhost:8080/hook'), { local: true }).size).toBe(1);
    expect(refusal(() => parseRoutes(hook('http://127.0.0.1:8080/hook'), { local: false })).message).toContain('must be an https URL');
    expect(refusal(() => parseRoutes(hook('http://hooks.example.com/'), { local: true })).message).toContain('http only to 127.0.0.1');
  });

  it('never echoes a URL in an error (its query may carry a token)', () => {
    const e = refusal(() => parseRoutes('{"default":{"webhooks":[{"url":"http://hooks.example.com/?token=sekrit","secret_env":"S"}]}}', { local: false }));
    expect(e.message).not.toContain('sekrit');
  });
});

describe('buildChannels', () => {
  const routes = (json: unknown, local = false) => parseRoutes(JSON.stringify(json), { local });

  it('reads secrets from the environment and builds the channels of each route', async () => {
    const env = { HOOK_SECRET: secret(), SLACK_URL: 'https://hooks.slack.com/services/T0/B0/x' };
    const r = routes({
      default: { email: ['a@example.com'], webhooks: [{ url: 'https://hooks.example.com', secret_env: 'HOOK_SECRET' }], slack: [{ url_env: 'SLACK_URL' }] },
      oncall: { slack: [{ name: 'pager', url_env: 'SLACK_URL' }] },
    });
    const built = await buildChannels(r, { env, local: false, ses: sesClient({ region: 'us-east-1' }), sender: 'ackd@example.com' });
    expect([...built].map(([k, cs]) => [k, cs.map((c) => `${c.kind}:${c.name}`)])).toEqual([
      ['default', ['email:default', 'webhook:default-webhook-1', 'slack:default-slack-1']],
      ['oncall', ['slack:pager']],
    ]);
    // A channel serializes without its URL or secret.
    expect(JSON.stringify(built.get('default'))).not.toMatch(new RegExp(`${env.HOOK_SECRET}|hooks\\.slack\\.com|hooks\\.example\\.com`));
  });

  it('refuses a missing or empty variable, naming it', async () => {
    const r = routes({ default: { webhooks: [{ url: 'https://hooks.example.com', secret_env: 'HOOK_SECRET' }] } });
    for (const env of [{}, { HOOK_SECRET: '  ' }]) {
      const e = await refusalAsync(buildChannels(r, { env, local: false }));
      expect(e).toMatchObject({ code: 'ERR_CONFIG', field: 'HOOK_SECRET' });
      expect(e.message).toBe('HOOK_SECRET: is required (named by ACKD_ROUTES.default.webhooks[0].secret_env) and is unset or empty');
    }
  });

  it('refuses a webhook secret shorter than 32 characters, without showing it', async () => {
    const short = randomBytes(12).toString('hex').slice(0, 31);
    const e = await refusalAsync(buildChannels(routes({ default: { webhooks: [{ url: 'https://h.example.com', secret_env: 'S' }] } }), { env: { S: short }, local: false }));
    expect(e).toMatchObject({ code: 'ERR_CONFIG', field: 'S' });
    expect(e.message).toContain('must be 32 to 4096 characters');
    expect(e.message).not.toContain(short);
  });

  it('refuses a Slack URL that is not https, without showing it', async () => {
    const r = routes({ default: { slack: [{ url_env: 'SLACK_URL' }] } });
    const e = await refusalAsync(buildChannels(r, { env: { SLACK_URL: 'http://hooks.slack.com/services/T0/B0/sekrit' }, local: false }));
    expect(e).toMatchObject({ code: 'ERR_CONFIG', field: 'SLACK_URL' });
    expect(e.message).toContain('the Slack webhook URL must be an https URL');
    expect(e.message).not.toContain('sekrit');
    // Loopback http is fine locally (a test receiver).
    const local = await buildChannels(r, { env: { SLACK_URL: 'http://127.0.0.1:9/services/x' }, local: true });
    expect(local.get('default')).toHaveLength(1);
  });

  it('reads Secrets Manager secrets through the reader, and names the field when one cannot be read', async () => {
    const arn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:hook-AbC123';
    const r = routes({ default: { webhooks: [{ url: 'https://h.example.com', secret_arn: arn }] } });
    const asked: string[] = [];
    const value = secret();
    const built = await buildChannels(r, { env: {}, local: false, readSecret: async (a) => (asked.push(a), value) });
    expect(asked).toEqual([arn]);
    expect(built.get('default')![0]!.kind).toBe('webhook');
    class AccessDeniedException extends Error {
      override name = 'AccessDeniedException';
    }
    const e = await refusalAsync(buildChannels(r, { env: {}, local: false, readSecret: () => Promise.reject(new AccessDeniedException(`no access to ${arn}`)) }));
    expect(e.message).toBe('ACKD_ROUTES.default.webhooks[0].secret_arn: the secret could not be read (AccessDeniedException)');
  });

  it('refuses an email route without SES', async () => {
    const e = await refusalAsync(buildChannels(routes({ default: { email: ['a@example.com'] } }), { env: {}, local: false }));
    expect(e.message).toBe('ACKD_ROUTES.default.email: needs SES and a sender (ACKD_SENDER) to send email');
  });
});

describe('RouteNotifier', () => {
  const channel = (kind: ChannelNotifier['kind'], name: string, send: ChannelNotifier['send']): ChannelNotifier => ({ kind, name, send });

  it('sends to every channel of the route; one failure stops no other; never throws', async () => {
    const sent: string[] = [];
    const n = new RouteNotifier(
      new Map([
        [
          'default',
          [
            channel('webhook', 'a', async () => void sent.push('a')),
            channel('slack', 'b', () => Promise.reject(new AckdError('ERR_INTERNAL', 'notification channel slack:b: not delivered after 4 attempts: HTTP 503'))),
            channel('webhook', 'c', () => Promise.reject(new Error('boom with https://secret.example/?token=x'))),
            channel('email', 'd', async () => void sent.push('d')),
          ],
        ],
        ['oncall', [channel('slack', 'pager', async () => void sent.push('pager'))]],
      ]),
    );
    const outcomes = await n.send(message());
    expect(outcomes).toEqual([
      { channel: 'webhook:a', ok: true },
      { channel: 'slack:b', ok: false, error: 'notification channel slack:b: not delivered after 4 attempts: HTTP 503' },
      { channel: 'webhook:c', ok: false, error: 'internal error' },
      { channel: 'email:d', ok: true },
    ]);
    expect(sent.sort()).toEqual(['a', 'd']);
    expect(await n.send(message({ route: 'nowhere' }))).toEqual([{ channel: 'route:nowhere', ok: false, error: 'no channels are configured for route "nowhere"' }]);
    expect(n.routes).toEqual(['default', 'oncall']);
  });
});

describe('retry policy', () => {
  it('defaults to 4 attempts within 20 s, and refuses nonsense', () => {
    expect(DEFAULT_RETRY_POLICY).toMatchObject({ attempts: 4, totalTimeoutMs: 20_000 });
    expect(() => retryPolicy({ attempts: 0 })).toThrow(RangeError);
    expect(() => retryPolicy({ attemptTimeoutMs: Number.NaN })).toThrow(RangeError);
    expect(retryPolicy({ attempts: 2 }).attempts).toBe(2);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2026-02-03T14:05:00Z');
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter(new Date(now + 5000).toUTCString(), now)).toBe(5000);
    expect(parseRetryAfter(new Date(now - 5000).toUTCString(), now)).toBe(0);
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter('-1', now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
  });
});
