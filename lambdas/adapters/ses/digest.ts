import type { DigestContent } from '../../core/limits.ts';
import { escapeHtml, humanUtc, oneLine, truncate, type ConsentEmail } from './template.ts';

/** How much of an action a digest line shows (the full request is one click away). */
const ACTION_MAX = 200;

function safeHref(raw: string): string {
  const url = new URL(raw); // throws on a malformed link rather than mailing one
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('links in a digest must be http(s)');
  return url.toString();
}

/**
 * One mail for the requests that went over an approver's mail limit: each request's agent,
 * action, deadline and review link, then how many more await a decision. Same rules as the
 * consent email: agent strings are escaped in HTML, stripped of controls in text, and the
 * subject is fixed text with a number (nothing the agent sent reaches it).
 */
export function renderDigestEmail(d: DigestContent): ConsentEmail {
  const total = d.entries.length + d.more;
  const subject = `ackd: ${total} more request${total === 1 ? '' : 's'} await${total === 1 ? 's' : ''} your decision`;
  const items = d.entries.map(({ record: r, consentUrl }) => ({
    agent: oneLine(r.agent_id),
    action: truncate(oneLine(r.action), ACTION_MAX),
    expires: humanUtc(r.expires_at),
    href: safeHref(consentUrl),
    id: r.request_id,
  }));
  const intro = `Agents asked for approval more often than ackd mails you one by one. ${total} request${total === 1 ? '' : 's'} await${total === 1 ? 's' : ''} your decision:`;
  const moreLine = d.more > 0 ? `…and ${d.more} more not listed here (an operator lists every pending request with "ackd requests pending").` : '';

  const text = [
    intro,
    ``,
    ...items.flatMap((i) => [`- Agent ${i.agent}: ${i.action}`, `  expires ${i.expires}; review: ${i.href}`]),
    ...(moreLine ? [``, moreLine] : []),
    ``,
    `Requests nobody decides expire, and their agents get no identity.`,
    ``,
  ].join('\n');

  const e = escapeHtml;
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${e(subject)}</title></head>
<body style="margin:0;padding:16px;font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;color:#111;background:#f6f6f6">
<div style="max-width:600px;margin:0 auto;background:#fff;border:1px solid #ddd;border-radius:8px;padding:20px">
<h1 style="font-size:20px;margin:0 0 12px">${e(subject.replace(/^ackd: /, ''))}</h1>
<p style="font-size:15px">${e(intro)}</p>
<ul style="padding-left:18px;font-size:15px;overflow-wrap:anywhere;word-break:break-word">
${items.map((i) => `<li style="margin:0 0 10px"><code>${e(i.agent)}</code>: ${e(i.action)}<br><small>expires ${e(i.expires)}</small> · <a href="${e(i.href)}">Review request</a></li>`).join('\n')}
</ul>
${moreLine ? `<p style="font-size:15px">${e(moreLine)}</p>` : ''}
<p style="font-size:13px;color:#555">Requests nobody decides expire, and their agents get no identity.</p>
</div></body></html>
`;
  return { subject, text, html };
}
