/**
 * Many agents over one MCP SDK client: each call carries the bearer key of the agent that makes
 * it (an AsyncLocalStorage read by the transport's fetch), so 500 agents need 500 API keys but
 * not 500 client handshakes. The server is stateless: every call is one POST either way.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { createApiKey } from '../../lambdas/core/apikeys.ts';
import { parseAgentId } from '../../lambdas/core/ids.ts';
import type { TestStack } from '../helpers/local-stack.ts';

export interface Agent {
  readonly id: string;
  readonly key: string;
}

export const REQUEST_ARGS = { action: 'bench: deploy service', permissions: ['deploy:write'], justification: 'benchmark', ttl_minutes: 30 } as const;

/** structuredContent of a tool result; throws with the error text when it is a tool error. */
export function structuredOf<T>(r: unknown): T {
  const res = r as CallToolResult;
  if (res.isError) throw new Error(`tool error: ${(res.content as { text?: string }[]).map((c) => c.text).join(' ')}`);
  return res.structuredContent as T;
}

export class AgentPool {
  /** The calling agent's key, and a signal that aborts its HTTP request (a long-poll the benchmark ends). */
  private readonly als = new AsyncLocalStorage<{ key: string; signal?: AbortSignal | undefined }>();
  private client: Client | undefined;
  private made = 0;

  /** `onRequest`: called before every request_authorization (and every request made through `pending`). */
  constructor(
    private readonly stack: TestStack,
    private readonly onRequest: () => void = () => undefined,
  ) {}

  async start(): Promise<void> {
    const c = new Client({ name: 'ackd-bench', version: '0.0.0' });
    const fallbackKey = this.stack.agentApiKey;
    await c.connect(
      new StreamableHTTPClientTransport(new URL(this.stack.mcpUrl), {
        fetch: (url, init) => {
          const ctx = this.als.getStore();
          const headers = new Headers(init?.headers);
          headers.set('authorization', `Bearer ${ctx?.key ?? fallbackKey}`);
          const signal = ctx?.signal && init?.signal ? AbortSignal.any([init.signal, ctx.signal]) : (ctx?.signal ?? init?.signal);
          return fetch(url, { ...init, headers, ...(signal ? { signal } : {}) });
        },
      }),
    );
    this.client = c;
  }

  /** A new agent with its own API key (one key write in ackd's store). */
  async agent(prefix = 'bench'): Promise<Agent> {
    const id = `${prefix}-${process.pid}-${++this.made}`;
    const { apiKey } = await createApiKey(this.stack.deps.apiKeys, parseAgentId(id), this.stack.deps.clock);
    return { id, key: apiKey };
  }

  /** A tool call as `agent`; `signal` aborts its HTTP request (the server sees the client go away). */
  call(agent: Agent, name: string, args: Record<string, unknown>, timeoutMs = 120_000, signal?: AbortSignal): Promise<unknown> {
    const c = this.client;
    if (!c) throw new Error('AgentPool.start() first');
    return this.als.run({ key: agent.key, signal }, () => c.callTool({ name, arguments: args }, undefined, { timeout: timeoutMs }));
  }

  async request(agent: Agent): Promise<string> {
    this.onRequest();
    return structuredOf<{ request_id: string }>(await this.call(agent, 'request_authorization', { agent_id: agent.id, ...REQUEST_ARGS })).request_id;
  }

  /** A pending request of `agent` made through the service in this process (setup; no MCP round trip). */
  async pending(agent: Agent): Promise<string> {
    this.onRequest();
    const r = await this.stack.deps.service.requestAuthorization({ agent_id: parseAgentId(agent.id), ...REQUEST_ARGS, permissions: [...REQUEST_ARGS.permissions] });
    return r.request_id;
  }

  async check(agent: Agent, requestId: string, waitSeconds?: number, signal?: AbortSignal): Promise<{ status: string; svid?: string }> {
    const args = waitSeconds === undefined ? { request_id: requestId } : { request_id: requestId, wait_seconds: waitSeconds };
    return structuredOf(await this.call(agent, 'check_authorization', args, (waitSeconds ?? 0) * 1000 + 120_000, signal));
  }

  async stop(): Promise<void> {
    await this.client?.close().catch(() => undefined);
  }
}

/**
 * One caller that moves to a fresh agent every `perAgent` requests, so no agent comes near its
 * open-request limit (whose slot search would otherwise grow with the agent's open requests).
 */
export class RotatingCaller {
  private current: Agent | undefined;
  private used = 0;

  constructor(
    private readonly pool: AgentPool,
    private readonly prefix: string,
    private readonly perAgent = 50,
  ) {}

  async prepare(): Promise<void> {
    this.current ??= await this.pool.agent(this.prefix);
  }

  async request(): Promise<{ agent: Agent; requestId: string }> {
    if (!this.current || this.used >= this.perAgent) {
      this.current = await this.pool.agent(this.prefix);
      this.used = 0;
    }
    this.used++;
    const agent = this.current;
    return { agent, requestId: await this.pool.request(agent) };
  }
}
