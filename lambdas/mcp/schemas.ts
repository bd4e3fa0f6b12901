import * as z from 'zod';
import { LIMITS } from '../core/request.ts';
import { PAYLOAD_LIMITS } from '../core/payload.ts';
import { CALL_OUTCOMES, EFFECTS } from '../core/tool-call.ts';
import { codePoint, PERMISSION_MESSAGES, PERMISSION_PATTERN, PERMISSION_PUNCTUATION, permissionCharacterProblem } from '../core/permission.ts';

/**
 * Input and output schemas of the MCP tools: the one place where the rules for what an
 * agent may send live. `tools/list` advertises them as JSON Schema and `tools/call` validates
 * with them (see server.ts); a failure becomes `ERR_INVALID_INPUT: <field>: <rule>`, where field
 * is the argument's path (`ttl_minutes`, `permissions[3]`) and every message below is the rule,
 * phrased without the field name. After these schemas, values are parsed into domain types
 * (core/ids.ts). The permission rule itself is core/permission.ts (the core checks it too).
 */

/**
 * Free text shown to the approver (action, justification): any Unicode text with tabs and line
 * breaks, but no other control characters, no U+2028/U+2029, and no unpaired surrogates (they
 * are not text, and would be stored as something other than what was sent). Invisible and
 * direction-changing characters are accepted here and shown visibly wherever a human reads the
 * text (consent page, email).
 */
const TEXT_NOT_ALLOWED = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]|\p{Cs}/u;

function required(rule: string) {
  return (iss: { input?: unknown }) => (iss.input === undefined ? `is required and ${rule}` : rule);
}

function text(max: number) {
  return z
    .string({ error: required('must be a string') })
    .min(1, 'must not be empty')
    .max(max, `must be at most ${max} characters`)
    .refine((s) => s.trim().length > 0, 'must not be blank')
    .superRefine((s, ctx) => {
      const m = TEXT_NOT_ALLOWED.exec(s);
      if (m) ctx.addIssue({ code: 'custom', message: `contains ${codePoint(m[0])}, a control character or unpaired surrogate, which is not allowed` });
    });
}

/** One permission (the rule: core/permission.ts). */
export const permissionSchema = z
  .string({ error: PERMISSION_MESSAGES.notString })
  .min(1, PERMISSION_MESSAGES.empty)
  .max(LIMITS.permissionMax, PERMISSION_MESSAGES.tooLong)
  .regex(PERMISSION_PATTERN, { error: (iss) => permissionCharacterProblem(iss.input) });

const AGENT_ID_RULE = `must be 1-${LIMITS.agentIdMax} characters of A-Z a-z 0-9 . _ - (not "." or "..")`;
export const agentIdSchema = z
  .string({ error: required(AGENT_ID_RULE) })
  .min(1, AGENT_ID_RULE)
  .max(LIMITS.agentIdMax, AGENT_ID_RULE)
  .regex(/^[A-Za-z0-9._-]+$/, AGENT_ID_RULE)
  .refine((s) => s !== '.' && s !== '..', AGENT_ID_RULE);

const REQUEST_ID_RULE = 'must be a request id returned by request_authorization (req_ followed by 26 characters 0-9 a-z)';
export const requestIdSchema = z.string({ error: required(REQUEST_ID_RULE) }).regex(/^req_[0-9a-z]{26}$/, REQUEST_ID_RULE);

const SVID_ID_RULE = 'must be the SVID serial number in lowercase hex, as returned by check_authorization';
export const svidIdSchema = z.string({ error: required(SVID_ID_RULE) }).regex(/^[0-9a-f]{1,64}$/, SVID_ID_RULE);

function integer(min: number, max: number) {
  const rule = `must be an integer from ${min} to ${max}`;
  return z.number({ error: required(rule) }).int(rule).min(min, rule).max(max, rule);
}

const PERMISSIONS_RULE = `must be an array of 1-${LIMITS.permissionsMax} permission strings`;

/** Inputs are strict: an argument the tool does not define is refused, never ignored. */
export const requestAuthorizationInput = z.strictObject({
  agent_id: agentIdSchema.describe('Identifier of the agent; must be the agent the API key belongs to.'),
  action: text(LIMITS.actionMax).describe('Exactly what the agent wants to do, shown to the human verbatim.'),
  permissions: z
    .array(permissionSchema, { error: required(PERMISSIONS_RULE) })
    .min(1, `must list at least 1 permission`)
    .max(LIMITS.permissionsMax, `must list at most ${LIMITS.permissionsMax} permissions`)
    .describe(`Specific permissions needed, e.g. "infra:write". Each is 1-${LIMITS.permissionMax} characters of A-Z a-z 0-9 ${PERMISSION_PUNCTUATION}.`),
  justification: text(LIMITS.justificationMax).describe('Why the agent needs this; shown to the human.'),
  ttl_minutes: integer(LIMITS.ttlMinutesMin, LIMITS.ttlMinutesMax).describe(
    'How long the request may wait for a human, and how long the SVID lives after approval (1-60).',
  ),
  payload: z
    .record(z.string(), z.unknown(), { error: 'must be a JSON object' })
    .optional()
    .describe(
      `Optional: the exact parameters of the operation (commit, environment, amount, SQL …), a JSON object of at most ${PAYLOAD_LIMITS.maxBytes} bytes as RFC 8785 canonical JSON and ${PAYLOAD_LIMITS.maxDepth} levels deep. ` +
        'The human sees every field; the approval, its receipt and its SVID are bound to its SHA-256 (payload_sha256).',
    ),
});

const payloadSha256Output = z.string().nullable().describe('Lowercase hex SHA-256 of the payload as RFC 8785 canonical JSON; null when the request has no payload.');

export const requestAuthorizationOutput = z.object({
  request_id: z.string(),
  consent_url: z.string(),
  payload_sha256: payloadSha256Output,
});

export const checkAuthorizationInput = z.strictObject({
  request_id: requestIdSchema,
  wait_seconds: integer(0, LIMITS.waitSecondsMax)
    .optional()
    .describe('Optional long-poll: wait up to this many seconds while the request is pending (0-25).'),
});

export const checkAuthorizationOutput = z.object({
  status: z.enum(['pending', 'approved', 'denied', 'expired', 'revoked']),
  svid: z.string().optional().describe('PEM: certificate chain (leaf first), then the PKCS#8 private key. Sent once, in the response that picks the SVID up.'),
  svid_id: z.string().nullable().optional().describe('The leaf certificate serial number, lowercase hex.'),
  spiffe_id: z.string().optional(),
  expires_at: z.string().optional().describe('When the SVID stops being valid (ISO 8601).'),
  svid_delivered: z.boolean().optional().describe('True when an earlier check already delivered the SVID; its key is not kept.'),
  receipt: z
    .string()
    .optional()
    .describe('With the SVID only: the approval receipt, a compact JWS (ES256, typ ackd-receipt+jwt) binding the SVID to the request, its payload and the signed decision; verify with the JWKS at /.well-known/ackd-receipt-keys.json.'),
  revoked_at: z.string().optional(),
  payload_sha256: payloadSha256Output,
  approvals: z
    .object({ have: z.number().int(), need: z.number().int() })
    .optional()
    .describe('While pending: distinct human approvals so far, and how many approve the request (its policy may need more than one).'),
});

export const revokeAuthorizationInput = z.strictObject({
  request_id: requestIdSchema,
  svid_id: svidIdSchema,
});

export const revokeAuthorizationOutput = z.object({
  revoked: z.literal(true),
  revoked_at: z.string(),
});

const HEX64_RULE = 'must be 64 lowercase hex characters (a SHA-256 digest)';
const hex64Schema = z.string({ error: required(HEX64_RULE) }).regex(/^[0-9a-f]{64}$/, HEX64_RULE);
/** A downstream MCP server's name or tool name, as the gateway exposes it: 1-128 characters of A-Z a-z 0-9 _ - . / */
const callNameSchema = z
  .string({ error: required('must be a string of 1-128 characters of A-Z a-z 0-9 _ - . /') })
  .regex(/^[A-Za-z0-9_./-]{1,128}$/, 'must be 1-128 characters of A-Z a-z 0-9 _ - . /');
/** At most this many calls per record_tool_calls. */
export const MAX_CALL_REPORTS = 100;

export const recordToolCallsInput = z.strictObject({
  calls: z
    .array(
      z.strictObject({
        server: callNameSchema.describe('The downstream MCP server, as named in the gateway config.'),
        tool: callNameSchema.describe('The downstream tool name.'),
        effect: z.enum(EFFECTS, { error: `must be one of ${EFFECTS.join(', ')}` }),
        outcome: z.enum(CALL_OUTCOMES, { error: `must be one of ${CALL_OUTCOMES.join(', ')}` }),
        payload_sha256: hex64Schema.describe('SHA-256 of {server, tool, arguments} as RFC 8785 canonical JSON.'),
        caller: agentIdSchema.optional().describe('The agent the gateway made the call for.'),
        request_id: requestIdSchema.optional().describe('The request that gated the call (started, executed, failed, denied, expired).'),
        svid_id: svidIdSchema.optional().describe('The SVID issued for that request (started, executed, failed).'),
        result_sha256: hex64Schema.optional().describe('SHA-256 of the downstream CallToolResult as canonical JSON (executed; optional for allowed).'),
        reason: z
          .string({ error: 'must be a string' })
          .max(500, 'must be at most 500 characters')
          .refine((s) => !TEXT_NOT_ALLOWED.test(s), 'contains a control character or unpaired surrogate, which is not allowed')
          .optional(),
      }),
      { error: required(`must be an array of 1-${MAX_CALL_REPORTS} calls`) },
    )
    .min(1, 'must list at least 1 call')
    .max(MAX_CALL_REPORTS, `must list at most ${MAX_CALL_REPORTS} calls`),
});

export const recordToolCallsOutput = z.object({
  results: z.array(
    z.union([z.object({ ok: z.literal(true), event_id: z.string() }), z.object({ ok: z.literal(false), code: z.string(), message: z.string() })]),
  ),
});
