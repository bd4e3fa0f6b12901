import { X509Certificate, createHash } from 'node:crypto';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OUTBOX, OUTBOX_ATTR } from '../../lambdas/adapters/dynamodb/audit.ts';
import { TABLE } from '../../lambdas/adapters/dynamodb/schema.ts';
import { auditEvent } from '../../lambdas/core/audit/event.ts';
import { checkpointPublicKey } from '../../lambdas/core/audit/signing.ts';
import type { SignedDecision } from '../../lambdas/core/evidence.ts';
import { parseAgentId, type RequestId } from '../../lambdas/core/ids.ts';
import type { CastVote } from '../../lambdas/core/quorum.ts';
import { cliEnv, runAckd } from '../helpers/cli.ts';
import { readItem, startTestStack, structured, writeItemFields, type TestStack } from '../helpers/local-stack.ts';

// Issue 13, items 4 and 5, on the real local stack (dynalite, the in-process issuer, the MCP SDK
// client over HTTP, the `ackd` bin): every decision is signed by the decision service, the minter
// mints only on a signed decision that matches the request, and the SVID leaves with a receipt
// that verifies against the JWKS the MCP server publishes.

let stack: TestStack;
let mcp: Client;
const agent = parseAgentId('demo-agent');

beforeAll(async () => {
  stack = await startTestStack({ limits: { requestsPerMinute: 10_000, openPending: 100 } });
  mcp = await stack.client();
}, 60_000);
afterAll(async () => {
  await stack?.stop();
});

/** The `ackd` bin's environment against this stack (its audit key: `--live` verifies the checkpoints with it). */
const env = () => cliEnv(stack, { ACKD_AUDIT_KEY: stack.auditKeyPath });
const later = (min: number) => new Date(stack.clock.now().getTime() + min * 60_000).toISOString();

async function newRequest(over: { permissions?: string[] } = {}): Promise<RequestId> {
  const r = structured<{ request_id: RequestId }>(
    await mcp.callTool({
      name: 'request_authorization',
      arguments: { agent_id: agent, action: 'rotate the db password', permissions: over.permissions ?? ['db:write'], justification: 'quarterly rotation', ttl_minutes: 15 },
    }),
  );
  await stack.settled();
  return r.request_id;
}

async function check(id: RequestId): Promise<CallToolResult> {
  return (await mcp.callTool({ name: 'check_authorization', arguments: { request_id: id } })) as CallToolResult;
}

const errorText = (r: CallToolResult) => (r.content as { text: string }[]).map((c) => c.text).join('\n');

/** The request's audit events, in chain order (from the stack's own export). */
async function eventsOf(id: RequestId): Promise<Record<string, unknown>[]> {
  await stack.settled();
  const out: Record<string, unknown>[] = [];
  for await (const l of stack.deps.audit.export({})) if (l.kind === 'event' && (l as { request_id?: string }).request_id === id) out.push(l as unknown as Record<string, unknown>);
  return out;
}

/**
 * The table writer's forgery of a decision: the item set to approved by `approver`, and an
 * approved-looking event put into its outbox, exactly as ackd's own approve write would put it,
 * for the audit sequencer to link into the chain. This writer also holds the outbox seal key (a
 * compromised ackd function, docs/audit.md "Sealed outbox entries"): without it the entry never
 * reaches the chain (test/adversarial/outbox-seal.test.ts). What even this writer cannot do is
 * sign it with the decision key: `decisionSignature` is whatever they have (nothing, or one copied
 * from elsewhere).
 */
async function forgeApproval(id: RequestId, approver: string, decisionSignature?: SignedDecision): Promise<void> {
  const now = stack.clock.now();
  const svidExpiresAt = later(15);
  const vote: CastVote = { voter: approver, email: null, vote: 'approve', at: now.toISOString(), groups: [] };
  const event = auditEvent('approved', { type: 'operator', id: approver.slice('operator:'.length) }, now);
  const params = { now: now.toISOString(), approver, email: null, svidExpiresAt, vote, seen: 0, ...(decisionSignature ? { decisionSignature } : {}) };
  await writeItemFields(stack, `req#${id}`, {
    decision: 'approved',
    decision_at: now.toISOString(),
    approver_identity: approver,
    svid_expires_at: svidExpiresAt,
    votes: [vote],
    ...(decisionSignature ? { decision_signature: decisionSignature } : {}),
    [OUTBOX_ATTR]: [await stack.deps.store.audit.sealRequestEntry(id, { event, row: 'approve', params: params as never })],
    [TABLE.auditLog.partitionKey]: OUTBOX,
    [TABLE.auditLog.sortKey]: `${event.at}#${event.event_id}`,
  });
  await stack.settled();
}

async function refusals(id: RequestId): Promise<string[]> {
  return (await eventsOf(id)).filter((e) => e.type === 'refused').map((e) => String(e.reason));
}

describe('a normal approval: signed decision, SVID and receipt', () => {
  it('the decision is signed on the item and in its approved event; the check returns the SVID with a receipt that verifies against the served JWKS', async () => {
    const id = await newRequest({ permissions: ['db:write', 'db:read'] });
    const decided = await stack.deps.service.decide(id, 'approved', 'operator:alice');
    const sd = decided.decision_signature!;
    expect(sd.alg).toBe('ECDSA_P256_SHA256');
    expect(sd.statement).toMatchObject({ v: 1, purpose: 'ackd-decision', request_id: id, agent_id: agent, decision: 'approved', approver: 'operator:alice', decided_at: decided.decision_at, svid_expires_at: decided.svid_expires_at, permissions: ['db:write', 'db:read'], view_sha256: null, passkey_assertion_sha256: null });
    const approved = (await eventsOf(id)).find((e) => e.type === 'approved')!;
    expect(approved.decision_signature).toEqual(sd);

    const result = structured<{ status: string; svid: string; svid_id: string; spiffe_id: string; expires_at: string; receipt: string }>(await check(id));
    expect(result.status).toBe('approved');
    expect(result.receipt).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);

    // The keys, as anyone fetches them from the MCP server's origin (both names), and from the CLI.
    const res = await fetch(`${stack.appUrl}/.well-known/ackd-receipt-keys.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toMatch(/max-age=\d+/);
    const jwks = (await res.json()) as JSONWebKeySet;
    expect(await (await fetch(`${stack.appUrl}/.well-known/jwks.json`)).json()).toEqual(jwks);
    const cli = await runAckd(cliEnv(stack), 'receipt', 'keys', '--json');
    expect(cli.code, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toEqual(jwks);
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(jwks.keys[0]).not.toHaveProperty('d');

    const { payload, protectedHeader } = await jwtVerify(result.receipt, createLocalJWKSet(jwks), { issuer: 'ackd', typ: 'ackd-receipt+jwt', algorithms: ['ES256'], currentDate: stack.clock.now() });
    expect(protectedHeader).toEqual({ alg: 'ES256', typ: 'ackd-receipt+jwt', kid: jwks.keys[0]!.kid });
    expect(decodeProtectedHeader(result.receipt).kid).toBe(jwks.keys[0]!.kid);

    // Its claims are the SVID's (serial, SPIFFE ID, notAfter) and the request's.
    const leaf = new X509Certificate(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(result.svid)![0]);
    const record = await stack.deps.service.get(id);
    expect(payload).toEqual({
      iss: 'ackd',
      sub: result.spiffe_id,
      request_id: id,
      agent_id: agent,
      spiffe_id: result.spiffe_id,
      svid_id: result.svid_id,
      permissions: ['db:write', 'db:read'],
      payload_sha256: record.payload_sha256 ?? null,
      view_sha256: null,
      approver: 'operator:alice',
      decided_at: record.decision_at,
      passkey_assertion_sha256: null,
      decision_signature_sha256: createHash('sha256').update(Buffer.from(sd.signature, 'base64')).digest('hex'),
      iat: Math.floor(stack.clock.now().getTime() / 1000),
      exp: Math.floor(Date.parse(leaf.validTo) / 1000),
    });
    expect(leaf.serialNumber.toLowerCase().replace(/^0+/, '')).toBe(result.svid_id.replace(/^0+/, ''));
    expect(leaf.subjectAltName).toBe(`URI:${result.spiffe_id}`);
    expect(payload.exp).toBe(Math.floor(Date.parse(result.expires_at) / 1000));

    // A receipt altered by one claim no longer verifies.
    const [h, p, s] = result.receipt.split('.');
    const forged = Buffer.from(JSON.stringify({ ...payload, permissions: ['*'] })).toString('base64url');
    await expect(jwtVerify(`${h}.${forged}.${s}`, createLocalJWKSet(jwks), { currentDate: stack.clock.now() })).rejects.toThrow(/signature/);
    expect(p).not.toBe(forged);

    // Only the first check carries the SVID and its receipt.
    const again = structured<Record<string, unknown>>(await check(id));
    expect(again).toMatchObject({ status: 'approved', svid_delivered: true });
    expect(again).not.toHaveProperty('receipt');
  });

  it('a denial is signed too; the decision key is published; `audit verify` checks every decision event with it', async () => {
    const id = await newRequest();
    const denied = await stack.deps.service.decide(id, 'denied', 'operator:bob');
    expect(denied.decision_signature?.statement).toMatchObject({ decision: 'denied', approver: 'operator:bob', svid_expires_at: null });
    expect((await eventsOf(id)).find((e) => e.type === 'denied')!.decision_signature).toEqual(denied.decision_signature);

    const keyRes = await fetch(`${stack.appUrl}/.well-known/ackd-decision-key.pem`);
    expect(keyRes.status).toBe(200);
    expect(await keyRes.text()).toBe(await stack.deps.decisionPublicKeyPem());
    const cliKey = await runAckd(cliEnv(stack), 'audit', 'decision-key');
    expect(cliKey.stdout).toBe(await stack.deps.decisionPublicKeyPem());

    const r = await runAckd(env(), 'audit', 'verify', '--live', '--json', '--decision-key', `${stack.appUrl}/.well-known/ackd-decision-key.pem`);
    const report = JSON.parse(r.stdout) as { ok: boolean; decisions: { checked: number; valid: number; unsigned: number; invalid: number } };
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.decisions).toMatchObject({ unsigned: 0, invalid: 0 });
    expect(report.decisions.valid).toBe(report.decisions.checked);
    expect(report.decisions.checked).toBeGreaterThanOrEqual(2);
  });
});

describe('a table writer cannot produce an SVID (no signed decision)', () => {
  it('a denied request flipped to approved, with an approved event forged into its outbox: no SVID, a refused event, and `audit verify` reports it', async () => {
    const id = await newRequest();
    await stack.deps.service.decide(id, 'denied', 'operator:bob');
    await stack.settled();
    await forgeApproval(id, 'operator:mallory');
    const r = await check(id);
    expect(r.isError, JSON.stringify(r.structuredContent)).toBe(true);
    expect(errorText(r)).toMatch(/^ERR_(DECISION_UNSIGNED|NOT_APPROVED): /);
    expect((await stack.deps.service.get(id)).svid_id).toBeNull();
    expect((await refusals(id)).some((reason) => reason.startsWith('issuance refused'))).toBe(true);

    const v = await runAckd(env(), 'audit', 'verify', '--live', '--json');
    expect(v.code).toBe(1);
    const report = JSON.parse(v.stdout) as { ok: boolean; problems: { message: string }[]; decisions: { unsigned: number; examples: { request_id: string }[] } };
    expect(report.ok).toBe(false);
    expect(report.problems.some((p) => p.message.includes(id))).toBe(true);
    expect(report.decisions.examples.some((x) => x.request_id === id)).toBe(true);
  });

  it('a pending request approved by a forged, unsigned event that the chain check alone would accept: ERR_DECISION_UNSIGNED, recorded, reported', async () => {
    const id = await newRequest();
    await forgeApproval(id, 'operator:mallory');
    const r = await check(id);
    expect(r.isError).toBe(true);
    expect(errorText(r)).toMatch(/^ERR_DECISION_UNSIGNED: request .* has no valid signed decision \(it carries no signed decision\); no SVID is issued$/);
    expect((await stack.deps.service.get(id)).svid_id).toBeNull();
    expect(await refusals(id)).toContain('issuance refused: ERR_DECISION_UNSIGNED: it carries no signed decision');

    const v = await runAckd(env(), 'audit', 'verify', '--live', '--json', '--strict');
    expect(v.code).toBe(1);
    const report = JSON.parse(v.stdout) as { warnings: string[]; decisions: { unsigned: number; examples: { request_id: string; type: string; problem: string }[] } };
    expect(report.decisions.unsigned).toBeGreaterThanOrEqual(2);
    expect(report.decisions.examples).toContainEqual({ seq: expect.any(Number), request_id: id, type: 'approved', problem: 'it carries no signed decision' });
    expect(report.warnings.some((w) => /decision events? carr(y|ies) no signed decision/.test(w))).toBe(true);
  });

  it("another request's genuine signed decision copied onto a forged approval: its statement does not match, ERR_DECISION_UNSIGNED", async () => {
    const donor = await newRequest();
    const signed = (await stack.deps.service.decide(donor, 'approved', 'operator:alice')).decision_signature!;
    const id = await newRequest();
    await forgeApproval(id, 'operator:alice', signed);
    // The chain's approval carries the very signature the item does: only the statement gives it away.
    expect((await eventsOf(id)).find((e) => e.type === 'approved')!.decision_signature).toEqual(signed);
    const r = await check(id);
    expect(r.isError).toBe(true);
    expect(errorText(r)).toMatch(/^ERR_DECISION_UNSIGNED: .*states another request_id/);
    expect((await stack.deps.service.get(id)).svid_id).toBeNull();

    const publicKey = checkpointPublicKey(await stack.deps.audit.publicKeyPem());
    const decisionKey = checkpointPublicKey(await stack.deps.decisionPublicKeyPem());
    const report = await stack.deps.audit.verifyLive({}, { publicKey, decisionKey });
    expect(report.problems).toContainEqual(expect.objectContaining({ kind: 'decision', message: expect.stringContaining(`approved of ${id}): its signed decision states another request_id`) }));
  });

  it('an approval signed with a key that is not the decision key is refused', async () => {
    const id = await newRequest();
    const { generateKeyPairSync, sign } = await import('node:crypto');
    const { decisionPayload, decisionStatement } = await import('../../lambdas/core/evidence.ts');
    const { keyIdOf } = await import('../../lambdas/core/audit/signing.ts');
    const record = await stack.deps.service.get(id);
    const now = stack.clock.now().toISOString();
    const vote: CastVote = { voter: 'operator:mallory', email: null, vote: 'approve', at: now, groups: [] };
    const statement = decisionStatement(record, { decision: 'approved', approver: 'operator:mallory', decidedAt: now, svidExpiresAt: later(15), votes: [vote] });
    const own = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const forged: SignedDecision = { statement, key_id: keyIdOf(own.publicKey), alg: 'ECDSA_P256_SHA256', signature: sign('sha256', decisionPayload(statement), { key: own.privateKey, dsaEncoding: 'der' }).toString('base64') };
    await forgeApproval(id, 'operator:mallory', forged);
    const r = await check(id);
    expect(r.isError).toBe(true);
    expect(errorText(r)).toMatch(/^ERR_DECISION_UNSIGNED: .*not by the decision key/);
    expect((await readItem(stack, `req#${id}`))!.svid_id).toBeNull();
  });
});
