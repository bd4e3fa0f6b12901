/**
 * The words and rows of the review page's payload: the operation's exact parameters, one row per
 * value (path → value), long values folded, and its SHA-256 in groups of 4 to compare with what
 * the pipeline printed. No DOM here, so it is unit-tested (test/unit/payload-fields.test.ts);
 * main.ts puts it on the page, always as text. The flattening itself is lambdas/core/payload-fields.ts,
 * shared with the consent email.
 */
import { fold, groupedHex, moreCharacters, payloadFields, type Folded, type PayloadField } from '../../lambdas/core/payload-fields.ts';
import type { Payload } from '../../lambdas/core/payload.ts';

export interface PayloadRow extends PayloadField {
  /** How the value is shown until "show all" is pressed. */
  readonly fold: Folded;
}

/** Every value of the payload as a row of the table, with its fold. */
export function payloadRows(payload: Readonly<Record<string, unknown>>): PayloadRow[] {
  return payloadFields(payload as Payload).map((f) => ({ ...f, fold: fold(f.text) }));
}

/** The label of the button that unfolds a value: "Show all (12 lines, 1,234 more characters)". */
export function showAllLabel(f: Folded): string {
  return `Show all (${f.lines > 1 ? `${f.lines.toLocaleString('en-US')} lines, ` : ''}${moreCharacters(f.hidden)})`;
}

export const SHOW_LESS = 'Show less';

/** The digest as a person compares it: "abcd ef01 …". */
export function digestText(hex: string): string {
  return groupedHex(hex);
}

export const PAYLOAD_HINT = 'The exact parameters of the operation. Your decision applies to exactly these values.';
export const EMPTY_PAYLOAD = 'An empty object: the agent sent no parameters.';
export const DIGEST_HINT = 'Compare this with the SHA-256 the pipeline or tool printed for this operation. If they differ, deny.';
export const DIGEST_MISMATCH = 'This SHA-256 does not match the parameters shown on this page. Do not approve; tell your ackd operator.';

/** The page's line when the server refused a decision because the request changed after the page showed it (ERR_STALE_VIEW). */
export const STALE_VIEW_TEXT = 'This request changed after the page showed it, so your decision was not recorded. It is shown again as it is now: read it again before you decide.';

/** The page's line when a refresh brought a request whose content changed while it was open. */
export const CHANGED_TEXT = 'This request changed while you were reviewing it. It is shown as it is now: read it again before you decide.';
