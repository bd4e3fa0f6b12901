import { generateRegistrationOptions, verifyAuthenticationResponse, verifyRegistrationResponse, type RegistrationResponseJSON } from '@simplewebauthn/server';
import { AckdError } from '../../core/errors.ts';
import type { PasskeyAssertion } from '../../core/evidence.ts';
import type { PasskeyVerifier, StoredPasskey, VerifiedCredential } from '../../core/passkeys.ts';

/**
 * The PasskeyVerifier over @simplewebauthn/server: user verification required, the consent UI's
 * origin and its hostname as RP ID. WebAuthn refuses an IP address as RP ID, so the consent UI
 * must be served under a host name (locally `http://localhost:<port>`, a secure context).
 */
export class SimpleWebAuthnVerifier implements PasskeyVerifier {
  readonly rpId: string;
  readonly origin: string;

  constructor(consentUrl: string, private readonly rpName = 'ackd') {
    const u = new URL(consentUrl);
    this.origin = u.origin;
    this.rpId = u.hostname;
  }

  async registrationOptions(input: { challenge: string; userId: string; userName: string; exclude: readonly StoredPasskey[]; timeoutMs: number }): Promise<Record<string, unknown>> {
    const options = await generateRegistrationOptions({
      rpName: this.rpName,
      rpID: this.rpId,
      userName: input.userName,
      userID: new Uint8Array(Buffer.from(input.userId, 'utf8')),
      // Bytes, so the options' challenge is the nonce itself (a string would be taken as UTF-8 text).
      challenge: new Uint8Array(Buffer.from(input.challenge, 'base64url')),
      timeout: input.timeoutMs,
      attestationType: 'none',
      excludeCredentials: input.exclude.map((p) => ({ id: p.credential_id, transports: [...p.transports] })),
      authenticatorSelection: { residentKey: 'preferred', userVerification: 'required' },
    });
    return options as unknown as Record<string, unknown>;
  }

  async verifyRegistration(response: unknown, expectedChallenge: string): Promise<VerifiedCredential> {
    let out: Awaited<ReturnType<typeof verifyRegistrationResponse>>;
    try {
      out = await verifyRegistrationResponse({
        response: response as RegistrationResponseJSON,
        expectedChallenge,
        expectedOrigin: this.origin,
        expectedRPID: this.rpId,
        requireUserVerification: true,
      });
    } catch (e) {
      throw new AckdError('ERR_PASSKEY_INVALID', `the passkey registration does not verify: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    if (!out.verified) throw new AckdError('ERR_PASSKEY_INVALID', 'the passkey registration does not verify');
    const c = out.registrationInfo.credential;
    return { credential_id: c.id, public_key: Buffer.from(c.publicKey).toString('base64url'), counter: c.counter, transports: [...(c.transports ?? [])] };
  }

  async verifyAssertion(a: PasskeyAssertion, expectedChallenge: string, credential: Pick<StoredPasskey, 'credential_id' | 'public_key' | 'counter' | 'transports'>, what = 'this decision'): Promise<{ counter: number }> {
    const invalid = (why: string) => new AckdError('ERR_PASSKEY_INVALID', `the passkey assertion does not verify for ${what}: ${why}`);
    if (a.credential_id !== credential.credential_id) throw invalid('it was made by another passkey than the one it is checked against');
    let out: Awaited<ReturnType<typeof verifyAuthenticationResponse>>;
    try {
      out = await verifyAuthenticationResponse({
        response: {
          id: a.credential_id,
          rawId: a.credential_id,
          type: 'public-key',
          clientExtensionResults: {},
          response: { authenticatorData: a.authenticator_data, clientDataJSON: a.client_data_json, signature: a.signature, ...(a.user_handle ? { userHandle: a.user_handle } : {}) },
        },
        expectedChallenge,
        expectedOrigin: this.origin,
        expectedRPID: this.rpId,
        credential: { id: credential.credential_id, publicKey: new Uint8Array(Buffer.from(credential.public_key, 'base64url')), counter: credential.counter, transports: [...credential.transports] },
        requireUserVerification: true,
      });
    } catch (e) {
      const m = e instanceof Error ? e.message : String(e);
      if (m.startsWith('Unexpected authentication response challenge')) throw invalid(`its challenge is not the one of ${what} (another nonce, request, verdict, payload or view)`);
      throw invalid(m);
    }
    if (!out.verified) throw invalid('its signature does not verify with the registered public key');
    return { counter: out.authenticationInfo.newCounter };
  }
}
