/**
 * Pending gated calls, by caller and the payload's SHA-256 (server, tool and arguments, canonical
 * JSON; the flow makes the key): a repeat of the same call by the same caller while its request is
 * pending reuses that request instead of asking again. An entry is dropped once the request resolves (approved and picked up, denied, expired)
 * or when its ttl has passed. Per process: a restarted gateway asks again.
 */
export interface PendingEntry {
  readonly request_id: string;
  readonly consent_url: string;
  /** When the request expires if nobody decides (epoch ms). */
  readonly expires_at: number;
}

export class PendingMemo {
  private readonly entries = new Map<string, Promise<PendingEntry>>();
  private readonly settled = new Map<string, PendingEntry>();

  constructor(private readonly now: () => number) {}

  /**
   * The pending request for this payload; if there is none, `create` makes one (concurrent identical
   * calls share one creation). `created` says whether this caller's `create` ran.
   */
  async getOrCreate(sha: string, create: () => Promise<PendingEntry>): Promise<{ entry: PendingEntry; created: boolean }> {
    const known = this.settled.get(sha);
    if (known && known.expires_at <= this.now()) this.drop(sha);
    const inFlight = this.entries.get(sha);
    if (inFlight) return { entry: await inFlight, created: false };
    const p = create().then(
      (entry) => {
        if (this.entries.get(sha) === p) this.settled.set(sha, entry);
        return entry;
      },
      (e: unknown) => {
        if (this.entries.get(sha) === p) this.entries.delete(sha);
        throw e;
      },
    );
    this.entries.set(sha, p);
    return { entry: await p, created: true };
  }

  /** Forgets the entry if it is still for `requestId` (a newer request for the same payload stays). */
  resolve(sha: string, requestId: string): void {
    if (this.settled.get(sha)?.request_id === requestId) this.drop(sha);
  }

  private drop(sha: string): void {
    this.entries.delete(sha);
    this.settled.delete(sha);
  }

  get size(): number {
    return this.entries.size;
  }
}
