import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { structured, startTestStack, type TestStack } from '../helpers/local-stack.ts';
import { cliEnv, runAckd } from '../helpers/cli.ts';
import { ADMIN_EVENT_TYPES } from '../../lambdas/core/audit/event.ts';

let stack: TestStack;
let env: NodeJS.ProcessEnv;

const ackd = (...args: string[]) => runAckd(env, ...args);

beforeAll(async () => {
  stack = await startTestStack();
  env = cliEnv(stack);
});
afterAll(async () => {
  await stack?.stop();
});

describe('ackd CLI', () => {
  it('every command has --help', async () => {
    for (const cmd of [[], ['agents'], ['agents', 'create'], ['requests', 'approve'], ['requests', 'deny'], ['requests', 'revoke'], ['requests', 'list'], ['audit', 'export'], ['audit', 'verify'], ['audit', 'checkpoint'], ['audit', 'public-key'], ['sweep']]) {
      const { stdout, code } = await ackd(...cmd, '--help');
      expect(code).toBe(0);
      expect(stdout).toMatch(/^Usage: ackd/m);
    }
  });

  it('agents create prints a working key once, stores only its hash', async () => {
    const { stdout, code } = await ackd('agents', 'create', 'cli-agent', '--json');
    expect(code).toBe(0);
    const out = JSON.parse(stdout) as { agent_id: string; api_key: string; key_id: string };
    expect(out.agent_id).toBe('cli-agent');
    expect(out.api_key).toMatch(/^ackd_[A-Za-z0-9_-]{43}$/);
    const client = await stack.client(out.api_key);
    const r = structured<{ request_id: string }>(
      await client.callTool({ name: 'request_authorization', arguments: { agent_id: 'cli-agent', action: 'a', permissions: ['p'], justification: 'j', ttl_minutes: 5 } }),
    );
    expect(r.request_id).toMatch(/^req_/);
    const list = JSON.parse((await ackd('agents', 'list', '--agent', 'cli-agent', '--json')).stdout) as Record<string, unknown>[];
    expect(list).toHaveLength(1);
    expect(JSON.stringify(list)).not.toContain(out.api_key);
    expect(list[0]).not.toHaveProperty('key_hash');
  });

  it('agents create refuses a bad agent_id and changes nothing', async () => {
    const before = (await ackd('agents', 'list', '--json')).stdout;
    const { stderr, code } = await ackd('agents', 'create', 'bad/agent');
    expect(code).toBe(2);
    expect(stderr).toMatch(/ERR_INVALID_INPUT: agent_id/);
    expect((await ackd('agents', 'list', '--json')).stdout).toBe(before);
  });

  it('requests approve / deny / show / list, and a second decision is refused', async () => {
    const mcp = await stack.client();
    const mk = async () =>
      structured<{ request_id: string }>(
        await mcp.callTool({ name: 'request_authorization', arguments: { agent_id: 'demo-agent', action: 'deploy', permissions: ['infra:write'], justification: 'why', ttl_minutes: 10 } }),
      ).request_id;
    const a = await mk();
    stack.clock.advance(1000);
    const b = await mk();
    const approved = await ackd('requests', 'approve', a, '--as', 'alice', '--json');
    expect(approved.code).toBe(0);
    expect(JSON.parse(approved.stdout)).toMatchObject({ request_id: a, decision: 'approved', approver_identity: 'operator:alice' });
    const again = await ackd('requests', 'deny', a, '--as', 'mallory');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/ERR_ALREADY_DECIDED/);
    expect((await ackd('requests', 'deny', b, '--as', 'bob')).code).toBe(0);
    const shown = await ackd('requests', 'show', b);
    expect(shown.stdout).toMatch(/decision\s+"denied"/);
    const listed = (JSON.parse((await ackd('requests', 'list', '--agent', 'demo-agent', '--json')).stdout) as { requests: { request_id: string }[] }).requests;
    expect(listed.map((r) => r.request_id)).toEqual(expect.arrayContaining([a, b]));
    // newest first
    expect(listed.findIndex((r) => r.request_id === b)).toBeLessThan(listed.findIndex((r) => r.request_id === a));
    const c = await mk();
    const pending = JSON.parse((await ackd('requests', 'pending', '--json')).stdout) as { request_id: string; decision: string }[];
    expect(pending.map((r) => r.request_id)).toContain(c);
    expect(pending.map((r) => r.request_id)).not.toContain(a);
    expect(pending.every((r) => r.decision === 'pending')).toBe(true);
    expect((await ackd('requests', 'pending', '--limit', '0')).stderr).toMatch(/ERR_INVALID_INPUT: --limit/);
    const missing = await ackd('requests', 'approve', 'req_00000000000000000000000000', '--as', 'alice');
    expect(missing.stderr).toMatch(/ERR_NOT_FOUND/);
    expect((await ackd('requests', 'approve', a)).stderr).toMatch(/--as/);
  });

  it('audit export writes every state change as an event with the 13 audit fields, as JSONL and CSV, and never overwrites a file', async () => {
    const jsonl = await ackd('audit', 'export');
    expect(jsonl.code, jsonl.stderr).toBe(0);
    const lines = jsonl.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const events = lines.filter((l) => l.kind === 'event');
    // the first: the stack's demo key created (an operator's change, no request fields)
    expect(events[0]).toMatchObject({ type: 'apikey_created', agent_id: stack.agentId, actor_type: 'operator', actor_id: 'npm start' });
    const ofRequests = events.filter((e) => !(ADMIN_EVENT_TYPES as readonly unknown[]).includes(e.type));
    expect(ofRequests.length).toBeGreaterThanOrEqual(3);
    for (const r of ofRequests) {
      for (const f of ['request_id', 'agent_id', 'action', 'permissions', 'justification', 'approver_identity', 'requested_at', 'decision_at', 'decision', 'svid_id', 'svid_expires_at', 'revoked', 'revoked_at']) {
        expect(r).toHaveProperty(f);
      }
    }
    expect(lines.at(-1)).toMatchObject({ kind: 'end', events: events.length });
    const out = join(stack.dir, 'audit.csv');
    expect((await ackd('audit', 'export', '--format', 'csv', '--out', out)).code).toBe(0);
    const csv = (await readFile(out, 'utf8')).trim().split('\r\n');
    expect(csv[0]).toBe(
      'seq,event_id,type,at,logged_at,actor_type,actor_id,reason,request_id,agent_id,action,permissions,justification,approver_identity,requested_at,decision_at,decision,svid_id,svid_expires_at,revoked,revoked_at,quorum,votes,payload_sha256,decision_signature,call,policy,previous,owner,previous_owner,key_id,credential_ids,prev_hash,hash',
    );
    expect(csv.length).toBe(events.length + 1);
    const second = await ackd('audit', 'export', '--format', 'csv', '--out', out);
    expect(second.code).not.toBe(0);
    expect(second.stderr).toMatch(/^error: --out: .* already exists; an export never overwrites a file/);
  });
});
