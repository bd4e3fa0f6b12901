import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAgentId, type RequestId } from '../../lambdas/core/ids.ts';
import { decisionChallengeB64 } from '../../lambdas/core/passkeys.ts';
import type { PasskeyAssertion } from '../../lambdas/core/evidence.ts';
import { startTestStack, writeItemFields, type TestStack } from '../helpers/local-stack.ts';
import { payloadSha256 } from '../../lambdas/core/payload.ts';
import { signInWithPkce } from '../helpers/cognito-token.ts';
import { SoftPasskey } from '../helpers/soft-passkey.ts';
import { cliEnv, runAckd } from '../helpers/cli.ts';

/**
 * Passkeys on the real local stack (dynalite, cognito-local, the consent API over HTTP): an
 * approver registers a passkey over the API, and decisions under ACKD_PASSKEY_REQUIRED=all are
 * refused without an assertion, with a replayed one, one made for another request or the other
 * verdict, or one over another payload or view; a good one is recorded and verifies offline.
 */
let stack: TestStack;
let token: string;
let key: SoftPasskey;
const agentId = parseAgentId('demo-agent');
/** The request whose payload a test changes in the table (the live audit check reports that item). */
let tampered = '';

function api(path: string, init: { method?: string; body?: unknown; token?: string } = {}) {
  const headers: Record<string, string> = { authorization: `Bearer ${init.token ?? token}` };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  return fetch(`${stack.appUrl}/api${path}`, { method: init.method ?? 'GET', headers, ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}) });
}

async function json<T = Record<string, unknown>>(res: Response): Promise<T> {
  return (await res.json()) as T;
}

async function newRequest(permissions = ['deploy:prod']): Promise<RequestId> {
  return (await stack.deps.service.requestAuthorization({ agent_id: agentId, action: 'deploy api', permissions, justification: 'release', ttl_minutes: 10 })).request_id;
}

/** The view hash of the request as the consent API shows it now (what the page would send). */
async function viewOf(id: string): Promise<string> {
  return (await json<{ request: { view_sha256: string } }>(await api(`/requests/${id}`))).request.view_sha256;
}

async function challenge(id: string, decision: 'approved' | 'denied', given?: string) {
  const view = given ?? (await viewOf(id));
  const res = await api(`/requests/${id}/challenge`, { method: 'POST', body: { request_id: id, decision, view_sha256: view } });
  expect(res.status).toBe(200);
  return json<{ nonce: string; challenge: string; rpId: string; userVerification: string; allowCredentials: { id: string }[] }>(res);
}

async function signed(id: string, decision: 'approved' | 'denied', view?: string): Promise<PasskeyAssertion> {
  const c = await challenge(id, decision, view);
  return key.assert(c.challenge, c.nonce);
}

const decide = async (id: string, verb: 'approve' | 'deny', passkey?: PasskeyAssertion, view?: string) =>
  api(`/requests/${id}/${verb}`, { method: 'POST', body: { request_id: id, view_sha256: view ?? (await viewOf(id)), ...(passkey ? { passkey } : {}) } });

async function refusedWith(res: Response, code: string, message: RegExp): Promise<void> {
  expect(res.status).toBe(403);
  const { error } = await json<{ error: { code: string; message: string } }>(res);
  expect(error.code).toBe(code);
  expect(error.message).toMatch(message);
}

beforeAll(async () => {
  stack = await startTestStack({ passkeyRequired: 'all' });
  const cog = stack.cognito!;
  ({ idToken: token } = await signInWithPkce({ cognitoUrl: cog.url, clientId: cog.clientId, redirectUri: stack.consentUiUrl, username: cog.approverUsername, password: cog.approverPassword }));
  const origin = new URL(stack.consentUiUrl).origin;
  expect(new URL(origin).hostname).toBe('localhost');
  key = new SoftPasskey('localhost', origin);
}, 90_000);

afterAll(async () => {
  await stack?.stop();
});

describe('passkeys on the local stack', () => {
  it('registers a passkey over the API (options → verify → store), lists it, refuses a second use of the nonce', async () => {
    const opts = await json<{ nonce: string; options: { challenge: string; rp: { id: string }; authenticatorSelection: { userVerification: string } } }>(await api('/passkeys/options', { method: 'POST', body: {} }));
    expect(opts.options.challenge).toBe(opts.nonce);
    expect(opts.options.rp.id).toBe('localhost');
    expect(opts.options.authenticatorSelection.userVerification).toBe('required');
    const response = key.register(opts.nonce);
    const res = await api('/passkeys', { method: 'POST', body: { nonce: opts.nonce, response, label: 'soft key' } });
    expect(res.status).toBe(201);
    const again = await api('/passkeys', { method: 'POST', body: { nonce: opts.nonce, response, label: 'soft key' } });
    await refusedWith(again, 'ERR_PASSKEY_INVALID', /fresh nonce/);
    const list = await json<{ passkeys: { credential_id: string; label: string }[]; rp_id: string }>(await api('/passkeys'));
    expect(list).toMatchObject({ rp_id: 'localhost', passkeys: [{ credential_id: key.credentialId, label: 'soft key' }] });
  });

  it('the request view says a passkey is required; a decision without one is refused and recorded', async () => {
    const id = await newRequest();
    const view = await json<{ request: { passkey_required: boolean } }>(await api(`/requests/${id}`));
    expect(view.request.passkey_required).toBe(true);
    await refusedWith(await decide(id, 'approve'), 'ERR_PASSKEY_REQUIRED', /requires a passkey.*sign the decision with your passkey/);
    // A CLI operator cannot carry one: refused with a message saying so.
    const cli = await runAckd(cliEnv(stack), 'requests', 'approve', id, '--as', 'ops');
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toMatch(/ERR_PASSKEY_REQUIRED.*a CLI decision cannot carry a passkey: decide in the consent UI/);
    expect((await stack.deps.service.get(id)).decision).toBe('pending');
    await stack.settled();
    const events = await collect(id);
    expect(events.filter((e) => e.type === 'refused').map((e) => e.reason)).toEqual([expect.stringMatching(/^approval refused: ERR_PASSKEY_REQUIRED/), expect.stringMatching(/^approval refused: ERR_PASSKEY_REQUIRED.*CLI/)]);
  });

  it('refuses an assertion made for another request, for the other verdict, over another view or payload', async () => {
    const id = await newRequest();
    const other = await newRequest();
    await refusedWith(await decide(id, 'approve', await signed(other, 'approved')), 'ERR_PASSKEY_INVALID', /issued for another request/);
    await refusedWith(await decide(id, 'deny', await signed(id, 'approved')), 'ERR_PASSKEY_INVALID', /issued for an approval, not a denial/);
    // Stale view: signed over one view, sent with another.
    await refusedWith(await decide(id, 'approve', await signed(id, 'approved', 'b'.repeat(64))), 'ERR_PASSKEY_INVALID', /challenge is not the one of this decision/);
    // A payload other than the one stored: the approver's key signed a challenge the server does not recompute.
    const c = await challenge(id, 'approved');
    const forOtherPayload = key.assert(decisionChallengeB64(c.nonce, id, 'approved', 'd'.repeat(64), await viewOf(id)), c.nonce);
    await refusedWith(await decide(id, 'approve', forOtherPayload), 'ERR_PASSKEY_INVALID', /challenge is not the one/);
    expect((await stack.deps.service.get(id)).decision).toBe('pending');
  });

  it('refuses an assertion over a payload changed in the table after the approver was challenged', async () => {
    const { request_id: id } = await stack.deps.service.requestAuthorization({ agent_id: agentId, action: 'migrate', permissions: ['db:write'], justification: 'schema v2', ttl_minutes: 10, payload: { sql: 'ALTER TABLE t ADD c int' } });
    const a = await signed(id, 'approved');
    const evil = { sql: 'DROP TABLE t' };
    tampered = id;
    const shown = await viewOf(id);
    await writeItemFields(stack, `req#${id}`, { payload_json: JSON.stringify(evil), payload_sha256: payloadSha256(evil) });
    // Sent with the view the approver was shown: the view no longer matches (refused before the passkey is looked at) …
    const stale = await decide(id, 'approve', a, shown);
    expect(stale.status).toBe(409);
    expect((await json<{ error: { code: string } }>(stale)).error.code).toBe('ERR_STALE_VIEW');
    // … and with the view as it is now, the assertion does not cover it.
    await refusedWith(await decide(id, 'approve', a), 'ERR_PASSKEY_INVALID', /challenge is not the one of this decision/);
    expect((await stack.deps.service.get(id)).decision).toBe('pending');
  });

  it('refuses a replayed assertion (its nonce is single-use)', async () => {
    await stack.deps.policies.set({ agent: agentId, permission: 'two:*', approvals: 2 }, { type: 'operator', id: 'test' });
    const id = await newRequest(['two:approvers']);
    const a = await signed(id, 'approved');
    expect((await decide(id, 'approve', a)).status).toBe(200);
    await refusedWith(await decide(id, 'approve', a), 'ERR_PASSKEY_INVALID', /nonce is unknown, already used or expired/);
  });

  it('a signed approval is recorded with its assertion in the vote and the audit event; audit verify --passkeys re-checks it offline', async () => {
    const id = await newRequest();
    const view = await viewOf(id);
    const a = await signed(id, 'approved', view);
    const res = await decide(id, 'approve', a, view);
    expect(res.status).toBe(200);
    expect((await json<{ request: { status: string } }>(res)).request.status).toBe('approved');
    const r = await stack.deps.service.get(id);
    expect(r.votes?.[0]?.passkey).toEqual({ assertion: a, view_sha256: view });
    await stack.settled();
    const approved = (await collect(id)).find((e) => e.type === 'approved')!;
    expect(approved.votes?.[0]?.passkey?.assertion).toEqual(a);
    const origin = new URL(stack.consentUiUrl).origin;
    const ok = await runAckd(cliEnv(stack, { ACKD_AUDIT_KEY: stack.auditKeyPath }), 'audit', 'verify', '--live', '--passkeys', '--origin', origin, '--json');
    expect(ok.stderr).toBe('');
    const report = JSON.parse(ok.stdout) as { ok: boolean; problems: { kind: string; message: string }[]; passkeys: { checked: number; verified: number; failures: unknown[] } };
    // The chain holds; the only problem is the item an earlier test changed in the table.
    expect(report.problems.map((p) => p.kind)).toEqual(['item']);
    expect(report.problems[0]!.message).toContain(tampered);
    expect(report.passkeys.failures).toEqual([]);
    expect(report.passkeys.verified).toBe(report.passkeys.checked);
    expect(report.passkeys.checked).toBeGreaterThanOrEqual(2);
    expect(ok.code).toBe(1); // (that changed item)
    // Against another origin (another RP), the same assertions do not verify.
    const wrong = await runAckd(cliEnv(stack, { ACKD_AUDIT_KEY: stack.auditKeyPath }), 'audit', 'verify', '--live', '--passkeys', '--origin', 'https://elsewhere.example', '--json');
    expect(wrong.code).toBe(1);
    expect((JSON.parse(wrong.stdout) as typeof report).passkeys.failures.length).toBe(report.passkeys.checked);
  });

  it('deletes a passkey; decisions then cannot be signed', async () => {
    const del = await api(`/passkeys/${key.credentialId}`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect((await json<{ passkeys: unknown[] }>(await api('/passkeys'))).passkeys).toEqual([]);
    const id = await newRequest();
    const res = await api(`/requests/${id}/challenge`, { method: 'POST', body: { request_id: id, decision: 'approved', view_sha256: await viewOf(id) } });
    await refusedWith(res, 'ERR_PASSKEY_REQUIRED', /no passkey registered/);
    expect((await api(`/passkeys/${key.credentialId}`, { method: 'DELETE' })).status).toBe(404);
  });
});

async function collect(requestId: string) {
  const seqs = (await stack.deps.store.audit.requestEventSeqs(requestId)) ?? [];
  return stack.deps.store.audit.eventsAt(seqs);
}
