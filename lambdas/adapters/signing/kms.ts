import { GetPublicKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { createPublicKey } from 'node:crypto';
import { AckdError } from '../../core/errors.ts';
import type { CheckpointSigner } from '../../core/audit/signing.ts';

/**
 * Signs checkpoints with an AWS KMS asymmetric key (key spec ECC_NIST_P256, usage SIGN_VERIFY).
 * The private key never leaves KMS; KMS returns DER ECDSA signatures, the same form the
 * verifier reads.
 */
export class KmsSigner implements CheckpointSigner {
  private publicPem: Promise<string> | undefined;

  constructor(
    private readonly client: KMSClient,
    private readonly keyId: string,
  ) {}

  static forKey(keyId: string, region: string): KmsSigner {
    return new KmsSigner(new KMSClient({ region }), keyId);
  }

  publicKeyPem(): Promise<string> {
    this.publicPem ??= this.client.send(new GetPublicKeyCommand({ KeyId: this.keyId })).then(
      (out) => {
        if (out.KeySpec !== 'ECC_NIST_P256' || out.KeyUsage !== 'SIGN_VERIFY' || !out.PublicKey) {
          throw new AckdError('ERR_CONFIG', `ACKD_AUDIT_KEY: KMS key ${this.keyId} must be ECC_NIST_P256 with usage SIGN_VERIFY (it is ${out.KeySpec ?? 'unknown'}, ${out.KeyUsage ?? 'unknown'})`);
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
      const out = await this.client.send(new SignCommand({ KeyId: this.keyId, Message: payload, MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_256' }));
      if (!out.Signature) throw new Error('KMS returned no signature');
      return out.Signature;
    } catch (e) {
      throw new AckdError('ERR_SIGNER_UNAVAILABLE', `KMS: cannot sign with ${this.keyId}`, { cause: e });
    }
  }
}
