import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { GetPublicKeyCommand, SignCommand } from '@aws-sdk/client-kms';
import { base64url, calculateJwkThumbprint, exportJWK, SignJWT } from 'jose';
import { derToJose } from 'ecdsa-sig-formatter';
import { AckdError } from '../../core/errors.ts';
import { receiptHeader, RECEIPT_ALG, type ReceiptClaims, type ReceiptJwk, type ReceiptSigner } from '../../core/receipt.ts';
import { lazyKmsClient, type KmsSend } from './kms.ts';
import { createKeyFileOnce, readPrivateKeyFile } from './local.ts';

const SETTING = 'ACKD_RECEIPT_KEY';

/** The published JWK of an EC P-256 public key: {kty, crv, x, y} with its RFC 7638 thumbprint as kid. */
export async function receiptJwkOf(publicKey: KeyObject, setting = SETTING): Promise<ReceiptJwk> {
  if (publicKey.asymmetricKeyType !== 'ec' || publicKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new AckdError('ERR_CONFIG', `${setting}: the receipt key must be EC P-256 (ES256)`);
  }
  const { kty, crv, x, y } = await exportJWK(publicKey);
  if (kty !== 'EC' || crv !== 'P-256' || !x || !y) throw new AckdError('ERR_CONFIG', `${setting}: the receipt key must be EC P-256 (ES256)`);
  const kid = await calculateJwkThumbprint({ kty, crv, x, y }, 'sha256');
  return { kty: 'EC', crv: 'P-256', x, y, kid, alg: RECEIPT_ALG, use: 'sig' };
}

/** Signs receipts with an EC P-256 private key held in this process (local mode and tests), by jose. */
export class LocalReceiptSigner implements ReceiptSigner {
  private readonly jwk: Promise<ReceiptJwk>;

  constructor(private readonly key: KeyObject) {
    if (key.type !== 'private') throw new AckdError('ERR_CONFIG', `${SETTING}: the receipt key must be an EC P-256 private key`);
    this.jwk = receiptJwkOf(createPublicKey(key));
    this.jwk.catch(() => undefined); // (reported by publicJwk and sign)
  }

  static fromFile(path: string): LocalReceiptSigner {
    return new LocalReceiptSigner(readPrivateKeyFile(path, SETTING));
  }

  /** The key at `path`, created (mode 0600) on first use. */
  static fileCreatingOnce(path: string): LocalReceiptSigner {
    createKeyFileOnce(path);
    return LocalReceiptSigner.fromFile(path);
  }

  publicJwk(): Promise<ReceiptJwk> {
    return this.jwk;
  }

  async sign(claims: ReceiptClaims): Promise<string> {
    const { kid } = await this.jwk;
    return new SignJWT({ ...claims }).setProtectedHeader(receiptHeader(kid)).sign(this.key);
  }
}

/**
 * Signs receipts with an AWS KMS key (ECC_NIST_P256, SIGN_VERIFY). KMS signs the SHA-256 of the
 * JWS signing input (MessageType DIGEST: a receipt may be longer than KMS's 4096-byte RAW limit)
 * and returns DER ECDSA; JWS wants the fixed-size r‖s form (RFC 7518 §3.4), converted by
 * ecdsa-sig-formatter. jose cannot sign with a key it does not hold, so the compact form is
 * assembled here: BASE64URL(header) "." BASE64URL(claims) "." BASE64URL(r‖s).
 */
export class KmsReceiptSigner implements ReceiptSigner {
  private jwk: Promise<ReceiptJwk> | undefined;

  constructor(
    private readonly client: KmsSend,
    private readonly keyId: string,
    /** DIGEST (default; what the key policy allows); RAW only where an emulator lacks DIGEST (moto signs every message as RAW). */
    private readonly messageType: 'RAW' | 'DIGEST' = 'DIGEST',
  ) {}

  static forKey(keyId: string, region: string): KmsReceiptSigner {
    return new KmsReceiptSigner(lazyKmsClient(region), keyId);
  }

  publicJwk(): Promise<ReceiptJwk> {
    this.jwk ??= this.client.send(new GetPublicKeyCommand({ KeyId: this.keyId })).then(
      (out) => {
        if (out.KeySpec !== 'ECC_NIST_P256' || out.KeyUsage !== 'SIGN_VERIFY' || !out.PublicKey) {
          throw new AckdError('ERR_CONFIG', `${SETTING}: KMS key ${this.keyId} must be ECC_NIST_P256 with usage SIGN_VERIFY (it is ${out.KeySpec ?? 'unknown'}, ${out.KeyUsage ?? 'unknown'})`);
        }
        return receiptJwkOf(createPublicKey({ key: Buffer.from(out.PublicKey), format: 'der', type: 'spki' }));
      },
      (e: unknown) => {
        this.jwk = undefined;
        throw new AckdError('ERR_SIGNER_UNAVAILABLE', `KMS: cannot read the public key of ${this.keyId}`, { cause: e });
      },
    );
    return this.jwk;
  }

  async sign(claims: ReceiptClaims): Promise<string> {
    const { kid } = await this.publicJwk();
    const encode = (v: unknown) => base64url.encode(JSON.stringify(v));
    const input = `${encode(receiptHeader(kid))}.${encode(claims)}`;
    let der: Uint8Array;
    try {
      const bytes = new TextEncoder().encode(input);
      const message = this.messageType === 'DIGEST' ? createHash('sha256').update(bytes).digest() : bytes;
      const out = await this.client.send(new SignCommand({ KeyId: this.keyId, Message: message, MessageType: this.messageType, SigningAlgorithm: 'ECDSA_SHA_256' }));
      if (!out.Signature) throw new Error('KMS returned no signature');
      der = out.Signature;
    } catch (e) {
      throw new AckdError('ERR_SIGNER_UNAVAILABLE', `KMS: cannot sign with ${this.keyId}`, { cause: e });
    }
    return `${input}.${derToJose(Buffer.from(der), RECEIPT_ALG)}`;
  }
}
