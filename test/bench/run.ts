/**
 * `npm run bench`: throughput of the MCP tools on the local stack, reported as ratios against
 * baselines measured in the same run on the same machine (shared machines are noisy; absolute
 * numbers are shown but only the ratios mean anything across runs).
 *
 * - baseline A: an HTTP round trip to /healthz on the same server (transport floor)
 * - baseline B: a raw DynamoDB GetItem against the same dynalite (store floor)
 */
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { dynamoClient } from '../../lambdas/adapters/dynamodb/client.ts';
import { parseRequestId } from '../../lambdas/core/ids.ts';
import { startIssuer } from '../../spire/issuer.ts';
import { cachedSpireServer } from '../../spire/build.ts';
import { startTestStack, structured, type TestStack } from '../helpers/local-stack.ts';

const N = Number(process.env.BENCH_N ?? 200);

async function timeIt(label: string, n: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.min(20, n); i++) await fn(i); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn(i);
  const perOpMs = Number(process.hrtime.bigint() - t0) / 1e6 / n;
  process.stdout.write(`${label.padEnd(44)} ${perOpMs.toFixed(3)} ms/op\n`);
  return perOpMs;
}

const stack = await startTestStack();
try {
  const mcp = await stack.client();
  const ddb = dynamoClient({ region: 'us-east-1', endpoint: stack.dynamodbEndpoint });
  const args = { agent_id: 'demo-agent', action: 'bench', permissions: ['p'], justification: 'bench', ttl_minutes: 5 };
  const ids: string[] = [];

  const health = await timeIt('baseline A: GET /healthz', N, () => fetch(`${stack.appUrl}/healthz`).then((r) => r.arrayBuffer()));
  const getItem = await timeIt('baseline B: DynamoDB GetItem', N, () => ddb.send(new GetItemCommand({ TableName: stack.tableName, Key: { pk: { S: 'req#none' } } })));
  const req = await timeIt('request_authorization (MCP, + SES mail)', N, async () => {
    ids.push(structured<{ request_id: string }>(await mcp.callTool({ name: 'request_authorization', arguments: args })).request_id);
  });
  const check = await timeIt('check_authorization pending (MCP)', N, (i) => mcp.callTool({ name: 'check_authorization', arguments: { request_id: ids[i % ids.length] } }));
  for (const id of ids) await stack.deps.service.decide(parseRequestId(id), 'approved', 'operator:bench');
  const issue = await timeIt(`check_authorization issuing (${stack.issuerKind})`, Math.min(N, ids.length - 20), (i) =>
    mcp.callTool({ name: 'check_authorization', arguments: { request_id: ids[i + 20] } }),
  );
  const rows: [string, number][] = [['request_authorization', req], ['check (pending)', check], [`check (issuing, ${stack.issuerKind})`, issue]];

  // Issuing through a real spire-server, when one is cached (npm run spire:build).
  if (await cachedSpireServer()) {
    let spireStack: TestStack | undefined;
    try {
      spireStack = await startTestStack({ consent: false, issuer: ({ dir, trustDomain }) => startIssuer({ trustDomain, stateDir: dir, issuer: 'spire', log: () => {} }) });
      const spireMcp = await spireStack.client();
      const n = Math.min(N, 100);
      const spireIds: string[] = [];
      for (let i = 0; i < n + 20; i++) {
        const id = structured<{ request_id: string }>(await spireMcp.callTool({ name: 'request_authorization', arguments: args })).request_id;
        await spireStack.deps.service.decide(parseRequestId(id), 'approved', 'operator:bench');
        spireIds.push(id);
      }
      rows.push(['check (issuing, spire)', await timeIt('check_authorization issuing (spire-server)', n, (i) => spireMcp.callTool({ name: 'check_authorization', arguments: { request_id: spireIds[i + 20] } }))]);
    } finally {
      await spireStack?.stop();
    }
  } else {
    process.stdout.write('(no cached spire-server: run `npm run spire:build` to measure issuing through SPIRE)\n');
  }
  const rss = process.memoryUsage().rss / 2 ** 20;

  process.stdout.write('\nratios (lower is better):\n');
  for (const [label, v] of rows) {
    process.stdout.write(`  ${label.padEnd(32)} ${(v / health).toFixed(1)}x /healthz   ${(v / getItem).toFixed(1)}x GetItem\n`);
  }
  process.stdout.write(`\nprocess RSS after the run: ${rss.toFixed(0)} MiB\n`);
} finally {
  await stack.stop();
}
