/**
 * Issue 17 on AWS: the deploy setting `awsRoles` creates the AWS credentials function (the broker,
 * POST /v1/aws/credentials, issue 15: out of the MCP function), gives it alone sts:AssumeRole and
 * sts:TagSession on exactly the configured roles, sets each role's trust policy to trust only the
 * broker with ackd's session tags, lets the revoking functions (MCP, consent) put deny policies on
 * those roles and the sweeper reconcile them; the HTTP API routes /v1/aws/* to the broker, which has
 * its own reserved concurrency and alarms; cdk-nag stays clean. Without the setting nothing of it exists.
 * Built as throttles.test.ts builds it (buildApp with cdk.json's context, no bundling).
 */
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
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
  const fns = {
    mcp: stack.api.mcpFunction,
    consent: stack.api.consentFunction,
    sweeper: stack.api.sweeperFunction,
    auditExport: stack.api.auditExportFunction,
    ...(stack.api.awsCredentialsFunction ? { broker: stack.api.awsCredentialsFunction } : {}),
  };
  /** Every statement of the policies attached to a function's role. */
  const statements = (f: NodejsFunction) => {
    const roleId = idOf(f.role);
    return of('AWS::IAM::Policy')
      .filter(([, p]) => JSON.stringify(p.Properties.Roles).includes(`"${roleId}"`))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Json[]);
  };
  const grants = (f: NodejsFunction, prefix: string) => statements(f).filter((s) => [s.Action].flat().some((a: string) => a.startsWith(prefix)));
  const env = (f: NodejsFunction) => (t.Resources[idOf(f)] as Json).Properties.Environment.Variables as Record<string, unknown>;
  return { app, stack, t, of, fns, grants, env, idOf };
}

describe('with awsRoles', () => {
  const s = synth({ 'ackd:awsRoles': ROLES });
  const broker = s.fns.broker!;

  it('only the broker (the AWS credentials function, not the MCP function) may assume and tag, exactly the configured roles', () => {
    expect(broker).toBeDefined();
    const sts = s.grants(broker, 'sts:');
    expect(sts).toEqual([{ Sid: 'AssumeOnlyConfiguredRoles', Effect: 'Allow', Action: ['sts:AssumeRole', 'sts:TagSession'], Resource: [DEPLOY, READER] }]);
    for (const f of [s.fns.mcp, s.fns.consent, s.fns.sweeper, s.fns.auditExport]) expect(s.grants(f, 'sts:')).toEqual([]);
  });

  it('revoking functions (MCP, consent) may put deny policies on those roles; only the sweeper lists and deletes them; the broker touches no IAM', () => {
    for (const f of [s.fns.mcp, s.fns.consent]) expect(s.grants(f, 'iam:')).toEqual([{ Sid: 'DenyRevokedSessions', Effect: 'Allow', Action: 'iam:PutRolePolicy', Resource: [DEPLOY, READER] }]);
    expect(s.grants(s.fns.sweeper, 'iam:')).toEqual([{ Sid: 'ReconcileRevocationDenies', Effect: 'Allow', Action: ['iam:DeleteRolePolicy', 'iam:ListRolePolicies', 'iam:PutRolePolicy'], Resource: [DEPLOY, READER] }]);
    expect(s.grants(s.fns.auditExport, 'iam:')).toEqual([]);
    expect(s.grants(broker, 'iam:')).toEqual([]);
  });

  it('the broker reads and writes only the table items it needs (no Query, Scan or Delete), reads the bridge key, seals its event, and signs nothing', () => {
    const ddb = s.grants(broker, 'dynamodb:');
    expect(ddb.map((g) => [g.Sid, [g.Action].flat().sort()])).toEqual([['IssueAwsCredentials', ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']]]);
    expect(s.grants(broker, 'secretsmanager:').map((g) => g.Sid)).toEqual(['ReadBridgeKey']);
    // It writes the aws_credentials_issued event, so it seals it: GenerateMac on the outbox seal key only, nothing else of KMS.
    const kmsGrants = s.grants(broker, 'kms:');
    expect(kmsGrants.map((g) => [g.Sid, g.Action])).toEqual([['SealOutboxEntries', 'kms:GenerateMac']]);
    expect(JSON.stringify(kmsGrants[0]!.Resource)).toContain(s.idOf(s.stack.outboxSeal.key));
    expect(s.env(broker).ACKD_OUTBOX_SEAL_KEY).toBeDefined();
    expect(s.grants(broker, 'ses:')).toEqual([]);
  });

  it('the HTTP API routes /v1/aws/* to the broker, with the agents\' throttle; everything else stays where it was', () => {
    const routes = s.of('AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties);
    const target = (key: string) => JSON.stringify(routes.find((r) => r.RouteKey === key)?.Target);
    const integrationOf = (fn: NodejsFunction) => {
      const [id] = s.of('AWS::ApiGatewayV2::Integration').find(([, i]) => JSON.stringify(i.Properties.IntegrationUri).includes(s.idOf(fn))) ?? [];
      return id;
    };
    expect(routes.map((r) => r.RouteKey).sort()).toEqual(['$default', 'ANY /api/{proxy+}', 'ANY /v1/aws/{proxy+}']);
    expect(target('ANY /v1/aws/{proxy+}')).toContain(integrationOf(broker)!);
    expect(target('$default')).toContain(integrationOf(s.fns.mcp)!);
    const stage = s.of('AWS::ApiGatewayV2::Stage')[0]![1].Properties;
    expect(stage.RouteSettings['ANY /v1/aws/{proxy+}']).toEqual(stage.RouteSettings.$default);
  });

  it('the broker runs in the private subnets with its own security group (HTTPS out, the bridge port to SPIRE), which the bridge admits', () => {
    const props = (t: Json, f: NodejsFunction) => (t.Resources[s.idOf(f)] as Json).Properties;
    const vpc = props(s.t, broker).VpcConfig;
    expect(vpc.SubnetIds.length).toBeGreaterThan(0);
    expect(vpc.SecurityGroupIds).toHaveLength(1);
    expect(JSON.stringify(vpc.SecurityGroupIds)).not.toEqual(JSON.stringify(props(s.t, s.fns.mcp).VpcConfig.SecurityGroupIds));
    const sgId = s.idOf(s.stack.api.awsCredentialsSecurityGroup);
    const sg = (s.t.Resources[sgId] as Json).Properties;
    expect(sg.SecurityGroupEgress.map((e: Json) => e.FromPort)).toEqual([443]);
    const bridgeRules = s.of('AWS::EC2::SecurityGroupIngress').map(([, r]) => r.Properties).filter((r) => JSON.stringify(r.SourceSecurityGroupId).includes(sgId));
    expect(bridgeRules).toHaveLength(1);
    const egressToBridge = s.of('AWS::EC2::SecurityGroupEgress').map(([, r]) => r.Properties).filter((r) => JSON.stringify(r.GroupId).includes(sgId));
    expect(egressToBridge).toHaveLength(1);
    expect(egressToBridge[0]!.FromPort).toBe(bridgeRules[0]!.FromPort);
  });

  it('the broker\'s ERR_ISSUER_UNAVAILABLE lines count toward the IssuerUnavailable alarm, as the MCP function\'s do', () => {
    const filters = s.of('AWS::Logs::MetricFilter').map(([, f]) => f.Properties).filter((f) => f.FilterPattern === '{ $.code = "ERR_ISSUER_UNAVAILABLE" }');
    expect(filters.map((f) => JSON.stringify(f.LogGroupName)).sort()).toEqual([broker, s.fns.mcp].map((f) => JSON.stringify({ Ref: s.idOf(f.logGroup) })).sort());
    for (const f of filters) expect(f.MetricTransformations[0].MetricName).toBe('IssuerUnavailable');
  });

  it('the broker has its own reserved concurrency (default 10) and Errors and Throttles alarms, like the other functions that serve people', () => {
    expect((s.t.Resources[s.idOf(broker)] as Json).Properties.ReservedConcurrentExecutions).toBe(10);
    const alarms = s.of('AWS::CloudWatch::Alarm').map(([, a]) => a.Properties).filter((a) => JSON.stringify(a.Dimensions ?? []).includes(s.idOf(broker)));
    expect(alarms.map((a) => a.MetricName).sort()).toEqual(['Errors', 'Throttles']);
  });

  it('the broker runs the aws-credentials handler with SPIRE through the bridge, the role map and the consent URL', () => {
    const p = (s.t.Resources[s.idOf(broker)] as Json).Properties;
    expect(p.TracingConfig).toEqual({ Mode: 'Active' });
    const e = s.env(broker);
    expect(e.ACKD_MINTER).toBe('spire-remote');
    for (const k of ['ACKD_SPIRE_BRIDGE_URL', 'ACKD_SPIRE_BRIDGE_SECRET_ARN', 'ACKD_CONSENT_URL', 'ACKD_TABLE_NAME', 'ACKD_TRUST_DOMAIN']) expect(e[k], k).toBeDefined();
    for (const k of ['ACKD_RECEIPT_KEY', 'ACKD_DECISION_KEY', 'ACKD_DECISION_PUBLIC_KEY', 'ACKD_AUDIT_KEY', 'ACKD_ROUTES']) expect(e[k], k).toBeUndefined();
  });

  it('the functions that build the service, and the broker, get the role map', () => {
    for (const f of [s.fns.mcp, s.fns.consent, s.fns.sweeper, broker]) {
      expect(JSON.parse(s.env(f).ACKD_AWS_ROLES as string)).toEqual({ 'deploy-prod': { roleArn: DEPLOY, maxSessionSeconds: 1800 }, reader: { roleArn: READER, maxSessionSeconds: 3600 } });
    }
  });

  it("each role's trust policy is set to trust only the broker's role, with ackd's session tags", () => {
    const calls = s.of('Custom::AWS').map(([, r]) => r.Properties.Create);
    expect(calls).toHaveLength(2);
    const brokerRole = s.idOf(broker.role);
    const mcpRole = s.idOf(s.fns.mcp.role);
    for (const [name, arn] of [['deploy-prod', DEPLOY], ['reader', READER]] as const) {
      const call = calls.find((c) => JSON.stringify(c).includes(`ackd-trust-${name}`));
      expect(call, name).toBeDefined();
      const text = JSON.stringify(call);
      expect(text).toContain('UpdateAssumeRolePolicy');
      expect(text).toContain(`\\"RoleName\\":\\"${arn.split('/').pop()}\\"`);
      expect(text).toContain(brokerRole); // the principal is the broker function's role (GetAtt)
      expect(text).not.toContain(mcpRole);
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
  it('no broker function or /v1/aws route; no function may assume a role or touch IAM, and there is no trust custom resource', () => {
    const s = synth();
    expect(s.stack.api.awsCredentialsFunction).toBeUndefined();
    expect(s.of('AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties.RouteKey).sort()).toEqual(['$default', 'ANY /api/{proxy+}']);
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
