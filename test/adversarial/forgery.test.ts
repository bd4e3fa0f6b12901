import { createHash, randomBytes } from 'node:crypto';
import { generateKeyPair, exportJWK, SignJWT, decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApproverAdmin, cognitoClient } from '../../lambdas/adapters/cognito/admin.ts';
import { parseAgentId, type RequestId } from '../../lambdas/core/ids.ts';
import { signInWithPkce } from '../helpers/cognito-token.ts';
import { startTestStack, type TestStack } from '../helpers/local-stack.ts';
import { LEAK, rawMcp, toolCall } from './budget.ts';

// Forged credentials at both doors: the consent API (a human's Cognito ID token) and the MCP
// endpoint (an agent's API key). Every forgery is refused with 401/403 and changes nothing.

let stack: TestStack;
let idToken: string;
let accessToken: string;
let outsiderToken: string;

beforeAll(async () => {
  stack = await startTestStack();
  const cog = stack.cognito!;
  const signIn = (username: string, password: string) => signInWithPkce({ cognitoUrl: cog.url, clientId: cog.clientId, redirectUri: stack.consentUiUrl, username, password });
  ({ idToken, accessToken } = await signIn(cog.approverUsername, cog.approverPassword));
  const admin = new ApproverAdmin(cognitoClient({ region: 'us-east-1', endpoint: cog.url }), cog.userPoolId);
  const pw = `Pw-${randomBytes(9).toString('base64url')}1a`;
  await admin.add('mallory@example.com', { password: pw });
  await admin.remove('mallory@example.com', { keepUser: true });
  ({ idToken: outsiderToken } = await signIn('mallory@example.com', pw));
}, 60_000);
afterAll(async () => {
  await stack?.stop();
});

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

async function newRequest(): Promise<RequestId> {
  return (await stack.deps.service.requestAuthorization({ agent_id: parseAgentId('demo-agent'), action: 'wire money', permissions: ['payments:send'], justification: 'invoice', ttl_minutes: 10 })).request_id;
}

async function forgedTokens(): Promise<[string, string][]> {
  const header = decodeProtectedHeader(idToken);
  const claims = decodeJwt(idToken);
  const [h, p] = idToken.split('.');
  const attacker = await generateKeyPair('RS256', { extractable: true });
  const attackerJwk = await exportJWK(attacker.publicKey);
  const jwks = (await (await fetch(`${stack.cognito!.issuer}/.well-known/jwks.json`)).json()) as { keys: { n: string }[] };
  const hsSecret = new TextEncoder().encode(jwks.keys[0]!.n);
  const now = Math.floor(Date.now() / 1000);
  const sign = (hdr: Record<string, unknown>, body: Record<string, unknown>, key: CryptoKey | Uint8Array) => new SignJWT(body).setProtectedHeader(hdr as never).sign(key);
  return [
    ['alg none', `${b64({ alg: 'none', typ: 'JWT' })}.${p}.`],
    ['alg none, upper case', `${b64({ alg: 'NONE' })}.${p}.`],
    ['HS256 with the pool public key as secret (algorithm confusion)', await sign({ alg: 'HS256', kid: header.kid }, claims, hsSecret)],
    ['RS256 by another key under the pool key id', await sign({ alg: 'RS256', kid: header.kid }, claims, attacker.privateKey)],
    ['RS256 with the attacker key embedded (jwk header)', await sign({ alg: 'RS256', jwk: attackerJwk }, claims, attacker.privateKey)],
    ['RS256 with a jku pointing elsewhere', await sign({ alg: 'RS256', kid: 'x', jku: 'http://127.0.0.1:9/jwks.json' }, claims, attacker.privateKey)],
    ['payload changed, signature kept (sub)', `${h}.${b64({ ...claims, sub: 'someone-else' })}.${idToken.split('.')[2]}`],
    ['payload changed, signature kept (groups)', `${outsiderToken.split('.')[0]}.${b64({ ...decodeJwt(outsiderToken), 'cognito:groups': ['approvers'] })}.${outsiderToken.split('.')[2]}`],
    ['signature stripped', `${h}.${p}.`],
    ['two tokens glued', `${idToken}.${idToken}`],
    ['the access token', accessToken],
    ['an expired forgery with the right claims', await sign({ alg: 'RS256', kid: header.kid }, { ...claims, exp: now - 10 }, attacker.privateKey)],
    ['a huge token', `${h}.${'A'.repeat(200_000)}.${idToken.split('.')[2]}`],
    ["the agent's API key", stack.agentApiKey],
    ['garbage', 'not-a-token'],
  ];
}

describe('consent API forgeries', () => {
  it('every forged token is refused (401) on read, approve and deny, and the request stays pending', async () => {
    const id = await newRequest();
    const tokens = await forgedTokens();
    expect(tokens.length).toBeGreaterThanOrEqual(15);
    for (const [name, token] of tokens) {
      for (const [method, path] of [['GET', ''], ['POST', '/approve'], ['POST', '/deny']] as const) {
        const res = await fetch(`${stack.appUrl}/api/requests/${id}${path}`, {
          method,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          ...(method === 'POST' ? { body: JSON.stringify({ request_id: id }) } : {}),
        });
        const text = await res.text();
        // (a header too large for the HTTP server is refused before ackd sees it: 431)
        expect(res.status, `${name} ${method} ${path}: ${text.slice(0, 200)}`).toBe(name === 'a huge token' && res.status === 431 ? 431 : 401);
        expect(text).not.toMatch(LEAK);
      }
    }
    expect((await stack.deps.service.get(id)).decision).toBe('pending');
  });

  it('a real user outside the approvers group is refused (403); a token in the query or a cookie counts for nothing', async () => {
    const id = await newRequest();
    const outsider = await fetch(`${stack.appUrl}/api/requests/${id}/approve`, { method: 'POST', headers: { authorization: `Bearer ${outsiderToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ request_id: id }) });
    expect(outsider.status).toBe(403);
    for (const init of [{ url: `${stack.appUrl}/api/requests/${id}/approve?access_token=${idToken}`, headers: {} as Record<string, string> }, { url: `${stack.appUrl}/api/requests/${id}/approve`, headers: { cookie: `id_token=${idToken}` } }]) {
      const res = await fetch(init.url, { method: 'POST', headers: { ...init.headers, 'content-type': 'application/json' }, body: JSON.stringify({ request_id: id }) });
      expect(res.status).toBe(401);
    }
    expect((await stack.deps.service.get(id)).decision).toBe('pending');
  });
});

describe('MCP key forgeries', () => {
  it('no key, a malformed key, a well-formed unknown key, a revoked key, or the key elsewhere than the header: 401 and nothing created', async () => {
    const { apiKey: revoked, entry } = await (await import('../../lambdas/core/apikeys.ts')).createApiKey(stack.deps.apiKeys, parseAgentId('demo-agent'), stack.clock);
    await stack.deps.apiKeys.revoke(entry.key_id, stack.clock.now());
    const before = (await stack.deps.store.listByAgent(parseAgentId('demo-agent'), { limit: 1000 })).length;
    const call = toolCall(1, 'request_authorization', { agent_id: 'demo-agent', action: 'x', permissions: ['a:b'], justification: 'y', ttl_minutes: 5 });
    const keys: [string, string | null, Record<string, string>][] = [
      ['none', null, {}],
      ['malformed', 'ackd_short', {}],
      ['unknown, well-formed', `ackd_${randomBytes(32).toString('base64url')}`, {}],
      ['revoked', revoked, {}],
      ['the key with one character changed', stack.agentApiKey.slice(0, -1) + (stack.agentApiKey.endsWith('A') ? 'B' : 'A'), {}],
      ['its SHA-256 instead of the key', createHash('sha256').update(stack.agentApiKey).digest('hex'), {}],
      ['basic auth', null, { authorization: `Basic ${Buffer.from(`demo-agent:${stack.agentApiKey}`).toString('base64')}` }],
      ['a cookie', null, { cookie: `key=${stack.agentApiKey}` }],
      ['two bearer tokens', null, { authorization: `Bearer ${stack.agentApiKey} Bearer x` }],
    ];
    for (const [name, key, headers] of keys) {
      const res = await rawMcp(stack.mcpUrl, key, call, { headers });
      expect(res.status, `${name}: ${res.text}`).toBe(401);
      expect(res.text).not.toMatch(LEAK);
    }
    const withQuery = await rawMcp(`${stack.mcpUrl}?api_key=${stack.agentApiKey}`, null, call);
    expect(withQuery.status).toBe(401);
    expect((await stack.deps.store.listByAgent(parseAgentId('demo-agent'), { limit: 1000 })).length).toBe(before);
  });

  it("a valid key cannot act as another agent, nor read or revoke another agent's request", async () => {
    const other = (await stack.deps.service.requestAuthorization({ agent_id: parseAgentId('other-agent'), action: 'x', permissions: ['a:b'], justification: 'y', ttl_minutes: 5 })).request_id;
    const as = await rawMcp(stack.mcpUrl, stack.agentApiKey, toolCall(1, 'request_authorization', { agent_id: 'other-agent', action: 'x', permissions: ['a:b'], justification: 'y', ttl_minutes: 5 }));
    expect(JSON.stringify(as.json)).toContain('ERR_FORBIDDEN');
    const read = await rawMcp(stack.mcpUrl, stack.agentApiKey, toolCall(2, 'check_authorization', { request_id: other }));
    expect(JSON.stringify(read.json)).toContain('ERR_NOT_FOUND');
    const revoke = await rawMcp(stack.mcpUrl, stack.agentApiKey, toolCall(3, 'revoke_authorization', { request_id: other, svid_id: 'ab' }));
    expect(JSON.stringify(revoke.json)).toContain('ERR_NOT_FOUND');
    expect((await stack.deps.service.get(other)).decision).toBe('pending');
  });
});
