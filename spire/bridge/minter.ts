import { X509Certificate } from 'node:crypto';
import { AckdError, isAckdError } from '../../lambdas/core/errors.ts';
import { svidIdFromSerial, type SpiffeId } from '../../lambdas/core/ids.ts';
import { systemClock, type Clock, type MintedSvid, type MintPreparation, type SvidMinter } from '../../lambdas/core/ports.ts';
import type { MintedX509, SpireBundle } from './client.ts';
import { createKeyAndCsr, derChainToPem, type KeyAndCsr } from './csr.ts';
import { issuerError } from './errors.ts';

/** The part of SpireClient the minter needs: a local client, or a sidecar forwarding to one. */
export interface X509SvidSigner {
  mintX509Svid(csrDer: Uint8Array, ttlSeconds: number): Promise<MintedX509>;
  getBundle(): Promise<SpireBundle>;
}

/**
 * Slack between "now" here and "now" at SPIRE (which sets notAfter = its now + ttl): the TTL asked
 * for is one second short, so the SVID never outlives the approved lifetime.
 */
const SKEW_MS = 1000;

/** Mints per SVID: the first, and one shorter one when SPIRE's notAfter overshot the approval. */
const MAX_MINT_ATTEMPTS = 2;

/** SvidMinter backed by a SPIRE server: key + CSR here, signature by SPIRE's CA. */
export class SpireSvidMinter implements SvidMinter {
  readonly kind = 'spire' as const;
  private readonly clock: Clock;

  constructor(
    private readonly signer: X509SvidSigner,
    opts: { clock?: Clock } = {},
  ) {
    this.clock = opts.clock ?? systemClock;
  }

  /** The key pair and CSR for `spiffeId`, started now (node:crypto makes the key off the main thread). */
  prepare(spiffeId: SpiffeId): MintPreparation {
    return new KeyAndCsrAhead(spiffeId.toString(), createKeyAndCsr(spiffeId));
  }

  async mint(spiffeId: SpiffeId, notAfter: Date, prepared?: MintPreparation): Promise<MintedSvid> {
    remainingTtlSeconds(notAfter, this.clock.now()); // nothing left to sign for: refuse before making a key
    const ahead = prepared instanceof KeyAndCsrAhead && prepared.spiffeId === spiffeId.toString() ? prepared.take() : undefined;
    const { csrDer, privateKeyPem, publicKeySpki } = await (ahead ?? createKeyAndCsr(spiffeId));
    // The TTL is counted from when the CSR is ready, not from when the mint began (the key may
    // take a while on a busy machine). SPIRE counts it from its own now, so a slow hop or a clock
    // ahead of ours can still push notAfter past the approval: then ask once more, shorter by the
    // overshoot; the over-long certificate is dropped (its key never leaves this process).
    let ttl = remainingTtlSeconds(notAfter, this.clock.now());
    for (let attempt = 1; ; attempt++) {
      const leaf = await this.signCsr(spiffeId, csrDer, ttl, publicKeySpki);
      const overshootMs = Date.parse(leaf.cert.validTo) - notAfter.getTime();
      if (overshootMs <= 0) {
        return {
          certChainPem: derChainToPem(leaf.chain),
          privateKeyPem,
          svidId: svidIdFromSerial(leaf.cert.serialNumber),
          expiresAt: new Date(leaf.cert.validTo),
        };
      }
      const shorter = ttl - Math.ceil(overshootMs / 1000) - 1;
      if (attempt >= MAX_MINT_ATTEMPTS || shorter < 1) {
        throw issuerError('ERR_ISSUER_REFUSED', `SPIRE signed an SVID ending ${leaf.cert.validTo}, ${overshootMs} ms after the approved end ${notAfter.toISOString()} (asked for ${ttl} s; is SPIRE's clock ahead?)`);
      }
      ttl = shorter;
    }
  }

  /** One MintX509SVID for the CSR; the leaf must name `spiffeId` and certify the CSR's key. */
  private async signCsr(spiffeId: SpiffeId, csrDer: Uint8Array, ttl: number, publicKeySpki: Uint8Array): Promise<{ cert: X509Certificate; chain: Uint8Array[] }> {
    let minted: MintedX509;
    try {
      minted = await this.signer.mintX509Svid(csrDer, ttl);
    } catch (e) {
      // We built the CSR; if SPIRE calls it invalid, SPIRE refused (e.g. another trust domain).
      // The caller gets the fixed message; SPIRE's words stay in the cause (logged).
      if (isAckdError(e, 'ERR_INVALID_INPUT')) throw issuerError('ERR_ISSUER_REFUSED', e.cause instanceof Error ? e.cause.message : e.message, { cause: e });
      throw e;
    }
    const leaf = new X509Certificate(Buffer.from(minted.certChain[0]!));
    const uris = (leaf.subjectAltName ?? '').split(', ').filter((n) => n.startsWith('URI:'));
    if (uris.length !== 1 || uris[0] !== `URI:${spiffeId.toString()}`) {
      throw issuerError('ERR_ISSUER_REFUSED', `SPIRE returned an SVID for a different SPIFFE ID: asked for ${spiffeId.toString()}, got ${uris.join(', ') || 'no URI SAN'}`);
    }
    const spki = leaf.publicKey.export({ type: 'spki', format: 'der' });
    if (!spki.equals(Buffer.from(publicKeySpki))) throw issuerError('ERR_ISSUER_REFUSED', 'SPIRE returned an SVID for a different key');
    return { cert: leaf, chain: minted.certChain };
  }

  async trustBundlePem(): Promise<string> {
    const b = await this.signer.getBundle();
    return derChainToPem(b.x509Authorities);
  }

  /** SPIRE's bundle with its sequence number and refresh hint (for the SPIFFE bundle endpoint). */
  bundle(): Promise<SpireBundle> {
    return this.signer.getBundle();
  }
}

/**
 * A key pair and CSR made ahead of a mint, for one mint only (every SVID has its own key); a
 * failure is kept for `mint` to throw (never an unhandled rejection).
 */
class KeyAndCsrAhead implements MintPreparation {
  private keyAndCsr: Promise<KeyAndCsr> | undefined;

  constructor(
    readonly spiffeId: string,
    keyAndCsr: Promise<KeyAndCsr>,
  ) {
    keyAndCsr.catch(() => undefined);
    this.keyAndCsr = keyAndCsr;
  }

  /** The key and CSR, the first time; undefined after. */
  take(): Promise<KeyAndCsr> | undefined {
    const k = this.keyAndCsr;
    this.keyAndCsr = undefined;
    return k;
  }
}

/**
 * Whole seconds SPIRE may sign for so that the SVID ends no later than `notAfter`. Refuses with
 * ERR_EXPIRED when less than a second would remain.
 */
export function remainingTtlSeconds(notAfter: Date, now: Date): number {
  const ttl = Math.floor((notAfter.getTime() - now.getTime() - SKEW_MS) / 1000);
  if (!(ttl >= 1)) throw new AckdError('ERR_EXPIRED', 'the SVID lifetime approved for this request has run out');
  return ttl;
}
