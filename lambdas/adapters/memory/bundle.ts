import type { BundleStore, KnownBundle } from '../../core/ports.ts';

/** The last known trust bundle in one process's memory. */
export class MemoryBundleStore implements BundleStore {
  private last: KnownBundle | undefined;

  lastKnown(): Promise<KnownBundle | undefined> {
    return Promise.resolve(this.last);
  }

  remember(b: KnownBundle): Promise<void> {
    this.last = b;
    return Promise.resolve();
  }
}
