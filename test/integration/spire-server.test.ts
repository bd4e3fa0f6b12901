/**
 * The spire-server helpers themselves: cached build reuse, start / health-wait / stop / restart,
 * short admin socket paths, CA persistence, and the issuer picker used by `npm start`.
 */
import 'reflect-metadata';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpireClient } from '../../spire/bridge/client.ts';
import { createKeyAndCsr } from '../../spire/bridge/csr.ts';
import { SPIRE_VERSION, cachedSpireServer, ensureSpireServer } from '../../spire/build.ts';
import { startIssuer } from '../../spire/issuer.ts';
import { renderServerConf, startSpireServer, SERVER_CONF_TEMPLATE } from '../../spire/server.ts';
import { isAckdError } from '../../lambdas/core/errors.ts';
import { SPIRE_BUILD_TIMEOUT_MS } from '../helpers/spire.ts';

const run = promisify(execFile);

describe('spire-server build, start, stop', () => {
  let binary: string;
  let work: string;
  beforeAll(async () => {
    binary = await ensureSpireServer();
    work = await mkdtemp(join(tmpdir(), 'ackd-sps-'));
  }, SPIRE_BUILD_TIMEOUT_MS);
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it(`reuses the cached v${SPIRE_VERSION} binary`, async () => {
    expect(await cachedSpireServer()).toBe(binary);
    const t0 = Date.now();
    expect(await ensureSpireServer()).toBe(binary);
    expect(Date.now() - t0).toBeLessThan(2000);
    const { stdout, stderr } = await run(binary, ['--version']);
    expect(stdout + stderr).toContain(SPIRE_VERSION);
  });

  it('renders the config template with every value quoted, refusing a missing one', async () => {
    const tmpl = await readFile(SERVER_CONF_TEMPLATE, 'utf8');
    expect(() => renderServerConf(tmpl, {})).toThrow(/no value/);
    const conf = renderServerConf('a = {{x}}\nb = {{n}}', { x: 'he said "hi"', n: 0 });
    expect(conf).toBe('a = "he said \\"hi\\""\nb = 0');
  });

  it('starts healthy, keeps its CA across restart, refuses calls while stopped, and stops cleanly', async () => {
    // a data dir long enough that <dataDir>/api.sock would overflow sun_path
    const dataDir = join(work, 'x'.repeat(100));
    const s = await startSpireServer({ binary, dataDir, trustDomain: 'persist.test', logLevel: 'WARN' });
    try {
      expect(s.socketPath.length).toBeLessThanOrEqual(90);
      expect(s.running()).toBe(true);
      const client = new SpireClient({ socketPath: s.socketPath, timeoutMs: 2000 });
      const before = await client.getBundle();
      expect(before.trustDomain).toBe('persist.test');
      expect(before.x509Authorities.length).toBeGreaterThan(0);

      await s.stop();
      expect(s.running()).toBe(false);
      const e = await client.getBundle().catch((x: unknown) => x);
      expect(isAckdError(e, 'ERR_ISSUER_UNAVAILABLE')).toBe(true);

      await s.restart();
      const after = await client.getBundle();
      expect(Buffer.from(after.x509Authorities[0]!).equals(Buffer.from(before.x509Authorities[0]!))).toBe(true);
      client.close();
    } finally {
      await s.stop();
      await s.stop(); // twice is fine
    }
    expect(existsSync(s.socketPath)).toBe(false);
  });

  it('maps SPIRE\'s gRPC refusals to domain errors (real server, real gRPC)', async () => {
    const s = await startSpireServer({ binary, dataDir: join(work, 'grpc'), trustDomain: 'grpc.test', logLevel: 'ERROR' });
    const client = new SpireClient({ socketPath: s.socketPath });
    try {
      // malformed CSR: SPIRE answers InvalidArgument
      const bad = await client.mintX509Svid(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]), 60).catch((x: unknown) => x);
      // SPIRE's words are the cause (logged), never the message (shown)
      expect(isAckdError(bad, 'ERR_INVALID_INPUT') && /INVALID_ARGUMENT: malformed CSR/.test(String((bad.cause as Error).message))).toBe(true);
      // a CSR for another trust domain
      const other = await createKeyAndCsr('spiffe://elsewhere.test/agent/a/req_01m8097t68bqmsxsfk9emc3g6q');
      const e2 = await client.mintX509Svid(other.csrDer, 60).catch((x: unknown) => x);
      expect(isAckdError(e2, 'ERR_INVALID_INPUT')).toBe(true);
      // a bad ttl never reaches SPIRE
      const ok = await createKeyAndCsr('spiffe://grpc.test/agent/a/req_01m8097t68bqmsxsfk9emc3g6q');
      for (const ttl of [0, -1, 1.5]) expect(isAckdError(await client.mintX509Svid(ok.csrDer, ttl).catch((x: unknown) => x), 'ERR_INVALID_INPUT')).toBe(true);
      const minted = await client.mintX509Svid(ok.csrDer, 120);
      expect(minted.spiffeId).toBe('spiffe://grpc.test/agent/a/req_01m8097t68bqmsxsfk9emc3g6q');
      expect(minted.expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + 121_000);
    } finally {
      client.close();
      await s.stop();
    }
  });

  it('fails with the server log when the config is rejected', async () => {
    await expect(startSpireServer({ binary, dataDir: join(work, 'bad'), trustDomain: 'NOT A DOMAIN', startTimeoutMs: 20_000 })).rejects.toThrow(/spire-server exited/);
  });

  it('startIssuer: SPIRE when the binary is cached (same bundle after a restart), the in-process CA on request', async () => {
    const stateDir = join(work, 'state');
    const logs: string[] = [];
    const a = await startIssuer({ trustDomain: 'issuer.test', stateDir, log: (l) => logs.push(l) });
    let bundleA: string;
    try {
      expect(a.kind).toBe('spire');
      bundleA = await a.trustBundlePem();
    } finally {
      await a.stop();
    }
    const b = await startIssuer({ trustDomain: 'issuer.test', stateDir, log: (l) => logs.push(l) });
    try {
      expect(b.kind).toBe('spire');
      expect(await b.trustBundlePem()).toBe(bundleA);
    } finally {
      await b.stop();
    }
    expect(logs.join('\n')).toContain('SVID issuer: spire-server');

    const c = await startIssuer({ trustDomain: 'issuer.test', stateDir, issuer: 'local-ca', log: (l) => logs.push(l) });
    const d = await startIssuer({ trustDomain: 'issuer.test', stateDir, issuer: 'local-ca', log: (l) => logs.push(l) });
    expect(c.kind).toBe('local-ca');
    expect(await c.trustBundlePem()).toBe(await d.trustBundlePem()); // persisted under stateDir/local-ca
    expect(await c.trustBundlePem()).not.toBe(bundleA);
  }, 120_000);
});
