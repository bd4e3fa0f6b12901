/** Timing helpers of the benchmark: percentiles, interleaved pairs, closed-loop throughput. */

export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** The p-th percentile (0–100) of `xs`, nearest rank; NaN for none. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export const p50 = (xs: readonly number[]): number => percentile(xs, 50);

/** Duration of one call in ms. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = nowMs();
  await fn();
  return nowMs() - t0;
}

/**
 * Latencies of `a` and `b`, interleaved A B, B A, A B, … so that drift (other load on a shared
 * machine, a warming JIT, a growing table) hits both alike. `warm` pairs first are not kept.
 * Each function gets its own running index (0, 1, …; the warm-up calls included).
 */
export async function interleaved(
  n: number,
  warm: number,
  a: (i: number) => Promise<unknown>,
  b: (i: number) => Promise<unknown>,
): Promise<{ a: number[]; b: number[] }> {
  const out = { a: [] as number[], b: [] as number[] };
  for (let i = 0; i < warm + n; i++) {
    const keep = i >= warm;
    const runA = async () => {
      const ms = await timed(() => a(i));
      if (keep) out.a.push(ms);
    };
    const runB = async () => {
      const ms = await timed(() => b(i));
      if (keep) out.b.push(ms);
    };
    if (i % 2 === 0) {
      await runA();
      await runB();
    } else {
      await runB();
      await runA();
    }
  }
  return out;
}

export interface LoopResult {
  readonly completed: number;
  readonly errors: number;
  /** From the start to the moment the last call in flight finished. */
  readonly elapsedMs: number;
  readonly latencies: number[];
  readonly firstError?: string;
}

/**
 * A closed loop: `callers` workers each call `call(worker, i)` back to back until `seconds` have
 * passed, then finish the call in flight. Throughput is completed / elapsed (the drain included).
 */
export async function closedLoop(callers: number, seconds: number, call: (worker: number, i: number) => Promise<unknown>): Promise<LoopResult> {
  const t0 = nowMs();
  const deadline = t0 + seconds * 1000;
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  await Promise.all(
    Array.from({ length: callers }, async (_, w) => {
      for (let i = 0; nowMs() < deadline; i++) {
        const s = nowMs();
        try {
          await call(w, i);
          latencies.push(nowMs() - s);
        } catch (e) {
          errors++;
          firstError ??= e instanceof Error ? e.message : String(e);
        }
      }
    }),
  );
  return { completed: latencies.length, errors, elapsedMs: nowMs() - t0, latencies, ...(firstError ? { firstError } : {}) };
}

/** Runs `fn` over `items` with at most `limit` at once. */
export async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
