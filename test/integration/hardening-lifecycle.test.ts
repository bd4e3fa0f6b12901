import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../lambdas/core/apikeys.ts';
import { checkpointPublicKey } from '../../lambdas/core/audit/signing.ts';
import { isAckdError } from '../../lambdas/core/errors.ts';
import { parseAgentId, parseRequestId, type RequestId } from '../../lambdas/core/ids.ts';
import type { SvidMinter } from '../../lambdas/core/ports.ts';
import { startIssuer } from '../../spire/issuer.ts';
import { errorText, startTestStack, structured, writeItemFields, type TestStack } from '../helpers/local-stack.ts';

// Hardening of the lifecycle, attacked as a table writer and as an agent whose key is revoked
// mid-flight. Each of these yielded an SVID (or the wrong error) before the fix.

let stack: TestStack;
let mcp: Client;
/** When set, runs after the (real) minter has minted and before the SVID goes back: a hook to act in that window. */
let afterMint: (() => Promise<void>) | undefined;

const base = { agent_id: 'demo-agent', action: 'rotate the db password', permissions: ['db:write'], justification: 'quarterly rotation', ttl_minutes: 30 };

beforeAll(async () => {
  stack = await startTestStack({
    // The real in-process CA, with a hook after each mint (to revoke the key in exactly that window).
    issuer: async ({ dir, trustDomain }) => {
      const real = await startIssuer({ trustDomain, stateDir: dir, issuer: 'local-ca', log: () => undefined });
      const minter: SvidMinter = {
        mint: async (id, notAfter) => {
          const m = await real.minter.mint(id, notAfter);
          await afterMint?.();
          return m;
        },
        trustBundlePem: () => real.minter.trustBundlePem(),
      };
      return { kind: real.kind, minter, stop: () => real.stop() };
    },
  });
  mcp = await stack.client();
});
afterAll(async () => {
  await stack?.stop();
});

/** A request, in the audit log and announced (its consent mail follows its sequencing), before anyone decides it. */
async function request(client = mcp, agent = 'demo-agent'): Promise<RequestId> {
  const r = structured<{ request_id: string }>(await client.callTool({ name: 'request_authorization', arguments: { ...base, agent_id: agent } }));
  await stack.settled();
  return parseRequestId(r.request_id);
}

/** A table writer's edit of a request item, bypassing ackd. */
const tamper = (id: RequestId, set: Record<string, string | null>) => writeItemFields(stack, `req#${id}`, set);

async function eventsOf(id: RequestId): Promise<{ type: string; actor_type: string; reason: string | null }[]> {
  await stack.settled();
  const out: { type: string; actor_type: string; reason: string | null }[] = [];
  for await (const line of stack.deps.audit.export()) if (line.kind === 'event' && line.request_id === id) out.push({ type: line.type, actor_type: line.actor_type, reason: line.reason });
  return out;
}

/** Live verification with the audit key (the local sequencer signs tree heads), once what was written is sequenced. */
async function live() {
  await stack.settled();
  return stack.deps.audit.verifyLive({}, { publicKey: checkpointPublicKey(await stack.deps.audit.publicKeyPem()) });
}

const future = () => new Date(stack.clock.now().getTime() + 20 * 60_000).toISOString();

describe('an SVID needs the approval recorded in the audit log', () => {
  it('a denial flipped to an approval in the table gets no SVID; the refusal is audited; live verify names the item', async () => {
    const id = await request();
    await stack.deps.service.decide(id, 'denied', 'operator:bob');
    await stack.settled(); // the table is forged after the denial is in the log
    await tamper(id, { decision: 'approved', approver_identity: 'operator:forged', svid_expires_at: future() });

    const text = errorText(await mcp.callTool({ name: 'check_authorization', arguments: { request_id: id } }));
    expect(text).toMatch(/^ERR_NOT_APPROVED: .*no approval in the audit log/);
    expect(text).not.toContain('BEGIN');
    expect((await stack.deps.service.get(id)).svid_id).toBeNull();
    const events = await eventsOf(id);
    expect(events.map((e) => e.type)).toEqual(['requested', 'email_sent', 'denied', 'refused']);
    expect(events[3]).toMatchObject({ actor_type: 'system' });
    expect(events[3]!.reason).toMatch(/issuance refused: the audit log records it as denied/);

    const report = await live();
    expect(report.ok).toBe(false);
    expect(report.problems.some((p) => p.kind === 'item' && p.message.includes(id) && p.message.includes('says approved'))).toBe(true);
    // The refused event records what its own write did (the denied request, replayed), not the
    // forged item: the item differs from it in exactly the forged fields.
    expect(report.problems).toContainEqual(
      expect.objectContaining({ kind: 'item', message: expect.stringContaining(`${id}: its item's approver_identity, decision, svid_expires_at differ from its latest event`) }),
    );
  });

  it('a pending request set to approved in the table gets no SVID', async () => {
    const id = await request();
    await tamper(id, { decision: 'approved', approver_identity: 'operator:forged', decision_at: stack.clock.now().toISOString(), svid_expires_at: future() });
    expect(errorText(await mcp.callTool({ name: 'check_authorization', arguments: { request_id: id } }))).toMatch(/^ERR_NOT_APPROVED: /);
    expect((await stack.deps.service.get(id)).svid_id).toBeNull();
  });

  it('an approval whose approver or lifetime was changed in the table gets no SVID; put back, it issues', async () => {
    for (const field of ['approver_identity', 'svid_expires_at'] as const) {
      const id = await request();
      const approved = await stack.deps.service.decide(id, 'approved', 'operator:alice');
      await tamper(id, { [field]: field === 'approver_identity' ? 'operator:mallory' : new Date(stack.clock.now().getTime() + 59 * 60_000).toISOString() });
      expect(errorText(await mcp.callTool({ name: 'check_authorization', arguments: { request_id: id } }))).toMatch(/^ERR_NOT_APPROVED: /);
      // The refusal released its claim and changed nothing: restored, the request issues.
      await tamper(id, { [field]: approved[field] });
      const ok = structured<{ svid?: string; expires_at: string }>(await mcp.callTool({ name: 'check_authorization', arguments: { request_id: id } }));
      expect(ok.svid).toContain('PRIVATE KEY');
      // (certificates count whole seconds)
      expect(Date.parse(approved.svid_expires_at!) - Date.parse(ok.expires_at)).toBeGreaterThanOrEqual(0);
      expect(Date.parse(approved.svid_expires_at!) - Date.parse(ok.expires_at)).toBeLessThan(1000);
    }
  });

  it('live verify compares each item with its events: a justification or approver changed on the item alone is found', async () => {
    const id = await request();
    await stack.deps.service.decide(id, 'approved', 'operator:alice');
    const svid = structured<{ svid?: string }>(await mcp.callTool({ name: 'check_authorization', arguments: { request_id: id } }));
    expect(svid.svid).toContain('BEGIN CERTIFICATE');
    const before = await live();
    expect(before.problems.filter((p) => p.message.includes(id))).toEqual([]);

    await tamper(id, { justification: 'approved by the CISO (not really)' });
    const justification = await live();
    expect(justification.ok).toBe(false);
    expect(justification.problems).toContainEqual(expect.objectContaining({ kind: 'item', message: expect.stringMatching(new RegExp(`${id}: its item's justification differs from its latest event`)) }));

    await tamper(id, { justification: base.justification, approver_identity: 'operator:someone-else' });
    const approver = await live();
    expect(approver.problems).toContainEqual(expect.objectContaining({ kind: 'item', message: expect.stringContaining(`${id}: its item's approver_identity differs`) }));
    await tamper(id, { approver_identity: 'operator:alice' });
    expect((await live()).problems.filter((p) => p.message.includes(id))).toEqual([]);
  });
});

describe('a revoked API key never receives an SVID', () => {
  it('revoked while its long-poll waits: the approval does not hand the SVID to the poll', async () => {
    const { apiKey, entry } = await createApiKey(stack.deps.apiKeys, parseAgentId('demo-agent'), stack.clock);
    const client = await stack.client(apiKey);
    const id = await request(client);
    const poll = client.callTool({ name: 'check_authorization', arguments: { request_id: id, wait_seconds: 25 } }, undefined, { timeout: 60_000 });
    await new Promise((r) => setTimeout(r, 700));
    await stack.deps.apiKeys.revoke(entry.key_id, stack.clock.now());
    await stack.deps.service.decide(id, 'approved', 'operator:alice');
    const text = errorText(await poll);
    expect(text).toMatch(/^ERR_UNAUTHENTICATED: /);
    expect(text).not.toContain('PRIVATE KEY');
    // Refused before minting: nothing was issued, and the request's owner can still pick it up with a valid key.
    expect((await stack.deps.service.get(id)).svid_id).toBeNull();
    const picked = structured<{ svid?: string }>(await mcp.callTool({ name: 'check_authorization', arguments: { request_id: id } }));
    expect(picked.svid).toContain('PRIVATE KEY');
  });

  it('revoked while its SVID is being minted: the SVID is not returned, and it is revoked', async () => {
    const { apiKey, entry } = await createApiKey(stack.deps.apiKeys, parseAgentId('demo-agent'), stack.clock);
    const client = await stack.client(apiKey);
    const id = await request(client);
    await stack.deps.service.decide(id, 'approved', 'operator:alice');
    afterMint = async () => void (await stack.deps.apiKeys.revoke(entry.key_id, stack.clock.now()));
    try {
      const text = errorText(await client.callTool({ name: 'check_authorization', arguments: { request_id: id } }));
      expect(text).toMatch(/^ERR_UNAUTHENTICATED: /);
      expect(text).not.toContain('PRIVATE KEY');
    } finally {
      afterMint = undefined;
    }
    const r = await stack.deps.service.get(id);
    expect(r.svid_id).not.toBeNull();
    expect(r.revoked).toBe(true);
    expect((await eventsOf(id)).map((e) => `${e.type}:${e.actor_type}`)).toEqual(['requested:agent', 'email_sent:system', 'approved:operator', 'svid_issued:agent', 'revoked:system']);
  });
});

describe('a decision after expiry is ERR_EXPIRED, whenever it comes', () => {
  it('before and after the sweep has recorded the expiry', async () => {
    const early = await request();
    const late = await request();
    stack.clock.advance(31 * 60_000);
    const before = await stack.deps.service.decide(early, 'approved', 'operator:alice').catch((e: unknown) => e);
    expect(isAckdError(before, 'ERR_EXPIRED')).toBe(true);
    await stack.deps.service.sweep();
    expect((await stack.deps.service.get(late)).decision).toBe('expired');
    for (const id of [early, late]) {
      for (const d of ['approved', 'denied'] as const) {
        const after = await stack.deps.service.decide(id, d, 'operator:alice').catch((e: unknown) => e);
        expect(isAckdError(after, 'ERR_EXPIRED'), `${id} ${d}: ${String(after)}`).toBe(true);
      }
    }
  });
});

describe("an agent's request listing", () => {
  it('lists each request once, newest first, though its audit events share the by-agent index', async () => {
    const agent = parseAgentId('lister-agent');
    const ids: RequestId[] = [];
    for (let i = 0; i < 4; i++) {
      const { request_id } = await stack.deps.service.requestAuthorization({ agent_id: agent, action: `list ${i}`, permissions: ['a:b'], justification: 'j', ttl_minutes: 5 });
      await stack.deps.service.decide(request_id, i % 2 ? 'approved' : 'denied', 'operator:alice');
      ids.push(request_id);
      stack.clock.advance(1000);
    }
    const listed = await stack.deps.store.listByAgent(agent, { limit: 3 });
    expect(listed.map((r) => r.request_id)).toEqual(ids.slice(1).reverse());
    expect((await stack.deps.store.listByAgent(agent)).map((r) => r.request_id)).toEqual([...ids].reverse());
  });
});
