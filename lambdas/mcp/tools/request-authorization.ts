import { AckdError } from '../../core/errors.ts';
import { parseAgentId } from '../../core/ids.ts';
import { parsePayload } from '../../core/payload.ts';
import { requestAuthorizationInput, requestAuthorizationOutput } from '../schemas.ts';
import { defineTool } from '../tool.ts';

export const requestAuthorization = defineTool({
  name: 'request_authorization',
  title: 'Request human authorization',
  description:
    'Ask a human to approve an action before you take it. Returns a request_id and the consent_url the human uses. ' +
    'Then call check_authorization until the status is no longer "pending"; on approval you receive an X.509-SVID scoped to this one request.',
  input: requestAuthorizationInput,
  output: requestAuthorizationOutput,
  annotations: { title: 'Request human authorization', readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
  async run(args, ctx) {
    const agentId = parseAgentId(args.agent_id);
    if (agentId !== ctx.agentId) {
      throw new AckdError('ERR_FORBIDDEN', `agent_id: this API key belongs to agent "${ctx.agentId}", not "${agentId}"`, { field: 'agent_id' });
    }
    const { request_id, consent_url, record } = await ctx.service.requestAuthorization({
      agent_id: agentId,
      action: args.action,
      permissions: args.permissions,
      justification: args.justification,
      ttl_minutes: args.ttl_minutes,
      ...(args.payload === undefined ? {} : { payload: parsePayload(args.payload) }),
    });
    return { request_id, consent_url, payload_sha256: record.payload_sha256 ?? null };
  },
});
