import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dynamoClient } from '../../lambdas/adapters/dynamodb/client.ts';
import { documentClient } from '../../lambdas/adapters/dynamodb/send.ts';
import { DynamoRequestStore } from '../../lambdas/adapters/dynamodb/store.ts';
import { AUDIT_FIELDS, EVENT_COLUMNS, type AuditEvent } from '../../lambdas/core/audit/event.ts';
import { checkpointPublicKey } from '../../lambdas/core/audit/signing.ts';
import { ChainVerifier, type VerifyReport } from '../../lambdas/core/audit/verify.ts';
import type { ExportLine } from '../../lambdas/core/audit/service.ts';
import { isAckdError } from '../../lambdas/core/errors.ts';
import { parseAgentId } from '../../lambdas/core/ids.ts';
import { AuthorizationService } from '../../lambdas/core/service.ts';
import { Sequencer } from '../../lambdas/core/audit/sequencer.ts';
import { CognitoVerifier } from '../../lambdas/adapters/cognito/verifier.ts';
import { consentApi } from '../../lambdas/consent-api/app.ts';
import { cliEnv, runAckd } from '../helpers/cli.ts';
import { signInWithPkce } from '../helpers/cognito-token.ts';
import { memoryLogger, startTestStack, type TestStack } from '../helpers/local-stack.ts';
import { StoreCallCounter } from '../bench/store-calls.ts';

let stack: TestStack;
let env: NodeJS.ProcessEnv;
const agent = parseAgentId('demo-agent');
const ackd = (...args: string[]) => runAckd(env, ...args);

beforeAll(async () => {
  // Dozens of requests of one agent at once, in one clock minute and one mail window: above the
  // default flood limits on purpose (test/integration/limits.test.ts tests those).
  stack = await startTestStack({ limits: { requestsPerMinute: 1000, openPending: 100, mailsPerApprover: 1000 } });
  env = cliEnv(stack, { ACKD_AUDIT_KEY: stack.auditKeyPath });
});
afterAll(async () => {
  await stack?.stop();
});

/** A request, sequenced and announced (its consent mail leaves after its event is in the log). */
const newRequest = async (action = 'deploy v2', ttl = 10) => {
  const { request_id } = await stack.deps.service.requestAuthorization({ agent_id: agent, action, permissions: ['deploy:prod'], justification: 'release train', ttl_minutes: ttl });
  await stack.settled();
  return request_id;
};

async function exportAll(window: { since?: string; until?: string } = {}): Promise<ExportLine[]> {
  await stack.settled();
  const out: ExportLine[] = [];
  for await (const l of stack.deps.audit.export(window)) out.push(l);
  return out;
}

async function verifyStored(): Promise<{ report: VerifyReport; events: AuditEvent[] }> {
  const publicKey = checkpointPublicKey(await stack.deps.audit.publicKeyPem());
  const lines = await exportAll();
  const v = new ChainVerifier({ publicKey });
  lines.forEach((l, i) => v.addLine(l, i + 1));
  return { report: v.finish(), events: lines.filter((l): l is Extract<ExportLine, { kind: 'event' }> => l.kind === 'event') };
}

const eventsOf = (events: AuditEvent[], id: string) => events.filter((e) => e.request_id === id).map((e) => e.type);

/** A second service on the same table whose DynamoDB client fails the writes `fail` picks (the store "unavailable" for them). */
function faultyService(opts: { auditWaitMs?: number } = {}): { service: AuthorizationService; store: DynamoRequestStore; fail: { when: ((input: string) => boolean) | null } } {
  const fail: { when: ((input: string) => boolean) | null } = { when: null };
  const client: DynamoDBClient = dynamoClient({ region: 'us-east-1', endpoint: stack.dynamodbEndpoint });
  client.middlewareStack.add(
    (next) => async (args) => {
      if (fail.when?.(JSON.stringify(args.input))) throw Object.assign(new Error('injected: DynamoDB unavailable'), { name: 'ServiceUnavailable' });
      return next(args);
    },
    { step: 'initialize', name: 'faultInjection' },
  );
  const store = DynamoRequestStore.withAudit(client, stack.tableName, { clock: stack.clock, retentionDays: 30, sealer: stack.deps.store.audit.sealer });
  const service = new AuthorizationService(
    { trustDomain: stack.deps.service.trustDomain, consentBaseUrl: stack.appUrl, retentionDays: 30, ...opts },
    { store, minter: stack.deps.minter, clock: stack.clock, logger: memoryLogger() },
  );
  return { service, store, fail };
}

describe('audit log: one event per state change, in one unforkable chain', () => {
  it('many lifecycles, run concurrently, yield a complete chain that verifies, with no gaps, forks or duplicates', async () => {
    const svc = stack.deps.service;
    const ids = await Promise.all(Array.from({ length: 24 }, (_, i) => newRequest(`deploy ${i}`)));
    const kind = (i: number) => (['approve', 'deny', 'approve-revoke', 'expire'] as const)[i % 4]!;
    // Decisions and refused second decisions, all at once.
    await Promise.all(
      ids.map(async (id, i) => {
        const k = kind(i);
        if (k === 'expire') return;
        const decision = k === 'deny' ? 'denied' : 'approved';
        const results = await Promise.allSettled([svc.decide(id, decision, `sub-${i}`), svc.decide(id, decision === 'approved' ? 'denied' : 'approved', `sub-late-${i}`)]);
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      }),
    );
    // Two agents' checks race for each approved request's one SVID; then revocations.
    const checks = await Promise.all(ids.map((id, i) => (kind(i).startsWith('approve') ? Promise.allSettled([svc.check(agent, id), svc.check(agent, id)]) : Promise.resolve([]))));
    const svids = new Map<string, string>();
    checks.forEach((rs, i) => {
      const delivered = rs.filter((r) => r.status === 'fulfilled' && r.value.status === 'approved' && r.value.svid).map((r) => (r as PromiseFulfilledResult<{ svid_id: string }>).value.svid_id);
      if (kind(i).startsWith('approve')) {
        expect(delivered.length).toBeLessThanOrEqual(1);
        for (const r of rs) if (r.status === 'rejected') expect(isAckdError(r.reason, 'ERR_ISSUANCE_IN_PROGRESS')).toBe(true);
      }
    });
    for (const [i, id] of ids.entries()) {
      if (!kind(i).startsWith('approve')) continue;
      const rec = await stack.deps.service.get(id);
      if (rec.svid_id === null) await svc.check(agent, id); // the race's loser may have left it to a later check
      svids.set(id, (await stack.deps.service.get(id)).svid_id!);
    }
    await Promise.all(ids.filter((_, i) => kind(i) === 'approve-revoke').map((id) => svc.revoke(agent, id, svids.get(id) as never)));
    await stack.deps.audit.checkpoint();
    stack.clock.advanceMinutes(11);
    expect((await svc.sweep()).expired).toBe(ids.filter((_, i) => kind(i) === 'expire').length);

    const { report, events } = await verifyStored();
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    // Contiguous from 1, every event id once: no gaps, no forks, no duplicates.
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(new Set(events.map((e) => e.event_id)).size).toBe(events.length);
    const base = ['requested', 'email_sent'];
    for (const [i, id] of ids.entries()) {
      const expected = {
        approve: [...base, 'approved', 'refused', 'svid_issued'],
        deny: [...base, 'denied', 'refused'],
        'approve-revoke': [...base, 'approved', 'refused', 'svid_issued', 'revoked'],
        expire: [...base, 'expired'],
      }[kind(i)];
      expect(eventsOf(events, id), `${kind(i)} ${id}`).toEqual(expected);
      // The last event's snapshot is the record as stored now.
      const rec = await stack.deps.service.get(id);
      const last = events.filter((e) => e.request_id === id).at(-1)!;
      for (const f of AUDIT_FIELDS) expect(last[f], f).toEqual(rec[f]);
    }
    expect((await stack.deps.store.audit.backlog(10)).count).toBe(0);
  });

  it('every event names its actor: the agent, the approver (Cognito sub), an operator, or ackd', async () => {
    const id = await newRequest('rotate keys');
    await stack.deps.service.decide(id, 'approved', 'operator:alice');
    await stack.deps.service.check(agent, id);
    const { events } = await verifyStored();
    const mine = events.filter((e) => e.request_id === id).map((e) => `${e.type}:${e.actor_type}:${e.actor_id}`);
    expect(mine).toEqual(['requested:agent:demo-agent', 'email_sent:system:ackd', 'approved:operator:alice', 'svid_issued:agent:demo-agent']);

    // A revocation naming the wrong SVID is refused, and the refusal names the agent.
    await expect(stack.deps.service.revoke(agent, id, 'abcdef' as never)).rejects.toMatchObject({ code: 'ERR_SVID_MISMATCH' });
    const after = (await verifyStored()).events.filter((e) => e.request_id === id).at(-1)!;
    expect(after).toMatchObject({ type: 'refused', actor_type: 'agent', actor_id: 'demo-agent', revoked: false });
    expect(after.reason).toMatch(/^revocation refused: ERR_SVID_MISMATCH/);
  });

  it('a decision after expiry is refused and the refusal is an audit event, after the expiry', async () => {
    const id = await newRequest('late', 1);
    stack.clock.advanceMinutes(2);
    await expect(stack.deps.service.decide(id, 'approved', 'sub-late')).rejects.toMatchObject({ code: 'ERR_EXPIRED' });
    const { events } = await verifyStored();
    const mine = events.filter((e) => e.request_id === id);
    expect(mine.map((e) => e.type)).toEqual(['requested', 'email_sent', 'expired', 'refused']);
    expect(mine[3]).toMatchObject({ actor_type: 'approver', actor_id: 'sub-late', decision: 'expired' });
    expect(mine[3]!.reason).toMatch(/^approval refused: ERR_EXPIRED/);
  });
});

describe('audit writes failing never produce an unaudited approval or SVID', () => {
  it('an approval not yet in the log blocks issuance; a sequencer whose log writes fail changes nothing; once sequenced, the SVID follows the approval', async () => {
    const id = await newRequest('waiting audit');
    const { service } = faultyService({ auditWaitMs: 300 });
    await stack.deps.sequencerLoop.stop();
    try {
      expect((await service.decide(id, 'approved', 'sub-alice')).decision).toBe('approved');
      expect((await stack.deps.store.audit.backlog(100)).count).toBeGreaterThanOrEqual(1);
      // No SVID while the approval is not in the log: the check waits a little, then says so.
      await expect(service.check(agent, id)).rejects.toMatchObject({ code: 'ERR_ISSUANCE_IN_PROGRESS' });
      expect((await stack.deps.service.get(id)).svid_id).toBeNull();
      // A sequencer whose event writes fail stops; nothing is half sequenced.
      const broken = faultyService();
      broken.fail.when = (input) => input.includes('audit#evt#');
      const quiet = memoryLogger();
      await expect(new Sequencer({ store: broken.store.audit, clock: stack.clock, logger: quiet, sealer: broken.store.audit.sealer }).run()).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
      expect((await stack.deps.store.audit.backlog(100)).count).toBeGreaterThanOrEqual(1);
      await expect(service.check(agent, id)).rejects.toMatchObject({ code: 'ERR_ISSUANCE_IN_PROGRESS' });
    } finally {
      stack.deps.sequencerLoop.start();
    }
    await stack.settled();
    expect(await service.check(agent, id)).toMatchObject({ status: 'approved', svid_delivered: false });
    const { report, events } = await verifyStored();
    expect(report.problems).toEqual([]);
    expect(eventsOf(events, id)).toEqual(['requested', 'email_sent', 'approved', 'svid_issued']);
    expect((await stack.deps.store.audit.backlog(100)).count).toBe(0);
  });

  it('a stopped run\'s slot beyond the head that does not link is vacated (overwritten with a marker, never deleted) and taken by the next event; the log verifies', async () => {
    await stack.settled();
    const doc = documentClient(dynamoClient({ region: 'us-east-1', endpoint: stack.dynamodbEndpoint }));
    const head = await stack.deps.store.audit.treeHead();
    const slot = `audit#evt#${String(head.size + 1).padStart(12, '0')}`;
    // What a stopped run (or a stale lease holder) left: a well-formed item in the next slot that does not link onto the head.
    const stray = { pk: slot, seq: head.size + 1, v: 1, event_id: 'evt_stray', type: 'requested', at: new Date().toISOString(), logged_at: new Date().toISOString(), prev_hash: '0'.repeat(64), hash: '1'.repeat(64) };
    await doc.send(new PutCommand({ TableName: stack.tableName, Item: stray }));
    await stack.deps.sequencerLoop.stop();
    const quiet = memoryLogger();
    let id: string;
    try {
      ({ request_id: id } = await stack.deps.service.requestAuthorization({ agent_id: agent, action: 'after a stray slot', permissions: ['deploy:prod'], justification: 'release train', ttl_minutes: 10 }));
      const calls = StoreCallCounter.forEndpoint(stack.dynamodbEndpoint);
      try {
        const run = await new Sequencer({ store: stack.deps.store.audit, clock: stack.clock, logger: quiet, sealer: stack.deps.store.audit.sealer }).run();
        expect(run.sequenced).toBeGreaterThanOrEqual(1);
        expect(run.recovered).toBe(0);
        // (no function may delete from the table: the slot is overwritten, not deleted)
        expect(calls.snapshot().byOp.DeleteItem ?? 0).toBe(0);
      } finally {
        calls.stop();
      }
    } finally {
      stack.deps.sequencerLoop.start();
    }
    await stack.settled();
    // The slot now holds the genuine event; the stray one is in the log nowhere.
    const taken = (await doc.send(new GetCommand({ TableName: stack.tableName, Key: { pk: slot }, ConsistentRead: true }))).Item!;
    expect(taken.event_id).not.toBe('evt_stray');
    expect(taken.request_id).toBe(id);
    const { report, events } = await verifyStored();
    expect(report.problems).toEqual([]);
    expect(events.some((e) => e.event_id === 'evt_stray')).toBe(false);
  });

  it('an SVID whose issuance cannot be recorded is never delivered; a later check mints again, and the log holds one issuance', async () => {
    const { service, fail } = faultyService();
    const id = await newRequest('failing issuance audit');
    await stack.deps.service.decide(id, 'approved', 'sub-alice');
    await stack.settled();
    fail.when = (input) => input.includes('svid_issued');
    const attempt = await service.check(agent, id).then(
      (v) => ({ ok: true as const, v }),
      (e: unknown) => ({ ok: false as const, e }),
    );
    expect(attempt.ok).toBe(false);
    if (!attempt.ok) expect(isAckdError(attempt.e, 'ERR_STORE_UNAVAILABLE')).toBe(true);
    // The write that records the SVID carries its event: neither happened, and the key was dropped.
    expect((await stack.deps.service.get(id)).svid_id).toBeNull();
    fail.when = null;
    // The failed call's claim holds until its lease ends; then the SVID is minted and recorded once.
    await expect(service.check(agent, id)).rejects.toMatchObject({ code: 'ERR_ISSUANCE_IN_PROGRESS' });
    stack.clock.advance(31_000);
    expect(await service.check(agent, id)).toMatchObject({ status: 'approved', svid_delivered: false });
    const { report, events } = await verifyStored();
    expect(report.ok).toBe(true);
    expect(eventsOf(events, id)).toEqual(['requested', 'email_sent', 'approved', 'svid_issued']);
  });

  it('with the store unavailable, a decision fails and changes nothing', async () => {
    const { service, fail } = faultyService();
    const id = await newRequest('store down');
    const before = await verifyStored();
    fail.when = () => true;
    await expect(service.decide(id, 'approved', 'sub-alice')).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
    fail.when = null;
    expect((await stack.deps.service.get(id)).decision).toBe('pending');
    const after = await verifyStored();
    expect(after.events.length).toBe(before.events.length);
  });
});

describe('ackd audit CLI', () => {
  it('export → verify round-trips; one changed byte fails verify at that event; CSV has the named columns', async () => {
    const id = await newRequest('cli round trip');
    await stack.deps.service.decide(id, 'approved', 'sub-bob');
    await stack.deps.service.check(agent, id);
    const file = join(stack.dir, 'audit.jsonl');
    const keyFile = join(stack.dir, 'audit-key.pem');
    const exp = await ackd('audit', 'export', '--checkpoint', '--out', file);
    expect(exp.code, exp.stderr).toBe(0);
    expect(exp.stderr).toMatch(/exported \d+ events \(seq 1–\d+\) and \d+ checkpoint/);
    const pub = await ackd('audit', 'public-key');
    expect(pub.stdout).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    await writeFile(keyFile, pub.stdout);

    const ok = await ackd('audit', 'verify', file, '--public-key', keyFile, '--svids', '--strict');
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^OK: \d+ events/);
    expect(ok.stdout).toContain('each approved by a named approver');
    expect(ok.stdout).toMatch(new RegExp(`${id}\\s+sub-bob`));

    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
    const idx = lines.findIndex((l) => l.includes(id) && l.includes('"type":"approved"'));
    const seq = (JSON.parse(lines[idx]!) as { seq: number }).seq;
    lines[idx] = lines[idx]!.replace('"approver_identity":"sub-bob"', '"approver_identity":"sub-eve"');
    const tampered = join(stack.dir, 'tampered.jsonl');
    await writeFile(tampered, lines.join('\n') + '\n');
    const bad = await ackd('audit', 'verify', tampered, '--public-key', keyFile, '--json');
    expect(bad.code).toBe(1);
    const report = JSON.parse(bad.stdout) as VerifyReport;
    expect(report.problems[0]).toMatchObject({ kind: 'hash', seq });
    const human = await ackd('audit', 'verify', tampered, '--public-key', keyFile);
    expect(human.stdout).toMatch(new RegExp(`^BROKEN at seq ${seq}: `));

    const csvFile = join(stack.dir, 'audit.csv');
    expect((await ackd('audit', 'export', '--format', 'csv', '--out', csvFile)).code).toBe(0);
    const csv = (await readFile(csvFile, 'utf8')).split('\r\n');
    expect(csv[0]).toBe(EVENT_COLUMNS.join(','));
    for (const f of AUDIT_FIELDS) expect(csv[0]!.split(',')).toContain(f);
    expect(csv.filter((l) => l.length > 0)).toHaveLength(report.events + 1);
    const again = await ackd('audit', 'export', '--out', csvFile);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/EEXIST/);
  });

  it('a window export starts at a signed checkpoint and verifies on its own; live verify agrees', async () => {
    await stack.deps.audit.checkpoint();
    stack.clock.advanceMinutes(1);
    const since = stack.clock.now().toISOString();
    const id = await newRequest('windowed');
    await stack.deps.service.decide(id, 'denied', 'sub-carol');
    await stack.settled();
    stack.clock.advanceMinutes(1);
    const until = stack.clock.now().toISOString();
    await stack.deps.audit.checkpoint();
    const file = join(stack.dir, 'window.jsonl');
    expect((await ackd('audit', 'export', '--since', since, '--until', until, '--out', file)).code).toBe(0);
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as ExportLine);
    expect(lines[0]!.kind).toBe('checkpoint');
    expect(lines.filter((l) => l.kind === 'event').map((l) => (l as AuditEvent).request_id)).toEqual([id, id, id]);
    const keyFile = join(stack.dir, 'audit-key-2.pem');
    await writeFile(keyFile, (await ackd('audit', 'public-key')).stdout);
    const v = await ackd('audit', 'verify', file, '--public-key', keyFile, '--strict', '--json');
    expect(v.code, v.stdout).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, start: 'checkpoint', events: 3, unsigned_tail: 0 });

    const live = await ackd('audit', 'verify', '--live', '--json');
    expect(live.code, live.stdout + live.stderr).toBe(0);
    expect(JSON.parse(live.stdout)).toMatchObject({ ok: true, start: 'genesis', unlinked: 0 });
  });

  it('prove → verify-proof: a request\'s events with audit paths to a signed tree head, checked offline; one changed byte fails', async () => {
    const id = await newRequest('provable');
    await stack.deps.service.decide(id, 'approved', 'sub-erin');
    await stack.deps.service.check(agent, id);
    await stack.settled();
    const file = join(stack.dir, `proof-${id}.json`);
    const p = await ackd('audit', 'prove', id, '--out', file);
    expect(p.code, p.stderr).toBe(0);
    const proof = JSON.parse(await readFile(file, 'utf8')) as { events: { event: AuditEvent }[] };
    expect(proof.events.map((e) => e.event.type)).toEqual(['requested', 'email_sent', 'approved', 'svid_issued']);
    const keyFile = join(stack.dir, 'audit-key-proof.pem');
    await writeFile(keyFile, (await ackd('audit', 'public-key')).stdout);
    const ok = await ackd('audit', 'verify-proof', file, '--public-key', keyFile, '--json');
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, request_id: id });
    const forged = join(stack.dir, `proof-${id}-forged.json`);
    await writeFile(forged, (await readFile(file, 'utf8')).replace('"sub-erin"', '"sub-evan"'));
    const bad = await ackd('audit', 'verify-proof', forged, '--public-key', keyFile);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/NOT PROVEN: event \d+: its content does not match its hash/);
    expect((await ackd('audit', 'prove', 'req_nope')).stderr).toMatch(/ERR_/);
  });

  it('32 concurrent writers: every event sequenced once, in each request\'s own order, within a bounded delay; the log verifies', async () => {
    const svc = stack.deps.service;
    const ids = await Promise.all(
      Array.from({ length: 32 }, async (_, i) => {
        const { request_id } = await svc.requestAuthorization({ agent_id: agent, action: `writer ${i}`, permissions: ['deploy:prod'], justification: 'load', ttl_minutes: 10 });
        await svc.decide(request_id, i % 2 === 0 ? 'approved' : 'denied', `sub-w${i}`);
        await svc.decide(request_id, 'approved', `sub-x${i}`).catch(() => undefined); // refused: recorded
        return request_id;
      }),
    );
    // Bounded: the sequencer runs right after writes; 32 lifecycles are in the log well within this.
    await stack.settled(10_000);
    const { report, events } = await verifyStored();
    expect(report.problems).toEqual([]);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => (events[0]?.seq ?? 1) + i));
    expect(new Set(events.map((e) => e.event_id)).size).toBe(events.length);
    for (const [i, id] of ids.entries()) {
      const mine = eventsOf(events, id);
      expect(mine.filter((t) => t === 'requested')).toHaveLength(1);
      expect(mine[0]).toBe('requested');
      const decided = i % 2 === 0 ? 'approved' : 'denied';
      expect(mine.indexOf(decided)).toBeGreaterThan(0);
      expect(mine.indexOf('refused')).toBeGreaterThan(mine.indexOf(decided));
    }
  });

  it('bad input is refused with a clear error and exit code 2', async () => {
    const since = await ackd('audit', 'export', '--since', 'yesterday');
    expect(since.code).toBe(2);
    expect(since.stderr).toMatch(/ERR_INVALID_INPUT: since: must be an ISO-8601/);
    const order = await ackd('audit', 'export', '--since', '2026-11-02', '--until', '2026-11-01');
    expect(order.stderr).toMatch(/until: must be after since/);
    expect((await ackd('audit', 'verify')).stderr).toMatch(/either a file to verify or --live/);
    expect((await ackd('audit', 'verify', join(stack.dir, 'nope.jsonl'))).stderr).toMatch(/cannot read .*ENOENT/);
    const notKey = join(stack.dir, 'not-a-key.pem');
    await writeFile(notKey, 'hello');
    expect((await ackd('audit', 'verify', '--live', '--public-key', notKey)).stderr).toMatch(/--public-key: .*not a PEM public key/);
  });
});

describe('HTTP audit export (approver-authenticated, streamed)', () => {
  it('needs an approver token; streams JSONL that verifies, or CSV; refuses bad parameters', async () => {
    const id = await newRequest('http export');
    const cog = stack.cognito!;
    const { idToken } = await signInWithPkce({ cognitoUrl: cog.url, clientId: cog.clientId, redirectUri: stack.consentUiUrl, username: cog.approverUsername, password: cog.approverPassword });
    const get = (q: string, token: string | null = idToken) => fetch(`${stack.appUrl}/api/audit/export${q}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    expect((await get('', null)).status).toBe(401);
    expect((await get('', stack.agentApiKey)).status).toBe(401);

    const res = await get('?format=jsonl');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    expect(res.headers.get('content-disposition')).toMatch(/^attachment; filename="ackd-audit-.*\.jsonl"$/);
    const text = await res.text();
    const publicKey = checkpointPublicKey(await (await fetch(`${stack.appUrl}/api/audit/public-key`, { headers: { authorization: `Bearer ${idToken}` } })).text());
    const v = new ChainVerifier({ publicKey });
    text.trimEnd().split('\n').forEach((l, i) => v.addLine(JSON.parse(l), i + 1));
    const report = v.finish();
    expect(report.problems).toEqual([]);
    expect(text).toContain(`"request_id":"${id}"`);

    const csv = await get('?format=csv');
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    expect((await csv.text()).split('\r\n')[0]).toBe(EVENT_COLUMNS.join(','));

    // The export function's app serves the audit routes only: no decisions through it.
    const exportOnly = consentApi({ service: stack.deps.service, verifier: new CognitoVerifier({ issuer: cog.issuer, jwksUrl: cog.jwksUrl, clientId: cog.clientId, clock: stack.clock }), logger: memoryLogger(), audit: stack.deps.audit, decisions: false });
    const auth = { authorization: `Bearer ${idToken}` };
    expect((await exportOnly.request('/requests/req_00000000000000000000000000', { headers: auth })).status).toBe(404);
    const viaExportApp = await exportOnly.request('/audit/export?format=csv', { headers: auth });
    expect(viaExportApp.status).toBe(200);
    expect(await viaExportApp.text()).toContain(id);

    for (const [q, field] of [
      ['?format=xml', 'format'],
      ['?since=last-week', 'since'],
      ['?limit=5', 'limit'],
    ] as const) {
      const r = await get(q);
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: { field: string } }).error.field).toBe(field);
    }
  });
});

describe('retention', () => {
  it('events about to expire are left out of exports, so TTL holes never read as tampering; what remains verifies', async () => {
    const old = await newRequest('old news');
    await stack.deps.service.decide(old, 'denied', 'sub-dave');
    await stack.settled();
    await stack.deps.audit.checkpoint();
    // 364.5 days later (retention is 365): the old events are within a day of deletion.
    stack.clock.advanceMinutes(364.5 * 24 * 60);
    const fresh = await newRequest('fresh');
    await stack.deps.audit.checkpoint();
    const lines = await exportAll();
    const end = lines.at(-1) as Extract<ExportLine, { kind: 'end' }>;
    expect(end.since).toBe(new Date(stack.clock.now().getTime() - 364 * 86_400_000).toISOString());
    const ids = new Set(lines.filter((l) => l.kind === 'event').map((l) => (l as AuditEvent).request_id));
    expect(ids.has(fresh)).toBe(true);
    expect(ids.has(old)).toBe(false);
    const { report } = await verifyStored();
    expect(report.problems).toEqual([]);
    expect(report.start).toBe('checkpoint');
  });
});

describe('tampering with the stored log', () => {
  it('an event changed in the table fails live verify at its seq, and ackd refuses to sign a checkpoint over it', async () => {
    const id = await newRequest('before tampering');
    await stack.deps.service.decide(id, 'approved', 'sub-alice'); // not yet under a checkpoint
    const { events } = await verifyStored();
    const victim = events.find((e) => e.request_id === id && e.type === 'approved')!;
    const doc = documentClient(dynamoClient({ region: 'us-east-1', endpoint: stack.dynamodbEndpoint }));
    await doc.send(
      new UpdateCommand({
        TableName: stack.tableName,
        Key: { pk: `audit#evt#${String(victim.seq).padStart(12, '0')}` },
        UpdateExpression: 'SET approver_identity = :who',
        ExpressionAttributeValues: { ':who': 'sub-mallory' },
      }),
    );
    const live = await ackd('audit', 'verify', '--live', '--json');
    expect(live.code, live.stdout.slice(0, 3000)).toBe(1);
    expect((JSON.parse(live.stdout) as VerifyReport).problems[0]).toMatchObject({ kind: 'hash', seq: victim.seq });

    const cp = await ackd('audit', 'checkpoint');
    expect(cp.code).toBe(1);
    expect(cp.stderr).toMatch(new RegExp(`does not verify \\(event ${victim.seq}: its content does not match its hash`));
  });
});

