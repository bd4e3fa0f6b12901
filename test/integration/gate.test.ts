/**
 * `ackd gate` (issue 13): the real bin in a child process, against the real local stack over MCP
 * (streamable HTTP), decisions made through the service as an approver would. The gated command is
 * a small Node script that records what it was given (environment, the SVID file's mode) to a file.
 */
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { parseRequestId } from '../../lambdas/core/ids.ts';
import { payloadSha256 } from '../../lambdas/core/payload.ts';
import { receiptKeysUrl, verifyReceipt } from '../../lambdas/verify/index.ts';
import { startTestStack, structured, type TestStack } from '../helpers/local-stack.ts';

const DEPLOY = { service: 'orders', environment: 'prod', commit: '9f2c1e7a', replicas: 3, migrations: ['0042_add_index'] };

/** The gated command: records its environment and the SVID file's mode, then exits with argv[3]. */
const RECORDER = `
import { appendFileSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
const e = process.env;
const svid = e.ACKD_SVID_FILE;
appendFileSync(process.argv[2], JSON.stringify({
  env: { ACKD_REQUEST_ID: e.ACKD_REQUEST_ID, ACKD_SVID_FILE: svid, ACKD_RECEIPT_FILE: e.ACKD_RECEIPT_FILE ?? null, ACKD_PAYLOAD_SHA256: e.ACKD_PAYLOAD_SHA256, ACKD_SVID_ID: e.ACKD_SVID_ID, ACKD_SPIFFE_ID: e.ACKD_SPIFFE_ID, ACKD_API_KEY: e.ACKD_API_KEY ?? null },
  mode: statSync(svid).mode & 0o777,
  dirMode: statSync(dirname(svid)).mode & 0o777,
  svid: readFileSync(svid, 'utf8'),
  receipt: e.ACKD_RECEIPT_FILE ? readFileSync(e.ACKD_RECEIPT_FILE, 'utf8').trim() : null,
}) + '\\n');
if (process.argv[4] === 'hang') setInterval(() => {}, 1000); else process.exit(Number(process.argv[3] ?? 0));
`;

interface Run {
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  /** The request id, once gate printed it. */
  readonly requestId: Promise<string>;
  kill(sig: NodeJS.Signals): void;
  stderr(): string;
}

// Each case spawns the real bin (tsx compiles the CLI on start: seconds on a busy machine).
describe('ackd gate', { timeout: 180_000 }, () => {
  let stack: TestStack;
  let mcp: Client;
  let work: string;
  let payloadFile: string;
  let recorder: string;

  beforeAll(async () => {
    stack = await startTestStack({ consent: false });
    mcp = await stack.client();
    work = await mkdtemp(join(tmpdir(), 'ackd-gate-test-'));
    payloadFile = join(work, 'deploy.json');
    await writeFile(payloadFile, JSON.stringify(DEPLOY, null, 2));
    recorder = join(work, 'record.mjs');
    await writeFile(recorder, RECORDER);
  });
  afterAll(async () => {
    await stack?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  function gate(args: string[], env: Record<string, string> = {}): Run {
    const child = spawn(process.execPath, [resolve('bin/ackd.js'), 'gate', ...args], {
      cwd: work, // no .ackd/local.json here: everything comes from the environment
      env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_NO_WARNINGS: '1', ACKD_MCP_URL: stack.mcpUrl, ACKD_API_KEY: stack.agentApiKey, ACKD_AGENT_ID: stack.agentId, ...env },
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    let stderr = '';
    let found: (id: string) => void;
    const requestId = new Promise<string>((r) => (found = r));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      stderr += d;
      const m = /ackd gate: request (req_[0-9a-z]+)/.exec(stderr);
      if (m) found(m[1]!);
    });
    const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((r) => child.once('exit', (code, signal) => r({ code, signal, stderr })));
    return { done, requestId, kill: (sig) => child.kill(sig), stderr: () => stderr };
  }

  const gateArgs = (out: string, over: { ttl?: string; wait?: string; exit?: string; extra?: string[] } = {}) => [
    '--action', 'deploy orders to prod',
    '--payload', payloadFile,
    '--permission', 'deploy:prod',
    '--permission', 'db:migrate',
    '--ttl', over.ttl ?? '10',
    '--wait', over.wait ?? '60',
    ...(over.extra ?? []),
    '--', process.execPath, recorder, out, over.exit ?? '0', ...(over.exit === 'hang' ? ['hang'] : []),
  ];

  async function records(out: string): Promise<Record<string, unknown>[]> {
    if (!existsSync(out)) return [];
    return (await readFile(out, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  async function statusOf(requestId: string): Promise<string> {
    return structured<{ status: string }>(await mcp.callTool({ name: 'check_authorization', arguments: { request_id: requestId } })).status;
  }

  it('on approval runs the command once with the SVID, receipt and payload digest; then removes the SVID and revokes it', async () => {
    const out = join(work, 'approved.jsonl');
    const run = gate(gateArgs(out, { exit: '7' }));
    const id = await run.requestId;
    expect(run.stderr()).toContain(`sha256 ${payloadSha256(DEPLOY).slice(0, 4)} ${payloadSha256(DEPLOY).slice(4, 8)}`);
    expect(run.stderr()).toContain(`approve or deny at: ${stack.consentUiUrl}?request_id=${id}`);
    expect(await records(out)).toEqual([]); // nothing runs before the decision
    await stack.deps.service.decide(parseRequestId(id), 'approved', 'operator:test');
    const { code, stderr } = await run.done;
    expect(code, stderr).toBe(7); // the command's status

    const ran = await records(out);
    expect(ran).toHaveLength(1);
    const r = ran[0] as { env: Record<string, string | null>; mode: number; dirMode: number; svid: string; receipt: string | null };
    expect(r.env.ACKD_REQUEST_ID).toBe(id);
    expect(r.env.ACKD_PAYLOAD_SHA256).toBe(payloadSha256(DEPLOY));
    expect(r.env.ACKD_SPIFFE_ID).toBe(`spiffe://${stack.trustDomain}/agent/${stack.agentId}/${id}`);
    expect(r.env.ACKD_API_KEY).toBeNull(); // the command acts with its SVID, not as the agent
    expect(r.mode).toBe(0o600);
    expect(r.dirMode).toBe(0o700);
    expect(r.svid).toContain('-----BEGIN CERTIFICATE-----');
    expect(r.svid).toContain('-----BEGIN PRIVATE KEY-----');
    expect(existsSync(r.env.ACKD_SVID_FILE!)).toBe(false);
    expect(await statusOf(id)).toBe('revoked');

    // ackd's receipt, when this ackd issues receipts (check_authorization advertises `receipt`)
    const tools = await mcp.listTools();
    const issuesReceipts = JSON.stringify(tools.tools.find((t) => t.name === 'check_authorization')?.outputSchema ?? {}).includes('"receipt"');
    if (issuesReceipts) {
      expect(r.receipt).toBeTruthy();
      const claims = await verifyReceipt(r.receipt!, { keys: receiptKeysUrl(stack.mcpUrl), svid: { svid_id: r.env.ACKD_SVID_ID!, spiffe_id: r.env.ACKD_SPIFFE_ID! }, payload: DEPLOY });
      expect(claims.payload_sha256).toBe(payloadSha256(DEPLOY));
      expect(r.env.ACKD_RECEIPT_FILE).toBeTruthy();
    } else {
      expect(r.env.ACKD_RECEIPT_FILE).toBeNull();
    }
  });

  it('denied: exit 3, the command never runs', async () => {
    const out = join(work, 'denied.jsonl');
    const run = gate(gateArgs(out));
    await stack.deps.service.decide(parseRequestId(await run.requestId), 'denied', 'operator:test');
    const { code, stderr } = await run.done;
    expect(code, stderr).toBe(3);
    expect(stderr).toContain('denied');
    expect(await records(out)).toEqual([]);
  });

  it('expired: exit 4, the command never runs', async () => {
    const out = join(work, 'expired.jsonl');
    const run = gate(gateArgs(out, { ttl: '1' }));
    await run.requestId;
    stack.clock.advanceMinutes(2);
    await stack.deps.service.sweep(); // records the expiry, which ends the long-poll at once
    const { code, stderr } = await run.done;
    expect(code, stderr).toBe(4);
    expect(await records(out)).toEqual([]);
  });

  it('no decision within --wait: exit 5, the command never runs', async () => {
    const out = join(work, 'timeout.jsonl');
    const started = Date.now();
    const { code, stderr } = await gate(gateArgs(out, { wait: '2' })).done;
    expect(code, stderr).toBe(5);
    expect(stderr).toContain('no decision within --wait');
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
    expect(await records(out)).toEqual([]);
  });

  it('ackd unreachable: exit 6, the command never runs', async () => {
    const port = await new Promise<number>((r) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => r(p));
      });
    });
    const out = join(work, 'unreachable.jsonl');
    const { code, stderr } = await gate(gateArgs(out), { ACKD_MCP_URL: `http://127.0.0.1:${port}/mcp` }).done;
    expect(code, stderr).toBe(6);
    expect(stderr).toContain('cannot reach ackd');
    expect(await records(out)).toEqual([]);
  });

  it('a refused key or refused input: exit 6', async () => {
    const out = join(work, 'refused.jsonl');
    const [badKey, wrongAgent] = await Promise.all([gate(gateArgs(out), { ACKD_API_KEY: 'ackd_not-a-key' }).done, gate(gateArgs(out), { ACKD_AGENT_ID: 'someone-else' }).done]);
    expect(badKey.code, badKey.stderr).toBe(6);
    expect(wrongAgent.code, wrongAgent.stderr).toBe(6);
    expect(wrongAgent.stderr).toContain('ERR_FORBIDDEN');
    expect(await records(out)).toEqual([]);
  });

  it('usage mistakes: exit 2, nothing asked', async () => {
    const out = join(work, 'usage.jsonl');
    const notJson = join(work, 'not.json');
    await writeFile(notJson, '{"commit": ');
    const cases: [string[], Record<string, string>][] = [
      [['--payload', payloadFile, '--permission', 'deploy:prod', '--', 'true'], {}], // no --action
      [['--action', 'x', '--payload', notJson, '--permission', 'deploy:prod', '--', 'true'], {}],
      [['--action', 'x', '--payload', payloadFile, '--permission', 'deploy:prod', '--ttl', '61', '--', 'true'], {}],
      [['--action', 'x', '--payload', payloadFile, '--permission', 'deploy:prod'], {}], // no command
      [gateArgs(out), { ACKD_API_KEY: '' }], // no key
    ];
    const results = await Promise.all(cases.map(([args, env]) => gate(args, env).done));
    results.forEach(({ code, stderr }, i) => expect(code, `${cases[i]![0].join(' ')}: ${stderr}`).toBe(2));
    expect(await records(out)).toEqual([]);
  });

  it('SIGTERM while the command runs is forwarded; gate exits 128+15, removes the SVID and revokes it', async () => {
    const out = join(work, 'signal.jsonl');
    const run = gate(gateArgs(out, { exit: 'hang' }));
    const id = await run.requestId;
    await stack.deps.service.decide(parseRequestId(id), 'approved', 'operator:test');
    // wait until the command has started (it records first)
    for (let i = 0; i < 200 && (await records(out)).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    const [r] = (await records(out)) as { env: Record<string, string> }[];
    expect(existsSync(r!.env.ACKD_SVID_FILE!)).toBe(true);
    expect(statSync(r!.env.ACKD_SVID_FILE!).mode & 0o777).toBe(0o600);
    run.kill('SIGTERM');
    const { code, stderr } = await run.done;
    expect(code, stderr).toBe(143);
    expect(existsSync(r!.env.ACKD_SVID_FILE!)).toBe(false);
    expect(await statusOf(id)).toBe('revoked');
  });
});
