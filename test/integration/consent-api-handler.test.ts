import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAgentId } from '../../lambdas/core/ids.ts';
import { stackEnv } from '../helpers/cli.ts';
import { signInWithPkce } from '../helpers/cognito-token.ts';
import { startTestStack, type TestStack } from '../helpers/local-stack.ts';
import { synthStack, tableActionsGranted } from '../helpers/synth-stack.ts';
import { StoreCallCounter } from '../bench/store-calls.ts';
import { SoftPasskey } from '../helpers/soft-passkey.ts';

/** The consent-api Lambda entry, from source, answering HTTP API (v2) events against real dynalite + cognito-local. */
let stack: TestStack;
let handler: (event: unknown, ctx: unknown) => Promise<{ statusCode: number; headers: Record<string, string>; body: string }>;
let token: string;

function event(method: string, path: string, headers: Record<string, string> = {}, body?: string) {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: '',
    headers: { host: 'consent.example.com', ...headers },
    requestContext: { http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' }, domainName: 'consent.example.com', requestId: 'r1', stage: '$default', timeEpoch: Date.now() },
    isBase64Encoded: false,
    ...(body ? { body } : {}),
  };
}

beforeAll(async () => {
  stack = await startTestStack();
  const cog = stack.cognito!;
  Object.assign(process.env, {
    ...stackEnv(stack),
    ACKD_COGNITO_ISSUER: cog.issuer,
    ACKD_COGNITO_CLIENT_ID: cog.clientId,
    ACKD_LOG_LEVEL: 'error',
  });
  ({ handler } = (await import('../../lambdas/handlers/consent-api.ts')) as unknown as { handler: typeof handler });
  ({ idToken: token } = await signInWithPkce({ cognitoUrl: cog.url, clientId: cog.clientId, redirectUri: stack.consentUiUrl, username: cog.approverUsername, password: cog.approverPassword }));
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

describe('consent-api Lambda handler', () => {
  it('401 without a token and with an agent key', async () => {
    const { request_id } = await stack.deps.service.requestAuthorization({ agent_id: parseAgentId('demo-agent'), action: 'a', permissions: ['p'], justification: 'j', ttl_minutes: 5 });
    const none = await handler(event('GET', `/api/requests/${request_id}`), {});
    expect(none.statusCode).toBe(401);
    const agent = await handler(event('GET', `/api/requests/${request_id}`, { authorization: `Bearer ${stack.agentApiKey}` }), {});
    expect(agent.statusCode).toBe(401);
  });

  it('an approver reads and approves through the Lambda', async () => {
    const { request_id } = await stack.deps.service.requestAuthorization({ agent_id: parseAgentId('demo-agent'), action: 'a', permissions: ['p'], justification: 'j', ttl_minutes: 5 });
    const get = await handler(event('GET', `/api/requests/${request_id}`, { authorization: `Bearer ${token}` }), {});
    expect(get.statusCode).toBe(200);
    expect(get.headers['cache-control']).toBe('no-store');
    expect(JSON.parse(get.body).request).toMatchObject({ request_id, status: 'pending', decidable: true });
    const post = await handler(event('POST', `/api/requests/${request_id}/approve`, { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, JSON.stringify({ request_id, view_sha256: JSON.parse(get.body).request.view_sha256 })), {});
    expect(post.statusCode).toBe(200);
    expect((await stack.deps.service.get(request_id)).decision).toBe('approved');
  });
});

describe('on AWS, its role allows what the consent function does to the table', () => {
  // dynalite checks no IAM: without this a missing grant shows only on AWS (as the sweeper's
  // BatchWriteItem once did). Every route the function serves is called once, and each DynamoDB
  // action dynalite receives (its X-Amz-Target) must be granted to the consent function's role in
  // the synthesized stack.
  it('reading, approving, denying, the dashboard, revoking, registering and removing a passkey (with its removal challenge) and a decision challenge make only granted calls', async () => {
    const agent = parseAgentId('demo-agent');
    const open = async (i: number): Promise<string> => (await stack.deps.service.requestAuthorization({ agent_id: agent, action: `iam ${i}`, permissions: ['p'], justification: 'j', ttl_minutes: 5 })).request_id;
    const [a, b, c] = [await open(0), await open(1), await open(2)];
    // The local stack's sequencer and mail (the sweeper's work on AWS) are paused: only the function's calls are counted.
    await stack.settled();
    await stack.deps.sequencerLoop.stop();
    const counter = StoreCallCounter.forEndpoint(stack.dynamodbEndpoint);
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await handler(event(method, path, auth, body === undefined ? undefined : JSON.stringify(body)), {});
      expect(res.statusCode, `${method} ${path}: ${res.body}`).toBeLessThan(300);
      return JSON.parse(res.body) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    };
    let made: string[];
    try {
      const viewOf = async (id: string) => (await call('GET', `/api/requests/${id}`)).request.view_sha256 as string;
      await call('POST', `/api/requests/${a}/approve`, { request_id: a, view_sha256: await viewOf(a) });
      await call('POST', `/api/requests/${b}/deny`, { request_id: b, view_sha256: await viewOf(b) });
      await call('GET', '/api/requests');
      await call('POST', `/api/requests/${a}/revoke`, { request_id: a, reason: 'iam check' });
      // The relying party is the consent URL the function is configured with (ACKD_CONSENT_URL).
      const rp = new URL(stack.appUrl);
      const key = new SoftPasskey(rp.hostname, rp.origin);
      const { nonce } = await call('POST', '/api/passkeys/options', {});
      await call('POST', '/api/passkeys', { nonce, response: key.register(nonce), label: 'iam check' });
      expect((await call('GET', '/api/passkeys')).passkeys).toHaveLength(1);
      await call('POST', `/api/requests/${c}/challenge`, { request_id: c, decision: 'approved', view_sha256: await viewOf(c) });
      // Removing it is confirmed with a passkey: its challenge, then DELETE with the assertion.
      const removal = await call('POST', `/api/passkeys/${key.credentialId}/challenge`, {});
      await call('DELETE', `/api/passkeys/${key.credentialId}`, { confirm: key.assert(removal.challenge as string, removal.nonce as string) });
      made = Object.keys(counter.snapshot().byOp).map((op) => `dynamodb:${op}`).sort();
    } finally {
      counter.stop();
      stack.deps.sequencerLoop.start();
    }
    expect(made).toEqual(expect.arrayContaining(['dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:Query']));
    const { stack: cdk, t } = synthStack();
    const granted = tableActionsGranted(cdk, t, cdk.api.consentFunction);
    expect(made.filter((x) => !granted.has(x)), `made by the consent function but not granted to its role (granted: ${[...granted].sort().join(', ')})`).toEqual([]);
  }, 60_000);
});
