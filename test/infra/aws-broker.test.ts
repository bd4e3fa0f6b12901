/**
 * Issue 17 on AWS: the deploy setting `awsRoles` gives the MCP function (the broker) sts:AssumeRole
 * and sts:TagSession on exactly the configured roles, sets each role's trust policy to trust only
 * the broker with ackd's session tags, lets the revoking functions put deny policies on those roles
 * and the sweeper reconcile them; cdk-nag stays clean. Without the setting nothing of it exists.
 * Built as throttles.test.ts builds it (buildApp with cdk.json's context, no bundling).
 */
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../bin/cdk.ts';
import { DeployConfigError } from '../../lib/config.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const REPO = join(import.meta.dirname, '..', '..');
const cdkJson = JSON.parse(readFileSync(join(REPO, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
const BASE = { 'ackd:stage': 'ci', 'ackd:trustDomain': 'agents.acme-corp.io', 'ackd:approverEmails': 'alice@acme-corp.io', 'ackd:sender': 'acme-corp.io' };
const DEPLOY = 'arn:aws:iam::111122223333:role/ackd/deploy-prod';
const READER = 'arn:aws:iam::111122223333:role/s3-reader';
const ROLES = { 'deploy-prod': { roleArn: DEPLOY, maxSessionSeconds: 1800 }, reader: READER };

function synth(context: Record<string, unknown> = {}) {
  const app = new App({ context: { ...cdkJson.context, 'aws:cdk:bundling-stacks': [], ...BASE, ...context } });
  const { stack } = buildApp(app);
  const t = Template.fromStack(stack).toJSON() as Json;
  const of = (type: string) => Object.entries(t.Resources as Json).filter(([, r]) => (r as Json).Type === type) as [string, Json][];
  const idOf = (c: unknown) => stack.resolve(stack.getLogicalId((c as { node: { defaultChild: never } }).node.defaultChild)) as string;
  const fns = { mcp: stack.api.mcpFunction, consent: stack.api.consentFunction, sweeper: stack.api.sweeperFunction, auditExport: stack.api.auditExportFunction };
  /** Every statement of the policies attached to a function's role. */
  const statements = (f: (typeof fns)[keyof typeof fns]) => {
    const roleId = idOf(f.role);
    return of('AWS::IAM::Policy')
      .filter(([, p]) => JSON.stringify(p.Properties.Roles).includes(`"${roleId}"`))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Json[]);
  };
  const grants = (f: (typeof fns)[keyof typeof fns], prefix: string) => statements(f).filter((s) => [s.Action].flat().some((a: string) => a.startsWith(prefix)));
  const env = (f: (typeof fns)[keyof typeof fns]) => (t.Resources[idOf(f)] as Json).Properties.Environment.Variables as Record<string, unknown>;
  return { app, stack, t, of, fns, grants, env, idOf };
}

describe('with awsRoles', () => {
  const s = synth({ 'ackd:awsRoles': ROLES });

  it('only the broker (the MCP function) may assume and tag, exactly the configured roles', () => {
    const sts = s.grants(s.fns.mcp, 'sts:');
    expect(sts).toEqual([{ Sid: 'AssumeOnlyConfiguredRoles', Effect: 'Allow', Action: ['sts:AssumeRole', 'sts:TagSession'], Resource: [DEPLOY, READER] }]);
    for (const f of [s.fns.consent, s.fns.sweeper, s.fns.auditExport]) expect(s.grants(f, 'sts:')).toEqual([]);
  });

  it('revoking functions may put deny policies on those roles; only the sweeper lists and deletes them', () => {
    for (const f of [s.fns.mcp, s.fns.consent]) expect(s.grants(f, 'iam:')).toEqual([{ Sid: 'DenyRevokedSessions', Effect: 'Allow', Action: 'iam:PutRolePolicy', Resource: [DEPLOY, READER] }]);
    expect(s.grants(s.fns.sweeper, 'iam:')).toEqual([{ Sid: 'ReconcileRevocationDenies', Effect: 'Allow', Action: ['iam:DeleteRolePolicy', 'iam:ListRolePolicies', 'iam:PutRolePolicy'], Resource: [DEPLOY, READER] }]);
    expect(s.grants(s.fns.auditExport, 'iam:')).toEqual([]);
  });

  it('the functions that build the service get the role map', () => {
    for (const f of [s.fns.mcp, s.fns.consent, s.fns.sweeper]) {
      expect(JSON.parse(s.env(f).ACKD_AWS_ROLES as string)).toEqual({ 'deploy-prod': { roleArn: DEPLOY, maxSessionSeconds: 1800 }, reader: { roleArn: READER, maxSessionSeconds: 3600 } });
    }
  });

  it("each role's trust policy is set to trust only the broker's role, with ackd's session tags", () => {
    const calls = s.of('Custom::AWS').map(([, r]) => r.Properties.Create);
    expect(calls).toHaveLength(2);
    const mcpRole = s.idOf(s.fns.mcp.role);
    for (const [name, arn] of [['deploy-prod', DEPLOY], ['reader', READER]] as const) {
      const call = calls.find((c) => JSON.stringify(c).includes(`ackd-trust-${name}`));
      expect(call, name).toBeDefined();
      const text = JSON.stringify(call);
      expect(text).toContain('UpdateAssumeRolePolicy');
      expect(text).toContain(`\\"RoleName\\":\\"${arn.split('/').pop()}\\"`);
      expect(text).toContain(mcpRole); // the principal is the MCP function's role (GetAtt)
      expect(text).toContain('sts:TagSession');
      expect(text).toContain('aws:RequestTag/ackd_request_id');
    }
    // The provider may update exactly those roles' trust policies.
    const providerGrants = s.of('AWS::IAM::Policy').flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Json[]).filter((st) => [st.Action].flat().includes('iam:UpdateAssumeRolePolicy'));
    expect(providerGrants.map((g) => g.Resource).sort()).toEqual([DEPLOY, READER].sort());
  });

  it('passes cdk-nag AWS Solutions (the synth fails on any unacknowledged finding)', () => {
    expect(() => s.app.synth()).not.toThrow();
  });
});

describe('without awsRoles', () => {
  it('no function may assume a role or touch IAM, and there is no trust custom resource', () => {
    const s = synth();
    for (const f of Object.values(s.fns)) {
      expect(s.grants(f, 'sts:')).toEqual([]);
      expect(s.grants(f, 'iam:')).toEqual([]);
      expect(s.env(f).ACKD_AWS_ROLES).toBeUndefined();
    }
    expect(s.of('Custom::AWS')).toEqual([]);
  });
});

describe('a bad awsRoles stops the synth, naming the setting', () => {
  it.each([
    [{ x: 'arn:aws:iam::1:role/x' }, /awsRoles.*x\.roleArn: must be an IAM role ARN/],
    [{ x: { roleArn: DEPLOY, maxSessionSeconds: 60 } }, /maxSessionSeconds: must be an integer from 900 to 43200/],
    ['{nope', /awsRoles.*must be a JSON object/],
  ])('%j', (value, message) => {
    expect(() => synth({ 'ackd:awsRoles': value })).toThrow(DeployConfigError);
    expect(() => synth({ 'ackd:awsRoles': value })).toThrow(message);
  });
});
