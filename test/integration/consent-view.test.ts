import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../lambdas/core/audit/event.ts';
import { parseAgentId, parseRequestId } from '../../lambdas/core/ids.ts';
import { approvalView, viewSha256 } from '../../lambdas/core/view.ts';
import { signInWithPkce } from '../helpers/cognito-token.ts';
import { startTestStack, writeItemFields, type TestStack } from '../helpers/local-stack.ts';

/**
 * The view binding at the consent API, on the real stack (dynalite, cognito-local): a decision
 * carries the SHA-256 of the view the page showed; a missing or malformed one is refused (400)
 * before anything is decided, and one that differs from the request as stored now (changed in the
 * table behind ackd's back, or simply wrong) gets 409 ERR_STALE_VIEW, decides nothing and is
 * recorded as a refused attempt.
 */
let stack: TestStack;
let token: string;
const agentId = parseAgentId('demo-agent');

beforeAll(async () => {
  stack = await startTestStack();
  const cog = stack.cognito!;
  ({ idToken: token } = await signInWithPkce({ cognitoUrl: cog.url, clientId: cog.clientId, redirectUri: stack.consentUiUrl, username: cog.approverUsername, password: cog.approverPassword }));
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

async function newRequest(): Promise<string> {
  const { request_id } = await stack.deps.service.requestAuthorization({ agent_id: agentId, action: 'deploy api', permissions: ['deploy:prod'], justification: 'release 1.2', ttl_minutes: 10 });
  return request_id;
}

function post(id: string, verb: 'approve' | 'deny', body: unknown): Promise<Response> {
  return fetch(`${stack.appUrl}/api/requests/${id}/${verb}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function shown(id: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${stack.appUrl}/api/requests/${id}`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { request: Record<string, unknown> }).request;
}

async function errorOf(res: Response): Promise<{ code: string; message: string; field?: string }> {
  return ((await res.json()) as { error: { code: string; message: string; field?: string } }).error;
}

async function eventsOf(id: string): Promise<AuditEvent[]> {
  await stack.settled();
  const out: AuditEvent[] = [];
  const head = await stack.deps.store.audit.head();
  for await (const e of stack.deps.store.audit.events(1, head.seq)) if (e.request_id === id) out.push(e);
  return out;
}

describe('consent API: the view binding', () => {
  it('GET gives the view hash of the request as stored (core/view.ts), and payload fields null without a payload', async () => {
    const id = await newRequest();
    const v = await shown(id);
    const record = await stack.deps.service.get(parseRequestId(id));
    expect(v.view_sha256).toBe(viewSha256(approvalView(record)));
    expect(v).toMatchObject({ payload: null, payload_sha256: null });
  });

  it('a decision without view_sha256, or with a malformed one, is refused 400 naming the field, and decides nothing', async () => {
    const id = await newRequest();
    const good = (await shown(id)).view_sha256 as string;
    for (const [body, rule] of [
      [{ request_id: id }, /view_sha256: required/],
      [{ request_id: id, view_sha256: null }, /view_sha256: required/],
      [{ request_id: id, view_sha256: good.toUpperCase() }, /view_sha256: must be 64 lowercase hex/],
      [{ request_id: id, view_sha256: good.slice(1) }, /view_sha256: must be 64 lowercase hex/],
      [{ request_id: id, view_sha256: `${good}0` }, /view_sha256: must be 64 lowercase hex/],
      [{ request_id: id, view_sha256: 42 }, /view_sha256: must be 64 lowercase hex/],
      [{ request_id: id, view_sha256: [good] }, /view_sha256: must be 64 lowercase hex/],
    ] as const) {
      for (const verb of ['approve', 'deny'] as const) {
        const res = await post(id, verb, body);
        expect(res.status, JSON.stringify(body)).toBe(400);
        const err = await errorOf(res);
        expect(err).toMatchObject({ code: 'ERR_INVALID_INPUT', field: 'view_sha256' });
        expect(err.message).toMatch(rule);
      }
    }
    expect((await stack.deps.service.get(parseRequestId(id))).decision).toBe('pending');
    // Refused at the edge: nothing reached the service, so nothing was recorded either.
    expect((await eventsOf(id)).map((e) => e.type)).not.toContain('refused');
  });

  it('a body over 16 KB is refused; one with a large (passkey-sized) extra field still fits', async () => {
    const id = await newRequest();
    const good = (await shown(id)).view_sha256 as string;
    const big = await post(id, 'approve', { request_id: id, view_sha256: good, pad: 'x'.repeat(17 * 1024) });
    expect(big.status).toBe(400);
    expect(await errorOf(big)).toMatchObject({ code: 'ERR_INVALID_INPUT', field: 'body' });
    const fits = await post(id, 'approve', { request_id: id, view_sha256: good, pad: 'x'.repeat(12 * 1024) });
    expect(fits.status).toBe(200);
  });

  it('a well-formed but wrong view hash gets 409 ERR_STALE_VIEW: nothing decided, a refused event recorded', async () => {
    const id = await newRequest();
    const res = await post(id, 'approve', { request_id: id, view_sha256: 'ab'.repeat(32) });
    expect(res.status).toBe(409);
    const err = await errorOf(res);
    expect(err.code).toBe('ERR_STALE_VIEW');
    expect(err.message).toMatch(/changed since the page showed it.*reload/);
    const rec = await stack.deps.service.get(parseRequestId(id));
    expect(rec).toMatchObject({ decision: 'pending', approver_identity: null, votes: [] });
    const refused = (await eventsOf(id)).filter((e) => e.type === 'refused');
    expect(refused).toHaveLength(1);
    expect(refused[0]!.reason).toMatch(/^approval refused: ERR_STALE_VIEW: /);
  });

  it('the request changed in the table after the page read it: the decision on the old view is refused (409), one on the new view stands', async () => {
    const id = await newRequest();
    const before = await shown(id);
    // Someone with table access rewrites what the approver is about to approve.
    await writeItemFields(stack, `req#${id}`, { justification: 'release 1.2 (and also drop the audit table)' });
    const stale = await post(id, 'approve', { request_id: id, view_sha256: before.view_sha256 });
    expect(stale.status).toBe(409);
    expect((await errorOf(stale)).code).toBe('ERR_STALE_VIEW');
    expect((await stack.deps.service.get(parseRequestId(id))).decision).toBe('pending');
    const staleDeny = await post(id, 'deny', { request_id: id, view_sha256: before.view_sha256 });
    expect(staleDeny.status).toBe(409);
    const types = (await eventsOf(id)).map((e) => e.type);
    expect(types.filter((t) => t === 'refused')).toHaveLength(2);
    expect(types).not.toContain('approved');
    expect(types).not.toContain('denied');

    // Reloaded: the page now shows (and hashes) what is stored, and that decision is accepted.
    const after = await shown(id);
    expect(after.justification).toBe('release 1.2 (and also drop the audit table)');
    expect(after.view_sha256).not.toBe(before.view_sha256);
    const ok = await post(id, 'deny', { request_id: id, view_sha256: after.view_sha256 });
    expect(ok.status).toBe(200);
    expect((await stack.deps.service.get(parseRequestId(id))).decision).toBe('denied');
  });
});
