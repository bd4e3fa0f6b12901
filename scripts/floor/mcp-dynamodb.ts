/**
 * The floor ackd's MCP bundle is measured against (scripts/bundle-size.ts): the smallest honest
 * MCP-over-Lambda server that reads DynamoDB. One tool with a zod input schema (what the MCP
 * SDK's McpServer expects), a DynamoDB GetItem through the document client, stateless streamable
 * HTTP (a new server + transport per request, JSON responses), behind the same Hono Lambda
 * adapter ackd uses. Never deployed: it exists to be bundled with ackd's esbuild options.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { Hono } from 'hono';
import { handle } from 'hono/aws-lambda';
import * as z from 'zod';

const table = process.env.TABLE_NAME ?? 'floor';
const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({}));

function server(): McpServer {
  const s = new McpServer({ name: 'floor', version: '0.0.0' });
  s.registerTool(
    'get_item',
    { description: 'Reads one item by its key', inputSchema: { id: z.string().min(1).max(128) } },
    async ({ id }) => {
      const r = await ddb.send(new GetCommand({ TableName: table, Key: { pk: id } }));
      return { content: [{ type: 'text', text: JSON.stringify(r.Item ?? null) }] };
    },
  );
  return s;
}

const app = new Hono();
app.post('/mcp', async (c) => {
  const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  await server().connect(transport);
  return transport.handleRequest(c.req.raw);
});
app.all('/mcp', (c) => c.text('method not allowed', 405));

export const handler = handle(app);
