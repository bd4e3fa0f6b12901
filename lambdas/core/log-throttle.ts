import type { Logger } from './ports.ts';

/**
 * Warnings about what a table writer put in the table, at most one per subject per window: a
 * flood of calls with one forged entry writes one line a minute, not one per call. The next line
 * after a quiet window says how many were left out (`suppressed`). Subjects are remembered up to
 * `max` (the oldest forgotten first), so many forged entries cannot grow memory without bound.
 */
export class ThrottledWarnings {
  private readonly last = new Map<string, { until: number; suppressed: number }>();

  constructor(
    private readonly logger: Logger | undefined,
    private readonly opts: { windowMs?: number; max?: number; now?: () => number } = {},
  ) {}

  warn(subject: string, message: string, fields: Record<string, unknown>): void {
    if (!this.logger) return;
    const now = (this.opts.now ?? Date.now)();
    const seen = this.last.get(subject);
    if (seen && seen.until > now) {
      seen.suppressed++;
      return;
    }
    this.last.delete(subject);
    this.last.set(subject, { until: now + (this.opts.windowMs ?? 60_000), suppressed: 0 });
    while (this.last.size > (this.opts.max ?? 1000)) this.last.delete(this.last.keys().next().value!);
    this.logger.warn(message, seen && seen.suppressed > 0 ? { ...fields, suppressed: seen.suppressed } : fields);
  }
}
