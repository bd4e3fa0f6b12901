/**
 * Issue 13: who may sign decisions and receipts. Pinned on the synthesized template (no bundling):
 * the decision key signs only for the consent API's role, the MCP function may only read its
 * public key (it verifies decisions before minting); the receipt key signs only for the MCP
 * function's role. Both only ECDSA_SHA_256 over a DIGEST, both retained, and no IAM statement
 * in the template lets anyone else sign with either.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { AckdStack } from '../../lib/stacks/ackd-stack.ts';
import { synthStack, type Json } from '../helpers/synth-stack.ts';

let stack: AckdStack;
let t: Json;

beforeAll(() => {
  ({ stack, t } = synthStack());
}, 120_000);

const asList = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const idOf = (c: { node: { defaultChild?: unknown } }) => stack.resolve(stack.getLogicalId(c.node.defaultChild as never)) as string;
const roleIdOf = (f: { role?: unknown }) => idOf(f.role as never);
const resources = (type: string) => Object.entries(t.Resources as Json).filter(([, r]) => (r as Json).Type === type) as [string, Json][];
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
      const keyId = idOf(c.key().key);
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
    const arn = (k: { key: { node: { defaultChild?: unknown } } }) => ({ 'Fn::Join': ['', ['kms:', { 'Fn::GetAtt': [idOf(k.key), 'Arn'] }]] });
    expect(env(stack.api.consentFunction).ACKD_DECISION_KEY).toEqual(arn(stack.decisionKey));
    expect(env(stack.api.consentFunction).ACKD_RECEIPT_KEY).toBeUndefined();
    expect(env(stack.api.mcpFunction).ACKD_DECISION_PUBLIC_KEY).toEqual(arn(stack.decisionKey));
    expect(env(stack.api.mcpFunction).ACKD_DECISION_KEY).toBeUndefined();
    expect(env(stack.api.mcpFunction).ACKD_RECEIPT_KEY).toEqual(arn(stack.receiptKey));
    expect(env(stack.api.sweeperFunction).ACKD_DECISION_KEY).toBeUndefined();
  });
});
