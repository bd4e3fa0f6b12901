/** The benchmark's rows, the printed table, the machine line and test-output/bench.json. */
import { cpus, loadavg, platform, release, totalmem } from 'node:os';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface Row {
  /** Stable id, for comparing runs (bench.json). */
  readonly id: string;
  /** What is measured, as printed. */
  readonly what: string;
  readonly ackd: number | null;
  readonly floor: number | null;
  readonly unit: string;
  /** ackd ÷ floor. For latencies lower is better, for throughputs higher. */
  readonly ratio: number | null;
  /** The issue's target, as printed (e.g. "≤ 1.2×"); null: reported only. */
  readonly target: string | null;
  /** PASS / MISS against the target; null when there is no target or nothing was measured. */
  readonly pass: boolean | null;
  /** How many samples each side: "200 + 200" (ackd + floor). */
  readonly samples: string;
  readonly note?: string;
}

export interface Machine {
  readonly cores: number;
  readonly cpu: string;
  readonly memoryGiB: number;
  readonly node: string;
  readonly os: string;
  readonly loadavgAtStart: number[];
  readonly date: string;
}

export function machine(): Machine {
  const c = cpus();
  return {
    cores: c.length,
    cpu: c[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    os: `${platform()} ${release()}`,
    loadavgAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
    date: new Date().toISOString(),
  };
}

export function describeMachine(m: Machine): string {
  return `machine: ${m.cores} cores, ${m.cpu}, ${m.memoryGiB} GiB, Node ${m.node}, ${m.os}, load average at start ${m.loadavgAtStart.join(' / ')}, ${m.date}`;
}

function num(v: number | null, unit: string): string {
  if (v === null || !Number.isFinite(v)) return '-';
  const digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : Math.abs(v) >= 1 ? 2 : 3;
  return `${v.toFixed(digits)}${unit ? ` ${unit}` : ''}`;
}

export function ratioText(r: number | null): string {
  return r === null || !Number.isFinite(r) ? '-' : `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`;
}

function verdict(p: boolean | null): string {
  return p === null ? '' : p ? 'PASS' : 'MISS';
}

/** The rows as an aligned text table, notes below it. */
export function table(rows: readonly Row[]): string {
  const head = ['row', 'ackd', 'floor', 'ratio', 'target', 'result', 'samples'];
  const cells = rows.map((r) => [r.what, num(r.ackd, r.unit), num(r.floor, r.unit), ratioText(r.ratio), r.target ?? '', verdict(r.pass), r.samples]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => (i === 0 ? x.padEnd(widths[i]!) : i === c.length - 1 ? x : x.padStart(widths[i]!))).join('  ');
  const out = [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)];
  const notes = rows.filter((r) => r.note).map((r) => `  ${r.what}: ${r.note}`);
  if (notes.length > 0) out.push('', 'notes:', ...notes);
  return out.join('\n');
}

export async function writeJson(path: string, value: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** A latency row: p-th percentile of each side, ratio ackd ÷ floor, PASS when the ratio is at most `maxRatio`. */
export function latencyRow(id: string, what: string, ackd: number, floor: number, samples: string, maxRatio: number | null, note?: string): Row {
  const ratio = ackd / floor;
  return {
    id,
    what,
    ackd,
    floor,
    unit: 'ms',
    ratio,
    target: maxRatio === null ? null : `≤ ${maxRatio}×`,
    pass: maxRatio === null || !Number.isFinite(ratio) ? null : ratio <= maxRatio,
    samples,
    ...(note ? { note } : {}),
  };
}

/** A throughput row (per second): ratio ackd ÷ floor, PASS when at least `minRatio`. */
export function rateRow(id: string, what: string, ackd: number, floor: number, samples: string, minRatio: number | null, note?: string): Row {
  const ratio = ackd / floor;
  return {
    id,
    what,
    ackd,
    floor,
    unit: '/s',
    ratio,
    target: minRatio === null ? null : `≥ ${minRatio}×`,
    pass: minRatio === null || !Number.isFinite(ratio) ? null : ratio >= minRatio,
    samples,
    ...(note ? { note } : {}),
  };
}

/** A value with no floor (store calls, reads per agent per second, a delay), PASS when at most `max`. */
export function valueRow(id: string, what: string, value: number | null, unit: string, samples: string, max: number | null, opts: { floor?: number; target?: string; note?: string } = {}): Row {
  const floor = opts.floor ?? null;
  return {
    id,
    what,
    ackd: value,
    floor,
    unit,
    ratio: floor === null || value === null ? null : value / floor,
    target: opts.target ?? (max === null ? null : `≤ ${max}${unit ? ` ${unit}` : ''}`),
    pass: max === null || value === null || !Number.isFinite(value) ? null : value <= max,
    samples,
    ...(opts.note ? { note: opts.note } : {}),
  };
}

/** A row that could not be measured in this run, saying why. */
export function absentRow(id: string, what: string, why: string): Row {
  return { id, what, ackd: null, floor: null, unit: '', ratio: null, target: null, pass: null, samples: '-', note: why };
}

/** The JSON a child process printed: all of stdout, or else its last line that starts a JSON object. */
export function parseLastJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    const start = text.lastIndexOf('\n{');
    return JSON.parse(start >= 0 ? text.slice(start + 1) : text);
  }
}
