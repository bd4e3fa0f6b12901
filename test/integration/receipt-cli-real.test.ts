/**
 * Issue 13 end to end with ackd's own receipt: an agent's request with a payload, approved, picked
 * up over MCP with its SVID and receipt; then `ackd svid verify --receipt --payload` (the real bin,
 * in a child process) checks the SVID against the stack's trust bundle and the receipt against the
 * JWKS the stack serves, and fails on a payload one byte different.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRequestId } from '../../lambdas/core/ids.ts';
import { startTestStack, structured, VALID_REQUEST, type TestStack } from '../helpers/local-stack.ts';

const DEPLOY = { service: 'orders', environment: 'prod', commit: '9f2c1e7a', replicas: 3 };

function ackd(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [resolve('bin/ackd.js'), ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_NO_WARNINGS: '1' }, cwd: tmpdir() }, (err, stdout, stderr) =>
      done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe('ackd svid verify with the receipt ackd issued', { timeout: 180_000 }, () => {
  let stack: TestStack;
  let work: string;
  const f = (name: string) => join(work, name);

  beforeAll(async () => {
    stack = await startTestStack();
    work = await mkdtemp(join(tmpdir(), 'ackd-receipt-real-'));
    const mcp = await stack.client();
    const req = structured<{ request_id: string; payload_sha256: string }>(await mcp.callTool({ name: 'request_authorization', arguments: { ...VALID_REQUEST, payload: DEPLOY } }));
    await stack.deps.service.decide(parseRequestId(req.request_id), 'approved', 'operator:alice');
    const approved = structured<{ svid: string; receipt: string; payload_sha256: string }>(await mcp.callTool({ name: 'check_authorization', arguments: { request_id: req.request_id } }));
    expect(approved.receipt.split('.')).toHaveLength(3);
    expect(approved.payload_sha256).toBe(req.payload_sha256);
    await Promise.all([
      writeFile(f('svid.pem'), approved.svid, { mode: 0o600 }),
      writeFile(f('receipt.jws'), approved.receipt),
      writeFile(f('deploy.json'), JSON.stringify(DEPLOY, null, 2)),
      writeFile(f('changed.json'), JSON.stringify({ ...DEPLOY, replicas: 4 })),
    ]);
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const args = (payload: string) => ['svid', 'verify', f('svid.pem'), '--bundle', stack.trustBundlePath, '--receipt', f('receipt.jws'), '--receipt-keys', `${stack.appUrl}/.well-known/ackd-receipt-keys.json`, '--payload', f(payload), '--json'];

  it('verifies SVID, receipt (against the served JWKS) and payload; one changed byte of the payload fails', async () => {
    const [ok, changed] = await Promise.all([ackd(args('deploy.json')), ackd(args('changed.json'))]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ valid: true });
    expect(changed.code).not.toBe(0);
    expect(changed.stdout + changed.stderr).toMatch(/ERR_PAYLOAD_MISMATCH/);
  });
});
