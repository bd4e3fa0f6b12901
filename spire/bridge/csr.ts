/**
 * Key pair + CSR for one SVID, kept apart from the SPIRE call so the two can run in different
 * places (e.g. a Lambda makes the key and CSR and a sidecar next to SPIRE forwards the CSR).
 */
import { webcrypto } from 'node:crypto';
import 'reflect-metadata'; // @peculiar/x509's CommonJS build needs the Reflect polyfill under Node
import * as x509 from '@peculiar/x509';
import type { SpiffeId } from '../../lambdas/core/ids.ts';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const EC_KEY: EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };

export interface KeyAndCsr {
  /** PKCS#10 DER with exactly one URI SAN: the SPIFFE ID. */
  readonly csrDer: Uint8Array;
  /** PEM PKCS#8. Lives only in memory and in the response that delivers the SVID. */
  readonly privateKeyPem: string;
  /** DER SubjectPublicKeyInfo, to check the minted leaf certifies this key. */
  readonly publicKeySpki: Uint8Array;
}

/** Generates an ECDSA P-256 key pair in memory and a CSR naming `spiffeId`. */
export async function createKeyAndCsr(spiffeId: SpiffeId | string): Promise<KeyAndCsr> {
  const keys = (await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'O=ackd',
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId.toString() }], false)],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  const spki = await webcrypto.subtle.exportKey('spki', keys.publicKey);
  return {
    csrDer: new Uint8Array(csr.rawData),
    privateKeyPem: x509.PemConverter.encode([{ type: 'PRIVATE KEY', rawData: pkcs8 }]) + '\n',
    publicKeySpki: new Uint8Array(spki),
  };
}

/** DER certificates → PEM, in order. */
export function derChainToPem(chain: readonly Uint8Array[]): string {
  return chain.map((der) => x509.PemConverter.encode([{ type: 'CERTIFICATE', rawData: Uint8Array.from(der).buffer }]) + '\n').join('');
}
