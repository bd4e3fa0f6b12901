/**
 * Issue 15 item 4, the HA shape for real: two spire-server processes (the v1.15.3 binary the
 * suite builds) sharing ONE PostgreSQL datastore, each with its own CA keys, as two SPIRE tasks
 * share Aurora on AWS (lib/constructs/spire.ts, spireServers 2). What this pins:
 *  - both servers start on the shared datastore and both mint;
 *  - the bundle either server returns holds both servers' CAs, so ackd's verifier (ackd/verify)
 *    accepts an SVID from either against the bundle fetched from either, and the SPIFFE bundle
 *    document (/.well-known/spiffe-bundle, and the last known copy, which is that PEM) lists both;
 *  - with one server stopped the other goes on minting.
 * Differences from AWS, on purpose: the disk key manager instead of aws_kms (no KMS here), and
 * TLS off (sslmode=disable) to a PostgreSQL that listens on 127.0.0.1 only; the template tests
 * (spire-ha.test.ts) pin TLS and KMS. PostgreSQL is the machine's own (initdb/postgres on PATH or
 * in /usr/lib/postgresql/<version>/bin); like spire-server, the test FAILS when it cannot be had.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpiffeId, newRequestId, parseAgentId, parseTrustDomain } from '../../lambdas/core/ids.ts';
import { spiffeBundleFromPem } from '../../lambdas/http/svid-routes.ts';
import { verifySvid } from '../../lambdas/verify/index.ts';
import { SpireClient } from '../../spire/bridge/client.ts';
import { SpireSvidMinter } from '../../spire/bridge/minter.ts';
import { ensureSpireServer } from '../../spire/build.ts';
import { SPIRE_BUILD_TIMEOUT_MS } from '../helpers/spire.ts';

const TD = parseTrustDomain('ha.ackd.test');
const root = mkdtempSync(join(tmpdir(), 'ackd-ha-'));
const children: ChildProcess[] = [];

function pgBin(name: string): string {
  const onPath = (() => {
    try {
      return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
    } catch {
      return '';
    }
  })();
  if (onPath) return onPath;
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (existsSync(join(base, v, 'bin', name))) return join(base, v, 'bin', name);
  throw new Error(`PostgreSQL's ${name} is not installed (on PATH or in ${base}/<version>/bin): this test needs a local PostgreSQL server`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** PostgreSQL refuses to run as root: then it runs as the `postgres` user. */
function pgUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

async function waitFor<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} did not happen in ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
}

interface Server {
  readonly client: SpireClient;
  readonly minter: SpireSvidMinter;
  readonly proc: ChildProcess;
  log: string;
}

let pgPort: number;
const servers: Server[] = [];

async function startServer(binary: string, name: string): Promise<Server> {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const socketPath = join(dir, 'api.sock');
  const conf = `server {
    bind_address = "127.0.0.1"
    bind_port = "${await freePort()}"
    socket_path = "${socketPath}"
    trust_domain = "${TD}"
    data_dir = "${dir}"
    log_level = "WARN"
    ca_key_type = "ec-p256"
    ca_ttl = "24h"
    ca_subject {
        organization = ["ackd"]
        common_name = "${TD}"
    }
}
plugins {
    DataStore "sql" {
        plugin_data {
            database_type = "postgres"
            connection_string = "host=127.0.0.1 port=${pgPort} dbname=postgres user=spire sslmode=disable connect_timeout=10"
        }
    }
    KeyManager "disk" {
        plugin_data {
            keys_path = "${join(dir, 'keys.json')}"
        }
    }
    NodeAttestor "join_token" {
        plugin_data {}
    }
}
`;
  writeFileSync(join(dir, 'server.conf'), conf);
  const proc = spawn(binary, ['run', '-config', join(dir, 'server.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proc);
  const client = new SpireClient({ socketPath, timeoutMs: 3000 });
  const s: Server = { client, minter: new SpireSvidMinter(client), proc, log: '' };
  proc.stdout!.on('data', (d: Buffer) => (s.log += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (s.log += d.toString()));
  await waitFor(`spire-server ${name} answering on its socket`, async () => (existsSync(socketPath) ? (await client.getBundle()).x509Authorities.length : undefined), 60_000).catch((e: unknown) => {
    throw new Error(`${String(e)}\n${s.log}`);
  });
  return s;
}

const newSpiffeId = () => SpiffeId.forRequest(TD, parseAgentId('agent-ha'), newRequestId(Date.now()));
const pemCount = (pem: string) => pem.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;

beforeAll(async () => {
  const binary = await ensureSpireServer();
  const user = pgUser();
  const pgData = join(root, 'pg');
  mkdirSync(pgData);
  if (user) {
    chownSync(root, user.uid, user.gid);
    chownSync(pgData, user.uid, user.gid);
  }
  const as = user ? { uid: user.uid, gid: user.gid } : {};
  execFileSync(pgBin('initdb'), ['-D', pgData, '-U', 'spire', '--auth=trust', '-E', 'UTF8', '--no-instructions'], { stdio: 'ignore', ...as });
  pgPort = await freePort();
  const pg = spawn(pgBin('postgres'), ['-D', pgData, '-h', '127.0.0.1', '-p', String(pgPort), '-k', root, '-c', 'fsync=off', '-c', 'max_connections=100'], { stdio: 'ignore', ...as });
  children.push(pg);
  await waitFor('PostgreSQL accepting connections', async () => {
    execFileSync(pgBin('pg_isready'), ['-h', '127.0.0.1', '-p', String(pgPort)], { stdio: 'ignore' });
    return true;
  });
  // One after the other: the first creates the schema, the second finds it (as two tasks do).
  servers.push(await startServer(binary, 'server-a'));
  servers.push(await startServer(binary, 'server-b'));
}, SPIRE_BUILD_TIMEOUT_MS);

afterAll(async () => {
  for (const s of servers) s.client.close();
  for (const c of children.reverse()) {
    if (c.exitCode === null && c.signalCode === null) {
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
  }
  rmSync(root, { recursive: true, force: true });
}, 60_000);

describe('two SPIRE servers on one PostgreSQL datastore', () => {
  it('each has its own CA, and the bundle from either holds both', async () => {
    const [a, b] = servers as [Server, Server];
    const both = await waitFor('both CAs in both servers\' bundles', async () => {
      const [pa, pb] = await Promise.all([a.minter.trustBundlePem(), b.minter.trustBundlePem()]);
      return pemCount(pa) >= 2 && pemCount(pb) >= 2 ? { pa, pb } : undefined;
    });
    const subjects = (pem: string) => new Set(pem.split(/(?=-----BEGIN CERTIFICATE-----)/).map((c) => new X509Certificate(c).subject));
    expect(subjects(both.pa)).toEqual(subjects(both.pb));
    expect(subjects(both.pa).size).toBe(pemCount(both.pa)); // every CA its own subject (SPIRE adds the serial number)
    const doc = await spiffeBundleFromPem(both.pa);
    expect(doc.keys.length).toBe(pemCount(both.pa));
    // One bundle row in the one datastore both servers write: they share it, not two copies.
    const rows = execFileSync(pgBin('psql'), ['-h', '127.0.0.1', '-p', String(pgPort), '-U', 'spire', '-d', 'postgres', '-tAc', 'select count(*) from bundles'], { encoding: 'utf8' }).trim();
    expect(rows).toBe('1');
  }, 60_000);

  it('an SVID from either server verifies against the bundle fetched from either; the two come from different CAs', async () => {
    const [a, b] = servers as [Server, Server];
    const notAfter = new Date(Date.now() + 10 * 60_000);
    const [sa, sb] = await Promise.all([a.minter.mint(newSpiffeId(), notAfter), b.minter.mint(newSpiffeId(), notAfter)]);
    const issuer = (pem: string) => new X509Certificate(pem.split(/(?=-----BEGIN CERTIFICATE-----)/)[0]!).issuer;
    expect(issuer(sa.certChainPem)).not.toBe(issuer(sb.certChainPem));
    for (const bundle of [await a.minter.trustBundlePem(), await b.minter.trustBundlePem()]) {
      for (const svid of [sa, sb]) {
        const v = await verifySvid(svid.certChainPem, { bundle });
        expect(v.trust_domain).toBe(TD);
      }
    }
  }, 60_000);

  it('with one server stopped, the other keeps minting, and its SVIDs still verify against the bundle it gives', async () => {
    const [a, b] = servers as [Server, Server];
    a.client.close();
    const exited = new Promise((r) => a.proc.once('exit', r));
    a.proc.kill('SIGTERM');
    await exited;
    const svid = await b.minter.mint(newSpiffeId(), new Date(Date.now() + 5 * 60_000));
    const bundle = await b.minter.trustBundlePem();
    expect(pemCount(bundle)).toBeGreaterThanOrEqual(2); // the stopped server's CA stays until it expires
    await expect(verifySvid(svid.certChainPem, { bundle })).resolves.toMatchObject({ spiffe_id: expect.stringContaining('/agent/agent-ha/') });
  }, 60_000);
});
