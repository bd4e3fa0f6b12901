/**
 * Issue 12's hot path, counted where it costs: the DynamoDB client sends of the real stack
 * (dynalite), seen by a middleware on the stack's own client. What is pinned here is the MCP
 * side (API key, policy and owner, limits, long-poll); the audit's calls and the create's own
 * write are not part of the count (the audit is redesigned separately).
 *
 * The stack's audit sequencer shares that client: it runs right after each write (and on a timer),
 * reads the waiting items (BatchGetItem of `req#` items), settles them and runs its follow-ups
 * (the consent notification reads its request). Those calls are told apart (they are made inside
 * a sequencer run) and left out: what is counted here is what the MCP side sends.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { recordOwner } from '../../lambdas/core/agents.ts';
import { createApiKey } from '../../lambdas/core/apikeys.ts';
import { parseAgentId, parseRequestId, type AgentId, type RequestId } from '../../lambdas/core/ids.ts';
import { errorText, startTestStack, structured, type TestStack } from '../helpers/local-stack.ts';
import { rawMcp, toolCall } from '../adversarial/budget.ts';

interface Send {
  readonly command: string;
  /** The keys the call names (`pk`), in order. */
  readonly pks: readonly string[];
}

/** Set while the audit sequencer runs (and its follow-ups): its sends are not the MCP side's. */
const sequencing = new AsyncLocalStorage<true>();

/**
 * Records every send of the stack's DynamoDB client (every adapter of the stack shares its
 * middleware stack), except the audit sequencer's: `sequencerSends` counts those.
 */
function countSends(stack: TestStack): Send[] & { sequencerSends: number } {
  const sends = Object.assign([] as Send[], { sequencerSends: 0 });
  const sequencer = stack.deps.sequencer;
  const run = sequencer.run.bind(sequencer);
  sequencer.run = () => sequencing.run(true, run);
  // The document client shares the DynamoDB client's middleware stack.
  const doc = (stack.deps.store as unknown as { doc: DynamoDBDocumentClient }).doc;
  const pkOf = (v: unknown): string | undefined => {
    const pk = (v as { pk?: unknown } | undefined)?.pk;
    if (typeof pk === 'string') return pk;
    const s = (pk as { S?: unknown } | undefined)?.S;
    return typeof s === 'string' ? s : undefined;
  };
  doc.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { Key?: unknown; Item?: unknown; RequestItems?: Record<string, { Keys?: unknown[] }> };
      const pks = [pkOf(input.Key), pkOf(input.Item), ...Object.values(input.RequestItems ?? {}).flatMap((t) => (t.Keys ?? []).map(pkOf))].filter((p): p is string => p !== undefined);
      if (sequencing.getStore()) sends.sequencerSends++;
      else sends.push({ command: String(context.commandName).replace(/Command$/, ''), pks });
      return next(args);
    },
    { step: 'initialize', name: 'hotpathSendCounter' },
  );
  return sends;
}

/** The hot path's own calls, named: key lookup, rule read (policies + owner), rate, open-request slot (with the rate since they share one item), create. */
function hotPath(sends: readonly Send[]): string[] {
  const out: string[] = [];
  for (const s of sends) {
    const has = (prefix: string) => s.pks.some((p) => p.startsWith(prefix));
    if (has('apikey#')) out.push(`${s.command} key`);
    else if (has('policy#') || has('policyidx#') || has('agent#')) out.push(`${s.command} rules`);
    else if (has('limit#ctr#rate#')) out.push(`${s.command} rate`);
    else if (has('limit#set#open#') || has('limit#slot#open#')) out.push(`${s.command} open`);
    else if (s.command === 'PutItem' && has('req#')) out.push('PutItem create');
  }
  return out.sort();
}

/** Requests read (GetItem or BatchGetItem of `req#` items), with how many keys each. */
function requestReads(sends: readonly Send[]): { command: string; keys: number; ids: string[] }[] {
  return sends
    .filter((s) => (s.command === 'GetItem' || s.command === 'BatchGetItem') && s.pks.some((p) => p.startsWith('req#')))
    .map((s) => ({ command: s.command, keys: s.pks.length, ids: s.pks.map((p) => p.slice('req#'.length)) }));
}

const ask = (agentId: string, i = 0) => ({ agent_id: agentId, action: `deploy ${i}`, permissions: ['deploy:prod', 'db:read'], justification: 'release', ttl_minutes: 30 });
const never = () => new Promise<void>(() => undefined);

let stack: TestStack;
let sends: ReturnType<typeof countSends>;

beforeAll(async () => {
  stack = await startTestStack({ consent: false, limits: { requestsPerMinute: 1000, openPending: 200, concurrentWaits: 100 } });
  sends = countSends(stack);
}, 120_000);
afterAll(async () => {
  await stack?.stop();
});

async function agentWithKey(name: string): Promise<{ agentId: AgentId; apiKey: string; mcp: Client }> {
  const agentId = parseAgentId(name);
  const { apiKey } = await createApiKey(stack.deps.apiKeys, agentId, stack.clock);
  await recordOwner(stack.deps.agents, agentId, 'owner@example.com', stack.clock);
  return { agentId, apiKey, mcp: await stack.client(apiKey) };
}

describe('request_authorization store calls', () => {
  it('one key read (none while cached), one batched read of policies and owner, one write for rate and slot together, then the create; no item read twice', async () => {
    const { agentId, mcp } = await agentWithKey('calls-agent');
    stack.clock.advance(5_001); // the key is no longer remembered from the client's initialize
    sends.length = 0;
    structured(await mcp.callTool({ name: 'request_authorization', arguments: ask(agentId) }));
    expect(hotPath(sends)).toEqual(['BatchGetItem rules', 'GetItem key', 'PutItem create', 'UpdateItem open']);
    const rules = sends.find((s) => s.command === 'BatchGetItem' && s.pks.includes(`agent#${agentId}`))!;
    expect(rules.pks).toEqual(expect.arrayContaining([`policyidx#${agentId}`, 'policyidx#*', `agent#${agentId}`]));
    // Before the create, nothing but the audit reads an item twice.
    const beforeCreate = sends.slice(0, sends.findIndex((s) => s.command === 'PutItem' && s.pks.some((p) => p.startsWith('req#'))));
    const read = beforeCreate.filter((s) => s.command === 'GetItem' || s.command === 'BatchGetItem').flatMap((s) => s.pks).filter((p) => !p.startsWith('audit#'));
    expect(read.length).toBe(new Set(read).size);

    sends.length = 0;
    structured(await mcp.callTool({ name: 'request_authorization', arguments: ask(agentId, 1) }));
    expect(hotPath(sends)).toEqual(['BatchGetItem rules', 'PutItem create', 'UpdateItem open']);
  });

  it('costs the same per request when 30 arrive at once from one agent', async () => {
    const { agentId, mcp } = await agentWithKey('burst-agent');
    sends.length = 0;
    const n = 30;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => mcp.callTool({ name: 'request_authorization', arguments: ask(agentId, i) })));
    for (const r of results) structured(r);
    const counts = hotPath(sends).reduce<Record<string, number>>((m, k) => ({ ...m, [k]: (m[k] ?? 0) + 1 }), {});
    // (the rate and the slot share the agent's item: a write that lost a race to another is tried again, read-free on DynamoDB, after one read on dynalite)
    expect(counts['BatchGetItem rules']).toBe(n);
    expect(counts['PutItem create']).toBe(n);
    expect(counts['UpdateItem open']).toBeGreaterThanOrEqual(n);
    expect(counts['UpdateItem open']).toBeLessThanOrEqual(2 * n);
    expect(counts['UpdateItem rate']).toBeUndefined();
  });

  it('a pattern policy adds one batched read (the patterns are known only from the first)', async () => {
    const { agentId, mcp } = await agentWithKey('pattern-agent');
    await stack.deps.policies.set({ agent: agentId, permission: 'deploy:*', approvals: 1 }, { type: 'operator', id: 'test' });
    sends.length = 0;
    const r = structured<{ request_id: string }>(await mcp.callTool({ name: 'request_authorization', arguments: ask(agentId) }));
    expect(hotPath(sends)).toEqual(['BatchGetItem rules', 'BatchGetItem rules', 'PutItem create', 'UpdateItem open']);
    expect((await stack.deps.service.get(parseRequestId(r.request_id))).quorum).toMatchObject({ policies: [`${agentId}#deploy:*`], owner: 'owner@example.com' });
  });
});

describe('the shared long-poll', () => {
  it('150 waiting requests cost two BatchGetItems (100 + 50 keys) per tick and no GetItem; aborted waits are never read again', async () => {
    const agents = [parseAgentId('poll-a'), parseAgentId('poll-b')];
    const ids: RequestId[] = [];
    for (let i = 0; i < 150; i++) ids.push((await stack.deps.service.requestAuthorization(ask(agents[i < 100 ? 0 : 1]!, i) as never)).request_id);
    const acs = ids.map(() => new AbortController());
    const waits = ids.map((id, i) => stack.deps.service.checkWaiting(agents[i < 100 ? 0 : 1]!, id, 25, never, { signal: acs[i]!.signal }));
    await vi.waitFor(() => expect(stack.deps.waiting.waits).toBe(150), { timeout: 10_000, interval: 20 });
    sends.length = 0;
    await new Promise((r) => setTimeout(r, 1_600)); // three ticks of 500 ms
    const reads = requestReads(sends);
    expect(reads.filter((r) => r.command === 'GetItem')).toEqual([]);
    const big = reads.filter((r) => r.keys === 100).length;
    const small = reads.filter((r) => r.keys === 50).length;
    expect(big + small).toBe(reads.length);
    expect(big).toBeGreaterThanOrEqual(2);
    expect(Math.abs(big - small)).toBeLessThanOrEqual(1);
    // 0.2 store reads per waiting agent per second would be 48 here.
    expect(reads.length).toBeLessThanOrEqual(8);

    // The callers go away: their waits end at once and nothing of theirs is read again.
    for (const ac of acs) ac.abort();
    const results = await Promise.all(waits);
    expect(results.every((r) => r.status === 'pending')).toBe(true);
    expect(stack.deps.waiting.waits).toBe(0);
    sends.length = 0;
    await new Promise((r) => setTimeout(r, 1_200));
    expect(requestReads(sends)).toEqual([]);
  });

  it('a long-poll over MCP whose client disconnects is removed at once and no longer read', async () => {
    const { agentId, apiKey, mcp } = await agentWithKey('leaver-agent');
    const { request_id } = structured<{ request_id: string }>(await mcp.callTool({ name: 'request_authorization', arguments: ask(agentId) }));
    const ac = new AbortController();
    const poll = rawMcp(stack.mcpUrl, apiKey, toolCall(1, 'check_authorization', { request_id, wait_seconds: 25 }), { signal: ac.signal });
    await vi.waitFor(() => expect(stack.deps.waiting.waits).toBe(1), { timeout: 5_000, interval: 20 });
    ac.abort();
    await expect(poll).rejects.toThrow();
    await vi.waitFor(() => expect(stack.deps.waiting.waits).toBe(0), { timeout: 2_000, interval: 10 });
    await stack.settled(); // the request's events (and its announcement) are done with
    sends.length = 0;
    await new Promise((r) => setTimeout(r, 1_200));
    expect(requestReads(sends).filter((r) => r.ids.includes(request_id))).toEqual([]);
  });
});

describe('the API key cache and SVIDs', () => {
  it('a revoked key never receives an SVID, even while this instance still remembers it', async () => {
    const { agentId, mcp } = await agentWithKey('revoked-agent');
    const { request_id } = structured<{ request_id: string }>(await mcp.callTool({ name: 'request_authorization', arguments: ask(agentId) }));
    const other = structured<{ request_id: string }>(await mcp.callTool({ name: 'request_authorization', arguments: ask(agentId, 1) }));
    const key = (await stack.deps.apiKeys.listByAgent(agentId))[0]!;
    await stack.deps.apiKeys.revoke(key.key_id, stack.clock.now());
    await stack.deps.service.decide(parseRequestId(request_id), 'approved', 'operator:test');
    // Within the cache's 5 s a non-SVID call still works (documented) ...
    expect(structured(await mcp.callTool({ name: 'check_authorization', arguments: { request_id: other.request_id } }))).toMatchObject({ status: 'pending' });
    // ... but the SVID is refused before it is minted.
    const text = errorText(await mcp.callTool({ name: 'check_authorization', arguments: { request_id } }));
    expect(text).toBe('ERR_UNAUTHENTICATED: the API key was revoked');
    expect((await stack.deps.service.get(parseRequestId(request_id))).svid_id).toBeNull();
    // And the refusal evicted the key: every call is refused now (401 before any tool runs).
    await expect(mcp.callTool({ name: 'check_authorization', arguments: { request_id: other.request_id } })).rejects.toThrow(/Unauthorized/);
  });
});

describe('SVID pickup store calls', () => {
  /** The pickup's own sends, named: the key, the request item, the approval's events. */
  const named = (list: readonly Send[]): string[] =>
    list.map((s) => `${s.command} ${s.pks.every((p) => p.startsWith('apikey#')) ? 'key' : s.pks.every((p) => p.startsWith('req#')) ? 'request' : 'events'}`).sort();

  it('reads the key twice (before the mint, at hand-out), the read that authenticated a cold call counting as the first', async () => {
    const { agentId, mcp } = await agentWithKey('pickup-agent');
    const ids: RequestId[] = [];
    for (let i = 0; i < 2; i++) {
      const { request_id } = structured<{ request_id: RequestId }>(await mcp.callTool({ name: 'request_authorization', arguments: ask(agentId, i) }));
      await stack.deps.service.decide(parseRequestId(request_id), 'approved', 'operator:test');
      ids.push(request_id);
    }
    await stack.settled();
    const pickup = [
      'BatchGetItem events', // the approval's events (while the claim is written)
      'GetItem key',
      'GetItem key',
      'GetItem request', // the check's read
      'UpdateItem request', // the claim
      'UpdateItem request', // the issue (with its event)
    ];
    // Warm: the key authenticates from memory, so it is read before the mint and at hand-out.
    sends.length = 0;
    expect(structured<{ svid?: string }>(await mcp.callTool({ name: 'check_authorization', arguments: { request_id: ids[0] } })).svid).toContain('PRIVATE KEY');
    expect(named(sends)).toEqual(pickup);
    // Cold: the read that authenticates the call is the one before the mint; the key is not read a third time.
    stack.clock.advance(5_001);
    sends.length = 0;
    expect(structured<{ svid?: string }>(await mcp.callTool({ name: 'check_authorization', arguments: { request_id: ids[1] } })).svid).toContain('PRIVATE KEY');
    expect(named(sends)).toEqual(pickup);
  });
});

describe('wake', () => {
  let slow: TestStack;
  beforeAll(async () => {
    // A poller that would not read for a minute: only the in-process wake can answer.
    slow = await startTestStack({ consent: false, waiting: { tickMs: 60_000 } });
  }, 120_000);
  afterAll(async () => {
    await slow?.stop();
  });

  it('an approval made in this process answers the waiting poll at once, with the SVID, without a read by the poller', async () => {
    const slowSends = countSends(slow);
    const mcp = await slow.client();
    const { request_id } = structured<{ request_id: string }>(await mcp.callTool({ name: 'request_authorization', arguments: ask(slow.agentId) }));
    const poll = mcp.callTool({ name: 'check_authorization', arguments: { request_id, wait_seconds: 25 } });
    await vi.waitFor(() => expect(slow.deps.waiting.waits).toBe(1), { timeout: 5_000, interval: 20 });
    await slow.deps.service.decide(parseRequestId(request_id), 'approved', 'operator:test');
    const r = structured<{ status: string; svid?: string }>(await poll);
    expect(r.status).toBe('approved');
    expect(r.svid).toContain('PRIVATE KEY');
    expect(requestReads(slowSends).filter((x) => x.command === 'BatchGetItem')).toEqual([]);
    // (the approval was sequenced meanwhile, by the sequencer's own reads, which are not counted)
    expect(slowSends.sequencerSends).toBeGreaterThan(0);
  });
});
