/**
 * The gateway's approval in real Chromium (issue 14): an agent (the real MCP SDK client) calls
 * fs__write_file through `ackd gateway` in front of the unmodified `mcp-server-filesystem`; the call
 * waits; the approver gets the consent email, signs in, sees the exact call (server, tool, every
 * argument) and approves; the waiting call runs once, and the file holds exactly the approved content.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../lambdas/core/apikeys.ts';
import { parseGatewayConfig } from '../../lambdas/core/gateway/config.ts';
import { parseAgentId } from '../../lambdas/core/ids.ts';
import { groupedHex, payloadSha256 } from '../../lambdas/core/payload.ts';
import { startGateway, type GatewayHandle } from '../../lambdas/gateway/start.ts';
import { startTestStack, type TestStack } from '../helpers/local-stack.ts';

const CHROMIUM = process.env.ACKD_CHROMIUM ?? '/usr/bin/chromium';
const OUT = join(process.cwd(), 'test-output', 'e2e');

let stack: TestStack;
let browser: Browser;
let gw: GatewayHandle;
let dir: string;
let agent: Client;

interface Mail {
  subject: string;
  body: { html?: string; text?: string };
}

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  stack = await startTestStack();
  dir = await mkdtemp(join(tmpdir(), 'ackd-gw-e2e-'));
  const config = parseGatewayConfig(
    { ackd: { url: stack.mcpUrl, apiKeyEnv: 'GW_KEY' }, mcpServers: { fs: { command: resolve('node_modules/.bin/mcp-server-filesystem'), args: [dir] } }, waitSeconds: 90 },
    { GW_KEY: stack.agentApiKey },
  );
  gw = await startGateway(config, { mode: 'http', port: 0, downstreamStderr: 'ignore', warn: () => undefined });
  const { apiKey } = await createApiKey(stack.deps.apiKeys, parseAgentId('coding-agent'), stack.clock);
  agent = new Client({ name: 'agent', version: '1.0.0' });
  await agent.connect(new StreamableHTTPClientTransport(new URL(gw.url!), { requestInit: { headers: { authorization: `Bearer ${apiKey}` } } }));
}, 120_000);

afterAll(async () => {
  await agent?.close().catch(() => undefined);
  await gw?.close();
  await browser?.close();
  await stack?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function mailAbout(needle: string, timeoutMs = 30_000): Promise<Mail> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    await stack.settled();
    const { emails } = (await (await fetch(`${stack.mailUrl}/store`)).json()) as { emails: Mail[] };
    const found = emails.filter((m) => m.body.text?.includes(needle));
    if (found.length > 0) {
      expect(found).toHaveLength(1);
      return found[0]!;
    }
    if (Date.now() > until) throw new Error(`no consent email about ${needle}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('ackd gateway, approved in the browser', () => {
  it('write_file waits, is approved in Chromium, runs once, and the file holds exactly the approved content', { timeout: 150_000 }, async () => {
    const path = join(dir, 'release-notes.md');
    const args = { path, content: '# 1.3\n- refunds carry a reason\n' };
    const sha = payloadSha256({ server: 'fs', tool: 'write_file', arguments: args });
    const waiting = agent.callTool({ name: 'fs__write_file', arguments: args }, undefined, { timeout: 120_000 }) as Promise<CallToolResult>;

    const mail = await mailAbout(groupedHex(sha));
    expect(existsSync(path)).toBe(false);
    const link = /<a href="([^"]+)"/.exec(mail.body.html ?? '')![1]!.replace(/&amp;/g, '&');

    const context = await browser.newContext({ viewport: { width: 1024, height: 900 } });
    const page = await context.newPage();
    await page.goto(link);
    await page.waitForURL((u) => u.pathname === '/oauth2/authorize');
    await page.getByLabel('Username').fill(stack.approverUsername!);
    await page.getByLabel('Password').fill(stack.approverPassword!);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'An agent is asking for your approval' }).waitFor();
    expect(await page.locator('[data-field="action"]').textContent()).toContain('call fs__write_file');
    const rows = await page.locator('[data-field="payload"] tbody tr').evaluateAll((trs) => trs.map((tr) => [tr.querySelector('th')!.textContent!, tr.querySelector('.value')!.textContent!]));
    expect(rows).toEqual(
      expect.arrayContaining([
        ['server', '"fs"'],
        ['tool', '"write_file"'],
        ['arguments.path', JSON.stringify(path)],
      ]),
    );
    expect(rows.find(([k]) => k === 'arguments.content')?.[1]).toContain('# 1.3');
    await page.screenshot({ path: join(OUT, 'gateway-approval.png'), fullPage: true });
    await page.getByRole('button', { name: 'Approve', exact: true }).click();
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByRole('heading', { name: 'Approved', exact: true }).waitFor();
    await context.close();

    const r = await waiting;
    expect(r.isError, JSON.stringify(r.content)).toBeFalsy();
    expect(await readFile(path, 'utf8')).toBe(args.content);

    await gw.queue.flush();
    await stack.settled();
    const types: string[] = [];
    for await (const line of stack.deps.audit.export()) {
      const e = line as { kind: string; type?: string; call?: { payload_sha256?: string } };
      if (e.kind === 'event' && e.call?.payload_sha256 === sha) types.push(e.type!);
    }
    expect(types.filter((t) => t === 'call_started')).toHaveLength(1);
    expect(types.filter((t) => t === 'call_finished')).toHaveLength(1);
  });
});
