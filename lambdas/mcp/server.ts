import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { ErrorCode, ListToolsRequestSchema, type JSONRPCRequest, type Tool } from '@modelcontextprotocol/sdk/types.js';
import type { jsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/types.js';
import type { AgentId } from '../core/ids.ts';
import type { Logger } from '../core/ports.ts';
import type { AuthorizationService } from '../core/service.ts';
import { callTool, describeTool, quoted, type ToolDefinition } from './tool.ts';
import { checkAuthorization } from './tools/check-authorization.ts';
import { requestAuthorization } from './tools/request-authorization.ts';
import { revokeAuthorization } from './tools/revoke-authorization.ts';
import { recordToolCalls } from './tools/record-tool-calls.ts';
import type { ToolCallRecorder } from '../core/tool-calls.ts';

export interface ToolContext {
  readonly service: AuthorizationService;
  readonly logger: Logger;
  /** The agent the caller's API key belongs to. */
  readonly agentId: AgentId;
  /** Resolves after `ms`, or as soon as `signal` aborts. */
  readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Aborts when the caller has gone away (the HTTP client disconnected, or cancelled the call). */
  readonly signal: AbortSignal;
  /** Checks the caller's API key again; throws ERR_UNAUTHENTICATED once it no longer authenticates. */
  readonly reauthorize: () => Promise<void>;
  /** Records tool calls made through a gateway (record_tool_calls); absent: that tool refuses. */
  readonly toolCalls?: ToolCallRecorder;
}

export const SERVER_INFO = { name: 'ackd', version: '0.1.0' } as const;

const TOOLS: readonly ToolDefinition[] = [requestAuthorization, checkAuthorization, revokeAuthorization, recordToolCalls];
const BY_NAME = new Map(TOOLS.map((t) => [t.name, t]));
/** The tools/list answer, computed once per process, at its first tools/list (not at a cold start: most instances only serve calls). */
let toolList: Tool[] | undefined;

/**
 * The SDK's Server builds a JSON-schema validator (a new Ajv with its formats) in its constructor
 * unless it is given one. ackd's tools validate with their zod schemas (tool.ts), and the only
 * thing the SDK itself would validate with it is a client's answer to elicitation, which ackd
 * never asks for: so this validator, shared by every server of the process, compiles nothing and
 * refuses whatever it is asked (fail closed). No Ajv instance is built at start (cold import).
 */
const SHARED_VALIDATOR: jsonSchemaValidator = {
  getValidator: () => () => ({ valid: false, data: undefined, errorMessage: 'ackd validates no JSON schema through the MCP SDK (it never asks a client for elicitation)' }),
};

const INSTRUCTIONS =
  'ackd gates risky actions behind human approval. Call request_authorization before acting, show the consent_url to your user if useful, ' +
  'then call check_authorization (with wait_seconds) until the status is not "pending". Act only when it is "approved", using the SVID.';

/**
 * A JSON-RPC error as the SDK sends it (`code`, `message`). Not McpError, whose message would put
 * "MCP error -32602: " in front of ours on the wire.
 */
function rpcError(code: ErrorCode, message: string): Error & { code: number } {
  return Object.assign(new Error(message), { code });
}

function unknownTool(name: unknown): Error {
  const names = TOOLS.map((t) => t.name).join(', ');
  if (typeof name !== 'string') return rpcError(ErrorCode.InvalidParams, `tools/call needs params.name, the name of a tool: ${names}`);
  return rpcError(ErrorCode.InvalidParams, `Unknown tool: ${quoted(name)}; this server has ${names}`);
}

/**
 * A new MCP server for one authenticated request (stateless streamable HTTP).
 *
 * This uses the SDK's low-level Server, not McpServer: McpServer validates tool arguments before
 * the handler runs and answers with its own `-32602 Input validation error`, and Server's own
 * tools/call registration answers a non-object `arguments` the same way. ackd validates every
 * call itself (tool.ts, against schemas.ts), so every invalid call gets the documented tool
 * error `ERR_INVALID_INPUT: <field>: <rule>`. tools/call is therefore served from the fallback
 * handler, which sees the raw JSON-RPC request; every other method it does not know is -32601.
 */
export function createMcpServer(ctx: ToolContext): Server {
  const server = new Server(SERVER_INFO, { capabilities: { tools: {} }, instructions: INSTRUCTIONS, jsonSchemaValidator: SHARED_VALIDATOR });
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: (toolList ??= TOOLS.map(describeTool)) }));
  server.fallbackRequestHandler = async (request: JSONRPCRequest, extra) => {
    if (request.method !== 'tools/call') throw rpcError(ErrorCode.MethodNotFound, `Method not found: ${quoted(request.method)}`);
    const params = (request.params ?? {}) as { name?: unknown; arguments?: unknown };
    const tool = typeof params.name === 'string' ? BY_NAME.get(params.name) : undefined;
    if (!tool) throw unknownTool(params.name);
    const signal = AbortSignal.any([ctx.signal, extra.signal]);
    return callTool(tool, params.arguments, { ...ctx, signal });
  };
  return server;
}
