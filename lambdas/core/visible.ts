/**
 * Characters that change how agent text reads without being seen: the bidirectional controls
 * (U+061C, U+200E/F, U+202A–E, U+2066–9), every default-ignorable code point (zero-width
 * characters, soft hyphen, word joiners, fillers, tags, variation selectors …) and the
 * interlinear annotation controls U+FFF9–FFFB. They are shown as `[U+XXXX]`, never obeyed, so a
 * human reads exactly what was sent. The one definition for the consent page, the consent email
 * and the CLI.
 */
export const INVISIBLE = /[\p{Bidi_Control}\p{Default_Ignorable_Code_Point}\ufff9-\ufffb]/gu;

/** Agent text for display: every invisible or direction-changing character shown as `[U+XXXX]`. */
export function visible(s: string): string {
  return s.replace(INVISIBLE, (c) => `[U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}]`);
}
