import type { AuthorizationRecord } from '../core/request.ts';

/** The 13 audit fields of the product description, in its order. */
export const AUDIT_FIELDS = [
  'request_id',
  'agent_id',
  'action',
  'permissions',
  'justification',
  'approver_identity',
  'requested_at',
  'decision_at',
  'decision',
  'svid_id',
  'svid_expires_at',
  'revoked',
  'revoked_at',
] as const satisfies readonly (keyof AuthorizationRecord)[];

/** RFC 4180 field; a leading =, +, -, @ is prefixed with ' so spreadsheets do not run agent text as formulas. */
function csvField(v: unknown): string {
  let s = v === null || v === undefined ? '' : Array.isArray(v) ? v.join(' ') : String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsvRow(r: AuthorizationRecord): string {
  return AUDIT_FIELDS.map((f) => csvField(r[f])).join(',');
}
