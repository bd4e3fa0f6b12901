import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApiKey } from '../../lambdas/core/apikeys.ts';
import { parseAgentId, type RequestId } from '../../lambdas/core/ids.ts';
import { startTestStack, type TestStack } from '../helpers/local-stack.ts';
import { budget, rawMcp, toolCall } from './budget.ts';

// Flooding and long-poll abuse with the default limits: what one agent can cost ackd and its
// approvers is bounded, and a client that walks away stops costing anything.

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

async function agentKey(name: string): Promise<string> {
  return (await createApiKey(stack.deps.apiKeys, parseAgentId(name), stack.clock)).apiKey;
}

const ask = (agent: string, i: number) => toolCall(i, 'request_authorization', { agent_id: agent, action: `flood ${i}`, permissions: ['x:y'], justification: 'flood', ttl_minutes: 30 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('flooding', () => {
  it('a burst of requests creates at most the open-request limit; the rest are ERR_RATE_LIMITED with a retry time', async () => {
    const key = await agentKey('flood-burst');
    const n = budget(60, 400);
    const results = await Promise.all(Array.from({ length: n }, (_, i) => rawMcp(stack.mcpUrl, key, ask('flood-burst', i))));
    const texts = results.map((r) => JSON.stringify(r.json));
    const created = texts.filter((t) => t.includes('"request_id"') && !t.includes('"isError":true'));
    expect(created.length).toBe(20);
    for (const t of texts.filter((x) => x.includes('"isError":true'))) expect(t).toMatch(/ERR_RATE_LIMITED: .*retry after \d{4}-\d\d-\d\dT[\d:.]+Z \(in \d+ s\)/);
    expect((await stack.deps.store.listByAgent(parseAgentId('flood-burst'), { limit: 1000 })).length).toBe(20);
  });

  it('a JSON-RPC batch of 100 calls runs none of them', async () => {
    const key = await agentKey('flood-batch');
    const res = await rawMcp(stack.mcpUrl, key, Array.from({ length: 100 }, (_, i) => ask('flood-batch', i)));
    expect(res.status).toBe(400);
    expect((await stack.deps.store.listByAgent(parseAgentId('flood-batch'))).length).toBe(0);
  });

  it('refused revocations cannot grow the audit log without bound', async () => {
    const key = await agentKey('flood-revoke');
    const created = JSON.parse((await rawMcp(stack.mcpUrl, key, ask('flood-revoke', 0))).text) as { result: CallToolResult };
    const id = (created.result.structuredContent as { request_id: RequestId }).request_id;
    await stack.deps.service.decide(id, 'approved', 'operator:alice');
    await rawMcp(stack.mcpUrl, key, toolCall(1, 'check_authorization', { request_id: id }));
    const attempts = budget(30, 200);
    for (let i = 0; i < attempts; i++) {
      const r = await rawMcp(stack.mcpUrl, key, toolCall(i, 'revoke_authorization', { request_id: id, svid_id: 'dead' }));
      expect(JSON.stringify(r.json)).toContain('ERR_SVID_MISMATCH');
    }
    let refused = 0;
    for await (const line of stack.deps.audit.export()) if (line.kind === 'event' && line.request_id === id && line.type === 'refused') refused++;
    expect(refused).toBe(10);
  });
});

describe('long-poll abuse', () => {
  it('abandoned long-polls stop reading the store within a second or two; concurrent waits are bounded per agent', async () => {
    const key = await agentKey('flood-poll');
    const created = JSON.parse((await rawMcp(stack.mcpUrl, key, ask('flood-poll', 0))).text) as { result: CallToolResult };
    const id = (created.result.structuredContent as { request_id: RequestId }).request_id;
    const reads = vi.spyOn(stack.deps.store, 'get');
    try {
      const polls = budget(60, 200);
      const controllers = Array.from({ length: polls }, () => new AbortController());
      let answered = 0;
      const outcomes = controllers.map((ac, i) =>
        rawMcp(stack.mcpUrl, key, toolCall(i, 'check_authorization', { request_id: id, wait_seconds: 25 }), { signal: ac.signal }).then(
          (r) => {
            answered++;
            return JSON.stringify(r.json);
          },
          () => 'aborted',
        ),
      );
      // Beyond the per-agent bound (10), a wait is refused at once rather than held open.
      await vi.waitFor(() => expect(answered).toBeGreaterThanOrEqual(polls - 10), { timeout: 20_000, interval: 50 });
      await sleep(300);
      for (const ac of controllers) ac.abort();
      const results = await Promise.all(outcomes);
      expect(results.filter((r) => r.includes('ERR_RATE_LIMITED')).length).toBe(polls - 10);
      expect(results.filter((r) => r === 'aborted').length).toBe(10);
      await sleep(2_000);
      const settled = reads.mock.calls.length;
      await sleep(3_000);
      // Without the abort, the held polls would read every 0.5–2 s for 25 s.
      expect(reads.mock.calls.length - settled).toBe(0);
    } finally {
      reads.mockRestore();
    }
    // The slots were given back: a new wait is served (and ends on the decision).
    const waiting = rawMcp(stack.mcpUrl, key, toolCall(999, 'check_authorization', { request_id: id, wait_seconds: 10 }));
    await sleep(500);
    await stack.deps.service.decide(id, 'denied', 'operator:alice');
    expect(JSON.stringify((await waiting).json)).toContain('\\"status\\":\\"denied\\"');
  });
});
