/**
 * The MCP function's bundle against a floor, side by side (issue 15, item 8):
 *
 *   npx tsx scripts/bundle-size.ts            # a table
 *   npx tsx scripts/bundle-size.ts --json     # one JSON object (npm run bench reads it)
 *   npx tsx scripts/bundle-size.ts --samples 31
 *
 * Both handlers — ackd's (lambdas/handlers/mcp.ts) and the floor, a minimal MCP + DynamoDB Lambda
 * (scripts/floor/mcp-dynamodb.ts) — are bundled with esbuild's JS API using exactly the options
 * of lib/constructs/api.ts BUNDLING (what NodejsFunction passes to esbuild), and the files the
 * deployed zip would hold are counted (index.mjs, plus the source map when BUNDLING ships one).
 * Cold import: each bundle is imported in a fresh `node` process (the time of `await import()`,
 * module evaluation and the handler's top-level initialisation included, Node's own start not),
 * the two alternating sample by sample so drift on a shared machine hits both alike; the median
 * of each is reported. Only the ratios mean anything across machines.
 *
 * Modules BUNDLING marks external (the AWS SDK v3, which the Lambda runtime provides) are
 * resolved from this repository's node_modules, as the runtime resolves them from its own.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type BuildOptions } from 'esbuild';
import { BUNDLING, LAMBDA_RUNTIME } from '../lib/constructs/api.ts';
import { REPO_ROOT } from '../lib/paths.ts';

export const ENTRIES = {
  ackd: 'lambdas/handlers/mcp.ts',
  floor: 'scripts/floor/mcp-dynamodb.ts',
} as const;
type Which = keyof typeof ENTRIES;

/**
 * BUNDLING's `esbuildArgs` (command-line flags NodejsFunction passes through) as JS API options.
 * A flag this does not know fails the measurement: both bundles must be built exactly as deployed.
 */
function esbuildArgsOf(args: Readonly<Record<string, string | boolean>> | undefined): BuildOptions {
  const out: BuildOptions = {};
  for (const [flag, value] of Object.entries(args ?? {})) {
    const v = String(value);
    switch (flag) {
      case '--tree-shaking':
        out.treeShaking = v === 'true';
        break;
      case '--conditions':
        out.conditions = v.split(',').filter(Boolean);
        break;
      case '--legal-comments':
        out.legalComments = v as NonNullable<BuildOptions['legalComments']>;
        break;
      default:
        throw new Error(`scripts/bundle-size.ts: BUNDLING.esbuildArgs ${flag} is not mirrored here; add it to esbuildArgsOf`);
    }
  }
  return out;
}

/** The esbuild options NodejsFunction derives from a BundlingOptions object (aws-lambda-nodejs's esbuild command line). */
export function esbuildOptionsOf(b: typeof BUNDLING): BuildOptions {
  const sourceMap = b.sourceMap as boolean;
  return {
    ...esbuildArgsOf(b.esbuildArgs),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: b.target,
    mainFields: [...b.mainFields],
    banner: { js: b.banner },
    minify: b.minify,
    sourcemap: sourceMap,
    sourcesContent: b.sourcesContent,
    external: [...b.externalModules],
    logLevel: 'error',
  };
}

/** Bytes of every file in `dir` (what the function's zip would hold, before compression). */
function dirBytes(dir: string): number {
  return readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

async function bundle(which: Which, outRoot: string): Promise<{ dir: string; bytes: number; files: string[] }> {
  const dir = join(outRoot, which);
  mkdirSync(dir, { recursive: true });
  await build({ ...esbuildOptionsOf(BUNDLING), absWorkingDir: REPO_ROOT, entryPoints: [join(REPO_ROOT, ENTRIES[which])], outfile: join(dir, 'index.mjs') });
  return { dir, bytes: dirBytes(dir), files: readdirSync(dir).sort() };
}

/**
 * The environment the deployed MCP function starts with (lib/stacks/ackd-stack.ts), with values
 * that need no network: its top-level initialisation runs as in Lambda, nothing is called.
 */
const CHILD_ENV: Record<string, string> = {
  PATH: process.env.PATH ?? '',
  // What Lambda sets: code that behaves differently inside Lambda (Powertools) does so here too.
  AWS_LAMBDA_FUNCTION_NAME: 'ackd-bench-Mcp',
  AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'bundle-size',
  AWS_SECRET_ACCESS_KEY: 'bundle-size',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  ACKD_STAGE: 'bench',
  ACKD_TRUST_DOMAIN: 'agents.acme-corp.io',
  ACKD_TABLE_NAME: 'ackd-bench',
  ACKD_RETENTION_DAYS: '365',
  ACKD_SENDER: 'ackd@acme-corp.io',
  ACKD_APPROVERS: 'alice@acme-corp.io',
  ACKD_LOG_LEVEL: 'error',
  ACKD_CONSENT_URL: 'https://consent.acme-corp.io',
  ACKD_MINTER: 'spire-remote',
  ACKD_SPIRE_BRIDGE_URL: 'http://spire-bridge.ackd-bench.internal:8080',
  ACKD_SPIRE_BRIDGE_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-AbCdEf',
  ACKD_DECISION_PUBLIC_KEY: 'kms:arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-000000000001',
  ACKD_RECEIPT_KEY: 'kms:arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-000000000002',
  ACKD_PASSKEY_REQUIRED: 'none',
  TABLE_NAME: 'floor',
};

/** Milliseconds one fresh node process takes to import the bundle in `dir`. */
function importMs(dir: string): number {
  const url = pathToFileURL(join(dir, 'index.mjs')).href;
  const code = `const t = performance.now(); const m = await import(${JSON.stringify(url)}); if (typeof m.handler !== 'function') throw new Error('no handler'); process.stdout.write(String(performance.now() - t));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { env: CHILD_ENV, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`importing ${dir}/index.mjs failed (exit ${r.status}): ${r.stderr}`);
  return Number(r.stdout);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const round = (x: number, d: number): number => Number(x.toFixed(d));

export interface BundleReport {
  bundle: { ackd: number; floor: number; ratio: number };
  coldImport: { ackd: number; floor: number; ratio: number; samples: number };
}

export async function measure(samples: number): Promise<BundleReport & { files: Record<Which, string[]> }> {
  const root = mkdtempSync(join(tmpdir(), 'ackd-bundle-size-'));
  try {
    // External modules resolve as they would on Lambda: from a node_modules above the bundle.
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(root, 'node_modules'), 'dir');
    const ackd = await bundle('ackd', root);
    const floor = await bundle('floor', root);
    importMs(ackd.dir); // warm the file cache once each: every sample then reads from memory
    importMs(floor.dir);
    const t: Record<Which, number[]> = { ackd: [], floor: [] };
    for (let i = 0; i < samples; i++) {
      const order: Which[] = i % 2 === 0 ? ['ackd', 'floor'] : ['floor', 'ackd'];
      for (const w of order) t[w].push(importMs(w === 'ackd' ? ackd.dir : floor.dir));
    }
    const ms = { ackd: median(t.ackd), floor: median(t.floor) };
    return {
      bundle: { ackd: ackd.bytes, floor: floor.bytes, ratio: round(ackd.bytes / floor.bytes, 3) },
      coldImport: { ackd: round(ms.ackd, 1), floor: round(ms.floor, 1), ratio: round(ms.ackd / ms.floor, 3), samples },
      files: { ackd: ackd.files, floor: floor.files },
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const si = args.indexOf('--samples');
  const samples = si >= 0 ? Number(args[si + 1]) : 21;
  if (!Number.isInteger(samples) || samples < 1) {
    console.error('--samples: must be a positive integer');
    process.exit(2);
  }
  const r = await measure(samples);
  if (json) {
    process.stdout.write(JSON.stringify({ bundle: r.bundle, coldImport: r.coldImport }) + '\n');
  } else {
    const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
    console.log(`esbuild: target ${BUNDLING.target}, runtime ${LAMBDA_RUNTIME.name}, external ${JSON.stringify(BUNDLING.externalModules)}, source map ${BUNDLING.sourceMap ? 'shipped' : 'none'}`);
    console.log(`${''.padEnd(14)}${'ackd'.padStart(12)}${'floor'.padStart(12)}${'ratio'.padStart(9)}`);
    console.log(`${'bundle'.padEnd(14)}${kib(r.bundle.ackd).padStart(12)}${kib(r.bundle.floor).padStart(12)}${r.bundle.ratio.toFixed(2).padStart(9)}`);
    console.log(`${'cold import'.padEnd(14)}${`${r.coldImport.ackd} ms`.padStart(12)}${`${r.coldImport.floor} ms`.padStart(12)}${r.coldImport.ratio.toFixed(2).padStart(9)}`);
    console.log(`files: ackd ${r.files.ackd.join(', ')}; floor ${r.files.floor.join(', ')}; ${samples} alternating samples each, median`);
  }
}
