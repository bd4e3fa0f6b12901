import { AckdError } from './errors.ts';
import type { ExportWindow } from './audit/service.ts';

/** Where the daily archive writes, in the archive bucket: `audit/YYYY/MM/DD.jsonl`. */
export const ARCHIVE_PREFIX = 'audit/';

/** One UTC day of the audit log to archive: its export window and the object it is written to. */
export interface ArchiveDay {
  /** YYYY-MM-DD (UTC). */
  readonly day: string;
  /** The window asked of `AuditService.export`: [since, until), the whole UTC day. */
  readonly window: Required<ExportWindow>;
  /** The object key, `audit/YYYY/MM/DD.jsonl`. */
  readonly key: string;
}

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
const MS_PER_DAY = 86_400_000;

/** The archive of one UTC day (`YYYY-MM-DD`). */
export function archiveDay(day: string): ArchiveDay {
  const m = DAY.exec(day);
  const start = m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : NaN;
  if (!m || Number.isNaN(start) || new Date(start).toISOString().slice(0, 10) !== day) {
    throw new AckdError('ERR_INVALID_INPUT', `day: must be a UTC date like 2026-11-01 (got ${JSON.stringify(day)})`, { field: 'day' });
  }
  return {
    day,
    window: { since: new Date(start).toISOString(), until: new Date(start + MS_PER_DAY).toISOString() },
    key: `${ARCHIVE_PREFIX}${m[1]}/${m[2]}/${m[3]}.jsonl`,
  };
}

/**
 * The day one invocation archives: the UTC day before the schedule's `time` (EventBridge's
 * scheduled event), or an explicit `{"day": "YYYY-MM-DD"}` to archive (or re-try) a past day by
 * hand. A day that has not ended yet at `now` is refused: its archive would be incomplete, and
 * it could never be completed (archives are written once).
 */
export function archiveDayOf(event: unknown, now: Date): ArchiveDay {
  const e = (typeof event === 'object' && event !== null ? event : {}) as { day?: unknown; time?: unknown };
  let target: ArchiveDay;
  if (e.day !== undefined) {
    if (typeof e.day !== 'string') throw new AckdError('ERR_INVALID_INPUT', 'day: must be a UTC date like 2026-11-01', { field: 'day' });
    target = archiveDay(e.day);
  } else {
    const at = typeof e.time === 'string' ? Date.parse(e.time) : now.getTime();
    if (Number.isNaN(at)) throw new AckdError('ERR_INVALID_INPUT', `time: must be an ISO-8601 time (got ${JSON.stringify(e.time)})`, { field: 'time' });
    target = archiveDay(new Date(at - MS_PER_DAY).toISOString().slice(0, 10));
  }
  if (Date.parse(target.window.until) > now.getTime()) {
    throw new AckdError('ERR_INVALID_INPUT', `day: ${target.day} has not ended yet (UTC); only past days are archived`, { field: 'day' });
  }
  return target;
}
