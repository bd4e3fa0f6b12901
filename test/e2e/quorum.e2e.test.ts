import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApproverAdmin, cognitoClient } from '../../lambdas/adapters/cognito/admin.ts';
import { recordOwner } from '../../lambdas/core/agents.ts';
import { parseAgentId } from '../../lambdas/core/ids.ts';
import { startTestStack, structured, type TestStack } from '../helpers/local-stack.ts';

/**
 * Quorum requests in real Chromium: two approvers, each in their own browser, vote on one
 * request; the page shows the progress, the votes and why the signed-in person may (not) vote,
 * and follows the other approver's decision without a reload. No Chromium → the suite fails.
 */
const CHROMIUM = process.env.ACKD_CHROMIUM ?? '/usr/bin/chromium';
const OUT = join(process.cwd(), 'test-output', 'e2e');
const OPERATOR = { type: 'operator', id: 'test' } as const;
const SECOND = { username: 'second@ackd.local', password: 'Ack-second-approver-9a' };
const SOD_REASON = "separation of duties: the agent's owner may not vote on its requests";

let stack: TestStack;
let browser: Browser;
let first: { username: string; password: string };
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  stack = await startTestStack();
  first = { username: stack.approverUsername!, password: stack.approverPassword! };
  // A second human in the approvers group of the stack's cognito-local.
  await new ApproverAdmin(cognitoClient({ region: 'us-east-1', endpoint: stack.cognito!.url }), stack.cognito!.userPoolId).add(SECOND.username, { password: SECOND.password });
}, 120_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await stack?.stop();
});

async function request(action: string): Promise<{ request_id: string; consent_url: string }> {
  const client = await stack.client();
  return structured(await client.callTool({ name: 'request_authorization', arguments: { agent_id: stack.agentId, action, permissions: ['deploy:prod'], justification: 'Release 1.3', ttl_minutes: 10 } }));
}

async function check(requestId: string): Promise<Record<string, unknown>> {
  const client = await stack.client();
  return structured(await client.callTool({ name: 'check_authorization', arguments: { request_id: requestId } }));
}

/** A browser of its own (one person), in the given time zone. */
async function person(timezoneId: string): Promise<BrowserContext> {
  const ctx = await browser.newContext({ viewport: { width: 1024, height: 900 }, locale: 'en-US', timezoneId });
  contexts.push(ctx);
  return ctx;
}

async function open(ctx: BrowserContext, link: string, who: { username: string; password: string }): Promise<Page> {
  const page = await ctx.newPage();
  page.on('dialog', (d) => {
    throw new Error(`unexpected dialog (script ran?): ${d.message()}`);
  });
  await page.goto(link);
  // A fresh tab has no session: the page sends the browser to the hosted login.
  await page.waitForURL((u) => u.pathname === '/oauth2/authorize');
  await page.getByLabel('Username').fill(who.username);
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => u.origin === new URL(stack.consentUiUrl).origin && !u.searchParams.has('code'));
  await page.locator('h1').waitFor();
  return page;
}

async function field(page: Page, name: string): Promise<string> {
  return (await page.locator(`[data-field="${name}"]`).textContent()) ?? '';
}

function decisionButtons(page: Page) {
  return page.getByRole('button', { name: /^(Approve|Deny|Confirm)$/ });
}

async function approveIn(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Approve', exact: true }).click();
  await page.getByRole('alertdialog').waitFor();
  await page.getByRole('button', { name: 'Confirm' }).click();
}

/** Counts main-frame navigations: a page that "updates without reload" has none. */
function navigations(page: Page): () => number {
  let n = 0;
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame()) n++;
  });
  return () => n;
}

/** The consent API called directly with the ID token the page holds (same person, no page). */
async function api(page: Page, requestId: string, verb?: 'approve' | 'deny'): Promise<{ status: number; body: { request?: Record<string, unknown>; error?: { code: string; message: string } } }> {
  const token = await page.evaluate(() => sessionStorage.getItem('ackd.idToken'));
  expect(token).toBeTruthy();
  const url = `${stack.appUrl}/api/requests/${requestId}${verb ? `/${verb}` : ''}`;
  const res = await fetch(url, {
    method: verb ? 'POST' : 'GET',
    headers: { authorization: `Bearer ${token}`, ...(verb ? { 'content-type': 'application/json' } : {}) },
    ...(verb ? { body: JSON.stringify({ request_id: requestId }) } : {}),
  });
  return { status: res.status, body: (await res.json()) as never };
}

/** Makes the tab report itself hidden (as when the person switched tabs), which stops its refreshes. */
async function hide(page: Page): Promise<void> {
  await page.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    document.dispatchEvent(new Event('visibilitychange'));
  });
}

function expectSvid(result: Record<string, unknown>, requestId: string): void {
  expect(result.status).toBe('approved');
  const svid = result.svid as string;
  const leaf = new X509Certificate(svid.slice(0, svid.indexOf('-----END CERTIFICATE-----') + 25));
  expect(leaf.subjectAltName).toBe(`URI:spiffe://${stack.trustDomain}/agent/${stack.agentId}/${requestId}`);
}

describe('quorum consent in Chromium', () => {
  it('2 of 2: A approves and waits, cannot vote again; B approves; A sees it without reload; the agent gets its SVID', async () => {
    await stack.deps.policies.set({ agent: stack.agentId, approvals: 2 }, OPERATOR);
    const { request_id, consent_url } = await request('Deploy api v1.3 to production');

    // A, in New York, opens the link twice (two tabs): both show the buttons and "0 of 2".
    const ctxA = await person('America/New_York');
    const a1 = await open(ctxA, consent_url, first);
    await a1.getByRole('heading', { name: 'An agent is asking for your approval' }).waitFor();
    expect(await field(a1, 'approvals')).toBe('0 of 2 approvals');
    expect(await a1.locator('[data-field="votes"]').count()).toBe(0);
    expect(await field(a1, 'why-you')).toMatch(/^Why you: .*needs 2 approvals from different people from approvers; one denial denies it\.$/);
    expect(await field(a1, 'status')).toBe('Pending — awaiting your decision');
    const a2 = await open(ctxA, consent_url, first);
    await a2.getByRole('heading', { name: 'An agent is asking for your approval' }).waitFor();
    // The second tab goes to the background: it stops refreshing, so it keeps its (now stale) buttons.
    await hide(a2);
    const a2Reads: string[] = [];
    a2.on('request', (r) => {
      if (r.url().includes('/api/requests/')) a2Reads.push(`${r.method()} ${new URL(r.url()).pathname}`);
    });

    // B, in Berlin, opens the link too and starts approving: the confirmation says one more is needed.
    const ctxB = await person('Europe/Berlin');
    const b = await open(ctxB, consent_url, SECOND);
    await b.getByRole('heading', { name: 'An agent is asking for your approval' }).waitFor();
    expect(await field(b, 'approvals')).toBe('0 of 2 approvals');
    const bNavigations = navigations(b);
    await b.getByRole('button', { name: 'Approve', exact: true }).click();
    expect(await b.locator('#confirm-desc').textContent()).toBe('Your approval is 1 of the 2 this request needs; the agent gets its identity once all are in.');

    // A approves in the first tab: recorded, not decided; the page waits, without buttons.
    const a1Navigations = navigations(a1);
    await approveIn(a1);
    await a1.getByRole('heading', { name: 'Your vote is recorded' }).waitFor();
    expect(await a1.locator('#vote-state').textContent()).toBe('You approved. Waiting for 1 more approval.');
    expect(await field(a1, 'approvals')).toBe('1 of 2 approvals');
    expect(await field(a1, 'status')).toBe('Pending — awaiting other approvers');
    const aVote = a1.locator('[data-field="votes"] li');
    expect(await aVote.count()).toBe(1);
    expect(await aVote.first().textContent()).toMatch(new RegExp(`^${first.username.replace(/\./g, '\\.')} \\(you\\) approved · .+ (EST|EDT)$`));
    expect(await decisionButtons(a1).count()).toBe(0);
    await a1.screenshot({ path: join(OUT, 'quorum-waiting.png'), fullPage: true });

    // B's page follows in place: A's vote and "1 of 2" appear, B's confirmation stays open and now
    // says what B's approval does (it is the last one needed).
    await b.locator('[data-field="approvals"]', { hasText: '1 of 2 approvals' }).waitFor({ timeout: 10_000 });
    expect(await b.locator('[data-field="votes"] li').allTextContents()).toEqual([expect.stringMatching(new RegExp(`^${first.username.replace(/\./g, '\\.')} approved · .+ GMT\\+[12]$`))]);
    expect(await b.getByRole('alertdialog').isVisible()).toBe(true);
    expect(await b.locator('#confirm-desc').textContent()).toBe(`The agent "${stack.agentId}" will receive an identity for this one action, valid for 10 minutes.`);
    expect(bNavigations()).toBe(0);

    // The agent sees pending with the progress.
    expect(await check(request_id)).toEqual({ status: 'pending', approvals: { have: 1, need: 2 }, payload_sha256: null });

    // The API: A's view says voted and not decidable; another vote by A (either way) is refused with 409.
    const viewA = await api(a1, request_id);
    expect(viewA.status).toBe(200);
    expect(viewA.body.request).toMatchObject({ status: 'pending', decidable: false, your_vote: 'approve', not_eligible: null, approvals: { have: 1, need: 2 } });
    expect(viewA.body.request!.votes).toEqual([{ who: first.username, vote: 'approve', at: expect.any(String) }]);
    for (const verb of ['approve', 'deny'] as const) {
      const again = await api(a1, request_id, verb);
      expect(again.status).toBe(409);
      expect(again.body.error?.code).toBe('ERR_ALREADY_VOTED');
    }
    // A's denial attempt changed nothing.
    expect(await check(request_id)).toEqual({ status: 'pending', approvals: { have: 1, need: 2 }, payload_sha256: null });

    // The hidden tab did not refresh (longer than the refresh interval), and still shows the buttons;
    // voting there again gets a clear message and the page as it is now.
    await a2.waitForTimeout(4000);
    expect(a2Reads).toEqual([]);
    await approveIn(a2);
    await a2.getByText('You have already voted on this request.', { exact: false }).waitFor();
    expect(await a2.locator('.notice').textContent()).toBe('You have already voted on this request. Each person votes once; your first vote is the one that counts.');
    await a2.getByRole('heading', { name: 'Your vote is recorded' }).waitFor();
    expect(await decisionButtons(a2).count()).toBe(0);
    expect(await field(a2, 'approvals')).toBe('1 of 2 approvals');
    expect(a2Reads[0]).toBe(`POST /api/requests/${request_id}/approve`);
    await a2.screenshot({ path: join(OUT, 'quorum-already-voted.png'), fullPage: true });
    expect(await check(request_id)).toEqual({ status: 'pending', approvals: { have: 1, need: 2 }, payload_sha256: null });

    // B confirms: the request is approved.
    await b.getByRole('button', { name: 'Confirm' }).click();
    await b.getByRole('heading', { name: 'Approved', exact: true }).waitFor();
    expect(await field(b, 'approvals')).toBe('2 of 2 approvals');
    expect(await b.locator('[data-field="votes"] li .voter').allTextContents()).toEqual([first.username, SECOND.username]);
    await b.screenshot({ path: join(OUT, 'quorum-approved.png'), fullPage: true });

    // A's first tab follows without a reload.
    await a1.getByRole('heading', { name: 'Approved', exact: true }).waitFor({ timeout: 15_000 });
    expect(await field(a1, 'status')).toBe('Approved');
    expect(await field(a1, 'approvals')).toBe('2 of 2 approvals');
    expect(await a1.getByText('Approved with 2 of 2 approvals.').count()).toBe(1);
    expect(a1Navigations()).toBe(0);

    expectSvid(await check(request_id), request_id);
    const rec = await stack.deps.service.get(request_id as never);
    expect(rec.votes?.map((v) => [v.email, v.vote])).toEqual([
      [first.username, 'approve'],
      [SECOND.username, 'approve'],
    ]);
    await ctxA.close();
    await ctxB.close();
  });

  it("separation of duties: the agent's owner sees why they may not vote, without buttons; another approver decides", async () => {
    const agentId = parseAgentId(stack.agentId);
    await stack.deps.policies.set({ agent: stack.agentId, approvals: 1, separation_of_duties: true }, OPERATOR);
    await recordOwner(stack.deps.agents, agentId, first.username, stack.clock);
    try {
      const { request_id, consent_url } = await request('Rotate the production database password');

      const ctxA = await person('UTC');
      const a = await open(ctxA, consent_url, first);
      await a.getByRole('heading', { name: 'You cannot vote on this request' }).waitFor();
      expect(await a.locator('#vote-state').textContent()).toBe("Separation of duties: the agent's owner may not vote on its requests.");
      expect(await field(a, 'why-you')).toMatch(/^Why you: .*needs one approval from approvers; the agent's owner may not vote\.$/);
      expect(await field(a, 'status')).toBe('Pending — awaiting other approvers');
      expect(await decisionButtons(a).count()).toBe(0);
      // One approval needed: no progress row.
      expect(await a.locator('[data-field="approvals"]').count()).toBe(0);
      await a.screenshot({ path: join(OUT, 'quorum-not-eligible.png'), fullPage: true });

      // The API says the same, and refuses the owner's vote with the reason.
      const viewA = await api(a, request_id);
      expect(viewA.body.request).toMatchObject({ status: 'pending', decidable: false, your_vote: null, not_eligible: SOD_REASON });
      const refused = await api(a, request_id, 'approve');
      expect(refused.status).toBe(403);
      expect(refused.body.error).toMatchObject({ code: 'ERR_FORBIDDEN', message: SOD_REASON });
      expect(await check(request_id)).toEqual({ status: 'pending', approvals: { have: 0, need: 1 }, payload_sha256: null });

      const aNavigations = navigations(a);
      const ctxB = await person('UTC');
      const b = await open(ctxB, consent_url, SECOND);
      await b.getByRole('heading', { name: 'An agent is asking for your approval' }).waitFor();
      expect(await b.locator('[data-field="why-you"]').count()).toBe(0);
      await approveIn(b);
      await b.getByRole('heading', { name: 'Approved', exact: true }).waitFor();

      // The owner's page follows without a reload.
      await a.getByRole('heading', { name: 'Approved', exact: true }).waitFor({ timeout: 15_000 });
      expect(await field(a, 'status')).toBe('Approved');
      expect(aNavigations()).toBe(0);
      expectSvid(await check(request_id), request_id);
      await ctxA.close();
      await ctxB.close();
    } finally {
      await recordOwner(stack.deps.agents, agentId, null, stack.clock);
      await stack.deps.policies.remove(stack.agentId, null, OPERATOR);
    }
  });
});
