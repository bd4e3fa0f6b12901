import { readRequestBody } from '@modelcontextprotocol/sdk/server/requestBody.js';
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { ApiKeyCache } from '../core/apikeys.ts';
import { AckdError, isAckdError } from '../core/errors.ts';
import type { ApiKeyStore, Clock, Logger } from '../core/ports.ts';
import type { AuthorizationService } from '../core/service.ts';
import type { ToolCallRecorder } from '../core/tool-calls.ts';
import { createMcpServer } from './server.ts';

export interface McpHttpDeps {
  readonly service: AuthorizationService;
  readonly apiKeys: ApiKeyStore;
  readonly logger: Logger;
  /** Handed to the tools (ToolContext.sleep); must resolve early when the signal aborts. Long-polls are paced by the shared poller (core/waiting.ts). */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /**
   * How long this process trusts a key that authenticated without reading it again (ms; default
   * 5000, 0: every call reads it). Minting and handing out an SVID always read it again.
   */
  readonly apiKeyCacheMs?: number;
  /** Times the key cache (default: the system clock). */
  readonly clock?: Clock;
  /** Records tool calls made through a gateway (record_tool_calls). */
  readonly toolCalls?: ToolCallRecorder;
}

const MAX_BODY = 64 * 1024;
/** How recent the read that authenticated a call must be to serve as its first key re-check (reauthorize). */
export const FRESH_READ_MS = 250;
/**
 * Most JSON-RPC messages one POST may carry. MCP 2025-06-18 removed batching, but older clients
 * may still send a request together with a notification or two; a batch is never a way to run
 * many tool calls for the price of one HTTP request.
 */
export const MAX_BATCH = 10;

/** A JSON-RPC error answered before any MCP server saw the request (never cached). */
export function jsonRpcError(status: number, code: number, message: string, headers: Record<string, string> = {}): Response {
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

/** Resolves after `ms`, or at once when `signal` aborts; its timer never outlives it. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * POST /mcp: stateless streamable HTTP. Authenticates the agent's API key, bounds the body and
 * the batch, then hands the request to a fresh MCP server + transport (no sessions, JSON responses).
 *
 * `req.signal` aborts when the client goes away (@hono/node-server aborts it when the response is
 * closed before it was finished); long-polls stop on it.
 */
export function mcpHandler(deps: McpHttpDeps): (req: Request) => Promise<Response> {
  const sleep = deps.sleep ?? abortableSleep;
  // One per handler, and there is one handler per process.
  const clock = deps.clock;
  const keys = new ApiKeyCache(deps.apiKeys, {
    ...(deps.apiKeyCacheMs === undefined ? {} : { ttlMs: deps.apiKeyCacheMs }),
    ...(clock ? { now: () => clock.now().getTime() } : {}),
  });
  return async (req) => {
    if (req.method !== 'POST') {
      return jsonRpcError(405, -32000, 'Method not allowed: this MCP server is stateless; use POST', { allow: 'POST' });
    }
    const token = bearer(req);
    let agentId;
    /** When this call's own read of the store authenticated it (performance.now()), else null. */
    let readAt: number | null;
    try {
      const startedAt = performance.now();
      const auth = await keys.authenticateCall(token);
      agentId = auth.agentId;
      readAt = auth.read ? startedAt : null;
    } catch (e) {
      if (!isAckdError(e, 'ERR_UNAUTHENTICATED')) {
        deps.logger.error('api key lookup failed', { error: e instanceof Error ? e.message : String(e) });
        return jsonRpcError(503, -32603, 'internal error');
      }
      const challenge = token ? 'Bearer realm="ackd", error="invalid_token"' : 'Bearer realm="ackd"';
      return jsonRpcError(401, -32001, 'Unauthorized: send "Authorization: Bearer <agent API key>"', { 'www-authenticate': challenge });
    }

    let parsedBody: unknown;
    try {
      const body = await readRequestBody(req, MAX_BODY);
      if (body.tooLarge) return jsonRpcError(413, -32000, `Payload Too Large: the request body must not exceed ${MAX_BODY} bytes`);
      parsedBody = JSON.parse(body.text);
    } catch {
      return jsonRpcError(400, -32700, 'Parse error: Invalid JSON');
    }
    if (Array.isArray(parsedBody) && (parsedBody.length === 0 || parsedBody.length > MAX_BATCH)) {
      return jsonRpcError(
        400,
        -32600,
        parsedBody.length === 0
          ? 'Invalid Request: empty batch'
          : `Invalid Request: a batch may carry at most ${MAX_BATCH} JSON-RPC messages (got ${parsedBody.length}); nothing in it was run`,
      );
    }

    // The same key, read again from the store (never from the cache) while a call is in flight:
    // before an SVID is minted and again before it is handed out. The first time, a read of the
    // store that authenticated this very call less than FRESH_READ_MS ago is that read (the same
    // item is not read twice in a row); a later check (a long-poll that waited, the hand-out)
    // always reads.
    const reauthorize = async (): Promise<void> => {
      const authenticatedAt = readAt;
      readAt = null;
      if (authenticatedAt !== null && performance.now() - authenticatedAt < FRESH_READ_MS) return;
      const again = await keys.reauthenticate(token).catch((e: unknown) => {
        if (isAckdError(e, 'ERR_UNAUTHENTICATED')) throw new AckdError('ERR_UNAUTHENTICATED', 'the API key was revoked');
        throw e;
      });
      if (again !== agentId) throw new AckdError('ERR_UNAUTHENTICATED', 'the API key was revoked');
    };
    const server = createMcpServer({ service: deps.service, logger: deps.logger, agentId, sleep, signal: req.signal, reauthorize, ...(deps.toolCalls ? { toolCalls: deps.toolCalls } : {}) });
    return serveStateless(server, req, parsedBody, MAX_BODY);
  };
}

/**
 * One request of stateless streamable HTTP on a server made for it: no session, a JSON answer,
 * never cached; the server is closed after. ackd's MCP API and the gateway's upstream both serve so.
 */
export async function serveStateless(server: Server, req: Request, parsedBody: unknown, maxBodyBytes: number): Promise<Response> {
  const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true, maxRequestBodySize: maxBodyBytes });
  try {
    await server.connect(transport);
    const res = await transport.handleRequest(req, { parsedBody });
    res.headers.set('cache-control', 'no-store');
    return res;
  } finally {
    await server.close().catch(() => undefined);
  }
}

/**
 * GET /v1/whoami: the agent an API key belongs to (`{"agent_id": …}`), 401 for a key that does
 * not authenticate. What an enforcement point in front of agents (the ackd gateway) asks before
 * it lets a caller's key through, without creating anything.
 */
export function whoamiHandler(deps: Pick<McpHttpDeps, 'apiKeys' | 'logger' | 'apiKeyCacheMs' | 'clock'>): (req: Request) => Promise<Response> {
  const clock = deps.clock;
  const keys = new ApiKeyCache(deps.apiKeys, {
    ...(deps.apiKeyCacheMs === undefined ? {} : { ttlMs: deps.apiKeyCacheMs }),
    ...(clock ? { now: () => clock.now().getTime() } : {}),
  });
  const json = (status: number, body: unknown, headers: Record<string, string> = {}): Response =>
    new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers } });
  return async (req) => {
    const token = bearer(req);
    try {
      return json(200, { agent_id: await keys.authenticate(token) });
    } catch (e) {
      if (!isAckdError(e, 'ERR_UNAUTHENTICATED')) {
        deps.logger.error('api key lookup failed', { error: e instanceof Error ? e.message : String(e) });
        return json(503, { error: { code: 'ERR_STORE_UNAVAILABLE', message: 'the key store is unavailable' } });
      }
      const challenge = token ? 'Bearer realm="ackd", error="invalid_token"' : 'Bearer realm="ackd"';
      return json(401, { error: { code: 'ERR_UNAUTHENTICATED', message: 'send "Authorization: Bearer <agent API key>"' } }, { 'www-authenticate': challenge });
    }
  };
}
