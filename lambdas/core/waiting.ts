import type { AgentId, RequestId } from './ids.ts';
import { statusAt } from './lifecycle.ts';
import type { Clock, Logger, RequestStore } from './ports.ts';
import type { AuthorizationRecord } from './request.ts';

/** Why a wait ended. `changed`: the request is no longer pending (or was decided in this process); look again. */
export type WaitEnd = 'changed' | 'deadline' | 'aborted';

export interface WaitingOptions {
  /** How often the waited-on requests are read (ms). Default 500. */
  readonly tickMs?: number;
  /** Ids per read; DynamoDB's BatchGetItem takes at most 100 keys. Default 100. */
  readonly batchSize?: number;
}

interface Waiter {
  readonly agentId: AgentId;
  readonly requestId: RequestId;
  readonly finish: (why: WaitEnd) => void;
}

/**
 * The long-polls of one process, served by one shared poller.
 *
 * A check_authorization with wait_seconds registers a waiter (`wait`). While any waiter is
 * registered, the poller reads every request waited on every `tickMs`, in batches of `batchSize`
 * ids (one BatchGetItem per 100 waiting requests on DynamoDB, however many callers wait on each),
 * and ends the waits of requests that are no longer pending. `wake` ends the waits on a request
 * at once: the service calls it when it changes a request in this process, so an approval made
 * here reaches its poller without waiting for the next read. A wait also ends at its deadline,
 * and at once when its signal aborts (the caller went away): it is removed then and never read
 * again. With no waiter the poller stops; the next `wait` starts it again.
 *
 * The poller only says that it is worth looking again; the caller's own check produces the
 * answer (and mints the SVID on approval), with every rule of a check.
 */
export class Waiting {
  private readonly tickMs: number;
  private readonly batchSize: number;
  private readonly waiters = new Map<RequestId, Set<Waiter>>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private reading = false;

  constructor(
    private readonly deps: { store: Pick<RequestStore, 'getMany'>; clock: Clock; logger: Logger },
    opts: WaitingOptions = {},
  ) {
    this.tickMs = Math.max(1, opts.tickMs ?? 500);
    this.batchSize = Math.min(100, Math.max(1, opts.batchSize ?? 100));
  }

  /**
   * Waits until the request is no longer pending (or `wake` is called for it), until
   * `deadlineMs` (epoch ms, real time), or until `signal` aborts, whichever comes first.
   */
  wait(agentId: AgentId, requestId: RequestId, deadlineMs: number, signal?: AbortSignal): Promise<WaitEnd> {
    if (signal?.aborted) return Promise.resolve('aborted');
    const remaining = deadlineMs - Date.now();
    if (remaining <= 0) return Promise.resolve('deadline');
    return new Promise<WaitEnd>((resolve) => {
      const onAbort = (): void => finish('aborted');
      const deadline = setTimeout(() => finish('deadline'), remaining);
      deadline.unref?.();
      const waiter: Waiter = { agentId, requestId, finish: (why) => finish(why) };
      let done = false;
      const finish = (why: WaitEnd): void => {
        if (done) return;
        done = true;
        clearTimeout(deadline);
        signal?.removeEventListener('abort', onAbort);
        this.remove(waiter);
        resolve(why);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      let set = this.waiters.get(requestId);
      if (!set) {
        set = new Set();
        this.waiters.set(requestId, set);
      }
      set.add(waiter);
      this.schedule();
    });
  }

  /** Ends every wait on `requestId` now (it changed in this process). */
  wake(requestId: RequestId): void {
    this.end(requestId, 'changed');
  }

  /** Ends every wait (as `aborted`) and stops the poller: at shutdown. */
  stop(): void {
    for (const id of [...this.waiters.keys()]) this.end(id, 'aborted');
    this.unschedule();
  }

  /** Requests waited on now. */
  get waitingRequests(): number {
    return this.waiters.size;
  }

  /** Waits open now. */
  get waits(): number {
    let n = 0;
    for (const set of this.waiters.values()) n += set.size;
    return n;
  }

  private end(requestId: RequestId, why: WaitEnd): void {
    const set = this.waiters.get(requestId);
    if (!set) return;
    for (const w of [...set]) w.finish(why);
  }

  private remove(w: Waiter): void {
    const set = this.waiters.get(w.requestId);
    if (!set) return;
    set.delete(w);
    if (set.size === 0) this.waiters.delete(w.requestId);
    if (this.waiters.size === 0) this.unschedule();
  }

  private schedule(): void {
    if (this.timer !== undefined || this.reading || this.waiters.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tick();
    }, this.tickMs);
    // Waits are held open by their callers (an HTTP request in flight), never by this timer.
    this.timer.unref?.();
  }

  private unschedule(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** One read of every request waited on; ends the waits of those no longer pending. */
  private async tick(): Promise<void> {
    this.reading = true;
    try {
      const ids = [...this.waiters.keys()];
      const batches: RequestId[][] = [];
      for (let i = 0; i < ids.length; i += this.batchSize) batches.push(ids.slice(i, i + this.batchSize));
      await Promise.all(
        batches.map(async (batch) => {
          let found: Map<RequestId, AuthorizationRecord>;
          try {
            found = await this.deps.store.getMany(batch);
          } catch (e) {
            // The waits go on; the next tick reads again (and each ends at its deadline anyway).
            this.deps.logger.warn('long-poll read failed; reading again at the next tick', { requests: batch.length, error: e instanceof Error ? e.message : String(e) });
            return;
          }
          const now = this.deps.clock.now();
          for (const id of batch) {
            const r = found.get(id);
            // Gone (retention) or no longer pending: the caller's check says what it is now.
            if (!r || statusAt(r, now).status !== 'pending') this.end(id, 'changed');
          }
        }),
      );
    } finally {
      this.reading = false;
      this.schedule();
    }
  }
}
