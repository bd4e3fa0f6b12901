import { describe, expect, it } from 'vitest';
import { decisionEvidence } from '../../lambdas/consent-api/decision.ts';
import { AckdError } from '../../lambdas/core/errors.ts';

/** The consent API's check of a decision's body (what binds it to the view shown), before anything is decided. */
describe('consent API: decision body', () => {
  const hash = 'a1'.repeat(32);

  it('takes a 64-lowercase-hex view_sha256 as the decision’s evidence', () => {
    expect(decisionEvidence({ request_id: 'x', view_sha256: hash })).toEqual({ view_sha256: hash });
  });

  it('refuses a missing view_sha256, naming the field', () => {
    for (const body of [{}, { view_sha256: null }, { view_sha256: undefined }]) {
      const e = (() => {
        try {
          decisionEvidence(body);
        } catch (x) {
          return x;
        }
        return undefined;
      })();
      expect(e).toBeInstanceOf(AckdError);
      expect(e).toMatchObject({ code: 'ERR_INVALID_INPUT', field: 'view_sha256' });
      expect((e as Error).message).toMatch(/^view_sha256: required/);
    }
  });

  it('refuses a malformed one: uppercase, short, long, not hex, not a string', () => {
    for (const bad of [hash.toUpperCase(), hash.slice(2), `${hash}00`, `${hash.slice(2)}zz`, ` ${hash.slice(1)}`, 42, true, [hash], { hash }]) {
      expect(() => decisionEvidence({ view_sha256: bad }), JSON.stringify(bad)).toThrow(/^view_sha256: must be 64 lowercase hex digits/);
    }
  });
});
