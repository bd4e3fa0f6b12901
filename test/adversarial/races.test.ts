import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointPublicKey } from '../../lambdas/core/audit/signing.ts';
import { isAckdError } from '../../lambdas/core/errors.ts';
import { parseAgentId, type RequestId } from '../../lambdas/core/ids.ts';
import { startTestStack, type TestStack } from '../helpers/local-stack.ts';
import { budget } from './budget.ts';

// Races an attacker (or a buggy agent) can start: concurrent decisions, concurrent first checks,
// a revocation racing the first check. Every transition is one conditional write; these prove it
// under real concurrency against the real store.

let stack: TestStack;
const agent = parseAgentId('demo-agent');

beforeAll(async () => {
  stack = await startTestStack({ limits: { requestsPerMinute: 10_000, openPending: 100 } });
});
afterAll(async () => {
  await stack?.stop();
});

async function newRequests(n: number): Promise<RequestId[]> {
  const ids: RequestId[] = [];
  for (let i = 0; i < n; i++) {
    ids.push((await stack.deps.service.requestAuthorization({ agent_id: agent, action: `race ${i}`, permissions: ['race:run'], justification: 'adversarial', ttl_minutes: 30 })).request_id);
  }
  return ids;
}

/** Live verification with the audit key (the local sequencer signs tree heads as the log grows), once what was written is sequenced. */
async function live() {
  await stack.settled();
  return stack.deps.audit.verifyLive({}, { publicKey: checkpointPublicKey(await stack.deps.audit.publicKeyPem()) });
}

describe('races', () => {
  it('concurrent approve and deny: exactly one decision per request, the rest refused', async () => {
    const ids = await newRequests(budget(12, 60));
    let contended = 0;
    let decided = 0;
    await Promise.all(
      ids.map(async (id, i) => {
        const attempts = [
          stack.deps.service.decide(id, 'approved', `operator:a${i}`),
          stack.deps.service.decide(id, 'denied', `operator:d${i}`),
          stack.deps.service.decide(id, 'approved', `operator:b${i}`),
          stack.deps.service.decide(id, 'denied', `operator:e${i}`),
        ];
        const results = await Promise.allSettled(attempts);
        const won = results.filter((r) => r.status === 'fulfilled');
        // Never two decisions. A loser is told it lost (ERR_ALREADY_DECIDED); under heavy
        // contention on the audit chain (every write is serialized through it) it may instead be
        // told to retry (ERR_STORE_UNAVAILABLE), having changed nothing.
        expect(won.length).toBeLessThanOrEqual(1);
        for (const r of results) {
          if (r.status === 'fulfilled') continue;
          if (isAckdError(r.reason, 'ERR_STORE_UNAVAILABLE')) contended++;
          else expect(isAckdError(r.reason, 'ERR_ALREADY_DECIDED'), String(r.reason)).toBe(true);
        }
        const stored = await stack.deps.service.get(id);
        expect(stored.decision).toBe(won.length === 1 ? (won[0] as PromiseFulfilledResult<{ decision: string }>).value.decision : 'pending');
        if (won.length === 1) decided++;
      }),
    );
    // Most requests are decided; the sequencer puts every recorded change in the log, and the chain verifies.
    expect(decided).toBeGreaterThan(ids.length / 2);
    if (contended > 0) console.warn(`races: ${contended} losing decisions were told to retry (audit chain contention)`);
    await stack.deps.service.sweep(1000);
    const report = await live();
    expect(report.problems).toEqual([]);
  });

  it('concurrent first checks: exactly one delivers the SVID and its key', async () => {
    const ids = await newRequests(budget(4, 20));
    const clients = await Promise.all(Array.from({ length: budget(6, 10) }, () => stack.client()));
    for (const id of ids) await stack.deps.service.decide(id, 'approved', 'operator:alice');
    await Promise.all(
      ids.map(async (id) => {
        const results = (await Promise.all(clients.map((c) => c.callTool({ name: 'check_authorization', arguments: { request_id: id } })))) as CallToolResult[];
        const withKey = results.filter((r) => !r.isError && typeof (r.structuredContent as { svid?: string }).svid === 'string');
        expect(withKey).toHaveLength(1);
        for (const r of results) {
          if (r.isError) expect((r.content as { text: string }[])[0]!.text).toMatch(/^ERR_ISSUANCE_IN_PROGRESS: /);
          else if (r !== withKey[0]) expect(r.structuredContent).toMatchObject({ status: 'approved', svid_delivered: true });
        }
      }),
    );
    expect((await live()).problems).toEqual([]);
  });

  it('a revocation racing later checks: revoked once, and never reported approved after it', async () => {
    const [id] = await newRequests(1);
    await stack.deps.service.decide(id!, 'approved', 'operator:alice');
    const first = await stack.deps.service.check(agent, id!);
    expect(first.status).toBe('approved');
    const svidId = (first as { svid_id: string }).svid_id;
    const all = await Promise.allSettled([
      ...Array.from({ length: 5 }, () => stack.deps.service.revoke(agent, id!, svidId as never)),
      ...Array.from({ length: 5 }, () => stack.deps.service.check(agent, id!)),
    ]);
    const revokedAt = new Set(all.slice(0, 5).map((r) => (r.status === 'fulfilled' ? (r.value as { revoked_at: string }).revoked_at : String(r.reason))));
    expect(revokedAt.size).toBe(1);
    expect((await stack.deps.service.check(agent, id!)).status).toBe('revoked');
    expect((await live()).problems).toEqual([]);
  });
});
