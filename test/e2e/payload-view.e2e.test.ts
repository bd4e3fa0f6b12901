import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../lambdas/core/audit/event.ts';
import { parseRequestId } from '../../lambdas/core/ids.ts';
import { groupedHex, payloadSha256 } from '../../lambdas/core/payload.ts';
import { CHANGED_TEXT, STALE_VIEW_TEXT } from '../../consent-ui/src/payload-view.ts';
import { startTestStack, structured, writeItemFields, type TestStack } from '../helpers/local-stack.ts';

/**
 * What the approver sees of a payload, and the view binding, end to end in real Chromium:
 * MCP request with a nested payload → the consent email (aws-ses-v2-local) lists the fields and the
 * grouped SHA-256 → the page shows every field, the hash, folds a long value ("show all" unfolds
 * it) → approve. And a request changed in the table after the page showed it: the decision is
 * refused (409 ERR_STALE_VIEW), nothing is decided, the refusal is in the audit log, and the page
 * shows the request as it is now.
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

async function request(args: Record<string, unknown>): Promise<{ request_id: string; consent_url: string; payload_sha256?: string | null }> {
  const client = await stack.client();
  return structured(await client.callTool({ name: 'request_authorization', arguments: { agent_id: stack.agentId, permissions: ['deploy:prod'], ttl_minutes: 10, ...args } }));
}

async function mailFor(requestId: string): Promise<Mail> {
  await stack.settled();
  const { emails } = (await (await fetch(`${stack.mailUrl}/store`)).json()) as { emails: Mail[] };
  const found = emails.filter((m) => m.body.text?.includes(requestId));
  expect(found).toHaveLength(1);
  return found[0]!;
}

function linkIn(mail: Mail): string {
  const m = /<a href="([^"]+)"/.exec(mail.body.html ?? '');
  expect(m).not.toBeNull();
  return m![1]!.replace(/&amp;/g, '&');
}

async function signedInPage(link: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1024, height: 900 } });
  const page = await context.newPage();
  page.on('dialog', (d) => {
    throw new Error(`unexpected dialog (script ran?): ${d.message()}`);
  });
  await page.goto(link);
  await page.waitForURL((u) => u.pathname === '/oauth2/authorize');
  await page.getByLabel('Username').fill(stack.approverUsername!);
  await page.getByLabel('Password').fill(stack.approverPassword!);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => u.origin === new URL(stack.consentUiUrl).origin && !u.searchParams.has('code'));
  await page.getByRole('heading', { name: 'An agent is asking for your approval' }).waitFor();
  return page;
}

/** The tab reports itself hidden (the person switched tabs): its refreshes stop, so it keeps showing what it read. */
async function hide(page: Page): Promise<void> {
  await page.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    document.dispatchEvent(new Event('visibilitychange'));
  });
}

async function field(page: Page, name: string): Promise<string> {
  return (await page.locator(`[data-field="${name}"]`).textContent()) ?? '';
}

/** The payload table as the page shows it: path → value text (folded ones as shown). */
async function payloadTable(page: Page): Promise<[string, string][]> {
  return page.locator('[data-field="payload"] tbody tr').evaluateAll((trs) => trs.map((tr) => [tr.querySelector('th')!.textContent!, tr.querySelector('.value')!.textContent!] as [string, string]));
}

async function eventsOf(id: string): Promise<AuditEvent[]> {
  await stack.settled();
  const out: AuditEvent[] = [];
  const head = await stack.deps.store.audit.head();
  for await (const e of stack.deps.store.audit.events(1, head.seq)) if (e.request_id === id) out.push(e);
  return out;
}

const LONG_SQL = `ALTER TABLE orders ADD COLUMN refund_reason text;\n${Array.from({ length: 30 }, (_, i) => `UPDATE orders SET refund_reason = 'batch ${i}' WHERE id % 30 = ${i};`).join('\n')}`;

describe('the payload, as the approver sees it', () => {
  it('MCP request with a nested payload → email lists the fields and the grouped hash → page shows every field, folds the long one, "show all" reveals it → approve', async () => {
    const payload = {
      deploy: { env: 'prod', targets: [{ region: 'eu-west-1', replicas: 3 }, { region: 'us-east-1', replicas: '3' }], dry_run: false },
      migration: LONG_SQL,
      'odd key': '<img src=x onerror=alert(1)>',
      hidden: 'pay\u202eevil',
      empty: {},
    };
    const { request_id, payload_sha256 } = await request({ action: 'Deploy api v1.3 with migration', justification: 'Release 1.3', payload });
    const expectedHash = payloadSha256(payload);
    expect(payload_sha256).toBe(expectedHash);

    // The email: every field (the long one cut), the hash in groups of 4, nothing as markup.
    const mail = await mailFor(request_id);
    const text = mail.body.text!;
    expect(text).toContain('  deploy.env: "prod"');
    expect(text).toContain('  deploy.targets[0].region: "eu-west-1"');
    expect(text).toContain('  deploy.targets[0].replicas: 3');
    expect(text).toContain('  deploy.targets[1].replicas: "3"');
    expect(text).toContain('  deploy.dry_run: false');
    expect(text).toMatch(/ {2}migration: "ALTER TABLE orders ADD COLUMN refund_reason text; \(… [\d,]+ more characters: see the consent page\)/);
    expect(text).toContain('  ["odd key"]: "<img src=x onerror=alert(1)>"');
    expect(text).toContain('  hidden: "pay[U+202E]evil"');
    expect(text).toContain('  empty: {}');
    expect(text).toContain(groupedHex(expectedHash));
    expect(mail.body.html).toContain(groupedHex(expectedHash));
    expect(mail.body.html).not.toMatch(/<img/);

    const page = await signedInPage(linkIn(mail));
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    // Every field, as text; the long SQL folded to its first line.
    // (ackd stores the payload as canonical JSON, so keys come in RFC 8785 order: the same on the page and in the email.)
    expect(await payloadTable(page)).toEqual([
      ['deploy.dry_run', 'false'],
      ['deploy.env', '"prod"'],
      ['deploy.targets[0].region', '"eu-west-1"'],
      ['deploy.targets[0].replicas', '3'],
      ['deploy.targets[1].region', '"us-east-1"'],
      ['deploy.targets[1].replicas', '"3"'],
      ['empty', '{}'],
      ['hidden', '"pay[U+202E]evil"'],
      ['migration', '"ALTER TABLE orders ADD COLUMN refund_reason text;…'],
      ['["odd key"]', '"<img src=x onerror=alert(1)>"'],
    ]);
    expect(await page.locator('main img').count()).toBe(0);
    // The hash, in groups of 4, checked by the page against the payload it shows.
    expect(await page.locator('#payload-sha256').textContent()).toBe(groupedHex(expectedHash));
    await expect.poll(() => page.locator('[data-field="payload-sha256"]').getAttribute('data-checked')).toBe('true');
    expect(await field(page, 'payload-sha256')).toContain('Compare this with the SHA-256 the pipeline');
    await page.screenshot({ path: join(OUT, 'payload-review.png'), fullPage: true });

    // "Show all" unfolds the long value to every character; "Show less" folds it again.
    const row = page.locator('[data-field="payload"] tr[data-path="migration"]');
    const toggle = row.getByRole('button', { name: /^Show all \(31 lines, [\d,]+ more characters\)$/ });
    await toggle.click();
    expect(await row.locator('.value').textContent()).toBe(`"${LONG_SQL}"`);
    expect(await row.getByRole('button', { name: 'Show less' }).getAttribute('aria-expanded')).toBe('true');
    await page.screenshot({ path: join(OUT, 'payload-show-all.png'), fullPage: true });
    await row.getByRole('button', { name: 'Show less' }).click();
    expect(await row.locator('.value').textContent()).toBe('"ALTER TABLE orders ADD COLUMN refund_reason text;…');

    // On a phone the table stacks: nothing wider than the screen, the hash included.
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBe(0);
    await page.screenshot({ path: join(OUT, 'payload-review-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1024, height: 900 });

    // Approve: the page's view hash matches the stored request, so the decision stands.
    await page.getByRole('button', { name: 'Approve', exact: true }).click();
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByRole('heading', { name: 'Approved', exact: true }).waitFor();
    expect((await stack.deps.service.get(parseRequestId(request_id))).decision).toBe('approved');
    // After the decision the page still shows what was approved.
    expect((await payloadTable(page)).map(([p]) => p)).toContain('deploy.targets[1].replicas');
    expect(errors).toEqual([]);
    await page.context().close();
  });
});

describe('the view binding in the page', () => {
  it('the request changed in the table while the page showed it: the decision is refused (409 ERR_STALE_VIEW), nothing decided, a refused event recorded, the page shows it as it is now', async () => {
    const { request_id, consent_url } = await request({ action: 'Rotate the api keys', justification: 'Quarterly rotation' });
    const page = await signedInPage(consent_url);
    await hide(page);
    expect(await field(page, 'justification')).toBe('Quarterly rotation');

    // Behind ackd's back, someone with table access rewrites what the approver is reading.
    await writeItemFields(stack, `req#${request_id}`, { justification: 'Quarterly rotation; also export every key to an outside bucket' });
    const posts: number[] = [];
    page.on('response', (r) => {
      if (r.request().method() === 'POST' && r.url().endsWith(`/api/requests/${request_id}/approve`)) posts.push(r.status());
    });
    await page.getByRole('button', { name: 'Approve', exact: true }).click();
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByText(STALE_VIEW_TEXT).waitFor();
    expect(posts).toEqual([409]);
    // Shown again as it is now, still to be decided.
    expect(await field(page, 'justification')).toBe('Quarterly rotation; also export every key to an outside bucket');
    expect(await field(page, 'status')).toMatch(/^Pending/);
    await page.screenshot({ path: join(OUT, 'stale-view.png'), fullPage: true });
    const rec = await stack.deps.service.get(parseRequestId(request_id));
    expect(rec).toMatchObject({ decision: 'pending', approver_identity: null, votes: [] });
    const events = await eventsOf(request_id);
    expect(events.map((e) => e.type)).not.toContain('approved');
    const refused = events.filter((e) => e.type === 'refused');
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ actor_type: 'approver' });
    expect(refused[0]!.reason).toMatch(/^approval refused: ERR_STALE_VIEW: /);

    // Having read it again, the approver denies it: that decision, on the view now shown, stands.
    await page.getByRole('button', { name: 'Deny', exact: true }).click();
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByRole('heading', { name: 'Denied', exact: true }).waitFor();
    expect((await stack.deps.service.get(parseRequestId(request_id))).decision).toBe('denied');
    await page.context().close();
  });

  it('a refresh that finds the request changed shows it anew with a notice, closing an open confirmation', async () => {
    const { request_id, consent_url } = await request({ action: 'Scale the workers', justification: 'Traffic peak' });
    const page = await signedInPage(consent_url);
    await page.getByRole('button', { name: 'Approve', exact: true }).click();
    await page.getByRole('alertdialog').waitFor();
    await writeItemFields(stack, `req#${request_id}`, { action: 'Scale the workers to zero' });
    await page.getByText(CHANGED_TEXT).waitFor({ timeout: 15_000 });
    expect(await field(page, 'action')).toBe('Scale the workers to zero');
    expect(await page.getByRole('alertdialog').count()).toBe(0);
    expect((await stack.deps.service.get(parseRequestId(request_id))).decision).toBe('pending');
    await page.context().close();
  });
});
