/**
 * Benchmark (issue 12): offline verification of an ackd X.509-SVID against a trust bundle, as a
 * ratio to the floor measured in the same run on the same machine.
 *
 * - floor: what Node itself does for the same chain: `new X509Certificate(pem)` for each
 *   certificate presented (here the leaf: SPIRE as its own CA, no intermediate) and
 *   `leaf.verify(caKey)` with the CA's public key read once. No SPIFFE rule, no path rule.
 * - ackd, one-shot: `verifyAckdSvid(chainPem, { bundle: bundlePem, expect: { requestId } })`, as
 *   the protected-resource example and `ackd svid verify` call it (the bundle text on every call;
 *   ackd/verify keeps prepared bundles by content).
 * - ackd, kept verifier: `createSvidVerifier(bundlePem).verifyAckdSvid(chainPem, …)`.
 *
 * The SVID is minted at run time by ackd's own in-process CA (lambdas/adapters/local-ca), so it
 * has exactly the shape ackd issues; nothing is read from disk. The three are timed in alternating
 * batches (a shared machine is noisy: alternating lets every form see the same load), each batch
 * gives a rate, and the medians are reported. The ratio is the median of the per-round ratios
 * (each ackd batch against the floor batch next to it).
 *
 *   npx tsx test/bench/verify-svid.ts [seconds]
 */
import { X509Certificate } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { LocalCaMinter } from '../../lambdas/adapters/local-ca/index.ts';
import { SpiffeId, parseTrustDomain } from '../../lambdas/core/ids.ts';
import { createSvidVerifier, verifyAckdSvid } from '../../lambdas/verify/index.ts';

const TRUST_DOMAIN = 'bench.ackd.test';
const REQUEST_ID = 'req_01m8097t68bqmsxsfk9emc3g6q';
/** One timed batch of one form. */
const BATCH_MS = 25;
/** Untimed calls of each form before measuring (JIT, caches). */
const WARM_CALLS = 300;

export interface FormStats {
  /** Median verifications per second over the batches. */
  readonly perSec: number;
  /** Median over rounds of (this form's rate / the floor's rate in the same round). */
  readonly ratio: number;
}

export interface VerifyBenchDetail {
  readonly floorPerSec: number;
  readonly oneShot: FormStats;
  readonly kept: FormStats;
  /** Rounds (batches of each form). */
  readonly samples: number;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Runs op until BATCH_MS have passed; returns calls per second. */
async function batch(op: () => unknown): Promise<number> {
  let n = 0;
  const t0 = performance.now();
  let t: number;
  do {
    // a few calls between clock reads
    for (let i = 0; i < 8; i++) await op();
    n += 8;
    t = performance.now();
  } while (t - t0 < BATCH_MS);
  return (n * 1000) / (t - t0);
}

/** Measures the floor, the one-shot and the kept-verifier forms; see the module comment. */
export async function measureVerifyDetail(opts: { seconds?: number } = {}): Promise<VerifyBenchDetail> {
  const seconds = opts.seconds ?? 3;
  const minter = await LocalCaMinter.create({ trustDomain: parseTrustDomain(TRUST_DOMAIN) });
  const spiffeId = SpiffeId.parse(`spiffe://${TRUST_DOMAIN}/agent/bench-agent/${REQUEST_ID}`);
  const minted = await minter.mint(spiffeId, new Date(Date.now() + 3600_000));
  const bundlePem = await minter.trustBundlePem();
  const chainPem = minted.certChainPem; // leaf first; the private key the agent holds is not presented
  const chainBlocks = chainPem.match(/-----BEGIN CERTIFICATE-----[^-]*-----END CERTIFICATE-----/g) ?? [];
  if (chainBlocks.length !== 1) throw new Error(`expected an intermediate-free chain, got ${chainBlocks.length} certificates`);

  const caKey = new X509Certificate(bundlePem).publicKey;
  const floor = () => {
    const certs = chainBlocks.map((pem) => new X509Certificate(pem));
    if (!certs[0]!.verify(caKey)) throw new Error('floor: the SVID does not verify');
  };
  const expect = { requestId: REQUEST_ID };
  const check = (r: { svid: { spiffe_id: string } }) => {
    if (r.svid.spiffe_id !== spiffeId.toString()) throw new Error('ackd/verify returned another SPIFFE ID');
  };
  const oneShot = async () => check(await verifyAckdSvid(chainPem, { bundle: bundlePem, expect }));
  const verifier = createSvidVerifier(bundlePem);
  const kept = async () => check(await verifier.verifyAckdSvid(chainPem, { expect }));

  for (let i = 0; i < WARM_CALLS; i++) {
    floor();
    await oneShot();
    await kept();
  }

  const rates = { floor: [] as number[], oneShot: [] as number[], kept: [] as number[] };
  const started = performance.now();
  let round = 0;
  do {
    // rotate which form goes first, so none always runs right after another
    const order = [
      ['floor', floor],
      ['oneShot', oneShot],
      ['kept', kept],
    ] as const;
    for (let k = 0; k < order.length; k++) {
      const [name, op] = order[(k + round) % order.length]!;
      rates[name].push(await batch(op));
    }
    round++;
  } while (performance.now() - started < seconds * 1000 || round < 3);

  const ratios = (xs: readonly number[]) => median(xs.map((x, i) => x / rates.floor[i]!));
  return {
    floorPerSec: median(rates.floor),
    oneShot: { perSec: median(rates.oneShot), ratio: ratios(rates.oneShot) },
    kept: { perSec: median(rates.kept), ratio: ratios(rates.kept) },
    samples: round,
  };
}

/**
 * The issue-12 row: the one-shot `verifyAckdSvid(chain, { bundle })` form against the floor
 * (the kept verifier is measured too; see measureVerifyDetail).
 */
export async function measureVerify(opts?: { seconds?: number }): Promise<{ ackdPerSec: number; floorPerSec: number; ratio: number; samples: number }> {
  const d = await measureVerifyDetail(opts);
  return { ackdPerSec: d.oneShot.perSec, floorPerSec: d.floorPerSec, ratio: d.oneShot.ratio, samples: d.samples };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const seconds = process.argv[2] !== undefined ? Number(process.argv[2]) : 5;
  if (!Number.isFinite(seconds) || seconds <= 0) throw new Error('usage: npx tsx test/bench/verify-svid.ts [seconds]');
  const d = await measureVerifyDetail({ seconds });
  const row = (label: string, perSec: number, ratio?: number) =>
    process.stdout.write(`${label.padEnd(52)} ${perSec.toFixed(0).padStart(7)} /s${ratio === undefined ? '' : `   ${ratio.toFixed(2)}x floor`}\n`);
  row('floor: Node X509Certificate parse + verify', d.floorPerSec);
  row('ackd verifyAckdSvid(chain, { bundle }) (one-shot)', d.oneShot.perSec, d.oneShot.ratio);
  row('ackd createSvidVerifier(bundle).verifyAckdSvid', d.kept.perSec, d.kept.ratio);
  process.stdout.write(`(${d.samples} alternating rounds of ${BATCH_MS} ms batches; medians)\n`);
}
