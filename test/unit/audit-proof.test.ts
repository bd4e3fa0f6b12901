import { describe, expect, it } from 'vitest';
import { MemoryRequestStore } from '../../lambdas/adapters/memory/store.ts';
import { LocalKeySigner } from '../../lambdas/adapters/signing/local.ts';
import { AuditService } from '../../lambdas/core/audit/service.ts';
import { verifyInclusionProof } from '../../lambdas/core/audit/proof.ts';
import { checkpointPublicKey } from '../../lambdas/core/audit/signing.ts';
import { ChainVerifier } from '../../lambdas/core/audit/verify.ts';
import { parseAgentId, type RequestId } from '../../lambdas/core/ids.ts';
import { AuthorizationService } from '../../lambdas/core/service.ts';
import { ManualClock } from '../helpers/clock.ts';
import { LocalCaMinter } from '../../lambdas/adapters/local-ca/index.ts';

// Inclusion proofs on the in-memory adapters: the core's sequencer, tree and proofs, no stack.

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const agent = parseAgentId('deploy-bot');

async function setup() {
  const clock = new ManualClock('2026-11-30T10:00:00.000Z');
  const store = new MemoryRequestStore(clock);
  const signer = LocalKeySigner.generate();
  const audit = new AuditService({ log: store, clock, logger: quiet, signer, retentionDays: 30 });
  const minter = await LocalCaMinter.create({ trustDomain: 'ackd.test' as never, clock });
  const service = new AuthorizationService({ trustDomain: 'ackd.test' as never, consentBaseUrl: 'https://consent.test', retentionDays: 30 }, { store, minter, clock, logger: quiet });
  const key = checkpointPublicKey(await signer.publicKeyPem());
  const lifecycle = async (action: string): Promise<RequestId> => {
    const { request_id } = await service.requestAuthorization({ agent_id: agent, action, permissions: ['deploy:prod'], justification: 'release', ttl_minutes: 10 });
    await service.decide(request_id, 'approved', 'sub-alice');
    await service.check(agent, request_id);
    return request_id;
  };
  return { clock, store, audit, service, key, lifecycle };
}

describe('inclusion proofs (ackd audit prove / verify-proof)', () => {
  it("proves every event of a request against the newest signed tree head, offline; any change fails", async () => {
    const { audit, key, lifecycle } = await setup();
    const ids = [];
    for (let i = 0; i < 7; i++) ids.push(await lifecycle(`deploy ${i}`));
    await audit.checkpoint();
    const id = ids[3]!;
    const proof = await audit.prove(id);
    expect(proof.events.map((e) => e.event.type)).toEqual(['requested', 'approved', 'svid_issued']);
    expect(proof.not_yet_covered).toBe(0);
    const r = verifyInclusionProof(JSON.parse(JSON.stringify(proof)), key);
    expect(r.problems).toEqual([]);
    expect(r).toMatchObject({ ok: true, request_id: id, tree_size: proof.checkpoint.seq });

    const changed = structuredClone(proof) as unknown as { events: { event: Record<string, unknown>; path: string[] }[]; checkpoint: Record<string, unknown> };
    changed.events[1]!.event.approver_identity = 'sub-mallory';
    expect(verifyInclusionProof(changed, key).problems.join()).toMatch(/does not match its hash/);
    const path = structuredClone(proof) as unknown as typeof changed;
    path.events[0]!.path[0] = '0'.repeat(64);
    expect(verifyInclusionProof(path, key).problems.join()).toMatch(/audit path does not lead to the signed root/);
    const root = structuredClone(proof) as unknown as typeof changed;
    root.checkpoint.root = '1'.repeat(64);
    expect(verifyInclusionProof(root, key).ok).toBe(false);
    expect(verifyInclusionProof({ v: 1 }, key).problems[0]).toMatch(/not an ackd inclusion proof/);
  });

  it('events after the newest tree head are counted as not yet covered, then covered by the next', async () => {
    const { audit, key, lifecycle, service } = await setup();
    const id = await lifecycle('first');
    await audit.checkpoint();
    await service.revoke(agent, id, (await service.get(id)).svid_id!);
    const before = await audit.prove(id);
    expect(before.not_yet_covered).toBe(1);
    await audit.checkpoint();
    const after = await audit.prove(id);
    expect(after.events.map((e) => e.event.type)).toEqual(['requested', 'approved', 'svid_issued', 'revoked']);
    expect(verifyInclusionProof(after, key).ok).toBe(true);
  });

  it('consecutive tree heads are consistent, and an export of the log verifies every root', async () => {
    const { audit, key, lifecycle } = await setup();
    for (let i = 0; i < 5; i++) {
      await lifecycle(`round ${i}`);
      await audit.checkpoint();
    }
    const v = new ChainVerifier({ publicKey: key });
    for await (const l of audit.export()) v.addLine(l);
    const report = v.finish();
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({ ok: true, roots_verified: 5, consistency_verified: 4 });
  });
});
