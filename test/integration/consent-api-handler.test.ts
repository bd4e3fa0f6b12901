import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAgentId } from '../../lambdas/core/ids.ts';
import { stackEnv } from '../helpers/cli.ts';
import { signInWithPkce } from '../helpers/cognito-token.ts';
import { startTestStack, type TestStack } from '../helpers/local-stack.ts';

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
