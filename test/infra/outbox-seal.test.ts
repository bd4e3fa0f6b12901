/**
 * Who may seal audit outbox entries, pinned on the synthesized template (no bundling): the seal key
 * is an HMAC_256 GENERATE_VERIFY_MAC key; kms:GenerateMac (HMAC_SHA_256 only) is allowed to the
 * roles of the functions that write audit events and of the sequencer (MCP, consent API, sweeper),
 * in the key policy and in their own IAM policies, and to no other principal: no other role's IAM
 * statement, and no key policy statement for the account, allows GenerateMac (or kms:*) on it.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { AckdStack } from '../../lib/stacks/ackd-stack.ts';
import { asList, logicalIdIn, resourcesOf, synthStack, type Json } from '../helpers/synth-stack.ts';

let stack: AckdStack;
let t: Json;

beforeAll(() => {
  ({ stack, t } = synthStack());
}, 120_000);

const idOf = (c: { node: { defaultChild?: unknown } }) => logicalIdIn(stack, c);
const roleIdOf = (f: { role?: unknown }) => idOf(f.role as never);
const resources = (type: string) => resourcesOf(t, type);
/** Whether a statement allows `action` (itself, kms:*, kms:Generate*, or *). */
const allows = (s: Json, action: string) =>
  s.Effect === 'Allow' && (asList(s.Action) as string[]).some((a) => a === action || a === '*' || (a.endsWith('*') && action.startsWith(a.slice(0, -1))));

describe('the outbox seal key', () => {
  it('is an HMAC_256 key for GENERATE_VERIFY_MAC with an alias; the account administers it but may not use it', () => {
    const key = (t.Resources as Json)[idOf(stack.outboxSeal.key)] as Json;
    expect(key.Properties).toMatchObject({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    const stmts = key.Properties.KeyPolicy.Statement as Json[];
    for (const s of stmts) for (const a of ['kms:VerifyMac', 'kms:CreateGrant', 'kms:Encrypt', 'kms:Decrypt']) expect(allows(s, a), `${s.Sid}: ${a}`).toBe(false);
    const account = stmts.filter((s) => JSON.stringify(s.Principal).includes(':root'));
    expect(account.map((s) => s.Sid)).toEqual(['KeyAdministrationWithoutUse']);
    const aliases = resources('AWS::KMS::Alias').filter(([, a]) => JSON.stringify(a.Properties.TargetKeyId).includes(idOf(stack.outboxSeal.key)));
    expect(aliases.map(([, a]) => a.Properties.AliasName)).toEqual(['alias/ackd/ci/outbox-seal']);
  });

  it('no other principal may GenerateMac with it: the key policy names the writers and the sequencer, HMAC_SHA_256 only, and IAM agrees', () => {
    const keyId = idOf(stack.outboxSeal.key);
    const writers = [stack.api.mcpFunction, stack.api.consentFunction, stack.api.sweeperFunction].map(roleIdOf).sort();
    const key = (t.Resources as Json)[keyId] as Json;
    const macs = (key.Properties.KeyPolicy.Statement as Json[]).filter((s) => allows(s, 'kms:GenerateMac'));
    expect(macs).toHaveLength(1);
    expect(macs[0]!.Condition).toEqual({ StringEquals: { 'kms:MacAlgorithm': 'HMAC_SHA_256' } });
    const principals = asList((macs[0]!.Principal as Json).AWS) as Json[];
    expect(principals.map((p) => (p['Fn::GetAtt'] as string[])[0]).sort()).toEqual(writers);
    // Every IAM statement in the template that allows GenerateMac on this key (or on every key), by the roles it is attached to.
    const granted: string[] = [];
    for (const [, p] of resources('AWS::IAM::Policy')) {
      for (const s of asList(p.Properties.PolicyDocument.Statement) as Json[]) {
        if (!allows(s, 'kms:GenerateMac')) continue;
        const onKey = asList(s.Resource).some((r) => r === '*' || JSON.stringify(r).includes(keyId));
        if (!onKey) continue;
        expect(s.Condition).toEqual({ StringEquals: { 'kms:MacAlgorithm': 'HMAC_SHA_256' } });
        granted.push(...(asList(p.Properties.Roles) as Json[]).map((r) => r.Ref as string));
      }
    }
    expect(granted.sort()).toEqual(writers);
    // Managed policies and roles' inline policies grant it to nobody.
    for (const [id, r] of [...resources('AWS::IAM::Role'), ...resources('AWS::IAM::ManagedPolicy')]) {
      const docs = [...(asList(r.Properties.Policies) as Json[]).map((p) => p.PolicyDocument), r.Properties.PolicyDocument].filter(Boolean) as Json[];
      for (const d of docs) for (const s of asList(d.Statement) as Json[]) expect(allows(s, 'kms:GenerateMac'), id).toBe(false);
    }
  });

  it('the writers and the sequencer find the key in ACKD_OUTBOX_SEAL_KEY; no other function has it; the stack outputs its ARN', () => {
    expect(t.Outputs.OutboxSealKeyArn.Value).toEqual({ 'Fn::GetAtt': [idOf(stack.outboxSeal.key), 'Arn'] });
    const expected = { 'Fn::Join': ['', ['kms:', { 'Fn::GetAtt': [idOf(stack.outboxSeal.key), 'Arn'] }]] };
    const withKey = resources('AWS::Lambda::Function')
      .filter(([, f]) => f.Properties.Environment?.Variables?.ACKD_OUTBOX_SEAL_KEY !== undefined)
      .map(([id, f]) => {
        expect(f.Properties.Environment.Variables.ACKD_OUTBOX_SEAL_KEY, id).toEqual(expected);
        return id;
      });
    expect(withKey.sort()).toEqual([stack.api.mcpFunction, stack.api.consentFunction, stack.api.sweeperFunction].map((f) => idOf(f)).sort());
  });

  it("the sequencer's refusals are counted: a metric filter on the sweeper's log group makes ERR_AUDIT_ENTRY_REFUSED lines ackd/AuditEntriesRefused", () => {
    const filters = resources('AWS::Logs::MetricFilter').filter(([, f]) => String(f.Properties.FilterPattern).includes('ERR_AUDIT_ENTRY_REFUSED'));
    expect(filters).toHaveLength(1);
    const filter = filters[0]![1];
    expect(filter.Properties.LogGroupName).toEqual({ Ref: idOf(stack.api.sweeperFunction.logGroup as never) });
    expect(filter.Properties.FilterPattern).toBe('{ $.code = "ERR_AUDIT_ENTRY_REFUSED" }');
    expect(filter.Properties.MetricTransformations).toEqual([{ MetricNamespace: 'ackd', MetricName: 'AuditEntriesRefused', MetricValue: '1', Dimensions: [{ Key: 'stage', Value: '$.stage' }] }]);
  });
});
