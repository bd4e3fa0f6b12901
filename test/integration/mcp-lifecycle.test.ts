import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEvent, SYSTEM_ACTOR } from '../../lambdas/core/audit/event.ts';
import { isAckdError } from '../../lambdas/core/errors.ts';
import { parseRequestId } from '../../lambdas/core/ids.ts';
import { errorText, startTestStack, structured, type TestStack, rawItems, VALID_REQUEST } from '../helpers/local-stack.ts';

let stack: TestStack;
let mcp: Client;

const base = VALID_REQUEST;

async function request(overrides: Record<string, unknown> = {}) {
  return structured<{ request_id: string; consent_url: string }>(
    await mcp.callTool({ name: 'request_authorization', arguments: { ...base, ...overrides } }),
  );
}
async function check(request_id: string, extra: Record<string, unknown> = {}) {
  return structured<Record<string, unknown>>(await mcp.callTool({ name: 'check_authorization', arguments: { request_id, ...extra } }));
}

beforeAll(async () => {
  stack = await startTestStack();
  mcp = await stack.client();
});
afterAll(async () => {
  await stack?.stop();
});

describe('tools', () => {
  it('lists the four tools with input and output schemas and annotations', async () => {
    const { tools } = await mcp.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['check_authorization', 'record_tool_calls', 'request_authorization', 'revoke_authorization']);
    for (const t of tools) {
      expect(t.outputSchema?.type).toBe('object');
      expect(t.annotations).toBeDefined();
    }
    const req = tools.find((t) => t.name === 'request_authorization')!;
    expect(req.inputSchema.required).toEqual(expect.arrayContaining(['agent_id', 'action', 'permissions', 'justification', 'ttl_minutes']));
    expect(tools.find((t) => t.name === 'revoke_authorization')!.annotations?.destructiveHint).toBe(true);
  });
});

describe('lifecycle', () => {
  it('request → pending → approve → SVID (once) → revoke → revoked', async () => {
    const { request_id, consent_url } = await request();
    expect(request_id).toMatch(/^req_[0-9a-z]{26}$/);
    expect(consent_url).toBe(`${stack.consentUiUrl}?request_id=${request_id}`);
    const result = await mcp.callTool({ name: 'check_authorization', arguments: { request_id } });
    expect(result.structuredContent).toEqual({ status: 'pending', approvals: { have: 0, need: 1 }, payload_sha256: null });
    expect(JSON.parse((result.content as { text: string }[])[0]!.text)).toEqual({ status: 'pending', approvals: { have: 0, need: 1 }, payload_sha256: null });

    await stack.deps.service.decide(parseRequestId(request_id), 'approved', 'operator:alice');
    const approved = await check(request_id);
    expect(approved.status).toBe('approved');
    const svid = approved.svid as string;
    const spiffeId = `spiffe://${stack.trustDomain}/agent/demo-agent/${request_id}`;
    expect(approved.spiffe_id).toBe(spiffeId);

    // The PEM: chain leaf first, then a PKCS#8 key that belongs to the leaf.
    const certs = svid.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!.map((p) => new X509Certificate(p));
    expect(certs.length).toBeGreaterThanOrEqual(1);
    expect(svid).toMatch(/-----BEGIN PRIVATE KEY-----[\s\S]+-----END PRIVATE KEY-----\s*$/);
    const key = createPrivateKey(svid.slice(svid.indexOf('-----BEGIN PRIVATE KEY-----')));
    const leaf = certs[0]!;
    expect(leaf.checkPrivateKey(key)).toBe(true);
    expect(leaf.subjectAltName).toBe(`URI:${spiffeId}`);
    expect(leaf.ca).toBe(false);
    expect(approved.svid_id).toBe(leaf.serialNumber.toLowerCase().replace(/^0+/, ''));
    expect(new Date(leaf.validTo).getTime()).toBeLessThanOrEqual(Date.parse(approved.expires_at as string) + 1000);

    // Chain verifies against the trust bundle written by the local runner.
    const bundle = (await readFile(stack.trustBundlePath, 'utf8')).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!.map((p) => new X509Certificate(p));
    const chain = [...certs];
    for (let i = 0; i < chain.length - 1; i++) expect(chain[i]!.verify(chain[i + 1]!.publicKey)).toBe(true);
    const top = chain[chain.length - 1]!;
    expect(bundle.some((root) => top.checkIssued(root) && top.verify(root.publicKey))).toBe(true);

    // Picked up once: later checks say so, without the key.
    const again = await check(request_id);
    expect(again).toMatchObject({ status: 'approved', svid_id: approved.svid_id, spiffe_id: spiffeId, svid_delivered: true });
    expect(again.svid).toBeUndefined();

    // The private key was in exactly one response, and never in the store or the logs.
    const keyBody = svid.slice(svid.indexOf('-----BEGIN PRIVATE KEY-----')).split('\n')[1]!;
    expect(JSON.stringify(await rawItems(stack))).not.toContain(keyBody);
    expect(stack.logs.lines.join('\n')).not.toContain(keyBody);
    expect(createPublicKey(key).export({ format: 'der', type: 'spki' })).toEqual(leaf.publicKey.export({ format: 'der', type: 'spki' }));

    const revoked = structured<{ revoked: boolean; revoked_at: string }>(
      await mcp.callTool({ name: 'revoke_authorization', arguments: { request_id, svid_id: approved.svid_id } }),
    );
    expect(revoked.revoked).toBe(true);
    const revokedAgain = structured<{ revoked_at: string }>(await mcp.callTool({ name: 'revoke_authorization', arguments: { request_id, svid_id: approved.svid_id } }));
    expect(revokedAgain.revoked_at).toBe(revoked.revoked_at);
    expect(await check(request_id)).toEqual({ status: 'revoked', revoked_at: revoked.revoked_at, payload_sha256: null });

    // Every audit field is filled in.
    const record = await stack.deps.service.get(parseRequestId(request_id));
    expect(record).toMatchObject({
      request_id,
      agent_id: 'demo-agent',
      action: base.action,
      permissions: base.permissions,
      justification: base.justification,
      approver_identity: 'operator:alice',
      decision: 'approved',
      svid_id: approved.svid_id,
      revoked: true,
      revoked_at: revoked.revoked_at,
    });
    for (const f of ['requested_at', 'decision_at', 'svid_expires_at'] as const) expect(Date.parse(record[f]!)).not.toBeNaN();
  });

  it('deny → denied, no SVID', async () => {
    const { request_id } = await request();
    await stack.deps.service.decide(parseRequestId(request_id), 'denied', 'operator:bob');
    expect(await check(request_id)).toEqual({ status: 'denied', payload_sha256: null });
    const r = await stack.deps.service.get(parseRequestId(request_id));
    expect(r).toMatchObject({ decision: 'denied', approver_identity: 'operator:bob', svid_id: null, revoked: false });
    const text = errorText(await mcp.callTool({ name: 'revoke_authorization', arguments: { request_id, svid_id: 'abc' } }));
    expect(text).toMatch(/^ERR_NOT_ISSUED: svid_id/);
  });

  it('expires when the ttl passes with no decision; a late decision is refused', async () => {
    const { request_id } = await request({ ttl_minutes: 5 });
    stack.clock.advanceMinutes(4);
    expect(await check(request_id)).toEqual({ status: 'pending', approvals: { have: 0, need: 1 }, payload_sha256: null });
    stack.clock.advanceMinutes(1);
    expect(await check(request_id)).toEqual({ status: 'expired', payload_sha256: null });
    const r = await stack.deps.service.get(parseRequestId(request_id));
    expect(r.decision).toBe('expired');
    expect(r.decision_at).toBe(r.expires_at);
    // The expiry is recorded now; a late decision is still ERR_EXPIRED (not "already decided").
    await expect(stack.deps.service.decide(parseRequestId(request_id), 'approved', 'operator:late')).rejects.toMatchObject({ code: 'ERR_EXPIRED' });
  });

  it('a decision after the deadline is refused and the expiry recorded, even before any read', async () => {
    const { request_id } = await request({ ttl_minutes: 1 });
    stack.clock.advanceMinutes(2);
    await expect(stack.deps.service.decide(parseRequestId(request_id), 'approved', 'operator:late')).rejects.toMatchObject({ code: 'ERR_EXPIRED' });
    expect((await stack.deps.store.get(parseRequestId(request_id)))!.decision).toBe('expired');
  });

  it('the sweep records expiry of requests nobody reads', async () => {
    const a = await request({ ttl_minutes: 1 });
    const b = await request({ ttl_minutes: 1 });
    const c = await request({ ttl_minutes: 10 });
    stack.clock.advanceMinutes(2);
    const { expired } = await stack.deps.service.sweep();
    expect(expired).toBeGreaterThanOrEqual(2);
    expect((await stack.deps.store.get(parseRequestId(a.request_id)))!.decision).toBe('expired');
    expect((await stack.deps.store.get(parseRequestId(b.request_id)))!.decision).toBe('expired');
    expect((await stack.deps.store.get(parseRequestId(c.request_id)))!.decision).toBe('pending');
  });

  it('an approved SVID that is never picked up expires with its ttl', async () => {
    const { request_id } = await request({ ttl_minutes: 2 });
    await stack.deps.service.decide(parseRequestId(request_id), 'approved', 'operator:alice');
    stack.clock.advanceMinutes(3);
    expect(await check(request_id)).toEqual({ status: 'expired', payload_sha256: null });
    expect((await stack.deps.store.get(parseRequestId(request_id)))!.svid_id).toBeNull();
  });

  it('wait_seconds long-polls until the decision arrives', async () => {
    const { request_id } = await request();
    const pending = check(request_id, { wait_seconds: 10 });
    setTimeout(() => void stack.deps.service.decide(parseRequestId(request_id), 'denied', 'operator:bob'), 300);
    expect(await pending).toEqual({ status: 'denied', payload_sha256: null });
  });
});

describe('races', () => {
  it('50 concurrent approve/deny/expire attempts produce exactly one decision', async () => {
    const { request_id } = await request({ ttl_minutes: 1 });
    const id = parseRequestId(request_id);
    const record = (await stack.deps.store.get(id))!;
    const before = new Date(Date.parse(record.expires_at) - 1);
    const after = new Date(Date.parse(record.expires_at) + 1);
    const attempts = Array.from({ length: 50 }, (_, i) => {
      const kind = (['approved', 'denied', 'expired'] as const)[i % 3]!;
      return kind === 'expired'
        ? stack.deps.store.apply('expire', id, { now: after.toISOString() }, auditEvent('expired', SYSTEM_ACTOR, after)).then(() => kind)
        : stack.deps.store
            .apply(
              kind === 'approved' ? 'approve' : 'deny',
              id,
              {
                now: before.toISOString(),
                approver: `racer-${i}`,
                email: null,
                svidExpiresAt: kind === 'approved' ? after.toISOString() : null,
                vote: { voter: `racer-${i}`, email: null, vote: kind === 'approved' ? 'approve' : 'deny', at: before.toISOString(), groups: [] },
                seen: 0,
              },
              auditEvent(kind, { type: 'approver', id: `racer-${i}` }, before),
            )
            .then(() => kind);
    });
    const settled = await Promise.allSettled(attempts);
    const winners = settled.filter((s) => s.status === 'fulfilled');
    expect(winners).toHaveLength(1);
    for (const s of settled) {
      if (s.status === 'rejected') expect(isAckdError(s.reason, 'ERR_ALREADY_DECIDED')).toBe(true);
    }
    const final = (await stack.deps.store.get(id))!;
    expect(final.decision).toBe((winners[0] as PromiseFulfilledResult<string>).value);
  });

  it('concurrent first checks mint exactly one SVID', async () => {
    const { request_id } = await request();
    await stack.deps.service.decide(parseRequestId(request_id), 'approved', 'operator:alice');
    const results = await Promise.all(Array.from({ length: 8 }, () => mcp.callTool({ name: 'check_authorization', arguments: { request_id } })));
    const withSvid = results.filter((r) => !r.isError && typeof (r.structuredContent as { svid?: string }).svid === 'string');
    expect(withSvid).toHaveLength(1);
    for (const r of results) {
      if (r.isError) expect(errorText(r)).toMatch(/^ERR_ISSUANCE_IN_PROGRESS/);
    }
  });
});

describe('bad input changes nothing', () => {
  const cases: [string, string, Record<string, unknown>, RegExp][] = [
    ['request_authorization', 'ttl_minutes 0', { ...base, ttl_minutes: 0 }, /ttl_minutes/],
    ['request_authorization', 'ttl_minutes 61', { ...base, ttl_minutes: 61 }, /ttl_minutes/],
    ['request_authorization', 'ttl_minutes 1.5', { ...base, ttl_minutes: 1.5 }, /ttl_minutes/],
    ['request_authorization', 'ttl_minutes "30"', { ...base, ttl_minutes: '30' }, /ttl_minutes/],
    ['request_authorization', 'ttl_minutes missing', { ...base, ttl_minutes: undefined }, /ttl_minutes/],
    ['request_authorization', 'agent_id with /', { ...base, agent_id: 'demo/agent' }, /agent_id/],
    ['request_authorization', 'agent_id ..', { ...base, agent_id: '..' }, /agent_id/],
    ['request_authorization', 'agent_id .', { ...base, agent_id: '.' }, /agent_id/],
    ['request_authorization', 'agent_id unicode', { ...base, agent_id: 'agént' }, /agent_id/],
    ['request_authorization', 'agent_id empty', { ...base, agent_id: '' }, /agent_id/],
    ['request_authorization', 'agent_id too long', { ...base, agent_id: 'a'.repeat(65) }, /agent_id/],
    ['request_authorization', 'agent_id of another agent', { ...base, agent_id: 'other-agent' }, /agent_id/],
    ['request_authorization', 'action empty', { ...base, action: '' }, /action/],
    ['request_authorization', 'action too long', { ...base, action: 'x'.repeat(1001) }, /action/],
    ['request_authorization', 'action number', { ...base, action: 42 }, /action/],
    ['request_authorization', 'action with NUL', { ...base, action: 'rm\u0000-rf' }, /action/],
    ['request_authorization', 'permissions empty', { ...base, permissions: [] }, /permissions/],
    ['request_authorization', 'permissions 33', { ...base, permissions: Array.from({ length: 33 }, (_, i) => `p${i}`) }, /permissions/],
    ['request_authorization', 'permission empty', { ...base, permissions: ['ok', ''] }, /permissions/],
    ['request_authorization', 'permission too long', { ...base, permissions: ['p'.repeat(129)] }, /permissions/],
    ['request_authorization', 'permissions string', { ...base, permissions: 'infra:write' }, /permissions/],
    ['request_authorization', 'justification blank', { ...base, justification: '   ' }, /justification/],
    ['request_authorization', 'justification too long', { ...base, justification: 'j'.repeat(4001) }, /justification/],
    ['check_authorization', 'unknown request_id', { request_id: 'req_00000000000000000000000000' }, /request_id/],
    ['check_authorization', 'malformed request_id', { request_id: '../etc/passwd' }, /request_id/],
    ['check_authorization', 'wait_seconds 26', { request_id: 'req_00000000000000000000000000', wait_seconds: 26 }, /wait_seconds/],
    ['revoke_authorization', 'svid_id uppercase', { request_id: 'req_00000000000000000000000000', svid_id: 'ABC' }, /svid_id/],
    ['revoke_authorization', 'unknown request', { request_id: 'req_00000000000000000000000000', svid_id: 'abc' }, /request_id/],
  ];

  it.each(cases)('%s: %s → tool error naming the field', async (name, _label, args, field) => {
    await stack.settled();
    const before = JSON.stringify(await rawItems(stack));
    const text = errorText(await mcp.callTool({ name, arguments: args }));
    expect(text).toMatch(field);
    expect(JSON.stringify(await rawItems(stack))).toBe(before);
  });

  it('a wrong svid_id is refused and the SVID stays unrevoked', async () => {
    const { request_id } = await request();
    await stack.deps.service.decide(parseRequestId(request_id), 'approved', 'operator:alice');
    const { svid_id } = await check(request_id);
    const text = errorText(await mcp.callTool({ name: 'revoke_authorization', arguments: { request_id, svid_id: svid_id === 'abc' ? 'abd' : 'abc' } }));
    expect(text).toMatch(/^ERR_SVID_MISMATCH: svid_id/);
    expect((await stack.deps.store.get(parseRequestId(request_id)))!.revoked).toBe(false);
  });

  it("another agent's request looks like an unknown one", async () => {
    const { request_id } = await request();
    const { apiKey } = await import('../../lambdas/core/apikeys.ts').then((m) => m.createApiKey(stack.deps.apiKeys, 'other-agent' as never, stack.clock));
    const other = await stack.client(apiKey);
    expect(errorText(await other.callTool({ name: 'check_authorization', arguments: { request_id } }))).toMatch(/^ERR_NOT_FOUND: request_id/);
  });
});

describe('authentication', () => {
  const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
  const post = (headers: Record<string, string>) =>
    fetch(stack.mcpUrl, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers }, body: JSON.stringify(initialize) });

  it('no key → 401 with WWW-Authenticate', async () => {
    const res = await post({});
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="ackd"');
  });

  it('wrong key → 401 invalid_token; the SDK client cannot connect', async () => {
    const res = await post({ authorization: 'Bearer ackd_' + 'A'.repeat(43) });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
    await expect(stack.client('ackd_' + 'B'.repeat(43))).rejects.toThrow();
    await expect(stack.client(null)).rejects.toThrow();
  });

  it('a revoked key stops working once this instance no longer remembers it (5 s at most)', async () => {
    const { createApiKey } = await import('../../lambdas/core/apikeys.ts');
    const { apiKey, entry } = await createApiKey(stack.deps.apiKeys, 'demo-agent' as never, stack.clock);
    expect((await post({ authorization: `Bearer ${apiKey}` })).status).toBe(200);
    await stack.deps.apiKeys.revoke(entry.key_id, stack.clock.now());
    // Remembered for the cache's 5 s (never for an SVID: see test/integration/hotpath-calls.test.ts).
    expect((await post({ authorization: `Bearer ${apiKey}` })).status).toBe(200);
    stack.clock.advance(5_001);
    expect((await post({ authorization: `Bearer ${apiKey}` })).status).toBe(401);
  });

  it('GET and DELETE get 405', async () => {
    for (const method of ['GET', 'DELETE']) {
      const res = await fetch(stack.mcpUrl, { method, headers: { authorization: `Bearer ${stack.agentApiKey}` } });
      expect(res.status).toBe(405);
    }
  });

  it('the trust bundle and SVID status routes are served next to the consent UI', async () => {
    const res = await fetch(`${stack.appUrl}/.well-known/spiffe-bundle`);
    expect(res.status).toBe(200);
    const bundle = (await res.json()) as { keys: { use: string; x5c: string[] }[] };
    expect(bundle.keys.length).toBeGreaterThan(0);
    expect(bundle.keys.every((k) => k.use === 'x509-svid' && k.x5c.length === 1)).toBe(true);
    const status = await fetch(`${stack.appUrl}/v1/svid-status/req_00000000000000000000000000?svid_id=abc`);
    expect(status.status).toBe(404);
    expect(((await status.json()) as { error: { code: string } }).error.code).toBe('ERR_NOT_FOUND');
  });

  it('API keys are stored only as hashes', async () => {
    expect(JSON.stringify(await rawItems(stack))).not.toContain(stack.agentApiKey);
  });
});

describe('one expiry instant everywhere', () => {
  it("the first check, later checks and /v1/svid-status all say the certificate's notAfter", async () => {
    const { request_id } = await request();
    await stack.deps.service.decide(parseRequestId(request_id), 'approved', 'operator:test');
    const first = await check(request_id);
    const leaf = new X509Certificate((first.svid as string).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)![0]);
    const notAfter = new Date(leaf.validTo).toISOString();
    expect(first.expires_at).toBe(notAfter);
    expect((await check(request_id)).expires_at).toBe(notAfter);
    const status = (await (await fetch(`${stack.appUrl}/v1/svid-status/${request_id}?svid_id=${String(first.svid_id)}`)).json()) as Record<string, unknown>;
    expect(status.expires_at).toBe(notAfter);
    expect(Date.parse(String(status.svid_expires_at))).toBeGreaterThanOrEqual(Date.parse(notAfter)); // the approved bound, never earlier than the SVID's end
  });
});
