import { describe, expect, it } from 'vitest';
import { emailSubject, escapeHtml, renderConsentEmail, SUBJECT_MAX, truncate } from '../../lambdas/adapters/ses/template.ts';
import { approversFor, parseApproverRouting } from '../../lambdas/adapters/ses/notifier.ts';
import { HOSTILE, pendingRecord } from '../helpers/consent-fixtures.ts';
import { LEGACY_QUORUM } from '../../lambdas/core/quorum.ts';

const URL_ = 'https://consent.example.com/?request_id=';

describe('consent email template', () => {
  it('says how many approvals a quorum request needs, and by which rule; a one-approval request says nothing new', () => {
    const quorum = { ...LEGACY_QUORUM, approvals: 2, separation_of_duties: true, policies: ['deploy-bot#deploy:*'] };
    const r = pendingRecord({ quorum });
    const mail = renderConsentEmail(r, URL_ + r.request_id);
    expect(mail.text).toContain('Approvals:     0 of 2');
    expect(mail.text).toContain("Why you:       By the policy for deploy-bot, deploy:*, this request needs 2 approvals from different people from approvers; one denial denies it; the agent's owner may not vote.");
    expect(mail.html).toContain('0 of 2');
    const single = pendingRecord();
    expect(renderConsentEmail(single, URL_ + single.request_id).text).not.toContain('Approvals:');
  });

  it('shows agent, action, every permission, justification, TTL, exact expiry and the link', () => {
    const r = pendingRecord();
    const mail = renderConsentEmail(r, URL_ + r.request_id);
    for (const part of [mail.text, mail.html]) {
      expect(part).toContain('billing-bot');
      expect(part).toContain('Refund order 1234');
      expect(part).toContain('payments:refund');
      expect(part).toContain('orders:read');
      expect(part).toContain('Customer was charged twice.');
      expect(part).toContain('15 minutes');
      expect(part).toContain('2026-02-03T14:20:00.000Z');
      expect(part).toContain('Tue, 03 Feb 2026 14:20:00 UTC');
      expect(part).toContain(URL_ + r.request_id);
    }
    expect(mail.html).toContain(`href="${URL_}${r.request_id}"`);
    expect(mail.subject).toBe('ackd: approve "Refund order 1234" for agent billing-bot?');
  });

  it('escapes every agent string in HTML and never emits agent markup', () => {
    const r = pendingRecord(HOSTILE);
    const { html, text } = renderConsentEmail(r, URL_ + r.request_id);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<img/i);
    expect(html).not.toContain('<b>bold</b>');
    expect(html).not.toContain('href="javascript:');
    expect(html).not.toContain('</td></tr></table><a');
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(html).toContain('&lt;b&gt;bold&lt;/b&gt;');
    expect(html).toContain('&#39;single&#39;');
    // unicode survives, bidi controls are shown, not obeyed
    expect(html).toContain('Ü🦀漢字');
    expect(html).not.toContain('\u202e');
    expect(html).toContain('[U+202E]evil[U+202C]');
    expect(text).not.toContain('\u202e');
    // the only tags are ours: every "<" in the document belongs to a known tag
    const tags = new Set([...html.matchAll(/<\/?([a-z0-9!]+)/gi)].map((m) => m[1]!.toLowerCase()));
    expect([...tags].sort()).toEqual(['!doctype', 'a', 'body', 'br', 'code', 'div', 'h1', 'head', 'html', 'li', 'meta', 'p', 'small', 'span', 'table', 'td', 'th', 'title', 'tr', 'ul'].sort());
    // action in text is a single line: the injected "Bcc:" cannot start a line
    expect(text.split('\n').some((l) => l.startsWith('Bcc:'))).toBe(false);
  });

  it('subject has no CR/LF, is bounded and does not split surrogate pairs', () => {
    const s = emailSubject({ agent_id: 'a' as never, action: `x\r\nBcc: evil@example.com\n${'🦀'.repeat(200)}` });
    expect(s).not.toMatch(/[\r\n]/);
    expect(s.length).toBeLessThanOrEqual(SUBJECT_MAX);
    expect(s.endsWith('…')).toBe(true);
    expect(() => encodeURIComponent(s)).not.toThrow(); // a lone surrogate would throw
    expect(emailSubject({ agent_id: 'a' as never, action: '\u0007bell\u0000' })).toBe('ackd: approve "bell" for agent a?');
  });

  it('truncate and escapeHtml', () => {
    expect(truncate('abcdef', 4)).toBe('abc…');
    expect(truncate('abc', 4)).toBe('abc');
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });

  it('refuses a consent link that is not http(s)', () => {
    const r = pendingRecord();
    expect(() => renderConsentEmail(r, 'javascript:alert(1)')).toThrow(/http/);
    expect(() => renderConsentEmail(r, 'not a url')).toThrow();
  });
});

describe('approver routing', () => {
  it('routes per agent and falls back to the default list', () => {
    const routing = parseApproverRouting(' a@example.com, b@example.com ', '{"billing-bot":["c@example.com"]}');
    expect(approversFor(routing, 'billing-bot')).toEqual(['c@example.com']);
    expect(approversFor(routing, 'other')).toEqual(['a@example.com', 'b@example.com']);
    expect(approversFor(routing, '__proto__')).toEqual(['a@example.com', 'b@example.com']);
  });

  it('names the setting on bad configuration', () => {
    expect(() => parseApproverRouting('not-an-email', undefined)).toThrow(/ACKD_APPROVERS/);
    expect(() => parseApproverRouting('', '{')).toThrow(/ACKD_APPROVER_ROUTES/);
    expect(() => parseApproverRouting('', '{"a":"x@example.com"}')).toThrow(/ACKD_APPROVER_ROUTES: "a"/);
    expect(() => parseApproverRouting('', '{"a":["nope"]}')).toThrow(/ACKD_APPROVER_ROUTES\.a/);
  });
});
