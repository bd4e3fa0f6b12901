import { afterEach, describe, expect, it, vi } from 'vitest';
import { abortableSleep } from '../../lambdas/mcp/http.ts';
import { checkAuthorization } from '../../lambdas/mcp/tools/check-authorization.ts';
import { fieldPath, invalidInput } from '../../lambdas/mcp/tool.ts';

describe('abortableSleep (the default long-poll wait)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('waits the full time without a signal', async () => {
    vi.useFakeTimers();
    let done = false;
    void abortableSleep(500).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(499);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(done).toBe(true);
  });

  it('resolves as soon as the signal aborts and clears its timer', async () => {
    vi.useFakeTimers();
    const ac = new AbortController();
    let done = false;
    void abortableSleep(25_000, ac.signal).then(() => (done = true));
    expect(vi.getTimerCount()).toBe(1);
    ac.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('does not wait at all on an aborted signal', async () => {
    vi.useFakeTimers();
    await abortableSleep(25_000, AbortSignal.abort());
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('field paths in ERR_INVALID_INPUT', () => {
  it('are JSON paths', () => {
    expect(fieldPath(['permissions', 3])).toBe('permissions[3]');
    expect(fieldPath([])).toBe('arguments');
    expect(fieldPath(['a b'])).toBe('["a b"]');
    expect(fieldPath(['x'.repeat(100)])).toBe(`["${'x'.repeat(64)}..."]`);
    expect(fieldPath(['a\u200bb\n\u{1f980}'])).toBe('["a\\u200bb\\n\\ud83e\\udd80"]');
  });

  it('name the first unknown argument and the ones the tool takes', () => {
    const r = checkAuthorization.input.safeParse({ request_id: 'req_00000000000000000000000000', '\u202eevil': 1 });
    const e = invalidInput(checkAuthorization, r.error!);
    expect(e.code).toBe('ERR_INVALID_INPUT');
    // The caller's RLO is echoed escaped, not raw.
    expect(e.field).toBe('["\\u202eevil"]');
    expect(e.message).toBe('["\\u202eevil"]: is not an argument of check_authorization; it takes only request_id, wait_seconds');
  });
});
