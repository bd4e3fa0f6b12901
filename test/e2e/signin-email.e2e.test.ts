import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routedConsentEmail } from '../../lambdas/adapters/channels/email.ts';
import { renderDigestEmail } from '../../lambdas/adapters/ses/digest.ts';
import { renderConsentEmail } from '../../lambdas/adapters/ses/template.ts';
import { parseAgentId } from '../../lambdas/core/ids.ts';
import { LEGACY_QUORUM } from '../../lambdas/core/quorum.ts';
import { HOSTILE, pendingRecord } from '../helpers/consent-fixtures.ts';
import { startTestStack, type TestStack } from '../helpers/local-stack.ts';

/**
 * What the people around the gate see, in real Chromium: the approver's sign-in page (the local
 * stand-in for Cognito managed login) and the consent emails, at a phone's width and a desk's.
 * No Chromium → the suite fails (it is never skipped). Screenshots: test-output/e2e/signin-email/.
 */
const CHROMIUM = process.env.ACKD_CHROMIUM ?? '/usr/bin/chromium';
const OUT = join(process.cwd(), 'test-output', 'e2e', 'signin-email');
const PHONE = { width: 390, height: 844 };
const DESK = { width: 1024, height: 900 };

let browser: Browser;

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
}, 120_000);

afterAll(async () => {
  await browser?.close();
});

async function newPage(viewport: { width: number; height: number }): Promise<{ ctx: BrowserContext; page: Page; errors: string[] }> {
  const phone = viewport.width < 500;
  const ctx = await browser.newContext({ viewport, ...(phone ? { isMobile: true, hasTouch: true } : {}) });
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('dialog', (d) => {
    errors.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  return { ctx, page, errors };
}

/** How far the page is wider than the viewport (0 = no horizontal scrolling). */
const overflow = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);

describe('the approver sign-in page (cognito-local under npm start)', () => {
  let stack: TestStack;
  let requestId: string;

  beforeAll(async () => {
    stack = await startTestStack();
    requestId = (await stack.deps.service.requestAuthorization({ agent_id: parseAgentId(stack.agentId), action: 'Rotate the db password', permissions: ['db:write'], justification: 'Quarterly rotation', ttl_minutes: 10 })).request_id;
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  /** Follows the consent link of a fresh tab to the sign-in page; its URL. */
  async function toSignIn(page: Page): Promise<URL> {
    await page.goto(`${stack.consentUiUrl}?request_id=${requestId}`);
    await page.waitForURL((u) => u.pathname === '/oauth2/authorize');
    return new URL(page.url());
  }

  it('says it is ackd and what the approver signs in for, with labelled inputs, under a strict CSP', async () => {
    const { ctx, page, errors } = await newPage(DESK);
    const url = await toSignIn(page);
    expect(await page.title()).toContain('ackd');
    expect((await page.getByRole('banner').textContent())?.trim()).toMatch(/^ackd/);
    // The consent UI's flow may or may not name the request; either way the page says what this is for.
    const heading = (await page.getByRole('heading', { level: 1 }).textContent()) ?? '';
    expect(heading).toMatch(/^Sign in to review (an authorization request|authorization requests)$/);
    expect(await page.locator('#purpose').textContent()).toContain('AI agent asked ackd for permission');
    expect(await page.getByText(new URL(stack.consentUiUrl).origin).count()).toBe(1); // where it leads back to

    const user = page.getByLabel('Username');
    const pass = page.getByLabel('Password');
    expect(await user.getAttribute('autocomplete')).toBe('username');
    expect(await pass.getAttribute('autocomplete')).toBe('current-password');
    expect(await pass.getAttribute('type')).toBe('password');

    const res = await page.request.get(url.toString());
    const csp = res.headers()['content-security-policy'] ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(await page.evaluate(() => ({ scripts: document.scripts.length, inlineStyles: document.querySelectorAll('style,[style]').length }))).toEqual({ scripts: 0, inlineStyles: 0 });
    // The served stylesheet applied (the CSP lets it in): the brand is bold, the page is not the browser's default.
    expect(await page.locator('.brand').evaluate((e) => getComputedStyle(e).fontWeight)).toBe('700');
    await page.screenshot({ path: join(OUT, 'signin-desktop.png'), fullPage: true });
    expect(errors).toEqual([]);
    await ctx.close();
  });

  it('names the request when the flow carries its id', async () => {
    const { ctx, page } = await newPage(DESK);
    const url = await toSignIn(page);
    url.searchParams.set('request_id', requestId);
    await page.goto(url.toString());
    await page.getByRole('heading', { name: 'Sign in to review an authorization request' }).waitFor();
    expect(await page.locator('#request-id').textContent()).toBe(requestId);
    // …also after a failed attempt (the id travels with the form).
    await page.getByLabel('Username').fill(stack.approverUsername!);
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').waitFor();
    expect(await page.locator('#request-id').textContent()).toBe(requestId);
    await ctx.close();
  });

  it('a wrong password shows a clear error and keeps the username; the right one leads to the review', async () => {
    const { ctx, page, errors } = await newPage(DESK);
    await toSignIn(page);
    await page.getByLabel('Username').fill(stack.approverUsername!);
    await page.getByLabel('Password').fill('wrong-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').waitFor();
    expect((await page.getByRole('alert').textContent())?.trim()).toBe('Incorrect username or password.');
    expect(new URL(page.url()).pathname).toBe('/oauth2/authorize');
    expect(await page.getByLabel('Username').inputValue()).toBe(stack.approverUsername);
    expect(await page.getByLabel('Password').getAttribute('aria-invalid')).toBe('true');
    await page.screenshot({ path: join(OUT, 'signin-wrong-password-desktop.png'), fullPage: true });

    await page.getByLabel('Password').fill(stack.approverPassword!);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => u.origin === new URL(stack.consentUiUrl).origin && !u.searchParams.has('code'));
    await page.getByRole('heading', { name: 'An agent is asking for your approval' }).waitFor();
    expect(errors).toEqual([]);
    await ctx.close();
  });

  it('fits a 390 px phone: nothing overflows, before and after an error', async () => {
    const { ctx, page } = await newPage(PHONE);
    const url = await toSignIn(page);
    url.searchParams.set('request_id', requestId);
    await page.goto(url.toString());
    expect(await overflow(page)).toBeLessThanOrEqual(0);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    for (const el of [page.getByLabel('Username'), page.getByLabel('Password'), page.getByRole('button', { name: 'Sign in' })]) {
      const box = (await el.boundingBox())!;
      expect(box.x).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width).toBeLessThanOrEqual(390);
      expect(box.height).toBeGreaterThanOrEqual(44);
    }
    await page.screenshot({ path: join(OUT, 'signin-phone.png'), fullPage: true });
    await page.getByLabel('Username').fill(`someone.with.a.very.long.address.${'x'.repeat(80)}@example.com`);
    await page.getByLabel('Password').fill('wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await page.screenshot({ path: join(OUT, 'signin-wrong-password-phone.png'), fullPage: true });
    await ctx.close();
  });

  it('escapes everything from the query string; a link it cannot use gets a clear page', async () => {
    const { ctx, page, errors } = await newPage(DESK);
    const url = await toSignIn(page);
    const hostile = `"><script>window.pwned=1</script><img src=x onerror=alert(1)>'`;
    url.searchParams.set('state', hostile);
    url.searchParams.set('scope', hostile);
    url.searchParams.set('request_id', hostile);
    await page.goto(url.toString());
    await page.getByRole('heading', { name: 'Sign in to review authorization requests' }).waitFor();
    expect(await page.evaluate(() => ({ scripts: document.scripts.length, imgs: document.images.length, pwned: 'pwned' in window }))).toEqual({ scripts: 0, imgs: 0, pwned: false });
    // Echoed exactly, as data: the hidden fields carry the value back unchanged.
    expect(await page.locator('input[name="state"]').inputValue()).toBe(hostile);
    expect(await page.locator('input[name="scope"]').inputValue()).toBe(hostile);

    const bad = new URL(url);
    bad.searchParams.set('redirect_uri', 'https://evil.example/');
    const res = await page.goto(bad.toString());
    expect(res!.status()).toBe(400);
    await page.getByRole('heading', { name: 'This sign-in link cannot be used' }).waitFor();
    expect(await page.getByRole('alert').textContent()).toBe('redirect_uri is not registered for this client.');
    expect(await page.getByRole('button', { name: 'Sign in' }).count()).toBe(0);
    expect(errors).toEqual([]);
    await ctx.close();
  });
});

// ---------------------------------------------------------------------------------------------

const LINK = 'https://approve.example.com/?request_id=';

/** Every email ackd sends an approver, rendered from fixtures. */
function mails(): { name: string; html: string; labels: boolean }[] {
  const plain = pendingRecord();
  const hostile = pendingRecord(HOSTILE);
  const quorum = pendingRecord({ quorum: { ...LEGACY_QUORUM, approvals: 2, separation_of_duties: true, policies: ['deploy-bot#deploy:*'] } });
  const longAgent = pendingRecord({ agent_id: parseAgentId(`agent-${'x'.repeat(58)}`), action: `Deploy ${'build-artifact-'.repeat(12)}to production` });
  const routed = routedConsentEmail({
    record: hostile,
    consentUrl: LINK + hostile.request_id,
    approvals: { have: 1, need: 3, voters: ['alice@example.com', 'bob.with.a.rather.long.address@example.com'] },
    reason: `nobody decided within 50% of the 30-minute wait; ${'x'.repeat(120)}`,
    route: 'oncall',
    escalation: true,
  });
  const digest = renderDigestEmail({ entries: [plain, hostile, longAgent].map((r) => ({ record: r, consentUrl: LINK + r.request_id })), more: 3 });
  return [
    { name: 'consent', html: renderConsentEmail(plain, LINK + plain.request_id).html, labels: true },
    { name: 'consent-hostile', html: renderConsentEmail(hostile, LINK + hostile.request_id).html, labels: true },
    { name: 'consent-quorum', html: renderConsentEmail(quorum, LINK + quorum.request_id).html, labels: true },
    { name: 'consent-long-agent', html: renderConsentEmail(longAgent, LINK + longAgent.request_id).html, labels: true },
    { name: 'routed-escalation', html: routed.html, labels: true },
    { name: 'digest', html: digest.html, labels: false },
  ];
}

interface LabelBox {
  label: string;
  lines: number;
  height: number;
  lineHeight: number;
  clipped: boolean;
}

describe('the consent email in Chromium: labels never break inside a word', () => {
  for (const viewport of [PHONE, DESK]) {
    for (const mail of mails()) {
      it(`${mail.name} at ${viewport.width} px`, async () => {
        const { ctx, page } = await newPage(viewport);
        await page.setContent(mail.html);
        if (mail.labels) {
          const labels: LabelBox[] = await page.evaluate(() =>
            [...document.querySelectorAll('th')].map((th) => {
              const range = document.createRange();
              range.selectNodeContents(th);
              // One line box per line the label's text occupies.
              const lines = new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top))).size;
              const style = getComputedStyle(th);
              const lineHeight = style.lineHeight === 'normal' ? parseFloat(style.fontSize) * 1.25 : parseFloat(style.lineHeight);
              return { label: th.textContent ?? '', lines, height: range.getBoundingClientRect().height, lineHeight, clipped: th.scrollWidth > th.clientWidth };
            }),
          );
          expect(labels.map((l) => l.label)).toEqual(expect.arrayContaining(['Agent', 'Action', 'Permissions', 'Justification', 'Requested', 'Time to live', 'Expires', 'Request ID']));
          for (const l of labels) {
            expect({ label: l.label, lines: l.lines, clipped: l.clipped }).toEqual({ label: l.label, lines: 1, clipped: false });
            expect(l.height, `height of "${l.label}"`).toBeLessThanOrEqual(l.lineHeight * 1.5);
          }
          // Values wrap inside their cell instead of pushing the table wider.
          const cells = await page.evaluate(() => [...document.querySelectorAll('td')].filter((td) => td.scrollWidth > td.clientWidth + 1).map((td) => td.textContent?.slice(0, 40)));
          expect(cells).toEqual([]);
        }
        expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(viewport.width);
        expect(await overflow(page)).toBeLessThanOrEqual(0);
        await page.screenshot({ path: join(OUT, `email-${mail.name}-${viewport.width}.png`), fullPage: true });
        await ctx.close();
      });
    }
  }
});
