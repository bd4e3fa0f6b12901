/**
 * The gateway's direct downstream tools/call over HTTP (lambdas/gateway/http-call.ts) against a
 * real node:http server that answers as a streamable HTTP MCP server would (JSON, SSE, a stream
 * that ends early and is resumed, errors), and its SSE reader.
 */
import { createServer, Agent, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode, McpError, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { httpToolCall, SseReader, type HttpCallTarget } from '../../lambdas/gateway/http-call.ts';

describe('SseReader', () => {
  it('reads events split anywhere, CRLF / CR / LF, multi-line data, comments, id and retry', () => {
    const got: { event: string; data: string; id: string | undefined }[] = [];
    const r = new SseReader((e) => got.push(e));
    const text = ': comment\r\nid: 7\r\nretry: 250\r\ndata: {"a":\r\ndata: 1}\r\n\r\nevent: other\rdata:x\r\rdata: last\n\n';
    for (const ch of text) r.feed(ch);
    expect(got).toEqual([
      { event: 'message', data: '{"a":\n1}', id: '7' },
      { event: 'other', data: 'x', id: undefined },
      { event: 'message', data: 'last', id: undefined },
    ]);
    expect(r.lastEventId).toBe('7');
    expect(r.retryMs).toBe(250);
  });

  it('an event without data is not dispatched, its id is kept (a priming event)', () => {
    const got: unknown[] = [];
    const r = new SseReader((e) => got.push(e));
    r.feed('id: p1\ndata:\n\n');
    expect(got).toEqual([]);
    expect(r.lastEventId).toBe('p1');
  });
});

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

describe('httpToolCall', () => {
  let server: Server;
  let url: URL;
  let handler: Handler;
  const seen: { method: string; headers: IncomingMessage['headers']; body: string }[] = [];
  const agent = new Agent({ keepAlive: true });

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        seen.push({ method: req.method ?? '', headers: req.headers, body });
        handler(req, body, res);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`);
  });
  afterAll(async () => {
    agent.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  function target() {
    const messages: JSONRPCMessage[] = [];
    const notifications: unknown[] = [];
    const transport = { sessionId: 'sess-1', protocolVersion: '2025-06-18', onmessage: (m: JSONRPCMessage) => messages.push(m), onerror: () => undefined };
    const client = { notification: (n: unknown) => (notifications.push(n), Promise.resolve()) };
    const t: HttpCallTarget = { url, headers: { 'X-Token': 'configured' }, agent, client: client as unknown as Client, transport: transport as unknown as StreamableHTTPClientTransport };
    return { t, messages, notifications };
  }
  const idOf = (body: string) => (JSON.parse(body) as { id: string }).id;

  it('a JSON answer passes through exactly; the session, protocol and configured headers are sent', async () => {
    const result = { content: [{ type: 'text', text: 'hi' }], structuredContent: { n: 1 }, _meta: { x: [1, 2] }, extra: 'kept' };
    handler = (_req, body, res) => {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: idOf(body), result }));
    };
    const { t } = target();
    await expect(httpToolCall(t, 'echo', { message: 'hi' }, { timeoutMs: 5000 })).resolves.toEqual(result);
    const req = seen.at(-1)!;
    expect(req.method).toBe('POST');
    expect(req.headers['mcp-session-id']).toBe('sess-1');
    expect(req.headers['mcp-protocol-version']).toBe('2025-06-18');
    expect(req.headers['x-token']).toBe('configured');
    expect(req.headers.accept).toBe('application/json, text/event-stream');
    expect(JSON.parse(req.body)).toMatchObject({ jsonrpc: '2.0', method: 'tools/call', params: { name: 'echo', arguments: { message: 'hi' } } });
  });

  it('an SSE answer: messages before it go to the SDK client, the answer settles the call', async () => {
    handler = (_req, body, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'working' } })}\n\n`);
      setTimeout(() => res.end(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: idOf(body), result: { content: [] } })}\n\n`), 5);
    };
    const { t, messages } = target();
    await expect(httpToolCall(t, 'slow', {}, { timeoutMs: 5000 })).resolves.toEqual({ content: [] });
    expect(messages).toEqual([{ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'working' } }]);
  });

  it('a JSON-RPC error answer rejects as the SDK would (McpError, code and message)', async () => {
    handler = (_req, body, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`data: ${JSON.stringify({ jsonrpc: '2.0', id: idOf(body), error: { code: -32602, message: 'Unknown tool: nope' } })}\n\n`);
    };
    const e = await httpToolCall(target().t, 'nope', {}, { timeoutMs: 5000 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(McpError);
    expect((e as McpError).code).toBe(-32602);
    expect((e as Error).message).toBe('MCP error -32602: Unknown tool: nope');
  });

  it('a stream that ends unanswered after an event id is resumed with GET and Last-Event-ID', async () => {
    handler = (req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (req.method === 'POST') return res.end('id: ev-1\nretry: 10\ndata: \n\n');
      res.end(`id: ev-2\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: 0, result: { content: [{ type: 'text', text: 'resumed' }] } })}\n\n`);
    };
    await expect(httpToolCall(target().t, 'resumable', {}, { timeoutMs: 5000 })).resolves.toEqual({ content: [{ type: 'text', text: 'resumed' }] });
    const get = seen.at(-1)!;
    expect(get.method).toBe('GET');
    expect(get.headers['last-event-id']).toBe('ev-1');
    expect(get.headers.accept).toBe('text/event-stream');
  });

  it('a stream that ends unanswered without an event id is an error, not retried', async () => {
    handler = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end();
    };
    const before = seen.length;
    await expect(httpToolCall(target().t, 'gone', {}, { timeoutMs: 5000 })).rejects.toThrow(/closed its answer to tools\/call gone before answering/);
    expect(seen.length).toBe(before + 1);
  });

  it('an HTTP error status rejects with the body, as the SDK transport words it', async () => {
    handler = (_req, _body, res) => {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('Session not found');
    };
    await expect(httpToolCall(target().t, 'x', {}, { timeoutMs: 5000 })).rejects.toThrow('Streamable HTTP error: Error POSTing to endpoint: Session not found');
  });

  it('a timeout sends notifications/cancelled for the request and rejects with RequestTimeout', async () => {
    handler = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': waiting\n\n');
    };
    const { t, notifications } = target();
    const e = await httpToolCall(t, 'hang', {}, { timeoutMs: 50 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(McpError);
    expect((e as McpError).code).toBe(ErrorCode.RequestTimeout);
    expect(notifications).toEqual([{ method: 'notifications/cancelled', params: { requestId: idOf(seen.at(-1)!.body), reason: expect.stringContaining('Request timed out') } }]);
  });

  it('an abort sends notifications/cancelled and rejects with the reason', async () => {
    handler = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': waiting\n\n');
    };
    const { t, notifications } = target();
    const ac = new AbortController();
    const p = httpToolCall(t, 'hang', {}, { timeoutMs: 5000, signal: ac.signal });
    setTimeout(() => ac.abort('caller went away'), 20);
    await expect(p).rejects.toThrow('caller went away');
    expect(notifications).toHaveLength(1);
  });
});
