import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../lambdas/core/audit/event.ts';
import { parseRequestId } from '../../lambdas/core/ids.ts';
import { groupedHex } from '../../lambdas/core/payload.ts';
import { approvalView, viewSha256 } from '../../lambdas/core/view.ts';
import { cliEnv, runAckd } from '../helpers/cli.ts';
import { startTestStack, structured, type TestStack } from '../helpers/local-stack.ts';

/**
 * An operator's decision from the CLI, on the real stack: `ackd requests approve|deny --as` prints
 * the request (every payload field, the payload's SHA-256 in groups of 4) before deciding, and the
 * decision is bound to the hash of exactly what it printed.
 */
let stack: TestStack;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  stack = await startTestStack();
  env = cliEnv(stack);
});
afterAll(async () => {
  await stack?.stop();
});

describe('ackd requests approve: the view, then the decision bound to it', () => {
  it('prints every payload field and both SHA-256s, decides, and the JSON form says which view it was bound to', async () => {
    const mcp = await stack.client();
    const payload = { deploy: { env: 'prod', targets: [{ region: 'eu-west-1' }] }, image: 'api:1.3\u001b[2J', replicas: 3 };
    const made = structured<{ request_id: string; payload_sha256: string }>(
      await mcp.callTool({ name: 'request_authorization', arguments: { agent_id: stack.agentId, action: 'Deploy api 1.3', permissions: ['deploy:prod'], justification: 'release', ttl_minutes: 10, payload } }),
    );
    const viewHash = viewSha256(approvalView(await stack.deps.service.get(parseRequestId(made.request_id))));

    const r = await runAckd(env, 'requests', 'approve', made.request_id, '--as', 'alice');
    expect(r.code, r.stderr).toBe(0);
    const printed = r.stdout;
    expect(printed).toContain(`request              ${made.request_id}`);
    expect(printed).toContain('  deploy.env: "prod"\n  deploy.targets[0].region: "eu-west-1"\n  image: "api:1.3[U+001B][2J"\n  replicas: 3\n');
    expect(printed).not.toContain('\u001b');
    expect(printed).toContain(`parameters sha256    ${groupedHex(made.payload_sha256)}`);
    expect(printed).toContain(`view sha256          ${groupedHex(viewHash)}`);
    // The view comes first, the outcome after it.
    expect(printed.indexOf('view sha256')).toBeLessThan(printed.indexOf(`${made.request_id} approved by operator:alice`));
    expect((await stack.deps.service.get(parseRequestId(made.request_id))).decision).toBe('approved');

    const other = structured<{ request_id: string }>(
      await mcp.callTool({ name: 'request_authorization', arguments: { agent_id: stack.agentId, action: 'Roll back', permissions: ['deploy:prod'], justification: 'bad release', ttl_minutes: 10 } }),
    );
    const json = await runAckd(env, 'requests', 'deny', other.request_id, '--as', 'bob', '--json');
    expect(json.code, json.stderr).toBe(0);
    const out = JSON.parse(json.stdout) as Record<string, unknown>;
    expect(out).toMatchObject({ request_id: other.request_id, decision: 'denied', view_sha256: viewSha256(approvalView(await stack.deps.service.get(parseRequestId(other.request_id)))) });
    // No refusal: the view printed was the view stored.
    await stack.settled();
    const events: AuditEvent[] = [];
    const head = await stack.deps.store.audit.head();
    for await (const e of stack.deps.store.audit.events(1, head.seq)) if (e.request_id === made.request_id || e.request_id === other.request_id) events.push(e);
    expect(events.map((e) => e.type)).not.toContain('refused');
  });
});
