import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type sesModule from 'aws-ses-v2-local';

// aws-ses-v2-local is CommonJS with `exports.default`; require it so every loader (node, tsx, vitest) agrees.
const startSesServer = (createRequire(import.meta.url)('aws-ses-v2-local') as { default: typeof sesModule.default }).default;

export interface LocalSes {
  /** Base URL; also the local inbox web page. */
  readonly url: string;
  /** Endpoint for the SESv2 client (same as url). */
  readonly endpoint: string;
  stop(): Promise<void>;
}

/**
 * Starts aws-ses-v2-local on 127.0.0.1 (port 0 = ephemeral). It captures mail in memory:
 * `GET /store` lists it, `POST /clear-store` resets, `/` is the inbox page.
 * Note: its store is per process, so two instances in one process share their mail.
 */
export async function startLocalSes(opts: { port?: number } = {}): Promise<LocalSes> {
  const server: Server = await startSesServer({ host: '127.0.0.1', port: opts.port ?? 0 });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    endpoint: url,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections?.();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
