import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SesNotifier, sesClient, parseApproverRouting } from '../../lambdas/adapters/ses/notifier.ts';
import { startLocalSes, type LocalSes } from '../../lambdas/local/ses.ts';
import { HOSTILE, pendingRecord } from '../helpers/consent-fixtures.ts';

interface StoredMail {
  from: string;
  destination: { to: string[] };
  subject: string;
  body: { html?: string; text?: string };
}

let ses: LocalSes;
beforeAll(async () => {
  ses = await startLocalSes();
});
afterAll(async () => {
  await ses?.stop();
});
beforeEach(async () => {
  await fetch(`${ses.url}/clear-store`, { method: 'POST' });
});

async function mails(): Promise<StoredMail[]> {
  const res = await fetch(`${ses.url}/store`);
  return ((await res.json()) as { emails: StoredMail[] }).emails;
}

function notifier(approvers = 'alice@example.com', routes = '{"billing-bot":["bob@example.com","carol@example.com"]}') {
  return new SesNotifier({
    client: sesClient({ region: 'us-east-1', endpoint: ses.endpoint }),
    sender: 'ackd@example.com',
    routing: parseApproverRouting(approvers, routes),
  });
}

describe('SesNotifier against aws-ses-v2-local', () => {
  it('sends the consent email to the routed approvers with text and HTML parts', async () => {
    const r = pendingRecord();
    await notifier().notify(r, `http://127.0.0.1:1/?request_id=${r.request_id}`);
    const [m, ...rest] = await mails();
    expect(rest).toHaveLength(0);
    expect(m!.from).toBe('ackd@example.com');
    expect(m!.destination.to).toEqual(['bob@example.com', 'carol@example.com']);
    expect(m!.subject).toBe('ackd: approve "Refund order 1234" for agent billing-bot?');
    expect(m!.body.text).toContain(`?request_id=${r.request_id}`);
    expect(m!.body.html).toContain('payments:refund');
  });

  it('uses the default approvers for an agent without a route', async () => {
    const r = pendingRecord({ agent_id: 'other-agent' as never });
    await notifier().notify(r, `http://127.0.0.1:1/?request_id=${r.request_id}`);
    expect((await mails())[0]!.destination.to).toEqual(['alice@example.com']);
  });

  it('hostile input arrives inert: one-line subject, escaped HTML', async () => {
    const r = pendingRecord(HOSTILE);
    await notifier().notify(r, `http://127.0.0.1:1/?request_id=${r.request_id}`);
    const [m] = await mails();
    expect(m!.subject).not.toMatch(/[\r\n]/);
    expect(m!.destination.to).toEqual(['bob@example.com', 'carol@example.com']);
    expect(m!.body.html).not.toMatch(/<script|<img|<b>/i);
    expect(m!.body.html).toContain('&lt;script&gt;');
  });

  it('throws (so the service records a failure) when no approver is configured', async () => {
    const r = pendingRecord({ agent_id: 'nobody-routes-me' as never });
    await expect(notifier('', undefined).notify(r, 'http://127.0.0.1:1/')).rejects.toMatchObject({ code: 'ERR_CONFIG' });
    expect(await mails()).toHaveLength(0);
  });

  it('throws when SES is unreachable', async () => {
    const down = new SesNotifier({
      client: sesClient({ region: 'us-east-1', endpoint: 'http://127.0.0.1:9' }),
      sender: 'ackd@example.com',
      routing: parseApproverRouting('alice@example.com', undefined),
    });
    await expect(down.notify(pendingRecord(), 'http://127.0.0.1:1/')).rejects.toThrow();
  });
});
