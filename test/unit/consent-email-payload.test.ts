import { describe, expect, it } from 'vitest';
import { EMAIL_FIELDS_MAX, emailPayload, renderConsentEmail } from '../../lambdas/adapters/ses/template.ts';
import { routedConsentEmail } from '../../lambdas/adapters/channels/email.ts';
import { slackMessage } from '../../lambdas/adapters/channels/slack.ts';
import { groupedHex, parsePayload, payloadSha256 } from '../../lambdas/core/payload.ts';
import { pendingRecord } from '../helpers/consent-fixtures.ts';

const URL_ = 'https://consent.example.com/?request_id=x';

function withPayload(p: unknown) {
  const payload = parsePayload(p);
  return pendingRecord({ payload, payload_sha256: payloadSha256(payload) });
}

describe('consent email: the payload', () => {
  it('lists every field as path: value and the SHA-256 in groups of 4, in the text and the HTML part', () => {
    const r = withPayload({ deploy: { env: 'prod', targets: [{ region: 'eu-west-1' }] }, replicas: 3, tag: '3' });
    const mail = renderConsentEmail(r, URL_);
    expect(mail.text).toContain('Parameters (exactly what is approved):\n  deploy.env: "prod"\n  deploy.targets[0].region: "eu-west-1"\n  replicas: 3\n  tag: "3"\n');
    expect(mail.text).toContain(`Parameters SHA-256:\n  ${groupedHex(r.payload_sha256!)}\n`);
    expect(mail.html).toContain('<code>deploy.targets[0].region</code>');
    expect(mail.html).toContain('&quot;eu-west-1&quot;');
    expect(mail.html).toContain(groupedHex(r.payload_sha256!));
  });

  it('escapes markup in keys and values, and shows invisible and control characters', () => {
    const r = withPayload({ '<b>k</b>': '<script>alert(1)</script>', s: 'a\u202eb\u001b[2Jc' });
    const mail = renderConsentEmail(r, URL_);
    expect(mail.html).not.toMatch(/<script|<b>/);
    expect(mail.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(mail.text).toContain('s: "a[U+202E]b[U+001B][2Jc"');
    expect(mail.text).not.toMatch(/[\u001b\u202e]/);
    expect(mail.html).not.toMatch(/[\u001b\u202e]/);
  });

  it('cuts long values with how many characters the page has besides, and multi-line ones at their first line', () => {
    const r = withPayload({ blob: 'x'.repeat(1000), sql: 'ALTER TABLE a ADD b int;\nDROP TABLE c;' });
    const mail = renderConsentEmail(r, URL_);
    expect(mail.text).toContain(`blob: "${'x'.repeat(199)} (… 802 more characters: see the consent page)`);
    expect(mail.text).toContain('sql: "ALTER TABLE a ADD b int; (… 15 more characters: see the consent page)');
    expect(mail.text).not.toContain('DROP TABLE c');
  });

  it('lists at most EMAIL_FIELDS_MAX fields and says how many more there are; the mail stays small for a 32 KB payload', () => {
    const big: Record<string, string> = {};
    for (let i = 0; i < 120; i++) big[`k${i}`] = `${'v'.repeat(230)}`;
    const r = withPayload(big);
    const p = emailPayload(r)!;
    expect(p.fields).toHaveLength(EMAIL_FIELDS_MAX);
    expect(p.more).toBe(120 - EMAIL_FIELDS_MAX);
    const mail = renderConsentEmail(r, URL_);
    expect(mail.text).toContain(`… and ${120 - EMAIL_FIELDS_MAX} more fields: see the consent page`);
    expect(mail.text).toContain(`k${EMAIL_FIELDS_MAX - 1}: `);
    expect(mail.text).not.toContain(`k${EMAIL_FIELDS_MAX}: `);
    expect(Buffer.byteLength(mail.html) + Buffer.byteLength(mail.text)).toBeLessThan(64 * 1024);
  });

  it('an empty payload says so; no payload, no section', () => {
    expect(renderConsentEmail(withPayload({}), URL_).text).toContain('(an empty object: no parameters)');
    const none = renderConsentEmail(pendingRecord(), URL_);
    expect(none.text).not.toContain('Parameters');
    expect(none.html).not.toContain('SHA-256');
  });

  it('the routed email channel carries the same payload section', () => {
    const r = withPayload({ env: 'prod' });
    const mail = routedConsentEmail({ record: r, consentUrl: URL_, approvals: null, reason: 'policy', route: 'default', escalation: false });
    expect(mail.text).toContain('  env: "prod"');
    expect(mail.html).toContain(groupedHex(r.payload_sha256!));
  });

  it('a Slack message lists the first fields escaped (no mention or link can be spelled) and the grouped SHA-256 in a block of its own', () => {
    const p: Record<string, unknown> = { who: '<!channel> <https://evil.example|click>', n: 1 };
    for (let i = 0; i < 20; i++) p[`k${i}`] = 'x'.repeat(300);
    const r = withPayload(p);
    const msg = slackMessage({ record: r, consentUrl: URL_, approvals: null, reason: 'policy', route: 'default', escalation: false });
    const texts = msg.blocks.map((b) => (b.text as { text?: string } | undefined)?.text ?? '');
    const digest = texts.find((t) => t.startsWith('*Parameters SHA-256*'))!;
    expect(digest).toContain(groupedHex(r.payload_sha256!));
    const list = texts.find((t) => t.startsWith('*Parameters* '))!;
    expect(list).toContain('• who: "&lt;!channel&gt; &lt;https://evil.example|click&gt;"');
    expect(list).toContain('• n: 1');
    expect(list).not.toMatch(/<!channel>|<https:/);
    expect(list.length).toBeLessThanOrEqual(3000);
  });
});
