import { EVENT_COLUMNS, type ChainEvent } from './event.ts';
import type { ExportLine } from './service.ts';

export type ExportFormat = 'jsonl' | 'csv';

/** The CSV header: one named column per event field (the 13 audit fields among them). */
export const CSV_HEADER = EVENT_COLUMNS.join(',');

/**
 * RFC 4180 field. Arrays and objects are written as JSON (`["read","write"]`). A leading =, +, -, @, tab or
 * CR is prefixed with ' so spreadsheets do not run agent-supplied text as a formula.
 */
export function csvField(v: unknown): string {
  let s = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v as string | number | boolean);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvRow(e: ChainEvent): string {
  return EVENT_COLUMNS.map((c) => csvField((e as unknown as Record<string, unknown>)[c])).join(',');
}

/**
 * Export lines as text lines. JSONL carries events and checkpoints (what `ackd audit verify`
 * reads); CSV carries events only, for spreadsheets and SIEMs.
 */
export async function* formatExport(lines: AsyncIterable<ExportLine>, format: ExportFormat): AsyncGenerator<string> {
  if (format === 'csv') yield CSV_HEADER + '\r\n';
  for await (const l of lines) {
    if (format === 'jsonl') yield JSON.stringify(l) + '\n';
    else if (l.kind === 'event') yield csvRow(l) + '\r\n';
  }
}

export function parseFormat(v: unknown): ExportFormat {
  if (v === 'jsonl' || v === 'csv') return v;
  throw new Error(`format: must be jsonl or csv (got ${JSON.stringify(v)})`);
}
