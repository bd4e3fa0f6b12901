import { createHash } from 'node:crypto';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointPublicKey } from '../../lambdas/core/audit/signing.ts';
import { parseRequestId, type RequestId } from '../../lambdas/core/ids.ts';
import { errorText, readItem, startTestStack, structured, VALID_REQUEST, writeItemFields, type TestStack } from '../helpers/local-stack.ts';

// Issue 13, item 1: the exact parameters of an operation travel with its request, through the
// real MCP client over HTTP and the real table (dynalite), and every answer names their digest.

let stack: TestStack;
let mcp: Client;

beforeAll(async () => {
  stack = await startTestStack();
  mcp = await stack.client();
}, 120_000);
afterAll(async () => {
  await stack?.stop();
});

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

async function request(payload?: unknown): Promise<{ request_id: RequestId; payload_sha256: string | null }> {
  const r = structured<{ request_id: string; payload_sha256: string | null }>(
    await mcp.callTool({ name: 'request_authorization', arguments: { ...VALID_REQUEST, ...(payload === undefined ? {} : { payload }) } }),
  );
  return { request_id: parseRequestId(r.request_id), payload_sha256: r.payload_sha256 };
}

const check = async (id: string) => structured<{ status: string; payload_sha256: string | null; svid?: string }>(await mcp.callTool({ name: 'check_authorization', arguments: { request_id: id } }));

async function eventsOf(id: RequestId) {
  await stack.settled();
  const out: { type: string; payload_sha256?: string | null }[] = [];
  for await (const line of stack.deps.audit.export()) if (line.kind === 'event' && line.request_id === id) out.push(line as { type: string; payload_sha256?: string | null });
  return out;
}

describe('payload', () => {
  it('is stored exactly, its SHA-256 is that of its RFC 8785 form, and every answer and event carries it', async () => {
    // Key order, a number JCS writes in its shortest form, and a large exponent DynamoDB could not hold as a number.
    const payload = { service: 'api', env: 'prod', replicas: 3.0, budget: 1e300, commit: 'a1b2c3', nested: { b: [1, 'two', null, true], a: 'é' } };
    const canonical = '{"budget":1e+300,"commit":"a1b2c3","env":"prod","nested":{"a":"é","b":[1,"two",null,true]},"replicas":3,"service":"api"}';
    const { request_id, payload_sha256 } = await request(payload);
    expect(payload_sha256).toBe(sha256(canonical));
    expect(await check(request_id)).toMatchObject({ status: 'pending', payload_sha256 });

    const stored = await stack.deps.service.get(request_id);
    expect(stored.payload).toEqual(payload);
    expect(stored.payload_sha256).toBe(payload_sha256);
    // Stored as its canonical text, not as a DynamoDB map.
    expect((await readItem(stack, `req#${request_id}`))?.payload_json).toBe(canonical);

    await stack.deps.service.decide(request_id, 'approved', 'operator:alice');
    const approved = await check(request_id);
    expect(approved).toMatchObject({ status: 'approved', payload_sha256 });
    expect(approved.svid).toContain('BEGIN CERTIFICATE');
    const events = await eventsOf(request_id);
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['requested', 'approved', 'svid_issued']));
    for (const e of events) expect(e.payload_sha256).toBe(payload_sha256);
    const report = await stack.deps.audit.verifyLive({}, { publicKey: checkpointPublicKey(await stack.deps.audit.publicKeyPem()) });
    expect(report.problems, JSON.stringify(report.problems)).toEqual([]);
  });

  it('is optional: without one, payload_sha256 is null everywhere and everything works as before', async () => {
    const { request_id, payload_sha256 } = await request();
    expect(payload_sha256).toBeNull();
    await stack.deps.service.decide(request_id, 'approved', 'operator:alice');
    const approved = await check(request_id);
    expect(approved).toMatchObject({ status: 'approved', payload_sha256: null });
    expect(approved.svid).toContain('BEGIN CERTIFICATE');
    expect((await eventsOf(request_id)).every((e) => e.payload_sha256 === null)).toBe(true);
  });

  it('bad payloads are refused naming the problem, and nothing is stored', async () => {
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 10; i++) deep = { d: deep };
    const cases: [unknown, RegExp][] = [
      [[1, 2], /payload: must be a JSON object/],
      ['deploy', /payload: must be a JSON object/],
      [deep, /payload(\.d)+: nests deeper than 10 levels/],
      [{ sql: 'x'.repeat(33_000) }, /payload: is \d+ bytes as canonical JSON \(RFC 8785\); at most 32768 are allowed/],
      [{ s: 'a\ud800b' }, /payload\.s: contains an unpaired surrogate/],
    ];
    const before = (await stack.deps.store.listByAgent(stack.agentId as never, { limit: 500 })).length;
    for (const [payload, message] of cases) {
      const text = errorText(await mcp.callTool({ name: 'request_authorization', arguments: { ...VALID_REQUEST, payload } }));
      expect(text).toMatch(/ERR_INVALID_INPUT/);
      expect(text).toMatch(message);
    }
    expect((await stack.deps.store.listByAgent(stack.agentId as never, { limit: 500 })).length).toBe(before);
  });

  it('a payload rewritten in the table after approval gets no SVID, and the refusal is audited', async () => {
    const { request_id } = await request({ amount: 100, to: 'acct-1' });
    await stack.deps.service.decide(request_id, 'approved', 'operator:alice');
    await stack.settled();
    await writeItemFields(stack, `req#${request_id}`, { payload_json: '{"amount":100000,"to":"acct-666"}' });
    const text = errorText(await mcp.callTool({ name: 'check_authorization', arguments: { request_id } }));
    expect(text).toMatch(/ERR_NOT_APPROVED/);
    const refused = (await eventsOf(request_id)).filter((e) => e.type === 'refused') as unknown as { reason: string }[];
    expect(refused.map((e) => e.reason)).toContainEqual(expect.stringContaining('payload does not match its payload_sha256'));
    expect((await stack.deps.service.get(request_id)).svid_id).toBeNull();
  });
});
