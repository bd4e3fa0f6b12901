import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { parseRequestId, parseSvidId } from '../../core/ids.ts';
import { ok, toolError } from '../result.ts';
import { revokeAuthorizationInput, revokeAuthorizationOutput } from '../schemas.ts';
import type { ToolContext } from '../server.ts';

export function registerRevokeAuthorization(server: McpServer, ctx: ToolContext): void {
  server.registerTool(
    'revoke_authorization',
    {
      title: 'Revoke an SVID',
      description: 'Invalidate the SVID of a request before its TTL runs out. Idempotent: revoking twice returns the first revoked_at.',
      inputSchema: revokeAuthorizationInput,
      outputSchema: revokeAuthorizationOutput,
      annotations: { title: 'Revoke an SVID', readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
    async (args) => {
      try {
        return ok(await ctx.service.revoke(ctx.agentId, parseRequestId(args.request_id), parseSvidId(args.svid_id)));
      } catch (e) {
        return toolError(e, ctx.logger, 'revoke_authorization');
      }
    },
  );
}
