import { checkpointPublicKey } from '../../lambdas/core/audit/signing.ts';
/**
 * Issue 17 end to end against a real AWS API emulator (moto's server, IAM enforcement on): an
 * approved `aws:role/demo-role` becomes STS credentials that can write the demo bucket and nothing
 * else; every other call gets none; revocation denies the issued credentials on the emulator.
 *
 * What moto enforces (docs/aws.md, "Locally"): SigV4 signatures, the role's trust policy principal
 * on AssumeRole, and the role's identity policies (Allow and Deny, by action and resource) on every
 * S3 call of a session. What it does not: it keeps no session tags (so the tags are asserted on the
 * AssumeRole call moto received, from its recorder), ignores condition operators other than
 * StringEquals on sts:ExternalId (so the revocation deny, conditioned on aws:PrincipalTag, refuses
 * every session of the role there, not only the revoked request's), and ignores session policies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { IAMClient, ListRolePoliciesCommand } from '@aws-sdk/client-iam';
import { createApiKey } from '../../lambdas/core/apikeys.ts';
import { parseAgentId, parseRequestId, parseSvidId } from '../../lambdas/core/ids.ts';
import { fetchAwsCredentials, type CredentialProcessOutput } from '../../lambdas/cli/aws.ts';
import { signSvidProof, POP_SCHEME } from '../../lambdas/http/svid-pop.ts';
import { AWS_CREDENTIALS_PATH, awsCredentialsApp } from '../../lambdas/http/aws-routes.ts';
import { buildAwsCredentialsDeps } from '../../lambdas/adapters/aws/deps.ts';
import { buildServiceDeps } from '../../lambdas/deps.ts';
import { createServiceApp } from '../../lambdas/app.ts';
import { isAckdError } from '../../lambdas/core/errors.ts';
import { startTestStack, structured, errorText, type TestStack } from '../helpers/local-stack.ts';
import { startTestMoto, MOTO_INSTALL_TIMEOUT_MS, type TestMoto } from '../helpers/moto.ts';
import { runAckd, cliEnv } from '../helpers/cli.ts';
import { synthStack, tableActionsGranted } from '../helpers/synth-stack.ts';
import { StoreCallCounter } from '../bench/store-calls.ts';

let moto: TestMoto;
let stack: TestStack;
let mcp: Client;
let tmp: string;

beforeAll(async () => {
  moto = await startTestMoto();
  stack = await startTestStack({ aws: moto.config, limits: { requestsPerMinute: 1000, openPending: 100 } });
  mcp = await stack.client();
  tmp = await mkdtemp(join(tmpdir(), 'ackd-aws-'));
}, MOTO_INSTALL_TIMEOUT_MS);

afterAll(async () => {
  await stack?.stop();
  await moto?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const ROLE = 'demo-role';

async function request(client: Client, agentId: string, over: { permissions?: string[]; ttl_minutes?: number } = {}): Promise<string> {
  const r = structured<{ request_id: string }>(
    await client.callTool({ name: 'request_authorization', arguments: { agent_id: agentId, action: 'terraform apply --target=prod', permissions: [`aws:role/${ROLE}`], justification: 'deploy', ttl_minutes: 30, ...over } }),
  );
  return r.request_id;
}

/** A request approved by an operator, and its SVID as check_authorization hands it over. */
async function approvedSvid(client = mcp, agentId = stack.agentId, over: { permissions?: string[]; ttl_minutes?: number } = {}): Promise<{ requestId: string; svid: string; svidId: string }> {
  const requestId = await request(client, agentId, over);
  await stack.deps.service.decide(parseRequestId(requestId), 'approved', 'operator:alice');
  const c = structured<{ svid: string; svid_id: string }>(await client.callTool({ name: 'check_authorization', arguments: { request_id: requestId } }));
  return { requestId, svid: c.svid, svidId: c.svid_id };
}

const ask = (svid: string, requestId: string, role = ROLE) => fetchAwsCredentials({ svidPem: svid, requestId, role, baseUrl: stack.appUrl, now: stack.clock.now() });

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isAckdError(e)) return e.code;
    throw e;
  }
  throw new Error('expected the broker to refuse, but it issued credentials');
}

function s3With(c: CredentialProcessOutput): S3Client {
  return new S3Client({ region: moto.demo.region, endpoint: moto.demo.endpoint, forcePathStyle: true, credentials: { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken } });
}

const put = (c: CredentialProcessOutput, bucket = moto.demo.bucket, key = 'deploy/plan.txt') => s3With(c).send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'terraform plan' }));

async function s3Refused(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as Error).name;
  }
  return 'allowed';
}

const postRaw = (headers: Record<string, string>, body: unknown) =>
  fetch(`${stack.appUrl}${AWS_CREDENTIALS_PATH}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

describe('AWS credentials for exactly the approved role', () => {
  it('an approved aws:role/demo-role gets credentials that write the demo bucket, and nothing else', async () => {
    const { requestId, svid } = await approvedSvid();
    const creds = await ask(svid, requestId);
    expect(creds.Version).toBe(1);
    expect(creds.AccessKeyId).toMatch(/^[A-Z0-9]{16,128}$/);
    // No longer than the approval: 30 minutes approved, asked at once → at most 1800 s.
    const lasts = Date.parse(creds.Expiration) - Date.now();
    expect(lasts).toBeGreaterThan(900_000 - 60_000);
    expect(lasts).toBeLessThanOrEqual(1800_000 + 60_000);
    await put(creds);
    expect(await s3Refused(put(creds, 'some-other-bucket'))).toBe('AccessDenied');
    // The issuance is an audit event of the request, and the chain still verifies.
    await stack.settled();
    const events: { type: string; request_id: string; reason: string | null }[] = [];
    for await (const l of stack.deps.audit.export({})) if (l.kind === 'event' && l.request_id === requestId) events.push(l);
    const issued = events.find((e) => e.type === 'aws_credentials_issued');
    expect(issued?.reason).toContain(`role ${ROLE}`);
    expect(issued?.reason).toContain(creds.AccessKeyId);
    const publicKey = checkpointPublicKey(await stack.deps.audit.publicKeyPem());
    expect((await stack.deps.audit.verifyLive({}, { publicKey })).problems).toEqual([]);
  });

  it('the AssumeRole call names the request and carries the session tags (transitive), as moto received it', async () => {
    const { requestId, svid } = await approvedSvid();
    await ask(svid, requestId);
    const call = (await moto.recorded()).find((r) => r.body.includes('Action=AssumeRole') && r.body.includes(`RoleSessionName=${requestId}`));
    expect(call, 'moto received the AssumeRole call').toBeDefined();
    const p = new URLSearchParams(call!.body);
    const tags = new Map<string, string>();
    for (let i = 1; p.has(`Tags.member.${i}.Key`); i++) tags.set(p.get(`Tags.member.${i}.Key`)!, p.get(`Tags.member.${i}.Value`)!);
    expect(Object.fromEntries(tags)).toEqual({ ackd_request_id: requestId, ackd_agent: stack.agentId, ackd_approver: 'operator:alice' });
    const transitive = [1, 2, 3].map((i) => p.get(`TransitiveTagKeys.member.${i}`));
    expect(transitive.sort()).toEqual(['ackd_agent', 'ackd_approver', 'ackd_request_id']);
    expect(p.get('RoleArn')).toBe(moto.demo.roleArn);
    expect(Number(p.get('DurationSeconds'))).toBeLessThanOrEqual(1800);
  });

  it('ackd aws credential-process prints the credential_process JSON the AWS tools read', async () => {
    const { requestId, svid } = await approvedSvid();
    const file = join(tmp, 'svid.pem');
    await writeFile(file, svid, { mode: 0o600 });
    const r = await runAckd(cliEnv(stack), 'aws', 'credential-process', '--svid', file, '--request-id', requestId, '--role', ROLE, '--url', stack.appUrl);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as CredentialProcessOutput;
    expect(Object.keys(out).sort()).toEqual(['AccessKeyId', 'Expiration', 'SecretAccessKey', 'SessionToken', 'Version']);
    await put(out, moto.demo.bucket, 'from-credential-process.txt');
    // The ~/.aws/config lines that run it.
    const profile = await runAckd(cliEnv(stack), 'aws', 'profile', '--svid', file, '--request-id', requestId, '--role', ROLE, '--url', stack.appUrl);
    expect(profile.code, profile.stderr).toBe(0);
    expect(profile.stdout).toMatch(new RegExp(`^\\[profile ackd-${ROLE}\\]\ncredential_process = \\S+/bin/ackd\\.js aws credential-process --svid ${file} --request-id ${requestId} --role ${ROLE} --url ${stack.appUrl}\nregion = us-east-1\n$`));
    // A key file others can read is refused before anything is sent.
    await chmod(file, 0o644);
    const loose = await runAckd(cliEnv(stack), 'aws', 'credential-process', '--svid', file, '--request-id', requestId, '--role', ROLE, '--url', stack.appUrl);
    expect(loose.code).toBe(2);
    expect(loose.stderr).toContain('chmod 600');
  });
});

describe('on AWS, its role allows what the broker does to the table', () => {
  // dynalite checks no IAM: each DynamoDB action dynalite receives while credentials are issued
  // (and refused) must be granted to the AWS credentials function's role in a stack synthesized
  // with awsRoles (the issuance's store calls are the core broker's, as in that function).
  it('an issuance and a refusal make only granted calls', async () => {
    const { requestId, svid } = await approvedSvid();
    await stack.settled();
    await stack.deps.sequencerLoop.stop();
    const counter = StoreCallCounter.forEndpoint(stack.dynamodbEndpoint);
    let made: string[];
    try {
      expect((await ask(svid, requestId)).AccessKeyId).toBeTruthy();
      expect(await refusal(ask(svid, requestId, 'not-in-the-map'))).toMatch(/^ERR_/);
      made = Object.keys(counter.snapshot().byOp).map((op) => `dynamodb:${op}`).sort();
    } finally {
      counter.stop();
      stack.deps.sequencerLoop.start();
    }
    expect(made).toEqual(expect.arrayContaining(['dynamodb:GetItem', 'dynamodb:UpdateItem']));
    const { stack: cdk, t } = synthStack({ awsRoles: { [ROLE]: 'arn:aws:iam::111122223333:role/demo-role' } });
    const granted = tableActionsGranted(cdk, t, cdk.api.awsCredentialsFunction!);
    expect(made.filter((x) => !granted.has(x)), `made by the broker but not granted to its role (granted: ${[...granted].sort().join(', ')})`).toEqual([]);
  }, 60_000);
});

describe('no credentials', () => {
  it('for a role the request was not approved for, or one not in the map', async () => {
    const { requestId, svid } = await approvedSvid(mcp, stack.agentId, { permissions: ['db:write'] });
    expect(await refusal(ask(svid, requestId))).toBe('ERR_FORBIDDEN');
    expect(await refusal(ask(svid, requestId, 'admin-role'))).toBe('ERR_INVALID_INPUT');
  });

  it('unknown role names and approvals shorter than STS allows are refused at request time', async () => {
    const bad = await mcp.callTool({ name: 'request_authorization', arguments: { agent_id: stack.agentId, action: 'x', permissions: ['db:read', 'aws:role/admin'], justification: 'x', ttl_minutes: 30 } });
    expect(errorText(bad)).toMatch(/ERR_INVALID_INPUT: permissions\[1\]: "aws:role\/admin" names no AWS role this ackd may open \(known roles: demo-role\)/);
    const short = await mcp.callTool({ name: 'request_authorization', arguments: { agent_id: stack.agentId, action: 'x', permissions: [`aws:role/${ROLE}`], justification: 'x', ttl_minutes: 10 } });
    expect(errorText(short)).toMatch(/ERR_INVALID_INPUT: ttl_minutes: must be at least 15/);
  });

  it('for a denied or pending request (the agent has no SVID of it; another request\'s SVID is refused)', async () => {
    const { svid } = await approvedSvid();
    const pending = await request(mcp, stack.agentId);
    expect(await refusal(ask(svid, pending))).toBe('ERR_FORBIDDEN');
    const denied = await request(mcp, stack.agentId);
    await stack.deps.service.decide(parseRequestId(denied), 'denied', 'operator:alice');
    expect(await refusal(ask(svid, denied))).toBe('ERR_FORBIDDEN');
  });

  it("for another agent's SVID", async () => {
    const other = parseAgentId('other-agent');
    const { apiKey } = await createApiKey(stack.deps.apiKeys, other, stack.deps.clock);
    const otherMcp = await stack.client(apiKey);
    const theirs = await approvedSvid(otherMcp, other);
    const mine = await approvedSvid();
    // Their SVID, naming my request: refused (the SVID names its own request).
    expect(await refusal(ask(theirs.svid, mine.requestId))).toBe('ERR_FORBIDDEN');
    // My chain in the header, signed with their key: the signature is not the chain's.
    const [myCerts] = mine.svid.split(/(?=-----BEGIN PRIVATE KEY-----)/);
    const theirKey = theirs.svid.slice(theirs.svid.indexOf('-----BEGIN PRIVATE KEY-----'));
    expect(await refusal(ask(`${myCerts}${theirKey}`, mine.requestId))).toBe('ERR_UNAUTHENTICATED');
  });

  it('for a replayed, unsigned, tampered, stale or misaddressed proof', async () => {
    const { requestId, svid } = await approvedSvid();
    const aud = `${stack.appUrl}${AWS_CREDENTIALS_PATH}`;
    const proof = await signSvidProof(svid, { requestId, role: ROLE, aud, now: stack.clock.now() });
    const body = { request_id: requestId, role: ROLE };
    expect((await postRaw({ authorization: `${POP_SCHEME} ${proof}` }, body)).status).toBe(200);
    const replay = await postRaw({ authorization: `${POP_SCHEME} ${proof}` }, body);
    expect(replay.status).toBe(403);
    expect(((await replay.json()) as { error: { message: string } }).error.message).toContain('used before');
    const unsigned = await postRaw({}, body);
    expect(unsigned.status).toBe(401);
    expect(unsigned.headers.get('www-authenticate')).toBe(POP_SCHEME);
    const [h, , s] = proof.split('.');
    const forged = Buffer.from(JSON.stringify({ request_id: requestId, role: ROLE, iat: Math.floor(stack.clock.now().getTime() / 1000), jti: 'x'.repeat(32), aud })).toString('base64url');
    expect((await postRaw({ authorization: `${POP_SCHEME} ${h}.${forged}.${s}` }, body)).status).toBe(401);
    const stale = await signSvidProof(svid, { requestId, role: ROLE, aud, now: new Date(stack.clock.now().getTime() - 120_000) });
    expect((await postRaw({ authorization: `${POP_SCHEME} ${stale}` }, body)).status).toBe(401);
    const elsewhere = await signSvidProof(svid, { requestId, role: ROLE, aud: 'https://other.example/v1/aws/credentials', now: stack.clock.now() });
    expect((await postRaw({ authorization: `${POP_SCHEME} ${elsewhere}` }, body)).status).toBe(401);
    const bearer = await postRaw({ authorization: `Bearer ${stack.agentApiKey}` }, body);
    expect(bearer.status).toBe(401);
  });

  it('for an approval with less than 900 s left, or expired (the clock moves, nobody sleeps)', async () => {
    const { requestId, svid } = await approvedSvid(mcp, stack.agentId, { ttl_minutes: 15 });
    stack.clock.advanceMinutes(6);
    const tooShort = ask(svid, requestId);
    expect(await refusal(tooShort)).toBe('ERR_EXPIRED');
    stack.clock.advanceMinutes(10);
    expect(await refusal(ask(svid, requestId))).toBe('ERR_UNAUTHENTICATED'); // the SVID itself has expired
    stack.clock.advanceMinutes(-16);
  });
});

describe('revocation bites on AWS', () => {
  // In moto the deny refuses every session of the role (it does not evaluate aws:PrincipalTag):
  // the test that needs a session to work before revoking runs first, and sweeps its deny away.
  const denies = async () => (await new IAMClient({ region: moto.demo.region, endpoint: moto.demo.endpoint, credentials: moto.demo.admin }).send(new ListRolePoliciesCommand({ RoleName: ROLE }))).PolicyNames ?? [];

  it('the agent revokes: the credentials it already has are refused by the emulator; the sweep removes the deny once its sessions are over', async () => {
    const { requestId, svid, svidId } = await approvedSvid();
    const creds = await ask(svid, requestId);
    await put(creds, moto.demo.bucket, 'before-revocation.txt');
    structured(await mcp.callTool({ name: 'revoke_authorization', arguments: { request_id: requestId, svid_id: svidId } }));
    const name = (await denies()).find((n) => n.startsWith(`ackd-revoked-${requestId}-`));
    expect(name).toBeDefined();
    // IAM enforcement in moto: the role's Deny applies to the issued session at once.
    expect(await s3Refused(put(creds, moto.demo.bucket, 'after-revocation.txt'))).toBe('AccessDenied');
    expect(await refusal(ask(svid, requestId))).toBe('ERR_NOT_APPROVED');
    // Not before the request's last session can have ended (SVID end + 5 min)...
    await stack.deps.awsBroker!.sweep();
    expect(await denies()).toContain(name);
    // ...then removed.
    stack.clock.advanceMinutes(36);
    const swept = await stack.deps.awsBroker!.sweep();
    expect(swept.removed).toBeGreaterThanOrEqual(1);
    expect((await denies()).filter((n) => n.startsWith('ackd-revoked-'))).toEqual([]);
  });

  it('an approver revokes: the request is denied on the role and no new credentials are issued', async () => {
    const { requestId, svid } = await approvedSvid();
    await ask(svid, requestId);
    await stack.deps.service.revokeApproval(parseRequestId(requestId), 'approver-sub-1', 'approver@ackd.local', 'wrong target');
    expect((await denies()).some((n) => n.startsWith(`ackd-revoked-${requestId}-`))).toBe(true);
    expect(await refusal(ask(svid, requestId))).toBe('ERR_NOT_APPROVED');
  });

  it('an operator revokes from a process without the role map: the sweep puts the deny', async () => {
    const { requestId, svid } = await approvedSvid();
    await ask(svid, requestId);
    // The CLI against this stack has no AWS configuration: it revokes, and cannot deny.
    const r = await runAckd(cliEnv(stack), 'requests', 'revoke', requestId, '--as', 'bob');
    expect(r.code, r.stderr).toBe(0);
    expect((await denies()).some((n) => n.startsWith(`ackd-revoked-${requestId}-`))).toBe(false);
    const swept = await stack.deps.awsBroker!.sweep();
    expect(swept.denied).toBe(1);
    expect((await denies()).some((n) => n.startsWith(`ackd-revoked-${requestId}-`))).toBe(true);
  });
});

// Runs last: its revocation puts a deny that, in moto, refuses every session of the role.
describe('on AWS the broker is its own function (issue 15): both composition roots on this table and emulator', () => {
  const BROKER_URL = 'https://broker.ackd.test';
  const brokerApp = () => awsCredentialsApp(buildAwsCredentialsDeps(stack.deps.config, { minter: stack.deps.minter, logger: stack.deps.logger, clock: stack.clock, aws: moto.config }));
  const viaApp = (app: { fetch: (r: Request) => Response | Promise<Response> }): typeof fetch => (async (url: string | URL | Request, init?: RequestInit) => app.fetch(new Request(url, init))) as typeof fetch;

  it('the AWS credentials function issues credentials for an approved SVID (STS on the emulator), once per proof, and serves nothing else', async () => {
    const app = brokerApp();
    const { requestId, svid } = await approvedSvid();
    const creds = await fetchAwsCredentials({ svidPem: svid, requestId, role: ROLE, baseUrl: BROKER_URL, now: stack.clock.now(), fetch: viaApp(app) });
    expect(creds.AccessKeyId).toMatch(/^[A-Z0-9]{16,128}$/);
    expect((await moto.recorded()).some((r) => r.body.includes('Action=AssumeRole') && r.body.includes(`RoleSessionName=${requestId}`))).toBe(true);
    // (The role is denied by the revocations above, which in moto refuses every session: no S3 call here.)
    // The same proof twice: the second is a replay.
    const proof = await signSvidProof(svid, { requestId, role: ROLE, aud: `${BROKER_URL}${AWS_CREDENTIALS_PATH}`, now: stack.clock.now() });
    const send = () => app.fetch(new Request(`${BROKER_URL}${AWS_CREDENTIALS_PATH}`, { method: 'POST', headers: { authorization: `${POP_SCHEME} ${proof}`, 'content-type': 'application/json' }, body: JSON.stringify({ request_id: requestId, role: ROLE }) }));
    expect((await send()).status).toBe(200);
    const replay = await send();
    expect(replay.status).toBe(403);
    expect(((await replay.json()) as { error: { code: string } }).error.code).toBe('ERR_FORBIDDEN');
    // It serves nothing else.
    const other = await app.fetch(new Request(`${BROKER_URL}/mcp`, { method: 'POST' }));
    expect(other.status).toBe(404);
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe('ERR_NOT_FOUND');
  });

  it('the MCP function has no broker and no /v1/aws route, and its revoke_authorization still denies the request on the role (IAM)', async () => {
    const mcpDeps = buildServiceDeps(stack.deps.config, { minter: stack.deps.minter, logger: stack.deps.logger, clock: stack.clock, aws: moto.config });
    expect(mcpDeps.awsBroker).toBeUndefined();
    const res = await createServiceApp(mcpDeps).fetch(new Request(`${BROKER_URL}${AWS_CREDENTIALS_PATH}`, { method: 'POST', body: '{}' }));
    expect(res.status).toBe(404);
    const { requestId, svid, svidId } = await approvedSvid();
    await fetchAwsCredentials({ svidPem: svid, requestId, role: ROLE, baseUrl: BROKER_URL, now: stack.clock.now(), fetch: viaApp(brokerApp()) });
    await mcpDeps.service.revoke(parseAgentId(stack.agentId), parseRequestId(requestId), parseSvidId(svidId));
    const denies = (await new IAMClient({ region: moto.demo.region, endpoint: moto.demo.endpoint, credentials: moto.demo.admin }).send(new ListRolePoliciesCommand({ RoleName: ROLE }))).PolicyNames ?? [];
    expect(denies.some((n) => n.startsWith(`ackd-revoked-${requestId}-`))).toBe(true);
    expect(await refusal(fetchAwsCredentials({ svidPem: svid, requestId, role: ROLE, baseUrl: BROKER_URL, now: stack.clock.now(), fetch: viaApp(brokerApp()) }))).toBe('ERR_NOT_APPROVED');
  });
});
