import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { parseRequestId } from '../../core/ids.ts';
import { ok, toolError } from '../result.ts';
import { checkAuthorizationInput, checkAuthorizationOutput } from '../schemas.ts';
import type { ToolContext } from '../server.ts';

export function registerCheckAuthorization(server: McpServer, ctx: ToolContext): void {
  server.registerTool(
    'check_authorization',
    {
      title: 'Check an authorization request',
      description:
        'Status of a request: pending, approved (with the SVID), denied, expired or revoked. The first check after approval ' +
        'delivers the SVID (PEM chain + private key) exactly once. Pass wait_seconds (0-25) to wait for a decision instead of polling fast.',
      inputSchema: checkAuthorizationInput,
      outputSchema: checkAuthorizationOutput,
      annotations: { title: 'Check an authorization request', readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    async (args) => {
      try {
        const requestId = parseRequestId(args.request_id);
        const result = args.wait_seconds
          ? await ctx.service.checkWaiting(ctx.agentId, requestId, args.wait_seconds, ctx.sleep)
          : await ctx.service.check(ctx.agentId, requestId);
        return ok(result);
      } catch (e) {
        return toolError(e, ctx.logger, 'check_authorization');
      }
    },
  );
}
