import { z } from 'zod';
import { LIMITS } from '../core/request.ts';

/**
 * Input and output schemas of the three MCP tools. Every rule's message names its field, so a
 * tool error tells the agent exactly what to fix. These schemas are the edge: after them, values
 * are parsed into domain types (core/ids.ts).
 */

/** Control characters other than tab and newline. */
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]/;
const CONTROL_OR_SPACE = /[\u0000-\u0020\u007f-\u009f\u2028\u2029]/;

function text(field: string, max: number, allowWhitespace = true) {
  const bad = allowWhitespace ? CONTROL : CONTROL_OR_SPACE;
  return z
    .string({ error: `${field} must be a string` })
    .min(1, `${field} must not be empty`)
    .max(max, `${field} must be at most ${max} characters`)
    .refine((s) => s.trim().length > 0, `${field} must not be blank`)
    .refine((s) => !bad.test(s), allowWhitespace ? `${field} must not contain control characters` : `${field} must not contain spaces or control characters`);
}

export const agentIdSchema = z
  .string({ error: 'agent_id must be a string' })
  .min(1, 'agent_id must not be empty')
  .max(LIMITS.agentIdMax, `agent_id must be at most ${LIMITS.agentIdMax} characters`)
  .regex(/^[A-Za-z0-9._-]+$/, 'agent_id may contain only A-Z, a-z, 0-9, ".", "_" and "-"')
  .refine((s) => s !== '.' && s !== '..', 'agent_id must not be "." or ".."');

export const requestIdSchema = z
  .string({ error: 'request_id must be a string' })
  .regex(/^req_[0-9a-z]{26}$/, 'request_id must be a request id returned by request_authorization (req_ + 26 characters)');

export const svidIdSchema = z
  .string({ error: 'svid_id must be a string' })
  .regex(/^[0-9a-f]{1,64}$/, 'svid_id must be the SVID serial number in lowercase hex, as returned by check_authorization');

export const requestAuthorizationInput = {
  agent_id: agentIdSchema.describe('Identifier of the agent; must be the agent the API key belongs to.'),
  action: text('action', LIMITS.actionMax).describe('Exactly what the agent wants to do, shown to the human verbatim.'),
  permissions: z
    .array(text('permissions[]', LIMITS.permissionMax, false), { error: 'permissions must be an array of strings' })
    .min(1, 'permissions must list at least 1 permission')
    .max(LIMITS.permissionsMax, `permissions must list at most ${LIMITS.permissionsMax} permissions`)
    .describe('Specific permissions needed, e.g. "infra:write".'),
  justification: text('justification', LIMITS.justificationMax).describe('Why the agent needs this; shown to the human.'),
  ttl_minutes: z
    .number({ error: 'ttl_minutes must be a number (an integer from 1 to 60)' })
    .int('ttl_minutes must be an integer from 1 to 60')
    .min(LIMITS.ttlMinutesMin, 'ttl_minutes must be an integer from 1 to 60')
    .max(LIMITS.ttlMinutesMax, 'ttl_minutes must be an integer from 1 to 60')
    .describe('How long the request may wait for a human, and how long the SVID lives after approval (1-60).'),
};

export const requestAuthorizationOutput = {
  request_id: z.string(),
  consent_url: z.string(),
};

export const checkAuthorizationInput = {
  request_id: requestIdSchema,
  wait_seconds: z
    .number({ error: 'wait_seconds must be a number (an integer from 0 to 25)' })
    .int('wait_seconds must be an integer from 0 to 25')
    .min(0, 'wait_seconds must be an integer from 0 to 25')
    .max(LIMITS.waitSecondsMax, 'wait_seconds must be an integer from 0 to 25')
    .optional()
    .describe('Optional long-poll: wait up to this many seconds while the request is pending (0-25).'),
};

export const checkAuthorizationOutput = {
  status: z.enum(['pending', 'approved', 'denied', 'expired', 'revoked']),
  svid: z.string().optional().describe('PEM: certificate chain (leaf first), then the PKCS#8 private key. Sent once, in the response that picks the SVID up.'),
  svid_id: z.string().nullable().optional().describe('The leaf certificate serial number, lowercase hex.'),
  spiffe_id: z.string().optional(),
  expires_at: z.string().optional().describe('When the SVID stops being valid (ISO 8601).'),
  svid_delivered: z.boolean().optional().describe('True when an earlier check already delivered the SVID; its key is not kept.'),
  revoked_at: z.string().optional(),
};

export const revokeAuthorizationInput = {
  request_id: requestIdSchema,
  svid_id: svidIdSchema,
};

export const revokeAuthorizationOutput = {
  revoked: z.literal(true),
  revoked_at: z.string(),
};
