import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { authenticateApiKey } from '../core/apikeys.ts';
import { isAckdError } from '../core/errors.ts';
import type { ApiKeyStore, Logger } from '../core/ports.ts';
import type { AuthorizationService } from '../core/service.ts';
import { createMcpServer } from './server.ts';

export interface McpHttpDeps {
  readonly service: AuthorizationService;
  readonly apiKeys: ApiKeyStore;
  readonly logger: Logger;
  readonly sleep?: (ms: number) => Promise<void>;
}

const MAX_BODY = 64 * 1024;

function jsonRpcError(status: number, code: number, message: string, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }), {
    status,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers },
  });
}

/** Bearer token from an Authorization header, if it is one. */
export function bearer(req: Request): string | undefined {
  const h = req.headers.get('authorization');
  const m = h ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null;
  return m?.[1];
}

/**
 * POST /mcp: stateless streamable HTTP. Authenticates the agent's API key, then hands the request
 * to a fresh MCP server + transport (no sessions, JSON responses).
 */
export function mcpHandler(deps: McpHttpDeps): (req: Request) => Promise<Response> {
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  return async (req) => {
    if (req.method !== 'POST') {
      return jsonRpcError(405, -32000, 'Method not allowed: this MCP server is stateless; use POST', { allow: 'POST' });
    }
    const token = bearer(req);
    let agentId;
    try {
      agentId = await authenticateApiKey(deps.apiKeys, token);
    } catch (e) {
      if (!isAckdError(e, 'ERR_UNAUTHENTICATED')) {
        deps.logger.error('api key lookup failed', { error: e instanceof Error ? e.message : String(e) });
        return jsonRpcError(503, -32603, 'internal error');
      }
      const challenge = token ? 'Bearer realm="ackd", error="invalid_token"' : 'Bearer realm="ackd"';
      return jsonRpcError(401, -32001, 'Unauthorized: send "Authorization: Bearer <agent API key>"', { 'www-authenticate': challenge });
    }
    const server = createMcpServer({ service: deps.service, logger: deps.logger, agentId, sleep });
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
      maxRequestBodySize: MAX_BODY,
    });
    try {
      await server.connect(transport);
      const res = await transport.handleRequest(req);
      res.headers.set('cache-control', 'no-store');
      return res;
    } finally {
      await server.close().catch(() => undefined);
    }
  };
}
