import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpireClient } from '../../spire/bridge/client.ts';
import { SpireSvidMinter } from '../../spire/bridge/minter.ts';
import { ensureSpireServer } from '../../spire/build.ts';
import { startSpireServer, type SpireServerHandle } from '../../spire/server.ts';
import type { LocalIssuer } from '../../lambdas/local/stack.ts';

/** A cold spire-server build takes minutes; tests FAIL (not skip) when it cannot be built. */
export const SPIRE_BUILD_TIMEOUT_MS = 30 * 60_000;

export interface TestSpire {
  readonly server: SpireServerHandle;
  readonly client: SpireClient;
  readonly minter: SpireSvidMinter;
  readonly dataDir: string;
  stop(): Promise<void>;
}

/** A real spire-server on a fresh data dir (short temp path: the admin socket lives in it). */
export async function startTestSpire(trustDomain = 'ackd.test'): Promise<TestSpire> {
  const binary = await ensureSpireServer();
  const dataDir = await mkdtemp(join(tmpdir(), 'ackd-spire-'));
  const server = await startSpireServer({ binary, dataDir, trustDomain, logLevel: 'WARN' });
  const client = new SpireClient({ socketPath: server.socketPath, timeoutMs: 3000 });
  const minter = new SpireSvidMinter(client);
  return {
    server,
    client,
    minter,
    dataDir,
    async stop() {
      client.close();
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The local stack's issuer option for a test SPIRE the test itself starts and stops. */
export function spireIssuer(spire: TestSpire): () => Promise<LocalIssuer> {
  return async () => ({ kind: 'spire', minter: spire.minter, stop: async () => {} });
}
