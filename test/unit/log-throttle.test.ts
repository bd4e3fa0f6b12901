import { describe, expect, it } from 'vitest';
import { ThrottledWarnings } from '../../lambdas/core/log-throttle.ts';
import { HmacOutboxSealer } from '../../lambdas/core/audit/seal.ts';
import { authenticateApiKey, hashApiKey, SealedApiKeyStore } from '../../lambdas/core/apikeys.ts';
import { MemoryApiKeyStore } from '../../lambdas/adapters/memory/store.ts';
import { parseAgentId } from '../../lambdas/core/ids.ts';
import { memoryLogger } from '../helpers/local-stack.ts';

const parsed = (lines: string[]) => lines.map((l) => JSON.parse(l) as Record<string, unknown>);

describe('warnings about forged entries are throttled per subject', () => {
  it('one line per subject per window; the next after it says how many were left out; other subjects are not held back', () => {
    let now = 0;
    const logger = memoryLogger();
    const w = new ThrottledWarnings(logger, { windowMs: 60_000, now: () => now });
    for (let i = 0; i < 50; i++) w.warn('a', 'forged', { code: 'X', n: i });
    w.warn('b', 'forged', { code: 'X', n: 'b' });
    expect(parsed(logger.lines).map((l) => l.n)).toEqual([0, 'b']);
    now = 60_001;
    w.warn('a', 'forged', { code: 'X', n: 50 });
    expect(parsed(logger.lines).at(-1)).toMatchObject({ n: 50, suppressed: 49 });
    w.warn('a', 'forged', { code: 'X', n: 51 });
    expect(logger.lines).toHaveLength(3);
  });

  it('remembers at most `max` subjects (the oldest forgotten first): many forged entries cannot grow memory without bound', () => {
    const logger = memoryLogger();
    const w = new ThrottledWarnings(logger, { max: 3, now: () => 0 });
    for (const s of ['a', 'b', 'c', 'd', 'a']) w.warn(s, 'forged', { s });
    // 'a' was forgotten when 'd' came, so it is warned again
    expect(parsed(logger.lines).map((l) => l.s)).toEqual(['a', 'b', 'c', 'd', 'a']);
  });

  it('a flood of calls with one forged API key writes one ERR_APIKEY_UNSEALED line, not one per call', async () => {
    const logger = memoryLogger();
    const inner = new MemoryApiKeyStore();
    const keys = new SealedApiKeyStore(inner, HmacOutboxSealer.random(), logger);
    const apiKey = `ackd_${'A'.repeat(43)}`;
    const key_hash = hashApiKey(apiKey);
    inner.writeRaw({ key_id: `key_${key_hash.slice(0, 12)}`, key_hash, agent_id: parseAgentId('deploy-bot'), created_at: '2026-01-01T00:00:00.000Z', revoked_at: null });
    for (let i = 0; i < 100; i++) await expect(authenticateApiKey(keys, apiKey)).rejects.toThrow(/valid agent API key/);
    expect(logger.lines.filter((l) => l.includes('ERR_APIKEY_UNSEALED'))).toHaveLength(1);
  });
});
