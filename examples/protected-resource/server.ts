/**
 * A protected resource: an HTTPS server that acts only for a client presenting a valid, unrevoked
 * ackd X.509-SVID over mutual TLS, approved for what the resource demands — and, for an operation
 * with parameters, only with exactly the parameters a human approved.
 *
 * An operation's parameters are the JSON body of the call (POST/PUT/PATCH). ackd's receipt of the
 * approval comes in the `Ackd-Receipt` header. When a body is sent (or `requireReceipt` is set) the
 * receipt is required: it must verify against ackd's receipt keys, be for the very SVID presented,
 * and its payload_sha256 must be the SHA-256 of the body's RFC 8785 canonical JSON — one byte of
 * difference in a value and the operation is refused. Every refusal is JSON with a reason code from
 * ackd/verify:
 *
 *   401 ERR_SVID_NO_CERTIFICATE                    no client certificate
 *   401 ERR_RECEIPT_MISSING                        parameters sent without ackd's receipt
 *   403 ERR_PAYLOAD_MISMATCH                       the parameters are not the approved payload
 *   403 ERR_RECEIPT_INVALID / ERR_RECEIPT_EXPIRED  not ackd's receipt, altered, or expired
 *   403 ERR_RECEIPT_MISMATCH                       a receipt for another SVID
 *   400 ERR_INVALID_INPUT                          a body that is not JSON; 413 when over 64 KiB
 *   503 ERR_RECEIPT_KEYS_UNAVAILABLE               ackd's receipt keys could not be read (fail closed)
 *   403 ERR_SVID_UNTRUSTED / ERR_SVID_TRUST_DOMAIN  another CA, another trust domain
 *   403 ERR_SVID_EXPIRED / ERR_SVID_REVOKED / ERR_SVID_NOT_APPROVED
 *   403 ERR_SVID_WRONG_REQUEST                     an SVID for a different request than demanded
 *   403 ERR_SVID_PERMISSION_MISSING                not approved for a permission the resource needs
 *   503 ERR_SVID_STATUS_UNAVAILABLE                ackd could not be asked (fail closed)
 */
import { webcrypto } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket, DetailedPeerCertificate } from 'node:tls';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { SvidVerifyError, receiptKeysUrl, verifyAckdSvid, type AckdVerifyResult, type ReceiptKeys } from '../../lambdas/verify/index.ts';

/** The request header carrying ackd's receipt (compact JWS). */
export const RECEIPT_HEADER = 'ackd-receipt';
/** Largest operation body read (an ackd payload is at most 32 KiB as canonical JSON). */
const MAX_BODY = 64 * 1024;

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export interface ProtectedResourceOptions {
  /** The trust bundle PEM (or a function returning the current one, e.g. re-read on rotation). */
  readonly bundlePem: string | (() => Promise<string>);
  /** Default: the trust domain the bundle names. */
  readonly trustDomain?: string;
  /** ackd's base URL for the online status check (revocation, action, permissions). */
  readonly statusUrl: string;
  /** Permissions every caller's SVID must have been approved for. */
  readonly requiredPermissions?: readonly string[];
  /** ackd's receipt keys (a JWKS or its URL). Default: `<statusUrl origin>/.well-known/ackd-receipt-keys.json`. */
  readonly receiptKeys?: ReceiptKeys;
  /** Refuse every call without a receipt, not only those carrying parameters. Default false. */
  readonly requireReceipt?: boolean;
  /**
   * The request this call must be authorized by. Default: the `request_id` query parameter, when
   * present (a job runner would take it from its own job record).
   */
  readonly demandedRequestId?: (req: IncomingMessage) => string | undefined;
  /** Time for validity checks (default: now). */
  readonly now?: () => Date;
  readonly host?: string;
  /** 0 (default) = ephemeral. */
  readonly port?: number;
  /** The server's own TLS certificate; a self-signed one for 127.0.0.1/localhost is made if absent. */
  readonly serverTls?: { certPem: string; keyPem: string };
}

export interface ProtectedResource {
  readonly url: string;
  readonly port: number;
  /** The server certificate PEM, for clients to trust (curl --cacert). */
  readonly serverCertPem: string;
  stop(): Promise<void>;
}

export async function startProtectedResource(opts: ProtectedResourceOptions): Promise<ProtectedResource> {
  const tls = opts.serverTls ?? (await selfSignedServerCert());
  const demanded = opts.demandedRequestId ?? ((req) => new URL(req.url ?? '/', 'https://x').searchParams.get('request_id') ?? undefined);
  const server: Server = createServer(
    {
      cert: tls.certPem,
      key: tls.keyPem,
      // Ask for a client certificate but let the handshake finish without one, so the refusal can
      // carry a reason. TLS still proves the client holds the certificate's key.
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
    },
    (req, res) => void handle(req, res),
  );

  const receiptKeys = opts.receiptKeys ?? receiptKeysUrl(opts.statusUrl);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chain = peerChain(req.socket as TLSSocket);
    const body = await readBody(req);
    if (body === 'too large') return send(res, 413, { error: { code: 'ERR_INVALID_INPUT', message: `the operation's parameters are larger than ${MAX_BODY} bytes` } });
    let payload: unknown;
    if (body.length > 0) {
      try {
        payload = JSON.parse(body.toString('utf8')) as unknown;
      } catch {
        return send(res, 400, { error: { code: 'ERR_INVALID_INPUT', message: "the operation's parameters (the request body) must be JSON" } });
      }
    }
    const receiptHeader = req.headers[RECEIPT_HEADER];
    const receipt = Array.isArray(receiptHeader) ? receiptHeader.join(',') : receiptHeader;
    const withReceipt = payload !== undefined || receipt !== undefined || opts.requireReceipt === true;
    let result: AckdVerifyResult;
    try {
      if (chain.length === 0) throw new SvidVerifyError('ERR_SVID_NO_CERTIFICATE', 'present an ackd X.509-SVID as the TLS client certificate');
      const bundle = typeof opts.bundlePem === 'string' ? opts.bundlePem : await opts.bundlePem();
      const requestId = demanded(req);
      result = await verifyAckdSvid(chain, {
        bundle,
        ...(opts.trustDomain ? { trustDomain: opts.trustDomain } : {}),
        at: opts.now ? opts.now() : new Date(),
        statusUrl: opts.statusUrl,
        expect: {
          ...(requestId !== undefined ? { requestId } : {}),
          ...(opts.requiredPermissions ? { permissions: opts.requiredPermissions } : {}),
        },
        // SVID first, then the receipt bound to it, then the parameters against the approved payload
        ...(withReceipt ? { receipt: receipt ?? '', receiptKeys, ...(payload !== undefined ? { payload } : {}) } : {}),
      });
    } catch (e) {
      if (e instanceof SvidVerifyError) {
        const status = e.code === 'ERR_SVID_NO_CERTIFICATE' || e.code === 'ERR_RECEIPT_MISSING' ? 401 : e.code === 'ERR_SVID_STATUS_UNAVAILABLE' || e.code === 'ERR_RECEIPT_KEYS_UNAVAILABLE' ? 503 : 403;
        return send(res, status, { error: { code: e.code, message: e.message } });
      }
      return send(res, 500, { error: { code: 'ERR_INTERNAL', message: 'internal error' } });
    }
    const { svid, status, receipt: approved } = result;
    send(res, 200, {
      ok: true,
      message: `authorized: agent ${svid.agent_id} may ${status?.action ?? '(action unchecked)'}`,
      spiffe_id: svid.spiffe_id,
      agent_id: svid.agent_id,
      request_id: svid.request_id,
      svid_id: svid.svid_id,
      action: status?.action,
      permissions: status?.permissions,
      // what the receipt bound: who approved, and the payload the parameters were checked against
      ...(approved ? { approver: approved.approver, decided_at: approved.decided_at, payload_sha256: approved.payload_sha256, payload_checked: payload !== undefined } : {}),
    });
  }

  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
  return {
    url: `https://${opts.host ?? '127.0.0.1'}:${port}`,
    port,
    serverCertPem: tls.certPem,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The request body, at most MAX_BODY bytes. */
async function readBody(req: IncomingMessage): Promise<Buffer | 'too large'> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size <= MAX_BODY) chunks.push(c as Buffer); // beyond it, read on (so the refusal can be sent) but keep nothing
  }
  return size > MAX_BODY ? 'too large' : Buffer.concat(chunks);
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body) + '\n');
}

/** The client's certificates as sent in the handshake, leaf first (DER). */
export function peerChain(socket: TLSSocket): Uint8Array[] {
  const first = socket.getPeerCertificate(true) as DetailedPeerCertificate | Record<string, never>;
  if (!first || !('raw' in first) || !first.raw) return [];
  const out: Uint8Array[] = [];
  const seen = new Set<string>();
  let c: DetailedPeerCertificate | undefined = first as DetailedPeerCertificate;
  while (c && c.raw && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    out.push(new Uint8Array(c.raw));
    c = c.issuerCertificate;
  }
  return out;
}

/** A throwaway self-signed ECDSA certificate for 127.0.0.1 and localhost. */
export async function selfSignedServerCert(): Promise<{ certPem: string; keyPem: string }> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=ackd protected resource example',
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 30 * 86_400_000),
    keys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'ip', value: '127.0.0.1' },
        { type: 'dns', value: 'localhost' },
      ]),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { certPem: cert.toString('pem') + '\n', keyPem: x509.PemConverter.encode([{ type: 'PRIVATE KEY', rawData: pkcs8 }]) + '\n' };
}
