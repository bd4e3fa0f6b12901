import { canonicalJson, sha256Hex } from '../jcs.ts';
import type { RefusalReason } from './sequencer.ts';

/**
 * What the sequencer keeps of an outbox entry it refused (sequencer.ts `screen`): where it was,
 * why, the entry as found, and when. The DynamoDB adapter stores it as `audit#quarantine#<id>`,
 * listed by time on the audit-log index under `quarantine#<YYYY-MM-DD>` (its own partitions,
 * which no reader of the log queries); the in-memory store keeps the same records in a list.
 */
export interface QuarantineRecord {
  /** SHA-256 (hex) of the canonical JSON of `{source, entry}`: quarantining the same entry from the same place again overwrites its record. */
  readonly id: string;
  /** The item the entry was in: `req#<request_id>` or `audit#admin#<event_id>`. */
  readonly source: string;
  /** A RefusalReason as the sequencer wrote it (read back as stored: a table writer may have written anything). */
  readonly reason: string;
  readonly message: string;
  /** The entry as found; null when its canonical JSON is over QUARANTINE_ENTRY_MAX_BYTES (then only its size and digest are kept). */
  readonly entry: unknown;
  readonly entry_bytes: number;
  readonly entry_sha256: string;
  /** ISO time of the sequencer's clock when it refused the entry. */
  readonly quarantined_at: string;
}

/** The largest refused entry kept whole (canonical JSON bytes): a record with a larger one could exceed DynamoDB's 400 KiB item limit, and a quarantine write that fails stops every sequencer run after it. */
export const QUARANTINE_ENTRY_MAX_BYTES = 256 * 1024;

/** The record of a refused entry (the one rule both stores keep it by). */
export function quarantineRecord(source: string, entry: unknown, reason: RefusalReason, message: string, at: Date): QuarantineRecord {
  const text = canonicalJson(entry ?? null);
  const bytes = Buffer.byteLength(text, 'utf8');
  return {
    id: sha256Hex(canonicalJson({ source, entry: entry ?? null })),
    source,
    reason,
    message,
    entry: bytes <= QUARANTINE_ENTRY_MAX_BYTES ? (entry ?? null) : null,
    entry_bytes: bytes,
    entry_sha256: sha256Hex(text),
    quarantined_at: at.toISOString(),
  };
}

/** Which quarantine records to list: quarantined in [since, until) (ISO), in this order, at most `limit`. */
export interface QuarantineQuery {
  readonly since: string;
  /** Exclusive; unset: up to now (and what a sequencer whose clock runs ahead wrote). */
  readonly until?: string | undefined;
  readonly order: 'newest' | 'oldest';
  readonly limit: number;
}

/** A page of quarantine records and how many more the window holds. */
export interface QuarantinePage {
  readonly records: readonly QuarantineRecord[];
  /** Records of the window beyond `limit`: exact, or a lower bound when `more_exact` is false (counting stops at QUARANTINE_COUNT_MAX). */
  readonly more: number;
  readonly more_exact: boolean;
}

/** Past this many records beyond the limit a listing stops counting (a flood of forged entries must not make a listing read it all). */
export const QUARANTINE_COUNT_MAX = 10_000;

/** How far back a listing looks when no start is given (days before its end). */
export const QUARANTINE_DEFAULT_DAYS = 7;
/** How many records a listing shows when no limit is given. */
export const QUARANTINE_DEFAULT_LIMIT = 100;

/**
 * A listing's query from what was asked: the window as given (parsed: service.ts parseWindow),
 * starting QUARANTINE_DEFAULT_DAYS before its end (`until`, else `now`) when no start is given;
 * newest first and QUARANTINE_DEFAULT_LIMIT records unless told otherwise.
 */
export function quarantineQuery(window: { readonly since?: string | undefined; readonly until?: string | undefined }, opts: { readonly limit?: number | undefined; readonly order?: QuarantineQuery['order'] | undefined }, now: Date): QuarantineQuery {
  const end = window.until === undefined ? now.getTime() : Date.parse(window.until);
  const since = window.since ?? new Date(end - QUARANTINE_DEFAULT_DAYS * 86_400_000).toISOString();
  return { since, ...(window.until !== undefined ? { until: window.until } : {}), order: opts.order ?? 'newest', limit: opts.limit ?? QUARANTINE_DEFAULT_LIMIT };
}

/** Records of `all` in the query's window and order, paged (the in-memory store's listing; the table's reads the same by partition). */
export function pageOf(all: readonly QuarantineRecord[], q: QuarantineQuery): QuarantinePage {
  const inside = all
    .filter((r) => r.quarantined_at >= q.since && (q.until === undefined || r.quarantined_at < q.until))
    .sort((a, b) => sortKeyOf(a).localeCompare(sortKeyOf(b)));
  if (q.order === 'newest') inside.reverse();
  const beyond = inside.length - Math.min(inside.length, q.limit);
  return { records: inside.slice(0, q.limit), more: Math.min(beyond, QUARANTINE_COUNT_MAX), more_exact: beyond <= QUARANTINE_COUNT_MAX };
}

/** Where a record sorts in a day of the time index: `<quarantined_at>#<id>` (records of one millisecond by id). */
export function sortKeyOf(r: Pick<QuarantineRecord, 'quarantined_at' | 'id'>): string {
  return `${r.quarantined_at}#${r.id}`;
}
