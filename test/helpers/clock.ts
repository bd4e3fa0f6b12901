import type { Clock } from '../../lambdas/core/ports.ts';

/** A clock tests move by hand: expiry is tested by advancing it, never by sleeping. */
export class ManualClock implements Clock {
  private t: number;
  constructor(start: Date | string = '2026-11-21T12:00:00.000Z') {
    this.t = new Date(start).getTime();
  }
  now(): Date {
    return new Date(this.t);
  }
  advance(ms: number): void {
    this.t += ms;
  }
  advanceMinutes(min: number): void {
    this.advance(min * 60_000);
  }
}
