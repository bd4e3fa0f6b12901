/**
 * Counts the DynamoDB API calls ackd makes, at dynalite's HTTP server: every request it receives
 * is one API call, named by its `X-Amz-Target` (`DynamoDB_20120810.GetItem`). Node publishes each
 * incoming HTTP request on the `http.server.request.start` diagnostics channel, so nothing in ackd
 * or the stack is touched to count.
 *
 * The benchmark's own calls (the floors, its direct reads of the table) carry the header
 * `x-ackd-bench` (see `tagAsBench`) and are left out: what is counted is ackd's.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { IncomingMessage, Server } from 'node:http';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

export const BENCH_HEADER = 'x-ackd-bench';

const READS = new Set(['GetItem', 'BatchGetItem', 'Query', 'Scan', 'TransactGetItems']);

export interface StoreCalls {
  readonly total: number;
  /** GetItem, BatchGetItem, Query, Scan, TransactGetItems. */
  readonly reads: number;
  readonly byOp: Readonly<Record<string, number>>;
}

export class StoreCallCounter {
  private total = 0;
  private reads = 0;
  private readonly byOp = new Map<string, number>();
  private readonly onStart = (message: unknown): void => {
    const { request, server } = message as { request: IncomingMessage; server: Server };
    const addr = server.address();
    if (addr === null || typeof addr === 'string' || addr.port !== this.port) return;
    if (request.headers[BENCH_HEADER] !== undefined) return;
    const target = request.headers['x-amz-target'];
    const op = typeof target === 'string' ? target.slice(target.indexOf('.') + 1) : 'unknown';
    this.total++;
    if (READS.has(op)) this.reads++;
    this.byOp.set(op, (this.byOp.get(op) ?? 0) + 1);
  };

  /** Counts the calls received by the dynalite listening on `port` (of `http://127.0.0.1:<port>`). */
  constructor(private readonly port: number) {
    subscribe('http.server.request.start', this.onStart);
  }

  static forEndpoint(endpoint: string): StoreCallCounter {
    return new StoreCallCounter(Number(new URL(endpoint).port));
  }

  snapshot(): StoreCalls {
    return { total: this.total, reads: this.reads, byOp: Object.fromEntries(this.byOp) };
  }

  /** The calls made since `before` (a snapshot). */
  since(before: StoreCalls): StoreCalls {
    const now = this.snapshot();
    const byOp: Record<string, number> = {};
    for (const [op, n] of Object.entries(now.byOp)) {
      const d = n - (before.byOp[op] ?? 0);
      if (d > 0) byOp[op] = d;
    }
    return { total: now.total - before.total, reads: now.reads - before.reads, byOp };
  }

  stop(): void {
    unsubscribe('http.server.request.start', this.onStart);
  }
}

/** Marks every call of `client` as the benchmark's own, so the counter leaves it out. */
export function tagAsBench<C extends DynamoDBClient>(client: C, tag = 'floor'): C {
  client.middlewareStack.add(
    (next) => (args) => {
      const req = args.request as { headers?: Record<string, string> };
      if (req.headers) req.headers[BENCH_HEADER] = tag;
      return next(args);
    },
    { step: 'build', name: 'ackdBenchTag' },
  );
  return client;
}
