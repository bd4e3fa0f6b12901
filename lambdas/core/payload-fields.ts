/**
 * A payload as a person reads it: one row per value, `path → value`, the same on the consent page
 * (consent-ui/src/payload-view.ts), in the consent email (adapters/ses/template.ts) and in the CLI.
 *
 * No Node imports here (only the pure `visible`), so the consent page's bundle imports this very
 * file: the page and the mail cannot disagree on how a field is named or shown.
 *
 * - Nested keys become paths: `deploy.targets[0].region`. A key that is not a plain identifier is
 *   written as a JSON string in brackets (`headers["content-type"]`, `["a.b"]`), so `{"a.b":1}` and
 *   `{"a":{"b":1}}` never read the same.
 * - Every leaf is one row; an empty object or array is a row of its own (`{}`, `[]`), so nothing
 *   the agent sent disappears from the list.
 * - Values are text, never markup. Strings are shown between double quotes with their content as is
 *   (line breaks kept), numbers, booleans and null as JSON: the string "1" reads `"1"`, the number
 *   1 reads `1`. Invisible and direction-changing characters, and control characters other than
 *   line feed and tab, are shown as `[U+XXXX]`.
 */
import type { JsonValue, Payload } from './payload.ts';
import { visible } from './visible.ts';

export type FieldKind = 'string' | 'number' | 'boolean' | 'null' | 'object' | 'array';

export interface PayloadField {
  /** Where the value sits: `deploy.targets[0].region`, `["odd key"]`, already made visible. */
  readonly path: string;
  readonly kind: FieldKind;
  /** The value as shown: `"text"` for strings, JSON for the rest, `{}` / `[]` for empty containers. */
  readonly text: string;
}

/** Past this many characters, or with more than one line, a value is folded (its first part shown, "show all" for the rest). */
export const FOLD_CHARS = 200;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** C0 and C1 controls other than tab and line feed, DEL, and the Unicode line and paragraph separators. */
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]/g;

function codePoint(c: string): string {
  return `[U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}]`;
}

/** Text the agent sent, for display: invisible, direction-changing and control characters (but line feed and tab) as `[U+XXXX]`. */
export function shownText(s: string): string {
  return visible(s).replace(CONTROLS, codePoint);
}

/** The path of `key` under `parent` ('' for the payload itself). */
export function fieldPath(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  if (IDENTIFIER.test(key)) return parent === '' ? key : `${parent}.${key}`;
  return `${parent}[${shownText(JSON.stringify(key))}]`;
}

/** A leaf (or empty container) as shown. */
export function valueText(v: JsonValue): { kind: FieldKind; text: string } {
  if (v === null) return { kind: 'null', text: 'null' };
  if (typeof v === 'string') return { kind: 'string', text: `"${shownText(v)}"` };
  if (typeof v === 'number') return { kind: 'number', text: JSON.stringify(v) };
  if (typeof v === 'boolean') return { kind: 'boolean', text: String(v) };
  if (Array.isArray(v)) return { kind: 'array', text: '[]' };
  return { kind: 'object', text: '{}' };
}

/** Every value of the payload in document order (keys as the object holds them), one row each. */
export function payloadFields(payload: Payload): PayloadField[] {
  const out: PayloadField[] = [];
  const walk = (v: JsonValue, path: string): void => {
    if (v !== null && typeof v === 'object') {
      const entries: [string | number, JsonValue][] = Array.isArray(v) ? (v as readonly JsonValue[]).map((x, i) => [i, x]) : Object.entries(v);
      if (entries.length > 0) {
        for (const [k, x] of entries) walk(x, fieldPath(path, k));
        return;
      }
    }
    out.push({ path, ...valueText(v) });
  };
  for (const [k, x] of Object.entries(payload)) walk(x, fieldPath('', k));
  return out;
}

export interface Folded {
  /** Whether part of the text is hidden behind "show all". */
  readonly folded: boolean;
  /** What is shown while folded: the whole text when not folded, else its first line, at most `max` characters. */
  readonly preview: string;
  /** Characters (code points) not in the preview. */
  readonly hidden: number;
  /** Lines of the whole text. */
  readonly lines: number;
}

/**
 * How a long value is shown folded: more than `max` characters (code points, so an emoji is not
 * cut in half) or more than one line shows its first line, cut at `max`, and says how much is left.
 */
export function fold(text: string, max = FOLD_CHARS): Folded {
  const chars = [...text];
  const lines = text.split('\n').length;
  if (chars.length <= max && lines === 1) return { folded: false, preview: text, hidden: 0, lines };
  const firstLine = [...text.slice(0, text.indexOf('\n') === -1 ? text.length : text.indexOf('\n'))];
  const preview = firstLine.slice(0, max).join('');
  return { folded: true, preview, hidden: chars.length - [...preview].length, lines };
}

/** "1 more character", "1,234 more characters". */
export function moreCharacters(n: number): string {
  return `${n.toLocaleString('en-US')} more character${n === 1 ? '' : 's'}`;
}

/** A digest in groups of 4 ("abcd ef01 …"), for a person comparing it with what a pipeline printed. */
export function groupedHex(hex: string): string {
  return hex.replace(/(.{4})(?=.)/g, '$1 ');
}
