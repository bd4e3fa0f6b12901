/**
 * The adversarial suite runs in `npm test` in a short form (CI), and in full with
 * `npm run test:adversarial` (ACKD_ADVERSARIAL=full). Each test scales its attack by these.
 */
import { vi } from 'vitest';

export const FULL = process.env.ACKD_ADVERSARIAL === 'full';

// Every adversarial test file imports this: the full attack takes minutes per test.
vi.setConfig({ testTimeout: FULL ? 1_200_000 : 120_000 });

/** `short` in CI, `full` when asked for. */
export function budget(short: number, full: number): number {
  return FULL ? full : short;
}

/** A seeded PRNG (mulberry32): a failing case is reproducible from the seed printed with it. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What no caller may ever see: stack traces, file system paths, socket addresses, keys. */
export const LEAK = /(\n\s+at |\/work\/|\/home\/|\/root\/|\/tmp\/|node_modules|\.sock\b|remote_addr|BEGIN (EC |RSA )?PRIVATE KEY|ackd_[A-Za-z0-9_-]{43})/;

/** One JSON-RPC call to /mcp over plain HTTP (no SDK in between: the attacker's view). */
export async function rawMcp(url: string, apiKey: string | null, body: unknown, init: { headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<{ status: number; text: string; json: unknown }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
      ...init.headers,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...(init.signal ? { signal: init.signal } : {}),
  });
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON: left undefined for the caller to judge
  }
  return { status: res.status, text, json };
}

export function toolCall(id: number, name: string, args: unknown): unknown {
  return { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } };
}
