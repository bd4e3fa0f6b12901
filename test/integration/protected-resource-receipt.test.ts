/**
 * The protected resource example with an operation's parameters (issue 13): real local stack, real
 * MCP client, real TLS. The SVID is ackd's; the receipt comes from `receipts()` below — a key made
 * at test time in the agreed format until ackd's own receipts are on main; then point `receipts()`
 * at check_authorization's `receipt` and ackd's JWKS (the cases stay the same).
 */
import 'reflect-metadata';
import { request } from 'node:https';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { RECEIPT_HEADER, startProtectedResource, type ProtectedResource } from '../../examples/protected-resource/server.ts';
import { parseRequestId, svidIdFromSerial } from '../../lambdas/core/ids.ts';
import { payloadSha256 } from '../../lambdas/core/payload.ts';
import { startTestStack, structured, type TestStack } from '../helpers/local-stack.ts';
import { testReceiptSigner, type ReceiptSigner } from '../helpers/receipts.ts';

interface Issued {
  request_id: string;
  svid_id: string;
  spiffe_id: string;
  cert: string;
  key: string;
  not_after: Date;
}

const DEPLOY = { service: 'orders', environment: 'prod', commit: '9f2c1e7a', image: 'registry.example/orders@sha256:' + 'ab'.repeat(32), replicas: 3 };

describe('protected resource: parameters must be the approved payload', () => {
  let stack: TestStack;
  let mcp: Client;
  let signer: ReceiptSigner;
  let resource: ProtectedResource;

  /** The receipt source (see the file comment). */
  async function receipt(s: Issued, payload: unknown): Promise<string> {
    return signer.sign({ ...s, permissions: ['deploy:prod'], payload });
  }

  beforeAll(async () => {
    stack = await startTestStack({ consent: false });
    mcp = await stack.client();
    signer = await testReceiptSigner();
    resource = await startProtectedResource({ bundlePem: await stack.deps.minter.trustBundlePem(), statusUrl: stack.appUrl, receiptKeys: signer.jwks });
  });
  afterAll(async () => {
    await resource?.stop();
    await stack?.stop();
  });

  async function issued(): Promise<Issued> {
    const { request_id } = structured<{ request_id: string; payload_sha256: string }>(
      await mcp.callTool({ name: 'request_authorization', arguments: { agent_id: stack.agentId, action: 'deploy orders to prod', permissions: ['deploy:prod'], justification: 'release', ttl_minutes: 15, payload: DEPLOY } }),
    );
    await stack.deps.service.decide(parseRequestId(request_id), 'approved', 'operator:test');
    const r = structured<{ svid: string; svid_id: string; spiffe_id: string; payload_sha256: string }>(await mcp.callTool({ name: 'check_authorization', arguments: { request_id } }));
    expect(r.payload_sha256).toBe(payloadSha256(DEPLOY)); // what ackd's receipt will carry
    const at = r.svid.indexOf('-----BEGIN PRIVATE KEY-----');
    const cert = r.svid.slice(0, at);
    const leaf = new X509Certificate(cert);
    expect(svidIdFromSerial(leaf.serialNumber)).toBe(r.svid_id);
    return { request_id, svid_id: r.svid_id, spiffe_id: r.spiffe_id, cert, key: r.svid.slice(at), not_after: new Date(leaf.validTo) };
  }

  function call(
    path: string,
    client: { cert: string; key: string } | undefined,
    opts: { method?: string; body?: string; receipt?: string } = {},
    to: ProtectedResource = resource,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    return new Promise((res, rej) => {
      const headers: Record<string, string> = {};
      if (opts.body !== undefined) headers['content-type'] = 'application/json';
      if (opts.receipt !== undefined) headers[RECEIPT_HEADER] = opts.receipt;
      const r = request({ host: '127.0.0.1', port: to.port, path, method: opts.method ?? (opts.body === undefined ? 'GET' : 'POST'), ca: to.serverCertPem, headers, ...(client ?? {}), agent: false }, (m) => {
        let text = '';
        m.setEncoding('utf8');
        m.on('data', (d: string) => (text += d));
        m.on('end', () => res({ status: m.statusCode!, body: JSON.parse(text) as Record<string, unknown> }));
      });
      r.on('error', rej);
      r.end(opts.body);
    });
  }
  const code = (b: Record<string, unknown>) => (b['error'] as { code: string } | undefined)?.code;

  it('acts on exactly the approved parameters, sent with the receipt', async () => {
    const s = await issued();
    const r = await call('/deploy', s, { body: JSON.stringify(DEPLOY), receipt: await receipt(s, DEPLOY) });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ ok: true, svid_id: s.svid_id, request_id: s.request_id, payload_sha256: payloadSha256(DEPLOY), payload_checked: true, approver: 'approver@ackd.test' });
    // the same parameters in another key order and spacing are the same JSON
    const reordered = JSON.stringify(Object.fromEntries(Object.entries(DEPLOY).reverse()), null, 2);
    expect((await call('/deploy', s, { body: reordered, receipt: await receipt(s, DEPLOY) })).status).toBe(200);
  });

  it('refuses parameters one byte different from the approved payload: 403 ERR_PAYLOAD_MISMATCH', async () => {
    const s = await issued();
    const jws = await receipt(s, DEPLOY);
    const body = JSON.stringify(DEPLOY);
    // flip one character of the commit
    const i = body.indexOf('9f2c1e7a') + 7;
    const oneByte = body.slice(0, i) + 'b' + body.slice(i + 1);
    expect(oneByte).not.toBe(body);
    expect(oneByte.length).toBe(body.length);
    const r = await call('/deploy', s, { body: oneByte, receipt: jws });
    expect(r.status).toBe(403);
    expect(code(r.body)).toBe('ERR_PAYLOAD_MISMATCH');
    expect((await call('/deploy', s, { body: JSON.stringify({ ...DEPLOY, replicas: 30 }), receipt: jws })).status).toBe(403);
    expect((await call('/deploy', s, { body, receipt: jws })).status).toBe(200);
  });

  it('refuses parameters without a receipt: 401 ERR_RECEIPT_MISSING', async () => {
    const s = await issued();
    const r = await call('/deploy', s, { body: JSON.stringify(DEPLOY) });
    expect(r.status).toBe(401);
    expect(code(r.body)).toBe('ERR_RECEIPT_MISSING');
  });

  it("refuses another SVID's receipt: 403 ERR_RECEIPT_MISMATCH", async () => {
    const a = await issued();
    const b = await issued();
    const r = await call('/deploy', a, { body: JSON.stringify(DEPLOY), receipt: await receipt(b, DEPLOY) });
    expect(r.status).toBe(403);
    expect(code(r.body)).toBe('ERR_RECEIPT_MISMATCH');
  });

  it('refuses an altered or forged receipt: 403 ERR_RECEIPT_INVALID', async () => {
    const s = await issued();
    const [h, , sig] = (await receipt(s, DEPLOY)).split('.');
    const evil = { ...DEPLOY, environment: 'prod-eu' };
    const [, p] = (await receipt(s, evil)).split('.');
    const r = await call('/deploy', s, { body: JSON.stringify(evil), receipt: `${h}.${p}.${sig}` });
    expect(r.status).toBe(403);
    expect(code(r.body)).toBe('ERR_RECEIPT_INVALID');
    const forger = await testReceiptSigner();
    const forged = await forger.sign({ ...s, payload: evil }, { header: { kid: signer.kid } });
    expect(code((await call('/deploy', s, { body: JSON.stringify(evil), receipt: forged })).body)).toBe('ERR_RECEIPT_INVALID');
  });

  it('refuses a body that is not JSON (400), and checks the SVID before anything else', async () => {
    const s = await issued();
    const r = await call('/deploy', s, { body: '{"commit":', receipt: await receipt(s, DEPLOY) });
    expect(r.status).toBe(400);
    expect(code(r.body)).toBe('ERR_INVALID_INPUT');
    const noCert = await call('/deploy', undefined, { body: JSON.stringify(DEPLOY), receipt: await receipt(s, DEPLOY) });
    expect(noCert.status).toBe(401);
    expect(code(noCert.body)).toBe('ERR_SVID_NO_CERTIFICATE');
  });

  it('a call without parameters needs only the SVID, unless the resource requires receipts', async () => {
    const s = await issued();
    expect((await call('/status', s)).status).toBe(200);
    const strict = await startProtectedResource({ bundlePem: await stack.deps.minter.trustBundlePem(), statusUrl: stack.appUrl, receiptKeys: signer.jwks, requireReceipt: true });
    try {
      const r = await call('/status', s, {}, strict);
      expect(r.status).toBe(401);
      expect(code(r.body)).toBe('ERR_RECEIPT_MISSING');
      expect((await call('/status', s, { receipt: await receipt(s, DEPLOY) }, strict)).status).toBe(200);
    } finally {
      await strict.stop();
    }
  });

  it('fails closed when the receipt keys cannot be read: 503 ERR_RECEIPT_KEYS_UNAVAILABLE', async () => {
    const s = await issued();
    const blind = await startProtectedResource({ bundlePem: await stack.deps.minter.trustBundlePem(), statusUrl: stack.appUrl, receiptKeys: `${stack.appUrl}/no-such-keys.json` });
    try {
      const r = await call('/deploy', s, { body: JSON.stringify(DEPLOY), receipt: await receipt(s, DEPLOY) }, blind);
      expect(r.status).toBe(503);
      expect(code(r.body)).toBe('ERR_RECEIPT_KEYS_UNAVAILABLE');
    } finally {
      await blind.stop();
    }
  });
});
