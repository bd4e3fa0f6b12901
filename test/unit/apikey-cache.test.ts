import { describe, expect, it } from 'vitest';
import { MemoryApiKeyStore } from '../../lambdas/adapters/memory/store.ts';
import { ApiKeyCache, createApiKey, hashApiKey } from '../../lambdas/core/apikeys.ts';
import { isAckdError } from '../../lambdas/core/errors.ts';
import { parseAgentId } from '../../lambdas/core/ids.ts';
import type { ApiKeyEntry } from '../../lambdas/core/ports.ts';
import { ManualClock } from '../helpers/clock.ts';

/** The in-memory key store, counting lookups and able to fail them. */
class CountingKeys extends MemoryApiKeyStore {
  lookups = 0;
  fail = false;
  override getByHash(keyHash: string): Promise<ApiKeyEntry | undefined> {
    this.lookups++;
    if (this.fail) return Promise.reject(new Error('store down'));
    return super.getByHash(keyHash);
  }
}

const agent = parseAgentId('demo-agent');

async function setup(opts: { ttlMs?: number; maxEntries?: number } = {}) {
  const clock = new ManualClock();
  const store = new CountingKeys();
  const cache = new ApiKeyCache(store, { ...opts, now: () => clock.now().getTime() });
  const { apiKey, entry } = await createApiKey(store, agent, clock);
  return { clock, store, cache, apiKey, entry };
}

/** Fails unless `p` rejects with ERR_UNAUTHENTICATED. */
async function unauthenticated(p: Promise<unknown>): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(isAckdError(e, 'ERR_UNAUTHENTICATED'), `expected ERR_UNAUTHENTICATED, got ${String(e)}`).toBe(true);
}

describe('API key cache', () => {
  it('reads a key once per TTL (5 s by default), and again after it', async () => {
    const { clock, store, cache, apiKey } = await setup();
    for (let i = 0; i < 10; i++) expect(await cache.authenticate(apiKey)).toBe(agent);
    expect(store.lookups).toBe(1);
    clock.advance(4_999);
    await cache.authenticate(apiKey);
    expect(store.lookups).toBe(1);
    clock.advance(1);
    await cache.authenticate(apiKey);
    expect(store.lookups).toBe(2);
  });

  it('concurrent first lookups of one key share one read', async () => {
    const { store, cache, apiKey } = await setup();
    expect(await Promise.all(Array.from({ length: 50 }, () => cache.authenticate(apiKey)))).toEqual(Array(50).fill(agent));
    expect(store.lookups).toBe(1);
  });

  it('authenticateCall says whether the answer is a store read this call made (not memory, not a read another call started)', async () => {
    const { clock, store, cache, apiKey } = await setup();
    const [first, second] = await Promise.all([cache.authenticateCall(apiKey), cache.authenticateCall(apiKey)]);
    expect(store.lookups).toBe(1);
    expect([first.read, second.read]).toEqual([true, false]);
    expect([first.agentId, second.agentId]).toEqual([agent, agent]);
    expect(await cache.authenticateCall(apiKey)).toEqual({ agentId: agent, read: false });
    clock.advance(5_000);
    expect(await cache.authenticateCall(apiKey)).toEqual({ agentId: agent, read: true });
    expect(store.lookups).toBe(2);
  });

  it('never remembers a key that failed: unknown, malformed, revoked; a key created since works at once', async () => {
    const { clock, store, cache, apiKey, entry } = await setup();
    const unknown = `ackd_${'A'.repeat(43)}`;
    await unauthenticated(cache.authenticate(unknown));
    await unauthenticated(cache.authenticate(unknown));
    expect(store.lookups).toBe(2);
    await unauthenticated(cache.authenticate('ackd_short'));
    await unauthenticated(cache.authenticate(undefined));
    expect(store.lookups).toBe(2); // refused before any read
    await store.revoke(entry.key_id, clock.now());
    await unauthenticated(cache.authenticate(apiKey));
    await unauthenticated(cache.authenticate(apiKey));
    expect(store.lookups).toBe(4);
    expect(cache.size).toBe(0);
    const fresh = await createApiKey(store, agent, clock);
    expect(await cache.authenticate(fresh.apiKey)).toBe(agent);
  });

  it('a revoked key keeps working for other calls until the TTL ends, but reauthenticate always reads the store and evicts it', async () => {
    const { clock, store, cache, apiKey, entry } = await setup();
    await cache.authenticate(apiKey);
    await store.revoke(entry.key_id, clock.now());
    // The documented window: a revoked key may make non-SVID calls for up to the TTL.
    expect(await cache.authenticate(apiKey)).toBe(agent);
    const before = store.lookups;
    await unauthenticated(cache.reauthenticate(apiKey));
    expect(store.lookups).toBe(before + 1);
    // Evicted: the next call reads the store, and is refused.
    await unauthenticated(cache.authenticate(apiKey));
    expect(store.lookups).toBe(before + 2);
  });

  it('reauthenticate never answers from memory; a store failure evicts the key and is thrown', async () => {
    const { store, cache, apiKey } = await setup();
    await cache.authenticate(apiKey);
    expect(await cache.reauthenticate(apiKey)).toBe(agent);
    expect(await cache.reauthenticate(apiKey)).toBe(agent);
    expect(store.lookups).toBe(3);
    store.fail = true;
    await expect(cache.reauthenticate(apiKey)).rejects.toThrow('store down');
    expect(cache.size).toBe(0);
    await expect(cache.authenticate(apiKey)).rejects.toThrow('store down');
    store.fail = false;
    expect(await cache.authenticate(apiKey)).toBe(agent);
  });

  it('a lookup that started before an eviction is not remembered', async () => {
    const { clock, store, cache, apiKey, entry } = await setup();
    const early = cache.authenticate(apiKey); // in flight, reads the key before its revocation
    await store.revoke(entry.key_id, clock.now());
    await unauthenticated(cache.reauthenticate(apiKey));
    expect(await early).toBe(agent);
    expect(cache.size).toBe(0);
    await unauthenticated(cache.authenticate(apiKey));
  });

  it('is bounded: the least recently used key is forgotten first; keys are remembered by hash only', async () => {
    const { clock, store, cache, apiKey } = await setup({ maxEntries: 2 });
    const b = await createApiKey(store, agent, clock);
    const c = await createApiKey(store, agent, clock);
    await cache.authenticate(apiKey);
    await cache.authenticate(b.apiKey);
    await cache.authenticate(apiKey); // apiKey used last: b is the least recently used
    await cache.authenticate(c.apiKey);
    expect(cache.size).toBe(2);
    const before = store.lookups;
    await cache.authenticate(apiKey);
    expect(store.lookups).toBe(before);
    await cache.authenticate(b.apiKey);
    expect(store.lookups).toBe(before + 1);
    const remembered = JSON.stringify([...(cache as unknown as { known: Map<string, unknown> }).known.entries()]);
    expect(remembered).not.toContain(apiKey);
    expect(remembered).toContain(hashApiKey(apiKey));
  });

  it('ttlMs 0 reads every time', async () => {
    const { store, cache, apiKey } = await setup({ ttlMs: 0 });
    await cache.authenticate(apiKey);
    await cache.authenticate(apiKey);
    expect(store.lookups).toBe(2);
  });
});
