import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { AckdError } from './errors.ts';
import type { AgentId } from './ids.ts';
import type { ApiKeyEntry, ApiKeyStore, Clock } from './ports.ts';

/**
 * Agent API keys: `ackd_` + 43 base64url characters (256 random bits). Only the SHA-256 of a key
 * is stored (a fast hash is right for a high-entropy random secret; there is nothing to brute-force).
 */
const KEY_FORMAT = /^ackd_[A-Za-z0-9_-]{43}$/;

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function looksLikeApiKey(token: string): boolean {
  return KEY_FORMAT.test(token);
}

export async function createApiKey(store: ApiKeyStore, agentId: AgentId, clock: Clock): Promise<{ apiKey: string; entry: ApiKeyEntry }> {
  const apiKey = `ackd_${randomBytes(32).toString('base64url')}`;
  const keyHash = hashApiKey(apiKey);
  const entry: ApiKeyEntry = {
    key_id: `key_${keyHash.slice(0, 12)}`,
    key_hash: keyHash,
    agent_id: agentId,
    created_at: clock.now().toISOString(),
    revoked_at: null,
  };
  await store.put(entry);
  return { apiKey, entry };
}

/** The agent a presented key belongs to. Any failure is ERR_UNAUTHENTICATED with no detail about why. */
export async function authenticateApiKey(store: ApiKeyStore, presented: string | undefined): Promise<AgentId> {
  if (!presented || !looksLikeApiKey(presented)) throw new AckdError('ERR_UNAUTHENTICATED', 'a valid agent API key is required');
  const presentedHash = hashApiKey(presented);
  const entry = await store.getByHash(presentedHash);
  // Constant-time comparison of the hashes, even though the lookup was by hash.
  const expected = Buffer.from(entry?.key_hash ?? '0'.repeat(64), 'hex');
  const actual = Buffer.from(presentedHash, 'hex');
  const same = expected.length === actual.length && timingSafeEqual(expected, actual);
  if (!entry || !same || entry.revoked_at !== null) throw new AckdError('ERR_UNAUTHENTICATED', 'a valid agent API key is required');
  return entry.agent_id;
}
