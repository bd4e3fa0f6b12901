/**
 * The floors of the MCP rows: a bare MCP server built the way ackd's is (lambdas/mcp/http.ts,
 * lambdas/app.ts, lambdas/local/stack.ts), with nothing of ackd in it:
 *
 * - a Hono app whose POST /mcp parses the body, then hands it to a new low-level SDK `Server` and a
 *   stateless `WebStandardStreamableHTTPServerTransport` (JSON responses) per request, served by
 *   @hono/node-server's request listener on a node:http server on 127.0.0.1;
 * - the bearer header is parsed (and required) but not looked up;
 * - two tools, each exactly one DynamoDB call through a DynamoDB document client on the same
 *   dynalite table ackd uses: `get_one {pk}` (one consistent GetItem) and `put_one {pk, item}`
 *   (one conditional PutItem, like ackd's create).
 *
 * Its DynamoDB calls are tagged as the benchmark's own (store-calls.ts), so they are not counted as ackd's.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { CallToolRequestSchema, ListToolsRequestSchema, type CallToolResult, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { dynamoClient } from '../../lambdas/adapters/dynamodb/client.ts';
import { documentClient } from '../../lambdas/adapters/dynamodb/send.ts';
import { tagAsBench } from './store-calls.ts';

const TOOLS: Tool[] = [
  {
    name: 'get_one',
    description: 'One GetItem',
    inputSchema: { type: 'object', properties: { pk: { type: 'string' } }, required: ['pk'] },
    outputSchema: { type: 'object', properties: { item: { type: ['object', 'null'] } } },
  },
  {
    name: 'put_one',
    description: 'One conditional PutItem',
    inputSchema: { type: 'object', properties: { pk: { type: 'string' }, item: { type: 'object' } }, required: ['pk'] },
    outputSchema: { type: 'object', properties: { pk: { type: 'string' } } },
  },
];

function result(value: Record<string, unknown>): CallToolResult {
  return { structuredContent: value, content: [{ type: 'text', text: JSON.stringify(value) }] };
}

function floorServer(doc: DynamoDBDocumentClient, tableName: string): Server {
  const server = new Server({ name: 'ackd-bench-floor', version: '0.0.0' }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: TOOLS }));
  server.setRequestHandler(CallToolRequestSchema, async (req) => {
    const args = (req.params.arguments ?? {}) as { pk?: unknown; item?: unknown };
    if (typeof args.pk !== 'string') return { isError: true, content: [{ type: 'text', text: 'pk: must be a string' }] };
    switch (req.params.name) {
      case 'get_one': {
        const out = await doc.send(new GetCommand({ TableName: tableName, Key: { pk: args.pk }, ConsistentRead: true }));
        return result({ item: out.Item ?? null });
      }
      case 'put_one': {
        const item = typeof args.item === 'object' && args.item !== null ? (args.item as Record<string, unknown>) : {};
        await doc.send(new PutCommand({ TableName: tableName, Item: { ...item, pk: args.pk }, ConditionExpression: 'attribute_not_exists(pk)' }));
        return result({ pk: args.pk });
      }
      default:
        return { isError: true, content: [{ type: 'text', text: `unknown tool ${req.params.name}` }] };
    }
  });
  return server;
}

function rpcError(status: number, message: string): Response {
  return new Response(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }), { status, headers: { 'content-type': 'application/json' } });
}

export interface FloorServer {
  readonly mcpUrl: string;
  /** An MCP SDK client of the floor server (with a bearer header). */
  client(): Promise<Client>;
  stop(): Promise<void>;
}

export async function startFloorServer(opts: { dynamodbEndpoint: string; tableName: string }): Promise<FloorServer> {
  const doc = documentClient(tagAsBench(dynamoClient({ region: 'us-east-1', endpoint: opts.dynamodbEndpoint })));
  const app = new Hono();
  app.all('/mcp', async (c) => {
    const req = c.req.raw;
    if (req.method !== 'POST') return rpcError(405, 'Method not allowed');
    const auth = req.headers.get('authorization');
    if (!auth || !/^Bearer\s+\S+\s*$/i.test(auth)) return rpcError(401, 'Unauthorized');
    let parsedBody: unknown;
    try {
      parsedBody = await req.json();
    } catch {
      return rpcError(400, 'Parse error');
    }
    const server = floorServer(doc, opts.tableName);
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    try {
      await server.connect(transport);
      return await transport.handleRequest(req, { parsedBody });
    } finally {
      await server.close().catch(() => undefined);
    }
  });
  const http: HttpServer = createServer(getRequestListener(app.fetch));
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(0, '127.0.0.1', () => resolve());
  });
  const mcpUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`;
  const clients: Client[] = [];
  return {
    mcpUrl,
    async client() {
      const c = new Client({ name: 'ackd-bench-floor', version: '0.0.0' });
      await c.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { requestInit: { headers: { authorization: 'Bearer floor-not-looked-up' } } }));
      clients.push(c);
      return c;
    },
    async stop() {
      for (const c of clients) await c.close().catch(() => undefined);
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
