import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamoClient } from '../../lambdas/adapters/dynamodb/client.ts';
import { startTestStack, type TestStack } from '../helpers/local-stack.ts';
import { budget, LEAK, prng, rawMcp, toolCall } from './budget.ts';

// Fuzzing the MCP edge as an attacker with a valid key would: random and mutated tool calls and
// raw HTTP bodies. Every answer must be well-formed, name its error code, leak nothing, and only
// a successful request_authorization may create anything.

let stack: TestStack;
const SEED = Number(process.env.ACKD_FUZZ_SEED ?? Date.now() % 1_000_000);

beforeAll(async () => {
  // Limits high enough that the fuzzer explores the input space rather than the rate limiter
  // (the flooding tests attack the limits themselves).
  stack = await startTestStack({ limits: { requestsPerMinute: 10_000, openPending: 100 } });
});
afterAll(async () => {
  await stack?.stop();
});

const NASTY_STRINGS = [
  '',
  ' ',
  'a',
  'db:write',
  'x'.repeat(129),
  'y'.repeat(5000),
  '\u0000',
  'line\r\nBcc: victim@example.com',
  '<script>alert(1)</script>',
  '../../../../etc/passwd',
  '${jndi:ldap://x/a}',
  '\u202eevil',
  '\u200b',
  '\u061c',
  '\u00a0',
  'dаtabase:write', // Cyrillic а
  'e\u0301',
  '\ud800',
  '🦀'.repeat(40),
  'req_00000000000000000000000000',
  'req_zzzzzzzzzzzzzzzzzzzzzzzzzz',
  '__proto__',
  'constructor',
  'demo-agent',
  '..',
  '.',
  'other-agent',
];

function randomValue(r: () => number, depth = 0): unknown {
  const k = Math.floor(r() * (depth > 2 ? 6 : 9));
  switch (k) {
    case 0:
      return null;
    case 1:
      return r() < 0.5;
    case 2:
      return [0, -1, 1, 15, 60, 61, 25, 26, 1e308, -1e308, 0.5, 2 ** 53, -0][Math.floor(r() * 13)];
    case 3:
    case 4:
    case 5:
      return NASTY_STRINGS[Math.floor(r() * NASTY_STRINGS.length)];
    case 6:
      return Array.from({ length: Math.floor(r() * 40) }, () => randomValue(r, depth + 1));
    case 7: {
      const o: Record<string, unknown> = {};
      for (let i = 0; i < Math.floor(r() * 4); i++) o[NASTY_STRINGS[Math.floor(r() * NASTY_STRINGS.length)]!] = randomValue(r, depth + 1);
      return o;
    }
    default:
      return Array.from({ length: 33 }, (_, i) => `perm:${i}`);
  }
}

const VALID: Record<string, Record<string, unknown>> = {
  request_authorization: { agent_id: 'demo-agent', action: 'deploy', permissions: ['deploy:prod'], justification: 'release', ttl_minutes: 10 },
  check_authorization: { request_id: 'req_00000000000000000000000000', wait_seconds: 0 },
  revoke_authorization: { request_id: 'req_00000000000000000000000000', svid_id: 'ab12' },
};

/** A valid call with some fields deleted, replaced or added; sometimes not an object at all. */
function mutate(r: () => number): { name: string; args: unknown } {
  const names = [...Object.keys(VALID), 'request_authorization', 'no_such_tool', '__proto__'];
  const name = names[Math.floor(r() * names.length)]!;
  if (r() < 0.05) return { name, args: randomValue(r) };
  const args: Record<string, unknown> = { ...(VALID[name] ?? {}) };
  for (const key of Object.keys(args)) {
    const p = r();
    if (p < 0.15) delete args[key];
    else if (p < 0.45) args[key] = randomValue(r);
  }
  if (r() < 0.1) args[NASTY_STRINGS[Math.floor(r() * NASTY_STRINGS.length)]!] = randomValue(r);
  return { name, args };
}

async function requestItems(): Promise<number> {
  const out = await dynamoClient({ region: 'us-east-1', endpoint: stack.dynamodbEndpoint }).send(
    new ScanCommand({ TableName: stack.tableName, FilterExpression: 'begins_with(pk, :r)', ExpressionAttributeValues: { ':r': { S: 'req#' } }, Select: 'COUNT' }),
  );
  return out.Count ?? 0;
}

describe(`fuzzing the MCP tools (seed ${SEED})`, () => {
  it('every answer is well-formed, names its error, leaks nothing; only successful requests create anything', async () => {
    const r = prng(SEED);
    const before = await requestItems();
    let created = 0;
    const calls = budget(400, 10_000);
    const kinds = new Map<string, number>();
    for (let i = 0; i < calls; i++) {
      const { name, args } = mutate(r);
      const res = await rawMcp(stack.mcpUrl, stack.agentApiKey, toolCall(i, name, args));
      const where = `seed ${SEED}, call ${i}: ${name} ${JSON.stringify(args).slice(0, 300)} → ${res.status} ${res.text.slice(0, 300)}`;
      expect(res.status, where).toBeLessThan(500);
      expect(res.text, where).not.toMatch(LEAK);
      const msg = res.json as { result?: { isError?: boolean; content?: { text: string }[]; structuredContent?: Record<string, unknown> }; error?: { code: number; message: string } };
      if (msg?.error) {
        expect(typeof msg.error.code, where).toBe('number');
        expect(msg.error.message.length, where).toBeGreaterThan(0);
        kinds.set(`rpc ${msg.error.code}`, (kinds.get(`rpc ${msg.error.code}`) ?? 0) + 1);
        continue;
      }
      expect(msg?.result, where).toBeDefined();
      if (msg.result!.isError) {
        const text = msg.result!.content![0]!.text;
        expect(text, where).toMatch(/^ERR_[A-Z_]+: \S/);
        expect(text, where).not.toMatch(/MCP error -32602/);
        const code = text.slice(0, text.indexOf(':'));
        expect(code, where).not.toBe('ERR_INTERNAL');
        kinds.set(code, (kinds.get(code) ?? 0) + 1);
      } else {
        if (name === 'request_authorization') created++;
        expect(msg.result!.structuredContent, where).toBeDefined();
        kinds.set(`ok ${name}`, (kinds.get(`ok ${name}`) ?? 0) + 1);
      }
    }
    // The fuzzer reached both sides: refusals of invalid input, and valid calls that went through.
    expect(kinds.get('ERR_INVALID_INPUT') ?? 0).toBeGreaterThan(calls / 10);
    expect(created).toBeGreaterThan(0);
    expect(await requestItems()).toBe(before + created);
  });

  it('raw HTTP: broken JSON, batches, wrong methods and content types never get a 5xx or a leak', async () => {
    const r = prng(SEED + 1);
    const bodies: (string | unknown)[] = [
      '',
      '{',
      'null',
      '[]',
      '"x"',
      '{"jsonrpc":"1.0","id":1,"method":"tools/list"}',
      '{"jsonrpc":"2.0","method":"tools/call","params":{"name":"request_authorization"}}',
      { jsonrpc: '2.0', id: 1, method: 'tools/call', params: null },
      { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'check_authorization', arguments: [] } },
      { jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri: 'file:///etc/passwd' } },
      { jsonrpc: '2.0', id: 1, method: 'prompts/get', params: { name: 'x' } },
      { jsonrpc: '2.0', id: { nested: true }, method: 'ping' },
      `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"check_authorization","arguments":{"request_id":"${'a'.repeat(70_000)}"}}}`,
      Array.from({ length: 50 }, (_, i) => toolCall(i, 'check_authorization', { request_id: 'req_00000000000000000000000000' })),
    ];
    for (let i = 0; i < budget(60, 2000); i++) bodies.push(i % 2 ? randomValue(r) : JSON.stringify(randomValue(r)).slice(0, Math.floor(r() * 200)));
    for (const [i, body] of bodies.entries()) {
      const headers: Record<string, string> = i % 7 === 3 ? { 'content-type': 'text/plain' } : i % 7 === 5 ? { accept: 'text/html' } : {};
      const res = await rawMcp(stack.mcpUrl, stack.agentApiKey, body, { headers });
      const where = `body ${i}: ${String(typeof body === 'string' ? body : JSON.stringify(body)).slice(0, 200)} → ${res.status} ${res.text.slice(0, 300)}`;
      expect(res.status, where).toBeLessThan(500);
      expect(res.text, where).not.toMatch(LEAK);
    }
  });
});
