/**
 * Characters that change how agent text reads without being seen: bidirectional controls
 * (U+061C, U+200E/F, U+202A–E, U+2066–9), zero-width and other default-ignorable characters
 * (U+00AD, U+034F, U+115F/60, U+17B4/5, U+180B–F, U+200B–D, U+2060–206F, U+3164, U+FE00–FE0F,
 * U+FEFF, U+FFA0, U+FFF0–FFF8, U+1BCA0–3, U+1D173–A, and the tag and variation-selector
 * block U+E0000–E0FFF) and the interlinear annotation controls U+FFF9–FFFB. They are shown as
 * `[U+XXXX]`, never obeyed, so the approver reads exactly what was sent. The email template
 * (lambdas/adapters/ses/template.ts) marks the same set.
 */
// eslint-disable-next-line no-misleading-character-class -- combining characters and variation selectors are listed on purpose, one code point each, to be marked
export const INVISIBLE = /[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb\u{1bca0}-\u{1bca3}\u{1d173}-\u{1d17a}\u{e0000}-\u{e0fff}]/gu;

/** Agent text for display: every invisible or direction-changing character shown as `[U+XXXX]`. */
export function visible(s: string): string {
  return s.replace(INVISIBLE, (c) => `[U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}]`);
}
