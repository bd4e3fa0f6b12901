import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApiKey } from '../../lambdas/core/apikeys.ts';
import { parseAgentId, parseRequestId } from '../../lambdas/core/ids.ts';
import { MAX_BATCH } from '../../lambdas/mcp/http.ts';
import { errorText, startTestStack, structured, type TestStack, rawItems, VALID_REQUEST } from '../helpers/local-stack.ts';

/**
 * Hardening of the MCP edge, against the whole local stack (dynalite, the real MCP SDK client and
 * raw HTTP): every invalid call gets `ERR_INVALID_INPUT: <field>: <rule>` as a tool error and
 * changes nothing; a JSON-RPC batch is bounded; a long-poll stops when its client goes away; a key
 * revoked while its call is in flight gets no SVID.
 */

let stack: TestStack;
let mcp: Client;

const base = VALID_REQUEST;
const REQ = 'req_00000000000000000000000000';
const PERMISSION_RULE = 'a permission may use only A-Z a-z 0-9 and . _ : / * + = @ # ~ -';


/** A raw JSON-RPC POST to /mcp (no SDK client), as an attacker would send it. */
function post(body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(stack.mcpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${stack.agentApiKey}` },
    body: JSON.stringify(body),
    ...init,
  });
}
const call = (id: number, name: string, args: unknown) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

async function createRequest(client: Client = mcp): Promise<string> {
  return structured<{ request_id: string }>(await client.callTool({ name: 'request_authorization', arguments: base })).request_id;
}

beforeAll(async () => {
  stack = await startTestStack();
  mcp = await stack.client();
});
afterAll(async () => {
  await stack?.stop();
});

describe('every invalid call gets ERR_INVALID_INPUT: <field>: <rule>, as a tool error, and changes nothing', () => {
  const cases: [string, string, Record<string, unknown>, string][] = [
    // wrong types
    ['request_authorization', 'ttl_minutes as a string', { ...base, ttl_minutes: '30' }, 'ttl_minutes: must be an integer from 1 to 60'],
    ['request_authorization', 'ttl_minutes null', { ...base, ttl_minutes: null }, 'ttl_minutes: must be an integer from 1 to 60'],
    ['request_authorization', 'action a number', { ...base, action: 42 }, 'action: must be a string'],
    ['request_authorization', 'permissions a string', { ...base, permissions: 'infra:write' }, 'permissions: must be an array of 1-32 permission strings'],
    ['request_authorization', 'a permission a number', { ...base, permissions: ['a', 'b', 'c', 7] }, 'permissions[3]: must be a string'],
    ['request_authorization', 'a permission an object', { ...base, permissions: [{ admin: true }] }, 'permissions[0]: must be a string'],
    ['check_authorization', 'wait_seconds a string', { request_id: REQ, wait_seconds: '5' }, 'wait_seconds: must be an integer from 0 to 25'],
    ['revoke_authorization', 'svid_id a number', { request_id: REQ, svid_id: 171 }, 'svid_id: must be the SVID serial number in lowercase hex, as returned by check_authorization'],
    // missing fields
    ['request_authorization', 'ttl_minutes missing', { ...base, ttl_minutes: undefined }, 'ttl_minutes: is required and must be an integer from 1 to 60'],
    ['request_authorization', 'justification missing', { ...base, justification: undefined }, 'justification: is required and must be a string'],
    ['check_authorization', 'no arguments at all', {}, 'request_id: is required and must be a request id returned by request_authorization (req_ followed by 26 characters 0-9 a-z)'],
    ['revoke_authorization', 'svid_id missing', { request_id: REQ }, 'svid_id: is required and must be the SVID serial number in lowercase hex, as returned by check_authorization'],
    // unknown arguments
    ['request_authorization', 'an unknown argument', { ...base, approve: true }, 'approve: is not an argument of request_authorization; it takes only agent_id, action, permissions, justification, ttl_minutes, payload'],
    ['check_authorization', 'a misspelt argument', { request_id: REQ, wait_second: 5 }, 'wait_second: is not an argument of check_authorization; it takes only request_id, wait_seconds'],
    ['revoke_authorization', 'three unknown arguments', { request_id: REQ, svid_id: 'ab', force: 1, all: 1, 'x y': 1 }, 'force: is not an argument of revoke_authorization (and 2 more unknown arguments); it takes only request_id, svid_id'],
    ['check_authorization', 'an odd unknown key', { request_id: REQ, 'a"b\n': 1 }, '["a\\"b\\n"]: is not an argument of check_authorization; it takes only request_id, wait_seconds'],
    ['check_authorization', 'an invisible unknown key, echoed escaped', { request_id: REQ, 'wait_seconds\u200b': 5 }, '["wait_seconds\\u200b"]: is not an argument of check_authorization; it takes only request_id, wait_seconds'],
    ['check_authorization', 'a __proto__ argument', JSON.parse(`{"request_id":"${REQ}","__proto__":{"wait_seconds":25}}`) as Record<string, unknown>, '__proto__: is not an argument of check_authorization; it takes only request_id, wait_seconds'],
    // out of range
    ['request_authorization', 'ttl_minutes 0', { ...base, ttl_minutes: 0 }, 'ttl_minutes: must be an integer from 1 to 60'],
    ['request_authorization', 'ttl_minutes 61', { ...base, ttl_minutes: 61 }, 'ttl_minutes: must be an integer from 1 to 60'],
    ['request_authorization', 'ttl_minutes 1.5', { ...base, ttl_minutes: 1.5 }, 'ttl_minutes: must be an integer from 1 to 60'],
    ['request_authorization', 'ttl_minutes 1e308', { ...base, ttl_minutes: 1e308 }, 'ttl_minutes: must be an integer from 1 to 60'],
    ['check_authorization', 'wait_seconds 26', { request_id: REQ, wait_seconds: 26 }, 'wait_seconds: must be an integer from 0 to 25'],
    ['check_authorization', 'wait_seconds -1', { request_id: REQ, wait_seconds: -1 }, 'wait_seconds: must be an integer from 0 to 25'],
    // strings: too long, empty, blank, malformed
    ['request_authorization', 'action too long', { ...base, action: 'x'.repeat(1001) }, 'action: must be at most 1000 characters'],
    ['request_authorization', 'justification too long', { ...base, justification: 'j'.repeat(4001) }, 'justification: must be at most 4000 characters'],
    ['request_authorization', 'a permission too long', { ...base, permissions: ['ok', 'p'.repeat(129)] }, 'permissions[1]: must be at most 128 characters'],
    ['request_authorization', 'action empty', { ...base, action: '' }, 'action: must not be empty'],
    ['request_authorization', 'justification blank', { ...base, justification: ' \n\t ' }, 'justification: must not be blank'],
    ['request_authorization', 'a permission empty', { ...base, permissions: ['ok', ''] }, 'permissions[1]: must not be empty'],
    ['request_authorization', 'action with NUL', { ...base, action: 'rm\u0000-rf' }, 'action: contains U+0000, a control character or unpaired surrogate, which is not allowed'],
    ['request_authorization', 'justification with an unpaired surrogate', { ...base, justification: 'ok \ud800 ok' }, 'justification: contains U+D800, a control character or unpaired surrogate, which is not allowed'],
    ['request_authorization', 'agent_id with /', { ...base, agent_id: 'demo/agent' }, 'agent_id: must be 1-64 characters of A-Z a-z 0-9 . _ - (not "." or "..")'],
    ['request_authorization', 'agent_id ..', { ...base, agent_id: '..' }, 'agent_id: must be 1-64 characters of A-Z a-z 0-9 . _ - (not "." or "..")'],
    ['request_authorization', 'agent_id too long', { ...base, agent_id: 'a'.repeat(65) }, 'agent_id: must be 1-64 characters of A-Z a-z 0-9 . _ - (not "." or "..")'],
    ['check_authorization', 'malformed request_id', { request_id: '../etc/passwd' }, 'request_id: must be a request id returned by request_authorization (req_ followed by 26 characters 0-9 a-z)'],
    ['revoke_authorization', 'svid_id uppercase', { request_id: REQ, svid_id: 'ABC' }, 'svid_id: must be the SVID serial number in lowercase hex, as returned by check_authorization'],
    // arrays
    ['request_authorization', 'no permissions', { ...base, permissions: [] }, 'permissions: must list at least 1 permission'],
    ['request_authorization', '33 permissions', { ...base, permissions: Array.from({ length: 33 }, (_, i) => `p${i}`) }, 'permissions: must list at most 32 permissions'],
    // permission characters
    ['request_authorization', 'a permission with a space', { ...base, permissions: ['db:read', 'db: write'] }, `permissions[1]: contains U+0020, which is not allowed; ${PERMISSION_RULE}`],
    ['request_authorization', 'a permission with ZWSP', { ...base, permissions: ['db:\u200bwrite'] }, `permissions[0]: contains U+200B, which is not allowed; ${PERMISSION_RULE}`],
    ['request_authorization', 'a permission with RLO', { ...base, permissions: ['a', 'b', 'c', 'db:\u202eetirw'] }, `permissions[3]: contains U+202E, which is not allowed; ${PERMISSION_RULE}`],
    ['request_authorization', 'a Cyrillic look-alike', { ...base, permissions: ['d\u0430tabase:write'] }, `permissions[0]: contains U+0430, which is not allowed; ${PERMISSION_RULE}`],
    ['request_authorization', 'a comma', { ...base, permissions: ['db:read,db:admin'] }, `permissions[0]: contains "," (U+002C), which is not allowed; ${PERMISSION_RULE}`],
    ['request_authorization', 'an emoji', { ...base, permissions: ['db:🦀'] }, `permissions[0]: contains U+1F980, which is not allowed; ${PERMISSION_RULE}`],
  ];

  it.each(cases)('%s: %s', async (name, _label, args, rule) => {
    await stack.settled();
    const before = JSON.stringify(await rawItems(stack));
    const res = await mcp.callTool({ name, arguments: args });
    expect(res.isError).toBe(true);
    expect(res.structuredContent).toBeUndefined();
    expect(errorText(res)).toBe(`ERR_INVALID_INPUT: ${rule}`);
    expect(JSON.stringify(await rawItems(stack))).toBe(before);
  });

  it('arguments that are not an object are refused the same way (raw JSON-RPC)', async () => {
    await stack.settled();
    const before = JSON.stringify(await rawItems(stack));
    for (const args of [[], [base], 'demo-agent', 42, true, null]) {
      const res = await post(call(1, 'request_authorization', args));
      expect(res.status).toBe(200);
      const body = (await res.json()) as { result: { isError: boolean; content: { text: string }[] } };
      expect(body.result.isError, JSON.stringify(args)).toBe(true);
      expect(body.result.content[0]!.text).toBe('ERR_INVALID_INPUT: arguments: must be an object of named arguments');
    }
    expect(JSON.stringify(await rawItems(stack))).toBe(before);
  });

  it('a valid call still works and returns structuredContent and the same JSON as text', async () => {
    const res = await mcp.callTool({ name: 'request_authorization', arguments: { ...base, permissions: ['s3:GetObject', 'repo/acme:push', 'arn:aws:s3:::b/*', 'team=ops@corp#1', 'x+y~z.w_v-u'] } });
    expect(res.isError).toBeFalsy();
    expect(JSON.parse((res.content as { text: string }[])[0]!.text)).toEqual(res.structuredContent);
    const { request_id } = res.structuredContent as { request_id: string };
    expect((await stack.deps.service.get(parseRequestId(request_id))).permissions).toEqual(['s3:GetObject', 'repo/acme:push', 'arn:aws:s3:::b/*', 'team=ops@corp#1', 'x+y~z.w_v-u']);
  });

  it('an unknown tool is a clear JSON-RPC error (-32602) naming the tools there are', async () => {
    const err = await mcp.callTool({ name: 'approve_everything', arguments: {} }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(McpError);
    expect((err as McpError).code).toBe(-32602);
    expect((err as McpError).message).toContain('Unknown tool: "approve_everything"; this server has request_authorization, check_authorization, revoke_authorization, record_tool_calls');
  });

  it('a tools/call without a tool name, and methods this server does not have, are JSON-RPC errors', async () => {
    const noName = (await (await post({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { arguments: base } })).json()) as { error: { code: number; message: string } };
    expect(noName.error).toEqual({ code: -32602, message: 'tools/call needs params.name, the name of a tool: request_authorization, check_authorization, revoke_authorization, record_tool_calls' });
    const other = (await (await post({ jsonrpc: '2.0', id: 2, method: 'resources/list', params: {} })).json()) as { error: { code: number } };
    expect(other.error.code).toBe(-32601);
  });

  it('tools/list advertises the same rules: strict inputs, the permission pattern', async () => {
    const { tools } = await mcp.listTools();
    for (const t of tools) expect(t.inputSchema.additionalProperties, t.name).toBe(false);
    const permissions = tools.find((t) => t.name === 'request_authorization')!.inputSchema.properties!.permissions as { items: { pattern: string; maxLength: number } };
    expect(permissions.items).toMatchObject({ pattern: '^[A-Za-z0-9._:/*+=@#~-]+$', maxLength: 128 });
  });
});

describe('JSON-RPC batches are bounded at the HTTP edge', () => {
  it(`a batch of more than ${MAX_BATCH} messages is refused with HTTP 400 before anything runs`, async () => {
    await stack.settled();
    const before = (await rawItems(stack)).length;
    const batch = Array.from({ length: 100 }, (_, i) => call(i + 1, 'request_authorization', base));
    const res = await post(batch);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: number; message: string } };
    expect(body.error.code).toBe(-32600);
    expect(body.error.message).toBe(`Invalid Request: a batch may carry at most ${MAX_BATCH} JSON-RPC messages (got 100); nothing in it was run`);
    const justOver = await post(Array.from({ length: MAX_BATCH + 1 }, (_, i) => call(i + 1, 'request_authorization', base)));
    expect(justOver.status).toBe(400);
    expect((await rawItems(stack)).length).toBe(before);
  });

  it('an empty batch is refused; a small one is served', async () => {
    expect((await post([])).status).toBe(400);
    const request_id = await createRequest();
    const res = await post([call(1, 'check_authorization', { request_id }), call(2, 'check_authorization', { request_id: 'nope' })]);
    expect(res.status).toBe(200);
    const replies = (await res.json()) as { id: number; result: { isError?: boolean; structuredContent?: unknown } }[];
    expect(replies.map((r) => r.id).sort()).toEqual([1, 2]);
    expect(replies.find((r) => r.id === 1)!.result.structuredContent).toEqual({ status: 'pending', approvals: { have: 0, need: 1 }, payload_sha256: null });
    expect(replies.find((r) => r.id === 2)!.result.isError).toBe(true);
  });
});

describe('the long-poll follows its HTTP request', () => {
  it('stops reading the store soon after the client disconnects', async () => {
    const request_id = await createRequest();
    const check = vi.spyOn(stack.deps.service, 'check');
    try {
      const ac = new AbortController();
      const started = post(call(1, 'check_authorization', { request_id, wait_seconds: 25 }), { signal: ac.signal });
      // Wait for the long-poll to be running on the server, then walk away.
      await vi.waitFor(() => expect(check).toHaveBeenCalled(), { timeout: 5_000, interval: 20 });
      await new Promise((r) => setTimeout(r, 300));
      ac.abort();
      await expect(started).rejects.toThrow();
      await new Promise((r) => setTimeout(r, 2_000));
      const afterTwoSeconds = check.mock.calls.length;
      await new Promise((r) => setTimeout(r, 2_000));
      // Without the abort it would read every 500 ms for 25 s.
      expect(check.mock.calls.length).toBe(afterTwoSeconds);
      // The signal and the key re-check reached the service.
      const opts = check.mock.calls[0]![2]!;
      expect(opts.signal?.aborted).toBe(true);
      expect(typeof opts.reauthorize).toBe('function');
    } finally {
      check.mockRestore();
    }
  });

  it('a key revoked while its long-poll waits gets no SVID, and nothing is marked issued', async () => {
    const { apiKey, entry } = await createApiKey(stack.deps.apiKeys, parseAgentId('demo-agent'), stack.clock);
    const client = await stack.client(apiKey);
    const request_id = await createRequest(client);
    const waiting = client.callTool({ name: 'check_authorization', arguments: { request_id, wait_seconds: 10 } });
    await new Promise((r) => setTimeout(r, 300));
    await stack.deps.apiKeys.revoke(entry.key_id, stack.clock.now());
    await stack.deps.service.decide(parseRequestId(request_id), 'approved', 'operator:alice');
    expect(errorText(await waiting)).toBe('ERR_UNAUTHENTICATED: the API key was revoked');
    const record = await stack.deps.service.get(parseRequestId(request_id));
    expect(record.decision).toBe('approved');
    expect(record.svid_id).toBeNull();
    // The key no longer opens the door at all; the agent's other key picks the SVID up.
    await expect(client.callTool({ name: 'check_authorization', arguments: { request_id } })).rejects.toThrow();
    const picked = structured<{ status: string; svid?: string }>(await mcp.callTool({ name: 'check_authorization', arguments: { request_id } }));
    expect(picked.status).toBe('approved');
    expect(picked.svid).toContain('-----BEGIN PRIVATE KEY-----');
  });
});
