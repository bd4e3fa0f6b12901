/**
 * Issue 15: who may sign with the audit checkpoint key. README: only the sweeper signs checkpoints.
 * Pinned on the synthesized template (no bundling: `aws:cdk:bundling-stacks` none), both halves
 * of KMS authorization:
 *  - the key policy: only the sweeper's role may kms:Sign; the account (IAM) administers the key
 *    without Sign, Verify or CreateGrant;
 *  - every IAM policy in the template: no statement grants kms:Sign (or deletion, or an alias
 *    move onto a key) on `*`, on `key/*` without SPIRE's alias condition, or on the audit key for
 *    anyone but the sweeper.
 */
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../bin/cdk.ts';
import type { AckdStack } from '../../lib/stacks/ackd-stack.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const REPO = join(import.meta.dirname, '..', '..');
/** The aliases SPIRE's aws_kms key manager gives this stage's servers (trust domain agents.acme-corp.io, `.` → `_`): the single server's, and the HA servers' (`ackd-ci_<task id>`). */
const SPIRE_ALIASES = ['alias/SPIRE_SERVER/agents_acme-corp_io/ackd-ci/*', 'alias/SPIRE_SERVER/agents_acme-corp_io/ackd-ci_*/*'];
const SPIRE_CONDITION = { 'ForAnyValue:StringLike': { 'kms:ResourceAliases': SPIRE_ALIASES } };
/** Actions that would let a principal sign with a key, or get others to (grants), or destroy it. */
const DANGEROUS = ['kms:Sign', 'kms:CreateGrant', 'kms:ScheduleKeyDeletion'];

let stack: AckdStack;
let t: Json;

beforeAll(() => {
  const cdkJson = JSON.parse(readFileSync(join(REPO, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
  const app = new App({
    context: {
      ...cdkJson.context,
      'aws:cdk:bundling-stacks': [],
      'ackd:stage': 'ci',
      'ackd:trustDomain': 'agents.acme-corp.io',
      'ackd:approverEmails': 'alice@acme-corp.io',
      'ackd:sender': 'acme-corp.io',
    },
  });
  stack = buildApp(app).stack;
  t = Template.fromStack(stack).toJSON() as Json;
}, 120_000);

const asList = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const resources = (type: string) => Object.entries(t.Resources as Json).filter(([, r]) => (r as Json).Type === type) as [string, Json][];
const logicalIdOf = (c: { node: { defaultChild?: unknown } }) => stack.resolve(stack.getLogicalId(c.node.defaultChild as never)) as string;

/** IAM action patterns are case-insensitive globs (`*`, `?`). */
function actionMatches(pattern: string, action: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return re.test(action);
}
const grantsAction = (s: Json, action: string) =>
  s.Effect === 'Allow' && (s.NotAction !== undefined || (asList(s.Action) as string[]).some((p) => actionMatches(p, action)));

interface IamStatement {
  where: string;
  /** Logical ids of the roles the statement is attached to. */
  roles: string[];
  statement: Json;
}
/** Every statement of every identity policy in the template: AWS::IAM::Policy, ManagedPolicy, and roles' inline Policies. */
function iamStatements(): IamStatement[] {
  const out: IamStatement[] = [];
  for (const type of ['AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy']) {
    for (const [id, p] of resources(type)) {
      const roles = (asList(p.Properties.Roles) as Json[]).map((r) => r.Ref as string);
      for (const s of asList(p.Properties.PolicyDocument.Statement) as Json[]) out.push({ where: id, roles, statement: s });
    }
  }
  for (const [id, r] of resources('AWS::IAM::Role')) {
    for (const p of asList(r.Properties.Policies) as Json[]) {
      for (const s of asList(p.PolicyDocument.Statement) as Json[]) out.push({ where: `${id}/${p.PolicyName}`, roles: [id], statement: s });
    }
  }
  return out;
}

const auditKeyId = () => logicalIdOf(stack.auditKey.key!);
const auditKeyArn = () => ({ 'Fn::GetAtt': [auditKeyId(), 'Arn'] });
const sweeperRoleId = () => logicalIdOf(stack.api.sweeperFunction.role as never);
const spireTaskRoleId = () => logicalIdOf(stack.spire.taskDefinition.taskRole as never);
const isKeyWildcard = (r: unknown) => r === '*' || JSON.stringify(r).includes(':key/*');

/**
 * Why `statement` could let its roles do `action` on the audit key, or undefined when it cannot:
 * allowed are the sweeper's statement on the audit key itself, and `key/*` only under SPIRE's
 * alias condition (the audit key carries no SPIRE alias and no IAM statement can give it one).
 */
function auditKeyExposure({ roles, statement: s }: IamStatement, action: string): string | undefined {
  if (!grantsAction(s, action)) return undefined;
  for (const r of asList(s.Resource)) {
    if (JSON.stringify(r) === JSON.stringify(auditKeyArn())) {
      if (!(action === 'kms:Sign' && roles.length === 1 && roles[0] === sweeperRoleId())) return `${action} on the audit key for ${roles.join(',')}`;
    } else if (isKeyWildcard(r)) {
      if (JSON.stringify(s.Condition) !== JSON.stringify(SPIRE_CONDITION)) return `${action} on ${JSON.stringify(r)} without SPIRE's alias condition`;
    }
  }
  if (s.NotResource !== undefined) return `${action} with NotResource`;
  return undefined;
}

describe('the audit checkpoint key: only the sweeper signs', () => {
  it('the key policy lets only the sweeper role kms:Sign, and only ECDSA_SHA_256 over RAW messages', () => {
    const [, key] = resources('AWS::KMS::Key').find(([id]) => id === auditKeyId())!;
    const stmts = key.Properties.KeyPolicy.Statement as Json[];
    const signers = stmts.filter((s) => grantsAction(s, 'kms:Sign'));
    expect(signers).toHaveLength(1);
    expect(signers[0]!.Principal).toEqual({ AWS: { 'Fn::GetAtt': [sweeperRoleId(), 'Arn'] } });
    expect(asList(signers[0]!.Action)).toEqual(['kms:Sign']);
    expect(signers[0]!.Condition).toEqual({ StringEquals: { 'kms:SigningAlgorithm': 'ECDSA_SHA_256', 'kms:MessageType': 'RAW' } });
    // Nothing in the key policy hands Sign on through the account (IAM), a grant, or a wildcard.
    for (const s of stmts) {
      expect(s.Effect).toBe('Allow');
      expect(s.NotAction, s.Sid).toBeUndefined();
      expect(s.NotPrincipal, s.Sid).toBeUndefined();
      for (const a of asList(s.Action) as string[]) expect(a, s.Sid).not.toContain('*');
      for (const a of ['kms:CreateGrant', 'kms:Verify', 'kms:Decrypt', 'kms:GenerateMac']) expect(grantsAction(s, a), `${s.Sid}: ${a}`).toBe(false);
      if (s !== signers[0]) expect(JSON.stringify(s.Principal), s.Sid).toMatch(/:iam::.*:root/);
    }
    // The account still administers the key (CloudFormation updates it; operators can delete it).
    const admin = stmts.find((s) => grantsAction(s, 'kms:PutKeyPolicy'))!;
    for (const a of ['kms:DescribeKey', 'kms:CreateAlias', 'kms:TagResource', 'kms:ScheduleKeyDeletion', 'kms:CancelKeyDeletion']) expect(grantsAction(admin, a), a).toBe(true);
    // The public key stays readable through IAM (the export function, operators' CLI).
    expect(stmts.some((s) => grantsAction(s, 'kms:GetPublicKey') && JSON.stringify(s.Principal).includes(':root'))).toBe(true);
  });

  it('no IAM policy in the template lets anyone but the sweeper sign with it, grant it, or schedule its deletion', () => {
    const stmts = iamStatements();
    expect(stmts.length).toBeGreaterThan(10);
    const problems = stmts.flatMap((st) => DANGEROUS.map((a) => auditKeyExposure(st, a)).filter(Boolean).map((p) => `${st.where}: ${p}`));
    expect(problems).toEqual([]);
    // kms:Sign on the audit key: the sweeper's statement, and only it.
    const onKey = stmts.filter((st) => grantsAction(st.statement, 'kms:Sign') && JSON.stringify(st.statement.Resource).includes(auditKeyId()));
    expect(onKey.map((st) => st.roles)).toEqual([[sweeperRoleId()]]);
  });

  it('no IAM policy can point an alias at an arbitrary key (which would satisfy an alias condition): the key side of alias changes is never granted on key/* or *', () => {
    for (const st of iamStatements()) {
      for (const a of ['kms:CreateAlias', 'kms:UpdateAlias']) {
        if (!grantsAction(st.statement, a)) continue;
        for (const r of asList(st.statement.Resource)) {
          expect(isKeyWildcard(r), `${st.where}: ${a} on ${JSON.stringify(r)}`).toBe(false);
          expect(JSON.stringify(r), `${st.where}: ${a}`).not.toContain(auditKeyId());
        }
      }
    }
  });

  it('the checks above catch the grant issue 15 found (SPIRE: kms:Sign on key/* without a condition)', () => {
    const bad: IamStatement = {
      where: 'example',
      roles: ['SpireTaskRole'],
      statement: { Effect: 'Allow', Action: ['kms:Sign', 'kms:ScheduleKeyDeletion'], Resource: 'arn:aws:kms:eu-west-1:123456789012:key/*' },
    };
    expect(auditKeyExposure(bad, 'kms:Sign')).toMatch(/without SPIRE's alias condition/);
    expect(auditKeyExposure(bad, 'kms:ScheduleKeyDeletion')).toMatch(/without SPIRE's alias condition/);
    expect(auditKeyExposure({ ...bad, statement: { Effect: 'Allow', Action: 'kms:*', Resource: '*' } }, 'kms:Sign')).toBeDefined();
    expect(auditKeyExposure({ ...bad, statement: { ...bad.statement, Condition: SPIRE_CONDITION } }, 'kms:Sign')).toBeUndefined();
  });
});

describe("SPIRE's task role: its own KMS keys only", () => {
  const spireStatements = () => iamStatements().filter((st) => st.roles.includes(spireTaskRoleId()));

  it('every statement that uses, reads or deletes a key carries the SPIRE alias condition', () => {
    const use = spireStatements().filter((st) => ['kms:Sign', 'kms:GetPublicKey', 'kms:ScheduleKeyDeletion'].some((a) => grantsAction(st.statement, a)));
    expect(use.length).toBeGreaterThan(0);
    for (const st of use) {
      expect(st.statement.Condition, st.statement.Sid).toEqual(SPIRE_CONDITION);
      expect(asList(st.statement.Resource).map((r) => JSON.stringify(r)).every((r) => r.includes(':key/*')), st.statement.Sid).toBe(true);
    }
    // SPIRE keeps what its aws_kms key manager needs (README, "Deploy on AWS").
    const actions = new Set(spireStatements().flatMap((st) => asList(st.statement.Action) as string[]));
    for (const a of ['kms:CreateKey', 'kms:ListKeys', 'kms:ListAliases', 'kms:DescribeKey', 'kms:GetPublicKey', 'kms:Sign', 'kms:ScheduleKeyDeletion', 'kms:CreateAlias', 'kms:UpdateAlias', 'kms:DeleteAlias']) {
      expect(actions.has(a), a).toBe(true);
    }
  });

  it('the unconditioned Resource * statement holds no action that acts on an existing key', () => {
    for (const st of spireStatements()) {
      if (!asList(st.statement.Resource).includes('*')) continue;
      expect(st.statement.Condition, st.statement.Sid).toBeUndefined();
      for (const a of ['kms:Sign', 'kms:GetPublicKey', 'kms:ScheduleKeyDeletion', 'kms:CreateAlias', 'kms:UpdateAlias', 'kms:DeleteAlias', 'kms:PutKeyPolicy', 'kms:CreateGrant', 'kms:DisableKey']) {
        expect(grantsAction(st.statement, a), `${st.statement.Sid}: ${a}`).toBe(false);
      }
    }
  });

  it("aliases only under this stage's SPIRE server ids in this trust domain", () => {
    const aliasStmts = spireStatements().filter((st) => grantsAction(st.statement, 'kms:CreateAlias'));
    expect(aliasStmts).toHaveLength(1);
    expect(asList(aliasStmts[0]!.statement.Resource).map((r) => JSON.stringify(r))).toEqual(
      SPIRE_ALIASES.map((a) => JSON.stringify({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':kms:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, `:${a}`]] })),
    );
  });
});
