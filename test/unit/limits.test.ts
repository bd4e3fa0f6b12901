import { describe, expect, it } from 'vitest';
import { MemoryLimitStore } from '../../lambdas/adapters/memory/limits.ts';
import { renderDigestEmail } from '../../lambdas/adapters/ses/digest.ts';
import { loadConfig } from '../../lambdas/config.ts';
import { auditEvent, type AuditEvent } from '../../lambdas/core/audit/event.ts';
import { MemoryRequestStore } from '../../lambdas/adapters/memory/store.ts';
import { isAckdError } from '../../lambdas/core/errors.ts';
import { parseAgentId, parseTrustDomain, type AgentId, type RequestId, type SvidId } from '../../lambdas/core/ids.ts';
import { DEFAULT_LIMITS, Limits, type DigestContent, type LimitsConfig, type RecipientNotifier } from '../../lambdas/core/limits.ts';
import type { Logger, SvidMinter } from '../../lambdas/core/ports.ts';
import type { AuthorizationRecord } from '../../lambdas/core/request.ts';
import { AuthorizationService } from '../../lambdas/core/service.ts';
import { ManualClock } from '../helpers/clock.ts';
import { refusal } from '../helpers/refusal.ts';
import { HOSTILE, pendingRecord } from '../helpers/consent-fixtures.ts';

/** The in-memory RequestStore, with views of what it holds for the assertions. */
class MemoryRequests extends MemoryRequestStore {
  get requestCount(): number {
    return this.chainEvents().filter((e) => e.type === 'requested').length;
  }
  get eventLog(): { requestId: RequestId; event: AuditEvent }[] {
    return this.chainEvents().map((event) => ({ requestId: event.request_id as RequestId, event }));
  }
  /** Decides a request (as a table write with its event); resolves once the write's event is sequenced. */
  async decideNow(id: RequestId, decision: 'approved' | 'denied'): Promise<void> {
    const at = this.clock.now();
    const now = at.toISOString();
    const vote = { voter: 'test', email: null, vote: decision === 'approved' ? 'approve' : 'deny', at: now, groups: [] };
    const params = { now, approver: 'test', email: null, svidExpiresAt: decision === 'approved' ? now : null, vote, seen: 0 };
    // Awaited: the store sequences each write's event before the write returns, and a write made
    // while that run is still going would find the sequencer busy (its event left waiting).
    await this.apply(decision === 'approved' ? 'approve' : 'deny', id, params, auditEvent(decision, { type: 'approver', id: 'test' }, at));
  }
}

/** Records what would have been mailed, to whom. */
class RecordingNotifier implements RecipientNotifier {
  readonly mails: { to: readonly string[]; requestId: RequestId }[] = [];
  readonly digests: { to: string; digest: DigestContent }[] = [];
  fail = false;
  constructor(private readonly approvers: readonly string[]) {}
  recipients(): readonly string[] {
    return this.approvers;
  }
  notify(record: AuthorizationRecord, _url: string, to: readonly string[] = this.approvers): Promise<void> {
    if (this.fail) return Promise.reject(new Error('mail down'));
    this.mails.push({ to, requestId: record.request_id });
    return Promise.resolve();
  }
  notifyDigest(to: string, digest: DigestContent): Promise<void> {
    if (this.fail) return Promise.reject(new Error('mail down'));
    this.digests.push({ to, digest });
    return Promise.resolve();
  }
}

const quiet: Logger & { lines: string[] } = { lines: [], info: () => undefined, warn: (m) => void quiet.lines.push(m), error: (m) => void quiet.lines.push(m) };
const noMint: SvidMinter = { mint: () => Promise.reject(new Error('no')), trustBundlePem: () => Promise.reject(new Error('no')) };

function setup(over: Partial<LimitsConfig> = {}, approvers = ['a@example.com']) {
  const clock = new ManualClock('2026-11-30T03:09:48.000Z');
  const limitStore = new MemoryLimitStore();
  const limits = new Limits({ ...DEFAULT_LIMITS, ...over }, { store: limitStore, clock, retentionDays: 30 });
  const requests = new MemoryRequests(clock);
  const notifier = new RecordingNotifier(approvers);
  const service = new AuthorizationService(
    { trustDomain: parseTrustDomain('ackd.test'), consentBaseUrl: 'https://consent.example', retentionDays: 30 },
    { store: requests, minter: noMint, clock, logger: quiet, notifier, limits },
  );
  return { clock, limitStore, limits, requests, notifier, service };
}

const agent = parseAgentId('demo-agent');
const ask = (service: AuthorizationService, agentId: AgentId = agent, action = 'deploy') =>
  service.requestAuthorization({ agent_id: agentId, action, permissions: ['deploy:prod'], justification: 'release', ttl_minutes: 30 });


describe('request limits (in-memory limit store)', () => {
  it('refuses the 31st request attempt of a minute with when to retry, and changes nothing', async () => {
    const { service, requests, notifier, clock } = setup({ openPending: 100 });
    for (let i = 0; i < 30; i++) await ask(service);
    const before = { records: requests.requestCount, events: requests.eventLog.length, mails: notifier.mails.length };
    const e = await refusal(ask(service));
    expect(e.code).toBe('ERR_RATE_LIMITED');
    expect(e.message).toBe('agent demo-agent made 30 requests in the current minute (limit 30 per minute); retry after 2026-11-30T03:10:00.000Z (in 12 s)');
    expect({ records: requests.requestCount, events: requests.eventLog.length, mails: notifier.mails.length }).toEqual(before);
    // Another agent has its own minute; the next minute is a new one.
    await ask(service, parseAgentId('other-agent'));
    clock.advance(12_000);
    await ask(service);
  });

  it('a request the rate refuses holds no open slot', async () => {
    const { service, requests, clock } = setup({ requestsPerMinute: 2, openPending: 3 });
    await ask(service);
    await ask(service);
    for (let i = 0; i < 5; i++) expect((await refusal(ask(service))).code).toBe('ERR_RATE_LIMITED');
    expect(requests.requestCount).toBe(2);
    // Had the refused attempts kept their slots, the third slot would be gone (an orphaned slot comes back only after a
    // minute): in the next minute, 13 s on, one more fits, then the open limit refuses.
    clock.advance(13_000);
    await ask(service);
    const e = await refusal(ask(service));
    expect(e.code).toBe('ERR_RATE_LIMITED');
    expect(e.message).toMatch(/has 3 requests awaiting/);
    expect(requests.requestCount).toBe(3);
  });

  it('a burst of 100 concurrent requests creates exactly openPending of them', async () => {
    const { service, requests } = setup();
    const results = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => ask(service, agent, `deploy ${i}`)));
    const ok = results.filter((r) => r.status === 'fulfilled');
    expect(ok).toHaveLength(20);
    for (const r of results) if (r.status === 'rejected') expect(isAckdError(r.reason, 'ERR_RATE_LIMITED')).toBe(true);
    expect(requests.requestCount).toBe(20);
    expect(requests.eventLog.filter((e) => e.event.type === 'requested')).toHaveLength(20);
  });

  it('a decided request frees its open slot; an orphaned slot (request never created) only after a minute', async () => {
    const { service, requests, limits, clock } = setup({ openPending: 2, requestsPerMinute: 1000 });
    const a = await ask(service);
    // A slot claimed by a request whose creation never happened (a crash between claim and create).
    await limits.claimOpenSlot(agent, 'req_0000000000000000000000orph' as RequestId, new Date(clock.now().getTime() + 30 * 60_000).toISOString(), requests);
    const full = await refusal(ask(service));
    expect(full.message).toMatch(/^agent demo-agent has 2 requests awaiting a decision \(limit 2\); retry after .+ \(in \d+ s\), or as soon as one of them is decided$/);
    await requests.decideNow(a.request_id, 'denied');
    await ask(service); // took the decided request's slot
    await refusal(ask(service)); // the orphan is still within its grace
    clock.advance(60_000);
    await ask(service); // the orphan's slot is taken back
    await refusal(ask(service));
  });

  it('an expired request frees its slot by time', async () => {
    const { service, clock } = setup({ openPending: 1 });
    await service.requestAuthorization({ agent_id: agent, action: 'x', permissions: ['p'], justification: 'j', ttl_minutes: 1 });
    await refusal(ask(service));
    clock.advance(60_000);
    await ask(service);
  });
});

describe('approver mail limits', () => {
  it('beyond mailsPerApprover a request is not mailed but gathered into one digest after the window', async () => {
    const { service, notifier, requests, clock } = setup({ mailsPerApprover: 3, mailWindowMinutes: 10 });
    clock.advance(12_000); // the start of a mail window (03:10:00)
    const ids: RequestId[] = [];
    for (let i = 0; i < 7; i++) ids.push((await ask(service, agent, `deploy ${i}`)).request_id);
    expect(notifier.mails.map((m) => m.requestId)).toEqual(ids.slice(0, 3));
    // Deferred requests record no mail event yet.
    expect(requests.eventLog.filter((e) => e.event.type === 'email_sent').map((e) => e.requestId)).toEqual(ids.slice(0, 3));
    // The sweep within the window neither mails them one by one nor sends the digest early.
    clock.advance(61_000);
    expect(await service.retryNotifications()).toBe(0);
    expect(notifier.mails).toHaveLength(3);
    expect(notifier.digests).toHaveLength(0);
    // One of them is decided before the digest goes out: it is left out.
    await requests.decideNow(ids[3]!, 'approved');
    clock.advanceMinutes(10);
    expect(await service.retryNotifications()).toBe(1);
    expect(notifier.digests).toHaveLength(1);
    expect(notifier.digests[0]!.to).toBe('a@example.com');
    expect(notifier.digests[0]!.digest.entries.map((e) => e.record.request_id)).toEqual(ids.slice(4));
    expect(notifier.digests[0]!.digest.entries[0]!.consentUrl).toBe(`https://consent.example/?request_id=${ids[4]}`);
    const sent = requests.eventLog.filter((e) => e.event.type === 'email_sent' && e.event.reason?.startsWith('digest'));
    expect(sent.map((e) => e.requestId)).toEqual(ids.slice(4));
    // Sent once: the next sweeps send nothing more.
    clock.advanceMinutes(10);
    expect(await service.retryNotifications()).toBe(0);
    expect(notifier.digests).toHaveLength(1);
    expect(notifier.mails).toHaveLength(3);
  });

  it('each approver has its own budget: one over it gets the digest, the other the mail', async () => {
    const { service, notifier, limits } = setup({ mailsPerApprover: 1 }, ['a@example.com', 'b@example.com']);
    // b already used its budget (another agent routed to b alone, say).
    await limits.planMail('req_00000000000000000000000000' as RequestId, ['b@example.com'], { retry: false });
    const r = await ask(service);
    expect(notifier.mails).toEqual([{ to: ['a@example.com'], requestId: r.request_id }]);
  });

  it('a failed send does not use up the approver budget', async () => {
    const { service, notifier } = setup({ mailsPerApprover: 1 });
    notifier.fail = true;
    await ask(service);
    notifier.fail = false;
    const r = await ask(service);
    expect(notifier.mails).toEqual([{ to: ['a@example.com'], requestId: r.request_id }]);
  });

  it('a digest that cannot be sent is tried again by the next sweep', async () => {
    const { service, notifier, clock } = setup({ mailsPerApprover: 1 });
    await ask(service);
    const deferred = await ask(service);
    clock.advanceMinutes(10);
    notifier.fail = true;
    expect(await service.retryNotifications()).toBe(0);
    notifier.fail = false;
    clock.advance(61_000); // the failed attempt's claim has lapsed
    expect(await service.retryNotifications()).toBe(1);
    expect(notifier.digests.map((d) => d.digest.entries.map((e) => e.record.request_id))).toEqual([[deferred.request_id]]);
  });

  it('the digest mail escapes what agents sent and keeps its subject free of it', () => {
    const record = pendingRecord({ agent_id: parseAgentId('evil-bot'), action: HOSTILE.action });
    const mail = renderDigestEmail({ entries: [{ record, consentUrl: `https://consent.example/?request_id=${record.request_id}` }], more: 2 });
    expect(mail.subject).toBe('ackd: 3 more requests await your decision');
    expect(mail.html).not.toContain('<script>');
    expect(mail.html).not.toContain('<img');
    expect(mail.html).toContain('&lt;script&gt;');
    expect(mail.html).toContain(`href="https://consent.example/?request_id=${record.request_id}"`);
    expect(mail.text).not.toMatch(/\r|\nBcc:/);
    expect(mail.text).toContain('…and 2 more not listed here');
    expect(() => renderDigestEmail({ entries: [{ record, consentUrl: 'javascript:alert(1)' }], more: 0 })).toThrow();
  });
});

describe('refused attempts', () => {
  it('records at most refusalsPerRequest refusals per request and kind of actor; the rest are only counted', async () => {
    const { service, requests, limitStore } = setup({ refusalsPerRequest: 3 });
    const { request_id } = await ask(service);
    for (let i = 0; i < 8; i++) {
      const e = await refusal(service.revoke(agent, request_id, 'ab' as SvidId));
      expect(e.code).toBe('ERR_NOT_ISSUED'); // the caller still gets the refusal
    }
    expect(requests.eventLog.filter((e) => e.event.type === 'refused')).toHaveLength(3);
    expect(limitStore.counters.get(`refused#${request_id}#agent#suppressed`)).toBe(5);
  });

  it("bounds an agent's recorded refusals per hour over all its requests: more requests buy no more events", async () => {
    const { service, requests, clock } = setup({ refusalsPerRequest: 3, refusalsPerAgentPerHour: 5 });
    const ids: RequestId[] = [];
    for (let i = 0; i < 4; i++) ids.push((await ask(service)).request_id);
    for (const id of ids) for (let i = 0; i < 3; i++) expect((await refusal(service.revoke(agent, id, 'ab' as SvidId))).code).toBe('ERR_NOT_ISSUED');
    expect(requests.eventLog.filter((e) => e.event.type === 'refused')).toHaveLength(5);
    // The next hour has its own allowance, within each request's own.
    clock.advance(3_600_000);
    await refusal(service.revoke(agent, ids[0]!, 'ab' as SvidId)); // request 0 used its 3
    expect(requests.eventLog.filter((e) => e.event.type === 'refused')).toHaveLength(5);
    await refusal(service.revoke(agent, ids[3]!, 'ab' as SvidId));
    expect(requests.eventLog.filter((e) => e.event.type === 'refused')).toHaveLength(6);
  });
});

describe('concurrent waits', () => {
  it('bounds long-polls per agent, answers decided requests without a slot, and frees slots when waits end', async () => {
    const { service, requests } = setup({ concurrentWaits: 2 });
    const { request_id } = await ask(service);
    const release: (() => void)[] = [];
    // A sleep that returns only when the test lets it: the waits stay open as long as needed.
    const heldSleep = () => new Promise<void>((r) => release.push(r));
    const w1 = service.checkWaiting(agent, request_id, 25, heldSleep);
    const w2 = service.checkWaiting(agent, request_id, 25, heldSleep);
    await new Promise((r) => setTimeout(r, 20));
    const e = await refusal(service.checkWaiting(agent, request_id, 25, heldSleep));
    expect(e.code).toBe('ERR_RATE_LIMITED');
    expect(e.message).toMatch(/^agent demo-agent already has 2 check_authorization calls waiting \(limit 2 concurrent waits\); retry after .+ \(in \d+ s\), or check without wait_seconds$/);
    // A plain check is never limited by waits.
    expect(await service.check(agent, request_id)).toEqual({ status: 'pending', approvals: { have: 0, need: 1 }, payload_sha256: null });
    await requests.decideNow(request_id, 'denied');
    for (const r of release.splice(0)) r();
    expect(await w1).toEqual({ status: 'denied', payload_sha256: null });
    expect(await w2).toEqual({ status: 'denied', payload_sha256: null });
    // Decided: answered at once, no slot needed; and the slots are free again.
    expect(await service.checkWaiting(agent, request_id, 25, heldSleep)).toEqual({ status: 'denied', payload_sha256: null });
  });

  it('stops at once when the caller goes away, and frees its slot', async () => {
    const { service } = setup();
    const { request_id } = await ask(service);
    const ac = new AbortController();
    // The shared poller (waiting.ts) paces the reads; the sleep is not used any more.
    const sleep = () => Promise.reject(new Error('not used'));
    const waiting = service.checkWaiting(agent, request_id, 25, sleep, { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 20));
    ac.abort();
    // Resolves long before its 25 s (the test's own timeout is 5 s).
    expect(await waiting).toEqual({ status: 'pending', approvals: { have: 0, need: 1 }, payload_sha256: null });
    // The slot was released: as many waits as the limit can start again.
    const n = DEFAULT_LIMITS.concurrentWaits;
    const aborted = AbortSignal.abort();
    await Promise.all(Array.from({ length: n }, () => service.checkWaiting(agent, request_id, 25, sleep, { signal: aborted })));
  });
});

describe('limits configuration', () => {
  it('has documented defaults and refuses values out of range, naming the variable', () => {
    expect(loadConfig({}).limits).toEqual({ requestsPerMinute: 30, openPending: 20, concurrentWaits: 10, mailsPerApprover: 10, mailWindowMinutes: 10, refusalsPerRequest: 10, refusalsPerAgentPerHour: 60, toolCallsPerMinute: 6000 });
    expect(loadConfig({ ACKD_LIMIT_REQUESTS_PER_MINUTE: '120', ACKD_LIMIT_OPEN_PENDING: '5' }).limits).toMatchObject({ requestsPerMinute: 120, openPending: 5 });
    expect(() => loadConfig({ ACKD_LIMIT_OPEN_PENDING: '1001' })).toThrow(/ACKD_LIMIT_OPEN_PENDING: must be an integer from 1 to 1000/);
    expect(() => loadConfig({ ACKD_LIMIT_REQUESTS_PER_MINUTE: '0' })).toThrow(/ACKD_LIMIT_REQUESTS_PER_MINUTE/);
    expect(() => loadConfig({ ACKD_LIMIT_CONCURRENT_WAITS: 'many' })).toThrow(/ACKD_LIMIT_CONCURRENT_WAITS/);
    expect(loadConfig({ ACKD_LIMIT_REFUSALS_PER_REQUEST: '0' }).limits.refusalsPerRequest).toBe(0);
  });
});
