import 'reflect-metadata';
import { beforeAll, describe, expect, it } from 'vitest';
import { KeyUsageFlags } from '@peculiar/x509';
import { SvidVerifyError, checkSvidStatus, verifyAckdSvid, verifySvid, type SvidVerifyCode } from '../../lambdas/verify/index.ts';
import { ID_A, REQ_A, REQ_B, makeCa, makeLeaf, type TestCa } from '../helpers/x509-fixtures.ts';

async function code(p: Promise<unknown>): Promise<SvidVerifyCode> {
  try {
    await p;
  } catch (e) {
    if (e instanceof SvidVerifyError) return e.code;
    throw e;
  }
  throw new Error('expected a SvidVerifyError, but verification passed');
}

describe('verifySvid: X509-SVID rules and path validation', () => {
  let ca: TestCa;
  beforeAll(async () => {
    ca = await makeCa();
  });

  it('accepts a well-formed SVID and parses its SPIFFE ID', async () => {
    const leaf = await makeLeaf(ca, { uris: [ID_A] });
    const v = await verifySvid(leaf.pem + leaf.keyPem, { bundle: ca.pem });
    expect(v.spiffe_id).toBe(ID_A);
    expect(v.trust_domain).toBe('ackd.test');
    expect(v.agent_id).toBe('agent-1');
    expect(v.request_id).toBe(REQ_A);
    expect(v.svid_id).toBe(leaf.cert.serialNumber.toLowerCase().replace(/^0+/, ''));
    expect(v.path).toHaveLength(2);
  });

  it('rejects two URI SANs', async () => {
    const leaf = await makeLeaf(ca, { uris: [ID_A, `spiffe://ackd.test/agent/agent-1/${REQ_B}`] });
    expect(await code(verifySvid(leaf.pem, { bundle: ca.pem }))).toBe('ERR_SVID_URI_SAN');
  });

  it('rejects no URI SAN', async () => {
    const leaf = await makeLeaf(ca, { uris: [] });
    expect(await code(verifySvid(leaf.pem, { bundle: ca.pem }))).toBe('ERR_SVID_URI_SAN');
  });

  it('rejects a CA leaf', async () => {
    const leaf = await makeLeaf(ca, { uris: [ID_A], ca: true });
    expect(await code(verifySvid(leaf.pem, { bundle: ca.pem }))).toBe('ERR_SVID_LEAF_IS_CA');
  });

  it('rejects a URI SAN with another scheme', async () => {
    const leaf = await makeLeaf(ca, { uris: [`https://ackd.test/agent/agent-1/${REQ_A}`] });
    expect(await code(verifySvid(leaf.pem, { bundle: ca.pem }))).toBe('ERR_SVID_NOT_SPIFFE');
  });

  it('rejects another trust domain (explicit and derived from the bundle)', async () => {
    const leaf = await makeLeaf(ca, { uris: [`spiffe://evil.test/agent/agent-1/${REQ_A}`] });
    expect(await code(verifySvid(leaf.pem, { bundle: ca.pem }))).toBe('ERR_SVID_TRUST_DOMAIN');
    const good = await makeLeaf(ca, { uris: [ID_A] });
    expect(await code(verifySvid(good.pem, { bundle: ca.pem, trustDomain: 'other.test' }))).toBe('ERR_SVID_TRUST_DOMAIN');
  });

  it('rejects a SPIFFE ID that is not an ackd ID', async () => {
    const leaf = await makeLeaf(ca, { uris: ['spiffe://ackd.test/workload/web'] });
    expect(await code(verifySvid(leaf.pem, { bundle: ca.pem }))).toBe('ERR_SVID_NOT_ACKD_ID');
  });

  it('rejects keyCertSign, cRLSign, and a missing digitalSignature', async () => {
    for (const ku of [KeyUsageFlags.digitalSignature | KeyUsageFlags.keyCertSign, KeyUsageFlags.digitalSignature | KeyUsageFlags.cRLSign, KeyUsageFlags.keyEncipherment, null]) {
      const leaf = await makeLeaf(ca, { uris: [ID_A], keyUsage: ku });
      expect(await code(verifySvid(leaf.pem, { bundle: ca.pem }))).toBe('ERR_SVID_KEY_USAGE');
    }
  });

  it('judges time: expired, not yet valid (time passed in, no sleeping)', async () => {
    const leaf = await makeLeaf(ca, { uris: [ID_A] });
    expect(await code(verifySvid(leaf.pem, { bundle: ca.pem, at: new Date(leaf.cert.notAfter.getTime() + 1000) }))).toBe('ERR_SVID_EXPIRED');
    expect(await code(verifySvid(leaf.pem, { bundle: ca.pem, at: new Date(leaf.cert.notBefore.getTime() - 1000) }))).toBe('ERR_SVID_NOT_YET_VALID');
    await expect(verifySvid(leaf.pem, { bundle: ca.pem, at: new Date(leaf.cert.notAfter.getTime() - 1000) })).resolves.toBeTruthy();
  });

  it('rejects a certificate from another CA with the same name and trust domain', async () => {
    const imposter = await makeCa({ name: ca.cert.subject });
    const leaf = await makeLeaf(imposter, { uris: [ID_A] });
    expect(await code(verifySvid(leaf.pem, { bundle: ca.pem }))).toBe('ERR_SVID_UNTRUSTED');
  });

  it('rejects a tampered certificate (signature no longer verifies)', async () => {
    const leaf = await makeLeaf(ca, { uris: [ID_A] });
    const der = Buffer.from(leaf.cert.rawData);
    der[der.length - 5]! ^= 0x01; // inside the signature
    expect(await code(verifySvid([new Uint8Array(der)], { bundle: ca.pem }))).toBe('ERR_SVID_UNTRUSTED');
  });

  it('validates a path through an intermediate, and refuses one that is not a CA or is expired', async () => {
    const inter = await makeCa({ issuer: ca });
    const leaf = await makeLeaf(inter, { uris: [ID_A] });
    const v = await verifySvid(leaf.pem + inter.pem, { bundle: ca.pem });
    expect(v.path).toHaveLength(3);
    expect(await code(verifySvid(leaf.pem, { bundle: ca.pem }))).toBe('ERR_SVID_UNTRUSTED'); // intermediate missing

    const notCa = await makeCa({ issuer: ca, ca: false });
    const leaf2 = await makeLeaf(notCa, { uris: [ID_A] });
    expect(await code(verifySvid(leaf2.pem + notCa.pem, { bundle: ca.pem }))).toBe('ERR_SVID_UNTRUSTED');

    const old = await makeCa({ issuer: ca, notBefore: new Date(Date.now() - 7200_000), notAfter: new Date(Date.now() - 3600_000) });
    const leaf3 = await makeLeaf(old, { uris: [ID_A] });
    expect(await code(verifySvid(leaf3.pem + old.pem, { bundle: ca.pem }))).toBe('ERR_SVID_EXPIRED');
  });

  it('enforces pathLenConstraint', async () => {
    const root = await makeCa({ pathLength: 0 });
    const inter = await makeCa({ issuer: root });
    const leaf = await makeLeaf(inter, { uris: [ID_A] });
    expect(await code(verifySvid(leaf.pem + inter.pem, { bundle: root.pem }))).toBe('ERR_SVID_UNTRUSTED');
  });

  it('reports no certificate and garbage', async () => {
    expect(await code(verifySvid('', { bundle: ca.pem }))).toBe('ERR_SVID_NO_CERTIFICATE');
    expect(await code(verifySvid('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', { bundle: ca.pem }))).toBe('ERR_SVID_MALFORMED');
  });

  it('verifyAckdSvid checks the demanded request and agent offline', async () => {
    const leaf = await makeLeaf(ca, { uris: [ID_A] });
    expect(await code(verifyAckdSvid(leaf.pem, { bundle: ca.pem, expect: { requestId: REQ_B } }))).toBe('ERR_SVID_WRONG_REQUEST');
    expect(await code(verifyAckdSvid(leaf.pem, { bundle: ca.pem, expect: { agentId: 'agent-2' } }))).toBe('ERR_SVID_WRONG_AGENT');
    await expect(verifyAckdSvid(leaf.pem, { bundle: ca.pem, expect: { permissions: ['x'] } })).rejects.toThrow(/needs statusUrl/);
  });

  it('checkSvidStatus fails closed on an unreachable or odd status endpoint', async () => {
    const svid = { request_id: REQ_A, svid_id: 'ab', spiffe_id: ID_A };
    // a port nothing listens on
    expect(await code(checkSvidStatus(svid, { statusUrl: 'http://127.0.0.1:9', timeoutMs: 2000 }))).toBe('ERR_SVID_STATUS_UNAVAILABLE');
    const odd: typeof fetch = async () => new Response(JSON.stringify({ status: 'approved' }), { status: 200 });
    expect(await code(checkSvidStatus(svid, { statusUrl: 'http://x', fetch: odd }))).toBe('ERR_SVID_STATUS_UNAVAILABLE');
  });
});
