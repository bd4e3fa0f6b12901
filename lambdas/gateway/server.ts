/**
 * The gateway's upstream face: an MCP server whose tools are the downstream servers' tools, named
 * `<server>__<tool>`, each call going through the gateway's flow (core/gateway/flow.ts).
 *
 * Served as stateless streamable HTTP at `/mcp` (a new SDK Server per POST, as ackd serves its own
 * MCP API; callers present an ackd agent key) or over stdio (one Server for the process).
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, CallToolResultSchema, ErrorCode, ListToolsRequestSchema, SUPPORTED_PROTOCOL_VERSIONS, UrlElicitationRequiredError, type CallToolResult, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import type { JsonSchemaType, JsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/types.js';
import { SEP, type GatewayConfig } from '../core/gateway/config.ts';
import type { FlowOutcome, GatewayFlow } from '../core/gateway/flow.ts';
import { describePolicy, resolveToolPolicy, type ToolPolicy } from '../core/gateway/policy.ts';
import type { Downstreams } from './downstream.ts';

export const GATEWAY_INFO = { name: 'ackd-gateway', version: '0.1.0' } as const;

/** The name a tool may have upstream (MCP's tool-name rule), and what fits in an ackd permission. */
const TOOL_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/** One JSON-schema validator for the process: schemas are compiled once per tool, not per request. */
export const SHARED_VALIDATOR = new AjvJsonSchemaValidator();

export interface CatalogTool {
  readonly qualified: string;
  readonly server: string;
  readonly tool: string;
  readonly policy: ToolPolicy;
  /** As listed upstream: the downstream's tool, renamed, its description with the effect class. */
  readonly listed: Tool;
  validate?: JsonSchemaValidator<unknown>;
  readonly inputSchema: Tool['inputSchema'];
}

/** The gateway's tools, rebuilt when a downstream's tools change. */
export class Catalog {
  private byName = new Map<string, CatalogTool>();
  private list: Tool[] = [];
  private dirty = true;
  private readonly noted = new Set<string>();

  constructor(
    private readonly downstreams: Downstreams,
    private readonly policy: GatewayConfig['policy'],
    private readonly warn: (line: string) => void,
  ) {}

  invalidate(): void {
    this.dirty = true;
  }

  private rebuild(): void {
    const byName = new Map<string, CatalogTool>();
    const list: Tool[] = [];
    for (const { server, tools } of this.downstreams.tools()) {
      for (const t of tools) {
        const qualified = `${server}${SEP}${t.name}`;
        if (!TOOL_NAME.test(qualified) || `mcp:${server}:${t.name}`.length > 128) {
          this.note(`skip:${qualified}`, `tool ${JSON.stringify(t.name)} of "${server}" is not offered: its gateway name must be at most 128 characters of A-Z a-z 0-9 _ . -`);
          continue;
        }
        const policy = resolveToolPolicy(this.policy, qualified, t.name, t.annotations);
        if (policy.note) this.note(`note:${qualified}`, policy.note);
        // Not the downstream's outputSchema: the gateway's own results (pending, denied …) carry a
        // structuredContent of their own, which a client would check against it. Results pass through unchanged.
        const { outputSchema: _outputSchema, ...rest } = t;
        const listed: Tool = { ...rest, name: qualified, description: `${t.description ?? ''}${describePolicy(policy)}`.trimStart() };
        if (t.title) listed.title = `${t.title} (${server})`;
        byName.set(qualified, { qualified, server, tool: t.name, policy, listed, inputSchema: t.inputSchema });
        list.push(listed);
      }
    }
    this.byName = byName;
    this.list = list;
    this.dirty = false;
  }

  private note(key: string, line: string): void {
    if (this.noted.has(key)) return;
    this.noted.add(key);
    this.warn(line);
  }

  tools(): Tool[] {
    if (this.dirty) this.rebuild();
    return this.list;
  }

  get(name: string): CatalogTool | undefined {
    if (this.dirty) this.rebuild();
    return this.byName.get(name);
  }

  /** Validates a gated call's arguments against the tool's input schema (compiled once). */
  check(t: CatalogTool, args: unknown): string | undefined {
    t.validate ??= SHARED_VALIDATOR.getValidator(t.inputSchema as JsonSchemaType);
    const r = t.validate(args);
    return r.valid ? undefined : (r.errorMessage ?? 'invalid');
  }
}

export interface UpstreamContext {
  readonly catalog: Catalog;
  readonly downstreams: Downstreams;
  readonly flow: GatewayFlow;
  /** The agent that called (HTTP mode). */
  readonly caller?: string;
  /** Aborts when the HTTP caller went away. */
  readonly signal?: AbortSignal;
}

const INSTRUCTIONS =
  'ackd gateway: these tools belong to other MCP servers and run behind human approval. A tool whose description ends in "approval required" ' +
  'may answer "pending" with a consent URL: show it to your user, then call the same tool with exactly the same arguments again. ' +
  'An approval runs exactly one call with exactly the approved arguments.';

function toolError(text: string, status: Record<string, unknown>): CallToolResult {
  return { isError: true, content: [{ type: 'text', text }], structuredContent: status };
}

/** The flow's outcome as MCP answers it. */
export function toResult(t: CatalogTool, o: FlowOutcome, urlElicitation: boolean): CallToolResult {
  switch (o.kind) {
    case 'result':
      return o.result as CallToolResult;
    case 'pending': {
      const text =
        `Approval required: ${t.qualified} was not called yet. A human must approve this exact call at ${o.consent_url} ` +
        `(request ${o.request_id}, payload sha256 ${o.payload_sha256}). Once approved, call ${t.qualified} again with exactly the same arguments: ` +
        'that call runs it (once). Different arguments need a new approval.';
      if (urlElicitation) {
        throw new UrlElicitationRequiredError([{ mode: 'url', message: `Approve ${t.qualified} in ackd (request ${o.request_id}), then call it again with the same arguments.`, url: o.consent_url, elicitationId: o.request_id }], text);
      }
      return toolError(text, { status: 'pending', request_id: o.request_id, consent_url: o.consent_url, payload_sha256: o.payload_sha256 });
    }
    case 'stopped':
      return toolError(o.message, { status: o.status, ...(o.request_id ? { request_id: o.request_id } : {}), ...(o.payload_sha256 ? { payload_sha256: o.payload_sha256 } : {}) });
  }
}

/** A JSON-RPC error as the SDK sends it, without McpError's "MCP error -32602: " prefix. */
function rpcError(code: ErrorCode, message: string): Error & { code: number } {
  return Object.assign(new Error(message), { code });
}

/**
 * One tools/call through the gateway: the tool looked up (a missing server tried again), a gated
 * call's arguments checked against its schema, the flow run, its outcome as MCP answers it.
 * Throws a JSON-RPC error (`code`, `message`) for an unknown tool.
 */
export async function callGatewayTool(ctx: UpstreamContext, params: { name: string; arguments?: Record<string, unknown> | undefined }, signal: AbortSignal, urlElicitation: boolean): Promise<CallToolResult> {
  const name = params.name;
  let t = ctx.catalog.get(name);
  if (!t) {
    await ctx.downstreams.refresh();
    t = ctx.catalog.get(name);
  }
  if (!t) {
    const i = name.indexOf(SEP);
    const down = i > 0 ? ctx.downstreams.problem(name.slice(0, i)) : undefined;
    if (down) return { isError: true, content: [{ type: 'text', text: `${name} is not available: downstream server "${name.slice(0, i)}" is down (${down}); the gateway tries it again at most every 30 s` }] };
    throw rpcError(ErrorCode.InvalidParams, `Unknown tool: ${JSON.stringify(name)}`);
  }
  const args = params.arguments ?? {};
  if (t.policy.decision === 'approve') {
    const bad = ctx.catalog.check(t, args);
    if (bad) return toolError(`${name} was not called and no approval was asked: its arguments do not fit its input schema: ${bad}`, { status: 'invalid' });
  }
  const outcome = await ctx.flow.call({ server: t.server, tool: t.tool, arguments: args, effect: t.policy.effect, decision: t.policy.decision, ...(ctx.caller ? { caller: ctx.caller } : {}), signal });
  return toResult(t, outcome, urlElicitation);
}

/** A new MCP server over the gateway (per HTTP request that is not a plain tools/call, or one for a stdio session). */
export function createUpstreamServer(ctx: UpstreamContext): Server {
  const server = new Server(GATEWAY_INFO, { capabilities: { tools: { listChanged: false } }, instructions: INSTRUCTIONS, jsonSchemaValidator: SHARED_VALIDATOR });
  server.setRequestHandler(ListToolsRequestSchema, async () => {
    await ctx.downstreams.refresh();
    return { tools: ctx.catalog.tools() };
  });
  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const signal = ctx.signal ? AbortSignal.any([ctx.signal, extra.signal]) : extra.signal;
    return callGatewayTool(ctx, request.params, signal, server.getClientCapabilities()?.elicitation?.url !== undefined);
  });
  return server;
}

/**
 * The hot path of stateless HTTP: a POST that is one well-formed `tools/call` is answered here,
 * without building an SDK Server and transport for it (that costs about as much as the rest of the
 * gateway's hop). Anything else (initialize, tools/list, notifications, batches, a request the
 * checks below do not pass) returns undefined and goes to the SDK, which answers it as ever,
 * errors included. The checks are the SDK transport's own: Accept, the protocol version header.
 */
export async function fastToolCall(ctx: UpstreamContext, req: Request, body: unknown): Promise<Response | undefined> {
  if (body === null || typeof body !== 'object' || Array.isArray(body) || (body as { method?: unknown }).method !== 'tools/call') return undefined;
  const accept = req.headers.get('accept') ?? '';
  if (!accept.includes('application/json') || !accept.includes('text/event-stream')) return undefined;
  const version = req.headers.get('mcp-protocol-version');
  if (version !== null && !SUPPORTED_PROTOCOL_VERSIONS.includes(version)) return undefined;
  const parsed = CallToolRequestSchema.safeParse(body);
  const id = (body as { id?: unknown }).id;
  if (!parsed.success || (typeof id !== 'string' && typeof id !== 'number') || (parsed.data.params as { task?: unknown }).task !== undefined) return undefined;
  let message: Record<string, unknown>;
  try {
    const result = CallToolResultSchema.safeParse(await callGatewayTool(ctx, parsed.data.params, ctx.signal ?? new AbortController().signal, false));
    message = result.success ? { result: result.data } : { error: { code: ErrorCode.InternalError, message: `Invalid tools/call result: ${result.error.message}` } };
  } catch (e) {
    // as the SDK's Protocol answers a handler's error
    const err = e as { code?: unknown; message?: unknown; data?: unknown };
    message = { error: { code: Number.isSafeInteger(err.code) ? err.code : ErrorCode.InternalError, message: typeof err.message === 'string' ? err.message : 'Internal error', ...(err.data === undefined ? {} : { data: err.data }) } };
  }
  return new Response(JSON.stringify({ jsonrpc: '2.0', id, ...message }), { status: 200, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } });
}
