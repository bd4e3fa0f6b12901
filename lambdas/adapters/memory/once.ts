import type { Clock } from '../../core/ports.ts';
import type { OnceStore } from '../../core/aws-broker.ts';

/** Single-use keys in one process's memory (unit tests; a process without a table). */
export class MemoryOnceStore implements OnceStore {
  private readonly keys = new Map<string, number>();

  constructor(private readonly clock: Clock) {}

  claim(key: string, expiresAt: Date): Promise<boolean> {
    const now = this.clock.now().getTime();
    for (const [k, until] of this.keys) if (until <= now) this.keys.delete(k);
    if (this.keys.has(key)) return Promise.resolve(false);
    this.keys.set(key, expiresAt.getTime());
    return Promise.resolve(true);
  }
}
