import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Config } from '../../config.ts';
import type { CheckpointSigner } from '../../core/audit/signing.ts';
import { AckdError } from '../../core/errors.ts';
import type { DecisionSigner } from '../../core/evidence.ts';
import type { ReceiptSigner } from '../../core/receipt.ts';
import { KmsSigner } from './kms.ts';
import { LocalKeySigner } from './local.ts';
import { KmsReceiptSigner, LocalReceiptSigner } from './receipt.ts';

/**
 * The decision and receipt keys of a configuration (lambdas/config.ts), as adapters. A key that
 * is not configured is an adapter that refuses every use with ERR_SIGNER_UNAVAILABLE naming the
 * setting: deciding or minting without it fails closed, and a process that never signs (the
 * sweeper, the export) does not need it.
 */

function unavailable(setting: string, what: string): AckdError {
  return new AckdError('ERR_SIGNER_UNAVAILABLE', `${setting} is not set: this process cannot ${what}`);
}

/** Signs decisions with ACKD_DECISION_KEY (KMS: the SHA-256 is sent, MessageType DIGEST, as a statement may exceed 4096 bytes). */
export function decisionSignerFrom(config: Pick<Config, 'decisionKey' | 'region'>): DecisionSigner {
  const k = config.decisionKey;
  if (!k) return { publicKeyPem: () => Promise.reject(unavailable('ACKD_DECISION_KEY', 'sign decisions')), sign: () => Promise.reject(unavailable('ACKD_DECISION_KEY', 'sign decisions')) };
  if (k.startsWith('kms:')) return KmsSigner.forKey(k.slice(4), config.region, { setting: 'ACKD_DECISION_KEY', messageType: 'DIGEST' });
  return LocalKeySigner.fromFile(k, 'ACKD_DECISION_KEY');
}

/**
 * The PEM public key decisions verify with: ACKD_DECISION_PUBLIC_KEY (kms:<id>, a PEM file, or the
 * PEM itself), else the public half of ACKD_DECISION_KEY. Read once (a KMS failure is retried).
 */
export function decisionPublicKeyFrom(config: Pick<Config, 'decisionKey' | 'decisionPublicKey' | 'region'>): () => Promise<string> {
  const k = config.decisionPublicKey;
  if (k === undefined) {
    if (!config.decisionKey) return () => Promise.reject(unavailable('ACKD_DECISION_PUBLIC_KEY (or ACKD_DECISION_KEY)', 'verify decisions, so it mints no SVID'));
    const signer: CheckpointSigner = decisionSignerFrom(config);
    return () => signer.publicKeyPem();
  }
  if (k.startsWith('kms:')) {
    const kms = KmsSigner.forKey(k.slice(4), config.region, { setting: 'ACKD_DECISION_PUBLIC_KEY' });
    return () => kms.publicKeyPem();
  }
  const pem = publicPem(k.startsWith('-----BEGIN') ? k : readPem(k));
  return () => Promise.resolve(pem);
}

function readPem(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new AckdError('ERR_CONFIG', `ACKD_DECISION_PUBLIC_KEY: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}

function publicPem(pem: string): string {
  try {
    return createPublicKey(pem).export({ type: 'spki', format: 'pem' }).toString();
  } catch {
    throw new AckdError('ERR_CONFIG', 'ACKD_DECISION_PUBLIC_KEY: not a PEM key');
  }
}

/** Signs receipts with ACKD_RECEIPT_KEY. */
export function receiptSignerFrom(config: Pick<Config, 'receiptKey' | 'region'>): ReceiptSigner {
  const k = config.receiptKey;
  if (!k) return { publicJwk: () => Promise.reject(unavailable('ACKD_RECEIPT_KEY', 'sign receipts, so it mints no SVID')), sign: () => Promise.reject(unavailable('ACKD_RECEIPT_KEY', 'sign receipts')) };
  if (k.startsWith('kms:')) return KmsReceiptSigner.forKey(k.slice(4), config.region);
  return LocalReceiptSigner.fromFile(k);
}
