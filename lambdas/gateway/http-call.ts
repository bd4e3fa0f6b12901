/**
 * A downstream `tools/call` over streamable HTTP, sent straight on the kept-alive node:http
 * connections, not through the SDK client's transport: the transport answers through web
 * streams (a TextDecoderStream and an SSE parser stream per response), which cost about as much
 * as the rest of the gateway's hop (bench: test/bench/gateway.ts, docs/gateway.md).
 *
 * The same exchange as the SDK's (MCP streamable HTTP, 2025-06-18 and later): a POST with the
 * session id and protocol version the SDK client negotiated (and the configured headers), the
 * answer taken as JSON or as an SSE stream; messages in the stream other than the answer
 * (notifications, requests) go to the SDK client as if its transport had read them. A stream
 * that ends unanswered after an event id is resumed with GET + Last-Event-ID, as the SDK does.
 * Timeout and abort as the SDK's `request`: `notifications/cancelled` sent, the same McpError.
 * The SDK client keeps everything else (initialize, tools/list, notifications, the GET stream).
 */
import type { Agent as HttpAgent } from 'node:http';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import { request as httpsRequest } from 'node:https';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPError, type StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { mediaTypeEssence } from '@modelcontextprotocol/sdk/shared/mediaType.js';
import { createParser, type EventSourceParser } from 'eventsource-parser';
import { ErrorCode, JSONRPCMessageSchema, McpError, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { ToolResult } from '../core/gateway/ports.ts';

/** The SDK transport's defaults for resuming a stream. */
const RESUME = { delayMs: 1000, growth: 1.5, maxDelayMs: 30_000, maxRetries: 2 } as const;

export interface HttpCallTarget {
  readonly url: URL;
  /** The configured headers (they win over the session headers, as in the SDK transport). */
  readonly headers: Readonly<Record<string, string>>;
  readonly agent: HttpAgent | HttpsAgent;
  readonly client: Client;
  readonly transport: StreamableHTTPClientTransport;
}

/**
 * Server-sent events, parsed by eventsource-parser (the parser the MCP SDK's transport uses, so
 * the stream is read exactly as the SDK reads it): `feed` text as it arrives, `onEvent` gets each
 * event with data (an event with an empty data line, a priming event, is not passed on, but its id
 * is kept as `lastEventId`); `retry` is kept.
 */
export class SseReader {
  private readonly parser: EventSourceParser;
  lastEventId: string | undefined;
  retryMs: number | undefined;

  constructor(onEvent: (e: { event: string; data: string; id: string | undefined }) => void) {
    this.parser = createParser({
      onEvent: (e) => {
        if (e.id !== undefined) this.lastEventId = e.id;
        if (e.data !== '') onEvent({ event: e.event ?? 'message', data: e.data, id: e.id });
      },
      onRetry: (ms) => {
        this.retryMs = ms;
      },
    });
  }

  feed(chunk: string): void {
    this.parser.feed(chunk);
  }
}

let seq = 0;

/** One tools/call; resolves with the result as the server sent it, rejects as the SDK client's `request` would. */
export function httpToolCall(t: HttpCallTarget, tool: string, args: Record<string, unknown>, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<ToolResult> {
  const id = `ackd-gateway-${++seq}`;
  const body = JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: tool, arguments: args } });
  return new Promise<ToolResult>((resolve, reject) => {
    let done = false;
    let current: ReturnType<typeof httpRequest> | undefined;
    const finish = (error: unknown, result?: ToolResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (error === undefined) resolve(result!);
      else reject(error instanceof Error ? error : new Error(String(error)));
    };
    // as the SDK's Protocol.request cancels: tell the server, reject with the reason
    const cancel = (reason: unknown): void => {
      if (done) return;
      current?.destroy();
      t.client.notification({ method: 'notifications/cancelled', params: { requestId: id, reason: String(reason) } }).catch(() => undefined);
      finish(reason instanceof McpError ? reason : new McpError(ErrorCode.RequestTimeout, String(reason)));
    };
    const onAbort = (): void => cancel(opts.signal?.reason);
    const timer = setTimeout(() => cancel(McpError.fromError(ErrorCode.RequestTimeout, 'Request timed out', { timeout: opts.timeoutMs })), opts.timeoutMs);
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    /** A message read from the server: the answer settles the call; anything else goes to the SDK client. */
    const take = (raw: unknown, resumed: boolean): void => {
      let message: JSONRPCMessage;
      try {
        message = JSONRPCMessageSchema.parse(raw);
      } catch (e) {
        t.transport.onerror?.(e instanceof Error ? e : new Error(String(e)));
        return;
      }
      const answer = 'id' in message && !('method' in message) && (message.id === id || resumed);
      if (!answer) {
        t.transport.onmessage?.(message);
        return;
      }
      if ('error' in message) finish(McpError.fromError(message.error.code, message.error.message, message.error.data));
      else if ('result' in message && typeof message.result === 'object' && message.result !== null && !Array.isArray(message.result)) finish(undefined, message.result as ToolResult);
      else finish(new McpError(ErrorCode.InternalError, 'the downstream server answered tools/call without a result object'));
    };

    const send = (attempt: number, lastEventId: string | undefined): void => {
      const headers: Record<string, string> = {};
      if (t.transport.sessionId) headers['mcp-session-id'] = t.transport.sessionId;
      if (t.transport.protocolVersion) headers['mcp-protocol-version'] = t.transport.protocolVersion;
      for (const [k, v] of Object.entries(t.headers)) headers[k.toLowerCase()] = v;
      const resuming = lastEventId !== undefined;
      if (resuming) {
        headers.accept = 'text/event-stream';
        headers['last-event-id'] = lastEventId;
      } else {
        headers['content-type'] = 'application/json';
        headers.accept = 'application/json, text/event-stream';
      }
      const options = { method: resuming ? 'GET' : 'POST', headers, agent: t.agent };
      const req = t.url.protocol === 'https:' ? httpsRequest(t.url, options) : httpRequest(t.url, options);
      current = req;
      req.on('error', (e) => finish(e));
      req.once('response', (res: IncomingMessage) => {
        if (done) return void res.destroy();
        res.setEncoding('utf8');
        const status = res.statusCode ?? 0;
        if (status < 200 || status >= 300) {
          let text = '';
          res.on('data', (d: string) => (text += d.length + text.length <= 64 * 1024 ? d : ''));
          res.once('end', () => finish(new StreamableHTTPError(status, `${resuming ? 'Failed to open SSE stream' : 'Error POSTing to endpoint'}: ${status >= 300 && status < 400 ? `redirect (${status}) not followed` : text || res.statusMessage}`)));
          res.on('error', (e) => finish(e));
          return;
        }
        const type = mediaTypeEssence(res.headers['content-type']);
        if (type === 'text/event-stream') {
          const sse = new SseReader((e) => {
            if (e.event !== 'message') return;
            let parsed: unknown;
            try {
              parsed = JSON.parse(e.data);
            } catch (err) {
              t.transport.onerror?.(err instanceof Error ? err : new Error(String(err)));
              return;
            }
            take(parsed, resuming);
          });
          res.on('data', (d: string) => sse.feed(d));
          res.once('end', () => {
            if (done) return;
            const from = sse.lastEventId ?? lastEventId;
            // ended unanswered: resumable when the server gave an event id (the SDK transport's rule)
            if (from !== undefined && attempt < RESUME.maxRetries) {
              const delay = sse.retryMs ?? Math.min(RESUME.delayMs * RESUME.growth ** attempt, RESUME.maxDelayMs);
              setTimeout(() => done || send(attempt + 1, from), delay).unref();
              return;
            }
            finish(new Error(`the downstream server closed its answer to tools/call ${tool} before answering`));
          });
          res.on('error', (e) => finish(e));
        } else if (type === 'application/json' && !resuming) {
          let text = '';
          res.on('data', (d: string) => (text += d));
          res.once('end', () => {
            let data: unknown;
            try {
              data = JSON.parse(text);
            } catch (e) {
              return finish(e);
            }
            for (const m of Array.isArray(data) ? data : [data]) take(m, false);
            finish(new Error(`the downstream server's JSON answer to tools/call ${tool} has no response to it`));
          });
          res.on('error', (e) => finish(e));
        } else {
          res.resume();
          finish(new StreamableHTTPError(-1, `Unexpected content type: ${res.headers['content-type'] ?? '(none)'}`));
        }
      });
      req.end(resuming ? undefined : body);
    };
    send(0, undefined);
  });
}
