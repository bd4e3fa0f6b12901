/**
 * The downstream MCP servers: one MCP SDK Client each, over stdio (the gateway starts the
 * process) or streamable HTTP, connected at start and kept open. A server that fails to start or
 * answer is reported on stderr and its tools are absent; the gateway tries it again lazily, on the
 * next tools/list or call, at most once per 30 s. A call is made once and never retried.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ResultSchema, type Tool } from '@modelcontextprotocol/sdk/types.js';
import type { DownstreamServer } from '../core/gateway/config.ts';
import type { DownstreamPort, ToolResult } from '../core/gateway/ports.ts';
import { exposeMessage } from '../core/gateway/messages.ts';
import { httpToolCall, type HttpCallTarget } from './http-call.ts';
import { nodeFetch, type NodeFetch } from './node-fetch.ts';

export const RECONNECT_MS = 30_000;

interface Conn {
  readonly server: DownstreamServer;
  client?: Client;
  tools: readonly Tool[];
  lastAttempt: number;
  connecting?: Promise<void>;
  error?: string;
  /** HTTP: where a tools/call is sent directly (http-call.ts), and the fetch under the SDK transport. */
  direct?: HttpCallTarget & { readonly http: NodeFetch };
}

export interface DownstreamOptions {
  readonly warn: (line: string) => void;
  readonly now?: () => number;
  /** Called when the set of tools changed (a server came up, went down, or changed its list). */
  readonly onChange?: () => void;
  /** Where a stdio server's stderr goes (default: the gateway's stderr). */
  readonly stderr?: 'inherit' | 'ignore' | 'pipe';
}

export class Downstreams implements DownstreamPort {
  private readonly conns = new Map<string, Conn>();
  private readonly now: () => number;
  private closed = false;

  constructor(
    servers: readonly DownstreamServer[],
    private readonly o: DownstreamOptions,
  ) {
    this.now = o.now ?? Date.now;
    for (const s of servers) this.conns.set(s.name, { server: s, tools: [], lastAttempt: -Infinity });
  }

  /** Connects every server (in parallel); a failure is reported, not thrown. */
  async start(): Promise<void> {
    await Promise.all([...this.conns.values()].map((c) => this.connect(c)));
  }

  /** Servers that are down and may be tried again now are tried (once per 30 s each). */
  async refresh(): Promise<void> {
    const due = [...this.conns.values()].filter((c) => !c.client && (c.connecting || this.now() - c.lastAttempt >= RECONNECT_MS));
    if (due.length > 0) await Promise.all(due.map((c) => this.connect(c)));
  }

  /** The tools of every server that is up, by server. */
  tools(): { server: string; tools: readonly Tool[] }[] {
    return [...this.conns.values()].filter((c) => c.client).map((c) => ({ server: c.server.name, tools: c.tools }));
  }

  /** Why a server is down (undefined when it is up or unknown). */
  problem(server: string): string | undefined {
    const c = this.conns.get(server);
    return c && !c.client ? (c.error ?? 'not connected') : undefined;
  }

  private connect(c: Conn): Promise<void> {
    if (c.connecting) return c.connecting;
    c.lastAttempt = this.now();
    c.connecting = this.open(c).finally(() => (c.connecting = undefined));
    return c.connecting;
  }

  private async open(c: Conn): Promise<void> {
    const s = c.server;
    const client = new Client(
      { name: 'ackd-gateway', version: '1.0.0' },
      {
        listChanged: {
          tools: {
            onChanged: (error, tools) => {
              if (error || !tools || c.client !== client) return;
              c.tools = tools;
              this.o.onChange?.();
            },
          },
        },
      },
    );
    const http = s.kind === 'http' ? nodeFetch() : undefined;
    const transport =
      s.kind === 'stdio'
        ? new StdioClientTransport({ command: s.command, args: [...s.args], env: { ...getDefaultEnvironment(), ...s.env }, ...(s.cwd ? { cwd: s.cwd } : {}), stderr: this.o.stderr ?? 'inherit' })
        : new StreamableHTTPClientTransport(s.url, { requestInit: { headers: { ...s.headers } }, fetch: http!.fetch });
    // its kept-alive connections end with the client
    if (http) transport.onclose = http.close;
    try {
      await client.connect(transport, { timeout: s.timeoutMs });
      const tools: Tool[] = [];
      let cursor: string | undefined;
      do {
        const page = await client.listTools(cursor ? { cursor } : {}, { timeout: s.timeoutMs });
        tools.push(...page.tools);
        cursor = page.nextCursor;
      } while (cursor && tools.length < 10_000);
      if (this.closed) {
        await client.close().catch(() => undefined);
        return;
      }
      client.onclose = () => {
        if (c.client !== client) return;
        c.client = undefined;
        c.tools = [];
        c.error = 'the connection closed';
        if (!this.closed) this.o.warn(`downstream server "${s.name}" went away (${s.kind === 'stdio' ? 'its process ended' : 'its connection closed'}); its tools are absent until it is reached again`);
        this.o.onChange?.();
      };
      c.client = client;
      c.direct = http && transport instanceof StreamableHTTPClientTransport && s.kind === 'http' ? { url: s.url, headers: s.headers, agent: http.agentFor(s.url), client, transport, http } : undefined;
      c.tools = tools;
      c.error = undefined;
      this.o.onChange?.();
    } catch (e) {
      c.error = exposeMessage(e);
      this.o.warn(`downstream server "${s.name}" ${s.kind === 'stdio' ? `(${s.command})` : `(${s.url.origin})`} is not available: ${c.error}; its tools are absent (trying again in ${RECONNECT_MS / 1000} s at the earliest)`);
      await client.close().catch(() => undefined);
    }
  }

  /** The pid of a stdio server's process (for tests and diagnostics). */
  pid(server: string): number | null {
    const t = this.conns.get(server)?.client?.transport;
    return t instanceof StdioClientTransport ? t.pid : null;
  }

  async call(server: string, tool: string, args: Record<string, unknown>, signal?: AbortSignal): Promise<ToolResult> {
    const c = this.conns.get(server);
    if (!c) throw new Error(`no downstream server "${server}"`);
    if (!c.client) await this.refresh();
    const client = c.client;
    if (!client) throw new Error(`downstream server "${server}" is not available (${c.error ?? 'not connected'})`);
    // The result passes through as the server sent it, checked once, as a CallToolResult, by the
    // upstream server's own handler. Over HTTP sent directly (http-call.ts) unless the server
    // redirected the SDK transport (which follows a redirect within the origin; http-call does not).
    const direct = c.direct;
    if (direct && direct.client === client && !direct.http.redirected()) return httpToolCall(direct, tool, args, { timeoutMs: c.server.timeoutMs, ...(signal ? { signal } : {}) });
    return (await client.request({ method: 'tools/call', params: { name: tool, arguments: args } }, ResultSchema, { timeout: c.server.timeoutMs, ...(signal ? { signal } : {}) })) as ToolResult;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      [...this.conns.values()].map(async (c) => {
        await c.connecting?.catch(() => undefined);
        const client = c.client;
        c.client = undefined;
        await client?.close().catch(() => undefined);
      }),
    );
  }
}
