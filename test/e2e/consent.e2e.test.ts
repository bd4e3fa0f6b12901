import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { startTestStack, structured, type TestStack } from '../helpers/local-stack.ts';

/**
 * The human's side end to end, in real Chromium: MCP request → email in aws-ses-v2-local →
 * consent link → cognito-local sign-in (code + PKCE) → review → decision → MCP check.
 * No Chromium → the suite fails (it is never skipped).
 */
const CHROMIUM = process.env.ACKD_CHROMIUM ?? '/usr/bin/chromium';
const OUT = join(process.cwd(), 'test-output', 'e2e');

let stack: TestStack;
let browser: Browser;

interface Mail {
  subject: string;
  destination: { to: string[] };
  body: { html?: string; text?: string };
}

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  stack = await startTestStack();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

type Req = { action: string; permissions: string[]; justification: string; ttl_minutes: number };

async function request(r: Req): Promise<{ request_id: string; consent_url: string }> {
  const client = await stack.client();
  return structured(await client.callTool({ name: 'request_authorization', arguments: { agent_id: stack.agentId, ...r } }));
}

async function check(requestId: string): Promise<Record<string, unknown>> {
  const client = await stack.client();
  return structured(await client.callTool({ name: 'check_authorization', arguments: { request_id: requestId } }));
}

/** The request's consent mail: sent once its request is in the audit log (the sequencer's follow-up), so settled first. */
async function mailFor(requestId: string): Promise<Mail> {
  await stack.settled();
  const res = await fetch(`${stack.mailUrl}/store`);
  const { emails } = (await res.json()) as { emails: Mail[] };
  const found = emails.filter((m) => m.body.text?.includes(requestId));
  expect(found).toHaveLength(1);
  return found[0]!;
}

/** The consent link as a mail client would follow it: the href of the email's button. */
function linkIn(mail: Mail): string {
  const m = /<a href="([^"]+)"/.exec(mail.body.html ?? '');
  expect(m).not.toBeNull();
  return m![1]!.replace(/&amp;/g, '&');
}

async function newPage(ctx?: BrowserContext): Promise<Page> {
  const context = ctx ?? (await browser.newContext({ viewport: { width: 1024, height: 900 } }));
  const page = await context.newPage();
  page.on('dialog', (d) => {
    throw new Error(`unexpected dialog (script ran?): ${d.message()}`);
  });
  return page;
}

/** A fresh tab has no session: the page sends the browser to the hosted login; sign in there. */
async function signIn(page: Page): Promise<void> {
  await page.waitForURL((u) => u.pathname === '/oauth2/authorize');
  await page.getByLabel('Username').fill(stack.approverUsername!);
  await page.getByLabel('Password').fill(stack.approverPassword!);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => u.origin === new URL(stack.consentUiUrl).origin && !u.searchParams.has('code'));
}

async function field(page: Page, name: string): Promise<string> {
  return (await page.locator(`[data-field="${name}"]`).textContent()) ?? '';
}

describe('consent in Chromium', () => {
  it('request → email → sign in → review exactly the fields → Approve → agent gets its SVID', async () => {
    const input = { action: 'Deploy api v1.2 to production', permissions: ['deploy:prod', 'k8s:rollout'], justification: 'Release 1.2 fixes the login bug.\nChange ticket CHG-42.', ttl_minutes: 10 };
    const { request_id, consent_url } = await request(input);
    const mail = await mailFor(request_id);
    expect(mail.destination.to).toEqual(['approver@ackd.local']);
    const link = linkIn(mail);
    expect(link).toBe(consent_url);

    const page = await newPage();
    await page.goto(link);
    await signIn(page);
    await page.getByRole('heading', { name: 'An agent is asking for your approval' }).waitFor();
    expect(new URL(page.url()).searchParams.get('request_id')).toBe(request_id);
    expect(new URL(page.url()).searchParams.has('code')).toBe(false);

    expect(await field(page, 'agent')).toBe(stack.agentId);
    expect(await field(page, 'action')).toBe(input.action);
    expect(await page.locator('[data-field="permissions"] li').allTextContents()).toEqual(input.permissions);
    expect(await field(page, 'justification')).toBe(input.justification);
    expect(await field(page, 'requested')).toContain(' UTC');
    expect(await field(page, 'lifetime')).toBe('The agent may use this approval for 10 minutes.');
    expect(await field(page, 'time-left')).toMatch(/^(9|10) min \d+ s$/);
    expect(await field(page, 'status')).toMatch(/^Pending/);
    await expect(page.locator('#who').textContent()).resolves.toBe(`Signed in as ${stack.approverUsername}`);
    await page.screenshot({ path: join(OUT, 'review.png'), fullPage: true });

    // Not yet approved: the agent sees pending.
    expect((await check(request_id)).status).toBe('pending');

    await page.getByRole('button', { name: 'Approve', exact: true }).click();
    await page.getByRole('alertdialog').waitFor();
    await page.screenshot({ path: join(OUT, 'confirm-approve.png'), fullPage: true });
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByRole('heading', { name: 'Approved', exact: true }).waitFor();
    await page.screenshot({ path: join(OUT, 'outcome-approved.png'), fullPage: true });

    const result = await check(request_id);
    expect(result.status).toBe('approved');
    const svid = result.svid as string;
    const leaf = new X509Certificate(svid.slice(0, svid.indexOf('-----END CERTIFICATE-----') + 25));
    expect(leaf.subjectAltName).toBe(`URI:spiffe://${stack.trustDomain}/agent/${stack.agentId}/${request_id}`);
    const rec = await stack.deps.service.get(request_id as never);
    expect(rec.approver_email).toBe(stack.approverUsername);
    expect(rec.approver_identity).toMatch(/^[0-9a-f-]{36}$/);

    // Reopening the link: already decided, no buttons.
    await page.goto(link);
    await page.getByRole('heading', { name: 'This request was already approved' }).waitFor();
    expect(await page.getByRole('button', { name: 'Approve' }).count()).toBe(0);
    await page.context().close();
  });

  it('Deny: confirmation, then "Denied", and the agent gets denied', async () => {
    const { request_id } = await request({ action: 'Delete staging database', permissions: ['db:drop'], justification: 'Cleanup', ttl_minutes: 5 });
    const page = await newPage();
    await page.goto(linkIn(await mailFor(request_id)));
    await signIn(page);
    await page.getByRole('button', { name: 'Deny', exact: true }).click();
    // Cancel first: nothing is decided.
    await page.getByRole('button', { name: 'Cancel' }).click();
    expect((await check(request_id)).status).toBe('pending');
    await page.getByRole('button', { name: 'Deny', exact: true }).click();
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByRole('heading', { name: 'Denied', exact: true }).waitFor();
    await page.screenshot({ path: join(OUT, 'outcome-denied.png'), fullPage: true });
    expect(await check(request_id)).toEqual({ status: 'denied', payload_sha256: null });
    await page.context().close();
  });

  it('hostile input (HTML/script, long strings, unicode) is inert in the email and the page', async () => {
    const input = {
      action: `<script>alert("x")</script><img src=x onerror=alert(1)> & "q" 'q'\nBcc: victim@example.com`,
      // Permissions are machine identifiers from a safe ASCII set (markup there is refused at the MCP edge).
      permissions: ['db:write', 'repo/acme:push', 'p'.repeat(128)],
      justification: `</dd></dl><a href="javascript:alert(1)">click</a> ${'Ü🦀漢字 مرحبا '.repeat(20)}\u202eevil\u202c ${'A'.repeat(3000)}`,
      ttl_minutes: 10,
    };
    const { request_id } = await request(input);
    const mail = await mailFor(request_id);
    expect(mail.subject).not.toMatch(/[\r\n]/);
    expect(mail.destination.to).toEqual(['approver@ackd.local']);
    expect(mail.body.html).not.toMatch(/<script|<img|<b>|href="javascript:/i);
    expect(mail.body.html).toContain('&lt;script&gt;');

    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const page = await newPage(ctx);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(linkIn(mail));
    await signIn(page);
    await page.getByRole('heading', { name: 'An agent is asking for your approval' }).waitFor();
    expect(await field(page, 'action')).toBe(input.action);
    expect(await field(page, 'justification')).toBe(input.justification.replace('\u202e', '[U+202E]').replace('\u202c', '[U+202C]'));
    expect(await page.locator('[data-field="permissions"] li').allTextContents()).toEqual(input.permissions);
    const dom = await page.evaluate(() => ({
      scripts: document.querySelectorAll('script').length,
      imgs: document.querySelectorAll('img').length,
      bolds: document.querySelectorAll('b').length,
      links: document.querySelectorAll('a').length,
      overflow: document.documentElement.scrollWidth - window.innerWidth,
    }));
    expect(dom).toEqual({ scripts: 1, imgs: 0, bolds: 0, links: 0, overflow: 0 });
    // Works on a phone: the buttons are visible and at least 44px tall.
    const box = await page.getByRole('button', { name: 'Approve', exact: true }).boundingBox();
    expect(box!.height).toBeGreaterThanOrEqual(44);
    expect(box!.x + box!.width).toBeLessThanOrEqual(390);
    await page.screenshot({ path: join(OUT, 'review-hostile-phone.png'), fullPage: true });
    expect(errors).toEqual([]);
    await ctx.close();
  });

  it('expired and unknown requests show a clear page without buttons; sign-out works', async () => {
    const { request_id } = await request({ action: 'Rotate keys', permissions: ['kms:rotate'], justification: 'Quarterly', ttl_minutes: 1 });
    const page = await newPage();
    await page.goto(linkIn(await mailFor(request_id)));
    await signIn(page);
    await page.getByRole('heading', { name: 'An agent is asking for your approval' }).waitFor();

    stack.clock.advanceMinutes(2);
    await page.reload();
    await page.getByRole('heading', { name: 'This request has expired' }).waitFor();
    expect(await page.getByRole('button', { name: /Approve|Deny/ }).count()).toBe(0);
    expect(await field(page, 'status')).toBe('Expired');
    await page.screenshot({ path: join(OUT, 'expired.png'), fullPage: true });
    expect(await check(request_id)).toEqual({ status: 'expired', payload_sha256: null });

    await page.goto(`${stack.consentUiUrl}?request_id=req_0000000000aaaaaaaaaaaaaaaa`);
    await page.getByRole('heading', { name: 'Unknown request' }).waitFor();
    expect(await page.getByRole('button', { name: /Approve|Deny/ }).count()).toBe(0);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'You are signed out' }).waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('ackd.idToken'))).toBeNull();
    await page.context().close();
  });
});
