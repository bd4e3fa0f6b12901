import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { CHECKPOINT_ALG, checkpointPayload, type Checkpoint } from './event.ts';


/** Signs audit checkpoints. Implementations: a local PEM key, AWS KMS. */
export interface CheckpointSigner {
  /** PEM SubjectPublicKeyInfo of the signing key: what an auditor verifies checkpoints with. */
  publicKeyPem(): Promise<string>;
  /** DER ECDSA P-256 / SHA-256 signature over `payload`. */
  sign(payload: Uint8Array): Promise<Uint8Array>;
}

/** The key id of a public key: lowercase hex SHA-256 of its DER SubjectPublicKeyInfo. */
export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
}

/** Parses a PEM public key for checkpoint verification; refuses anything but an EC P-256 key. */
export function checkpointPublicKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (e) {
    throw new Error(`not a PEM public key (${e instanceof Error ? e.message : String(e)})`, { cause: e });
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error(`checkpoint keys are EC P-256; this key is ${key.asymmetricKeyType ?? 'unknown'}${key.asymmetricKeyDetails?.namedCurve ? ` ${key.asymmetricKeyDetails.namedCurve}` : ''}`);
  }
  return key;
}

/** Signs the tree head `head` (a v2 checkpoint) at `now`. */
export async function signCheckpoint(signer: CheckpointSigner, head: { seq: number; hash: string; root: string; logged_at: string }, now: Date): Promise<Checkpoint> {
  const key = checkpointPublicKey(await signer.publicKeyPem());
  const unsigned: Omit<Checkpoint, 'signature'> = { v: 2, seq: head.seq, hash: head.hash, root: head.root, logged_at: head.logged_at, signed_at: now.toISOString(), key_id: keyIdOf(key), alg: CHECKPOINT_ALG };
  const signature = Buffer.from(await signer.sign(checkpointPayload(unsigned))).toString('base64');
  return { ...unsigned, signature };
}

/** Why a checkpoint's signature does not hold, or null when it does. */
export function checkpointSignatureProblem(c: Checkpoint, key: KeyObject, keyId = keyIdOf(key)): string | null {
  if (c.alg !== CHECKPOINT_ALG) return `uses algorithm ${String(c.alg)}, expected ${CHECKPOINT_ALG}`;
  if (c.key_id !== keyId) return `was signed by key ${c.key_id.slice(0, 16)}…, not by the given public key (${keyId.slice(0, 16)}…)`;
  const { signature, ...unsigned } = c;
  const ok = verify('sha256', checkpointPayload(unsigned), { key, dsaEncoding: 'der' }, Buffer.from(signature, 'base64'));
  return ok ? null : 'has a signature that does not verify (forged or altered)';
}
