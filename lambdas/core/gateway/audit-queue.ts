/**
 * Calls recorded in ackd OFF the agent's critical path: allowed and refused calls, denied and
 * expired outcomes. Queued in memory, sent with `record_tool_calls` in batches (every ~200 ms or
 * at 50 calls), retried with backoff while ackd is unreachable, flushed on shutdown.
 *
 * Bounded: an allowed call reserves its place BEFORE it runs (`reserve`), so once `limit` calls
 * wait to be recorded, new allowed calls are refused. No unaudited calls beyond the bound.
 * The digests (payload, result) are computed when a batch is sent, not on the call's path.
 */
import { canonicalJson, sha256Hex } from '../jcs.ts';
import type { CallEvent, CallRecorder } from './ports.ts';

/** An event whose digests are computed when it is sent. */
export interface QueuedCall {
  readonly event: Omit<CallEvent, 'payload_sha256' | 'result_sha256'> & { readonly payload_sha256?: string; readonly result_sha256?: string };
  /** Hashed into payload_sha256 unless the event has one. */
  readonly payload?: unknown;
  /** Hashed into result_sha256 (the downstream CallToolResult). */
  readonly result?: unknown;
}

export interface AuditQueueOptions {
  readonly recorder: CallRecorder;
  readonly limit: number;
  readonly batch?: number;
  readonly intervalMs?: number;
  /** Tells the operator (stderr). */
  readonly warn: (line: string) => void;
  readonly setTimer?: (fn: () => void, ms: number) => { unref?: () => void };
  readonly clearTimer?: (t: unknown) => void;
}

export const digest = (v: unknown): string => sha256Hex(canonicalJson(v));

export class AuditQueue {
  private readonly items: QueuedCall[] = [];
  private reserved = 0;
  private timer: unknown;
  private flushing: Promise<void> | undefined;
  private failures = 0;
  private dropped = 0;
  private readonly batch: number;
  private readonly intervalMs: number;
  private readonly setTimer: NonNullable<AuditQueueOptions['setTimer']>;
  private readonly clearTimer: NonNullable<AuditQueueOptions['clearTimer']>;
  private closed = false;

  constructor(private readonly o: AuditQueueOptions) {
    this.batch = o.batch ?? 50;
    this.intervalMs = o.intervalMs ?? 200;
    this.setTimer = o.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = o.clearTimer ?? ((t) => clearTimeout(t as NodeJS.Timeout));
  }

  /** Calls waiting to be recorded (and places reserved for calls running now). */
  get waiting(): number {
    return this.items.length + this.reserved;
  }

  /** Holds a place for a call about to run; false when the queue is full (refuse the call). */
  reserve(): boolean {
    if (this.closed || this.waiting >= this.o.limit) return false;
    this.reserved++;
    return true;
  }

  /** Queues an event; `reserved` when its place was held with reserve(). Beyond the bound an unreserved event is dropped (and counted). */
  push(item: QueuedCall, reserved = false): void {
    if (reserved) this.reserved = Math.max(0, this.reserved - 1);
    else if (this.waiting >= this.o.limit) {
      this.dropped++;
      this.o.warn(`the audit queue is full (${this.o.limit} calls waiting for ackd): a ${item.event.outcome} event of ${item.event.server}__${item.event.tool} was not recorded (${this.dropped} so far)`);
      return;
    }
    this.items.push(item);
    this.schedule(this.items.length >= this.batch ? 0 : this.intervalMs);
  }

  /** Gives back a reserved place whose call did not run. */
  release(): void {
    this.reserved = Math.max(0, this.reserved - 1);
  }

  private schedule(ms: number): void {
    if (this.flushing || this.closed) return;
    if (this.timer !== undefined) {
      if (ms > 0) return;
      this.clearTimer(this.timer);
    }
    const t = this.setTimer(() => {
      this.timer = undefined;
      void this.flush();
    }, ms);
    t.unref?.();
    this.timer = t;
  }

  /** Sends what is queued, batch by batch; on a transport failure keeps it and retries later. */
  flush(): Promise<void> {
    if (!this.flushing) {
      this.flushing = this.drain().finally(() => {
        this.flushing = undefined;
        if (this.items.length > 0 && !this.closed) this.schedule(this.failures > 0 ? Math.min(30_000, this.intervalMs * 2 ** this.failures) : this.items.length >= this.batch ? 0 : this.intervalMs);
      });
    }
    return this.flushing;
  }

  private async drain(): Promise<void> {
    while (this.items.length > 0) {
      const chunk = this.items.slice(0, this.batch);
      const calls: CallEvent[] = chunk.map(({ event, payload, result }) => ({
        ...event,
        payload_sha256: event.payload_sha256 ?? digest(payload),
        ...(event.result_sha256 !== undefined ? { result_sha256: event.result_sha256 } : result !== undefined ? { result_sha256: digest(result) } : {}),
      }));
      let results;
      try {
        results = await this.o.recorder.record(calls);
      } catch (e) {
        this.failures++;
        if (this.failures === 1 || this.failures % 10 === 0) this.o.warn(`cannot record calls in ackd (${e instanceof Error ? e.message : String(e)}); ${this.items.length} call(s) waiting, retrying`);
        return;
      }
      if (this.failures > 0) this.o.warn(`ackd records calls again; ${this.items.length} call(s) were waiting`);
      this.failures = 0;
      this.items.splice(0, chunk.length);
      results.forEach((r, i) => {
        if (!r.ok) this.o.warn(`ackd refused to record a ${calls[i]!.outcome} event of ${calls[i]!.server}__${calls[i]!.tool}: ${r.code}: ${r.message}`);
      });
    }
  }

  /** Stops the timer and sends everything still queued (tries until `deadlineMs` passes). */
  async close(deadlineMs = 5000): Promise<void> {
    const until = Date.now() + deadlineMs;
    if (this.timer !== undefined) this.clearTimer(this.timer);
    this.timer = undefined;
    while (this.items.length > 0 && Date.now() < until) {
      await this.flush();
      if (this.items.length > 0) await new Promise((r) => setTimeout(r, Math.min(500, Math.max(0, until - Date.now()))));
    }
    this.closed = true;
    if (this.items.length > 0) this.o.warn(`shutting down with ${this.items.length} call(s) not recorded in ackd (ackd unreachable)`);
  }
}
