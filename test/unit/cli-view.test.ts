import { describe, expect, it } from 'vitest';
import { approvalView, viewSha256 } from '../../lambdas/core/view.ts';
import { groupedHex, parsePayload, payloadSha256 } from '../../lambdas/core/payload.ts';
import { viewLines } from '../../lambdas/cli/requests.ts';
import { pendingRecord } from '../helpers/consent-fixtures.ts';

/** What `ackd requests approve|deny` prints before deciding: the view its decision is bound to. */
describe('CLI: the view printed before a decision', () => {
  it('every field of the view, every payload field, the payload SHA-256 and the view SHA-256 in groups of 4', () => {
    const payload = parsePayload({ deploy: { env: 'prod', targets: [{ region: 'eu-west-1' }] }, sql: 'SELECT 1;\nSELECT 2;', n: 1, s: '1' });
    const v = approvalView(pendingRecord({ payload, payload_sha256: payloadSha256(payload), justification: 'line one\nline two' }));
    const out = viewLines(v).join('\n');
    expect(out).toContain(`request              ${v.request_id}`);
    expect(out).toContain('action               Refund order 1234');
    expect(out).toContain('permissions          payments:refund, orders:read');
    expect(out).toContain('justification       \n  line one\n  line two');
    expect(out).toContain('  deploy.env: "prod"\n  deploy.targets[0].region: "eu-west-1"\n  sql: "SELECT 1;\n    SELECT 2;"\n  n: 1\n  s: "1"');
    expect(out).toContain(`parameters sha256    ${groupedHex(payloadSha256(payload))}`);
    expect(out).toContain(`view sha256          ${groupedHex(viewSha256(v))}`);
  });

  it('agent text cannot drive the terminal: escape and direction characters are shown as [U+XXXX]', () => {
    const payload = parsePayload({ x: '\u001b[2J\u001b]0;pwned\u0007', 'k\u202e': 'v' });
    const v = approvalView(pendingRecord({ payload, action: 'a\u001b[31mred', justification: 'j\u202eevil' }));
    const out = viewLines(v).join('\n');
    expect(out).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f\u202e]/);
    expect(out).toContain('x: "[U+001B][2J[U+001B]]0;pwned[U+0007]"');
    expect(out).toContain('["k[U+202E]"]: "v"');
    expect(out).toContain('action               a[U+001B][31mred');
  });

  it('says when there is no payload, or an empty one', () => {
    expect(viewLines(approvalView(pendingRecord())).join('\n')).toContain('parameters           none (the agent sent no payload)');
    expect(viewLines(approvalView(pendingRecord({ payload: {} }))).join('\n')).toContain('parameters           {} (an empty object)');
  });
});
