/**
 * The floor of SVID pickup: what any SPIRE-backed issuer must do at the least, written without
 * ackd's code: an EC P-256 key pair (WebCrypto), a PKCS#10 CSR with the SPIFFE ID as its one URI
 * SAN (@peculiar/x509), and one bare MintX509SVID call over spire-server's Unix admin socket
 * (@grpc/grpc-js with the repo's .proto files).
 */
import { webcrypto } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const PROTO_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'spire', 'proto');

type MintCall = (req: { csr: Buffer; ttl: number }, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: { svid?: { cert_chain: Buffer[] } }) => void) => void;

export class BareSpireMinter {
  private readonly client: grpc.Client;

  constructor(socketPath: string) {
    const def = protoLoader.loadSync('spire/api/server/svid/v1/svid.proto', { includeDirs: [PROTO_DIR], keepCase: true, longs: Number, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { spire: { api: { server: { svid: { v1: { SVID: grpc.ServiceClientConstructor } } } } } };
    this.client = new pkg.spire.api.server.svid.v1.SVID(`unix:${socketPath}`, grpc.credentials.createInsecure());
  }

  /** Key pair + CSR + MintX509SVID; the DER chain SPIRE returned. */
  async mint(spiffeId: string, ttlSeconds: number): Promise<Buffer[]> {
    const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }])],
    });
    const mintX509Svid = (this.client as unknown as { MintX509SVID: MintCall }).MintX509SVID.bind(this.client);
    const res = await new Promise<{ svid?: { cert_chain: Buffer[] } } | undefined>((resolve, reject) =>
      mintX509Svid({ csr: Buffer.from(csr.rawData), ttl: ttlSeconds }, { deadline: Date.now() + 10_000 }, (err, r) => (err ? reject(err) : resolve(r))),
    );
    const chain = res?.svid?.cert_chain ?? [];
    if (chain.length === 0) throw new Error('MintX509SVID returned no certificate');
    return chain;
  }

  close(): void {
    this.client.close();
  }
}
