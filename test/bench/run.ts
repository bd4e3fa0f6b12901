/**
 * `npm run bench`: throughput of the MCP tools on the local stack, reported as ratios against
 * baselines measured in the same run on the same machine (shared machines are noisy; absolute
 * numbers are shown but only the ratios mean anything across runs).
 *
 * - baseline A: an HTTP round trip to /healthz on the same server (transport floor)
 * - baseline B: a raw DynamoDB GetItem against the same dynalite (store floor)
 *
 * Every state change also writes an audit event and links it into the hash chain; the decide row
 * isolates that cost (one conditional write + linking), and the export/verify rows are per event.
 */
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { dynamoClient } from '../../lambdas/adapters/dynamodb/client.ts';
import { parseRequestId } from '../../lambdas/core/ids.ts';
import { checkpointPublicKey } from '../../lambdas/core/audit/signing.ts';
import { ChainVerifier } from '../../lambdas/core/audit/verify.ts';
import { startIssuer } from '../../spire/issuer.ts';
import { cachedSpireServer } from '../../spire/build.ts';
import { startTestStack, structured, type TestStack } from '../helpers/local-stack.ts';

const N = Number(process.env.BENCH_N ?? 200);

const WARM = 20;

/** Times `n` calls of fn(WARM … WARM+n-1) after WARM warm-up calls fn(0 … WARM-1): every index is used once. */
async function timeIt(label: string, n: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  for (let i = 0; i < WARM; i++) await fn(i);
  const t0 = process.hrtime.bigint();
  for (let i = WARM; i < WARM + n; i++) await fn(i);
  const perOpMs = Number(process.hrtime.bigint() - t0) / 1e6 / n;
  process.stdout.write(`${label.padEnd(44)} ${perOpMs.toFixed(3)} ms/op\n`);
  return perOpMs;
}

// The benchmark creates hundreds of requests of one agent within one clock minute, on purpose
// above the default flood limits (which would refuse them): it measures the tools, not the limits.
const BENCH_LIMITS = { requestsPerMinute: 10_000, openPending: 1000, mailsPerApprover: 1000 };
const stack = await startTestStack({ limits: BENCH_LIMITS });
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
  const decide = await timeIt('approve (operator; + audit event and link)', ids.length - WARM, (i) => stack.deps.service.decide(parseRequestId(ids[i]!), 'approved', 'operator:bench'));
  const issue = await timeIt(`check_authorization issuing (${stack.issuerKind})`, ids.length - WARM, (i) =>
    mcp.callTool({ name: 'check_authorization', arguments: { request_id: ids[i] } }),
  );
  await stack.deps.audit.checkpoint();
  let exported = 0;
  const lines: unknown[] = [];
  const t0 = process.hrtime.bigint();
  for await (const l of stack.deps.audit.export()) {
    lines.push(l);
    if (l.kind === 'event') exported++;
  }
  const exportPerEvent = Number(process.hrtime.bigint() - t0) / 1e6 / exported;
  process.stdout.write(`${`audit export (${exported} events)`.padEnd(44)} ${exportPerEvent.toFixed(3)} ms/event\n`);
  const v = new ChainVerifier({ publicKey: checkpointPublicKey(await stack.deps.audit.publicKeyPem()) });
  const t1 = process.hrtime.bigint();
  for (const l of lines) v.addLine(l);
  if (!v.finish().ok) throw new Error('the benchmark run left an audit log that does not verify');
  const verifyPerEvent = Number(process.hrtime.bigint() - t1) / 1e6 / exported;
  process.stdout.write(`${'audit verify (in process)'.padEnd(44)} ${verifyPerEvent.toFixed(3)} ms/event\n`);
  const rows: [string, number][] = [
    ['request_authorization', req],
    ['check (pending)', check],
    ['approve (+ audit link)', decide],
    [`check (issuing, ${stack.issuerKind})`, issue],
    ['audit export, per event', exportPerEvent],
    ['audit verify, per event', verifyPerEvent],
  ];

  // Issuing through a real spire-server, when one is cached (npm run spire:build).
  if (await cachedSpireServer()) {
    let spireStack: TestStack | undefined;
    try {
      spireStack = await startTestStack({ consent: false, limits: BENCH_LIMITS, issuer: ({ dir, trustDomain }) => startIssuer({ trustDomain, stateDir: dir, issuer: 'spire', log: () => {} }) });
      const spireMcp = await spireStack.client();
      const n = Math.min(N, 100);
      const spireIds: string[] = [];
      for (let i = 0; i < n + WARM; i++) {
        const id = structured<{ request_id: string }>(await spireMcp.callTool({ name: 'request_authorization', arguments: args })).request_id;
        await spireStack.deps.service.decide(parseRequestId(id), 'approved', 'operator:bench');
        spireIds.push(id);
      }
      rows.push(['check (issuing, spire)', await timeIt('check_authorization issuing (spire-server)', n, (i) => spireMcp.callTool({ name: 'check_authorization', arguments: { request_id: spireIds[i] } }))]);
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
