import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../lambdas/core/audit/event.ts';
import { startTestStack, structured, type TestStack } from '../helpers/local-stack.ts';

/**
 * The approver's dashboard, revocation from the consent page, and how the review page marks the
 * agent's claims and risky permissions — in real Chromium, at a desk's width and a phone's.
 * No Chromium → the suite fails (it is never skipped). Screenshots: test-output/e2e/dashboard/.
 */
const CHROMIUM = process.env.ACKD_CHROMIUM ?? '/usr/bin/chromium';
const OUT = join(process.cwd(), 'test-output', 'e2e', 'dashboard');
const OPERATOR = { type: 'operator', id: 'test' } as const;
const DESK = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

let stack: TestStack;
let browser: Browser;
let mcp: Client;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  stack = await startTestStack();
  mcp = await stack.client();
}, 120_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await stack?.stop();
});

interface Ask {
  action: string;
  ttl_minutes: number;
  permissions?: string[];
  justification?: string;
}

async function request(r: Ask): Promise<{ request_id: string; consent_url: string }> {
  return structured(await mcp.callTool({ name: 'request_authorization', arguments: { agent_id: stack.agentId, permissions: ['deploy:staging'], justification: 'Routine', ...r } }));
}

async function check(requestId: string): Promise<Record<string, unknown>> {
  return structured(await mcp.callTool({ name: 'check_authorization', arguments: { request_id: requestId } }));
}

async function browserAt(viewport: { width: number; height: number }, timezoneId: string): Promise<BrowserContext> {
  const phone = viewport.width < 500;
  const ctx = await browser.newContext({ viewport, locale: 'en-US', timezoneId, ...(phone ? { isMobile: true, hasTouch: true } : {}) });
  contexts.push(ctx);
  return ctx;
}

/** Opens `link` in a fresh tab of `ctx`: no session yet, so the page sends the browser to sign in first. */
async function open(ctx: BrowserContext, link: string): Promise<{ page: Page; errors: string[] }> {
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('dialog', (d) => {
    errors.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  await page.goto(link);
  await page.waitForURL((u) => u.pathname === '/oauth2/authorize');
  await page.getByLabel('Username').fill(stack.approverUsername!);
  await page.getByLabel('Password').fill(stack.approverPassword!);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => u.origin === new URL(stack.consentUiUrl).origin && !u.searchParams.has('code'));
  await page.locator('h1').waitFor();
  return { page, errors };
}

async function field(page: Page, name: string): Promise<string> {
  return (await page.locator(`[data-field="${name}"]`).textContent()) ?? '';
}

/** Counts main-frame navigations: a page that "updates without reload" has none. */
function navigations(page: Page): () => number {
  let n = 0;
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame()) n++;
  });
  return () => n;
}

/** The consent API called with the ID token the page holds (the same person, beside the page). */
async function api(page: Page, path: string, body?: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> & { error?: { code: string; message: string } } }> {
  const token = await page.evaluate(() => sessionStorage.getItem('ackd.idToken'));
  expect(token).toBeTruthy();
  const res = await fetch(`${stack.appUrl}/api${path}`, {
    method: body ? 'POST' : 'GET',
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as never };
}

/** Makes the tab report itself hidden (the person switched tabs), which stops its refreshes. */
async function hide(page: Page): Promise<void> {
  await page.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    document.dispatchEvent(new Event('visibilitychange'));
  });
}

const overflow = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
const pendingIds = (page: Page) => page.locator('[data-list="pending"] > li').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-request-id')));
const recentIds = (page: Page) => page.locator('[data-list="recent"] > li').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-request-id')));
const row = (page: Page, id: string) => page.locator(`[data-request-id="${id}"]`);

async function eventsOf(id: string): Promise<AuditEvent[]> {
  const out: AuditEvent[] = [];
  const head = await stack.deps.store.audit.head();
  for await (const e of stack.deps.store.audit.events(1, head.seq)) if (e.request_id === id) out.push(e);
  return out;
}

const HOSTILE_ACTION = `<img src=x onerror=alert(1)> ${'A'.repeat(300)}`;

describe('the dashboard in Chromium', () => {
  it('starts from /, says so when empty, lists pending by deadline, follows new requests, votes and decisions without reload; at a desk and on a phone', async () => {
    // Signing in from the root (no request in the link) comes back to the dashboard.
    const desk = await browserAt(DESK, 'America/New_York');
    const { page, errors } = await open(desk, stack.consentUiUrl);
    await page.getByRole('heading', { name: 'Authorization requests', level: 1 }).waitFor();
    expect(new URL(page.url()).search).toBe('');
    expect(await page.locator('[data-empty="pending"]').textContent()).toBe('Nothing is waiting for a decision.');
    expect(await page.locator('[data-empty="recent"]').textContent()).toBe('Nothing was decided in the last 24 hours.');
    expect(await page.locator('#home').isVisible()).toBe(false);
    await page.screenshot({ path: join(OUT, 'dashboard-empty-desk.png'), fullPage: true });
    const navs = navigations(page);

    // Requests arrive while the page is open: they appear, soonest deadline first.
    const r30 = await request({ action: 'Scale the api to 6 replicas', ttl_minutes: 30 });
    const r5 = await request({ action: 'Deploy api v2.0 to production', ttl_minutes: 5, permissions: ['deploy:prod'] });
    await stack.deps.policies.set({ agent: stack.agentId, approvals: 2 }, OPERATOR);
    let r20: { request_id: string };
    try {
      r20 = await request({ action: 'Rotate the production database password', ttl_minutes: 20 });
    } finally {
      await stack.deps.policies.remove(stack.agentId, null, OPERATOR);
    }
    const r45 = await request({ action: HOSTILE_ACTION, ttl_minutes: 45 });
    const order = [r5, r20, r30, r45].map((r) => r.request_id);
    await expect.poll(() => pendingIds(page), { timeout: 10_000 }).toEqual(order);
    expect(navs()).toBe(0);
    expect(await page.locator('[data-count="pending"]').textContent()).toBe(' (4)');

    // Each row: time left (from the server's clock), agent, action; "0 of 2 approvals" only where more than one is needed.
    expect(await row(page, r5.request_id).locator('.left').textContent()).toMatch(/^[45] min \d+ s left$/);
    expect(await row(page, r5.request_id).locator('.agent').textContent()).toBe(stack.agentId);
    expect(await row(page, r5.request_id).locator('.action').textContent()).toBe('Deploy api v2.0 to production');
    expect(await row(page, r20.request_id).locator('.approvals').textContent()).toBe('0 of 2 approvals');
    expect(await row(page, r5.request_id).locator('.approvals').count()).toBe(0);
    expect(await row(page, r20.request_id).locator('.mine').count()).toBe(0);
    // The agent's text is text: no image, no handler ran.
    expect(await row(page, r45.request_id).locator('.action').textContent()).toBe(HOSTILE_ACTION);
    expect(await page.locator('main img').count()).toBe(0);
    // Every row opens the review page.
    expect(await row(page, r5.request_id).locator('a').getAttribute('href')).toBe(`?request_id=${r5.request_id}`);

    // Time passes on the server: the time left follows it.
    stack.clock.advanceMinutes(2);
    await expect.poll(() => row(page, r5.request_id).locator('.left').textContent(), { timeout: 10_000 }).toMatch(/^[23] min \d+ s left$/);

    // My vote on the 2-approval request: "1 of 2 approvals" and a marker that I voted.
    const vote = await api(page, `/requests/${r20.request_id}/approve`, { request_id: r20.request_id });
    expect(vote.status).toBe(200);
    await expect.poll(() => row(page, r20.request_id).locator('.approvals').textContent(), { timeout: 10_000 }).toBe('1 of 2 approvals');
    expect(await row(page, r20.request_id).locator('.mine').textContent()).toBe('You approved');

    // A decision moves the request from "Awaiting decision" to "Recent decisions".
    const approve = await api(page, `/requests/${r5.request_id}/approve`, { request_id: r5.request_id });
    expect(approve.status).toBe(200);
    const deny = await api(page, `/requests/${r30.request_id}/deny`, { request_id: r30.request_id });
    expect(deny.status).toBe(200);
    await expect.poll(() => pendingIds(page), { timeout: 10_000 }).toEqual([r20.request_id, r45.request_id]);
    await expect.poll(() => recentIds(page), { timeout: 10_000 }).toEqual(expect.arrayContaining([r5.request_id, r30.request_id]));
    expect(await row(page, r5.request_id).locator('.status').textContent()).toBe('Approved');
    expect(await row(page, r30.request_id).locator('.status').textContent()).toBe('Denied');
    // When, in the reader's zone with the zone.
    expect(await row(page, r5.request_id).locator('.when').textContent()).toMatch(/^\w{3} \d{1,2}, \d{4}, \d{1,2}:\d{2}:\d{2} [AP]M E[SD]T$/);
    expect(navs()).toBe(0);

    // A desk: a table — a header row, one line per request.
    expect(await page.locator('.pending .row.head').isVisible()).toBe(true);
    const [agentBox, actionBox] = [await row(page, r20.request_id).locator('.agent').boundingBox(), await row(page, r20.request_id).locator('.action').boundingBox()];
    expect(Math.abs(agentBox!.y - actionBox!.y)).toBeLessThan(4);
    expect(actionBox!.x).toBeGreaterThan(agentBox!.x);
    expect(await overflow(page)).toBe(0);
    await page.screenshot({ path: join(OUT, 'dashboard-desk.png'), fullPage: true });

    // A phone, signing in from /: the same lists as stacked cards, no horizontal scrolling.
    const phone = await browserAt(PHONE, 'Europe/Berlin');
    const mobile = await open(phone, stack.consentUiUrl);
    await mobile.page.getByRole('heading', { name: 'Authorization requests', level: 1 }).waitFor();
    expect(await pendingIds(mobile.page)).toEqual([r20.request_id, r45.request_id]);
    expect(await recentIds(mobile.page)).toEqual(expect.arrayContaining([r5.request_id, r30.request_id]));
    expect(await mobile.page.locator('.pending .row.head').isVisible()).toBe(false);
    const card = row(mobile.page, r45.request_id);
    const [when, agent, action] = [await card.locator('.when').boundingBox(), await card.locator('.agent').boundingBox(), await card.locator('.action').boundingBox()];
    expect(agent!.y).toBeGreaterThan(when!.y);
    expect(action!.y).toBeGreaterThan(agent!.y);
    expect(action!.x + action!.width).toBeLessThanOrEqual(PHONE.width);
    expect(await overflow(mobile.page)).toBe(0);
    await mobile.page.screenshot({ path: join(OUT, 'dashboard-phone.png'), fullPage: true });

    // A new request shows up on the phone too, without reload.
    const phoneNavs = navigations(mobile.page);
    const r10 = await request({ action: 'Restart the worker pool', ttl_minutes: 10 });
    await expect.poll(() => pendingIds(mobile.page), { timeout: 10_000 }).toEqual([r10.request_id, r20.request_id, r45.request_id]);
    expect(phoneNavs()).toBe(0);
    expect(await overflow(mobile.page)).toBe(0);

    // A row opens the review page; "All requests" leads back.
    await row(mobile.page, r10.request_id).locator('a').click();
    await mobile.page.getByRole('heading', { name: 'An agent is asking for your approval' }).waitFor();
    expect(new URL(mobile.page.url()).searchParams.get('request_id')).toBe(r10.request_id);
    expect(await overflow(mobile.page)).toBe(0);
    await mobile.page.getByRole('button', { name: '← All requests' }).click();
    await mobile.page.getByRole('heading', { name: 'Authorization requests', level: 1 }).waitFor();
    expect(new URL(mobile.page.url()).search).toBe('');

    expect(errors).toEqual([]);
    expect(mobile.errors).toEqual([]);
    // Leave nothing pending for the next tests' lists.
    for (const id of [r10.request_id, r45.request_id]) await stack.deps.service.decide(id as never, 'denied', 'operator:test');
    await stack.deps.service.decide(r20.request_id as never, 'denied', 'operator:test');
  });
});

describe('revoking from the review page', () => {
  it('an approved request whose SVID the agent picked up: Revoke with a reason → "Revoked" by the approver; the agent and the audit chain say revoked', async () => {
    const { request_id, consent_url } = await request({ action: 'Run the schema migration on the orders database', ttl_minutes: 15, permissions: ['db:migrate'] });
    const ctx = await browserAt(DESK, 'America/New_York');
    const { page, errors } = await open(ctx, consent_url);
    await page.getByRole('heading', { name: 'An agent is asking for your approval' }).waitFor();
    // No Revoke while pending.
    expect(await page.getByRole('button', { name: 'Revoke', exact: true }).count()).toBe(0);
    await page.getByRole('button', { name: 'Approve', exact: true }).click();
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByRole('heading', { name: 'Approved', exact: true }).waitFor();
    expect(await field(page, 'identity')).toMatch(/^The agent has not picked up its identity yet\. It may use this approval until .+ E[SD]T\.$/);

    // The agent picks up its SVID over MCP; the page follows without reload.
    const navs = navigations(page);
    const picked = await check(request_id);
    expect(picked.status).toBe('approved');
    expect(typeof picked.svid).toBe('string');
    await page.locator('[data-field="identity"]', { hasText: /^The agent picked up its identity for this request; it may use it until .+ E[SD]T\.$/ }).waitFor({ timeout: 10_000 });
    expect(navs()).toBe(0);

    // Revoke → a confirmation with a reason → Revoked, when (local, with zone), by whom, why.
    await page.getByRole('button', { name: 'Revoke', exact: true }).click();
    const dialog = page.getByRole('alertdialog', { name: 'Revoke this approval?' });
    await dialog.waitFor();
    expect(await page.locator('#revoke-desc').textContent()).toMatch(/stops being accepted/);
    // Cancel changes nothing.
    await page.getByRole('button', { name: 'Cancel' }).click();
    expect(await dialog.count()).toBe(0);
    expect((await check(request_id)).status).toBe('approved');
    await page.getByRole('button', { name: 'Revoke', exact: true }).click();
    const reason = 'Wrong cluster: the migration was meant for staging';
    await page.getByLabel('Reason (optional)').fill(reason);
    expect(await page.getByLabel('Reason (optional)').getAttribute('maxlength')).toBe('500');
    await page.screenshot({ path: join(OUT, 'revoke-confirm.png'), fullPage: true });
    await page.getByRole('button', { name: 'Revoke approval' }).click();
    await page.getByRole('heading', { name: 'Revoked', exact: true }).waitFor();
    expect(await page.locator('#lead').textContent()).toBe('You revoked this approval. The agent can no longer use it.');
    const by = `by ${stack.approverUsername} (you)`;
    expect(await field(page, 'revoked')).toMatch(new RegExp(`^\\w{3} \\d{1,2}, \\d{4}, \\d{1,2}:\\d{2}:\\d{2} [AP]M E[SD]T ${by.replace(/[.()]/g, '\\$&')}$`));
    expect(await field(page, 'revoke-reason')).toBe(reason);
    expect(await field(page, 'status')).toBe('Revoked');
    expect(await page.getByRole('button', { name: 'Revoke', exact: true }).count()).toBe(0);
    await page.screenshot({ path: join(OUT, 'revoked.png'), fullPage: true });

    // The agent is told; the chain's last event of the request is the revocation, by this approver, with the reason.
    const after = await check(request_id);
    expect(after).toEqual({ status: 'revoked', revoked_at: expect.any(String), payload_sha256: null });
    const rec = await stack.deps.service.get(request_id as never);
    const last = (await eventsOf(request_id)).at(-1)!;
    expect(last).toMatchObject({ type: 'revoked', actor_type: 'approver', actor_id: rec.approver_identity, reason });

    // Opened later (another tab, another zone): says when, by whom and why; nothing to press.
    const later = await browserAt(DESK, 'Asia/Tokyo');
    const again = await open(later, consent_url);
    await again.page.getByRole('heading', { name: 'This request was approved and later revoked' }).waitFor();
    expect(await field(again.page, 'revoked')).toMatch(new RegExp(` GMT\\+9 ${by.replace(/[.()]/g, '\\$&')}$`));
    expect(await field(again.page, 'revoke-reason')).toBe(reason);
    expect(await again.page.getByRole('button', { name: /Revoke|Approve|Deny/ }).count()).toBe(0);
    // The dashboard lists it as revoked.
    await again.page.getByRole('button', { name: '← All requests' }).click();
    await again.page.getByRole('heading', { name: 'Authorization requests', level: 1 }).waitFor();
    expect(await row(again.page, request_id).locator('.status').textContent()).toBe('Revoked');
    expect(errors).toEqual([]);
    expect(again.errors).toEqual([]);
  });

  it('revoked elsewhere meanwhile: the page says by whom; a refused revocation (409) is a sentence, not an error page', async () => {
    // The agent gives its SVID back while the approver's tab (in the background) still shows Revoke.
    const { request_id, consent_url } = await request({ action: 'Flush the CDN cache', ttl_minutes: 15, permissions: ['cdn:purge'] });
    await stack.deps.service.decide(request_id as never, 'approved', 'operator:test');
    const picked = await check(request_id);
    const ctx = await browserAt(DESK, 'UTC');
    const { page, errors } = await open(ctx, consent_url);
    await page.getByRole('heading', { name: 'This request was already approved' }).waitFor();
    await hide(page);
    structured(await mcp.callTool({ name: 'revoke_authorization', arguments: { request_id, svid_id: picked.svid_id } }));
    await page.getByRole('button', { name: 'Revoke', exact: true }).click();
    await page.getByRole('button', { name: 'Revoke approval' }).click();
    await page.getByRole('heading', { name: 'Revoked', exact: true }).waitFor();
    expect(await page.locator('#lead').textContent()).toBe(`This approval had already been revoked by the agent ${stack.agentId} itself.`);
    expect(await field(page, 'revoked')).toMatch(new RegExp(` UTC by the agent ${stack.agentId} itself$`));

    // A visible approved page follows a revocation made elsewhere without reload.
    const r2 = await request({ action: 'Open a support session', ttl_minutes: 15, permissions: ['support:session'] });
    await stack.deps.service.decide(r2.request_id as never, 'approved', 'operator:test');
    const p2 = await open(ctx, r2.consent_url);
    await p2.page.getByRole('heading', { name: 'This request was already approved' }).waitFor();
    const navs = navigations(p2.page);
    await stack.deps.service.revokeApproval(r2.request_id as never, 'operator:carol', null, 'Session no longer needed');
    await p2.page.getByRole('heading', { name: 'This request was approved and later revoked' }).waitFor({ timeout: 10_000 });
    expect(await p2.page.locator('.notice').textContent()).toBe('This approval was revoked while the page was open.');
    expect(await field(p2.page, 'revoked')).toMatch(/ by operator carol \(ackd CLI\)$/);
    expect(await field(p2.page, 'revoke-reason')).toBe('Session no longer needed');
    expect(navs()).toBe(0);

    // The API refuses to revoke what is not approved with 409 ERR_NOT_APPROVED; the page turns that into a sentence.
    const denied = await request({ action: 'Drop the audit table', ttl_minutes: 15, permissions: ['db:drop'] });
    await stack.deps.service.decide(denied.request_id as never, 'denied', 'operator:test');
    const refused = await api(page, `/requests/${denied.request_id}/revoke`, { request_id: denied.request_id });
    expect(refused.status).toBe(409);
    expect(refused.body.error?.code).toBe('ERR_NOT_APPROVED');
    const r3 = await request({ action: 'Read the billing export', ttl_minutes: 15, permissions: ['billing:read'] });
    await stack.deps.service.decide(r3.request_id as never, 'approved', 'operator:test');
    const p3 = await open(ctx, r3.consent_url);
    await p3.page.getByRole('heading', { name: 'This request was already approved' }).waitFor();
    // The server's refusal for a request that is no longer approved, as it would come back.
    await p3.page.route(`**/api/requests/${r3.request_id}/revoke`, (route) =>
      route.fulfill({ status: 409, contentType: 'application/json', body: JSON.stringify({ error: { code: 'ERR_NOT_APPROVED', message: `request ${r3.request_id} is denied: only an approved request can be revoked` } }) }),
    );
    await p3.page.getByRole('button', { name: 'Revoke', exact: true }).click();
    await p3.page.getByRole('button', { name: 'Revoke approval' }).click();
    await p3.page.locator('.notice').waitFor();
    expect(await p3.page.locator('.notice').textContent()).toBe('The approval could not be revoked just now. Try again.');
    await p3.page.getByRole('heading', { name: 'This request was already approved' }).waitFor();
    expect(await p3.page.getByRole('button', { name: 'Revoke', exact: true }).isEnabled()).toBe(true);
    expect(errors).toEqual([]);
    expect(p2.errors).toEqual([]);
    expect(p3.errors).toEqual([]);
  });
});

describe('the review page', () => {
  it("marks the agent's claims, flags destructive and admin permissions, shows local times with the zone and no jargon", async () => {
    const input = {
      action: 'Clean up the old tenants',
      permissions: ['db:drop', 'logs:read', 's3:*', 'cluster:admin', 'deploy:prod'],
      justification: 'Tenants t-1 to t-9 were closed last quarter.\nTicket OPS-77.',
      ttl_minutes: 15,
    };
    const { request_id, consent_url } = await request(input);
    for (const [viewport, zone, shot] of [
      [DESK, 'Asia/Tokyo', 'review-desk.png'],
      [PHONE, 'America/Los_Angeles', 'review-phone.png'],
    ] as const) {
      const ctx = await browserAt(viewport, zone);
      const { page, errors } = await open(ctx, consent_url);
      await page.getByRole('heading', { name: 'An agent is asking for your approval' }).waitFor();
      expect(new URL(page.url()).searchParams.get('request_id')).toBe(request_id);

      // The agent's own words: labelled as its claim, set apart; their text is exactly what it sent.
      for (const name of ['action', 'justification']) {
        const dd = page.locator(`[data-field="${name}"]`);
        expect(await dd.getAttribute('data-claim')).toBe('agent');
        expect(await dd.evaluate((e) => e.previousElementSibling?.querySelector('.claim-tag')?.textContent)).toBe('as stated by the agent');
        const style = await dd.evaluate((e) => ({ border: getComputedStyle(e).borderLeftStyle, bg: getComputedStyle(e).backgroundColor }));
        expect(style.border).toBe('dashed');
        expect(style.bg).not.toBe('rgba(0, 0, 0, 0)');
      }
      expect(await field(page, 'action')).toBe(input.action);
      expect(await field(page, 'justification')).toBe(input.justification);
      // What ackd itself knows is not marked.
      expect(await page.locator('[data-field="agent"]').getAttribute('data-claim')).toBeNull();

      // Permissions: each item is the permission; the risky ones carry a badge and are named in a warning.
      const items = page.locator('[data-field="permissions"] li');
      expect(await items.allTextContents()).toEqual(input.permissions);
      const flags = await items.evaluateAll((lis) => lis.map((li) => [li.getAttribute('data-flags'), getComputedStyle(li, '::after').content]));
      expect(flags).toEqual([
        ['destructive', '"destructive"'],
        [null, 'none'],
        ['wildcard', '"wildcard"'],
        ['admin', '"admin"'],
        ['production', '"changes production"'],
      ]);
      expect(await page.locator('#permission-flags').textContent()).toBe(
        '4 of 5 permissions need a careful look: db:drop (destructive), s3:* (wildcard), cluster:admin (admin), deploy:prod (changes production).',
      );

      // Times in the reader's zone, with the zone; how long an approval lasts, in words.
      const zoneName = zone === 'Asia/Tokyo' ? /GMT\+9$/ : /P[SD]T$/;
      expect(await field(page, 'requested')).toMatch(zoneName);
      expect(await field(page, 'expires')).toMatch(zoneName);
      expect(await field(page, 'lifetime')).toBe('The agent may use this approval for 15 minutes.');
      const text = (await page.locator('main').textContent()) ?? '';
      expect(text).not.toMatch(/TTL|UTC/);
      expect(await overflow(page)).toBe(0);
      await page.screenshot({ path: join(OUT, shot), fullPage: true });
      expect(errors).toEqual([]);
      await ctx.close();
    }
  });
});
