import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MemoryApiKeyStore } from '../../lambdas/adapters/memory/store.ts';
import { HmacOutboxSealer, unavailableSealer } from '../../lambdas/core/audit/seal.ts';
import { ApiKeyCache, authenticateApiKey, createApiKey, hashApiKey, SealedApiKeyStore } from '../../lambdas/core/apikeys.ts';
import { isAckdError } from '../../lambdas/core/errors.ts';
import { parseAgentId } from '../../lambdas/core/ids.ts';
import type { ApiKeyEntry } from '../../lambdas/core/ports.ts';
import { ManualClock } from '../helpers/clock.ts';
import { memoryLogger } from '../helpers/local-stack.ts';

const bot = parseAgentId('deploy-bot');
const intern = parseAgentId('intern-bot');

function setup() {
  const clock = new ManualClock();
  const inner = new MemoryApiKeyStore();
  const logger = memoryLogger();
  const sealer = HmacOutboxSealer.random();
  const keys = new SealedApiKeyStore(inner, sealer, logger);
  return { clock, inner, logger, sealer, keys };
}

async function refused(p: Promise<unknown>): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(isAckdError(e, 'ERR_UNAUTHENTICATED'), `expected ERR_UNAUTHENTICATED, got ${String(e)}`).toBe(true);
}

/** A key of the right format and the entry a table writer would store for it. */
function forged(agent: string, over: Partial<ApiKeyEntry> = {}): { apiKey: string; entry: ApiKeyEntry } {
  const apiKey = `ackd_${randomBytes(32).toString('base64url')}`;
  const key_hash = hashApiKey(apiKey);
  return { apiKey, entry: { key_id: `key_${key_hash.slice(0, 12)}`, key_hash, agent_id: parseAgentId(agent), created_at: '2026-01-01T00:00:00.000Z', revoked_at: null, ...over } };
}

describe('sealed API keys', () => {
  it('a key made through the store is sealed and authenticates, through the cache too', async () => {
    const { clock, inner, keys } = setup();
    const { apiKey, entry } = await createApiKey(keys, bot, clock);
    expect((await inner.getByHash(entry.key_hash))?.seal).toMatch(/^v1\.[A-Za-z0-9_-]{43}$/);
    expect(await authenticateApiKey(keys, apiKey)).toBe(bot);
    expect(await new ApiKeyCache(keys).authenticate(apiKey)).toBe(bot);
    expect(await keys.listAll()).toEqual([expect.objectContaining({ key_id: entry.key_id, sealed: true })]);
  });

  it('an entry written outside ackd (no seal, a made-up seal, another entry\'s seal) does not authenticate, and says why in the log', async () => {
    const { clock, inner, logger, keys } = setup();
    const genuine = await createApiKey(keys, intern, clock);
    const genuineSeal = (await inner.getByHash(genuine.entry.key_hash))!.seal!;
    const cases = [forged('deploy-bot'), forged('deploy-bot', { seal: `v1.${'A'.repeat(43)}` }), forged('deploy-bot', { seal: genuineSeal }), forged('deploy-bot', { seal: 'not a seal' })];
    for (const f of cases) {
      inner.writeRaw(f.entry);
      await refused(authenticateApiKey(keys, f.apiKey));
      await refused(new ApiKeyCache(keys).authenticate(f.apiKey));
    }
    const warned = logger.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.code === 'ERR_APIKEY_UNSEALED');
    // (each entry refused twice, warned once: warnings are throttled per entry and reason)
    expect(warned.map((w) => w.reason)).toEqual(['missing', 'mismatch', 'mismatch', 'malformed']);
    expect(warned[0]).toMatchObject({ level: 'warn', key_id: cases[0]!.entry.key_id });
    expect((await keys.listAll()).filter((k) => k.sealed === false).map((k) => k.key_id).sort()).toEqual(cases.map((c) => c.entry.key_id).sort());
  });

  it('a genuine entry moved to another agent, re-dated, or stored under another key\'s hash does not authenticate', async () => {
    const { clock, inner, keys } = setup();
    const { apiKey, entry } = await createApiKey(keys, intern, clock);
    const stored = (await inner.getByHash(entry.key_hash))!;
    inner.writeRaw({ ...stored, agent_id: bot });
    await refused(authenticateApiKey(keys, apiKey));
    inner.writeRaw({ ...stored, created_at: '2030-01-01T00:00:00.000Z' });
    await refused(authenticateApiKey(keys, apiKey));
    inner.writeRaw(stored);
    expect(await authenticateApiKey(keys, apiKey)).toBe(intern);
    // The whole sealed entry copied under the hash of a key the writer knows.
    const mine = forged('intern-bot');
    inner.writeRaw({ ...stored, key_hash: mine.entry.key_hash });
    await refused(authenticateApiKey(keys, mine.apiKey));
  });

  it('revoking refuses the key and seals the entry anew over revoked_at: clearing revoked_at breaks the seal; only the seal from before the revocation puts it back', async () => {
    const { clock, inner, keys, logger } = setup();
    const { apiKey, entry } = await createApiKey(keys, bot, clock);
    const before = (await inner.listAll())[0]!;
    clock.advance(1000);
    const [revoked] = await keys.revoke(entry.key_id, clock.now());
    expect(revoked).toMatchObject({ key_id: entry.key_id, revoked_at: clock.now().toISOString() });
    expect(revoked!.seal).not.toBe(before.seal);
    await refused(authenticateApiKey(keys, apiKey));
    expect(logger.lines.filter((l) => l.includes('ERR_APIKEY_UNSEALED'))).toEqual([]); // a revoked key is refused, not reported as forged
    expect((await keys.listAll())[0]).toMatchObject({ revoked_at: revoked!.revoked_at, sealed: true });
    // A table writer clears revoked_at: the seal (made over it) no longer holds.
    inner.writeRaw({ ...revoked!, revoked_at: null });
    await refused(authenticateApiKey(keys, apiKey));
    expect(logger.lines.at(-1)).toMatch(/ERR_APIKEY_UNSEALED.*mismatch/);
    // With the seal copied before the revocation, it authenticates again (audit verify --live reports it: admin-key-events.test.ts).
    inner.writeRaw(before);
    expect(await authenticateApiKey(keys, apiKey)).toBe(bot);
  });

  it('a revocation does not wait for the seal key: without it the key is revoked under its old seal, and a warning says so', async () => {
    const { clock, inner, logger } = setup();
    const good = new SealedApiKeyStore(inner, HmacOutboxSealer.withKey(randomBytes(32)), logger);
    const { apiKey, entry } = await createApiKey(good, bot, clock);
    const down = new SealedApiKeyStore(inner, unavailableSealer(), logger);
    const [revoked] = await down.revoke(entry.key_id, clock.now());
    expect(revoked!.revoked_at).not.toBeNull();
    await refused(authenticateApiKey(good, apiKey));
    expect(logger.lines.at(-1)).toMatch(/API key revoked under its old seal.*ERR_SIGNER_UNAVAILABLE/);
  });

  it('seal-keys seals keys stored before keys were sealed, once, and leaves a wrongly sealed one as it is', async () => {
    const { inner, keys } = setup();
    const old = forged('deploy-bot');
    const tampered = forged('intern-bot', { seal: `v1.${'B'.repeat(43)}` });
    inner.writeRaw(old.entry);
    inner.writeRaw(tampered.entry);
    await refused(authenticateApiKey(keys, old.apiKey));
    expect((await keys.sealUnsealed()).map((k) => k.key_id)).toEqual([old.entry.key_id]);
    expect(await authenticateApiKey(keys, old.apiKey)).toBe(bot);
    await refused(authenticateApiKey(keys, tampered.apiKey));
    expect(await keys.sealUnsealed()).toEqual([]);
  });

  it('seal-keys with key ids seals only those; an id that names no unsealed key seals nothing and says so', async () => {
    const { inner, keys } = setup();
    const mine = forged('deploy-bot');
    const planted = forged('deploy-bot');
    inner.writeRaw(mine.entry);
    inner.writeRaw(planted.entry);
    const e = await keys.sealUnsealed([mine.entry.key_id, 'key_000000000000']).catch((x: unknown) => x);
    expect(isAckdError(e, 'ERR_NOT_FOUND') && /no unsealed API key key_000000000000/.test((e as Error).message)).toBe(true);
    await refused(authenticateApiKey(keys, mine.apiKey));
    expect((await keys.sealUnsealed([mine.entry.key_id])).map((k) => k.key_id)).toEqual([mine.entry.key_id]);
    expect(await authenticateApiKey(keys, mine.apiKey)).toBe(bot);
    await refused(authenticateApiKey(keys, planted.apiKey));
  });

  it('seal-keys with a key id a planted twin also carries seals nothing (the operator vouches for one entry, not its twin)', async () => {
    const { inner, keys } = setup();
    const mine = forged('deploy-bot');
    const twin = forged('deploy-bot', { key_id: mine.entry.key_id });
    inner.writeRaw(mine.entry);
    inner.writeRaw({ ...twin.entry, key_id: mine.entry.key_id });
    const e = await keys.sealUnsealed([mine.entry.key_id]).catch((x: unknown) => x);
    expect(isAckdError(e, 'ERR_CONFLICT') && /names more than one unsealed API key: an entry written outside ackd carries the same id; nothing sealed/.test((e as Error).message)).toBe(true);
    await refused(authenticateApiKey(keys, mine.apiKey));
    await refused(authenticateApiKey(keys, twin.apiKey));
  });

  it('an entry changed between listing and sealing is not sealed (the write is conditional on what was listed)', async () => {
    const { inner } = setup();
    const old = forged('deploy-bot');
    inner.writeRaw(old.entry);
    expect(await inner.setSeal({ ...old.entry, agent_id: intern }, `v1.${'C'.repeat(43)}`)).toBe(false);
    expect(await inner.setSeal(old.entry, `v1.${'C'.repeat(43)}`)).toBe(true);
    expect(await inner.setSeal(old.entry, `v1.${'D'.repeat(43)}`)).toBe(false);
  });

  it('a process whose seal key is unavailable can neither make a key nor let one in (fail closed)', async () => {
    const { clock, inner } = setup();
    const down = new SealedApiKeyStore(inner, new HmacOutboxSealer(() => Promise.reject(new Error('KMS unavailable'))));
    await expect(createApiKey(down, bot, clock)).rejects.toThrow('KMS unavailable');
    const f = forged('deploy-bot');
    inner.writeRaw(f.entry);
    await expect(authenticateApiKey(down, f.apiKey)).rejects.toThrow('KMS unavailable');
    // Listing still works, saying the seals were not checked.
    expect((await down.listAll()).map((k) => k.sealed)).toEqual([null]);
  });
});
