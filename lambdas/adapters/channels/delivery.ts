import { setTimeout as sleep } from 'node:timers/promises';
import pRetry from 'p-retry';
import { channelError } from './message.ts';

/**
 * Delivery of one HTTP POST with retries, shared by the webhook and Slack channels.
 *
 * Retried: network errors, per-attempt timeouts, 429 (after its Retry-After, capped) and 5xx.
 * Not retried: any other status, 3xx included (redirects are never followed: a redirect could
 * carry a signed body, or a Slack URL's path, to a host nobody configured). Backoff is exponential
 * with jitter (p-retry's `randomize`: each delay times a factor from 1 to 2) so many Lambdas that
 * failed together do not retry together. The whole delivery, attempts and waits alike, ends by
 * `totalTimeoutMs`: the callers are Lambdas with a deadline of their own.
 */
export interface RetryPolicy {
  /** Attempts in all, the first included. */
  readonly attempts: number;
  /** Deadline of one attempt (connect, send, response headers). */
  readonly attemptTimeoutMs: number;
  /** Deadline of the whole delivery, waits between attempts included. */
  readonly totalTimeoutMs: number;
  /** Base delay before the first retry; doubles for each further one. */
  readonly minDelayMs: number;
  /** Largest delay between two attempts (before jitter is capped by the time left). */
  readonly maxDelayMs: number;
  /** The longest Retry-After honoured; a 429 asking for more waits this long. */
  readonly retryAfterCapMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  attempts: 4,
  attemptTimeoutMs: 5_000,
  totalTimeoutMs: 20_000,
  minDelayMs: 500,
  maxDelayMs: 4_000,
  retryAfterCapMs: 10_000,
};

export interface PostRequest {
  /** `<kind>:<name>`: the only way the destination is named in errors. */
  readonly channel: string;
  readonly url: string;
  /** The raw body, identical on every attempt. */
  readonly body: string;
  /** Headers of one attempt (called per attempt, e.g. to sign with a fresh timestamp). */
  readonly headers: () => Record<string, string>;
  readonly fetch?: typeof fetch;
  readonly policy?: Partial<RetryPolicy>;
}

export interface Delivered {
  readonly status: number;
  readonly attempts: number;
}

/** The outcome of one failed attempt, described without the URL or any header. */
export class AttemptFailure extends Error {
  override readonly name = 'AttemptFailure';
  constructor(
    /** "HTTP 503", "timeout after 5000 ms", "network error ECONNREFUSED" … */
    readonly what: string,
    readonly retryable: boolean,
    /** Milliseconds the receiver asked to wait (429 Retry-After), if any. */
    readonly retryAfterMs?: number,
  ) {
    super(what);
  }
}

/** Validated policy: every number finite and in a sane range (a bad override is a programming error). */
export function retryPolicy(over: Partial<RetryPolicy> = {}): RetryPolicy {
  const p = { ...DEFAULT_RETRY_POLICY, ...over };
  const ok = (n: number, min: number, max: number) => Number.isFinite(n) && n >= min && n <= max;
  if (!Number.isInteger(p.attempts) || !ok(p.attempts, 1, 10)) throw new RangeError('retry policy: attempts must be an integer from 1 to 10');
  for (const k of ['attemptTimeoutMs', 'totalTimeoutMs', 'minDelayMs', 'maxDelayMs', 'retryAfterCapMs'] as const) {
    if (!ok(p[k], 0, 900_000)) throw new RangeError(`retry policy: ${k} must be from 0 to 900000 ms`);
  }
  return p;
}

/**
 * Retry-After as milliseconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3); undefined when
 * absent or unreadable (then the usual backoff applies).
 */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d{1,9}$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  if (Number.isNaN(at) || !/[a-z]/i.test(v)) return undefined;
  return Math.max(0, at - now);
}

/**
 * A short, safe word from the response body (Slack answers e.g. "invalid_blocks"); never anything
 * longer. At most the first 256 bytes are read, whatever the receiver sends.
 */
async function errorToken(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < 256) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    return '';
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  const text = Buffer.concat(chunks).subarray(0, 256).toString('utf8').trim();
  return /^[a-z][a-z0-9_]{0,63}$/.test(text) ? ` (${text})` : '';
}

/** A network error described by its code only: undici's messages name the host and port. */
function networkWhat(e: unknown): string {
  const cause = (e as { cause?: { code?: unknown } } | undefined)?.cause;
  const code = typeof cause?.code === 'string' && /^[A-Z0-9_]{1,40}$/.test(cause.code) ? cause.code : undefined;
  return code ? `network error ${code}` : 'network error';
}

/**
 * POSTs `body` to `url` until a 2xx, a refusal that retrying cannot change, the last attempt, or
 * the total deadline. Throws an AckdError naming the channel, the attempts made and the last
 * failure. The response body is read only for a short error word and then dropped.
 */
export async function postWithRetry(req: PostRequest): Promise<Delivered> {
  const policy = retryPolicy(req.policy);
  const doFetch = req.fetch ?? fetch;
  const started = performance.now();
  const deadline = AbortSignal.timeout(policy.totalTimeoutMs);
  const timeLeft = () => policy.totalTimeoutMs - (performance.now() - started);
  let attempts = 0;
  let last: AttemptFailure | undefined;

  const attempt = async (): Promise<Delivered> => {
    attempts++;
    // AbortSignal.timeout takes whole milliseconds only.
    const perAttempt = Math.max(1, Math.floor(Math.min(policy.attemptTimeoutMs, timeLeft())));
    const signal = AbortSignal.any([AbortSignal.timeout(perAttempt), deadline]);
    const headers = req.headers();
    let res: Response;
    try {
      res = await doFetch(req.url, { method: 'POST', headers, body: req.body, redirect: 'manual', signal });
    } catch (e) {
      const timedOut = (e as { name?: unknown }).name === 'TimeoutError';
      // An attempt cut short to fit the budget that times out has spent the budget, whichever signal fired first.
      if (deadline.aborted || (timedOut && perAttempt < policy.attemptTimeoutMs)) throw new AttemptFailure(`time budget of ${policy.totalTimeoutMs} ms spent`, false);
      if (timedOut) throw new AttemptFailure(`timeout after ${perAttempt} ms`, true);
      // fetch rejects with a TypeError when the network fails; anything else is not worth retrying.
      if (e instanceof TypeError) throw new AttemptFailure(networkWhat(e), true);
      throw new AttemptFailure(`unexpected error${e instanceof Error && /^[A-Za-z]{1,64}$/.test(e.name) ? ` (${e.name})` : ''}`, false);
    }
    if (res.status >= 200 && res.status < 300) {
      await res.body?.cancel().catch(() => undefined);
      return { status: res.status, attempts };
    }
    const what = `HTTP ${res.status}${await errorToken(res)}`;
    if (res.status === 429) throw new AttemptFailure(what, true, parseRetryAfter(res.headers.get('retry-after')));
    if (res.status >= 500 && res.status <= 599) throw new AttemptFailure(what, true);
    throw new AttemptFailure(res.status >= 300 && res.status < 400 ? `${what}, a redirect (not followed)` : what, false);
  };

  try {
    return await pRetry(attempt, {
      retries: policy.attempts - 1,
      factor: 2,
      minTimeout: policy.minDelayMs,
      maxTimeout: policy.maxDelayMs,
      randomize: true,
      maxRetryTime: policy.totalTimeoutMs,
      signal: deadline,
      shouldRetry: ({ error }) => error instanceof AttemptFailure && error.retryable,
      onFailedAttempt: async ({ error, retriesLeft }) => {
        if (!(error instanceof AttemptFailure)) return;
        last = error;
        // Honour a 429's Retry-After (up to the cap) before p-retry's own backoff, unless no retry follows.
        if (!error.retryable || retriesLeft <= 0 || error.retryAfterMs === undefined) return;
        const wait = Math.min(error.retryAfterMs, policy.retryAfterCapMs);
        if (wait >= timeLeft()) {
          last = new AttemptFailure(`${error.what}, Retry-After ${Math.ceil(error.retryAfterMs / 1000)} s is past the time budget`, false);
          throw last;
        }
        await sleep(wait, undefined, { signal: deadline });
      },
    });
  } catch (e) {
    const failure = e instanceof AttemptFailure ? e : deadline.aborted ? new AttemptFailure(`time budget of ${policy.totalTimeoutMs} ms spent`, false) : last;
    const lastWhat = failure?.what ?? 'unexpected error';
    const prior = last && failure !== last && last.what !== lastWhat ? `; last response: ${last.what}` : '';
    throw channelError(req.channel, `not delivered after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${lastWhat}${prior}`);
  }
}
