import type { Clock } from '../../lambdas/core/ports.ts';

/**
 * The wall clock plus an offset the benchmark moves forward by whole windows. The approver mail
 * limit counts consent mails per window (mailsPerApprover, at most 1000, per mailWindowMinutes):
 * the benchmark makes thousands of requests, and a request over that limit takes another path
 * (queued for a digest, no mail, no mail event). Skipping to the next window every few hundred
 * requests keeps every measured request on the path of a request whose mail goes out, whatever
 * ackd's speed.
 */
export class WindowSkippingClock implements Clock {
  private offsetMs = 0;
  private sinceSkip = 0;

  constructor(
    private readonly windowMs: number,
    private readonly requestsPerWindow: number,
  ) {}

  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }

  /** Counts one request that may send mail; moves to the next window when this one is nearly used up. */
  countRequest(): void {
    if (++this.sinceSkip >= this.requestsPerWindow) this.skipWindow();
  }

  skipWindow(): void {
    this.offsetMs += this.windowMs;
    this.sinceSkip = 0;
  }

  get skippedMs(): number {
    return this.offsetMs;
  }
}
