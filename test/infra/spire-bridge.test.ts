/**
 * The SPIRE bridge as it runs on AWS, minus Fargate: the sidecar bundle the CDK app builds into the
 * container image (spire/sidecar/server.mjs, run here with node) in front of a REAL spire-server on
 * its admin socket, and the Lambda-side RemoteSpireClient + SpireSvidMinter calling it over HTTP.
 * Also: every refusal of the HMAC protocol, fail-closed mapping, and the init container's script.
 */
import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAckdError } from '../../lambdas/core/errors.ts';
import { SpiffeId, newRequestId, parseAgentId, parseTrustDomain } from '../../lambdas/core/ids.ts';
import { createKeyAndCsr } from '../../spire/bridge/csr.ts';
import { SpireSvidMinter } from '../../spire/bridge/minter.ts';
import { RemoteSpireClient, remoteSpireMinterFromEnv } from '../../spire/sidecar/client.ts';
import { BRIDGE_PATHS, MAX_BODY_BYTES, authHeaders, b64 } from '../../spire/sidecar/protocol.ts';
import { DEFAULT_SIDECAR_BASE_IMAGE } from '../../lib/config.ts';
import { buildSidecarContext } from '../../lib/constructs/sidecar-image.ts';
import { SPIRE_BUILD_TIMEOUT_MS, startTestSpire, type TestSpire } from '../helpers/spire.ts';

const TD = parseTrustDomain('ackd.test');
// Generated per run; never a fixed secret.
const SECRET = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex');

let spire: TestSpire;
let contextDir: string;
let bridge: ChildProcess;
let bridgeUrl: string;
let bridgeLog = '';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitHealthy(url: string, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try {
      if ((await fetch(`${url}${BRIDGE_PATHS.health}`)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`bridge did not become healthy; log:\n${bridgeLog}`);
}

function newSpiffeId(): SpiffeId {
  return SpiffeId.forRequest(TD, parseAgentId('agent-7'), newRequestId(Date.now()));
}

beforeAll(async () => {
  spire = await startTestSpire('ackd.test');
  // Exactly what the CDK app puts into the sidecar image.
  contextDir = buildSidecarContext();
  const port = await freePort();
  bridgeUrl = `http://127.0.0.1:${port}`;
  bridge = spawn(process.execPath, [join(contextDir, 'spire/sidecar/server.mjs')], {
    cwd: contextDir,
    env: {
      PATH: process.env.PATH,
      ACKD_BRIDGE_SECRET: SECRET,
      SPIRE_SOCKET_PATH: spire.server.socketPath,
      ACKD_BRIDGE_PORT: String(port),
      ACKD_BRIDGE_HOST: '127.0.0.1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  bridge.stdout!.on('data', (d) => (bridgeLog += d));
  bridge.stderr!.on('data', (d) => (bridgeLog += d));
  await waitHealthy(bridgeUrl);
}, SPIRE_BUILD_TIMEOUT_MS);

afterAll(async () => {
  if (bridge && bridge.exitCode === null) {
    const exited = new Promise((r) => bridge.once('exit', r));
    bridge.kill('SIGTERM');
    await exited;
  }
  await spire?.stop();
});

describe('sidecar image context (built at synth time)', () => {
  it('holds the bundled entry points, the .proto files at their runtime path, and a Dockerfile on a pinned Node base', () => {
    for (const f of ['spire/sidecar/server.mjs', 'spire/sidecar/init.mjs', 'package.json', 'Dockerfile']) {
      expect(existsSync(join(contextDir, f)), f).toBe(true);
    }
    expect(existsSync(join(contextDir, 'spire/proto/spire/api/server/svid/v1/svid.proto'))).toBe(true);
    const dockerfile = readFileSync(join(contextDir, 'Dockerfile'), 'utf8');
    // The default base (setting sidecarBaseImage) is pinned by digest: the FROM line names it exactly.
    expect(dockerfile).toMatch(/^FROM public\.ecr\.aws\/docker\/library\/node:22-alpine@sha256:[0-9a-f]{64}$/m);
    expect(dockerfile.split('\n')[0]).toBe(`FROM ${DEFAULT_SIDECAR_BASE_IMAGE}`);
    expect(dockerfile).toMatch(/^USER node$/m);
    // Nothing from the repository but the bundle: no sources, no node_modules.
    expect(existsSync(join(contextDir, 'node_modules'))).toBe(false);
    expect(existsSync(join(contextDir, 'spire/sidecar/server.ts'))).toBe(false);
  });
});

describe('RemoteSpireClient → bridge bundle → real spire-server', () => {
  it('mints an X509-SVID whose key stayed with the caller and whose chain verifies against the bundle', async () => {
    const client = new RemoteSpireClient({ url: bridgeUrl, secret: SECRET });
    const minter = new SpireSvidMinter(client);
    const id = newSpiffeId();
    const notAfter = new Date(Date.now() + 10 * 60_000);
    const svid = await minter.mint(id, notAfter);

    const certs = svid.certChainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!;
    const leaf = new X509Certificate(certs[0]!);
    expect(leaf.subjectAltName).toBe(`URI:${id.toString()}`);
    expect(leaf.checkPrivateKey(await import('node:crypto').then((c) => c.createPrivateKey(svid.privateKeyPem)))).toBe(true);
    expect(new Date(leaf.validTo).getTime()).toBeLessThanOrEqual(notAfter.getTime());
    expect(svid.svidId).toBe(leaf.serialNumber.toLowerCase().replace(/^0+(?=.)/, ''));

    const bundlePem = await minter.trustBundlePem();
    const roots = bundlePem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!.map((p) => new X509Certificate(p));
    const chain = [leaf, ...certs.slice(1).map((p) => new X509Certificate(p))];
    const top = chain[chain.length - 1]!;
    for (let i = 0; i < chain.length - 1; i++) expect(chain[i]!.verify(chain[i + 1]!.publicKey)).toBe(true);
    expect(roots.some((r) => top.verify(r.publicKey))).toBe(true);

    // The bundle the bridge relays is SPIRE's own.
    const direct = await spire.client.getBundle();
    const relayed = await client.getBundle();
    expect(relayed.trustDomain).toBe('ackd.test');
    expect(relayed.x509Authorities.map(b64.encode)).toEqual(direct.x509Authorities.map(b64.encode));
  });

  it('remoteSpireMinterFromEnv: plain secret only in local mode, ARN required otherwise, URL required', async () => {
    const local = remoteSpireMinterFromEnv({ ACKD_SPIRE_BRIDGE_URL: bridgeUrl, ACKD_SPIRE_BRIDGE_SECRET: SECRET }, { local: true });
    const svid = await local.mint(newSpiffeId(), new Date(Date.now() + 5 * 60_000));
    expect(svid.certChainPem).toContain('BEGIN CERTIFICATE');
    expect(() => remoteSpireMinterFromEnv({ ACKD_SPIRE_BRIDGE_URL: bridgeUrl, ACKD_SPIRE_BRIDGE_SECRET: SECRET })).toThrow(/ACKD_SPIRE_BRIDGE_SECRET_ARN/);
    expect(() => remoteSpireMinterFromEnv({ ACKD_SPIRE_BRIDGE_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:x' })).toThrow(/ACKD_SPIRE_BRIDGE_URL/);
  });

  it('SPIRE refusing the CSR (another trust domain) surfaces as ERR_ISSUER_REFUSED, never an SVID', async () => {
    const minter = new SpireSvidMinter(new RemoteSpireClient({ url: bridgeUrl, secret: SECRET }));
    const other = SpiffeId.forRequest(parseTrustDomain('other.test'), parseAgentId('agent-7'), newRequestId(Date.now()));
    const err = await minter.mint(other, new Date(Date.now() + 5 * 60_000)).catch((e: unknown) => e);
    expect(isAckdError(err, 'ERR_ISSUER_REFUSED')).toBe(true);
  });
});

describe('bridge protocol refusals', () => {
  async function rawMint(opts: { secret?: string; nowMs?: number; body?: Uint8Array; signBody?: Uint8Array } = {}): Promise<Response> {
    const { csrDer } = await createKeyAndCsr(newSpiffeId());
    const body = opts.body ?? new TextEncoder().encode(JSON.stringify({ csr: b64.encode(csrDer), ttl: 60 }));
    const headers = authHeaders(opts.secret ?? SECRET, 'POST', BRIDGE_PATHS.mint, opts.signBody ?? body, opts.nowMs ?? Date.now());
    return fetch(`${bridgeUrl}${BRIDGE_PATHS.mint}`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: Buffer.from(body) });
  }

  it('accepts a correctly signed request (control)', async () => {
    const res = await rawMint();
    expect(res.status).toBe(200);
    const json = (await res.json()) as { cert_chain: string[] };
    expect(json.cert_chain.length).toBeGreaterThan(0);
  });

  it('refuses no authorization, a wrong key, a stale or future timestamp, and a body that does not match its MAC', async () => {
    const noAuth = await fetch(`${bridgeUrl}${BRIDGE_PATHS.bundle}`);
    expect(noAuth.status).toBe(401);
    expect((await rawMint({ secret: 'x'.repeat(64) })).status).toBe(401);
    expect((await rawMint({ nowMs: Date.now() - 120_000 })).status).toBe(401);
    expect((await rawMint({ nowMs: Date.now() + 120_000 })).status).toBe(401);
    expect((await rawMint({ signBody: new TextEncoder().encode('{"csr":"AAAA","ttl":60}') })).status).toBe(401);
    const body = (await (await rawMint({ secret: 'y'.repeat(64) })).json()) as { error: { code: string } };
    expect(body.error.code).toBe('ERR_UNAUTHENTICATED');
  });

  it('refuses oversized bodies before reading them, and malformed CSR / ttl with the field named', async () => {
    const big = new Uint8Array(MAX_BODY_BYTES + 1).fill(0x20);
    expect((await rawMint({ body: big })).status).toBe(413);
    const badTtl = await rawMint({ body: new TextEncoder().encode(JSON.stringify({ csr: 'AAAA', ttl: 0 })) });
    expect(badTtl.status).toBe(400);
    expect(((await badTtl.json()) as { error: { field: string } }).error.field).toBe('ttl');
    const badCsr = await rawMint({ body: new TextEncoder().encode(JSON.stringify({ csr: 'not base64!', ttl: 60 })) });
    expect(badCsr.status).toBe(400);
    expect(((await badCsr.json()) as { error: { field: string } }).error.field).toBe('csr');
  });

  it('a client with the wrong key fails closed with ERR_ISSUER_UNAVAILABLE', async () => {
    const minter = new SpireSvidMinter(new RemoteSpireClient({ url: bridgeUrl, secret: 'z'.repeat(64) }));
    const err = await minter.mint(newSpiffeId(), new Date(Date.now() + 5 * 60_000)).catch((e: unknown) => e);
    expect(isAckdError(err, 'ERR_ISSUER_UNAVAILABLE')).toBe(true);
  });

  it('a loaded key that the bridge refuses (rotated) is loaded again once, then used', async () => {
    const keys = ['r'.repeat(64), SECRET];
    let loads = 0;
    const client = new RemoteSpireClient({ url: bridgeUrl, secret: async () => keys[Math.min(loads++, 1)]! });
    const bundle = await client.getBundle();
    expect(bundle.trustDomain).toBe('ackd.test');
    expect(loads).toBe(2);
    await client.getBundle();
    expect(loads).toBe(2); // cached after the reload
  });

  it('an unreachable bridge fails closed with ERR_ISSUER_UNAVAILABLE within the deadline', async () => {
    const port = await freePort(); // nothing listens here
    const minter = new SpireSvidMinter(new RemoteSpireClient({ url: `http://127.0.0.1:${port}`, secret: SECRET, timeoutMs: 1000 }));
    const t0 = Date.now();
    const err = await minter.mint(newSpiffeId(), new Date(Date.now() + 5 * 60_000)).catch((e: unknown) => e);
    expect(isAckdError(err, 'ERR_ISSUER_UNAVAILABLE')).toBe(true);
    expect(Date.now() - t0).toBeLessThan(3000);
  });
});

describe('SPIRE down behind a running bridge', () => {
  it('answers 503 → ERR_ISSUER_UNAVAILABLE while SPIRE is stopped, and mints again after it restarts', async () => {
    const minter = new SpireSvidMinter(new RemoteSpireClient({ url: bridgeUrl, secret: SECRET, timeoutMs: 8000 }));
    await spire.server.stop();
    const err = await minter.mint(newSpiffeId(), new Date(Date.now() + 5 * 60_000)).catch((e: unknown) => e);
    expect(isAckdError(err, 'ERR_ISSUER_UNAVAILABLE')).toBe(true);
    await spire.server.restart();
    let svid;
    for (let i = 0; i < 20 && !svid; i++) {
      svid = await minter.mint(newSpiffeId(), new Date(Date.now() + 5 * 60_000)).catch(() => undefined);
      if (!svid) await new Promise((r) => setTimeout(r, 250));
    }
    expect(svid?.certChainPem).toContain('BEGIN CERTIFICATE');
  }, 60_000);
});

describe('init container script (bundled)', () => {
  it('writes server.conf and prepares the socket directory for SPIRE_UID, mode 0770', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ackd-init-'));
    try {
      const uid = process.getuid!();
      const code = await new Promise<number | null>((resolve) => {
        const p = spawn(process.execPath, [join(contextDir, 'spire/sidecar/init.mjs')], {
          env: {
            SPIRE_SERVER_CONF: 'server { trust_domain = "ackd.test" }\n',
            SPIRE_CONF_FILE: join(dir, 'conf/server.conf'),
            SPIRE_SOCKET_DIR: join(dir, 'sockets'),
            SPIRE_UID: String(uid),
          },
          stdio: 'ignore',
        });
        p.on('exit', resolve);
      });
      expect(code).toBe(0);
      expect(readFileSync(join(dir, 'conf/server.conf'), 'utf8')).toContain('trust_domain = "ackd.test"');
      const st = statSync(join(dir, 'sockets'));
      expect(st.uid).toBe(uid);
      expect(st.mode & 0o777).toBe(0o770);
      const missing = await new Promise<number | null>((resolve) => {
        spawn(process.execPath, [join(contextDir, 'spire/sidecar/init.mjs')], { env: {}, stdio: 'ignore' }).on('exit', resolve);
      });
      expect(missing).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
