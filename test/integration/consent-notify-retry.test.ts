import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RequestId } from '../../lambdas/core/ids.ts';
import { startLocalSes, type LocalSes } from '../../lambdas/local/ses.ts';
import { startTestStack, structured, type TestStack } from '../helpers/local-stack.ts';

/** A consent email that cannot be sent is recorded, retried by the sweep, and never blocks expiry. */
let stack: TestStack;
let revived: LocalSes | undefined;
let sesPort: number;

beforeAll(async () => {
  stack = await startTestStack({ consent: false });
  sesPort = Number(new URL(stack.mailUrl).port);
  await stack.ses.stop(); // the real mail server goes away
}, 60_000);

afterAll(async () => {
  await revived?.stop();
  await stack?.stop();
});

async function request(ttl: number): Promise<RequestId> {
  const client = await stack.client();
  const r = structured<{ request_id: RequestId }>(
    await client.callTool({ name: 'request_authorization', arguments: { agent_id: stack.agentId, action: 'retry me', permissions: ['x:y'], justification: 'mail test', ttl_minutes: ttl } }),
  );
  return r.request_id;
}

async function mailsFor(id: string): Promise<number> {
  const { emails } = (await (await fetch(`${stack.mailUrl}/store`)).json()) as { emails: { body: { text?: string } }[] };
  return emails.filter((m) => m.body.text?.includes(id)).length;
}

describe('consent email delivery failures', () => {
  it('records the failure, retries in the sweep until sent, then stops', async () => {
    const id = await request(10);
    const expiring = await request(1);
    await stack.settled(); // the first send follows each request's sequencing
    let r = await stack.deps.service.get(id);
    expect(r).toMatchObject({ decision: 'pending', notify_status: 'failed', notify_attempts: 1 });

    expect(await stack.deps.service.sweep()).toEqual({ expired: 0, renotified: 0, escalated: 0 });
    r = await stack.deps.service.get(id);
    expect(r).toMatchObject({ notify_status: 'failed', notify_attempts: 2 });

    // The short request runs out of time while mail is down: it expires on time regardless.
    stack.clock.advanceMinutes(1);
    revived = await startLocalSes({ port: sesPort });
    expect(await stack.deps.service.sweep()).toEqual({ expired: 1, renotified: 1, escalated: 0 });
    expect((await stack.deps.service.get(expiring)).decision).toBe('expired');
    expect(await mailsFor(expiring)).toBe(0);

    r = await stack.deps.service.get(id);
    expect(r).toMatchObject({ decision: 'pending', notify_status: 'sent', notify_attempts: 3 });
    expect(await mailsFor(id)).toBe(1);

    expect(await stack.deps.service.sweep()).toEqual({ expired: 0, renotified: 0, escalated: 0 });
    expect(await mailsFor(id)).toBe(1);
  });
});
