/**
 * Rows measured by code other engineers own, run when it is there: verifyAckdSvid offline
 * (test/bench/verify-svid.ts, imported) and the MCP Lambda bundle and cold import
 * (`scripts/bundle-size.ts --json`, run as a child process). Until then the row says it is absent.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { absentRow, latencyRow, parseLastJson, rateRow, type Row } from './report.ts';

const require = createRequire(import.meta.url);

export interface VerifyMeasure {
  measureVerify(opts?: { seconds?: number }): Promise<{ ackdPerSec: number; floorPerSec: number; ratio: number; samples: number }>;
}

export interface BundleReport {
  readonly bundle: { ackd: number; floor: number; ratio: number };
  readonly coldImport: { ackd: number; floor: number; ratio: number; samples: number };
}

/** verifyAckdSvid offline vs Node's own parse + X509Certificate.verify, from `<root>/test/bench/verify-svid.ts`. */
export async function verifyRow(root: string, seconds: number): Promise<Row> {
  const path = join(root, 'test', 'bench', 'verify-svid.ts');
  if (!existsSync(path)) return absentRow('verify.svid', 'verifyAckdSvid offline', 'verify row: test/bench/verify-svid.ts not present');
  try {
    const mod = (await import(pathToFileURL(path).href)) as VerifyMeasure;
    const m = await mod.measureVerify({ seconds });
    return rateRow('verify.svid', 'verifyAckdSvid offline', m.ackdPerSec, m.floorPerSec, `${m.samples}`, 0.5, "floor: Node's own parse + X509Certificate.verify");
  } catch (e) {
    return absentRow('verify.svid', 'verifyAckdSvid offline', `test/bench/verify-svid.ts failed: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** MCP Lambda bundle size and cold import vs a minimal MCP + DynamoDB Lambda, from `<root>/scripts/bundle-size.ts --json`. */
export async function bundleRows(root: string): Promise<Row[]> {
  const script = join(root, 'scripts', 'bundle-size.ts');
  if (!existsSync(script)) return [absentRow('bundle.size', 'MCP Lambda bundle / cold import', 'scripts/bundle-size.ts not present')];
  try {
    // `npx tsx scripts/bundle-size.ts --json`, with this checkout's tsx (never a download).
    const { stdout } = await promisify(execFile)(process.execPath, [require.resolve('tsx/cli'), script, '--json'], { cwd: root, timeout: 600_000, maxBuffer: 16 * 2 ** 20 });
    const { bundle: b, coldImport: c } = parseLastJson(stdout) as BundleReport;
    return [
      {
        id: 'bundle.size',
        what: 'MCP Lambda bundle size',
        ackd: b.ackd / 1024,
        floor: b.floor / 1024,
        unit: 'KiB',
        ratio: b.ratio,
        target: '≤ 1.3×',
        pass: b.ratio <= 1.3,
        samples: '1 + 1',
        note: 'floor: a minimal MCP + DynamoDB Lambda',
      },
      latencyRow('bundle.coldImport', 'MCP Lambda cold import', c.ackd, c.floor, `${c.samples}`, 1.3, 'floor: a minimal MCP + DynamoDB Lambda'),
    ];
  } catch (e) {
    return [absentRow('bundle.size', 'MCP Lambda bundle / cold import', `scripts/bundle-size.ts --json failed: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`)];
  }
}
