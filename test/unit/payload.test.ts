import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { payloadFields } from '../../lambdas/core/payload-fields.ts';
import { groupedHex, isSha256Hex, parsePayload, payloadProblem, payloadSha256, PAYLOAD_LIMITS } from '../../lambdas/core/payload.ts';
import { approvalView, viewSha256 } from '../../lambdas/core/view.ts';

describe('parsePayload', () => {
  it('takes a JSON object of JSON values up to the limits', () => {
    const p = { a: [1, { b: null }], 'odd key': true };
    expect(parsePayload(p)).toBe(p);
    let nested: Record<string, unknown> = {};
    for (let i = 1; i < PAYLOAD_LIMITS.maxDepth; i++) nested = { n: nested };
    expect(() => parsePayload(nested)).not.toThrow();
    expect(() => parsePayload({ n: nested })).toThrow(/nests deeper than 10 levels/);
  });
  it('names the path of what it refuses', () => {
    expect(() => parsePayload({ a: [1, Number.NaN] })).toThrow(/^payload\.a\[1\]: must be a finite number$/);
    expect(() => parsePayload({ 'x y': { z: undefined } })).toThrow(/^payload\["x y"\]\.z: is a undefined, not a JSON value$/);
    expect(() => parsePayload({ d: new Date(0) })).toThrow(/^payload\.d: must be a plain JSON object$/);
    expect(() => parsePayload(null)).toThrow(/^payload: must be a JSON object$/);
  });
  it('takes hostile keys as plain data: "__proto__" and "constructor" are fields, hashed and listed, and pollute nothing', () => {
    const p = parsePayload(JSON.parse('{"__proto__":{"isAdmin":true},"constructor":{"prototype":{"x":1}}}'));
    expect(payloadSha256(p)).toBe(createHash('sha256').update('{"__proto__":{"isAdmin":true},"constructor":{"prototype":{"x":1}}}').digest('hex'));
    expect(payloadFields(p).map((f) => f.path)).toEqual(['__proto__.isAdmin', 'constructor.prototype.x']);
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });
  it('counts the size in bytes of the canonical form', () => {
    const under = { s: 'é'.repeat((PAYLOAD_LIMITS.maxBytes - 8) / 2) };
    expect(() => parsePayload(under)).not.toThrow();
    expect(() => parsePayload({ s: `${under.s}é` })).toThrow(/is 32770 bytes/);
  });
});

describe('digests', () => {
  it('payload_sha256 ignores key order and number spelling; groupedHex groups by 4', () => {
    expect(payloadSha256({ b: 1, a: 2.0 })).toBe(payloadSha256({ a: 2, b: 1.0 }));
    const h = payloadSha256({ a: 1 });
    expect(isSha256Hex(h)).toBe(true);
    expect(groupedHex(h).split(' ')).toHaveLength(16);
    expect(groupedHex(h).replaceAll(' ', '')).toBe(h);
  });
  it('payloadProblem finds a payload or a digest changed alone', () => {
    const payload = { amount: 1 };
    const payload_sha256 = payloadSha256(payload);
    expect(payloadProblem({ payload, payload_sha256 })).toBeNull();
    expect(payloadProblem({})).toBeNull();
    expect(payloadProblem({ payload: { amount: 2 }, payload_sha256 })).toMatch(/does not match/);
    expect(payloadProblem({ payload: null, payload_sha256 })).toMatch(/holds no payload/);
    expect(payloadProblem({ payload, payload_sha256: null })).toMatch(/records no payload digest/);
  });
  it('the view hash covers each rendered field', () => {
    const r = { request_id: 'req_1', agent_id: 'a', action: 'x', permissions: ['p'], justification: 'j', ttl_minutes: 5, expires_at: '2026-01-01T00:00:00.000Z', payload: { k: 1 } };
    const base = viewSha256(approvalView(r));
    for (const change of [{ action: 'y' }, { permissions: ['q'] }, { payload: { k: 2 } }, { payload: null }, { ttl_minutes: 6 }, { expires_at: '2026-01-01T00:00:01.000Z' }]) {
      expect(viewSha256(approvalView({ ...r, ...change }))).not.toBe(base);
    }
  });
});
