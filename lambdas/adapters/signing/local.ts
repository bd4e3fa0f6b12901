import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { AckdError } from '../../core/errors.ts';
import type { CheckpointSigner } from '../../core/audit/signing.ts';

/**
 * Signs with an EC P-256 private key held in this process (local mode and tests): audit
 * checkpoints (ACKD_AUDIT_KEY), decisions (ACKD_DECISION_KEY). `setting` names the variable the
 * key comes from, for error messages.
 */
export class LocalKeySigner implements CheckpointSigner {
  private readonly publicPem: string;

  constructor(
    private readonly key: KeyObject,
    setting = 'ACKD_AUDIT_KEY',
  ) {
    if (key.type !== 'private' || key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      throw new AckdError('ERR_CONFIG', `${setting}: the signing key must be an EC P-256 private key`);
    }
    this.publicPem = createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();
  }

  static generate(): LocalKeySigner {
    return new LocalKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
  }

  /** Reads a PEM private key file. */
  static fromFile(path: string, setting = 'ACKD_AUDIT_KEY'): LocalKeySigner {
    return new LocalKeySigner(readPrivateKeyFile(path, setting), setting);
  }

  /** The key at `path`, created (mode 0600) on first use. */
  static fileCreatingOnce(path: string, setting = 'ACKD_AUDIT_KEY'): LocalKeySigner {
    createKeyFileOnce(path);
    return LocalKeySigner.fromFile(path, setting);
  }

  publicKeyPem(): Promise<string> {
    return Promise.resolve(this.publicPem);
  }

  sign(payload: Uint8Array): Promise<Uint8Array> {
    return Promise.resolve(sign('sha256', payload, { key: this.key, dsaEncoding: 'der' }));
  }
}

/** A PEM private key file, read and parsed; errors name `setting` and the file. */
export function readPrivateKeyFile(path: string, setting: string): KeyObject {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (e) {
    throw new AckdError('ERR_CONFIG', `${setting}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  try {
    return createPrivateKey(pem);
  } catch {
    throw new AckdError('ERR_CONFIG', `${setting}: ${path} is not a PEM private key`);
  }
}

/** Creates an EC P-256 private key file (PKCS#8 PEM, mode 0600) at `path` unless one exists. */
export function createKeyFileOnce(path: string): void {
  createSecretFileOnce(path, () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
}

/** Creates an owner-only (0600) file at `path` holding `make()` unless one exists (another process that made it first wins). */
export function createSecretFileOnce(path: string, make: () => string): void {
  if (existsSync(path)) return;
  mkdirSync(dirname(path), { recursive: true });
  try {
    writeFileSync(path, make(), { mode: 0o600, flag: 'wx' });
  } catch (e) {
    // Another process created it first: use that one.
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  chmodSync(path, 0o600);
}
