import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoAuditLog } from '../../lambdas/adapters/dynamodb/audit.ts';
import { dynamoClient } from '../../lambdas/adapters/dynamodb/client.ts';
import { TABLE } from '../../lambdas/adapters/dynamodb/schema.ts';
import { documentClient } from '../../lambdas/adapters/dynamodb/send.ts';
import { auditEvent } from '../../lambdas/core/audit/event.ts';
import { Sequencer } from '../../lambdas/core/audit/sequencer.ts';
import { parseAgentId } from '../../lambdas/core/ids.ts';
import { cliEnv, runAckd } from '../helpers/cli.ts';
import { ManualClock } from '../helpers/clock.ts';
import { startTestStack, type TestStack } from '../helpers/local-stack.ts';

// `ackd audit quarantine`, the real bin against a real local stack (dynalite): a table writer
// without the seal key forges outbox entries with the AWS SDK, the sequencer refuses and
// quarantines them, and the operator lists them, as text and as JSON, by window and limit. The
// chain's export and live verification see none of it.

let stack: TestStack;
let env: NodeJS.ProcessEnv;
const ackd = (...args: string[]) => runAckd(env, ...args);
const raw = () => documentClient(dynamoClient({ region: 'us-east-1', endpoint: stack.dynamodbEndpoint }));
const IX = TABLE.auditLog;
const DAY = 86_400_000;

beforeAll(async () => {
  stack = await startTestStack();
  env = cliEnv(stack, { ACKD_AUDIT_KEY: stack.auditKeyPath });
  // A genuine event, so the log the export and verify read is not empty.
  await stack.deps.service.requestAuthorization({ agent_id: parseAgentId('demo-agent'), action: 'drop the staging db', permissions: ['db:admin'], justification: 'reset', ttl_minutes: 30 });
  await stack.settled();
});
afterAll(async () => {
  await stack?.stop();
});

/** A forged operator change in the outbox index, as someone who can write the table but has no seal key writes one. */
async function forge(itemEventId: string, event: { event_id: string; type: string }): Promise<void> {
  const e = { ...auditEvent('tool_call', { type: 'agent', id: 'demo-agent' }, stack.clock.now()), ...event };
  await raw().send(
    new PutCommand({
      TableName: stack.tableName,
      Item: { pk: `audit#admin#${itemEventId}`, entry: { event: e, change: { call: { tool: 'delete_repo' } }, seal: `v1.${'A'.repeat(43)}` }, [IX.partitionKey]: 'outbox', [IX.sortKey]: `${e.at}#${e.event_id}` },
    }),
  );
}

/** The sequencer's next runs: it refuses (and quarantines) every forged entry waiting. */
async function sequence(): Promise<void> {
  stack.deps.sequencerLoop.nudge();
  await stack.settled();
}

const jsonOf = async (...args: string[]) => {
  const r = await ackd('audit', 'quarantine', '--json', ...args);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { since: string; until: string | null; order: string; limit: number; count: number; more: number; more_exact: boolean; records: Record<string, unknown>[] };
};

const ESC = '\u001b';
const HOSTILE = `evt_${ESC}[2J${ESC}[31mred\nFAKE LINE\u202e`;

describe('ackd audit quarantine', () => {
  let firstAt: string;
  let secondAt: string;
  let exportBefore: string[];

  it('with nothing refused, says so', async () => {
    const r = await ackd('audit', 'quarantine');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^no refused entries quarantined from \d{4}-\d\d-\d\dT[\d:.]+Z to now\n$/);
    expect((await jsonOf()).records).toEqual([]);
  });

  it('lists what the sequencer refused, newest first, one line each, the table\'s strings made harmless', async () => {
    exportBefore = (await ackd('audit', 'export')).stdout.split('\n').filter((l) => l.includes('"kind":"event"'));
    expect(exportBefore.length).toBeGreaterThan(0);
    // Three at one time, two an hour later (the stack's clock; the CLI's window is real time).
    firstAt = stack.clock.now().toISOString();
    for (const n of [1, 2, 3]) await forge(`evt_forged_q${n}`, { event_id: `evt_forged_q${n}`, type: 'tool_call' });
    await sequence();
    stack.clock.advance(3_600_000);
    secondAt = stack.clock.now().toISOString();
    await forge(`evt_forged_q4`, { event_id: 'evt_forged_q4', type: 'approved' });
    await forge(HOSTILE, { event_id: HOSTILE, type: `tool_call${ESC}]0;title\u0007` });
    await sequence();

    const r = await ackd('audit', 'quarantine');
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^5 refused entries quarantined from \S+ to now, newest first:$/);
    expect(lines).toHaveLength(6); // the hostile line feed made no line of its own
    expect(r.stdout).not.toContain(ESC);
    expect(r.stdout).not.toContain('\u0007');
    expect(r.stdout).not.toContain('\u202e');
    expect(r.stdout).not.toMatch(/^FAKE LINE/m);
    const hostile = lines.find((l) => l.includes('red FAKE LINE'))!;
    expect(hostile).toContain('[U+001B][2J[U+001B][31mred FAKE LINE[U+202E]');
    expect(hostile).toContain('tool_call[U+001B]]0;title[U+0007]');
    // Each line: time, reason, source, event type and id, size, the first part of the message.
    const q1 = lines.find((l) => l.includes('audit#admin#evt_forged_q1 '))!;
    expect(q1).toMatch(new RegExp(`^${firstAt.replace(/\./g, '\\.')}  mismatch   audit#admin#evt_forged_q1  tool_call evt_forged_q1  \\d+ B  the seal does not match this entry stored here`));
    // Newest first: the two of the second time before the three of the first.
    expect(lines.slice(1, 3).every((l) => l.startsWith(secondAt))).toBe(true);
    expect(lines.slice(3).every((l) => l.startsWith(firstAt))).toBe(true);
  });

  it('--json prints the records with their entries as stored; --oldest-first turns the order', async () => {
    const text = (await ackd('audit', 'quarantine', '--json')).stdout;
    expect(text).not.toContain(ESC);
    expect(text).not.toContain('\u202e'); // (escaped: JSON.parse gives it back, below)
    const j = await jsonOf();
    expect(j).toMatchObject({ until: null, order: 'newest', limit: 100, count: 5, more: 0, more_exact: true });
    expect(Date.parse(j.since)).toBeLessThan(Date.now() - 7 * DAY + 60_000);
    const hostile = j.records.find((x) => x.source === `audit#admin#${HOSTILE}`)!;
    expect(hostile).toMatchObject({ reason: 'mismatch', quarantined_at: secondAt, entry: { event: { event_id: HOSTILE }, seal: `v1.${'A'.repeat(43)}` } });
    expect(hostile.entry_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(typeof hostile.entry_bytes).toBe('number');
    const oldest = await jsonOf('--oldest-first');
    expect(oldest.records.map((x) => x.id)).toEqual([...j.records].reverse().map((x) => x.id));
    expect(oldest.order).toBe('oldest');
  });

  it('--since / --until pick a window; --limit says how many more there are', async () => {
    const first = await jsonOf('--since', firstAt, '--until', secondAt);
    expect(first.records.map((x) => x.source).sort()).toEqual(['audit#admin#evt_forged_q1', 'audit#admin#evt_forged_q2', 'audit#admin#evt_forged_q3']);
    expect((await jsonOf('--since', secondAt)).records).toHaveLength(2);
    // A date is midnight UTC: the day of the first refusal up to (not including) it is empty.
    expect((await jsonOf('--until', firstAt.slice(0, 10))).records).toEqual([]);

    const two = await ackd('audit', 'quarantine', '--limit', '2');
    expect(two.code, two.stderr).toBe(0);
    const lines = two.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^2 refused entries /);
    expect(lines).toHaveLength(4);
    expect(lines[3]).toMatch(/^… and 3 more in this window \(raise --limit/);
    expect(await jsonOf('--limit', '2', '--oldest-first')).toMatchObject({ count: 2, more: 3, more_exact: true, limit: 2 });
  });

  it('by default looks back 7 days: an older refusal is listed only when asked for', async () => {
    // A sequencer whose clock is 10 days back (as if it had run then) refuses one more.
    const past = new ManualClock(new Date(stack.clock.now().getTime() - 10 * DAY));
    const log = new DynamoAuditLog(documentClient(dynamoClient({ region: 'us-east-1', endpoint: stack.dynamodbEndpoint })), stack.tableName, { clock: past, retentionDays: 365 });
    await stack.deps.sequencerLoop.stop();
    try {
      await forge('evt_forged_old', { event_id: 'evt_forged_old', type: 'tool_call' });
      expect(await new Sequencer({ store: log, clock: past, logger: stack.logs, sealer: stack.deps.store.audit.sealer }).run()).toMatchObject({ refused: 1 });
    } finally {
      stack.deps.sequencerLoop.start();
    }
    expect((await jsonOf()).records.map((x) => x.source)).not.toContain('audit#admin#evt_forged_old');
    const wide = await jsonOf('--since', new Date(Date.now() - 11 * DAY).toISOString().slice(0, 10));
    expect(wide.records).toHaveLength(6);
    expect(wide.records.at(-1)).toMatchObject({ source: 'audit#admin#evt_forged_old', quarantined_at: past.now().toISOString() });
    // --until alone: the 7 days before it.
    const before = await jsonOf('--until', new Date(past.now().getTime() + 1).toISOString());
    expect(before.records.map((x) => x.source)).toEqual(['audit#admin#evt_forged_old']);
    expect(Date.parse(before.since)).toBe(past.now().getTime() + 1 - 7 * DAY);
  });

  it('refuses bad input with a clear error naming it, exit code 2', async () => {
    const bad = async (args: string[], message: RegExp) => {
      const r = await ackd('audit', 'quarantine', ...args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stdout).toBe('');
    };
    await bad(['--since', 'yesterday'], /^error: ERR_INVALID_INPUT: since: must be an ISO-8601 UTC date or time .*\(got "yesterday"\)/);
    await bad(['--until', '2026-13-45'], /ERR_INVALID_INPUT: until: must be an ISO-8601/);
    await bad(['--since', '2026-11-02', '--until', '2026-11-01'], /ERR_INVALID_INPUT: until: must be after since/);
    for (const limit of ['0', '-1', '1.5', 'ten', '1001']) await bad(['--limit', limit], /^error: ERR_INVALID_INPUT: --limit: must be an integer from 1 to 1000/);
    const help = await ackd('audit', 'quarantine', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: ackd audit quarantine/m);
  });

  it("leaves the chain alone: the export's events are the same, and audit verify --live is clean", async () => {
    const exported = (await ackd('audit', 'export')).stdout.split('\n');
    expect(exported.filter((l) => l.includes('"kind":"event"'))).toEqual(exportBefore);
    expect(exported.some((l) => l.includes('forged') || l.includes('quarantine'))).toBe(false);
    const v = await ackd('audit', 'verify', '--live', '--json');
    expect(v.code, v.stdout + v.stderr).toBe(0);
    const report = JSON.parse(v.stdout) as { ok: boolean; problems: unknown[]; warnings: unknown[] };
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect((await stack.deps.store.audit.backlog(10)).count).toBe(0);
  });
});
