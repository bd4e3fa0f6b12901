import { generateKeyPair, SignJWT, decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApproverAdmin, cognitoClient } from '../../lambdas/adapters/cognito/admin.ts';
import { parseAgentId } from '../../lambdas/core/ids.ts';
import { approvalView, viewSha256 } from '../../lambdas/core/view.ts';
import { startTestStack, type TestStack } from '../helpers/local-stack.ts';
import { signInWithPkce } from '../helpers/cognito-token.ts';

let stack: TestStack;
let approverToken: string;
let approverAccessToken: string;
let outsiderToken: string;
const agentId = parseAgentId('demo-agent');

async function newRequest(ttl = 10) {
  const { request_id } = await stack.deps.service.requestAuthorization({ agent_id: agentId, action: 'deploy api', permissions: ['deploy:prod'], justification: 'release 1.2', ttl_minutes: ttl });
  return request_id;
}

function api(path: string, init: { method?: string; token?: string | null; body?: unknown; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...init.headers };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  return fetch(`${stack.appUrl}/api${path}`, { method: init.method ?? 'GET', headers, ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}) });
}

/** The hash of the request's view as stored: what a page that showed it sends with its decision (a fixed one for an unknown request). */
async function viewHashOf(id: string): Promise<string> {
  const r = await stack.deps.service.get(id as never).catch(() => undefined);
  return r ? viewSha256(approvalView(r)) : '0'.repeat(64);
}

const decide = async (id: string, what: 'approve' | 'deny', token: string | null = approverToken, bodyId: string = id) =>
  api(`/requests/${id}/${what}`, { method: 'POST', token, body: { request_id: bodyId, view_sha256: await viewHashOf(id) } });

async function errorOf(res: Response) {
  return ((await res.json()) as { error: { code: string; message: string } }).error;
}

beforeAll(async () => {
  stack = await startTestStack();
  const cog = stack.cognito!;
  const signIn = (username: string, password: string) => signInWithPkce({ cognitoUrl: cog.url, clientId: cog.clientId, redirectUri: stack.consentUiUrl, username, password });
  ({ idToken: approverToken, accessToken: approverAccessToken } = await signIn(cog.approverUsername, cog.approverPassword));
  // A real user of the same pool who is not in the approvers group.
  const admin = new ApproverAdmin(cognitoClient({ region: 'us-east-1', endpoint: cog.url }), cog.userPoolId);
  await admin.add('outsider@example.com', { password: 'Outsider-pw-123' });
  await admin.remove('outsider@example.com', { keepUser: true });
  ({ idToken: outsiderToken } = await signIn('outsider@example.com', 'Outsider-pw-123'));
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

describe('consent API: who may call it', () => {
  it('refuses a request without a token (401 + WWW-Authenticate), with no-store', async () => {
    const id = await newRequest();
    const res = await api(`/requests/${id}`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="ackd-consent"/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect((await errorOf(res)).code).toBe('ERR_UNAUTHENTICATED');
  });

  it("refuses the agent's API key", async () => {
    const id = await newRequest();
    expect(stack.agentApiKey).toMatch(/^ackd_/);
    const get = await api(`/requests/${id}`, { token: stack.agentApiKey });
    expect(get.status).toBe(401);
    const post = await decide(id, 'approve', stack.agentApiKey);
    expect(post.status).toBe(401);
    expect((await stack.deps.service.get(id)).decision).toBe('pending');
  });

  it("refuses a token from another issuer, and one forged with the pool's issuer but another key", async () => {
    const id = await newRequest();
    const { privateKey } = await generateKeyPair('RS256');
    const claims = { ...decodeJwt(approverToken) };
    delete claims.iss;
    delete claims.exp;
    delete claims.iat;
    for (const iss of ['https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other', stack.cognito!.issuer]) {
      const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'CognitoLocal' }).setIssuer(iss).setIssuedAt().setExpirationTime('10m').sign(privateKey);
      const res = await decide(id, 'approve', forged);
      expect(res.status).toBe(401);
    }
    expect((await stack.deps.service.get(id)).decision).toBe('pending');
  });

  it('refuses a tampered token (payload changed, signature kept)', async () => {
    const id = await newRequest();
    const [h, p, s] = approverToken.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
    payload.sub = '00000000-0000-0000-0000-000000000000';
    const tampered = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
    const res = await decide(id, 'approve', tampered);
    expect(res.status).toBe(401);
    expect((await errorOf(res)).message).toMatch(/signature/);
    const noneAlg = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${p}.`;
    expect((await decide(id, 'approve', noneAlg)).status).toBe(401);
    expect((await stack.deps.service.get(id)).decision).toBe('pending');
  });

  it('refuses an access token (only ID tokens of the consent client are accepted)', async () => {
    const id = await newRequest();
    expect(decodeJwt(approverAccessToken).token_use).toBe('access');
    expect((await api(`/requests/${id}`, { token: approverAccessToken })).status).toBe(401);
  });

  it('refuses a signed-in user who is not in the approvers group (403)', async () => {
    const id = await newRequest();
    expect(decodeJwt(outsiderToken)['cognito:groups']).toBeUndefined();
    const get = await api(`/requests/${id}`, { token: outsiderToken });
    expect(get.status).toBe(403);
    expect((await errorOf(get)).code).toBe('ERR_FORBIDDEN');
    expect((await decide(id, 'approve', outsiderToken)).status).toBe(403);
    expect((await stack.deps.service.get(id)).decision).toBe('pending');
  });

  it('refuses an expired token (judged on the passed-in clock)', async () => {
    const id = await newRequest(60);
    stack.clock.advanceMinutes(61 + 1);
    try {
      const res = await api(`/requests/${id}`, { token: approverToken });
      expect(res.status).toBe(401);
      expect((await errorOf(res)).message).toMatch(/expired/);
    } finally {
      stack.clock.advanceMinutes(-62);
    }
  });

  it('sends no CORS grant to a foreign origin', async () => {
    const id = await newRequest();
    const res = await api(`/requests/${id}`, { token: approverToken, headers: { origin: 'https://evil.example' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const pre = await fetch(`${stack.appUrl}/api/requests/${id}/approve`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('consent API: decisions', () => {
  it('shows the request and records the approver (sub) and email on approval', async () => {
    const id = await newRequest();
    const res = await api(`/requests/${id}`, { token: approverToken });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const { request } = (await res.json()) as { request: Record<string, unknown> };
    expect(request).toMatchObject({ request_id: id, agent_id: 'demo-agent', action: 'deploy api', permissions: ['deploy:prod'], justification: 'release 1.2', ttl_minutes: 10, status: 'pending', decidable: true });
    const ok = await decide(id, 'approve');
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { request: { status: string } }).request.status).toBe('approved');
    const rec = await stack.deps.service.get(id);
    expect(rec.decision).toBe('approved');
    expect(rec.approver_identity).toBe(decodeJwt(approverToken).sub);
    expect(rec.approver_email).toBe(stack.cognito!.approverUsername);
  });

  it('denies', async () => {
    const id = await newRequest();
    expect((await decide(id, 'deny')).status).toBe(200);
    expect((await stack.deps.service.get(id)).decision).toBe('denied');
  });

  it('refuses a second decision (409 ERR_ALREADY_DECIDED), first one stands', async () => {
    const id = await newRequest();
    expect((await decide(id, 'approve')).status).toBe(200);
    const second = await decide(id, 'deny');
    expect(second.status).toBe(409);
    expect((await errorOf(second)).code).toBe('ERR_ALREADY_DECIDED');
    expect((await decide(id, 'approve')).status).toBe(409);
    expect((await stack.deps.service.get(id)).decision).toBe('approved');
  });

  it('refuses a decision after expiry (409 ERR_EXPIRED) and records the expiry', async () => {
    const id = await newRequest(5);
    stack.clock.advanceMinutes(5);
    const res = await decide(id, 'approve');
    expect(res.status).toBe(409);
    expect((await errorOf(res)).code).toBe('ERR_EXPIRED');
    const view = (await (await api(`/requests/${id}`, { token: approverToken })).json()) as { request: { status: string; decidable: boolean } };
    expect(view.request).toMatchObject({ status: 'expired', decidable: false });
    const rec = await stack.deps.service.get(id);
    expect(rec.decision).toBe('expired');
    expect(rec.approver_identity).toBeNull();
  });

  it("refuses a decision that names another request's id, and changes neither", async () => {
    const a = await newRequest();
    const b = await newRequest();
    const res = await decide(b, 'approve', approverToken, a);
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({ code: 'ERR_INVALID_INPUT', field: 'request_id' });
    expect((await stack.deps.service.get(a)).decision).toBe('pending');
    expect((await stack.deps.service.get(b)).decision).toBe('pending');
    const noBody = await api(`/requests/${b}/approve`, { method: 'POST', token: approverToken });
    expect(noBody.status).toBe(400);
    expect((await stack.deps.service.get(b)).decision).toBe('pending');
  });

  it('answers 404 for an unknown request and 400 for a malformed id', async () => {
    const unknown = 'req_0000000000aaaaaaaaaaaaaaaa';
    const res = await decide(unknown, 'approve');
    expect(res.status).toBe(404);
    expect((await api('/requests/..%2Fetc', { token: approverToken })).status).toBe(400);
  });
});

describe('consent API: the dashboard and revocation by approvers', () => {
  it('lists pending requests soonest deadline first and recent decisions most recent first', async () => {
    const later = await newRequest(30);
    const sooner = await newRequest(5);
    const decided = await newRequest(10);
    expect((await decide(decided, 'deny')).status).toBe(200);
    await stack.settled(); // recent decisions are read from the audit log, where the sequencer puts them
    const res = await api('/requests', { token: approverToken });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { pending: { request_id: string; expires_at: string; approvals: unknown }[]; recent: { request_id: string; status: string }[] };
    const ids = body.pending.map((p) => p.request_id);
    expect(ids.indexOf(sooner)).toBeLessThan(ids.indexOf(later));
    expect(ids).not.toContain(decided);
    expect([...body.pending.map((p) => p.expires_at)]).toEqual([...body.pending.map((p) => p.expires_at)].sort());
    expect(body.pending.find((p) => p.request_id === sooner)).toMatchObject({ approvals: { have: 0, need: 1 }, decidable: true });
    expect(body.recent[0]).toMatchObject({ request_id: decided, status: 'denied' });
    expect((await api('/requests?all=1', { token: approverToken })).status).toBe(400);
    expect((await api('/requests', { token: outsiderToken })).status).toBe(403);
  });

  it('revokes an approval with a reason, says who and why, is idempotent, and refuses a pending request', async () => {
    const id = await newRequest();
    expect((await decide(id, 'approve')).status).toBe(200);
    const revoke = (body: unknown, token = approverToken) => api(`/requests/${id}/revoke`, { method: 'POST', token, body });
    expect((await revoke({ request_id: id, reason: 'two\nlines' })).status).toBe(400);
    const res = await revoke({ request_id: id, reason: 'wrong environment' });
    expect(res.status).toBe(200);
    const { request } = (await res.json()) as { request: Record<string, unknown> };
    expect(request).toMatchObject({ status: 'revoked', revocable: false, revoked_by: 'approver@ackd.local', revoke_reason: 'wrong environment' });
    expect((await revoke({ request_id: id })).status).toBe(200);
    const agentView = await stack.deps.service.check(agentId, id as never);
    expect(agentView).toMatchObject({ status: 'revoked' });
    const pending = await newRequest();
    const refused = await api(`/requests/${pending}/revoke`, { method: 'POST', token: approverToken, body: { request_id: pending } });
    expect(refused.status).toBe(409);
    expect((await errorOf(refused)).code).toBe('ERR_NOT_APPROVED');
  });

  it('recent decisions include those logged in a month after this clock\'s (a writer whose clock ran ahead moves logged_at on)', async () => {
    // (found at 23:10 UTC on a month's last day: a test moving the clock an hour on logged an event in the next month)
    const now = stack.clock.now();
    const nextMonth = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1, 0, 10);
    const ahead = nextMonth - now.getTime();
    const decideAsOperator = async () => {
      const { request_id } = await stack.deps.service.requestAuthorization({ agent_id: agentId, action: 'deploy', permissions: ['deploy:prod'], justification: 'month edge', ttl_minutes: 10 });
      await stack.deps.service.decide(request_id, 'denied', 'operator:ops');
      await stack.settled();
      return request_id;
    };
    stack.clock.advance(ahead);
    const inNextMonth = await decideAsOperator();
    stack.clock.advance(-ahead);
    const afterIt = await decideAsOperator(); // logged at the newest event's time, in the next month too
    const { recent } = await stack.deps.service.dashboard();
    expect(recent.map((r) => r.request_id).slice(0, 2)).toEqual([afterIt, inNextMonth]);
  });
});
