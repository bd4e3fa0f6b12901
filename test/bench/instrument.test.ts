/**
 * The benchmark's instruments, against a real dynalite: the store-call counter counts ackd's calls
 * and only those, the floor MCP server's tools do what they say over a real MCP client, and the
 * helpers that decide ordering, percentiles and the mail window behave. (No timings are asserted.)
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateTableCommand, GetItemCommand } from '@aws-sdk/client-dynamodb';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { dynamoClient } from '../../lambdas/adapters/dynamodb/client.ts';
import { structuredOf } from './agents.ts';
import { WindowSkippingClock } from './clock.ts';
import { startFloorServer, type FloorServer } from './floor.ts';
import { bundleRows, verifyRow } from './optional-rows.ts';
import { latencyRow, parseLastJson, rateRow, table } from './report.ts';
import { interleaved, percentile } from './stats.ts';
import { StoreCallCounter, tagAsBench } from './store-calls.ts';

const require = createRequire(import.meta.url);
const TABLE = 'bench-instrument';

let ddbServer: Server;
let endpoint: string;
let floor: FloorServer;
let client: Client;

beforeAll(async () => {
  const dynalite = require('dynalite') as (o: Record<string, unknown>) => Server;
  ddbServer = dynalite({ createTableMs: 0 });
  await new Promise<void>((resolve) => ddbServer.listen(0, '127.0.0.1', () => resolve()));
  endpoint = `http://127.0.0.1:${(ddbServer.address() as AddressInfo).port}`;
  await dynamoClient({ region: 'us-east-1', endpoint }).send(
    new CreateTableCommand({ TableName: TABLE, AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }], KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }], BillingMode: 'PAY_PER_REQUEST' }),
  );
  floor = await startFloorServer({ dynamodbEndpoint: endpoint, tableName: TABLE });
  client = await floor.client();
});

afterAll(async () => {
  await floor?.stop();
  ddbServer?.closeAllConnections();
  await new Promise<void>((resolve) => (ddbServer ? ddbServer.close(() => resolve()) : resolve()));
});

describe('store-call counter', () => {
  it("counts each untagged call by its operation, and leaves the benchmark's own calls out", async () => {
    const counter = StoreCallCounter.forEndpoint(endpoint);
    try {
      const before = counter.snapshot();
      const ackdLike = dynamoClient({ region: 'us-east-1', endpoint });
      await ackdLike.send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: 'nothing' } } }));
      await ackdLike.send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: 'nothing' } } }));
      await tagAsBench(dynamoClient({ region: 'us-east-1', endpoint })).send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: 'nothing' } } }));
      await client.callTool({ name: 'put_one', arguments: { pk: 'x#counted-not', item: { a: 1 } } });
      expect(counter.since(before)).toEqual({ total: 2, reads: 2, byOp: { GetItem: 2 } });
    } finally {
      counter.stop();
    }
  });

  it('counts nothing once stopped', async () => {
    const counter = StoreCallCounter.forEndpoint(endpoint);
    counter.stop();
    await dynamoClient({ region: 'us-east-1', endpoint }).send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: 'nothing' } } }));
    expect(counter.snapshot().total).toBe(0);
  });
});

describe('floor MCP server', () => {
  it('put_one writes one item (once: the put is conditional) and get_one reads it back', async () => {
    expect(structuredOf(await client.callTool({ name: 'put_one', arguments: { pk: 'x#1', item: { agent_id: 'a', n: 2 } } }))).toEqual({ pk: 'x#1' });
    expect(structuredOf(await client.callTool({ name: 'get_one', arguments: { pk: 'x#1' } }))).toEqual({ item: { pk: 'x#1', agent_id: 'a', n: 2 } });
    expect(structuredOf(await client.callTool({ name: 'get_one', arguments: { pk: 'x#none' } }))).toEqual({ item: null });
    await expect(client.callTool({ name: 'put_one', arguments: { pk: 'x#1' } })).rejects.toThrow(/conditional/i);
  });

  it('requires a bearer header, as ackd does', async () => {
    const res = await fetch(floor.mcpUrl, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' });
    expect(res.status).toBe(401);
  });
});

describe('helpers', () => {
  it('interleaves A B, B A, … and keeps only the samples after the warm-up', async () => {
    const order: string[] = [];
    const r = await interleaved(
      3,
      1,
      async (i) => void order.push(`a${i}`),
      async (i) => void order.push(`b${i}`),
    );
    expect(order).toEqual(['a0', 'b0', 'b1', 'a1', 'a2', 'b2', 'b3', 'a3']);
    expect([r.a.length, r.b.length]).toEqual([3, 3]);
  });

  it('percentile is the nearest rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect([percentile(xs, 50), percentile(xs, 95), percentile(xs, 100), percentile([7], 50)]).toEqual([50, 95, 100, 7]);
    expect(percentile([], 50)).toBeNaN();
  });

  it('the clock moves to the next window after the given number of requests', () => {
    const c = new WindowSkippingClock(60_000, 3);
    for (let i = 0; i < 5; i++) c.countRequest();
    expect(c.skippedMs).toBe(60_000);
    c.countRequest();
    expect(c.skippedMs).toBe(120_000);
    expect(Math.abs(c.now().getTime() - Date.now() - 120_000)).toBeLessThan(1000);
  });

  it('rows: latency ratios pass at or under the target, throughput ratios at or over it', () => {
    expect(latencyRow('x', 'x', 12, 10, '1 + 1', 1.2).pass).toBe(true);
    expect(latencyRow('x', 'x', 13, 10, '1 + 1', 1.2).pass).toBe(false);
    expect(rateRow('x', 'x', 4, 10, '1 + 1', 0.5).pass).toBe(false);
    expect(rateRow('x', 'x', 5, 10, '1 + 1', 0.5).pass).toBe(true);
    expect(table([latencyRow('id', 'check p50', 12, 10, '1 + 1', 1.2)])).toMatch(/check p50\s+12\.0 ms\s+10\.0 ms\s+1\.20×\s+≤ 1\.2×\s+PASS\s+1 \+ 1/);
  });

  it('reads the JSON a child printed, after other lines', () => {
    expect(parseLastJson('{"a":1}')).toEqual({ a: 1 });
    expect(parseLastJson('building…\nstill building\n{\n  "bundle": { "ackd": 1 }\n}\n')).toEqual({ bundle: { ackd: 1 } });
  });
});

describe('rows of code other engineers own', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'ackd-bench-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('say they are absent until the files are there', async () => {
    expect((await verifyRow(root, 1)).note).toBe('verify row: test/bench/verify-svid.ts not present');
    expect((await bundleRows(root)).map((r) => r.note)).toEqual(['scripts/bundle-size.ts not present']);
  });

  it("print what verify-svid.ts and bundle-size.ts --json report, against the issue's targets", async () => {
    await mkdir(join(root, 'test', 'bench'), { recursive: true });
    await mkdir(join(root, 'scripts'));
    await writeFile(
      join(root, 'test', 'bench', 'verify-svid.ts'),
      'export async function measureVerify(opts?: { seconds?: number }) { return { ackdPerSec: 600, floorPerSec: 1000, ratio: 0.6, samples: (opts?.seconds ?? 0) * 100 }; }\n',
    );
    await writeFile(
      join(root, 'scripts', 'bundle-size.ts'),
      "console.log('bundling…');\nconsole.log(JSON.stringify({ bundle: { ackd: 2048, floor: 1024, ratio: 2 }, coldImport: { ackd: 120, floor: 100, ratio: 1.2, samples: 5 } }, null, 2));\n",
    );
    const v = await verifyRow(root, 3);
    expect([v.ackd, v.floor, v.ratio, v.samples, v.pass]).toEqual([600, 1000, 0.6, '300', true]);
    const [size, cold] = await bundleRows(root);
    expect([size!.ackd, size!.floor, size!.ratio, size!.pass]).toEqual([2, 1, 2, false]);
    expect([cold!.ackd, cold!.floor, cold!.samples, cold!.pass]).toEqual([120, 100, '5', true]);
  });
});
