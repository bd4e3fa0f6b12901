import { GenerateMacCommand } from '@aws-sdk/client-kms';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Config } from '../../config.ts';
import { AckdError } from '../../core/errors.ts';
import { deriveLocalKey, HmacOutboxSealer, SEAL_KEY_LABEL, unavailableSealer, type OutboxSealer } from '../../core/audit/seal.ts';
import { lazyKmsClient, type KmsSend } from './kms.ts';
import { createSecretFileOnce } from './local.ts';

/**
 * Where the outbox seal key (core/audit/seal.ts) comes from: ACKD_OUTBOX_SEAL_KEY.
 * - `kms:<key id or ARN>`: a KMS key with key spec HMAC_256 and usage GENERATE_VERIFY_MAC. The
 *   process calls kms:GenerateMac once (message: the label `ackd-outbox-seal-v1`, HMAC_SHA_256)
 *   and keeps the 32-byte MAC in memory as its HMAC key. The KMS key itself never leaves KMS;
 *   whoever may call GenerateMac on it can seal, so only ackd's writers and its sequencer may.
 * - locally, a file of 32 random bytes (64 hex characters), made once by `npm start`
 *   (lambdas/local: `.ackd/outbox-seal.key`, 0600); the key is HMAC-SHA256(file key, label).
 * Unset: a sealer that refuses (writing an event fails, the sequencer admits nothing).
 */

const SETTING = 'ACKD_OUTBOX_SEAL_KEY';

/** The HMAC key from KMS: GenerateMac of the label (one call; retried on the next use after a failure). */
export function kmsOutboxSealer(keyId: string, client: KmsSend): OutboxSealer {
  return new HmacOutboxSealer(async () => {
    let mac: Uint8Array | undefined;
    try {
      const out = await client.send(new GenerateMacCommand({ KeyId: keyId, MacAlgorithm: 'HMAC_SHA_256', Message: Buffer.from(SEAL_KEY_LABEL, 'utf8') }));
      mac = out.Mac;
    } catch (e) {
      const name = (e as { name?: string }).name ?? 'error';
      throw new AckdError('ERR_SIGNER_UNAVAILABLE', `${SETTING}: KMS GenerateMac with ${keyId} failed (${name}); it must be an HMAC_256 key with usage GENERATE_VERIFY_MAC that this function may use`, { cause: e });
    }
    if (!mac || mac.length !== 32) throw new AckdError('ERR_SIGNER_UNAVAILABLE', `${SETTING}: KMS key ${keyId} returned a ${mac?.length ?? 0}-byte MAC; it must be an HMAC_256 key`);
    return mac;
  });
}

/** Reads a local seal key file: 64 hex characters (a trailing newline allowed). */
export function readSealKeyFile(path: string): Buffer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (e) {
    throw new AckdError('ERR_SIGNER_UNAVAILABLE', `${SETTING}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (!/^[0-9a-f]{64}$/.test(text)) throw new AckdError('ERR_SIGNER_UNAVAILABLE', `${SETTING}: ${path} must hold 32 bytes as 64 lowercase hex characters`);
  return Buffer.from(text, 'hex');
}

/** The HMAC key from a local key file (read on first use). */
export function fileOutboxSealer(path: string): OutboxSealer {
  return new HmacOutboxSealer(() => Promise.resolve(deriveLocalKey(readSealKeyFile(path))));
}

/** Makes a local seal key file (32 random bytes as hex, owner-only) unless one is there already; its path. */
export function createSealKeyFileOnce(path: string): string {
  createSecretFileOnce(path, () => randomBytes(32).toString('hex') + '\n');
  return path;
}

/** The sealer ACKD_OUTBOX_SEAL_KEY names. */
export function outboxSealerFrom(config: Pick<Config, 'outboxSealKey' | 'region'>): OutboxSealer {
  const k = config.outboxSealKey;
  if (!k) return unavailableSealer();
  if (k.startsWith('kms:')) return kmsOutboxSealer(k.slice(4), lazyKmsClient(config.region));
  return fileOutboxSealer(k);
}
