/**
 * A protected resource: an HTTPS server that acts only for a client presenting a valid, unrevoked
 * ackd X.509-SVID over mutual TLS, approved for what the resource demands. Every refusal is JSON
 * with a reason code from ackd/verify:
 *
 *   401 ERR_SVID_NO_CERTIFICATE                    no client certificate
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
import { SvidVerifyError, verifyAckdSvid, type AckdVerifyResult } from '../../lambdas/verify/index.ts';

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

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chain = peerChain(req.socket as TLSSocket);
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
      });
    } catch (e) {
      if (e instanceof SvidVerifyError) {
        const status = e.code === 'ERR_SVID_NO_CERTIFICATE' ? 401 : e.code === 'ERR_SVID_STATUS_UNAVAILABLE' ? 503 : 403;
        return send(res, status, { error: { code: e.code, message: e.message } });
      }
      return send(res, 500, { error: { code: 'ERR_INTERNAL', message: 'internal error' } });
    }
    const { svid, status } = result;
    send(res, 200, {
      ok: true,
      message: `authorized: agent ${svid.agent_id} may ${status?.action ?? '(action unchecked)'}`,
      spiffe_id: svid.spiffe_id,
      agent_id: svid.agent_id,
      request_id: svid.request_id,
      svid_id: svid.svid_id,
      action: status?.action,
      permissions: status?.permissions,
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
