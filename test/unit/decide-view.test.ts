import { describe, expect, it } from 'vitest';
import { MemoryRequestStore } from '../../lambdas/adapters/memory/store.ts';
import { LocalCaMinter } from '../../lambdas/adapters/local-ca/index.ts';
import { isAckdError } from '../../lambdas/core/errors.ts';
import { parseAgentId } from '../../lambdas/core/ids.ts';
import { AuthorizationService } from '../../lambdas/core/service.ts';
import { approvalView, viewSha256 } from '../../lambdas/core/view.ts';
import { ManualClock } from '../helpers/clock.ts';

// The core's view binding (AuthorizationService.decide with evidence.view_sha256), on the in-memory store.

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const agent = parseAgentId('deploy-bot');

async function setup() {
  const clock = new ManualClock('2026-11-30T10:00:00.000Z');
  const store = new MemoryRequestStore(clock);
  const minter = await LocalCaMinter.create({ trustDomain: 'ackd.test' as never, clock });
  const service = new AuthorizationService({ trustDomain: 'ackd.test' as never, consentBaseUrl: 'https://consent.test', retentionDays: 30 }, { store, minter, clock, logger: quiet });
  const { request_id } = await service.requestAuthorization({ agent_id: agent, action: 'deploy', permissions: ['deploy:prod'], justification: 'release', ttl_minutes: 10, payload: { env: 'prod', replicas: 3 } });
  return { service, id: request_id };
}

describe('decide: the view binding', () => {
  it('a decision on the view of the request as stored stands', async () => {
    const { service, id } = await setup();
    const view_sha256 = viewSha256(approvalView(await service.get(id)));
    expect((await service.decide(id, 'approved', 'sub-alice', null, { evidence: { view_sha256 } })).decision).toBe('approved');
  });

  it('a decision on any other view is refused with ERR_STALE_VIEW and decides nothing', async () => {
    const { service, id } = await setup();
    const r = await service.get(id);
    // The same request with one payload value changed: what a page showing an older version would send.
    const other = viewSha256(approvalView({ ...r, payload: { env: 'prod', replicas: 4 } }));
    const e = await service.decide(id, 'approved', 'sub-alice', null, { evidence: { view_sha256: other } }).catch((x: unknown) => x);
    expect(isAckdError(e, 'ERR_STALE_VIEW')).toBe(true);
    expect((e as Error).message).toMatch(/changed since the page showed it.*reload/);
    expect(await service.get(id)).toMatchObject({ decision: 'pending', votes: [] });
  });

  it('without a view hash (an internal caller), nothing is checked', async () => {
    const { service, id } = await setup();
    expect((await service.decide(id, 'denied', 'operator:ops', null, { evidence: { view_sha256: null } })).decision).toBe('denied');
  });
});
