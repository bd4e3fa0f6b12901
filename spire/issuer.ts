/**
 * Picks and starts ackd's SVID issuer for the local runner: a real spire-server when one is cached
 * or can be built, else the in-process CA, announced loudly.
 */
import { join } from 'node:path';
import { LocalCaMinter } from '../lambdas/adapters/local-ca/index.ts';
import { parseTrustDomain } from '../lambdas/core/ids.ts';
import type { Clock, SvidMinter } from '../lambdas/core/ports.ts';
import { SpireClient } from './bridge/client.ts';
import { SpireSvidMinter } from './bridge/minter.ts';
import { cachedSpireServer, ensureSpireServer, goAvailable } from './build.ts';
import { startSpireServer, type SpireServerHandle } from './server.ts';

export interface StartIssuerOptions {
  readonly trustDomain: string;
  /** State directory (e.g. `.ackd`): SPIRE data goes to `<stateDir>/spire`, the local CA to `<stateDir>/local-ca`. */
  readonly stateDir: string;
  /** 'auto' (default): SPIRE if possible, else the local CA. 'spire': SPIRE or fail. 'local-ca': never SPIRE. */
  readonly issuer?: 'auto' | 'spire' | 'local-ca';
  readonly log?: (line: string) => void;
  /** Clock of the local CA (SPIRE uses the wall clock). */
  readonly clock?: Clock;
}

export interface IssuerHandle {
  readonly kind: 'spire' | 'local-ca';
  readonly minter: SvidMinter;
  /** The current trust bundle (PEM CA certificates). */
  trustBundlePem(): Promise<string>;
  /** The SPIRE server, when kind is 'spire'. */
  readonly spire?: SpireServerHandle;
  stop(): Promise<void>;
}

export async function startIssuer(opts: StartIssuerOptions): Promise<IssuerHandle> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const trustDomain = parseTrustDomain(opts.trustDomain);
  const mode = opts.issuer ?? 'auto';

  if (mode !== 'local-ca') {
    let binary = await cachedSpireServer();
    let why = '';
    if (!binary) {
      if (await goAvailable()) {
        try {
          binary = await ensureSpireServer({ log: (l) => log(`[spire-build] ${l}`) });
        } catch (e) {
          why = `building spire-server failed: ${(e as Error).message.split('\n')[0]}`;
        }
      } else {
        why = 'no Go toolchain on PATH, so spire-server cannot be built';
      }
    }
    if (binary) {
      const spire = await startSpireServer({ binary, dataDir: join(opts.stateDir, 'spire'), trustDomain });
      const client = new SpireClient({ socketPath: spire.socketPath });
      const minter = new SpireSvidMinter(client);
      log(`SVID issuer: spire-server (${binary}), admin socket ${spire.socketPath}`);
      return {
        kind: 'spire',
        minter,
        spire,
        trustBundlePem: () => minter.trustBundlePem(),
        stop: async () => {
          client.close();
          await spire.stop();
        },
      };
    }
    if (mode === 'spire') throw new Error(`SPIRE issuer requested but unavailable: ${why}`);
    const bar = '!'.repeat(78);
    log(bar);
    log(`!! WARNING: ${why}.`);
    log('!! SVIDs will be minted by ackd\'s IN-PROCESS FALLBACK CA, not by SPIRE.');
    log('!! Install Go 1.25+ and gcc, then run `npm run spire:build` to use a real SPIRE server.');
    log(bar);
  }
  const minter = await LocalCaMinter.create({ trustDomain, dir: join(opts.stateDir, 'local-ca'), ...(opts.clock ? { clock: opts.clock } : {}) });
  if (mode === 'local-ca') log('SVID issuer: in-process CA (ACKD_ISSUER=local-ca)');
  return { kind: 'local-ca', minter, trustBundlePem: () => minter.trustBundlePem(), stop: async () => {} };
}
