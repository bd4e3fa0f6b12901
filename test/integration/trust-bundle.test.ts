import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCaMinter } from '../../lambdas/adapters/local-ca/index.ts';
import { MemoryBundleStore } from '../../lambdas/adapters/memory/bundle.ts';
import { AckdError } from '../../lambdas/core/errors.ts';
import { parseTrustDomain } from '../../lambdas/core/ids.ts';
import type { SvidMinter } from '../../lambdas/core/ports.ts';
import { svidRoutes } from '../../lambdas/http/svid-routes.ts';
import { readItem, startTestStack, type TestStack } from '../helpers/local-stack.ts';

/** The in-process CA behind a switch: `down` makes the issuer refuse as an unreachable SPIRE would. */
let down = false;
let stack: TestStack;
const failing: SvidMinter = {
  mint: () => Promise.reject(new AckdError('ERR_ISSUER_UNAVAILABLE')),
  trustBundlePem: () => Promise.reject(new AckdError('ERR_ISSUER_UNAVAILABLE')),
};

beforeAll(async () => {
  stack = await startTestStack({
    consent: false,
    issuer: async ({ trustDomain }) => {
      const ca = await LocalCaMinter.create({ trustDomain: parseTrustDomain(trustDomain) });
      const minter: SvidMinter = {
        mint: (id, notAfter) => (down ? failing.mint(id, notAfter) : ca.mint(id, notAfter)),
        trustBundlePem: () => (down ? failing.trustBundlePem() : ca.trustBundlePem()),
      };
      return { kind: 'local-ca', minter, stop: () => Promise.resolve() };
    },
  });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

const get = () => fetch(`${stack.appUrl}/.well-known/spiffe-bundle`);

describe('the trust bundle while the issuer is down', () => {
  it('serves the last bundle the issuer gave, marked with when it was fetched and a short refresh hint; remembers it in the table', async () => {
    const first = await get();
    expect(first.status).toBe(200);
    const fetchedAt = first.headers.get('x-ackd-bundle-fetched-at');
    const bundle = (await first.json()) as { keys: unknown[]; spiffe_refresh_hint: number };
    expect(bundle.spiffe_refresh_hint).toBe(300);
    expect(await readItem(stack, 'bundle#last')).toMatchObject({ fetched_at: fetchedAt });

    down = true;
    stack.clock.advance(31_000); // past the per-instance cache: the issuer is asked, and refuses
    const stale = await get();
    expect(stale.status).toBe(200);
    expect(stale.headers.get('x-ackd-bundle-fetched-at')).toBe(fetchedAt);
    expect(stale.headers.get('cache-control')).toBe('no-store');
    const staleBundle = (await stale.json()) as { keys: unknown[]; spiffe_refresh_hint: number };
    expect(staleBundle.keys).toEqual(bundle.keys);
    expect(staleBundle.spiffe_refresh_hint).toBe(60);
    down = false;
  });

  it('a new instance with the issuer down serves the bundle remembered in the table; with none remembered, 503', async () => {
    const cold = svidRoutes({ minter: failing, service: stack.deps.service, trustDomain: stack.deps.service.trustDomain, bundles: stack.deps.bundles });
    const res = await cold.request('/.well-known/spiffe-bundle');
    expect(res.status).toBe(200);
    expect(((await res.json()) as { keys: unknown[] }).keys.length).toBeGreaterThan(0);
    const empty = svidRoutes({ minter: failing, service: stack.deps.service, trustDomain: stack.deps.service.trustDomain, bundles: new MemoryBundleStore() });
    const none = await empty.request('/.well-known/spiffe-bundle');
    expect(none.status).toBe(503);
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe('ERR_ISSUER_UNAVAILABLE');
  });

  it('asks the issuer at most once per 30 s per instance', async () => {
    let calls = 0;
    const ca = await LocalCaMinter.create({ trustDomain: stack.deps.service.trustDomain });
    const counting: SvidMinter = { mint: (i, n) => ca.mint(i, n), trustBundlePem: () => (calls++, ca.trustBundlePem()) };
    const app = svidRoutes({ minter: counting, service: stack.deps.service, trustDomain: stack.deps.service.trustDomain, clock: stack.clock });
    for (let i = 0; i < 5; i++) expect((await app.request('/.well-known/spiffe-bundle')).status).toBe(200);
    expect(calls).toBe(1);
    stack.clock.advance(30_000);
    await app.request('/.well-known/spiffe-bundle');
    expect(calls).toBe(2);
  });
});
