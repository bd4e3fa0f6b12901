import { GetPublicKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { createHash, createPublicKey } from 'node:crypto';
import { AckdError } from '../../core/errors.ts';
import type { CheckpointSigner } from '../../core/audit/signing.ts';

export interface KmsSignerOptions {
  /** The setting that names the key, for error messages (default ACKD_AUDIT_KEY). */
  readonly setting?: string;
  /**
   * `RAW` (default: KMS hashes the message; at most 4096 bytes) or `DIGEST` (the SHA-256 is
   * computed here and KMS signs it: for messages that may be longer, e.g. a decision over 32
   * permissions). The signature is the same ECDSA over SHA-256 of the message either way.
   */
  readonly messageType?: 'RAW' | 'DIGEST';
}

/** The part of the KMS client the signers use. */
export type KmsSend = Pick<KMSClient, 'send'>;

/**
 * A KMS client made on its first call: the functions that only may sign or read a public key
 * (the MCP function: receipts, the decision public key) build none at a cold start.
 */
export function lazyKmsClient(region: string): KmsSend {
  let client: KMSClient | undefined;
  return { send: ((command: Parameters<KMSClient['send']>[0], options?: Parameters<KMSClient['send']>[1]) => (client ??= new KMSClient({ region })).send(command, options)) as KMSClient['send'] };
}

/**
 * Signs with an AWS KMS asymmetric key (key spec ECC_NIST_P256, usage SIGN_VERIFY): audit
 * checkpoints, decisions. The private key never leaves KMS; KMS returns DER ECDSA signatures,
 * the same form the verifier reads.
 */
export class KmsSigner implements CheckpointSigner {
  private publicPem: Promise<string> | undefined;
  private readonly setting: string;
  private readonly messageType: 'RAW' | 'DIGEST';

  constructor(
    private readonly client: KmsSend,
    private readonly keyId: string,
    opts: KmsSignerOptions = {},
  ) {
    this.setting = opts.setting ?? 'ACKD_AUDIT_KEY';
    this.messageType = opts.messageType ?? 'RAW';
  }

  static forKey(keyId: string, region: string, opts: KmsSignerOptions = {}): KmsSigner {
    return new KmsSigner(lazyKmsClient(region), keyId, opts);
  }

  publicKeyPem(): Promise<string> {
    this.publicPem ??= this.client.send(new GetPublicKeyCommand({ KeyId: this.keyId })).then(
      (out) => {
        if (out.KeySpec !== 'ECC_NIST_P256' || out.KeyUsage !== 'SIGN_VERIFY' || !out.PublicKey) {
          throw new AckdError('ERR_CONFIG', `${this.setting}: KMS key ${this.keyId} must be ECC_NIST_P256 with usage SIGN_VERIFY (it is ${out.KeySpec ?? 'unknown'}, ${out.KeyUsage ?? 'unknown'})`);
        }
        return createPublicKey({ key: Buffer.from(out.PublicKey), format: 'der', type: 'spki' }).export({ type: 'spki', format: 'pem' }).toString();
      },
      (e: unknown) => {
        this.publicPem = undefined;
        throw new AckdError('ERR_SIGNER_UNAVAILABLE', `KMS: cannot read the public key of ${this.keyId}`, { cause: e });
      },
    );
    return this.publicPem;
  }

  async sign(payload: Uint8Array): Promise<Uint8Array> {
    try {
      const message = this.messageType === 'DIGEST' ? createHash('sha256').update(payload).digest() : payload;
      const out = await this.client.send(new SignCommand({ KeyId: this.keyId, Message: message, MessageType: this.messageType, SigningAlgorithm: 'ECDSA_SHA_256' }));
      if (!out.Signature) throw new Error('KMS returned no signature');
      return out.Signature;
    } catch (e) {
      throw new AckdError('ERR_SIGNER_UNAVAILABLE', `KMS: cannot sign with ${this.keyId}`, { cause: e });
    }
  }
}
