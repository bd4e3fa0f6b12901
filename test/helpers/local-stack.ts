import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dynamoClient } from '../../lambdas/adapters/dynamodb/client.ts';
import { documentClient } from '../../lambdas/adapters/dynamodb/send.ts';
import { parseRequestId } from '../../lambdas/core/ids.ts';
import type { Logger } from '../../lambdas/core/ports.ts';
import { startLocalStack, type LocalStack, type LocalStackOptions } from '../../lambdas/local/stack.ts';
import { ManualClock } from './clock.ts';

/** Log lines captured in memory, so tests can assert what was (and was not) logged. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const log = (level: string) => (msg: string, detail?: Record<string, unknown>) => void lines.push(JSON.stringify({ level, msg, ...detail }));
  return { lines, info: log('info'), warn: log('warn'), error: log('error') };
}

export interface TestStack extends LocalStack {
  readonly clock: ManualClock;
  readonly logs: ReturnType<typeof memoryLogger>;
  readonly dir: string;
  /** An MCP SDK client over streamable HTTP with the given bearer key (the demo agent's by default). */
  client(apiKey?: string | null): Promise<Client>;
  /**
   * Waits until the audit sequencer has sequenced every event waiting (and what its follow-ups,
   * such as consent notifications, recorded): the log is then as the writes left it.
   */
  settled(timeoutMs?: number): Promise<void>;
}

/** The whole local stack in-process on ephemeral ports, dynalite in memory, with a manual clock. */
export async function startTestStack(opts: Partial<LocalStackOptions> = {}): Promise<TestStack> {
  const dir = await mkdtemp(join(tmpdir(), 'ackd-test-'));
  const clock = new ManualClock(new Date());
  const logs = memoryLogger();
  const stack = await startLocalStack({ dir, persist: false, clock, logger: logs, sweepIntervalMs: 0, ...opts });
  const clients: Client[] = [];
  return {
    ...stack,
    clock,
    logs,
    dir,
    async client(apiKey: string | null = stack.agentApiKey) {
      const c = new Client({ name: 'ackd-test', version: '1.0.0' });
      const headers: Record<string, string> = apiKey === null ? {} : { authorization: `Bearer ${apiKey}` };
      await c.connect(new StreamableHTTPClientTransport(new URL(stack.mcpUrl), { requestInit: { headers } }));
      clients.push(c);
      return c;
    },
    async settled(timeoutMs = 15_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        await stack.deps.sequencerLoop.idle();
        if ((await stack.deps.store.audit.backlog(1)).count === 0) {
          const head = await stack.deps.store.audit.treeHead();
          if (head.settled >= head.size) return;
        }
        if (Date.now() > until) throw new Error(`audit events still waiting to be sequenced after ${timeoutMs} ms`);
        stack.deps.sequencerLoop.nudge();
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async stop() {
      for (const c of clients) await c.close().catch(() => undefined);
      await stack.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** structuredContent of a successful tool call; fails the test with the error text otherwise. */
export function structured<T = Record<string, unknown>>(r: unknown): T {
  const res = r as CallToolResult;
  if (res.isError) throw new Error(`tool error: ${JSON.stringify(res.content)}`);
  return res.structuredContent as T;
}

/** The text of a tool error (fails if the call succeeded). */
export function errorText(r: unknown): string {
  const res = r as CallToolResult;
  if (!res.isError) throw new Error(`expected a tool error, got ${JSON.stringify(res.structuredContent)}`);
  return (res.content as { type: string; text: string }[]).map((c) => c.text).join('\n');
}

/** A request made over MCP by the stack's demo agent and approved by an operator; its id. */
export async function approvedRequest(stack: TestStack, mcp: Client, over: { action?: string; permissions?: string[]; justification?: string; ttl_minutes?: number } = {}): Promise<string> {
  const req = structured<{ request_id: string }>(
    await mcp.callTool({
      name: 'request_authorization',
      arguments: { agent_id: stack.agentId, action: 'rotate the db password', permissions: ['db:write'], justification: 'rotation', ttl_minutes: 15, ...over },
    }),
  );
  await stack.deps.service.decide(parseRequestId(req.request_id), 'approved', 'operator:test');
  return req.request_id;
}

/** A valid request_authorization input for the stack's demo agent. */
export const VALID_REQUEST = {
  agent_id: 'demo-agent',
  action: 'terraform apply --target=prod',
  permissions: ['infra:write', 'state:lock'],
  justification: 'hotfix for CVE-2026-0001',
  ttl_minutes: 30,
};

type Table = Pick<LocalStack, 'dynamodbEndpoint' | 'tableName'>;
const tableDoc = (t: Table) => documentClient(dynamoClient({ region: 'us-east-1', endpoint: t.dynamodbEndpoint }));

/** Every item of the table as stored (DynamoDB attribute values), for tests that look at what was written. */
export async function rawItems(t: Table): Promise<Record<string, unknown>[]> {
  const out = await dynamoClient({ region: 'us-east-1', endpoint: t.dynamodbEndpoint }).send(new ScanCommand({ TableName: t.tableName }));
  return (out.Items ?? []) as Record<string, unknown>[];
}

/** One item as stored, as plain values. */
export async function readItem(t: Table, pk: string): Promise<Record<string, unknown> | undefined> {
  return (await tableDoc(t).send(new GetCommand({ TableName: t.tableName, Key: { pk }, ConsistentRead: true }))).Item;
}

/** The insider's attack: sets fields of an item directly in the table, bypassing ackd. */
export async function writeItemFields(t: Table, pk: string, set: Record<string, unknown>): Promise<void> {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const parts = Object.entries(set).map(([k, v], i) => {
    names[`#f${i}`] = k;
    values[`:v${i}`] = v;
    return `#f${i} = :v${i}`;
  });
  await tableDoc(t).send(new UpdateCommand({ TableName: t.tableName, Key: { pk }, UpdateExpression: `SET ${parts.join(', ')}`, ExpressionAttributeNames: names, ExpressionAttributeValues: values }));
}
