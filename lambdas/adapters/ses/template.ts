import { approvalsOf, describeQuorum, LEGACY_QUORUM } from '../../core/quorum.ts';
import type { AuthorizationRecord } from '../../core/request.ts';
import { visible } from '../../core/visible.ts';
import { moreFieldsLine, payloadListing, type PayloadListing } from '../channels/message.ts';

/**
 * The consent email, as pure functions of the record. Everything the agent sent is untrusted:
 * it is HTML-escaped in the HTML part, stripped of control characters in the text part, and the
 * subject is a single bounded line (no CR/LF, so no header injection).
 */
export interface ConsentEmail {
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

export const SUBJECT_MAX = 160;

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/** One line: CR, LF and other C0/C1 controls removed, bidi controls made visible. */
export function oneLine(s: string): string {
  return visible(s)
    .replace(/[\r\n\u2028\u2029]+/g, ' ')
    .replace(/[\u0000-\u001f\u007f-\u009f]/g, '')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Keeps line breaks (for the justification), drops other control characters, makes bidi controls visible. */
function multiLine(s: string): string {
  return visible(s.replace(/\r\n?/g, '\n')).replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/g, '');
}

/** Truncates to at most `max` UTF-16 units without splitting a surrogate pair, adding an ellipsis. */
export function truncate(s: string, max: number): string {
  if (s.length <= max) return s;
  let cut = max - 1;
  const code = s.charCodeAt(cut - 1);
  if (code >= 0xd800 && code <= 0xdbff) cut--;
  return `${s.slice(0, cut)}…`;
}

export function emailSubject(r: Pick<AuthorizationRecord, 'agent_id' | 'action'>): string {
  return truncate(oneLine(`ackd: approve "${r.action}" for agent ${r.agent_id}?`), SUBJECT_MAX);
}

/** "Tue, 03 Feb 2026 14:05:00 UTC" — unambiguous in every locale. */
export function humanUtc(iso: string): string {
  return new Date(iso).toUTCString().replace('GMT', 'UTC');
}

/**
 * The label column of the email's table. A label never wraps (email clients lay tables out
 * automatically: with breakable labels, a long value squeezed them to "Permission s" /
 * "Justificatio n"), and width:1% makes the column as narrow as its longest label. Inline styles
 * only: many clients drop <style> and media queries.
 */
export const LABEL_STYLE = 'padding:4px 12px 4px 0;color:#555;font-weight:600;white-space:nowrap;word-break:normal;overflow-wrap:normal;width:1%';
/** The value column: long values (unbroken agent strings included) wrap anywhere, inside the cell. */
export const VALUE_STYLE = 'padding:4px 0;overflow-wrap:anywhere;word-break:break-word;min-width:0';

/** The most payload fields a consent email lists (the page shows them all); the mail stays small whatever the payload. */
export const EMAIL_FIELDS_MAX = 40;
/**
 * The payload as the email lists it: the first EMAIL_FIELDS_MAX fields (path → value, the same
 * rows as the consent page), long values cut, how many fields are left out, and the SHA-256 in
 * groups of 4 (channels/message.ts `payloadListing`). Null when the request has no payload.
 */
export function emailPayload(r: Pick<AuthorizationRecord, 'payload' | 'payload_sha256'>): PayloadListing | null {
  return payloadListing(r, EMAIL_FIELDS_MAX);
}

export const PAYLOAD_DIGEST_NOTE = 'Compare it with the SHA-256 the pipeline or tool printed for this operation; if they differ, deny.';

export function renderConsentEmail(r: AuthorizationRecord, consentUrl: string): ConsentEmail {
  const url = new URL(consentUrl); // throws on a malformed link rather than mailing one
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('consent URL must be http(s)');
  const href = url.toString();
  const expiresHuman = humanUtc(r.expires_at);
  const requestedHuman = humanUtc(r.requested_at);
  // A request that needs more than one person says so, and by which rule.
  const quorum = r.quorum ?? LEGACY_QUORUM;
  const approvals = approvalsOf(r);
  const why = describeQuorum(quorum);
  const payload = emailPayload(r);
  const moreFields = payload ? moreFieldsLine(payload.more) : null;

  const text = [
    `An agent is asking for your approval.`,
    ``,
    `Agent:         ${oneLine(r.agent_id)}`,
    `Action:        ${oneLine(r.action)}`,
    `Permissions:`,
    ...r.permissions.map((p) => `  - ${oneLine(p)}`),
    `Justification:`,
    ...multiLine(r.justification).split('\n').map((l) => `  ${l}`),
    ...(payload
      ? [
          `Parameters (exactly what is approved):`,
          ...(payload.fields.length === 0 ? ['  (an empty object: no parameters)'] : payload.fields.map((f) => `  ${f.path}: ${f.value}`)),
          ...(moreFields ? [`  ${moreFields}`] : []),
          `Parameters SHA-256:`,
          `  ${payload.sha256}`,
          `  ${PAYLOAD_DIGEST_NOTE}`,
        ]
      : []),
    ``,
    `Requested:     ${requestedHuman} (${r.requested_at})`,
    `Time to live:  ${r.ttl_minutes} minute${r.ttl_minutes === 1 ? '' : 's'}`,
    `Expires:       ${expiresHuman} (${r.expires_at})`,
    `Request ID:    ${r.request_id}`,
    ...(quorum.approvals > 1 ? [`Approvals:     ${approvals.have} of ${approvals.need}`, `Why you:       ${oneLine(why)}`] : []),
    ``,
    `Review and approve or deny:`,
    href,
    ``,
    `If you do nothing, the request expires and the agent gets no identity.`,
    ``,
  ].join('\n');

  const e = escapeHtml;
  const row = (label: string, valueHtml: string) => `<tr><th align="left" valign="top" style="${LABEL_STYLE}">${label}</th><td style="${VALUE_STYLE}">${valueHtml}</td></tr>`;
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${e(emailSubject(r))}</title></head>
<body style="margin:0;padding:16px;font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;color:#111;background:#f6f6f6">
<div style="max-width:600px;margin:0 auto;background:#fff;border:1px solid #ddd;border-radius:8px;padding:20px">
<h1 style="font-size:20px;margin:0 0 12px">An agent is asking for your approval</h1>
<table role="presentation" style="border-collapse:collapse;width:100%;font-size:15px">
${row('Agent', `<code>${e(oneLine(r.agent_id))}</code>`)}
${row('Action', e(oneLine(r.action)))}
${row('Permissions', `<ul style="margin:0;padding-left:18px">${r.permissions.map((p) => `<li><code>${e(oneLine(p))}</code></li>`).join('')}</ul>`)}
${row('Justification', `<div style="white-space:pre-wrap">${e(multiLine(r.justification))}</div>`)}
${payload ? `${row('Parameters', payloadHtml(payload.fields, moreFields))}
${row('SHA-256', `<code style="font-size:15px;word-spacing:.2em">${e(payload.sha256)}</code><br><small style="color:#555">${e(PAYLOAD_DIGEST_NOTE)}</small>`)}
` : ''}${row('Requested', `${e(requestedHuman)}<br><small>${e(r.requested_at)}</small>`)}
${row('Time to live', `${r.ttl_minutes} minute${r.ttl_minutes === 1 ? '' : 's'}`)}
${row('Expires', `${e(expiresHuman)}<br><small>${e(r.expires_at)}</small>`)}
${row('Request ID', `<code>${e(r.request_id)}</code>`)}
${quorum.approvals > 1 ? `${row('Approvals', `${approvals.have} of ${approvals.need}`)}
${row('Why you', e(why))}` : ''}
</table>
<p style="margin:20px 0"><a href="${e(href)}" style="display:inline-block;background:#1f5fd1;color:#fff;text-decoration:none;padding:12px 20px;border-radius:6px;font-weight:600">Review request</a></p>
<p style="font-size:13px;color:#555">Or open: <span style="word-break:break-all">${e(href)}</span></p>
<p style="font-size:13px;color:#555">If you do nothing, the request expires and the agent gets no identity.</p>
</div></body></html>
`;
  return { subject: emailSubject(r), text, html };
}

/** The payload fields as a nested table (inline styles only), every path and value escaped. */
function payloadHtml(fields: readonly { path: string; value: string }[], moreFields: string | null): string {
  const e = escapeHtml;
  if (fields.length === 0) return '<small style="color:#555">(an empty object: no parameters)</small>';
  const cell = 'padding:2px 8px 2px 0;vertical-align:top;border-top:1px solid #eee;overflow-wrap:anywhere;word-break:break-word';
  const rows = fields.map((f) => `<tr><td style="${cell};color:#555"><code>${e(f.path)}</code></td><td style="${cell}"><code style="white-space:pre-wrap">${e(f.value)}</code></td></tr>`).join('');
  return `<table role="presentation" style="border-collapse:collapse;width:100%;font-size:14px">${rows}</table>${moreFields ? `<small style="color:#555">${e(moreFields)}</small>` : ''}`;
}
