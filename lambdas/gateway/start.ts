/**
 * `ackd gateway` as a function: config → downstream clients, ackd client, audit queue, flow →
 * an MCP server over HTTP (`/mcp`, 127.0.0.1 by default) or over stdio. Tests start it in process.
 */
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve, type HttpBindings, type ServerType } from '@hono/node-server';
import { readRequestBody } from '@modelcontextprotocol/sdk/server/requestBody.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { Hono } from 'hono';
import { AuditQueue } from '../core/gateway/audit-queue.ts';
import type { GatewayConfig } from '../core/gateway/config.ts';
import { GatewayFlow } from '../core/gateway/flow.ts';
import { PendingMemo } from '../core/gateway/memo.ts';
import { exposeMessage } from '../core/gateway/messages.ts';
import type { AckdPort, CallRecorder } from '../core/gateway/ports.ts';
import { bearer, jsonRpcError, serveStateless } from '../mcp/http.ts';
import { AckdMcpClient, CallerKeys, whoami } from './ackd.ts';
import { Downstreams } from './downstream.ts';
import { Catalog, createUpstreamServer, fastToolCall } from './server.ts';

export interface GatewayOptions {
  readonly mode: 'http' | 'stdio';
  /** HTTP: the port (0: any free one) and the address (default 127.0.0.1). */
  readonly port?: number;
  readonly host?: string;
  /** Tells the operator (default: stderr, prefixed "ackd gateway: "). */
  readonly warn?: (line: string) => void;
  /** Where a stdio downstream's stderr goes (default: inherit). */
  readonly downstreamStderr?: 'inherit' | 'ignore' | 'pipe';
  /** Test seams, the ackd side replaced (the flow's unit tests use in-memory ports). */
  readonly ackd?: AckdPort & CallRecorder & { close?: () => Promise<void> };
  readonly callerKeys?: (key: string) => Promise<string | null>;
  /** stdio: the streams (default: process.stdin / process.stdout). */
  readonly stdin?: NodeJS.ReadableStream;
  readonly stdout?: NodeJS.WritableStream;
}

export interface GatewayHandle {
  /** HTTP: the MCP endpoint (`http://127.0.0.1:<port>/mcp`). */
  readonly url?: string;
  readonly downstreams: Downstreams;
  readonly queue: AuditQueue;
  readonly memo: PendingMemo;
  /** The agent id the gateway asks ackd as. */
  readonly agentId: string;
  close(): Promise<void>;
}

const MAX_BODY = 4 * 1024 * 1024;

type Body = { tooLarge: true } | { tooLarge: false; text: string };

/**
 * The request body, read from node's request stream, at most `max` bytes (as the SDK's
 * readRequestBody, without building the web Request and stream it reads from: ~0.4 ms a call on the
 * bench VM, docs/gateway.md).
 */
function readNodeBody(incoming: IncomingMessage, max: number): Promise<Body> {
  if (Number(incoming.headers['content-length']) > max) return Promise.resolve({ tooLarge: true });
  return new Promise<Body>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      incoming.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
    };
    const onData = (d: Buffer) => {
      size += d.length;
      if (size > max) {
        done();
        resolve({ tooLarge: true });
      } else chunks.push(d);
    };
    const onEnd = () => {
      done();
      resolve({ tooLarge: false, text: new TextDecoder().decode(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)) });
    };
    const onError = (e: Error) => {
      done();
      reject(e);
    };
    const onClose = () => onError(new Error('the client closed the request before its body was read'));
    incoming.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}

export async function startGateway(config: GatewayConfig, opts: GatewayOptions): Promise<GatewayHandle> {
  const warn = opts.warn ?? ((line: string) => void process.stderr.write(`ackd gateway: ${line}\n`));

  // The gateway's own identity at ackd: the configured agent id, else what ackd says the key is.
  let agentId = config.ackd.agentId;
  if (!agentId) {
    let found: string | null;
    try {
      found = await whoami(config.ackd.url, config.ackd.apiKey);
    } catch (e) {
      throw new Error(`cannot learn the gateway's agent id from ackd (${exposeMessage(e)}); set ackd.agentId in the configuration`, { cause: e });
    }
    if (found === null) throw new Error(`ackd refuses the gateway's API key (${config.ackd.apiKeyEnv}): create one with \`ackd agents create <agent_id>\``);
    agentId = found;
  }
  const ackd = opts.ackd ?? new AckdMcpClient({ url: config.ackd.url, apiKey: config.ackd.apiKey, agentId, ttlMinutes: config.ackd.ttlMinutes, ...(config.ackd.receiptKeysUrl ? { receiptKeysUrl: config.ackd.receiptKeysUrl } : {}) });

  const downstreams: Downstreams = new Downstreams(config.servers, { warn, onChange: () => catalog.invalidate(), ...(opts.downstreamStderr ? { stderr: opts.downstreamStderr } : {}) });
  const catalog = new Catalog(downstreams, config.policy, warn);
  const queue = new AuditQueue({ recorder: ackd, limit: config.auditQueueLimit, warn });
  const memo = new PendingMemo(Date.now);
  const flow = new GatewayFlow({ ackd, recorder: ackd, queue, downstream: downstreams, memo, now: Date.now, waitSeconds: config.waitSeconds, warn });
  await downstreams.start();
  const up = downstreams.tools();
  warn(`${up.reduce((n, s) => n + s.tools.length, 0)} tools from ${up.length} of ${config.servers.length} downstream servers (${up.map((s) => s.server).join(', ') || 'none'}); asking ackd at ${config.ackd.url.origin} as agent ${agentId}`);

  const closeAll = async (): Promise<void> => {
    await queue.close();
    await downstreams.close();
    await (ackd as { close?: () => Promise<void> }).close?.();
  };

  if (opts.mode === 'stdio') {
    const server = createUpstreamServer({ catalog, downstreams, flow });
    const transport = new StdioServerTransport(opts.stdin as never, opts.stdout as never);
    await server.connect(transport);
    let closing: Promise<void> | undefined;
    const close = () => (closing ??= server.close().catch(() => undefined).then(closeAll));
    server.onclose = () => void close();
    return { downstreams, queue, memo, agentId, close };
  }

  const keys = new CallerKeys(opts.callerKeys ?? ((key) => whoami(config.ackd.url, key)));
  const app = new Hono<{ Bindings: Partial<HttpBindings> }>();
  app.post('/mcp', async (c) => {
    const req = c.req.raw;
    const token = bearer(req);
    if (!token) return jsonRpcError(401, -32001, 'Unauthorized: send "Authorization: Bearer <ackd agent API key>"', { 'www-authenticate': 'Bearer realm="ackd-gateway"' });
    let caller: string | null;
    try {
      caller = await keys.agentOf(token);
    } catch (e) {
      warn(`cannot check a caller's key with ackd: ${exposeMessage(e)}`);
      return jsonRpcError(503, -32603, 'the gateway cannot check API keys with ackd right now; try again');
    }
    if (caller === null) return jsonRpcError(401, -32001, 'Unauthorized: ackd does not know this API key', { 'www-authenticate': 'Bearer realm="ackd-gateway", error="invalid_token"' });
    let parsedBody: unknown;
    try {
      const incoming = c.env?.incoming;
      const body = incoming ? await readNodeBody(incoming, MAX_BODY) : await readRequestBody(req, MAX_BODY);
      if (body.tooLarge) return jsonRpcError(413, -32000, `Payload Too Large: the request body must not exceed ${MAX_BODY} bytes`);
      parsedBody = JSON.parse(body.text);
    } catch {
      return jsonRpcError(400, -32700, 'Parse error: Invalid JSON');
    }
    const ctx = { catalog, downstreams, flow, caller, signal: req.signal };
    const fast = await fastToolCall(ctx, req, parsedBody);
    if (fast) return fast;
    return serveStateless(createUpstreamServer(ctx), req, parsedBody, MAX_BODY);
  });
  app.all('/mcp', () => jsonRpcError(405, -32000, 'Method not allowed: this MCP server is stateless; use POST', { allow: 'POST' }));
  // unauthenticated: counts only, no names
  app.get('/healthz', () => Response.json({ ok: true, servers_up: downstreams.tools().length, servers: config.servers.length }, { headers: { 'cache-control': 'no-store' } }));

  const host = opts.host ?? '127.0.0.1';
  const http: ServerType = await new Promise((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: opts.port ?? 8788, hostname: host }, () => resolve(s));
    s.once('error', reject);
  });
  const port = (http.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/mcp`;
  let closing: Promise<void> | undefined;
  return {
    url,
    downstreams,
    queue,
    memo,
    agentId,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        http.close(() => resolve());
        (http as { closeAllConnections?: () => void }).closeAllConnections?.();
      }).then(closeAll)),
  };
}
