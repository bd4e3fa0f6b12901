import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { AgentId } from '../core/ids.ts';
import type { Logger } from '../core/ports.ts';
import type { AuthorizationService } from '../core/service.ts';
import { registerCheckAuthorization } from './tools/check-authorization.ts';
import { registerRequestAuthorization } from './tools/request-authorization.ts';
import { registerRevokeAuthorization } from './tools/revoke-authorization.ts';

export interface ToolContext {
  readonly service: AuthorizationService;
  readonly logger: Logger;
  /** The agent the caller's API key belongs to. */
  readonly agentId: AgentId;
  readonly sleep: (ms: number) => Promise<void>;
}

export const SERVER_INFO = { name: 'ackd', version: '0.1.0' } as const;

/** A new MCP server for one authenticated request (stateless streamable HTTP). */
export function createMcpServer(ctx: ToolContext): McpServer {
  const server = new McpServer(SERVER_INFO, {
    capabilities: { tools: {} },
    instructions:
      'ackd gates risky actions behind human approval. Call request_authorization before acting, show the consent_url to your user if useful, ' +
      'then call check_authorization (with wait_seconds) until the status is not "pending". Act only when it is "approved", using the SVID.',
  });
  registerRequestAuthorization(server, ctx);
  registerCheckAuthorization(server, ctx);
  registerRevokeAuthorization(server, ctx);
  return server;
}
