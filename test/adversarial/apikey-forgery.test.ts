import { randomBytes } from 'node:crypto';
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamoClient } from '../../lambdas/adapters/dynamodb/client.ts';
import { documentClient } from '../../lambdas/adapters/dynamodb/send.ts';
import { createApiKey, hashApiKey } from '../../lambdas/core/apikeys.ts';
import { parseAgentId } from '../../lambdas/core/ids.ts';
import { cliEnv, runAckd } from '../helpers/cli.ts';
import { startTestStack, type TestStack } from '../helpers/local-stack.ts';

// The insider who can write the DynamoDB table but does not hold the seal key (on AWS a KMS HMAC
// key only ackd's functions may use) tries to become an agent: a key entry of their own for a
// trusted agent, or their own genuine key moved to that agent. Neither authenticates; the MCP
// endpoint answers 401 as for any unknown key, the log says which key and why, and the operator
// sees the entry marked UNSEALED. (A real DynamoDB API: dynalite, written with the AWS SDK.)

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

const raw = () => documentClient(dynamoClient({ region: 'us-east-1', endpoint: stack.dynamodbEndpoint }));
const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
const status = async (apiKey: string) =>
  (await fetch(stack.mcpUrl, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${apiKey}` }, body: JSON.stringify(initialize) })).status;
const refusedLines = () => stack.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.code === 'ERR_APIKEY_UNSEALED');

describe('a table writer cannot make an agent key', () => {
  it('a key entry written into the table for a trusted agent gets 401, is logged, and is listed UNSEALED', async () => {
    const apiKey = `ackd_${randomBytes(32).toString('base64url')}`;
    const keyHash = hashApiKey(apiKey);
    const keyId = `key_${keyHash.slice(0, 12)}`;
    await raw().send(new PutCommand({ TableName: stack.tableName, Item: { pk: `apikey#${keyHash}`, kind: 'apikey', key_id: keyId, key_hash: keyHash, agent_id: 'deploy-bot', created_at: stack.clock.now().toISOString(), revoked_at: null } }));
    expect(await status(apiKey)).toBe(401);
    await expect(stack.client(apiKey)).rejects.toThrow();
    expect(refusedLines().at(-1)).toMatchObject({ level: 'warn', key_id: keyId, reason: 'missing' });
    const list = await runAckd(cliEnv(stack), 'agents', 'list', '--agent', 'deploy-bot');
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`${keyId}  deploy-bot  created \\S+  UNSEALED`));
  });

  it('the writer\'s own genuine key moved to a trusted agent gets 401; moved back, it works again', async () => {
    const { apiKey, entry } = await createApiKey(stack.deps.apiKeys, parseAgentId('intern-bot'), stack.clock);
    expect(await status(apiKey)).toBe(200);
    const move = (agent: string) =>
      raw().send(new UpdateCommand({ TableName: stack.tableName, Key: { pk: `apikey#${entry.key_hash}` }, UpdateExpression: 'SET agent_id = :a', ExpressionAttributeValues: { ':a': agent } }));
    await move('deploy-bot');
    // (an instance remembers a key that authenticated for 5 s: past that it reads the entry again)
    stack.clock.advance(5_001);
    expect(await status(apiKey)).toBe(401);
    expect(refusedLines().at(-1)).toMatchObject({ key_id: entry.key_id, reason: 'mismatch' });
    await move('intern-bot');
    expect(await status(apiKey)).toBe(200);
  });

  it('ackd agents seal-keys seals a key stored before keys were sealed (the operator vouches for it); a second run finds none', async () => {
    const apiKey = `ackd_${randomBytes(32).toString('base64url')}`;
    const keyHash = hashApiKey(apiKey);
    const keyId = `key_${keyHash.slice(0, 12)}`;
    await raw().send(new PutCommand({ TableName: stack.tableName, Item: { pk: `apikey#${keyHash}`, kind: 'apikey', key_id: keyId, key_hash: keyHash, agent_id: 'legacy-bot', created_at: '2026-01-01T00:00:00.000Z', revoked_at: null } }));
    expect(await status(apiKey)).toBe(401);
    const sealed = await runAckd(cliEnv(stack), 'agents', 'seal-keys', '--json');
    expect(sealed.code, sealed.stderr).toBe(0);
    expect((JSON.parse(sealed.stdout) as { sealed: { key_id: string }[] }).sealed.map((k) => k.key_id)).toContain(keyId);
    expect(((await raw().send(new GetCommand({ TableName: stack.tableName, Key: { pk: `apikey#${keyHash}` } }))).Item as { seal?: string }).seal).toMatch(/^v1\./);
    expect(await status(apiKey)).toBe(200);
    const again = await runAckd(cliEnv(stack), 'agents', 'seal-keys');
    expect(again.stdout.trim()).toBe('no unsealed API keys');
  });

  it('a twin planted under a genuine key\'s id does not take its revocation: revoke-key revokes every entry with the id', async () => {
    const { apiKey, entry } = await createApiKey(stack.deps.apiKeys, parseAgentId('deploy-bot'), stack.clock);
    expect(await status(apiKey)).toBe(200);
    // Hashes that sort before and after the real one, so the twin is met first in a scan either way.
    for (const twinHash of ['0'.repeat(64), 'f'.repeat(64)]) {
      await raw().send(new PutCommand({ TableName: stack.tableName, Item: { pk: `apikey#${twinHash}`, kind: 'apikey', key_id: entry.key_id, key_hash: twinHash, agent_id: 'decoy-bot', created_at: entry.created_at, revoked_at: null } }));
    }
    const r = await runAckd(cliEnv(stack), 'agents', 'revoke-key', entry.key_id, '--as', 'ops', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ key_id: entry.key_id, revoked: true, entries: 3 });
    stack.clock.advance(5_001); // past the instance's 5 s memory of the key
    expect(await status(apiKey)).toBe(401);
    const stored = (await stack.deps.apiKeys.listAll()).filter((k) => k.key_id === entry.key_id);
    expect(stored.map((k) => k.revoked_at !== null)).toEqual([true, true, true]);
  });

  it('malformed key entries (no id, a number for a time, no hash) do not stop listing, sealing or revoking the genuine keys', async () => {
    const { apiKey, entry } = await createApiKey(stack.deps.apiKeys, parseAgentId('deploy-bot'), stack.clock);
    for (const [hash, item] of [
      ['1'.repeat(64), { created_at: 5, agent_id: 'deploy-bot' }],
      ['2'.repeat(64), { key_id: { x: 1 }, created_at: null, revoked_at: 7 }],
      ['3'.repeat(64), {}],
    ] as const) {
      await raw().send(new PutCommand({ TableName: stack.tableName, Item: { pk: `apikey#${hash}`, kind: 'apikey', ...item } }));
    }
    const list = await runAckd(cliEnv(stack), 'agents', 'list');
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`${entry.key_id}  deploy-bot  created \\S+$`, 'm'));
    expect((await runAckd(cliEnv(stack), 'agents', 'seal-keys', entry.key_id)).stderr).toMatch(/ERR_NOT_FOUND: key_id: no unsealed API key/);
    const revoked = await runAckd(cliEnv(stack), 'agents', 'revoke-key', entry.key_id, '--as', 'ops');
    expect(revoked.code, revoked.stderr).toBe(0);
    stack.clock.advance(5_001);
    expect(await status(apiKey)).toBe(401);
  });
});
