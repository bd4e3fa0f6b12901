/**
 * The agent examples of docs/agents.md, run as an agent builder would run them: each is a child
 * process against the local stack and the protected-resource example. The test plays the human
 * (an operator approval once the request exists); the example must wait for it, save its SVID
 * owner-only, be authorized by the resource over mutual TLS, revoke, and then be refused.
 *
 * The Python example needs the `mcp` package: installed with `pip install --user mcp` when
 * missing. If it cannot be had, the Python test fails (it is never skipped).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startProtectedResource, type ProtectedResource } from '../../examples/protected-resource/server.ts';
import { parseRequestId } from '../../lambdas/core/ids.ts';
import { startTestStack, type TestStack } from '../helpers/local-stack.ts';

let stack: TestStack;
let resource: ProtectedResource;
let work: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  stack = await startTestStack({ consent: false });
  resource = await startProtectedResource({ bundlePem: () => readFile(stack.trustBundlePath, 'utf8'), statusUrl: stack.appUrl, requiredPermissions: ['db:write'] });
  work = await mkdtemp(join(tmpdir(), 'ackd-agents-'));
  await writeFile(join(work, 'resource.crt'), resource.serverCertPem);
}, 120_000);

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
});

afterAll(async () => {
  await resource?.stop();
  await stack?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Only what the example needs: no ACKD_* of this process, no cloud credentials. */
function agentEnv(svidDir: string): NodeJS.ProcessEnv {
  const keep = ['PATH', 'HOME', 'LANG', 'PYENV_ROOT', 'PYENV_VERSION', 'SYSTEMROOT'];
  return {
    ...Object.fromEntries(keep.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]])),
    NODE_NO_WARNINGS: '1',
    PYTHONUNBUFFERED: '1',
    ACKD_HOME: join(work, 'no-local-json'),
    ACKD_MCP_URL: stack.mcpUrl,
    ACKD_API_KEY: stack.agentApiKey,
    ACKD_AGENT_ID: stack.agentId,
    ACKD_RESOURCE_URL: `${resource.url}/rotate`,
    ACKD_RESOURCE_CA: join(work, 'resource.crt'),
    ACKD_SVID_DIR: svidDir,
  };
}

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Starts an example; approves its request as an operator as soon as it prints `requested <id>`;
 * resolves when it exits.
 */
function runAndApprove(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run & { requestId: string | undefined }> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, { env, cwd: resolve('.'), stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stdout = '';
    let stderr = '';
    let requestId: string | undefined;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      const m = /^requested (req_[0-9a-z]{26})$/m.exec(stdout);
      if (m && !requestId) {
        requestId = m[1]!;
        // Let the agent reach its long-poll first, then decide as a human would.
        setTimeout(() => {
          stack.deps.service.decide(parseRequestId(requestId), 'approved', 'operator:test').catch(fail);
        }, 500);
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr, requestId }));
  });
}

/** The line `<prefix> <status>: <json>` the examples print. */
function answer(stdout: string, prefix: string): { status: number; body: Record<string, unknown> } {
  const m = new RegExp(`^${prefix} (\\d{3}): (.*)$`, 'm').exec(stdout);
  expect(m, `"${prefix}" in:\n${stdout}`).not.toBeNull();
  return { status: Number(m![1]), body: JSON.parse(m![2]!) as Record<string, unknown> };
}

async function expectTheWholeCycle(run: Run & { requestId: string | undefined }, svidDir: string): Promise<void> {
  const context = `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
  expect(run.code, context).toBe(0);
  expect(run.requestId).toBeDefined();
  const id = run.requestId!;

  const ok = answer(run.stdout, 'resource answered');
  expect(ok.status).toBe(200);
  expect(ok.body).toMatchObject({ ok: true, message: `authorized: agent ${stack.agentId} may rotate the db password`, request_id: id, agent_id: stack.agentId, permissions: ['db:write'] });
  expect(run.stdout).toMatch(/^revoked at \d{4}-\d\d-\d\dT/m);
  const after = answer(run.stdout, 'after revocation the resource answered');
  expect(after.status).toBe(403);
  expect((after.body.error as { code: string }).code).toBe('ERR_SVID_REVOKED');

  // ackd recorded the same story.
  const rec = await stack.deps.service.get(parseRequestId(id));
  expect(rec).toMatchObject({ decision: 'approved', approver_identity: 'operator:test', revoked: true });
  expect(rec.svid_id).toBe(ok.body.svid_id);

  // The SVID on disk: the chain in svid.pem, the key in svid.key, both owner-only.
  const pem = await readFile(join(svidDir, 'svid.pem'), 'utf8');
  const key = await readFile(join(svidDir, 'svid.key'), 'utf8');
  expect(pem).toMatch(/^-----BEGIN CERTIFICATE-----/);
  expect(pem).not.toContain('PRIVATE KEY');
  expect(key).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  for (const f of ['svid.pem', 'svid.key']) expect((await stat(join(svidDir, f))).mode & 0o777).toBe(0o600);

  // The agent's secrets are not printed.
  expect(run.stdout + run.stderr).not.toContain(stack.agentApiKey);
  expect(run.stdout + run.stderr).not.toContain('PRIVATE KEY');
}

describe('agent examples (docs/agents.md)', () => {
  it('TypeScript: request → wait → SVID saved 0600 → mTLS call authorized → revoked → refused', async () => {
    const dir = join(work, 'ts');
    await mkdir(dir);
    const run = await runAndApprove(process.execPath, ['--import', 'tsx', 'examples/agents/ts/agent.ts'], agentEnv(dir));
    await expectTheWholeCycle(run, dir);
  }, 120_000);

  describe('Python', () => {
    const canImport = () =>
      new Promise<boolean>((done) => execFile('python3', ['-c', 'import mcp.client.streamable_http, mcp.shared._httpx_utils'], { env: agentEnv(work) }, (err) => done(!err)));
    const pip = (...extra: string[]) =>
      new Promise<{ ok: boolean; output: string }>((done) =>
        execFile('python3', ['-m', 'pip', 'install', '--user', ...extra, 'mcp'], { env: agentEnv(work), timeout: 300_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => done({ ok: !err, output: `${stdout}${stderr}` })),
      );

    beforeAll(async () => {
      if (await canImport()) return;
      let r = await pip();
      // A system Python that refuses user installs (PEP 668): they stay in ~/.local, so allow them.
      if (!r.ok && /externally-managed-environment/.test(r.output)) r = await pip('--break-system-packages');
      if (!(await canImport())) throw new Error(`python3 cannot import mcp, and \`python3 -m pip install --user mcp\` did not fix it:\n${r.output.slice(-2000)}`);
    }, 320_000);

    it('Python: request → wait → SVID saved 0600 → mTLS call authorized → revoked → refused', async () => {
      const dir = join(work, 'py');
      await mkdir(dir);
      const run = await runAndApprove('python3', ['examples/agents/py/agent.py'], agentEnv(dir));
      await expectTheWholeCycle(run, dir);
    }, 120_000);
  });
});
