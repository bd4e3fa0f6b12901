/**
 * A real AWS API emulator for STS, IAM and S3 on this machine: moto's server (PyPI), installed
 * with pip into a virtual environment in a cache outside the repository the first time (about a
 * minute, with progress), like spire-server:
 *
 *   ${XDG_CACHE_HOME:-~/.cache}/ackd/moto/<version>/venv/bin/moto_server
 *
 * `provisionAwsDemo` gives it what ackd's broker needs, as on AWS: a broker user allowed to assume
 * and tag `demo-role` and to put deny policies on it, the role (trusting only the broker, allowed
 * to write one demo bucket) and the bucket; then it turns moto's IAM enforcement on
 * (`/moto-api/reset-auth` 0: every later call is authenticated and authorized against IAM
 * policies). What moto enforces and what it does not: docs/aws.md ("Locally").
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { access, constants, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CreateAccessKeyCommand, CreateRoleCommand, CreateUserCommand, IAMClient, PutRolePolicyCommand, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { AwsBrokerConfig } from '../adapters/aws/config.ts';
import { brokerTrustPolicy } from '../core/aws-roles.ts';

export const MOTO_VERSION = '5.2.5';
/** moto's default account. */
export const MOTO_ACCOUNT = '123456789012';
export const DEMO_ROLE = 'demo-role';
export const DEMO_REGION = 'us-east-1';

export interface AwsKeys {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

export function motoCacheDir(): string {
  const base = process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache');
  return join(base, 'ackd', 'moto', MOTO_VERSION);
}

const serverPath = (dir: string) => join(dir, 'venv', 'bin', 'moto_server');
const readyMark = (dir: string) => join(dir, 'venv', '.ackd-ready');

/** The cached moto_server if it is installed, without installing. */
export async function cachedMoto(dir = motoCacheDir()): Promise<string | undefined> {
  try {
    await access(readyMark(dir), constants.F_OK);
    await access(serverPath(dir), constants.X_OK);
    return serverPath(dir);
  } catch {
    return undefined;
  }
}

/** The Python 3 to build the environment with (3.9 or newer), or undefined when there is none. */
export async function findPython(): Promise<string | undefined> {
  for (const cmd of [process.env['ACKD_PYTHON'], 'python3', 'python'].filter((x): x is string => !!x)) {
    try {
      const out = await capture(cmd, ['-c', 'import sys, venv; print("%d.%d" % sys.version_info[:2])'], 30_000);
      const [maj, min] = out.trim().split('.').map(Number);
      if (maj === 3 && (min ?? 0) >= 9) return cmd;
    } catch {
      // next
    }
  }
  return undefined;
}

/**
 * Returns the path of moto_server, installing moto[server]==MOTO_VERSION into the cache first if
 * needed. Concurrent callers (tests, `npm start`) share one install through a lock directory.
 * Throws, saying why, when Python is missing or pip fails.
 */
export async function ensureMoto(opts: { log?: (line: string) => void; timeoutMs?: number; dir?: string } = {}): Promise<string> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`[moto] ${l}\n`));
  const dir = opts.dir ?? motoCacheDir();
  const timeoutMs = opts.timeoutMs ?? 15 * 60_000;
  const cached = await cachedMoto(dir);
  if (cached) return cached;
  await mkdir(dir, { recursive: true });
  const lock = join(dir, '.install.lock');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const age = Date.now() - (await stat(lock).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if (age > timeoutMs) {
        await rm(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for another moto install (lock ${lock})`, { cause: e });
      log('another process is installing moto; waiting for it');
      await new Promise((r) => setTimeout(r, 3000));
      const done = await cachedMoto(dir);
      if (done) return done;
    }
  }
  try {
    const again = await cachedMoto(dir);
    if (again) return again;
    const python = await findPython();
    if (!python) throw new Error('no Python 3.9+ on PATH (python3): install Python to run the AWS emulator (moto)');
    const venv = join(dir, 'venv');
    await rm(venv, { recursive: true, force: true });
    log(`installing moto ${MOTO_VERSION} (STS, IAM, S3 emulator) with pip into ${venv}; about a minute the first time`);
    await run(python, ['-m', 'venv', venv], { log, deadline });
    await run(join(venv, 'bin', 'python'), ['-m', 'pip', 'install', '--disable-pip-version-check', '--progress-bar', 'off', `moto[server]==${MOTO_VERSION}`], { log, deadline });
    await access(serverPath(dir), constants.X_OK);
    await writeFile(readyMark(dir), `${MOTO_VERSION}\n`);
    log(`moto ${MOTO_VERSION} ready: ${serverPath(dir)}`);
    return serverPath(dir);
  } catch (e) {
    await rm(join(dir, 'venv'), { recursive: true, force: true });
    throw e;
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

export interface MotoServer {
  readonly endpoint: string;
  stop(): Promise<void>;
}

/** Starts moto_server on 127.0.0.1 (`port` 0: a free one) and waits until it answers. `recordTo`: moto records every request it gets into this file. */
export async function startMoto(opts: { binary: string; port?: number; recordTo?: string; log?: (line: string) => void }): Promise<MotoServer> {
  const port = opts.port || (await freePort());
  const env: NodeJS.ProcessEnv = { ...process.env, ...(opts.recordTo ? { MOTO_ENABLE_RECORDING: 'true', MOTO_RECORDER_FILEPATH: opts.recordTo } : {}) };
  delete env.INITIAL_NO_AUTH_ACTION_COUNT;
  const child = spawn(opts.binary, ['-H', '127.0.0.1', '-p', String(port)], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-4000);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with ${child.exitCode} while starting: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
    try {
      const res = await fetch(`${endpoint}/moto-api/data.json`, { signal: AbortSignal.timeout(2000) });
      await res.body?.cancel();
      if (res.ok) break;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`moto_server did not answer on ${endpoint} within 60 s`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  opts.log?.(`moto ${MOTO_VERSION} listening on ${endpoint}`);
  return { endpoint, stop };
}

export interface AwsDemo {
  readonly endpoint: string;
  readonly region: string;
  readonly roleName: string;
  readonly roleArn: string;
  readonly bucket: string;
  /** The broker's credentials on the emulator (ackd assumes the role with them). */
  readonly broker: AwsKeys;
  readonly brokerArn: string;
  /** An administrator of the emulator (tests look with it; never the broker's). */
  readonly admin: AwsKeys;
}

/**
 * Gives the emulator the demo: users `ackd-admin` and `ackd-broker` with access keys, `demo-role`
 * (trusting only the broker, with ackd's session tags; allowed to read and write `bucket` only)
 * and the bucket; then turns IAM enforcement on for every later call.
 */
export async function provisionAwsDemo(endpoint: string, opts: { bucket?: string } = {}): Promise<AwsDemo> {
  const region = DEMO_REGION;
  const bucket = opts.bucket ?? 'ackd-demo-bucket';
  const anyKeys = { accessKeyId: 'ackd-setup', secretAccessKey: 'ackd-setup' };
  const iam = new IAMClient({ region, endpoint, credentials: anyKeys });
  const keysOf = async (user: string, policy: Record<string, unknown>): Promise<{ keys: AwsKeys; arn: string }> => {
    const u = await iam.send(new CreateUserCommand({ UserName: user }));
    await iam.send(new PutUserPolicyCommand({ UserName: user, PolicyName: `${user}-policy`, PolicyDocument: JSON.stringify(policy) }));
    const k = await iam.send(new CreateAccessKeyCommand({ UserName: user }));
    return { keys: { accessKeyId: k.AccessKey!.AccessKeyId!, secretAccessKey: k.AccessKey!.SecretAccessKey! }, arn: u.User!.Arn! };
  };
  const roleArn = `arn:aws:iam::${MOTO_ACCOUNT}:role/${DEMO_ROLE}`;
  const admin = await keysOf('ackd-admin', { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] });
  const broker = await keysOf('ackd-broker', {
    Version: '2012-10-17',
    Statement: [
      { Sid: 'AssumeOnlyConfiguredRoles', Effect: 'Allow', Action: ['sts:AssumeRole', 'sts:TagSession'], Resource: roleArn },
      { Sid: 'RevocationDenies', Effect: 'Allow', Action: ['iam:PutRolePolicy', 'iam:DeleteRolePolicy', 'iam:ListRolePolicies'], Resource: roleArn },
    ],
  });
  await iam.send(new CreateRoleCommand({ RoleName: DEMO_ROLE, AssumeRolePolicyDocument: JSON.stringify(brokerTrustPolicy(broker.arn)), MaxSessionDuration: 3600 }));
  await iam.send(
    new PutRolePolicyCommand({
      RoleName: DEMO_ROLE,
      PolicyName: 'demo-bucket-read-write',
      PolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Action: ['s3:PutObject', 's3:GetObject'], Resource: `arn:aws:s3:::${bucket}/*` },
          { Effect: 'Allow', Action: 's3:ListBucket', Resource: `arn:aws:s3:::${bucket}` },
        ],
      }),
    }),
  );
  await new S3Client({ region, endpoint, credentials: anyKeys, forcePathStyle: true }).send(new CreateBucketCommand({ Bucket: bucket }));
  const res = await fetch(`${endpoint}/moto-api/reset-auth`, { method: 'POST', body: '0' });
  if (!res.ok) throw new Error(`moto refused to turn IAM enforcement on (HTTP ${res.status})`);
  return { endpoint, region, roleName: DEMO_ROLE, roleArn, bucket, broker: broker.keys, brokerArn: broker.arn, admin: admin.keys };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function capture(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    child.once('exit', (code) => {
      clearTimeout(t);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} exited with ${code}`));
    });
  });
}

function run(cmd: string, args: string[], o: { log: (l: string) => void; deadline: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const onData = (b: Buffer) => {
      for (const line of b.toString().split('\n')) {
        const l = line.trim();
        if (!l) continue;
        tail = (tail + '\n' + l).slice(-2000);
        // pip's progress: one line per package it collects or installs.
        if (/^(Collecting|Successfully installed|ERROR)/.test(l)) o.log(l.length > 160 ? `${l.slice(0, 157)}...` : l);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    const t = setTimeout(() => child.kill('SIGKILL'), Math.max(1000, o.deadline - Date.now()));
    child.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(t);
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.slice(0, 3).join(' ')} failed (${signal ?? `exit ${code}`}): ${tail.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}

/** The broker's configuration for a provisioned emulator: the demo role, STS and IAM at the emulator, the broker's keys. */
export function demoBrokerConfig(d: AwsDemo): AwsBrokerConfig {
  return {
    roles: new Map([[d.roleName, { name: d.roleName, roleArn: d.roleArn, maxSessionSeconds: 3600, sessionPolicy: null }]]),
    client: { region: d.region, endpoint: d.endpoint, credentials: d.broker },
  };
}

/**
 * `npm start`'s AWS: moto installed (on first run) and started, the demo provisioned. Where Python
 * is missing or moto cannot be installed or started, says so and returns undefined: ackd runs
 * without the broker (every `aws:role/` permission is then refused at request time).
 */
export async function startLocalAws(log: { info(msg: string): void; warn(msg: string): void }, opts: { port?: number } = {}): Promise<{ demo: AwsDemo; config: AwsBrokerConfig; stop(): Promise<void> } | undefined> {
  let server: MotoServer | undefined;
  try {
    const binary = await ensureMoto({ log: (l) => log.info(`[moto] ${l}`) });
    server = await startMoto({ binary, port: opts.port ?? 0 });
    const demo = await provisionAwsDemo(server.endpoint);
    return { demo, config: demoBrokerConfig(demo), stop: server.stop };
  } catch (e) {
    await server?.stop();
    log.warn(`!! no AWS emulator: ${e instanceof Error ? e.message : String(e)}. ackd runs without the AWS credential broker (aws:role/ permissions are refused).`);
    return undefined;
  }
}

/** What `npm start` writes to .ackd/local.json about the emulator (its keys are the emulator's only: they open nothing on AWS). */
export function awsLocalInfo(d: AwsDemo, appUrl: string): Record<string, unknown> {
  return {
    awsEndpoint: d.endpoint,
    awsRegion: d.region,
    awsDemoBucket: d.bucket,
    awsRoles: { [d.roleName]: d.roleArn },
    awsBrokerUrl: `${appUrl}/v1/aws/credentials`,
    awsBrokerAccessKeyId: d.broker.accessKeyId,
    awsBrokerSecretAccessKey: d.broker.secretAccessKey,
    awsAdminAccessKeyId: d.admin.accessKeyId,
    awsAdminSecretAccessKey: d.admin.secretAccessKey,
  };
}

/** The broker's configuration from .ackd/local.json (the CLI's revocations deny on the emulator too). */
export function awsConfigFromLocalInfo(info: Record<string, unknown>): AwsBrokerConfig | undefined {
  const roles = info.awsRoles as Record<string, string> | undefined;
  if (typeof info.awsEndpoint !== 'string' || !roles || typeof info.awsBrokerAccessKeyId !== 'string' || typeof info.awsBrokerSecretAccessKey !== 'string') return undefined;
  return {
    roles: new Map(Object.entries(roles).map(([name, roleArn]) => [name, { name, roleArn, maxSessionSeconds: 3600, sessionPolicy: null }])),
    client: { region: typeof info.awsRegion === 'string' ? info.awsRegion : DEMO_REGION, endpoint: info.awsEndpoint, credentials: { accessKeyId: info.awsBrokerAccessKeyId, secretAccessKey: info.awsBrokerSecretAccessKey } },
  };
}
