/**
 * `ackd svid verify --receipt … --payload …` (issue 13): the real bin in a child process. The SVID
 * and CA are made at test time; the receipt comes from a ReceiptSigner (test/helpers/receipts.ts)
 * whose JWKS is given with --receipt-keys — the same flags take ackd's real receipt and JWKS URL.
 */
import 'reflect-metadata';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifySvid, type VerifiedSvid } from '../../lambdas/verify/index.ts';
import { payloadSha256, groupedHex } from '../../lambdas/core/payload.ts';
import { ID_A, makeCa, makeLeaf } from '../helpers/x509-fixtures.ts';
import { testReceiptSigner, type ReceiptSigner } from '../helpers/receipts.ts';

const DEPLOY = { service: 'orders', environment: 'prod', commit: '9f2c1e7a' };

function ackd(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = execFile(process.execPath, [resolve('bin/ackd.js'), ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_NO_WARNINGS: '1' }, cwd: tmpdir() }, (err, stdout, stderr) =>
      done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(stdin ?? '');
  });
}

describe('ackd svid verify --receipt --payload', { timeout: 180_000 }, () => {
  let work: string;
  let signer: ReceiptSigner;
  let svid: VerifiedSvid;
  const f = (name: string) => join(work, name);

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'ackd-svid-verify-'));
    const ca = await makeCa();
    const leaf = await makeLeaf(ca, { uris: [ID_A] });
    svid = await verifySvid(leaf.pem, { bundle: ca.pem });
    signer = await testReceiptSigner();
    const other = await verifySvid((await makeLeaf(ca, { uris: [ID_A] })).pem, { bundle: ca.pem });
    await Promise.all([
      writeFile(f('ca.pem'), ca.pem),
      writeFile(f('svid.pem'), leaf.pem + leaf.keyPem),
      writeFile(f('jwks.json'), JSON.stringify(signer.jwks)),
      writeFile(f('deploy.json'), JSON.stringify(DEPLOY, null, 2)),
      writeFile(f('changed.json'), JSON.stringify({ ...DEPLOY, commit: '9f2c1e7b' })),
      writeFile(f('receipt.jws'), await signer.sign({ ...svid, payload: DEPLOY })),
      writeFile(f('other.jws'), await signer.sign({ ...other, payload: DEPLOY })),
    ]);
  });
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  const base = () => ['svid', 'verify', f('svid.pem'), '--bundle', f('ca.pem'), '--receipt-keys', f('jwks.json')];

  it('verifies SVID, receipt and payload, and says what it verified', async () => {
    const [r, json] = await Promise.all([
      ackd([...base(), '--receipt', f('receipt.jws'), '--payload', f('deploy.json')]),
      ackd([...base(), '--receipt', f('receipt.jws'), '--payload', f('deploy.json'), '--json']),
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('VALID X.509-SVID');
    expect(r.stdout).toContain('receipt:    signed by ackd, for this SVID');
    expect(r.stdout).toContain(`sha256 ${groupedHex(payloadSha256(DEPLOY))}`);
    expect(r.stdout).toContain('matches it');
    expect(JSON.parse(json.stdout)).toMatchObject({ valid: true, svid_id: svid.svid_id, payload_checked: true, receipt: { payload_sha256: payloadSha256(DEPLOY), svid_id: svid.svid_id } });
  });

  it('reads the receipt from stdin with -', async () => {
    const r = await ackd([...base(), '--receipt', '-', '--payload', f('deploy.json')], await import('node:fs/promises').then((fs) => fs.readFile(f('receipt.jws'), 'utf8')));
    expect(r.code, r.stderr).toBe(0);
  });

  it('exits 1 with the code: ERR_PAYLOAD_MISMATCH, ERR_RECEIPT_MISMATCH, ERR_RECEIPT_INVALID', async () => {
    const [changed, other, forged] = await Promise.all([
      ackd([...base(), '--receipt', f('receipt.jws'), '--payload', f('changed.json')]),
      ackd([...base(), '--receipt', f('other.jws'), '--payload', f('deploy.json')]),
      ackd([...base(), '--receipt', '-'], 'eyJhbGciOiJFUzI1NiJ9.e30.AAAA'),
    ]);
    expect(changed.code).toBe(1);
    expect(changed.stderr).toContain('INVALID: ERR_PAYLOAD_MISMATCH');
    expect(other.code).toBe(1);
    expect(other.stderr).toContain('INVALID: ERR_RECEIPT_MISMATCH');
    expect(forged.code).toBe(1);
    expect(forged.stderr).toContain('INVALID: ERR_RECEIPT_INVALID');
  });

  it('usage: --payload needs --receipt (exit 2)', async () => {
    const r = await ackd([...base(), '--payload', f('deploy.json')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--payload needs --receipt');
  });
});
