/**
 * gRPC client for the two SPIRE Server API calls ackd needs, over the server's Unix admin socket:
 * SVID/MintX509SVID and Bundle/GetBundle. Every call has a deadline; gRPC failures become AckdErrors.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { AckdError } from '../../lambdas/core/errors.ts';
import { issuerError } from './errors.ts';

const PROTO_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'proto');

let loaded: grpc.GrpcObject | undefined;
function protos(): grpc.GrpcObject {
  if (!loaded) {
    const def = protoLoader.loadSync(['spire/api/server/svid/v1/svid.proto', 'spire/api/server/bundle/v1/bundle.proto'], {
      includeDirs: [PROTO_DIR],
      keepCase: true,
      longs: Number,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    loaded = grpc.loadPackageDefinition(def);
  }
  return loaded;
}

function service(path: string): grpc.ServiceClientConstructor {
  let o: unknown = protos();
  for (const p of path.split('.')) o = (o as Record<string, unknown>)[p];
  return o as grpc.ServiceClientConstructor;
}

export interface MintedX509 {
  /** DER certificates, leaf first. */
  readonly certChain: Uint8Array[];
  readonly spiffeId: string;
  readonly expiresAt: Date;
}

export interface SpireBundle {
  readonly trustDomain: string;
  /** DER CA certificates. */
  readonly x509Authorities: Uint8Array[];
  readonly refreshHintSeconds: number;
  readonly sequenceNumber: number;
}

export interface SpireClientOptions {
  /** Path of spire-server's admin socket (`socket_path`). */
  readonly socketPath: string;
  /** Deadline of each call (default 5 s). */
  readonly timeoutMs?: number;
}

interface RawX509Svid {
  cert_chain: Buffer[];
  id: { trust_domain: string; path: string } | null;
  expires_at: number;
}
interface RawBundle {
  trust_domain: string;
  x509_authorities: { asn1: Buffer; tainted: boolean }[];
  refresh_hint: number;
  sequence_number: number;
}
type Unary<Req, Res> = (req: Req, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => void;

export class SpireClient {
  private readonly svid: grpc.Client;
  private readonly bundle: grpc.Client;
  private readonly timeoutMs: number;

  constructor(opts: SpireClientOptions) {
    this.timeoutMs = opts.timeoutMs ?? 5000;
    const target = `unix:${opts.socketPath}`;
    // Reconnect quickly after SPIRE comes back, instead of grpc's default backoff of up to 2 minutes.
    const channelOptions: grpc.ChannelOptions = {
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 2000,
    };
    const creds = grpc.credentials.createInsecure(); // a local Unix socket: the filesystem guards it
    const Svid = service('spire.api.server.svid.v1.SVID');
    const Bundle = service('spire.api.server.bundle.v1.Bundle');
    this.svid = new Svid(target, creds, channelOptions);
    this.bundle = new Bundle(target, creds, channelOptions);
  }

  /** Mints an X509-SVID for the CSR's SPIFFE ID with a lifetime of `ttlSeconds` (> 0). */
  async mintX509Svid(csrDer: Uint8Array, ttlSeconds: number): Promise<MintedX509> {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > 2_147_483_647) {
      throw new AckdError('ERR_INVALID_INPUT', 'ttl: must be a positive whole number of seconds', { field: 'ttl' });
    }
    if (csrDer.length === 0) throw new AckdError('ERR_INVALID_INPUT', 'csr: must not be empty', { field: 'csr' });
    const res = await this.call<{ svid: RawX509Svid | null }>(this.svid, 'MintX509SVID', { csr: Buffer.from(csrDer), ttl: ttlSeconds });
    const s = res.svid;
    if (!s || s.cert_chain.length === 0 || !s.id) throw issuerError('ERR_ISSUER_UNAVAILABLE', 'SPIRE MintX509SVID returned no X509-SVID');
    return {
      certChain: s.cert_chain.map((b) => new Uint8Array(b)),
      spiffeId: `spiffe://${s.id.trust_domain}${s.id.path}`,
      expiresAt: new Date(s.expires_at * 1000),
    };
  }

  /** The server's trust domain bundle. */
  async getBundle(): Promise<SpireBundle> {
    const b = await this.call<RawBundle>(this.bundle, 'GetBundle', {});
    return {
      trustDomain: b.trust_domain,
      x509Authorities: b.x509_authorities.map((a) => new Uint8Array(a.asn1)),
      refreshHintSeconds: b.refresh_hint,
      sequenceNumber: b.sequence_number,
    };
  }

  close(): void {
    this.svid.close();
    this.bundle.close();
  }

  private call<Res>(client: grpc.Client, method: string, req: unknown): Promise<Res> {
    const fn = (client as unknown as Record<string, Unary<unknown, Res>>)[method]!.bind(client);
    return new Promise((resolve, reject) => {
      // waitForReady: while the channel is reconnecting (SPIRE just restarted), wait for it up to the
      // deadline instead of failing at once; SPIRE still down at the deadline fails closed as before.
      try {
        fn(req, new grpc.Metadata({ waitForReady: true }), { deadline: Date.now() + this.timeoutMs }, (err, res) => {
          if (err) reject(fromGrpc(err, method));
          else resolve(res as Res);
        });
      } catch (e) {
        // e.g. a closed client: still a domain error whose message names nothing internal
        reject(issuerError('ERR_ISSUER_UNAVAILABLE', `SPIRE ${method}: ${e instanceof Error ? e.message : String(e)}`, { cause: e }));
      }
    });
  }
}

/**
 * gRPC status → domain error. The caller sees only the fixed message of the code (spire/bridge/errors.ts);
 * the gRPC status and SPIRE's details (which can name the admin socket, e.g. `remote_addr=…/api.sock`)
 * go into the cause, for the logs.
 */
export function fromGrpc(err: grpc.ServiceError, method: string): AckdError {
  const detail = `SPIRE ${method}: ${grpc.status[err.code] ?? err.code}: ${err.details || err.message}`;
  switch (err.code) {
    case grpc.status.INVALID_ARGUMENT:
    case grpc.status.OUT_OF_RANGE:
      return issuerError('ERR_INVALID_INPUT', detail, { field: 'csr', cause: err });
    case grpc.status.PERMISSION_DENIED:
    case grpc.status.UNAUTHENTICATED:
    case grpc.status.FAILED_PRECONDITION:
    case grpc.status.NOT_FOUND:
    case grpc.status.ALREADY_EXISTS:
    case grpc.status.UNIMPLEMENTED:
      return issuerError('ERR_ISSUER_REFUSED', detail, { cause: err });
    default:
      // UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNKNOWN, DATA_LOSS:
      // the issuer could not do it now; a later check may retry.
      return issuerError('ERR_ISSUER_UNAVAILABLE', detail, { cause: err });
  }
}
