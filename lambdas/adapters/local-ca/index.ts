import { webcrypto } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import 'reflect-metadata'; // @peculiar/x509's CommonJS build needs the Reflect polyfill under Node
import * as x509 from '@peculiar/x509';
import { AckdError } from '../../core/errors.ts';
import { svidIdFromSerial, type SpiffeId, type TrustDomain } from '../../core/ids.ts';
import { systemClock, type Clock, type MintedSvid, type SvidMinter } from '../../core/ports.ts';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const EC_KEY: EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const EC_SIGN: EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
/** Like SPIRE: notBefore is backdated a little so small clock skew does not reject a fresh SVID. */
const NOT_BEFORE_CUSHION_MS = 10_000;
const CA_LIFETIME_MS = 365 * 86_400_000;
/** A persisted CA closer than this to its end is replaced. */
const CA_RENEW_BEFORE_MS = 2 * 86_400_000;

export interface LocalCaOptions {
  readonly trustDomain: TrustDomain;
  /** Where the CA key and certificate are kept so a restart keeps the trust bundle. In memory when absent. */
  readonly dir?: string;
  readonly clock?: Clock;
}

interface CaMaterial {
  readonly cert: x509.X509Certificate;
  readonly privateKey: CryptoKey;
}

/**
 * An in-process CA that mints X.509-SVIDs. The fallback issuer where no SPIRE server can be had
 * (and the issuer of unit tests). Leaves follow the SPIFFE X509-SVID rules: exactly one URI SAN,
 * basicConstraints CA=false (critical), keyUsage digitalSignature (critical), extKeyUsage
 * serverAuth+clientAuth, a random positive serial.
 */
export class LocalCaMinter implements SvidMinter {
  readonly kind = 'local-ca' as const;

  private constructor(
    private readonly trustDomain: TrustDomain,
    private readonly ca: CaMaterial,
    private readonly clock: Clock,
  ) {}

  static async create(opts: LocalCaOptions): Promise<LocalCaMinter> {
    const clock = opts.clock ?? systemClock;
    const ca = opts.dir === undefined ? await newCa(opts.trustDomain, clock.now()) : await loadOrCreateCa(opts.dir, opts.trustDomain, clock.now());
    return new LocalCaMinter(opts.trustDomain, ca, clock);
  }

  async mint(spiffeId: SpiffeId, notAfter: Date): Promise<MintedSvid> {
    if (spiffeId.trustDomain !== this.trustDomain) {
      throw new AckdError('ERR_ISSUER_REFUSED', `the issuer serves trust domain ${this.trustDomain}, not ${spiffeId.trustDomain}`);
    }
    const now = this.clock.now();
    // X.509 times have whole seconds: round down so the SVID never outlives what was approved.
    const end = new Date(Math.floor(notAfter.getTime() / 1000) * 1000);
    if (end.getTime() <= now.getTime()) throw new AckdError('ERR_EXPIRED', 'the SVID lifetime approved for this request has run out');
    const caEnd = this.ca.cert.notAfter.getTime();
    if (end.getTime() > caEnd) throw new AckdError('ERR_ISSUER_REFUSED', 'the requested SVID would outlive the CA certificate');

    const keys = (await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as CryptoKeyPair;
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerialHex(),
      subject: 'O=ackd',
      issuer: this.ca.cert.subject,
      notBefore: new Date(Math.max(now.getTime() - NOT_BEFORE_CUSHION_MS, this.ca.cert.notBefore.getTime())),
      notAfter: end,
      publicKey: keys.publicKey,
      signingKey: this.ca.privateKey,
      signingAlgorithm: EC_SIGN,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId.toString() }], false),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(this.ca.cert),
      ],
    });
    return {
      certChainPem: leaf.toString('pem') + '\n',
      privateKeyPem: await pkcs8Pem(keys.privateKey),
      svidId: svidIdFromSerial(leaf.serialNumber),
      expiresAt: leaf.notAfter,
    };
  }

  async trustBundlePem(): Promise<string> {
    return this.ca.cert.toString('pem') + '\n';
  }
}

/** 16 random bytes, first bit clear (positive) and first byte non-zero (no DER padding byte). */
export function randomSerialHex(): string {
  const b = webcrypto.getRandomValues(new Uint8Array(16));
  b[0] = (b[0]! & 0x7f) | 0x01;
  return Buffer.from(b).toString('hex');
}

export async function pkcs8Pem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode([{ type: 'PRIVATE KEY', rawData: der }]) + '\n';
}

async function newCa(trustDomain: TrustDomain, now: Date): Promise<CaMaterial> {
  const keys = (await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as CryptoKeyPair;
  const name = `O=ackd, CN=ackd local CA for ${trustDomain}`;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialHex(),
    name,
    notBefore: new Date(now.getTime() - NOT_BEFORE_CUSHION_MS),
    notAfter: new Date(now.getTime() + CA_LIFETIME_MS),
    keys,
    signingAlgorithm: EC_SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${trustDomain}` }], false),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, privateKey: keys.privateKey };
}

async function loadOrCreateCa(dir: string, trustDomain: TrustDomain, now: Date): Promise<CaMaterial> {
  const certPath = join(dir, 'ca.cert.pem');
  const keyPath = join(dir, 'ca.key.pem');
  let certPem: string | undefined;
  let keyPem: string | undefined;
  try {
    [certPem, keyPem] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new AckdError('ERR_CONFIG', `cannot read the local CA in ${dir}`, { cause: e });
  }
  if (certPem !== undefined && keyPem !== undefined) {
    const cert = new x509.X509Certificate(certPem);
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
    const sameDomain = san?.names.items.some((n) => n.type === 'url' && n.value === `spiffe://${trustDomain}`) ?? false;
    if (sameDomain && cert.notAfter.getTime() - now.getTime() > CA_RENEW_BEFORE_MS) {
      const privateKey = await webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(keyPem), EC_KEY, false, ['sign']);
      return { cert, privateKey };
    }
  }
  const ca = await newCa(trustDomain, now);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Key first, then the certificate, each written atomically: a crash never leaves a cert without its key.
  await writeAtomic(keyPath, await pkcs8Pem(ca.privateKey), 0o600);
  await writeAtomic(certPath, ca.cert.toString('pem') + '\n', 0o644);
  return ca;
}

async function writeAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data, { mode });
  await rename(tmp, path);
}
