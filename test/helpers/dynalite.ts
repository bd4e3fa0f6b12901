import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { afterAll, beforeAll } from 'vitest';

const require = createRequire(import.meta.url);

/** A dynalite (in memory, tables ready at once) on 127.0.0.1 and a free port, for tests of one store. */
export async function startDynalite(): Promise<{ readonly endpoint: string; stop(): Promise<void> }> {
  const server = (require('dynalite') as (o: Record<string, unknown>) => Server)({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** One dynalite for the calling suite: started before its tests, stopped after; `endpoint()` once started. */
export function dynaliteForSuite(): { endpoint(): string } {
  let d: Awaited<ReturnType<typeof startDynalite>> | undefined;
  beforeAll(async () => {
    d = await startDynalite();
  });
  afterAll(async () => {
    await d?.stop();
  });
  return {
    endpoint: () => {
      if (!d) throw new Error('dynalite is not started yet (call endpoint() inside a test or hook)');
      return d.endpoint;
    },
  };
}
