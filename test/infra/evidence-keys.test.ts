/**
 * Issue 13: who may sign decisions and receipts (issue 15: also with existing keys). Pinned on the synthesized template (no bundling):
 * the decision key signs only for the consent API's role, the MCP function may only read its
 * public key (it verifies decisions before minting); the receipt key signs only for the MCP
 * function's role. Both only ECDSA_SHA_256 over a DIGEST, both retained, and no IAM statement
 * in the template lets anyone else sign with either.
 */
import { App, Stack } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { DeployConfigError } from '../../lib/config.ts';
import { EvidenceKey } from '../../lib/constructs/evidence-keys.ts';
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
const grants = (s: Json, action: string) => s.Effect === 'Allow' && (asList(s.Action) as string[]).some((a) => a === action || a === 'kms:*' || a === '*');
const DIGEST = { StringEquals: { 'kms:SigningAlgorithm': 'ECDSA_SHA_256', 'kms:MessageType': 'DIGEST' } };

/** Every IAM statement naming `keyId`'s ARN, with the roles it is attached to. */
function statementsOn(keyId: string): { roles: string[]; s: Json }[] {
  const out: { roles: string[]; s: Json }[] = [];
  for (const [, p] of resources('AWS::IAM::Policy')) {
    const roles = (asList(p.Properties.Roles) as Json[]).map((r) => r.Ref as string);
    for (const s of asList(p.Properties.PolicyDocument.Statement) as Json[]) if (JSON.stringify(s.Resource ?? '').includes(keyId)) out.push({ roles, s });
  }
  return out;
}

describe('the decision and receipt keys', () => {
  const cases = [
    { name: 'decision key', key: () => stack.decisionKey, signer: () => stack.api.consentFunction, readers: () => [stack.api.mcpFunction] },
    { name: 'receipt key', key: () => stack.receiptKey, signer: () => stack.api.mcpFunction, readers: () => [] },
  ];
  for (const c of cases) {
    it(`${c.name}: ECC_NIST_P256 SIGN_VERIFY, retained; its key policy lets one role sign, DIGEST only; IAM agrees`, () => {
      const keyId = idOf(c.key().key!);
      const key = (t.Resources as Json)[keyId] as Json;
      expect(key.Properties).toMatchObject({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
      expect(key.DeletionPolicy).toBe('Retain');
      const stmts = key.Properties.KeyPolicy.Statement as Json[];
      const signers = stmts.filter((s) => grants(s, 'kms:Sign'));
      expect(signers).toHaveLength(1);
      expect(signers[0]!.Principal).toEqual({ AWS: { 'Fn::GetAtt': [roleIdOf(c.signer()), 'Arn'] } });
      expect(signers[0]!.Condition).toEqual(DIGEST);
      for (const s of stmts) for (const a of ['kms:CreateGrant', 'kms:Verify']) expect(grants(s, a), `${s.Sid}: ${a}`).toBe(false);
      // IAM: Sign on this key only for the signer, with the same condition; GetPublicKey for it and the readers.
      const iam = statementsOn(keyId);
      const signing = iam.filter(({ s }) => grants(s, 'kms:Sign'));
      expect(signing.map(({ roles }) => roles)).toEqual([[roleIdOf(c.signer())]]);
      expect(signing[0]!.s.Condition).toEqual(DIGEST);
      const readers = iam.filter(({ s }) => grants(s, 'kms:GetPublicKey')).flatMap(({ roles }) => roles).sort();
      expect(readers).toEqual([c.signer(), ...c.readers()].map(roleIdOf).sort());
    });
  }

  it('the functions are told their keys: the consent API signs decisions, the MCP function verifies them and signs receipts', () => {
    const env = (f: { node: { defaultChild?: unknown } }) => ((t.Resources as Json)[idOf(f)] as Json).Properties.Environment.Variables as Json;
    const arn = (k: EvidenceKey) => ({ 'Fn::Join': ['', ['kms:', { 'Fn::GetAtt': [idOf(k.key!), 'Arn'] }]] });
    expect(env(stack.api.consentFunction).ACKD_DECISION_KEY).toEqual(arn(stack.decisionKey));
    expect(env(stack.api.consentFunction).ACKD_RECEIPT_KEY).toBeUndefined();
    expect(env(stack.api.mcpFunction).ACKD_DECISION_PUBLIC_KEY).toEqual(arn(stack.decisionKey));
    expect(env(stack.api.mcpFunction).ACKD_DECISION_KEY).toBeUndefined();
    expect(env(stack.api.mcpFunction).ACKD_RECEIPT_KEY).toEqual(arn(stack.receiptKey));
    expect(env(stack.api.sweeperFunction).ACKD_DECISION_KEY).toBeUndefined();
  });
});

const DECISION_ARN = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const RECEIPT_ARN = 'arn:aws:kms:eu-west-1:123456789012:key/mrk-0123456789abcdef0123456789abcdef';

describe('existing keys (decisionKeyArn, receiptKeyArn)', () => {
  let ex: { stack: AckdStack; t: Json };
  beforeAll(() => {
    const { stack: s, t: tt } = synthStack({ decisionKeyArn: DECISION_ARN, receiptKeyArn: RECEIPT_ARN });
    ex = { stack: s, t: tt };
  }, 120_000);

  const exIdOf = (c: { node: { defaultChild?: unknown } }) => ex.stack.resolve(ex.stack.getLogicalId(c.node.defaultChild as never)) as string;
  /** Every IAM statement of the template that grants `action` on `arn`, with its roles. */
  const grantsOn = (arn: string, action: string) =>
    resourcesOf(ex.t, 'AWS::IAM::Policy').flatMap(([, p]) =>
      (asList(p.Properties.PolicyDocument.Statement) as Json[])
        .filter((s) => grants(s, action) && asList(s.Resource).includes(arn))
        .map((s) => ({ roles: (asList(p.Properties.Roles) as Json[]).map((r) => r.Ref as string).sort(), condition: s.Condition as unknown })),
    );

  it('creates neither key nor alias: the only KMS keys left are the audit key, the outbox seal key and the alarm topic\'s', () => {
    expect(ex.stack.decisionKey.key).toBeUndefined();
    expect(ex.stack.receiptKey.key).toBeUndefined();
    expect(resourcesOf(ex.t, 'AWS::KMS::Key').map(([id]) => id).sort()).toEqual([exIdOf(ex.stack.auditKey.key!), exIdOf(ex.stack.observability.topicKey), exIdOf(ex.stack.outboxSeal.key)].sort());
    const aliases = resourcesOf(ex.t, 'AWS::KMS::Alias').map(([, a]) => a.Properties.AliasName as string);
    expect(aliases.sort()).toEqual(['alias/ackd/ci/audit-checkpoints', 'alias/ackd/ci/outbox-seal']);
    // No key policy anywhere names the functions for these keys (the stack cannot write one).
    expect(JSON.stringify(ex.t)).not.toContain('SignDecisionsOnly');
    expect(JSON.stringify(ex.t)).not.toContain('SignReceiptsOnly');
  });

  it('decision key: IAM lets the consent function alone sign (DIGEST only) and the consent and MCP functions read its public key', () => {
    const consent = exIdOf(ex.stack.api.consentFunction.role as never);
    const mcp = exIdOf(ex.stack.api.mcpFunction.role as never);
    expect(grantsOn(DECISION_ARN, 'kms:Sign')).toEqual([{ roles: [consent], condition: DIGEST }]);
    expect(grantsOn(DECISION_ARN, 'kms:GetPublicKey').flatMap((g) => g.roles).sort()).toEqual([consent, mcp].sort());
  });

  it('receipt key: IAM lets the MCP function alone sign (DIGEST only) and read its public key; nobody else touches it', () => {
    const mcp = exIdOf(ex.stack.api.mcpFunction.role as never);
    expect(grantsOn(RECEIPT_ARN, 'kms:Sign')).toEqual([{ roles: [mcp], condition: DIGEST }]);
    expect(grantsOn(RECEIPT_ARN, 'kms:GetPublicKey').flatMap((g) => g.roles)).toEqual([mcp]);
  });

  it('the functions are told the given keys; the outputs name the keys and the signer roles the key policies must name', () => {
    const env = (f: { node: { defaultChild?: unknown } }) => ((ex.t.Resources as Json)[exIdOf(f)] as Json).Properties.Environment.Variables as Json;
    expect(env(ex.stack.api.consentFunction).ACKD_DECISION_KEY).toBe(`kms:${DECISION_ARN}`);
    expect(env(ex.stack.api.mcpFunction).ACKD_DECISION_PUBLIC_KEY).toBe(`kms:${DECISION_ARN}`);
    expect(env(ex.stack.api.mcpFunction).ACKD_RECEIPT_KEY).toBe(`kms:${RECEIPT_ARN}`);
    const o = ex.t.Outputs as Json;
    expect(o.DecisionKeyArn.Value).toBe(DECISION_ARN);
    expect(o.ReceiptKeyArn.Value).toBe(RECEIPT_ARN);
    expect(o.DecisionSignerRoleArn.Value).toEqual({ 'Fn::GetAtt': [exIdOf(ex.stack.api.consentFunction.role as never), 'Arn'] });
    expect(o.ReceiptSignerRoleArn.Value).toEqual({ 'Fn::GetAtt': [exIdOf(ex.stack.api.mcpFunction.role as never), 'Arn'] });
    const info = Annotations.fromStack(ex.stack).findInfo('*', Match.stringLikeRegexp('existing KMS key')).map((m) => String(m.entry.data));
    expect(info.some((m) => m.includes(DECISION_ARN) && m.includes('DecisionSignerRoleArn'))).toBe(true);
    expect(info.some((m) => m.includes(RECEIPT_ARN) && m.includes('ReceiptSignerRoleArn'))).toBe(true);
  });

  it('created keys have no signer-role outputs (their key policies already name the signers)', () => {
    expect((t.Outputs as Json).DecisionSignerRoleArn).toBeUndefined();
    expect((t.Outputs as Json).ReceiptSignerRoleArn).toBeUndefined();
  });

  it('refuses a key in another region than the stack\'s, naming the setting', () => {
    const s = new Stack(new App(), 'T', { env: { account: '123456789012', region: 'us-east-1' } });
    let err: unknown;
    try {
      new EvidenceKey(s, 'ReceiptKey', { stage: 'ci', name: 'receipts', description: 'x', existingKeyArn: RECEIPT_ARN });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DeployConfigError);
    expect((err as DeployConfigError).setting).toBe('receiptKeyArn');
    expect((err as Error).message).toMatch(/eu-west-1.*us-east-1/);
  });
});
