/**
 * Picks and starts ackd's SVID issuer for the local runner: a real spire-server when one is cached
 * or can be built, else the in-process CA, announced loudly.
 */
import { join } from 'node:path';
import { LocalCaMinter } from '../lambdas/adapters/local-ca/index.ts';
import { parseTrustDomain } from '../lambdas/core/ids.ts';
import type { Clock, SvidMinter } from '../lambdas/core/ports.ts';
import type { IssuerHealth } from '../lambdas/issuer.ts';
import { SpireClient } from './bridge/client.ts';
import { describeError } from './bridge/errors.ts';
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
  /** spire-server supervision (restart backoff); default: on, 0.5 s doubling to 30 s. */
  readonly supervise?: { initialBackoffMs?: number; maxBackoffMs?: number; resetAfterMs?: number };
  /** How often a running SPIRE is probed (one GetBundle) for `health()` (default 10 s; 0: never). */
  readonly probeIntervalMs?: number;
}

export interface IssuerHandle {
  readonly kind: 'spire' | 'local-ca';
  readonly minter: SvidMinter;
  /** The current trust bundle (PEM CA certificates). */
  trustBundlePem(): Promise<string>;
  /** The SPIRE server, when kind is 'spire'. */
  readonly spire?: SpireServerHandle;
  /** The issuer's state for /healthz: the supervisor's view plus the last readiness probe. Cheap. */
  health(): IssuerHealth;
  /** Called after SPIRE came back from an unexpected exit (e.g. to rewrite the trust bundle file). */
  onRestarted(listener: () => void): void;
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
      const listeners: (() => void)[] = [];
      let probeFailed = false;
      const spire = await startSpireServer({
        binary,
        dataDir: join(opts.stateDir, 'spire'),
        trustDomain,
        supervise: {
          ...opts.supervise,
          log,
          onRestarted: () => {
            probeFailed = false;
            for (const l of listeners) l();
          },
        },
      });
      const c = new SpireClient({ socketPath: spire.socketPath });
      const minter = new SpireSvidMinter(c);
      log(`SVID issuer: spire-server (${binary}), admin socket ${spire.socketPath}`);

      // Readiness probe: the process may be running yet not answering (hung, overloaded). One
      // GetBundle every probeIntervalMs, never two at once; /healthz reads only the cached result.
      let probing = false;
      const probe = async () => {
        if (probing || spire.status().state !== 'ready') return;
        probing = true;
        try {
          await c.getBundle();
          if (probeFailed) log('spire-server answers again; SVID issuance resumed');
          probeFailed = false;
        } catch (e) {
          if (!probeFailed && spire.status().state === 'ready') log(`!! spire-server is running but does not answer: ${describeError(e)}`);
          probeFailed = spire.status().state === 'ready';
        } finally {
          probing = false;
        }
      };
      const probeMs = opts.probeIntervalMs ?? 10_000;
      const probeTimer = probeMs > 0 ? setInterval(() => void probe(), probeMs) : undefined;
      probeTimer?.unref();

      return {
        kind: 'spire',
        minter,
        spire,
        trustBundlePem: () => minter.trustBundlePem(),
        health: () => {
          const st = spire.status();
          const state = st.state === 'ready' && probeFailed ? 'unresponsive' : st.state;
          return {
            kind: 'spire',
            state,
            restarts: st.restarts,
            ...(st.lastExit === undefined ? {} : { last_exit: st.lastExit }),
            ...(st.nextAttemptAt === undefined ? {} : { next_attempt_at: st.nextAttemptAt }),
          };
        },
        onRestarted: (l) => void listeners.push(l),
        stop: async () => {
          if (probeTimer) clearInterval(probeTimer);
          // SPIRE first (no restart follows a stop), then the channel.
          await spire.stop();
          c.close();
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
  let stopped = false;
  return {
    kind: 'local-ca',
    minter,
    trustBundlePem: () => minter.trustBundlePem(),
    // In this process: it is up exactly as long as ackd is.
    health: () => ({ kind: 'local-ca', state: stopped ? 'stopped' : 'ready' }),
    onRestarted: () => undefined,
    stop: async () => {
      stopped = true;
    },
  };
}
