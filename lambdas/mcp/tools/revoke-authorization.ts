import { parseRequestId, parseSvidId } from '../../core/ids.ts';
import { revokeAuthorizationInput, revokeAuthorizationOutput } from '../schemas.ts';
import { defineTool } from '../tool.ts';

export const revokeAuthorization = defineTool({
  name: 'revoke_authorization',
  title: 'Revoke an SVID',
  description: 'Invalidate the SVID of a request before its TTL runs out. Idempotent: revoking twice returns the first revoked_at.',
  input: revokeAuthorizationInput,
  output: revokeAuthorizationOutput,
  annotations: { title: 'Revoke an SVID', readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
  async run(args, ctx) {
    return ctx.service.revoke(ctx.agentId, parseRequestId(args.request_id), parseSvidId(args.svid_id));
  },
});
