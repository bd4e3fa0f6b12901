/**
 * Where one caller's thread goes (`npx tsx test/bench/cpu-budget.ts`): this process's CPU time
 * per operation (`process.cpuUsage`, user + system, every thread) in closed loops of one caller on
 * the bench's stack, for the floors, one SESv2 send to the local SES, and request_authorization
 * with and without the work that follows it (the audit sequencer, the consent mail). At one
 * caller the throughput row's ratio is close to the ratio of these numbers: everything runs in
 * one Node thread. Reported, not a target; see README "Performance".
 */
import { randomUUID } from 'node:crypto';
import { SESv2Client, SendEmailCommand } from '@aws-sdk/client-sesv2';
import { startTestStack } from '../helpers/local-stack.ts';
import { AgentPool, RotatingCaller, structuredOf } from './agents.ts';
import { WindowSkippingClock } from './clock.ts';
import { startFloorServer } from './floor.ts';
import { closedLoop } from './stats.ts';

const SECONDS = Number(process.env.BUDGET_SECONDS ?? 4);
const clock = new WindowSkippingClock(60_000, 900);
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const stack = await startTestStack({ consent: false, limits: { requestsPerMinute: 10_000, openPending: 1000, concurrentWaits: 100, mailsPerApprover: 1000, mailWindowMinutes: 1 }, clock, logger: quiet, sweepIntervalMs: 0 });
const floorServer = await startFloorServer({ dynamodbEndpoint: stack.dynamodbEndpoint, tableName: stack.tableName });
const agents = new AgentPool(stack, () => clock.countRequest());
const ses = new SESv2Client({ region: 'us-east-1', endpoint: stack.ses.endpoint, credentials: { accessKeyId: 'budget', secretAccessKey: 'budget' } });
try {
  const floor = await floorServer.client();
  await agents.start();
  const caller = new RotatingCaller(agents, 'budget');
  await caller.prepare();
  const ops: [string, () => Promise<unknown>, { paused?: boolean }?][] = [
    ['floor: put_one (MCP + one PutItem)', () => floor.callTool({ name: 'put_one', arguments: { pk: `bench#${randomUUID()}`, item: { agent_id: 'budget', action: 'bench: deploy service', permissions: ['deploy:write'], justification: 'benchmark', requested_at: new Date().toISOString() } } }).then(structuredOf)],
    ['floor: get_one (MCP + one GetItem)', () => floor.callTool({ name: 'get_one', arguments: { pk: 'bench#absent' } }).then(structuredOf)],
    ['one SESv2 SendEmail to the local SES', () => ses.send(new SendEmailCommand({ FromEmailAddress: 'ackd@ackd.local', Destination: { ToAddresses: ['approver@ackd.local'] }, Content: { Simple: { Subject: { Data: 'budget' }, Body: { Text: { Data: 'x'.repeat(2000) }, Html: { Data: `<p>${'x'.repeat(4000)}</p>` } } } } }))],
    ['request_authorization, with what follows', () => caller.request()],
    ['request_authorization, sequencer paused', () => caller.request(), { paused: true }],
  ];
  process.stdout.write(`CPU of this process per operation, one caller, ${SECONDS} s each (load average at start ${(await import('node:os')).loadavg()[0]!.toFixed(1)})\n`);
  for (const [name, fn, o] of ops) {
    await stack.settled(60_000);
    if (o?.paused) await stack.deps.sequencerLoop.stop();
    try {
      await closedLoop(1, 1, fn);
      const c0 = process.cpuUsage();
      const r = await closedLoop(1, SECONDS, fn);
      // What follows the calls (sequencing, mail) is theirs too: counted until the stack is idle.
      if (!o?.paused) await stack.settled(60_000);
      const c = process.cpuUsage(c0);
      process.stdout.write(`${name.padEnd(44)} ${((r.completed * 1000) / r.elapsedMs).toFixed(1).padStart(7)}/s   ${((c.user + c.system) / 1000 / r.completed).toFixed(2).padStart(6)} ms CPU each  (${r.completed})\n`);
    } finally {
      if (o?.paused) stack.deps.sequencerLoop.start();
    }
  }
  await stack.settled(60_000);
} finally {
  ses.destroy();
  await agents.stop();
  await floorServer.stop();
  await stack.stop();
}
