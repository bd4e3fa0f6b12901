/**
 * What a Lambda bundle holds and why, from esbuild's metafile, built with exactly the options of
 * lib/constructs/api.ts BUNDLING (as scripts/bundle-size.ts builds it):
 *
 *   npx tsx scripts/bundle-graph.ts lambdas/handlers/mcp.ts                 # KiB per package
 *   npx tsx scripts/bundle-graph.ts lambdas/handlers/mcp.ts --why @peculiar/x509
 *
 * "At init" is what a cold start evaluates: every module reachable from the entry through static
 * imports and require() calls. A module reached only through `await import()` is in the same file
 * (esbuild does not split a Lambda bundle) but evaluated only when that import runs.
 * test/infra/bundle-mcp.test.ts uses this to keep heavy modules out of the MCP function.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type Metafile } from 'esbuild';
import { BUNDLING } from '../lib/constructs/api.ts';
import { REPO_ROOT } from '../lib/paths.ts';
import { esbuildOptionsOf } from './bundle-size.ts';

export interface BundleGraph {
  /** Bytes of the output file. */
  readonly bytes: number;
  /** Bytes in the output per package (`@scope/name`, or the repository folder such as `lambdas/core`). */
  readonly bytesByPackage: ReadonlyMap<string, number>;
  /** Every input that put at least one byte in the output (metafile paths). */
  readonly modules: readonly string[];
  /** The inputs a cold start evaluates (static imports and require() from the entry). */
  readonly atInit: ReadonlySet<string>;
  /** Bytes in the output of the inputs whose path contains `needle`. */
  bytesOf(needle: string): number;
  /** The shortest import chain from the entry to the first module whose path contains `needle` (static edges only with `atInit`); undefined when none. */
  why(needle: string, opts?: { atInit?: boolean }): string[] | undefined;
}

/** The package a metafile input belongs to: `@scope/name` or `name` under node_modules, else its first two path segments. */
export function packageOf(input: string): string {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
  if (m) return m[1]!;
  return input.split('/').slice(0, 2).join('/');
}

/** Builds `entry` (relative to the repository) as BUNDLING does, in memory, and reads its metafile. */
export async function bundleGraph(entry: string): Promise<BundleGraph> {
  const r = await build({ ...esbuildOptionsOf(BUNDLING), absWorkingDir: REPO_ROOT, entryPoints: [join(REPO_ROOT, entry)], outfile: join(REPO_ROOT, 'cdk.out', 'bundle-graph', 'index.mjs'), write: false, metafile: true });
  const meta: Metafile = r.metafile;
  const [output] = Object.values(meta.outputs);
  if (!output?.entryPoint) throw new Error(`scripts/bundle-graph.ts: esbuild produced no entry output for ${entry}`);
  const root = output.entryPoint;
  const present = Object.entries(output.inputs).filter(([, v]) => v.bytesInOutput > 0);
  const bytesByPackage = new Map<string, number>();
  for (const [p, v] of present) bytesByPackage.set(packageOf(p), (bytesByPackage.get(packageOf(p)) ?? 0) + v.bytesInOutput);

  const walk = (staticOnly: boolean): Map<string, string | null> => {
    const from = new Map<string, string | null>([[root, null]]);
    const queue = [root];
    while (queue.length > 0) {
      const at = queue.shift()!;
      for (const i of meta.inputs[at]?.imports ?? []) {
        if (i.external || (staticOnly && i.kind === 'dynamic-import') || from.has(i.path)) continue;
        from.set(i.path, at);
        queue.push(i.path);
      }
    }
    return from;
  };
  const all = walk(false);
  const init = walk(true);
  const inOutput = new Set(present.map(([p]) => p));
  return {
    bytes: output.bytes,
    bytesByPackage,
    modules: [...inOutput],
    atInit: new Set([...init.keys()].filter((p) => inOutput.has(p))),
    bytesOf: (needle) => present.reduce((n, [p, v]) => (p.includes(needle) ? n + v.bytesInOutput : n), 0),
    why(needle, opts = {}) {
      const from = opts.atInit ? init : all;
      const target = [...from.keys()].find((p) => p.includes(needle) && inOutput.has(p));
      if (!target) return undefined;
      const chain: string[] = [];
      for (let at: string | null | undefined = target; at; at = from.get(at)) chain.unshift(at);
      return chain;
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e; // piped into head: the reader has what it wanted
    process.exit(0);
  });
  const [entry, ...rest] = process.argv.slice(2);
  if (!entry) {
    console.error('usage: npx tsx scripts/bundle-graph.ts <entry> [--why <module path part>]');
    process.exit(2);
  }
  const g = await bundleGraph(entry);
  const wi = rest.indexOf('--why');
  if (wi >= 0) {
    const needle = rest[wi + 1] ?? '';
    const chain = g.why(needle, { atInit: true }) ?? g.why(needle);
    if (!chain) console.log(`${needle}: not in the bundle`);
    else console.log(`${needle}: ${g.atInit.has(chain.at(-1)!) ? 'evaluated at init' : 'in the bundle, evaluated on first use (await import)'}\n  ${chain.join('\n  ')}`);
  } else {
    console.log(`${entry}: ${(g.bytes / 1024).toFixed(0)} KiB`);
    for (const [pkg, n] of [...g.bytesByPackage].sort((a, b) => b[1] - a[1])) {
      const lazy = g.modules.filter((m) => packageOf(m) === pkg).every((m) => !g.atInit.has(m));
      console.log(`${pkg.padEnd(48)}${(n / 1024).toFixed(1).padStart(8)} KiB${lazy ? '  (first use)' : ''}`);
    }
  }
}
