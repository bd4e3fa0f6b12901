/**
 * Real spire-server behind the whole local stack (dynalite store, MCP over HTTP): SPIRE stopped or
 * hung mid-run → check_authorization fails closed and nothing is marked issued; SPIRE back → the
 * same request's SVID is issued, from the same CA (the data dir keeps it across restarts).
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { isAckdError } from '../../lambdas/core/errors.ts';
import { SpiffeId, newRequestId, parseAgentId, parseRequestId, parseTrustDomain } from '../../lambdas/core/ids.ts';
import { verifySvid } from '../../lambdas/verify/index.ts';
import { errorText, startTestStack, structured, type TestStack, approvedRequest } from '../helpers/local-stack.ts';
import { SPIRE_BUILD_TIMEOUT_MS, spireIssuer, startTestSpire, type TestSpire } from '../helpers/spire.ts';

describe('SPIRE issuer: fail closed, then recover', () => {
  let spire: TestSpire;
  let stack: TestStack;
  let mcp: Client;
  beforeAll(async () => {
    spire = await startTestSpire('ackd.test');
    stack = await startTestStack({
      trustDomain: 'ackd.test',
      consent: false,
      issuer: spireIssuer(spire),
    });
    mcp = await stack.client();
  }, SPIRE_BUILD_TIMEOUT_MS);
  afterAll(async () => {
    await stack?.stop();
    await spire?.stop();
  });

  const approved = () => approvedRequest(stack, mcp, { justification: 'scheduled rotation' });

  it('SPIRE stopped: the check is a clear tool error, nothing is issued; restarted: the same request gets its SVID', async () => {
    const requestId = await approved();
    const bundleBefore = await spire.minter.trustBundlePem();

    await spire.server.stop();
    const err = errorText(await mcp.callTool({ name: 'check_authorization', arguments: { request_id: requestId } }));
    expect(err).toMatch(/^ERR_ISSUER_UNAVAILABLE: /);
    let rec = await stack.deps.store.get(parseRequestId(requestId));
    expect(rec!.svid_id).toBeNull();
    expect(rec!.svid_issued_at).toBeNull();
    expect(rec!.decision).toBe('approved');
    // a second try while still down fails the same way (the issuance claim was released)
    expect(errorText(await mcp.callTool({ name: 'check_authorization', arguments: { request_id: requestId } }))).toMatch(/^ERR_ISSUER_UNAVAILABLE/);

    await spire.server.restart();
    const ok = structured<{ status: string; svid: string; svid_id: string; spiffe_id: string; expires_at: string }>(
      await mcp.callTool({ name: 'check_authorization', arguments: { request_id: requestId } }),
    );
    expect(ok.status).toBe('approved');
    expect(ok.spiffe_id).toBe(`spiffe://ackd.test/agent/${stack.agentId}/${requestId}`);
    rec = await stack.deps.store.get(parseRequestId(requestId));
    expect(rec!.svid_id).toBe(ok.svid_id);

    // same CA before and after the restart: the SVID verifies against the bundle written earlier
    expect(await spire.minter.trustBundlePem()).toBe(bundleBefore);
    const v = await verifySvid(ok.svid, { bundle: bundleBefore });
    expect(v.request_id).toBe(requestId);
    expect(v.svid_id).toBe(ok.svid_id);
    // TTL cap: never beyond what was approved
    expect(v.not_after.getTime()).toBeLessThanOrEqual(Date.parse(rec!.svid_expires_at!));
  });

  it('SPIRE hung (SIGSTOP): the call hits its deadline and fails closed; resumed: issued', async () => {
    const requestId = await approved();
    const pid = spire.server.pid()!;
    process.kill(pid, 'SIGSTOP');
    try {
      const t0 = Date.now();
      const err = errorText(await mcp.callTool({ name: 'check_authorization', arguments: { request_id: requestId } }));
      expect(err).toMatch(/^ERR_ISSUER_UNAVAILABLE/);
      expect(Date.now() - t0).toBeLessThan(15_000);
      expect((await stack.deps.store.get(parseRequestId(requestId)))!.svid_id).toBeNull();
      // the bridge itself reports the deadline (in the cause, for the logs)
      const id = SpiffeId.forRequest(parseTrustDomain('ackd.test'), parseAgentId('x'), newRequestId(Date.now()));
      const e = await spire.minter.mint(id, new Date(Date.now() + 60_000)).catch((x: unknown) => x);
      expect(isAckdError(e, 'ERR_ISSUER_UNAVAILABLE') && /DEADLINE_EXCEEDED/.test(String((e.cause as Error).message))).toBe(true);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const ok = structured<{ status: string; svid: string }>(await mcp.callTool({ name: 'check_authorization', arguments: { request_id: requestId } }));
    expect(ok.status).toBe('approved');
    expect(ok.svid).toContain('-----BEGIN PRIVATE KEY-----');
  });
});
