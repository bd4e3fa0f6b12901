import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAgentId, type RequestId } from '../../lambdas/core/ids.ts';
import { decisionChallengeB64 } from '../../lambdas/core/passkeys.ts';
import type { PasskeyAssertion } from '../../lambdas/core/evidence.ts';
import { startTestStack, writeItemFields, type TestStack } from '../helpers/local-stack.ts';
import { payloadSha256 } from '../../lambdas/core/payload.ts';
import { signInWithPkce } from '../helpers/cognito-token.ts';
import { SoftPasskey } from '../helpers/soft-passkey.ts';
import { cliEnv, runAckd } from '../helpers/cli.ts';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dynamoClient } from '../../lambdas/adapters/dynamodb/client.ts';
import { documentClient } from '../../lambdas/adapters/dynamodb/send.ts';

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
  it('registers a first passkey over the API with the session alone (options → verify → store), lists it, refuses the same registration again', async () => {
    const opts = await json<{ nonce: string; options: { challenge: string; rp: { id: string }; authenticatorSelection: { userVerification: string } }; confirm?: unknown }>(await api('/passkeys/options', { method: 'POST', body: {} }));
    expect(opts.options.challenge).toBe(opts.nonce);
    // The first passkey needs only the session.
    expect(opts.confirm).toBeUndefined();
    expect(opts.options.rp.id).toBe('localhost');
    expect(opts.options.authenticatorSelection.userVerification).toBe('required');
    const response = key.register(opts.nonce);
    const res = await api('/passkeys', { method: 'POST', body: { nonce: opts.nonce, response, label: 'soft key' } });
    expect(res.status).toBe(201);
    const again = await api('/passkeys', { method: 'POST', body: { nonce: opts.nonce, response, label: 'soft key' } });
    // (Refused first because the approver now has a passkey that must confirm a new one; the nonce is used up too: unit tests.)
    await refusedWith(again, 'ERR_PASSKEY_REQUIRED', /confirm: you already have a passkey/);
    const list = await json<{ passkeys: { credential_id: string; label: string }[]; rp_id: string }>(await api('/passkeys'));
    expect(list).toMatchObject({ rp_id: 'localhost', passkeys: [{ credential_id: key.credentialId, label: 'soft key' }] });
    // The adding is an audit event by the approver.
    await stack.settled();
    const head = await stack.deps.store.audit.head();
    const sub = (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { sub: string }).sub;
    expect(await stack.deps.store.audit.event(head.seq)).toMatchObject({ type: 'passkey_added', actor_type: 'approver', actor_id: sub, approver_identity: sub, credential_ids: [key.credentialId] });
  });

  it('a second passkey must be confirmed with the first: refused without, with a stranger\'s key or a decision\'s assertion; stored with it', async () => {
    const second = new SoftPasskey('localhost', new URL(stack.consentUiUrl).origin);
    type Options = { nonce: string; confirm: { nonce: string; challenge: string; allowCredentials: { id: string }[]; rpId: string; userVerification: string } };
    const options = async () => json<Options>(await api('/passkeys/options', { method: 'POST', body: {} }));
    const o1 = await options();
    expect(o1.confirm).toMatchObject({ nonce: o1.nonce, rpId: 'localhost', userVerification: 'required', allowCredentials: [{ id: key.credentialId }] });
    // A stolen session alone: refused, nothing stored.
    await refusedWith(await api('/passkeys', { method: 'POST', body: { nonce: o1.nonce, response: second.register(o1.nonce), label: 'thief' } }), 'ERR_PASSKEY_REQUIRED', /confirm: you already have a passkey/);
    // The thief's own key signs the confirmation: not one of the approver's.
    await refusedWith(await api('/passkeys', { method: 'POST', body: { nonce: o1.nonce, response: second.register(o1.nonce), label: 'thief', confirm: second.assert(o1.confirm.challenge, o1.nonce) } }), 'ERR_PASSKEY_INVALID', /not one of yours/);
    // An assertion the approver made for a decision is no confirmation.
    const o2 = await options();
    const id = await newRequest();
    await refusedWith(await api('/passkeys', { method: 'POST', body: { nonce: o2.nonce, response: second.register(o2.nonce), confirm: await signed(id, 'approved') } }), 'ERR_PASSKEY_INVALID', /confirm.nonce is not this registration's nonce/);
    expect((await json<{ passkeys: unknown[] }>(await api('/passkeys'))).passkeys).toHaveLength(1);
    // Confirmed by the approver's passkey: stored.
    const o3 = await options();
    const res = await api('/passkeys', { method: 'POST', body: { nonce: o3.nonce, response: second.register(o3.nonce), label: 'second', confirm: key.assert(o3.confirm.challenge, o3.nonce) } });
    expect(res.status).toBe(201);
    expect((await json<{ passkeys: { credential_id: string }[] }>(await api('/passkeys'))).passkeys.map((p) => p.credential_id)).toEqual([key.credentialId, second.credentialId]);
    // Removing it needs a confirmation too: none, or a decision's assertion, is refused; a challenge for it, signed by the first passkey, removes it.
    await refusedWith(await api(`/passkeys/${second.credentialId}`, { method: 'DELETE' }), 'ERR_PASSKEY_REQUIRED', /removing a passkey must be confirmed/);
    await refusedWith(await api(`/passkeys/${second.credentialId}`, { method: 'DELETE', body: { confirm: await signed(id, 'approved') } }), 'ERR_PASSKEY_INVALID', /not issued to you for a passkey's removal/);
    const c = await json<{ nonce: string; challenge: string; allowCredentials: { id: string }[] }>(await api(`/passkeys/${second.credentialId}/challenge`, { method: 'POST', body: {} }));
    expect(c.allowCredentials.map((a) => a.id)).toEqual([key.credentialId, second.credentialId]);
    // The challenge is for this passkey: it does not remove the other one.
    await refusedWith(await api(`/passkeys/${key.credentialId}`, { method: 'DELETE', body: { confirm: key.assert(c.challenge, c.nonce) } }), 'ERR_PASSKEY_INVALID', /challenge is not the one of this removal/);
    const c2 = await json<{ nonce: string; challenge: string }>(await api(`/passkeys/${second.credentialId}/challenge`, { method: 'POST', body: {} }));
    const del = await api(`/passkeys/${second.credentialId}`, { method: 'DELETE', body: { confirm: key.assert(c2.challenge, c2.nonce) } });
    expect(del.status).toBe(200);
    expect((await json<{ passkeys: { credential_id: string }[] }>(await api('/passkeys'))).passkeys.map((p) => p.credential_id)).toEqual([key.credentialId]);
    expect((await api(`/passkeys/${second.credentialId}/challenge`, { method: 'POST', body: {} })).status).toBe(404);
  });

  it('a passkey an insider writes into the approver\'s item (with their stolen session) is not theirs: not listed, cannot confirm a new one or sign a decision; listed UNSEALED', async () => {
    const origin = new URL(stack.consentUiUrl).origin;
    const sub = (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { sub: string }).sub;
    const planted = new SoftPasskey('localhost', origin);
    const p = planted.stored(sub);
    const doc = documentClient(dynamoClient({ region: 'us-east-1', endpoint: stack.dynamodbEndpoint }));
    await doc.send(
      new UpdateCommand({
        TableName: stack.tableName,
        Key: { pk: `passkeys#${sub}` },
        UpdateExpression: 'SET creds.#id = :cred',
        ExpressionAttributeNames: { '#id': p.credential_id },
        ExpressionAttributeValues: { ':cred': { public_key: p.public_key, counter: 0, transports: ['internal'], created_at: p.created_at, label: 'mine now' } },
      }),
    );
    // Malformed credentials beside it (a string, a number for a time) break no reader.
    for (const [id, cred] of [['junk-string', 'x'], ['junk-number', { created_at: 5, public_key: 7 }]] as const) {
      await doc.send(new UpdateCommand({ TableName: stack.tableName, Key: { pk: `passkeys#${sub}` }, UpdateExpression: 'SET creds.#id = :cred', ExpressionAttributeNames: { '#id': id }, ExpressionAttributeValues: { ':cred': cred } }));
    }
    const listed = await json<{ passkeys: { credential_id: string }[] }>(await api('/passkeys'));
    expect(listed.passkeys.map((x) => x.credential_id)).toEqual([key.credentialId]);
    const junk = await runAckd(cliEnv(stack), 'passkeys', 'list', '--approver', sub);
    expect(junk.code, junk.stderr).toBe(0);
    expect(junk.stdout).toMatch(/junk-number .* UNSEALED/);
    await doc.send(new UpdateCommand({ TableName: stack.tableName, Key: { pk: `passkeys#${sub}` }, UpdateExpression: 'REMOVE creds.#s, creds.#n', ExpressionAttributeNames: { '#s': 'junk-string', '#n': 'junk-number' } }));
    // The step-up: the planted key cannot confirm a new passkey.
    const o = await json<{ nonce: string; confirm: { challenge: string; allowCredentials: { id: string }[] } }>(await api('/passkeys/options', { method: 'POST', body: {} }));
    expect(o.confirm.allowCredentials.map((c) => c.id)).not.toContain(planted.credentialId);
    const third = new SoftPasskey('localhost', origin);
    const added = await api('/passkeys', { method: 'POST', body: { nonce: o.nonce, response: third.register(o.nonce), label: 'x', confirm: planted.assert(o.confirm.challenge, o.nonce) } });
    await refusedWith(added, 'ERR_PASSKEY_INVALID', /the passkey that signed it is not one of yours/);
    // Nor can it sign a decision.
    const id = await newRequest();
    const c = await challenge(id, 'approved');
    await refusedWith(await decide(id, 'approve', planted.assert(c.challenge, c.nonce)), 'ERR_PASSKEY_INVALID', /not one of yours/);
    expect(stack.logs.lines.some((l) => l.includes('ERR_PASSKEY_UNSEALED') && l.includes(planted.credentialId))).toBe(true);
    // The operator sees it.
    const list = await runAckd(cliEnv(stack), 'passkeys', 'list', '--approver', sub);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`${planted.credentialId}  mine now  added \\S+  UNSEALED`));
    expect(list.stdout).toMatch(new RegExp(`${key.credentialId}  soft key  added \\S+$`, 'm'));
    // `passkeys seal` seals what carries no seal at all: what it seals, the operator vouches for (the one-off upgrade step).
    const sealed = await runAckd(cliEnv(stack), 'passkeys', 'seal', '--json');
    expect(sealed.code, sealed.stderr).toBe(0);
    expect((JSON.parse(sealed.stdout) as { sealed: { credential_id: string; retired: boolean }[] }).sealed).toEqual([expect.objectContaining({ credential_id: planted.credentialId, retired: false })]);
    expect((await runAckd(cliEnv(stack), 'passkeys', 'list', '--approver', sub)).stdout).not.toMatch(/UNSEALED/);
    expect((await runAckd(cliEnv(stack), 'passkeys', 'seal')).stdout.trim()).toBe('no unsealed passkeys');
    // Taken out again (an operator would reset; here the test's own cleanup).
    await doc.send(new UpdateCommand({ TableName: stack.tableName, Key: { pk: `passkeys#${sub}` }, UpdateExpression: 'REMOVE creds.#id', ExpressionAttributeNames: { '#id': p.credential_id } }));
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

  it('deletes a passkey (confirmed by itself); decisions then cannot be signed', async () => {
    const c = await json<{ nonce: string; challenge: string }>(await api(`/passkeys/${key.credentialId}/challenge`, { method: 'POST', body: {} }));
    const confirm = key.assert(c.challenge, c.nonce);
    const del = await api(`/passkeys/${key.credentialId}`, { method: 'DELETE', body: { confirm } });
    expect(del.status).toBe(200);
    expect((await json<{ passkeys: unknown[] }>(await api('/passkeys'))).passkeys).toEqual([]);
    const id = await newRequest();
    const res = await api(`/requests/${id}/challenge`, { method: 'POST', body: { request_id: id, decision: 'approved', view_sha256: await viewOf(id) } });
    await refusedWith(res, 'ERR_PASSKEY_REQUIRED', /no passkey registered/);
    await refusedWith(await api(`/passkeys/${key.credentialId}`, { method: 'DELETE', body: { confirm } }), 'ERR_PASSKEY_INVALID', /nonce is unknown, already used or expired/);
    expect((await api(`/passkeys/${key.credentialId}/challenge`, { method: 'POST', body: {} })).status).toBe(404);
    // What it signed before still verifies: its public key is kept as retired.
    await stack.settled();
    const origin = new URL(stack.consentUiUrl).origin;
    const after = await runAckd(cliEnv(stack, { ACKD_AUDIT_KEY: stack.auditKeyPath }), 'audit', 'verify', '--live', '--passkeys', '--origin', origin, '--json');
    const report = JSON.parse(after.stdout) as { passkeys: { checked: number; verified: number; failures: unknown[] } };
    expect(report.passkeys.failures).toEqual([]);
    expect(report.passkeys.checked).toBeGreaterThanOrEqual(2);
    expect(report.passkeys.verified).toBe(report.passkeys.checked);
  });

  it('ackd passkeys reset removes every passkey of one approver (logged); they then register a first one with the session alone', async () => {
    const origin = new URL(stack.consentUiUrl).origin;
    const register = async (k: SoftPasskey, confirmWith?: SoftPasskey) => {
      const o = await json<{ nonce: string; confirm?: { challenge: string } }>(await api('/passkeys/options', { method: 'POST', body: {} }));
      const res = await api('/passkeys', { method: 'POST', body: { nonce: o.nonce, response: k.register(o.nonce), ...(confirmWith ? { confirm: confirmWith.assert(o.confirm!.challenge, o.nonce) } : {}) } });
      expect(res.status).toBe(201);
    };
    const lost1 = new SoftPasskey('localhost', origin);
    const lost2 = new SoftPasskey('localhost', origin);
    await register(lost1);
    await register(lost2, lost1);
    const sub = (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { sub: string }).sub;
    const bad = await runAckd(cliEnv(stack), 'passkeys', 'reset', sub);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--as/);
    expect((await runAckd(cliEnv(stack), 'passkeys', 'reset', 'a b', '--as', 'grace')).stderr).toMatch(/approver_sub: must be the approver's Cognito sub/);
    const r = await runAckd(cliEnv(stack, { ACKD_LOG_LEVEL: 'info' }), 'passkeys', 'reset', sub, '--as', 'grace', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { approver: string; reset_by: string; removed: { credential_id: string }[] };
    expect(out).toMatchObject({ approver: sub, reset_by: 'grace' });
    expect(out.removed.map((p) => p.credential_id).sort()).toEqual([lost1.credentialId, lost2.credentialId].sort());
    const logged = r.stderr.split('\n').filter((l) => l.includes('passkeys_reset')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logged).toEqual([expect.objectContaining({ event: 'passkeys_reset', actor_id: 'grace', approver: sub, removed: out.removed })]);
    expect((await json<{ passkeys: unknown[] }>(await api('/passkeys'))).passkeys).toEqual([]);
    // The reset is an audit event: the approver, the credentials, the operator.
    await stack.settled();
    const head = await stack.deps.store.audit.head();
    const event = (await stack.deps.store.audit.event(head.seq)) as unknown as Record<string, unknown>;
    expect(event).toMatchObject({ type: 'passkeys_reset', actor_type: 'operator', actor_id: 'grace', approver_identity: sub });
    expect([...(event.credential_ids as string[])].sort()).toEqual([lost1.credentialId, lost2.credentialId].sort());
    // Nothing left to remove the second time.
    expect(JSON.parse((await runAckd(cliEnv(stack), 'passkeys', 'reset', sub, '--as', 'grace', '--json')).stdout)).toMatchObject({ removed: [] });
    // A first passkey again, with the session alone.
    await register(new SoftPasskey('localhost', origin));
  });
});

async function collect(requestId: string) {
  const seqs = (await stack.deps.store.audit.requestEventSeqs(requestId)) ?? [];
  return stack.deps.store.audit.eventsAt(seqs);
}
