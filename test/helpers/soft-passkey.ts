import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isoCBOR } from '@simplewebauthn/server/helpers';
import type { PasskeyAssertion } from '../../lambdas/core/evidence.ts';
import type { StoredPasskey } from '../../lambdas/core/passkeys.ts';

/**
 * A software passkey for tests of the server side (unit and integration): an ES256 key made at
 * test time, its COSE public key encoded with the library's CBOR encoder, and assertions signed
 * the way an authenticator signs them (authenticatorData ‖ SHA-256(clientDataJSON)). The browser
 * path is tested with Chromium's virtual authenticator instead (test/e2e/passkeys.e2e.test.ts).
 */
export class SoftPasskey {
  readonly credentialId = randomBytes(16).toString('base64url');
  private readonly privateKey: KeyObject;
  readonly publicKeyCose: string;
  private counter = 0;

  constructor(
    readonly rpId: string,
    readonly origin: string,
  ) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.privateKey = privateKey;
    const jwk = publicKey.export({ format: 'jwk' });
    const cose = new Map<number, number | Uint8Array>([
      [1, 2], // kty: EC2
      [3, -7], // alg: ES256
      [-1, 1], // crv: P-256
      [-2, new Uint8Array(Buffer.from(jwk.x!, 'base64url'))],
      [-3, new Uint8Array(Buffer.from(jwk.y!, 'base64url'))],
    ]);
    this.publicKeyCose = Buffer.from(isoCBOR.encode(cose)).toString('base64url');
  }

  /** A registration response (attestation "none") over `challenge` (base64url), as @simplewebauthn/browser returns it. */
  register(challenge: string, opts: { origin?: string } = {}): Record<string, unknown> {
    const rpIdHash = createHash('sha256').update(this.rpId).digest();
    const id = Buffer.from(this.credentialId, 'base64url');
    const idLen = Buffer.alloc(2);
    idLen.writeUInt16BE(id.length);
    const authData = Buffer.concat([rpIdHash, Buffer.from([0x45]), Buffer.alloc(4), Buffer.alloc(16), idLen, id, Buffer.from(this.publicKeyCose, 'base64url')]);
    const attestationObject = isoCBOR.encode(new Map<string, string | Map<string, string> | Uint8Array>([['fmt', 'none'], ['attStmt', new Map<string, string>()], ['authData', new Uint8Array(authData)]]));
    const clientData = Buffer.from(JSON.stringify({ type: 'webauthn.create', challenge, origin: opts.origin ?? this.origin, crossOrigin: false }));
    return {
      id: this.credentialId,
      rawId: this.credentialId,
      type: 'public-key',
      clientExtensionResults: {},
      response: { clientDataJSON: clientData.toString('base64url'), attestationObject: Buffer.from(attestationObject).toString('base64url'), transports: ['internal'] },
    };
  }

  /** As registered for `approver`. */
  stored(approver: string, createdAt = new Date().toISOString()): StoredPasskey {
    return { credential_id: this.credentialId, approver, public_key: this.publicKeyCose, counter: 0, transports: ['internal'], created_at: createdAt, label: 'soft' };
  }

  /** An assertion over `challenge` (base64url) with `nonce`; `uv: false` leaves the user-verified flag off; `origin` overrides the page's origin. */
  assert(challenge: string, nonce: string, opts: { uv?: boolean; origin?: string; rpId?: string } = {}): PasskeyAssertion {
    this.counter++;
    const rpIdHash = createHash('sha256').update(opts.rpId ?? this.rpId).digest();
    const flags = 0x01 | (opts.uv === false ? 0 : 0x04); // UP, UV
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(this.counter);
    const authData = Buffer.concat([rpIdHash, Buffer.from([flags]), counter]);
    const clientData = Buffer.from(JSON.stringify({ type: 'webauthn.get', challenge, origin: opts.origin ?? this.origin, crossOrigin: false }));
    const signature = sign('sha256', Buffer.concat([authData, createHash('sha256').update(clientData).digest()]), this.privateKey);
    return {
      credential_id: this.credentialId,
      authenticator_data: authData.toString('base64url'),
      client_data_json: clientData.toString('base64url'),
      signature: signature.toString('base64url'),
      user_handle: null,
      nonce,
    };
  }
}
