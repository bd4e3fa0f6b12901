import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { AckdError } from '../../core/errors.ts';
import type { CheckpointSigner } from '../../core/audit/signing.ts';

/** Signs checkpoints with an EC P-256 private key held in this process (local mode and tests). */
export class LocalKeySigner implements CheckpointSigner {
  private readonly publicPem: string;

  constructor(private readonly key: KeyObject) {
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      throw new AckdError('ERR_CONFIG', 'ACKD_AUDIT_KEY: the checkpoint key must be an EC P-256 private key');
    }
    this.publicPem = createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();
  }

  static generate(): LocalKeySigner {
    return new LocalKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
  }

  /** Reads a PEM private key file. */
  static fromFile(path: string): LocalKeySigner {
    let pem: string;
    try {
      pem = readFileSync(path, 'utf8');
    } catch (e) {
      throw new AckdError('ERR_CONFIG', `ACKD_AUDIT_KEY: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
    try {
      return new LocalKeySigner(createPrivateKey(pem));
    } catch (e) {
      if (e instanceof AckdError) throw e;
      throw new AckdError('ERR_CONFIG', `ACKD_AUDIT_KEY: ${path} is not a PEM private key`);
    }
  }

  /** The key at `path`, created (mode 0600) on first use. */
  static fileCreatingOnce(path: string): LocalKeySigner {
    if (!existsSync(path)) {
      mkdirSync(dirname(path), { recursive: true });
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      writeFileSync(path, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
      chmodSync(path, 0o600);
    }
    return LocalKeySigner.fromFile(path);
  }

  publicKeyPem(): Promise<string> {
    return Promise.resolve(this.publicPem);
  }

  sign(payload: Uint8Array): Promise<Uint8Array> {
    return Promise.resolve(sign('sha256', payload, { key: this.key, dsaEncoding: 'der' }));
  }
}
