import { LIMITS } from './request.ts';

/**
 * The rule for one permission: the one source of it, for the MCP tools' schemas
 * (lambdas/mcp/schemas.ts, which advertise it as JSON Schema) and for the core and the CLI
 * (policy patterns, `ackd gate`), which check it without a schema library.
 *
 * Permissions are machine identifiers (`db:write`, `s3:GetObject`, `repo/acme:push`, `arn:aws:s3:::b/*`):
 * printable ASCII letters, digits and a few separators only. No spaces, no look-alike letters
 * from other scripts, no invisible or direction-changing characters, nothing that needs escaping
 * in HTML, and no "," (lists of permissions are shown comma-separated). ASCII is NFC by definition.
 */
export const PERMISSION_PUNCTUATION = '. _ : / * + = @ # ~ -';
const PERMISSION_CHAR = /^[A-Za-z0-9._:/*+=@#~-]$/;
export const PERMISSION_PATTERN = /^[A-Za-z0-9._:/*+=@#~-]+$/;
const PERMISSION_RULE = `a permission may use only A-Z a-z 0-9 and ${PERMISSION_PUNCTUATION}`;

/** What a permission breaks, phrased without the field's name (the messages of the MCP schema). */
export const PERMISSION_MESSAGES = {
  notString: 'must be a string',
  empty: 'must not be empty',
  tooLong: `must be at most ${LIMITS.permissionMax} characters`,
} as const;

/** `U+200B` (with the character itself in quotes when it is printable ASCII). */
export function codePoint(c: string): string {
  const cp = c.codePointAt(0)!;
  const hex = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  return cp > 0x20 && cp < 0x7f ? `"${c}" (${hex})` : hex;
}

/** The message for a string that does not match PERMISSION_PATTERN: the first character not allowed, and the rule. */
export function permissionCharacterProblem(input: unknown): string {
  if (typeof input === 'string') for (const c of input) if (!PERMISSION_CHAR.test(c)) return `contains ${codePoint(c)}, which is not allowed; ${PERMISSION_RULE}`;
  return PERMISSION_RULE;
}

/** What is wrong with `value` as a permission, or undefined when it is one. */
export function permissionProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return PERMISSION_MESSAGES.notString;
  if (value.length === 0) return PERMISSION_MESSAGES.empty;
  if (value.length > LIMITS.permissionMax) return PERMISSION_MESSAGES.tooLong;
  if (!PERMISSION_PATTERN.test(value)) return permissionCharacterProblem(value);
  return undefined;
}
