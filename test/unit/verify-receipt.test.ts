/**
 * ackd/verify receipts (issue 13): verifyReceipt on its own and inside verifyAckdSvid /
 * createSvidVerifier. Receipts come from a ReceiptSigner (test/helpers/receipts.ts), a key made at
 * test time in the agreed format; the same cases hold for ackd's own signer.
 */
import 'reflect-metadata';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, base64url, generateKeyPair } from 'jose';
import {
  ReceiptVerifyError,
  SvidVerifyError,
  canonicalSha256,
  createSvidVerifier,
  receiptKeysUrl,
  verifyAckdSvid,
  verifyReceipt,
  verifySvid,
  type SvidVerifyCode,
  type VerifiedSvid,
} from '../../lambdas/verify/index.ts';
import { payloadSha256 } from '../../lambdas/core/payload.ts';
import { ID_A, ID_B, makeCa, makeLeaf, type TestCa } from '../helpers/x509-fixtures.ts';
import { testReceiptSigner, type ReceiptSigner } from '../helpers/receipts.ts';

async function code(p: Promise<unknown>): Promise<SvidVerifyCode> {
  try {
    await p;
  } catch (e) {
    if (e instanceof SvidVerifyError) return e.code;
    throw e;
  }
  throw new Error('expected a refusal, but verification passed');
}

const PAYLOAD = { service: 'orders', environment: 'prod', commit: '9f2c1e7', replicas: 3, steps: [{ sql: 'ALTER TABLE t ADD c int' }] };

describe('verifyReceipt', () => {
  let ca: TestCa;
  let signer: ReceiptSigner;
  let svid: VerifiedSvid;
  let chain: string;
  let other: VerifiedSvid;
  let receipt: string;

  beforeAll(async () => {
    ca = await makeCa();
    signer = await testReceiptSigner();
    const leaf = await makeLeaf(ca, { uris: [ID_A] });
    chain = leaf.pem + leaf.keyPem;
    svid = await verifySvid(chain, { bundle: ca.pem });
    other = await verifySvid((await makeLeaf(ca, { uris: [ID_A] })).pem, { bundle: ca.pem });
    receipt = await signer.sign({ ...svid, payload: PAYLOAD });
  });

  it('returns the claims of a receipt for this SVID and this payload', async () => {
    const claims = await verifyReceipt(receipt, { keys: signer.jwks, svid, payload: PAYLOAD });
    expect(claims).toMatchObject({ iss: 'ackd', sub: svid.spiffe_id, spiffe_id: svid.spiffe_id, svid_id: svid.svid_id, request_id: svid.request_id, agent_id: svid.agent_id, payload_sha256: payloadSha256(PAYLOAD), exp: Math.floor(svid.not_after.getTime() / 1000) });
  });

  it('hashes payloads as ackd does (RFC 8785): key order and number spelling do not matter', async () => {
    expect(canonicalSha256(PAYLOAD)).toBe(payloadSha256(PAYLOAD));
    const reordered = JSON.parse('{"steps":[{"sql":"ALTER TABLE t ADD c int"}],"replicas":3.0,"commit":"9f2c1e7","environment":"prod","service":"orders"}') as unknown;
    await expect(verifyReceipt(receipt, { keys: signer.jwks, svid, payload: reordered })).resolves.toBeTruthy();
  });

  it('refuses a payload one byte different: ERR_PAYLOAD_MISMATCH', async () => {
    for (const changed of [
      { ...PAYLOAD, commit: '9f2c1e8' },
      { ...PAYLOAD, replicas: 4 },
      { ...PAYLOAD, steps: [{ sql: 'ALTER TABLE t ADD c  int' }] },
      { ...PAYLOAD, extra: null },
    ]) {
      expect(await code(verifyReceipt(receipt, { keys: signer.jwks, svid, payload: changed }))).toBe('ERR_PAYLOAD_MISMATCH');
    }
    const e = await verifyReceipt(receipt, { keys: signer.jwks, payload: { ...PAYLOAD, commit: '9f2c1e8' } }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ReceiptVerifyError);
    expect((e as Error).message).toContain(payloadSha256(PAYLOAD));
  });

  it('refuses a payload when the receipt approves none', async () => {
    const none = await signer.sign(svid);
    expect((await verifyReceipt(none, { keys: signer.jwks, svid })).payload_sha256).toBeNull();
    expect(await code(verifyReceipt(none, { keys: signer.jwks, svid, payload: {} }))).toBe('ERR_PAYLOAD_MISMATCH');
  });

  it('refuses a receipt for another SVID: ERR_RECEIPT_MISMATCH', async () => {
    // same SPIFFE ID, another certificate (serial)
    expect(await code(verifyReceipt(receipt, { keys: signer.jwks, svid: other, payload: PAYLOAD }))).toBe('ERR_RECEIPT_MISMATCH');
    // same serial claimed, another request
    const forB = await signer.sign({ ...svid, spiffe_id: ID_B, payload: PAYLOAD });
    expect(await code(verifyReceipt(forB, { keys: signer.jwks, svid, payload: PAYLOAD }))).toBe('ERR_RECEIPT_MISMATCH');
  });

  it('refuses forged and altered receipts: ERR_RECEIPT_INVALID', async () => {
    const [h, p, s] = receipt.split('.') as [string, string, string];
    const claims = JSON.parse(new TextDecoder().decode(base64url.decode(p))) as Record<string, unknown>;
    const reencode = (o: unknown) => base64url.encode(JSON.stringify(o));
    const forger = await testReceiptSigner();
    const cases: Record<string, string> = {
      'claims altered, signature kept': `${h}.${reencode({ ...claims, payload_sha256: canonicalSha256({ ...PAYLOAD, commit: 'evil' }) })}.${s}`,
      'signature altered': `${h}.${p}.${s.slice(0, -4)}${s.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`,
      'signed by another key under ackd\'s kid': await forger.sign({ ...svid, payload: PAYLOAD }, { header: { kid: signer.kid } }),
      'signed by a key ackd does not publish': await forger.sign({ ...svid, payload: PAYLOAD }),
      'wrong typ': await signer.sign({ ...svid, payload: PAYLOAD }, { header: { typ: 'JWT' } }),
      'no kid': await signer.sign({ ...svid, payload: PAYLOAD }, { header: { kid: undefined } }),
      'another issuer': await signer.sign({ ...svid, payload: PAYLOAD }, { claims: { iss: 'evil' } }),
      'sub is not the SPIFFE ID': await signer.sign({ ...svid, payload: PAYLOAD }, { claims: { sub: ID_B } }),
      'SPIFFE ID names another request': await signer.sign({ ...svid, payload: PAYLOAD }, { claims: { request_id: 'req_01m8097t68bqmsxsfk9emc3g6r' } }),
      'payload_sha256 not hex': await signer.sign({ ...svid, payload: PAYLOAD }, { claims: { payload_sha256: 'ABC' } }),
      'decision_signature_sha256 missing': await signer.sign({ ...svid, payload: PAYLOAD }, { claims: { decision_signature_sha256: undefined } }),
      'not a JWS': 'hello',
      'unsigned (alg none)': `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'ackd-receipt+jwt', kid: signer.kid }))}.${p}.`,
    };
    // HS256 with the public key's x as the secret (the classic confusion attack)
    const jwk = signer.jwks.keys[0]!;
    cases['HS256 with the public key as secret'] = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'ackd-receipt+jwt', kid: signer.kid }).sign(new TextEncoder().encode(JSON.stringify(jwk)));
    for (const [what, jws] of Object.entries(cases)) {
      expect(await code(verifyReceipt(jws, { keys: signer.jwks, svid, payload: PAYLOAD })), what).toBe('ERR_RECEIPT_INVALID');
    }
  });

  it("refuses a kid that is not the key's RFC 7638 thumbprint", async () => {
    const jwks = { keys: [{ ...signer.jwks.keys[0]!, kid: 'key-1' }] };
    const jws = await signer.sign({ ...svid, payload: PAYLOAD }, { header: { kid: 'key-1' } });
    const e = await verifyReceipt(jws, { keys: jwks, svid }).catch((x: unknown) => x as SvidVerifyError);
    expect((e as SvidVerifyError).code).toBe('ERR_RECEIPT_INVALID');
    expect((e as Error).message).toContain('thumbprint');
  });

  it('refuses an expired receipt (exp is the SVID notAfter): ERR_RECEIPT_EXPIRED', async () => {
    expect(await code(verifyReceipt(receipt, { keys: signer.jwks, svid, now: new Date(svid.not_after.getTime() + 2000) }))).toBe('ERR_RECEIPT_EXPIRED');
    await expect(verifyReceipt(receipt, { keys: signer.jwks, svid, now: new Date(svid.not_after.getTime() - 2000) })).resolves.toBeTruthy();
  });

  it('refuses an empty receipt: ERR_RECEIPT_MISSING', async () => {
    expect(await code(verifyReceipt('', { keys: signer.jwks }))).toBe('ERR_RECEIPT_MISSING');
  });

  describe('keys at a URL', () => {
    let server: Server;
    let base: string;
    let fetches = 0;
    beforeAll(async () => {
      server = createServer((req, res) => {
        if (req.url === '/.well-known/ackd-receipt-keys.json') {
          fetches++;
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(signer.jwks));
        } else {
          res.writeHead(404);
          res.end();
        }
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise<void>((r) => server.close(() => r())));

    it('fetches the JWKS once and verifies with it', async () => {
      const url = receiptKeysUrl(`${base}/mcp`);
      expect(url.href).toBe(`${base}/.well-known/ackd-receipt-keys.json`);
      for (let i = 0; i < 3; i++) await verifyReceipt(receipt, { keys: url, svid, payload: PAYLOAD });
      expect(fetches).toBe(1);
      expect(await code(verifyReceipt(receipt, { keys: url, svid, payload: { ...PAYLOAD, commit: 'x' } }))).toBe('ERR_PAYLOAD_MISMATCH');
    });

    it('says so when the keys cannot be read: ERR_RECEIPT_KEYS_UNAVAILABLE (fail closed)', async () => {
      expect(await code(verifyReceipt(receipt, { keys: `${base}/nowhere.json`, svid }))).toBe('ERR_RECEIPT_KEYS_UNAVAILABLE');
      const closed = createServer();
      await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
      const port = (closed.address() as AddressInfo).port;
      await new Promise<void>((r) => closed.close(() => r()));
      expect(await code(verifyReceipt(receipt, { keys: `http://127.0.0.1:${port}/k.json`, svid }))).toBe('ERR_RECEIPT_KEYS_UNAVAILABLE');
    });
  });

  describe('in one call with the SVID', () => {
    it('verifyAckdSvid checks SVID, receipt and payload', async () => {
      const r = await verifyAckdSvid(chain, { bundle: ca.pem, receipt, receiptKeys: signer.jwks, payload: PAYLOAD, expect: { permissions: ['deploy:prod'] } });
      expect(r.svid.svid_id).toBe(svid.svid_id);
      expect(r.receipt?.payload_sha256).toBe(payloadSha256(PAYLOAD));
      expect(await code(verifyAckdSvid(chain, { bundle: ca.pem, receipt, receiptKeys: signer.jwks, payload: { ...PAYLOAD, replicas: 30 } }))).toBe('ERR_PAYLOAD_MISMATCH');
      expect(await code(verifyAckdSvid(chain, { bundle: ca.pem, receipt, receiptKeys: signer.jwks, expect: { permissions: ['deploy:staging'] } }))).toBe('ERR_SVID_PERMISSION_MISSING');
    });

    it('a payload without a receipt is refused, not waved through', async () => {
      expect(await code(verifyAckdSvid(chain, { bundle: ca.pem, receiptKeys: signer.jwks, payload: PAYLOAD }))).toBe('ERR_RECEIPT_MISSING');
    });

    it('the SVID is checked first: a receipt never vouches for an untrusted certificate', async () => {
      const stranger = await makeCa();
      const leaf = await makeLeaf(stranger, { uris: [ID_A] });
      expect(await code(verifyAckdSvid(leaf.pem, { bundle: ca.pem, receipt, receiptKeys: signer.jwks, payload: PAYLOAD }))).toBe('ERR_SVID_UNTRUSTED');
    });

    it('a kept verifier does the same', async () => {
      const verifier = createSvidVerifier(ca.pem);
      expect((await verifier.verifyAckdSvid(chain, { receipt, receiptKeys: signer.jwks, payload: PAYLOAD })).receipt?.svid_id).toBe(svid.svid_id);
      const otherLeaf = await makeLeaf(ca, { uris: [ID_A] });
      expect(await code(verifier.verifyAckdSvid(otherLeaf.pem, { receipt, receiptKeys: signer.jwks, payload: PAYLOAD }))).toBe('ERR_RECEIPT_MISMATCH');
    });

    it('needs receiptKeys with a receipt', async () => {
      await expect(verifyAckdSvid(chain, { bundle: ca.pem, receipt })).rejects.toThrow(TypeError);
    });
  });

  it('a receipt signed by a different ES256 key is refused even when its JWKS entry is swapped in', async () => {
    // the verifier's keys are what the resource trusts, not what the presenter sends
    const { privateKey } = await generateKeyPair('ES256');
    const jws = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', typ: 'ackd-receipt+jwt', kid: signer.kid }).sign(privateKey);
    expect(await code(verifyReceipt(jws, { keys: signer.jwks }))).toBe('ERR_RECEIPT_INVALID');
  });
});
