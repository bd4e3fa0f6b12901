import { spawn } from 'node:child_process';
import { createHash, createPublicKey } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAgentId, parseRequestId, parseTrustDomain, type RequestId } from '../../lambdas/core/ids.ts';
import { MemoryRequestStore } from '../../lambdas/adapters/memory/store.ts';
import type { RequestStore } from '../../lambdas/core/ports.ts';
import { AuthorizationService } from '../../lambdas/core/service.ts';
import { noMinter } from '../../lambdas/deps.ts';
import { buildProgram } from '../../lambdas/cli/main.ts';
import { ManualClock } from '../helpers/clock.ts';
import { cliEnv, runAckd, stackEnv } from '../helpers/cli.ts';
import { startTestStack, structured, type TestStack } from '../helpers/local-stack.ts';

// The operator's CLI as an operator runs it: the real `ackd` bin against the local stack.
// The stack's clock runs 30 minutes behind the CLI's (the wall clock), so a request made with a
// 5-minute wait is past its deadline for the CLI while nothing has recorded its expiry yet.
let stack: TestStack;
let clock: ManualClock;
let env: NodeJS.ProcessEnv;
let mcp: Client;
const ackd = (...args: string[]) => runAckd(env, ...args);

beforeAll(async () => {
  clock = new ManualClock(new Date(Date.now() - 30 * 60_000));
  stack = await startTestStack({ clock, limits: { requestsPerMinute: 10_000, openPending: 1000, mailsPerApprover: 1000 } });
  env = cliEnv(stack, { ACKD_AUDIT_KEY: stack.auditKeyPath });
  mcp = await stack.client();
});
afterAll(async () => {
  await stack?.stop();
});

/** A request by the stack's demo agent over MCP, waiting `ttl` minutes. */
async function request(ttl = 60, action = 'rotate the db password'): Promise<RequestId> {
  const r = structured<{ request_id: string }>(
    await mcp.callTool({ name: 'request_authorization', arguments: { agent_id: stack.agentId, action, permissions: ['db:write'], justification: 'rotation', ttl_minutes: ttl } }),
  );
  return parseRequestId(r.request_id);
}

async function agentCheck(id: RequestId): Promise<{ status: string; svid_id?: string }> {
  return structured<{ status: string; svid_id?: string }>(await mcp.callTool({ name: 'check_authorization', arguments: { request_id: id } }));
}

const oneLine = (s: string) => s.endsWith('\n') && s.trimEnd().split('\n').length === 1;

describe('requests revoke', () => {
  it('revokes an approval not yet picked up: the agent is told revoked, show says who and why, a repeat changes nothing', async () => {
    const id = await request();
    await stack.deps.service.decide(id, 'approved', 'operator:test');
    const r = await ackd('requests', 'revoke', id, '--as', 'alice', '--reason', 'wrong database');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(oneLine(r.stdout)).toBe(true);
    const m = new RegExp(`^${id} revoked by operator:alice at (\\S+): wrong database\\n$`).exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(await agentCheck(id)).toMatchObject({ status: 'revoked' });
    expect((await stack.deps.service.get(id)).svid_id).toBeNull();

    const shown = await ackd('requests', 'show', id);
    expect(shown.stdout).toMatch(/^revoked_by\s+"operator:alice"$/m);
    expect(shown.stdout).toMatch(/^revoke_reason\s+"wrong database"$/m);
    expect(shown.stdout).toMatch(/^status\s+"revoked"$/m);
    expect(JSON.parse((await ackd('requests', 'show', id, '--json')).stdout)).toMatchObject({ revoked: true, revoked_by: 'operator:alice', revoke_reason: 'wrong database', status: 'revoked' });

    // Idempotent: the same line, naming the first revocation, whoever repeats it.
    const again = await ackd('requests', 'revoke', id, '--as', 'bob');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe(r.stdout);
    const json = JSON.parse((await ackd('requests', 'revoke', id, '--as', 'bob', '--json')).stdout) as Record<string, unknown>;
    expect(json).toMatchObject({ request_id: id, revoked: true, revoked_by: 'operator:alice', revoked_at: m![1], revoke_reason: 'wrong database' });
  });

  it('revokes an issued SVID too; without --reason the line has none', async () => {
    const id = await request();
    await stack.deps.service.decide(id, 'approved', 'operator:test');
    const issued = await agentCheck(id);
    expect(issued.status).toBe('approved');
    const r = await ackd('requests', 'revoke', id, '--as', 'carol');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${id} revoked by operator:carol at \\S+\\n$`));
    expect(await agentCheck(id)).toMatchObject({ status: 'revoked' });
  });

  it('refuses a request that is not approved with ERR_NOT_APPROVED, and again the same way', async () => {
    const id = await request();
    for (let i = 0; i < 2; i++) {
      const r = await ackd('requests', 'revoke', id, '--as', 'alice');
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^error: ERR_NOT_APPROVED: .*pending.*\n$/);
      expect(oneLine(r.stderr)).toBe(true);
    }
    expect((await stack.deps.service.get(id)).decision).toBe('pending');
    expect(await agentCheck(id)).toMatchObject({ status: 'pending' });
  });

  it('refuses a bad --as or --reason before changing anything', async () => {
    const id = await request();
    await stack.deps.service.decide(id, 'approved', 'operator:test');
    for (const args of [
      ['--as', 'alice', '--reason', 'two\nlines'],
      ['--as', 'alice', '--reason', 'x'.repeat(501)],
      ['--as', 'al\u001bice'],
      ['--as', '  '],
    ]) {
      const r = await ackd('requests', 'revoke', id, ...args);
      expect(r.code, JSON.stringify(args)).toBe(2);
      expect(r.stderr).toMatch(/^error: ERR_INVALID_INPUT: --(as|reason): /);
    }
    expect((await ackd('requests', 'revoke', id)).stderr).toMatch(/--as/);
    expect((await stack.deps.service.get(id)).revoked).toBe(false);
    expect((await ackd('requests', 'revoke', id, '--as', 'alice', '--reason', 'x'.repeat(500))).code).toBe(0);
  });
});

describe('requests list', () => {
  const pager = parseAgentId('pager-agent');
  const made: RequestId[] = [];

  beforeAll(async () => {
    // 120 requests, ten to a millisecond (ties on requested_at), some decided so their events
    // sit between them in the by-agent index.
    for (let batch = 0; batch < 12; batch++) {
      const ids = await Promise.all(
        Array.from({ length: 10 }, (_, i) => stack.deps.service.requestAuthorization({ agent_id: pager, action: `page ${batch}.${i}`, permissions: ['p:q'], justification: 'paging', ttl_minutes: 60 })),
      );
      for (const [i, { request_id }] of ids.entries()) {
        if (i % 3 === 0) await stack.deps.service.decide(request_id, i % 2 ? 'denied' : 'approved', 'operator:test');
        made.push(request_id);
      }
      clock.advance(1);
    }
  }, 300_000);

  it('pages through every request exactly once, newest first, across ties on requested_at', async () => {
    const seen: string[] = [];
    const times: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    for (;;) {
      const r = await ackd('requests', 'list', '--agent', pager, '--limit', '11', ...(cursor ? ['--cursor', cursor] : []));
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stdout.trimEnd().split('\n');
      const more = lines.at(-1)!.startsWith('more: ') ? lines.pop()! : undefined;
      for (const l of lines) {
        const [id, at] = l.split(/\s+/);
        seen.push(id!);
        times.push(at!);
      }
      pages++;
      if (!more) break;
      expect(lines).toHaveLength(11);
      cursor = /^more: --cursor (\S+)$/.exec(more)![1];
    }
    expect(pages).toBe(11);
    expect(seen).toHaveLength(120);
    expect(new Set(seen).size).toBe(120);
    expect([...seen].sort()).toEqual([...made].sort());
    expect(times).toEqual([...times].sort().reverse());
  }, 120_000);

  it('--json pages carry next_cursor, null on the last page; each row is one request with its state now', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r = await ackd('requests', 'list', '--agent', pager, '--limit', '50', '--json', ...(cursor ? ['--cursor', cursor] : []));
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as { agent_id: string; requests: { request_id: string; status: string; decision: string }[]; next_cursor: string | null };
      expect(out.agent_id).toBe(pager);
      for (const q of out.requests) {
        seen.push(q.request_id);
        expect(q.status).toBe(q.decision);
      }
      cursor = out.next_cursor;
      pages++;
    } while (cursor !== null);
    expect(pages).toBe(3);
    expect(new Set(seen).size).toBe(120);
    expect(seen).toHaveLength(120);
  }, 60_000);

  it('the default page says there is more instead of silently leaving out the oldest', async () => {
    const r = await ackd('requests', 'list', '--agent', pager);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(21);
    expect(lines.at(-1)).toMatch(/^more: --cursor [A-Za-z0-9_-]+$/);
    expect(new Set(lines.slice(0, 20).map((l) => l.split(/\s+/)[0])).size).toBe(20);
    const all = await ackd('requests', 'list', '--agent', pager, '--limit', '1000');
    const rows = all.stdout.trimEnd().split('\n');
    expect(rows).toHaveLength(120);
    // The oldest ten (the first millisecond) come last.
    expect(new Set(rows.slice(-10).map((l) => l.split(/\s+/)[0]))).toEqual(new Set(made.slice(0, 10)));
  });

  it('shows a pending request past its deadline as expired, one row per request', async () => {
    const agent = parseAgentId('states-agent');
    const mk = (ttl: number, action: string) => stack.deps.service.requestAuthorization({ agent_id: agent, action, permissions: ['p:q'], justification: 'j', ttl_minutes: ttl });
    const late = (await mk(5, 'late')).request_id;
    clock.advance(1);
    const open = (await mk(60, 'open')).request_id;
    clock.advance(1);
    const approved = (await mk(60, 'approved')).request_id;
    clock.advance(1);
    const denied = (await mk(60, 'denied')).request_id;
    clock.advance(1);
    await stack.deps.service.decide(approved, 'approved', 'operator:test');
    await stack.deps.service.decide(denied, 'denied', 'operator:test');
    // Stored as pending: nothing has recorded the expiry.
    expect((await stack.deps.service.get(late)).decision).toBe('pending');
    const r = await ackd('requests', 'list', '--agent', agent, '--limit', '3');
    expect(r.code, r.stderr).toBe(0);
    const rows = r.stdout.trimEnd().split('\n');
    const more = /^more: --cursor (\S+)$/.exec(rows.pop()!);
    expect(more).not.toBeNull();
    expect(rows.map((l) => [l.split(/\s+/)[0], l.split(/\s+/)[2]])).toEqual([
      [denied, 'denied'],
      [approved, 'approved'],
      [open, 'pending'],
    ]);
    const rest = await ackd('requests', 'list', '--agent', agent, '--limit', '3', '--cursor', more![1]!);
    expect(rest.stdout).toMatch(new RegExp(`^${late}  \\S+  expired   late\n$`));
    const json = JSON.parse((await ackd('requests', 'list', '--agent', agent, '--json')).stdout) as { requests: { request_id: string; decision: string; status: string }[]; next_cursor: string | null };
    expect(json.next_cursor).toBeNull();
    expect(json.requests.find((q) => q.request_id === late)).toMatchObject({ decision: 'pending', status: 'expired' });
  });

  it('both stores resume just after a given request: pages of any size add up to the whole listing once', async () => {
    const memClock = new ManualClock();
    const mem = new MemoryRequestStore(memClock);
    const service = new AuthorizationService({ trustDomain: parseTrustDomain('ackd.test'), consentBaseUrl: 'https://consent.example', retentionDays: 30 }, { store: mem, minter: noMinter, clock: memClock, logger: { info() {}, warn() {}, error() {} } });
    for (let i = 0; i < 30; i++) {
      const { request_id } = await service.requestAuthorization({ agent_id: pager, action: `m${i}`, permissions: ['p:q'], justification: 'j', ttl_minutes: 5 });
      if (i % 4 === 0) await service.decide(request_id, 'approved', 'operator:test');
      if (i % 7 === 6) memClock.advance(1);
    }
    for (const store of [mem, stack.deps.store] as RequestStore[]) {
      const whole = (await store.listByAgent(pager, { limit: 1000 })).map((r) => r.request_id);
      for (const size of [1, 4, 7]) {
        const paged: string[] = [];
        let after: { requested_at: string; request_id: RequestId } | undefined;
        for (;;) {
          const page = await store.listByAgent(pager, { limit: size, ...(after ? { after } : {}) });
          paged.push(...page.map((r) => r.request_id));
          const last = page.at(-1);
          if (page.length < size || !last) break;
          after = { requested_at: last.requested_at, request_id: last.request_id };
        }
        expect(paged, `${store.constructor.name} pages of ${size}`).toEqual(whole);
      }
      expect(new Set(whole).size).toBe(whole.length);
    }
  }, 120_000);

  it('refuses a cursor that is not one, or is for another agent', async () => {
    const r = await ackd('requests', 'list', '--agent', pager, '--limit', '1', '--json');
    const cursor = (JSON.parse(r.stdout) as { next_cursor: string }).next_cursor;
    const other = await ackd('requests', 'list', '--agent', 'states-agent', '--cursor', cursor);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/^error: ERR_INVALID_INPUT: --cursor: continues another agent's listing/);
    for (const bad of ['nonsense!', Buffer.from('{"v":1}').toString('base64url'), cursor.slice(0, -4)]) {
      const b = await ackd('requests', 'list', '--agent', pager, '--cursor', bad);
      expect(b.code, bad).toBe(2);
      expect(b.stderr).toMatch(/^error: ERR_INVALID_INPUT: --cursor: /);
      expect(oneLine(b.stderr)).toBe(true);
    }
  });

  it('stops quietly when the reader has closed the pipe before it writes (ackd … | head -c 0): no stack trace, exit 0', async () => {
    const r = await new Promise<{ code: number | null; stderr: string }>((done) => {
      const child = spawn(process.execPath, [resolve('bin/ackd.js'), 'requests', 'list', '--agent', pager, '--limit', '1000', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.stdout.destroy();
      child.on('close', (code) => done({ code, stderr }));
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('… | head -n 1 in a shell, the reader leaving while the export streams: the same', async () => {
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
      const child = spawn('bash', ['-c', `"${process.execPath}" bin/ackd.js audit export | head -n 1; exit "\${PIPESTATUS[0]}"`], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('close', (code) => done({ code, stdout, stderr }));
    });
    expect(r.stdout.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).not.toMatch(/EPIPE|Error|at /);
    expect(r.code).toBe(0);
  });
});

describe('polish', () => {
  it('--version prints the package version', async () => {
    const pkg = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
    for (const flag of ['--version', '-v']) {
      const r = await ackd(flag);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`${pkg.version}\n`);
    }
  });

  it('every command takes --json', () => {
    const leaves: string[] = [];
    const walk = (c: Command, path: string) => {
      if (c.commands.length === 0) {
        if (!c.options.some((o) => o.long === '--json')) leaves.push(path);
      } else for (const sub of c.commands) walk(sub, `${path} ${sub.name()}`.trim());
    };
    walk(buildProgram(), '');
    // `gate` runs a command: its output is the command's own (gate speaks on stderr), so it has no --json;
    // `gateway` is a server: it answers MCP on its port or stdio and logs on stderr.
    expect(leaves).toEqual(['gate', 'gateway']);
  });

  it('audit public-key --json: the PEM and its key id, the one checkpoints name', async () => {
    const r = await ackd('audit', 'public-key', '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { public_key_pem: string; key_id: string };
    expect(Object.keys(out).sort()).toEqual(['key_id', 'public_key_pem']);
    expect(out.public_key_pem).toBe((await ackd('audit', 'public-key')).stdout);
    expect(out.key_id).toBe(createHash('sha256').update(createPublicKey(out.public_key_pem).export({ type: 'spki', format: 'der' })).digest('hex'));
    await request();
    const cp = JSON.parse((await ackd('audit', 'checkpoint', '--json')).stdout) as { checkpoint: { key_id: string } };
    expect(cp.checkpoint.key_id).toBe(out.key_id);
  });

  it('audit export --json: a summary of what was written; without --out it says why not', async () => {
    const out = join(stack.dir, 'summary.jsonl');
    const r = await ackd('audit', 'export', '--out', out, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const summary = JSON.parse(r.stdout) as Record<string, unknown>;
    const lines = (await readFile(out, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as { kind: string; seq?: number });
    const events = lines.filter((l) => l.kind === 'event');
    expect(summary).toMatchObject({ out, format: 'jsonl', bytes: (await stat(out)).size, events: events.length, first_seq: events[0]!.seq, last_seq: events.at(-1)!.seq, checkpoints: lines.filter((l) => l.kind === 'checkpoint').length });
    const noOut = await ackd('audit', 'export', '--json');
    expect(noOut.code).toBe(2);
    expect(noOut.stdout).toBe('');
    expect(noOut.stderr).toBe('error: --json needs --out: without it the export itself is what goes to stdout\n');
  });

  it('--out onto an existing file: one line, non-zero, the file untouched and nothing signed first', async () => {
    const out = join(stack.dir, 'existing.jsonl');
    await writeFile(out, 'keep me\n');
    await request();
    // The log as it will stay: sequenced, its head signed (the local sequencer signs new heads by itself).
    await stack.settled();
    await stack.deps.audit.checkpoint();
    const before = (await ackd('audit', 'export')).stdout.split('\n').filter((l) => l.includes('"kind":"checkpoint"')).length;
    const r = await ackd('audit', 'export', '--out', out, '--checkpoint');
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`error: --out: ${out} already exists; an export never overwrites a file (EEXIST)\n`);
    expect(await readFile(out, 'utf8')).toBe('keep me\n');
    const after = (await ackd('audit', 'export')).stdout.split('\n').filter((l) => l.includes('"kind":"checkpoint"')).length;
    expect(after).toBe(before);
  });

  it('svid verify --permission without --status-url explains itself in one sentence', async () => {
    const r = await ackd('svid', 'verify', join(stack.dir, 'no-such.pem'), '--bundle', join(stack.dir, 'no-such-bundle.pem'), '--permission', 'db:write');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error: --permission needs --status-url or --receipt: an SVID does not say which permissions were approved, only ackd does (online) or its receipt\n');
    expect(r.stderr).not.toMatch(/verifyAckdSvid|statusUrl|TypeError/);
    // Its other usage errors are printed too (they used to end the command silently).
    const noBundle = await runAckd({ PATH: process.env.PATH, HOME: process.env.HOME, NODE_NO_WARNINGS: '1' }, 'svid', 'verify', 'x.pem');
    expect(noBundle.code).toBe(2);
    expect(noBundle.stderr).toMatch(/^error: --bundle is required/);
  });

  it("prints no AWS SDK Node-version warning (and the CLI's log leaves stdout alone)", async () => {
    // Without NODE_NO_WARNINGS, which would hide every warning.
    const bare: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...stackEnv(stack) };
    const r = await runAckd(bare, 'requests', 'list', '--agent', 'states-agent', '--limit', '1', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/NodeVersionSupportWarning|upgrade to node/);
    expect(r.stderr).toBe('');
    JSON.parse(r.stdout);
    // A decision is logged like the others' when the operator asks for logs: JSON lines, on stderr.
    const id = await request();
    const d = await runAckd({ ...bare, ACKD_LOG_LEVEL: 'info' }, 'requests', 'approve', id, '--as', 'dave', '--json');
    expect(d.code, d.stderr).toBe(0);
    expect(JSON.parse(d.stdout)).toMatchObject({ request_id: id, decision: 'approved' });
    const logged = d.stderr.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logged).toContainEqual(expect.objectContaining({ level: 'info', msg: 'request decided', request_id: id, approver_identity: 'operator:dave', source: 'cli' }));
    const rv = await runAckd({ ...bare, ACKD_LOG_LEVEL: 'info' }, 'requests', 'revoke', id, '--as', 'dave', '--reason', 'done');
    expect(rv.stdout).toMatch(new RegExp(`^${id} revoked by operator:dave at \\S+: done\n$`));
    expect(rv.stderr.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)).toContainEqual(
      expect.objectContaining({ level: 'info', msg: 'approval revoked', request_id: id, revoked_by: 'operator:dave', reason: 'done' }),
    );
  });
});
