/**
 * Real TLS, real SPIRE, real local stack: an agent gets its SVID over MCP and uses it as a TLS
 * client certificate against the protected resource example, which verifies it with ackd/verify
 * and asks ackd's status endpoint. Also: the SPIFFE bundle endpoint, the status endpoint and
 * `ackd svid verify` on the CLI.
 */
import 'reflect-metadata';
import { request } from 'node:https';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { startProtectedResource, type ProtectedResource } from '../../examples/protected-resource/server.ts';
import { LocalCaMinter } from '../../lambdas/adapters/local-ca/index.ts';
import { SpiffeId, newRequestId, parseAgentId, parseTrustDomain } from '../../lambdas/core/ids.ts';
import { runAckd } from '../helpers/cli.ts';
import { startTestStack, structured, type TestStack } from '../helpers/local-stack.ts';
import { SPIRE_BUILD_TIMEOUT_MS, spireIssuer, startTestSpire, type TestSpire } from '../helpers/spire.ts';

interface Svid {
  request_id: string;
  svid: string;
  svid_id: string;
  spiffe_id: string;
  expires_at: string;
  cert: string;
  key: string;
}

function split(svidPem: string): { cert: string; key: string } {
  const key = svidPem.slice(svidPem.indexOf('-----BEGIN PRIVATE KEY-----'));
  return { cert: svidPem.slice(0, svidPem.indexOf('-----BEGIN PRIVATE KEY-----')), key };
}

describe('mTLS protected resource with SPIRE-issued SVIDs', () => {
  let spire: TestSpire;
  let stack: TestStack;
  let mcp: Client;
  let resource: ProtectedResource;
  let bundle: string;
  let work: string;
  let resourceNow: Date | undefined;

  beforeAll(async () => {
    spire = await startTestSpire('ackd.test');
    stack = await startTestStack({
      trustDomain: 'ackd.test',
      consent: false,
      issuer: spireIssuer(spire),
    });
    mcp = await stack.client();
    bundle = await spire.minter.trustBundlePem();
    resource = await startProtectedResource({
      bundlePem: bundle,
      statusUrl: stack.appUrl,
      requiredPermissions: ['db:write'],
      now: () => resourceNow ?? new Date(),
    });
    work = await mkdtemp(join(tmpdir(), 'ackd-mtls-'));
  }, SPIRE_BUILD_TIMEOUT_MS);
  afterAll(async () => {
    await resource?.stop();
    await stack?.stop();
    await spire?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function svidFor(permissions: string[]): Promise<Svid> {
    const req = structured<{ request_id: string }>(
      await mcp.callTool({ name: 'request_authorization', arguments: { agent_id: stack.agentId, action: 'rotate the db password', permissions, justification: 'test', ttl_minutes: 10 } }),
    );
    await stack.deps.service.decide(req.request_id as never, 'approved', 'operator:test');
    const r = structured<Omit<Svid, 'cert' | 'key' | 'request_id'>>(await mcp.callTool({ name: 'check_authorization', arguments: { request_id: req.request_id } }));
    return { ...r, request_id: req.request_id, ...split(r.svid) };
  }

  function call(path: string, client?: { cert: string; key: string }): Promise<{ status: number; body: Record<string, unknown> }> {
    return new Promise((res, rej) => {
      const r = request(
        { host: '127.0.0.1', port: resource.port, path, method: 'GET', ca: resource.serverCertPem, ...(client ?? {}), agent: false },
        (m) => {
          let text = '';
          m.setEncoding('utf8');
          m.on('data', (d: string) => (text += d));
          m.on('end', () => res({ status: m.statusCode!, body: JSON.parse(text) as Record<string, unknown> }));
        },
      );
      r.on('error', rej);
      r.end();
    });
  }

  const code = (b: Record<string, unknown>) => (b['error'] as { code: string } | undefined)?.code;

  it('accepts the right SVID over mutual TLS and reports what it was approved for', async () => {
    const s = await svidFor(['db:write', 'db:read']);
    const r = await call(`/rotate?request_id=${s.request_id}`, s);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ ok: true, agent_id: stack.agentId, request_id: s.request_id, svid_id: s.svid_id, spiffe_id: s.spiffe_id, action: 'rotate the db password', permissions: ['db:write', 'db:read'] });
  });

  it('refuses a client without a certificate (401)', async () => {
    const r = await call('/rotate');
    expect(r.status).toBe(401);
    expect(code(r.body)).toBe('ERR_SVID_NO_CERTIFICATE');
  });

  it('refuses a certificate from another CA, even with the same trust domain and SPIFFE ID shape', async () => {
    const other = await LocalCaMinter.create({ trustDomain: parseTrustDomain('ackd.test') });
    const m = await other.mint(SpiffeId.forRequest(parseTrustDomain('ackd.test'), parseAgentId(stack.agentId), newRequestId(Date.now())), new Date(Date.now() + 60_000));
    const r = await call('/rotate', { cert: m.certChainPem, key: m.privateKeyPem });
    expect(r.status).toBe(403);
    expect(code(r.body)).toBe('ERR_SVID_UNTRUSTED');
  });

  it('refuses an SVID of another trust domain', async () => {
    const other = await LocalCaMinter.create({ trustDomain: parseTrustDomain('evil.test') });
    const m = await other.mint(SpiffeId.forRequest(parseTrustDomain('evil.test'), parseAgentId(stack.agentId), newRequestId(Date.now())), new Date(Date.now() + 60_000));
    const r = await call('/rotate', { cert: m.certChainPem, key: m.privateKeyPem });
    expect(r.status).toBe(403);
    expect(code(r.body)).toBe('ERR_SVID_TRUST_DOMAIN');
  });

  it('refuses an expired SVID (the resource judges time it is given)', async () => {
    const s = await svidFor(['db:write']);
    resourceNow = new Date(Date.parse(new X509Certificate(s.cert).validTo) + 1000);
    try {
      const r = await call('/rotate', s);
      expect(r.status).toBe(403);
      expect(code(r.body)).toBe('ERR_SVID_EXPIRED');
    } finally {
      resourceNow = undefined;
    }
    expect((await call('/rotate', s)).status).toBe(200);
  });

  it('refuses an SVID for a different request than the resource demands', async () => {
    const a = await svidFor(['db:write']);
    const b = await svidFor(['db:write']);
    const r = await call(`/rotate?request_id=${b.request_id}`, a);
    expect(r.status).toBe(403);
    expect(code(r.body)).toBe('ERR_SVID_WRONG_REQUEST');
    expect((await call(`/rotate?request_id=${b.request_id}`, b)).status).toBe(200);
  });

  it('refuses an SVID not approved for a permission the resource requires', async () => {
    const s = await svidFor(['db:read']);
    const r = await call('/rotate', s);
    expect(r.status).toBe(403);
    expect(code(r.body)).toBe('ERR_SVID_PERMISSION_MISSING');
  });

  it('refuses a revoked SVID (online status check)', async () => {
    const s = await svidFor(['db:write']);
    expect((await call('/rotate', s)).status).toBe(200);
    structured(await mcp.callTool({ name: 'revoke_authorization', arguments: { request_id: s.request_id, svid_id: s.svid_id } }));
    const r = await call('/rotate', s);
    expect(r.status).toBe(403);
    expect(code(r.body)).toBe('ERR_SVID_REVOKED');
  });

  it('serves the trust bundle in SPIFFE bundle format at /.well-known/spiffe-bundle', async () => {
    const res = await fetch(`${stack.appUrl}/.well-known/spiffe-bundle`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const b = (await res.json()) as { keys: { kty: string; use: string; x5c: string[]; crv?: string }[]; spiffe_sequence: number; spiffe_refresh_hint: number };
    expect(b.keys.length).toBeGreaterThan(0);
    const pems = bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!;
    expect(b.keys.map((k) => k.x5c[0])).toEqual(pems.map((p) => new X509Certificate(p).raw.toString('base64')));
    for (const k of b.keys) {
      expect(k.use).toBe('x509-svid');
      expect(k.kty).toBe('EC');
      expect(k.x5c).toHaveLength(1);
    }
    expect(b.spiffe_sequence).toBeGreaterThan(0);
    expect(b.spiffe_refresh_hint).toBeGreaterThan(0);
  });

  it('the status endpoint answers only for the matching svid_id, and validates input', async () => {
    const s = await svidFor(['db:write']);
    const ok = await fetch(`${stack.appUrl}/v1/svid-status/${s.request_id}?svid_id=${s.svid_id}`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ request_id: s.request_id, svid_id: s.svid_id, spiffe_id: s.spiffe_id, status: 'approved', revoked: false, revoked_at: null, permissions: ['db:write'] });
    const wrong = await fetch(`${stack.appUrl}/v1/svid-status/${s.request_id}?svid_id=${s.svid_id === 'abc' ? 'abd' : 'abc'}`);
    expect(wrong.status).toBe(404);
    const bad = await fetch(`${stack.appUrl}/v1/svid-status/not-a-request?svid_id=abc`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { field: string } }).error.field).toBe('request_id');
  });

  it('`ackd svid verify` checks an SVID file offline and online, and exits 1 with the reason when revoked', async () => {
    const s = await svidFor(['db:write']);
    const svidPath = join(work, 'svid.pem');
    const bundlePath = join(work, 'bundle.pem');
    await writeFile(svidPath, s.svid, { mode: 0o600 });
    await writeFile(bundlePath, bundle);
    const cli = (args: string[]) => runAckd({ ...process.env, ACKD_HOME: work }, 'svid', 'verify', ...args);
    const offline = await cli([svidPath, '--bundle', bundlePath, '--json']);
    expect(offline.code).toBe(0);
    expect(JSON.parse(offline.stdout)).toMatchObject({ valid: true, online: false, request_id: s.request_id, svid_id: s.svid_id, agent_id: stack.agentId });

    const online = await cli([svidPath, '--bundle', bundlePath, '--status-url', stack.appUrl, '--permission', 'db:write', '--json']);
    expect(online.code).toBe(0);
    expect(JSON.parse(online.stdout)).toMatchObject({ valid: true, online: true, status: 'approved' });

    structured(await mcp.callTool({ name: 'revoke_authorization', arguments: { request_id: s.request_id, svid_id: s.svid_id } }));
    const revoked = await cli([svidPath, '--bundle', bundlePath, '--status-url', stack.appUrl]);
    expect(revoked.code).toBe(1);
    expect(revoked.stderr).toContain('ERR_SVID_REVOKED');

    const wrongRequest = await cli([svidPath, '--bundle', bundlePath, '--request-id', 'req_00000000000000000000000000', '--json']);
    expect(wrongRequest.code).toBe(1);
    expect(JSON.parse(wrongRequest.stdout)).toMatchObject({ valid: false, code: 'ERR_SVID_WRONG_REQUEST' });
  }, 60_000);
});
