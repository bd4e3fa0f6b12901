/**
 * The CDK app, synthesized ONCE (no AWS account, no credentials, env-agnostic) with cdk.json's
 * feature flags, then:
 *  - template assertions pinning every security property of issue 5,
 *  - cdk-nag AWS Solutions: zero unacknowledged findings, every acknowledgment with a reason,
 *  - the Lambda bundles CDK produced (the asset directories of the cloud assembly, not the
 *    sources) imported and invoked with events of their trigger types against dynalite, and the
 *    MCP bundle issuing a real SVID through the SPIRE bridge bundle and a real spire-server.
 */
import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../bin/cdk.ts';
import { dynamoClient } from '../../lambdas/adapters/dynamodb/client.ts';
import { ensureTable } from '../../lambdas/adapters/dynamodb/schema.ts';
import { DynamoApiKeyStore, DynamoRequestStore } from '../../lambdas/adapters/dynamodb/store.ts';
import { auditEvent } from '../../lambdas/core/audit/event.ts';
import { createApiKey } from '../../lambdas/core/apikeys.ts';
import { parseAgentId } from '../../lambdas/core/ids.ts';
import { systemClock } from '../../lambdas/core/ports.ts';
import { HANDLERS } from '../../lib/constructs/api.ts';
import { buildSidecarContext } from '../../lib/constructs/sidecar-image.ts';
import { DEFAULT_SPIRE_IMAGE } from '../../lib/config.ts';
import type { AckdStack } from '../../lib/stacks/ackd-stack.ts';
import { startTestSpire, SPIRE_BUILD_TIMEOUT_MS, type TestSpire } from '../helpers/spire.ts';

const REPO = join(import.meta.dirname, '..', '..');
const require = createRequire(import.meta.url);
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const TEST_CONTEXT = {
  'ackd:stage': 'ci',
  'ackd:trustDomain': 'agents.acme-corp.io',
  'ackd:approverEmails': 'alice@acme-corp.io,bob@acme-corp.io',
  'ackd:sender': 'acme-corp.io',
  'ackd:retentionDays': '90',
};

let outdir: string;
let app: App;
let stack: AckdStack;
let assembly: CloudAssembly;
let template: Template;
let t: Json;

beforeAll(async () => {
  // The consent UI is part of the deployment; build it when the checkout has no build yet.
  if (!existsSync(join(REPO, 'consent-ui/dist/index.html'))) {
    const { buildConsentUi } = await import('../../consent-ui/build.ts');
    await buildConsentUi();
  }
  const cdkJson = JSON.parse(readFileSync(join(REPO, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
  outdir = mkdtempSync(join(tmpdir(), 'ackd-cdk-'));
  app = new App({ outdir, context: { ...cdkJson.context, ...TEST_CONTEXT } });
  // No account/region: exactly what an operator without credentials gets.
  const saved = { a: process.env.CDK_DEFAULT_ACCOUNT, r: process.env.CDK_DEFAULT_REGION };
  delete process.env.CDK_DEFAULT_ACCOUNT;
  delete process.env.CDK_DEFAULT_REGION;
  try {
    stack = buildApp(app).stack;
    assembly = app.synth(); // throws if cdk-nag reports an unacknowledged error
  } finally {
    if (saved.a !== undefined) process.env.CDK_DEFAULT_ACCOUNT = saved.a;
    if (saved.r !== undefined) process.env.CDK_DEFAULT_REGION = saved.r;
  }
  template = Template.fromJSON(assembly.getStackByName(stack.stackName).template as Json);
  t = template.toJSON() as Json;
}, 240_000);

afterAll(() => {
  if (outdir) rmSync(outdir, { recursive: true, force: true });
});

// ---------- helpers over the template ----------
function resources(type: string): [string, Json][] {
  return Object.entries(t.Resources as Json).filter(([, r]) => (r as Json).Type === type) as [string, Json][];
}
function one(type: string, pred: (r: Json) => boolean = () => true): [string, Json] {
  const found = resources(type).filter(([, r]) => pred(r));
  expect(found, `exactly one ${type}`).toHaveLength(1);
  return found[0]!;
}
function logicalIdOf(construct: { node: { defaultChild?: unknown } }): string {
  return stack.resolve(stack.getLogicalId(construct.node.defaultChild as never)) as string;
}
/** All statements of all inline policies attached to the role with logical id `roleId`. */
function statementsOfRole(roleId: string): Json[] {
  return resources('AWS::IAM::Policy')
    .filter(([, p]) => (p.Properties.Roles as Json[]).some((r) => r.Ref === roleId))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Json[]);
}
function roleOfFunction(fnId: string): string {
  const fn = (t.Resources as Json)[fnId] as Json;
  return fn.Properties.Role['Fn::GetAtt'][0] as string;
}
const asList = (v: unknown): unknown[] => (Array.isArray(v) ? v : [v]);
/** action → resources (stringified) of a role's inline policies. */
function grants(roleId: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const s of statementsOfRole(roleId)) {
    expect(s.Effect).toBe('Allow');
    for (const a of asList(s.Action) as string[]) {
      for (const r of asList(s.Resource)) m.set(a, [...(m.get(a) ?? []), JSON.stringify(r)]);
    }
  }
  return m;
}
const tableArn = () => JSON.stringify({ 'Fn::GetAtt': [logicalIdOf(stack.data.table as never), 'Arn'] });
const indexArn = (name: string) =>
  JSON.stringify({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [logicalIdOf(stack.data.table as never), 'Arn'] }, `/index/${name}`]] });

describe('synth', () => {
  it('produced one stack with the three outputs an operator needs', () => {
    expect(stack.stackName).toBe('Ackd-ci');
    for (const o of ['McpUrl', 'ConsentUiUrl', 'TrustBundleUrl', 'TableName', 'UserPoolId']) expect(Object.keys(t.Outputs)).toContain(o);
    expect(JSON.stringify(t.Outputs.McpUrl.Value)).toContain('/mcp');
    expect(JSON.stringify(t.Outputs.TrustBundleUrl.Value)).toContain('/.well-known/spiffe-bundle');
  });
});

describe('Data: DynamoDB', () => {
  it('is on-demand, PITR, TTL on retain_until, deletion-protected, encrypted, retained, with the store\'s key and indexes', () => {
    const [id, table] = one('AWS::DynamoDB::GlobalTable');
    const p = table.Properties;
    expect(p.BillingMode).toBe('PAY_PER_REQUEST');
    expect(p.KeySchema).toEqual([{ AttributeName: 'pk', KeyType: 'HASH' }]);
    expect(p.TimeToLiveSpecification).toEqual({ AttributeName: 'retain_until', Enabled: true });
    expect(p.SSESpecification.SSEEnabled).toBe(true);
    expect(p.Replicas).toHaveLength(1);
    expect(p.Replicas[0].PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
    expect(p.Replicas[0].DeletionProtectionEnabled).toBe(true);
    expect(table.DeletionPolicy).toBe('Retain');
    const gsis = Object.fromEntries((p.GlobalSecondaryIndexes as Json[]).map((g) => [g.IndexName, g]));
    expect(gsis['by-agent'].KeySchema).toEqual([
      { AttributeName: 'agent_id', KeyType: 'HASH' },
      { AttributeName: 'requested_at', KeyType: 'RANGE' },
    ]);
    expect(gsis['pending-by-expiry'].KeySchema).toEqual([
      { AttributeName: 'pending', KeyType: 'HASH' },
      { AttributeName: 'expires_at', KeyType: 'RANGE' },
    ]);
    for (const g of Object.values(gsis) as Json[]) expect(g.Projection).toEqual({ ProjectionType: 'ALL' });
    expect(id).toBe(logicalIdOf(stack.data.table as never));
  });
});

describe('Api: functions, least privilege, logs, HTTP API', () => {
  const fnIds = () => ({
    mcp: logicalIdOf(stack.api.mcpFunction),
    consent: logicalIdOf(stack.api.consentFunction),
    sweeper: logicalIdOf(stack.api.sweeperFunction),
  });

  it('every ackd function: ESM bundle, arm64, Node.js 22 or newer, its own log group with retention', () => {
    const groups = Object.fromEntries(resources('AWS::Logs::LogGroup'));
    for (const id of Object.values(fnIds())) {
      const p = (t.Resources[id] as Json).Properties;
      expect(p.Architectures).toEqual(['arm64']);
      expect(Number(/^nodejs(\d+)\.x$/.exec(p.Runtime)?.[1])).toBeGreaterThanOrEqual(22);
      expect(p.Handler).toBe('index.handler');
      const lg = p.LoggingConfig.LogGroup.Ref as string;
      expect(groups[lg]?.Properties.RetentionInDays).toBeGreaterThan(0);
    }
  });

  it('log retention is set on every log group, with no log-retention custom resource', () => {
    const groups = resources('AWS::Logs::LogGroup');
    expect(groups.length).toBeGreaterThanOrEqual(6);
    for (const [, g] of groups) expect(g.Properties.RetentionInDays).toBeGreaterThan(0);
    expect(resources('Custom::LogRetention')).toHaveLength(0);
  });

  it('MCP function: exactly GetItem/PutItem/UpdateItem/Query on the table, Query on its two indexes, SES send from ackd\'s address, its bridge secret', () => {
    const g = grants(roleOfFunction(fnIds().mcp));
    expect([...g.keys()].sort()).toEqual(
      ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem', 'secretsmanager:GetSecretValue', 'ses:SendEmail'].sort(),
    );
    for (const a of ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']) expect(g.get(a)).toEqual([tableArn()]);
    expect(g.get('dynamodb:Query')!.sort()).toEqual([tableArn(), indexArn('by-agent'), indexArn('pending-by-expiry')].sort());
    expect(g.get('secretsmanager:GetSecretValue')).toEqual([JSON.stringify({ Ref: logicalIdOf(stack.spire.bridgeSecret as never) })]);
    const ses = statementsOfRole(roleOfFunction(fnIds().mcp)).find((s) => asList(s.Action).includes('ses:SendEmail'))!;
    expect(ses.Condition).toEqual({ StringEquals: { 'ses:FromAddress': 'ackd@acme-corp.io' } });
  });

  it('consent API function: exactly GetItem and UpdateItem on the table; no SES, no secrets, no indexes', () => {
    const g = grants(roleOfFunction(fnIds().consent));
    expect([...g.keys()].sort()).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    expect(g.get('dynamodb:GetItem')).toEqual([tableArn()]);
    expect(g.get('dynamodb:UpdateItem')).toEqual([tableArn()]);
  });

  it('sweeper: Query on pending-by-expiry only, GetItem and UpdateItem on the table, SES send (retries) from ackd\'s address', () => {
    const g = grants(roleOfFunction(fnIds().sweeper));
    expect([...g.keys()].sort()).toEqual(['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem', 'ses:SendEmail']);
    expect(g.get('dynamodb:Query')).toEqual([indexArn('pending-by-expiry')]);
    expect(g.get('dynamodb:GetItem')).toEqual([tableArn()]);
    expect(g.get('dynamodb:UpdateItem')).toEqual([tableArn()]);
    const ses = statementsOfRole(roleOfFunction(fnIds().sweeper)).find((s) => asList(s.Action).includes('ses:SendEmail'))!;
    expect(ses.Condition).toEqual({ StringEquals: { 'ses:FromAddress': 'ackd@acme-corp.io' } });
  });

  it('no function may Scan, Delete, or use a wildcard action; managed policies are only the basic (and VPC) execution roles', () => {
    for (const [name, id] of Object.entries(fnIds())) {
      const actions = [...grants(roleOfFunction(id)).keys()];
      expect(actions.some((a) => a.includes('*') || /Scan|Delete|BatchWrite|Transact/.test(a)), name).toBe(false);
      const role = t.Resources[roleOfFunction(id)] as Json;
      const managed = JSON.stringify(role.Properties.ManagedPolicyArns);
      expect(managed).toContain('AWSLambdaBasicExecutionRole');
      expect(managed.includes('AWSLambdaVPCAccessExecutionRole')).toBe(name === 'mcp');
      expect((role.Properties.ManagedPolicyArns as unknown[]).length).toBe(name === 'mcp' ? 2 : 1);
    }
  });

  it('the MCP function runs in private subnets; its security group allows only HTTPS out and the bridge port to SPIRE', () => {
    const p = (t.Resources[fnIds().mcp] as Json).Properties;
    const privateSubnetIds = stack.node
      .findAll()
      .filter((c) => c.node.path.includes('/Vpc/privateSubnet') && c.node.id === 'Subnet')
      .map((c) => stack.resolve(stack.getLogicalId(c as never)) as string);
    expect(privateSubnetIds.length).toBe(2);
    expect(p.VpcConfig.SubnetIds.map((s: Json) => s.Ref).sort()).toEqual(privateSubnetIds.sort());
    const sgId = logicalIdOf(stack.api.mcpSecurityGroup);
    const sg = (t.Resources[sgId] as Json).Properties;
    expect(sg.SecurityGroupEgress).toEqual([expect.objectContaining({ CidrIp: '0.0.0.0/0', FromPort: 443, ToPort: 443, IpProtocol: 'tcp' })]);
    const egress = resources('AWS::EC2::SecurityGroupEgress').filter(([, e]) => e.Properties.GroupId['Fn::GetAtt']?.[0] === sgId);
    expect(egress).toHaveLength(1);
    expect(egress[0]![1].Properties).toMatchObject({ FromPort: 8080, ToPort: 8080, IpProtocol: 'tcp' });
  });

  it('HTTP API: $default → MCP function, ANY /api/{proxy+} → consent function, access logs, throttling', () => {
    const routes = resources('AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties.RouteKey).sort();
    expect(routes).toEqual(['$default', 'ANY /api/{proxy+}']);
    const integrations = resources('AWS::ApiGatewayV2::Integration');
    const target = (fnId: string) => integrations.some(([, i]) => JSON.stringify(i.Properties.IntegrationUri).includes(fnId) && i.Properties.PayloadFormatVersion === '2.0');
    expect(target(fnIds().mcp)).toBe(true);
    expect(target(fnIds().consent)).toBe(true);
    const [, stage] = one('AWS::ApiGatewayV2::Stage');
    expect(stage.Properties.StageName).toBe('$default');
    expect(stage.Properties.AccessLogSettings.DestinationArn).toBeDefined();
    expect(stage.Properties.DefaultRouteSettings).toMatchObject({ ThrottlingBurstLimit: 100, ThrottlingRateLimit: 50 });
  });

  it('the sweeper runs on a schedule', () => {
    const [, rule] = one('AWS::Events::Rule');
    expect(rule.Properties.ScheduleExpression).toBe('rate(5 minutes)');
    expect(JSON.stringify(rule.Properties.Targets)).toContain(fnIds().sweeper);
  });

  it('functions get the runtime configuration lambdas/config.ts reads', () => {
    const env = (id: string) => (t.Resources[id] as Json).Properties.Environment.Variables as Json;
    const mcp = env(fnIds().mcp);
    expect(mcp).toMatchObject({
      ACKD_STAGE: 'ci',
      ACKD_TRUST_DOMAIN: 'agents.acme-corp.io',
      ACKD_RETENTION_DAYS: '90',
      ACKD_SENDER: 'ackd@acme-corp.io',
      ACKD_APPROVERS: 'alice@acme-corp.io,bob@acme-corp.io',
      ACKD_MINTER: 'spire-remote',
      ACKD_SPIRE_BRIDGE_URL: 'http://spire-bridge.ackd-ci.internal:8080',
    });
    for (const k of ['ACKD_TABLE_NAME', 'ACKD_CONSENT_URL', 'ACKD_SPIRE_BRIDGE_SECRET_ARN']) expect(mcp[k], k).toBeDefined();
    expect(mcp.ACKD_SPIRE_BRIDGE_SECRET).toBeUndefined();
    const consent = env(fnIds().consent);
    for (const k of ['ACKD_COGNITO_ISSUER', 'ACKD_COGNITO_JWKS_URL', 'ACKD_COGNITO_CLIENT_ID', 'ACKD_COGNITO_USER_POOL_ID']) expect(consent[k], k).toBeDefined();
    expect(consent.ACKD_MINTER).toBeUndefined();
  });
});

describe('Consent: S3, CloudFront, Cognito, SES', () => {
  it('no bucket is public: all four public-access blocks, encryption, TLS-only policy', () => {
    const buckets = resources('AWS::S3::Bucket');
    expect(buckets.length).toBe(2);
    for (const [id, b] of buckets) {
      expect(b.Properties.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      expect(b.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm).toBeDefined();
      const policy = resources('AWS::S3::BucketPolicy').find(([, p]) => p.Properties.Bucket.Ref === id);
      expect(policy, `bucket policy of ${id}`).toBeDefined();
      const stmts = policy![1].Properties.PolicyDocument.Statement as Json[];
      expect(stmts.some((s) => s.Effect === 'Deny' && s.Condition?.Bool?.['aws:SecureTransport'] === 'false')).toBe(true);
      // No statement grants anything to everyone.
      expect(stmts.some((s) => s.Effect === 'Allow' && (s.Principal === '*' || s.Principal?.AWS === '*'))).toBe(false);
    }
  });

  it('the UI bucket is read only by this distribution, through origin access control', () => {
    const uiId = logicalIdOf(stack.consent.bucket);
    const [, policy] = one('AWS::S3::BucketPolicy', (p) => p.Properties.Bucket.Ref === uiId);
    const allow = (policy.Properties.PolicyDocument.Statement as Json[]).filter((s) => s.Effect === 'Allow');
    expect(allow).toHaveLength(1);
    expect(allow[0]!.Principal).toEqual({ Service: 'cloudfront.amazonaws.com' });
    expect(allow[0]!.Action).toBe('s3:GetObject');
    expect(JSON.stringify(allow[0]!.Condition)).toContain(logicalIdOf(stack.consent.distribution));
    const [oacId, oac] = one('AWS::CloudFront::OriginAccessControl');
    expect(oac.Properties.OriginAccessControlConfig).toMatchObject({ OriginAccessControlOriginType: 's3', SigningBehavior: 'always', SigningProtocol: 'sigv4' });
    const [, dist] = one('AWS::CloudFront::Distribution');
    const cfg = dist.Properties.DistributionConfig;
    const s3Origin = (cfg.Origins as Json[]).find((o) => o.S3OriginConfig)!;
    expect(s3Origin.OriginAccessControlId['Fn::GetAtt'][0]).toBe(oacId);
    expect(s3Origin.S3OriginConfig.OriginAccessIdentity).toBe('');
    expect(resources('AWS::CloudFront::CloudFrontOriginAccessIdentity')).toHaveLength(0);
  });

  it('CloudFront: HTTPS only, the consent API under the same origin at /api/* (uncached), security headers, logging', () => {
    const [, dist] = one('AWS::CloudFront::Distribution');
    const cfg = dist.Properties.DistributionConfig;
    expect(cfg.DefaultCacheBehavior.ViewerProtocolPolicy).toBe('redirect-to-https');
    expect(cfg.DefaultCacheBehavior.ResponseHeadersPolicyId).toBeDefined();
    expect(cfg.CacheBehaviors).toHaveLength(1);
    const api = cfg.CacheBehaviors[0];
    expect(api.PathPattern).toBe('/api/*');
    expect(api.ViewerProtocolPolicy).toBe('https-only');
    expect(api.CachePolicyId).toBe('4135ea2d-6df8-44a3-9df3-4b5a84be39ad'); // Managed-CachingDisabled
    const apiOrigin = (cfg.Origins as Json[]).find((o) => o.Id === api.TargetOriginId)!;
    expect(JSON.stringify(apiOrigin.DomainName)).toContain(logicalIdOf(stack.api.httpApi));
    expect(apiOrigin.CustomOriginConfig).toMatchObject({ OriginProtocolPolicy: 'https-only', OriginSSLProtocols: ['TLSv1.2'] });
    expect(cfg.Logging.Bucket).toBeDefined();
    const [, headers] = one('AWS::CloudFront::ResponseHeadersPolicy');
    const sec = headers.Properties.ResponseHeadersPolicyConfig.SecurityHeadersConfig;
    expect(JSON.stringify(sec.ContentSecurityPolicy.ContentSecurityPolicy)).toContain("frame-ancestors 'none'");
    expect(sec.StrictTransportSecurity.AccessControlMaxAgeSec).toBeGreaterThanOrEqual(31_536_000);
    expect(sec.FrameOptions.FrameOption).toBe('DENY');
  });

  it('Cognito app client: no secret, authorization code flow only (PKCE public client), no password auth flows', () => {
    const [, client] = one('AWS::Cognito::UserPoolClient');
    const p = client.Properties;
    expect(p.GenerateSecret).toBe(false);
    expect(p.AllowedOAuthFlows).toEqual(['code']);
    expect(p.AllowedOAuthFlowsUserPoolClient).toBe(true);
    expect(p.AllowedOAuthScopes.sort()).toEqual(['email', 'openid', 'profile']);
    expect(p.ExplicitAuthFlows).toEqual(['ALLOW_REFRESH_TOKEN_AUTH']);
    expect(p.SupportedIdentityProviders).toEqual(['COGNITO']);
    expect(p.PreventUserExistenceErrors).toBe('ENABLED');
    expect(JSON.stringify(p.CallbackURLs)).toContain(logicalIdOf(stack.consent.distribution));
  });

  it('Cognito user pool: admin-created users only, MFA required (TOTP), strong passwords, threat protection, managed login, approvers group', () => {
    const [, pool] = one('AWS::Cognito::UserPool');
    const p = pool.Properties;
    expect(p.AdminCreateUserConfig.AllowAdminCreateUserOnly).toBe(true);
    expect(p.MfaConfiguration).toBe('ON');
    expect(p.EnabledMfas).toEqual(['SOFTWARE_TOKEN_MFA']);
    expect(p.Policies.PasswordPolicy).toMatchObject({
      MinimumLength: 14,
      RequireLowercase: true,
      RequireUppercase: true,
      RequireNumbers: true,
      RequireSymbols: true,
    });
    expect(p.UserPoolAddOns.AdvancedSecurityMode).toBe('ENFORCED');
    const [, group] = one('AWS::Cognito::UserPoolGroup');
    expect(group.Properties.GroupName).toBe('approvers');
    const [, domain] = one('AWS::Cognito::UserPoolDomain');
    expect(domain.Properties.ManagedLoginVersion).toBe(2);
    one('AWS::Cognito::ManagedLoginBranding');
  });

  it('SES identity from configuration (a domain here)', () => {
    const [, id] = one('AWS::SES::EmailIdentity');
    expect(id.Properties.EmailIdentity).toBe('acme-corp.io');
  });

  it('the consent UI and its config.json are deployed (config in the shape consent-ui reads)', () => {
    const [, dep] = one('Custom::CDKBucketDeployment');
    expect(dep.Properties.SourceObjectKeys.length).toBe(2);
    // Source.jsonData stages config.json (with deploy-time markers) as its own asset.
    const configs = readdirSync(outdir).filter((d) => d.startsWith('asset.') && existsSync(join(outdir, d, 'config.json')));
    expect(configs).toHaveLength(1);
    const cfg = JSON.parse(readFileSync(join(outdir, configs[0]!, 'config.json'), 'utf8')) as Json;
    expect(Object.keys(cfg).sort()).toEqual(['apiBase', 'clientId', 'cognitoDomain', 'logoutUri', 'redirectUri', 'scopes']);
    expect(cfg.apiBase).toBe('/api');
    expect(cfg.scopes).toBe('openid email profile');
    expect(cfg.cognitoDomain).toMatch(/^https:\/\/ackd-ci-.+\.auth\..+\.amazoncognito\.com$/);
    // The UI files themselves: the real build, not the placeholder.
    const ui = readdirSync(outdir).filter((d) => d.startsWith('asset.') && existsSync(join(outdir, d, 'app.js')));
    expect(ui).toHaveLength(1);
    expect(readFileSync(join(outdir, ui[0]!, 'index.html'), 'utf8')).toContain('app.js');
  });
});

describe('Spire: Fargate in private subnets, official image, durable datastore, KMS keys, bridge', () => {
  it('the service runs one task, without a public IP, in the private subnets only', () => {
    const [, svc] = one('AWS::ECS::Service');
    const net = svc.Properties.NetworkConfiguration.AwsvpcConfiguration;
    expect(net.AssignPublicIp).toBe('DISABLED');
    const privateSubnetIds = stack.node
      .findAll()
      .filter((c) => c.node.path.includes('/Vpc/privateSubnet') && c.node.id === 'Subnet')
      .map((c) => stack.resolve(stack.getLogicalId(c as never)) as string);
    expect(net.Subnets.map((s: Json) => s.Ref).sort()).toEqual(privateSubnetIds.sort());
    for (const id of privateSubnetIds) expect((t.Resources[id] as Json).Properties.MapPublicIpOnLaunch).toBe(false);
    expect(svc.Properties.LaunchType).toBe('FARGATE');
    expect(svc.Properties.DesiredCount).toBe(1);
    expect(svc.Properties.DeploymentConfiguration).toMatchObject({ MaximumPercent: 100, MinimumHealthyPercent: 0 });
    expect(svc.Properties.ServiceRegistries).toHaveLength(1);
  });

  it('spire-server is the official image at the tested version, reachable only through the admin socket; the bridge shares the socket', () => {
    const [, task] = one('AWS::ECS::TaskDefinition');
    const containers = Object.fromEntries((task.Properties.ContainerDefinitions as Json[]).map((c) => [c.Name, c]));
    expect(Object.keys(containers).sort()).toEqual(['bridge', 'init', 'spire-server']);
    const server = containers['spire-server'];
    expect(server.Image).toBe(DEFAULT_SPIRE_IMAGE);
    expect(DEFAULT_SPIRE_IMAGE).toBe('ghcr.io/spiffe/spire-server:1.15.3');
    expect(server.PortMappings ?? []).toEqual([]);
    expect(server.Command).toEqual(['-config', '/run/spire/conf/server.conf']);
    const conf = containers.init.Environment.find((e: Json) => e.Name === 'SPIRE_SERVER_CONF').Value as Json;
    const confText = JSON.stringify(conf);
    expect(confText).toContain('bind_address = \\"127.0.0.1\\"');
    expect(confText).toContain('KeyManager \\"aws_kms\\"');
    expect(confText).toContain('trust_domain = \\"agents.acme-corp.io\\"');
    expect(confText).toContain('database_type = \\"sqlite3\\"');
    const mounts = (c: Json) => Object.fromEntries((c.MountPoints as Json[]).map((m) => [m.ContainerPath, m.SourceVolume]));
    expect(mounts(server)['/run/spire/sockets']).toBe('spire-sockets');
    expect(mounts(containers.bridge)['/run/spire/sockets']).toBe('spire-sockets');
    expect(mounts(server)['/run/spire/data']).toBe('spire-data');
    expect(containers.bridge.PortMappings).toEqual([expect.objectContaining({ ContainerPort: 8080 })]);
    expect(containers.bridge.Secrets.map((s: Json) => s.Name)).toEqual(['ACKD_BRIDGE_SECRET']);
    expect(JSON.stringify(containers.bridge.Environment)).not.toContain('ACKD_BRIDGE_SECRET');
    for (const c of Object.values(containers) as Json[]) {
      expect(c.ReadonlyRootFilesystem).toBe(true);
      expect(c.LogConfiguration.LogDriver).toBe('awslogs');
    }
    const data = (task.Properties.Volumes as Json[]).find((v) => v.Name === 'spire-data')!;
    expect(data.EFSVolumeConfiguration).toMatchObject({ TransitEncryption: 'ENABLED', AuthorizationConfig: { IAM: 'ENABLED' } });
  });

  it('datastore on encrypted EFS (backups on), reachable only from the SPIRE task', () => {
    const [, fs] = one('AWS::EFS::FileSystem');
    expect(fs.Properties.Encrypted).toBe(true);
    expect(fs.Properties.BackupPolicy).toEqual({ Status: 'ENABLED' });
    const taskSg = logicalIdOf(stack.spire.securityGroup);
    const nfs = resources('AWS::EC2::SecurityGroupIngress').filter(([, i]) => i.Properties.FromPort === 2049);
    expect(nfs.length).toBeGreaterThan(0);
    for (const [, i] of nfs) expect(i.Properties.SourceSecurityGroupId['Fn::GetAtt'][0]).toBe(taskSg);
  });

  it('the bridge port admits only the MCP function\'s security group', () => {
    const taskSg = logicalIdOf(stack.spire.securityGroup);
    const ingress = resources('AWS::EC2::SecurityGroupIngress').filter(([, i]) => i.Properties.GroupId['Fn::GetAtt']?.[0] === taskSg);
    expect(ingress).toHaveLength(1);
    expect(ingress[0]![1].Properties).toMatchObject({ FromPort: 8080, ToPort: 8080, IpProtocol: 'tcp' });
    expect(ingress[0]![1].Properties.SourceSecurityGroupId['Fn::GetAtt'][0]).toBe(logicalIdOf(stack.api.mcpSecurityGroup));
    expect(JSON.stringify((t.Resources[taskSg] as Json).Properties.SecurityGroupIngress ?? [])).not.toContain('0.0.0.0/0');
  });

  it('the task role may use KMS keys for the CA (aws_kms key manager) and nothing of DynamoDB, SES or Secrets Manager', () => {
    const [, task] = one('AWS::ECS::TaskDefinition');
    const roleId = task.Properties.TaskRoleArn['Fn::GetAtt'][0] as string;
    const actions = [...grants(roleId).keys()];
    expect(actions).toEqual(expect.arrayContaining(['kms:CreateKey', 'kms:Sign', 'kms:GetPublicKey']));
    expect(actions.filter((a) => !a.startsWith('kms:') && !a.startsWith('elasticfilesystem:'))).toEqual([]);
  });

  it('the VPC logs its flows', () => {
    const [, flow] = one('AWS::EC2::FlowLog');
    expect(flow.Properties.TrafficType).toBe('ALL');
  });
});

describe('cdk-nag AWS Solutions', () => {
  it('reports zero unacknowledged findings (errors AND warnings)', () => {
    const report = new AwsSolutionsChecks(app).validateScope(app);
    const left = report.violations.map((v) => `${v.ruleName} @ ${v.violatingResources.map((r) => r.constructPath).join(', ')}`);
    expect(left).toEqual([]);
    expect(report.success).toBe(true);
  });

  it('every acknowledgment carries a written reason', () => {
    let count = 0;
    for (const c of app.node.findAll()) {
      for (const m of c.node.metadata) {
        if (m.type !== 'aws:cdk:acknowledged-rules') continue;
        // { "Annotation::<rule id>": "<reason>" }
        for (const [id, reason] of Object.entries(m.data as Record<string, unknown>)) {
          if (!id.includes('AwsSolutions-')) continue; // CDK's own cfn-lint acknowledgments are not ours
          count++;
          expect(typeof reason === 'string' ? reason.trim().length : 0, id).toBeGreaterThan(40);
        }
      }
    }
    expect(count).toBeGreaterThan(5);
  });
});

// ---------- the Lambda bundles, as CDK built them ----------

/** The directory of the asset CDK bundled for `fn` (cdk.out/asset.<hash>/index.mjs). */
function bundleOf(fnLogicalId: string): string {
  const code = (t.Resources[fnLogicalId] as Json).Properties.Code;
  const key = code.S3Key as string;
  const hash = key.replace(/\.zip$/, '');
  const dir = join(outdir, `asset.${hash}`);
  expect(existsSync(join(dir, 'index.mjs')), `bundle ${dir}/index.mjs`).toBe(true);
  return join(dir, 'index.mjs');
}

function httpEvent(method: string, path: string, opts: { headers?: Record<string, string>; body?: string } = {}): Json {
  const now = new Date();
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: '',
    headers: { host: 'abc123.execute-api.us-east-1.amazonaws.com', 'x-forwarded-proto': 'https', ...opts.headers },
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      domainName: 'abc123.execute-api.us-east-1.amazonaws.com',
      domainPrefix: 'abc123',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'ackd-infra-test' },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    body: opts.body,
    isBase64Encoded: false,
  };
}

const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' };
function rpc(id: number, method: string, params: Json): string {
  return JSON.stringify({ jsonrpc: '2.0', id, method, params });
}
type Handler = (event: Json, context?: Json) => Promise<Json>;
const lambdaContext = { awsRequestId: 'test', functionName: 'test', getRemainingTimeInMillis: () => 29_000 };

describe('Lambda bundles (imported from cdk.out, invoked with events of their trigger types)', () => {
  let ddb: Server;
  let endpoint: string;
  let spire: TestSpire;
  let bridge: ChildProcess;
  let bridgeUrl: string;
  const tableName = `ackd-bundles-${Date.now()}`;
  const bridgeSecret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex');
  const savedEnv = { ...process.env };

  beforeAll(async () => {
    const dynalite = require('dynalite') as (o: Json) => Server;
    ddb = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    await new Promise<void>((r) => ddb.listen(0, '127.0.0.1', () => r()));
    endpoint = `http://127.0.0.1:${(ddb.address() as { port: number }).port}`;
    await ensureTable(dynamoClient({ region: 'us-east-1', endpoint }), tableName);

    // SPIRE + the sidecar bundle, as on Fargate.
    spire = await startTestSpire('agents.acme-corp.io');
    const ctx = buildSidecarContext();
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    bridgeUrl = `http://127.0.0.1:${port}`;
    bridge = spawn(process.execPath, [join(ctx, 'spire/sidecar/server.mjs')], {
      env: { PATH: process.env.PATH, ACKD_BRIDGE_SECRET: bridgeSecret, SPIRE_SOCKET_PATH: spire.server.socketPath, ACKD_BRIDGE_PORT: String(port), ACKD_BRIDGE_HOST: '127.0.0.1' },
      stdio: 'ignore',
    });
    for (let i = 0; i < 150; i++) {
      if (await fetch(`${bridgeUrl}/healthz`).then((r) => r.ok, () => false)) break;
      await new Promise((r) => setTimeout(r, 100));
    }

    // The functions' environment from the template, with the deployment-time values that only
    // exist on AWS replaced by local ones. ACKD_STAGE=local is what lets the store use dynalite
    // (lambdas/config.ts refuses an endpoint override elsewhere) and a plain bridge secret.
    Object.assign(process.env, {
      ACKD_STAGE: 'local',
      ACKD_TRUST_DOMAIN: 'agents.acme-corp.io',
      ACKD_TABLE_NAME: tableName,
      ACKD_DYNAMODB_ENDPOINT: endpoint,
      ACKD_CONSENT_URL: 'https://consent.acme-corp.io',
      ACKD_RETENTION_DAYS: '90',
      ACKD_SENDER: 'ackd@acme-corp.io',
      ACKD_APPROVERS: 'alice@acme-corp.io',
      ACKD_MINTER: 'spire-remote',
      ACKD_SPIRE_BRIDGE_URL: bridgeUrl,
      ACKD_SPIRE_BRIDGE_SECRET: bridgeSecret,
      ACKD_COGNITO_ISSUER: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_TEST',
      ACKD_COGNITO_JWKS_URL: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_TEST/.well-known/jwks.json',
      ACKD_COGNITO_CLIENT_ID: 'testclient',
      ACKD_COGNITO_USER_POOL_ID: 'us-east-1_TEST',
      ACKD_LOG_LEVEL: 'error',
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
    });
  }, SPIRE_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    for (const k of Object.keys(process.env)) if (!(k in savedEnv)) delete process.env[k];
    Object.assign(process.env, savedEnv);
    if (bridge && bridge.exitCode === null) {
      const exited = new Promise((r) => bridge.once('exit', r));
      bridge.kill('SIGTERM');
      await exited;
    }
    await spire?.stop();
    if (ddb) await new Promise((r) => ddb.close(r));
  });

  it('every function\'s bundle is one ESM file built from its handler entry', () => {
    for (const fn of [stack.api.mcpFunction, stack.api.consentFunction, stack.api.sweeperFunction]) {
      const file = bundleOf(logicalIdOf(fn));
      const src = readFileSync(file, 'utf8');
      expect(src).toMatch(/export\s*\{[^}]*\bhandler\b/);
      expect(src).toContain('createRequire');
    }
    expect(Object.values(HANDLERS).map((h) => h.entry)).toEqual(['lambdas/handlers/mcp.ts', 'lambdas/handlers/consent-api.ts', 'lambdas/handlers/sweeper.ts']);
  });

  it('MCP bundle: an unauthenticated POST /mcp gets 401 with WWW-Authenticate', async () => {
    const { handler } = (await import(pathToFileURL(bundleOf(logicalIdOf(stack.api.mcpFunction))).href)) as { handler: Handler };
    const res = await handler(
      httpEvent('POST', '/mcp', { headers: MCP_HEADERS, body: rpc(1, 'initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } }) }),
      lambdaContext,
    );
    expect(res.statusCode).toBe(401);
    const headers = Object.fromEntries(Object.entries(res.headers as Json).map(([k, v]) => [k.toLowerCase(), v]));
    expect(String(headers['www-authenticate'])).toMatch(/^Bearer/);
    const wrongKey = await handler(
      httpEvent('POST', '/mcp', { headers: { ...MCP_HEADERS, authorization: `Bearer ackd_${'A'.repeat(43)}` }, body: rpc(1, 'tools/list', {}) }),
      lambdaContext,
    );
    expect(wrongKey.statusCode).toBe(401);
  });

  it('MCP bundle: with an agent key, request → (approve) → check issues a real SPIRE SVID through the bridge', async () => {
    const { handler } = (await import(pathToFileURL(bundleOf(logicalIdOf(stack.api.mcpFunction))).href)) as { handler: Handler };
    const client = dynamoClient({ region: 'us-east-1', endpoint });
    const agent = parseAgentId('deploy-bot');
    const { apiKey } = await createApiKey(new DynamoApiKeyStore(client, tableName), agent, systemClock);
    const headers = { ...MCP_HEADERS, authorization: `Bearer ${apiKey}` };
    const call = async (id: number, name: string, args: Json): Promise<Json> => {
      const res = await handler(httpEvent('POST', '/mcp', { headers, body: rpc(id, 'tools/call', { name, arguments: args }) }), lambdaContext);
      expect(res.statusCode, String(res.body)).toBe(200);
      const body = JSON.parse(res.isBase64Encoded ? Buffer.from(res.body, 'base64').toString() : res.body) as Json;
      expect(body.result?.isError, JSON.stringify(body)).not.toBe(true);
      return body.result.structuredContent as Json;
    };
    const req = await call(1, 'request_authorization', {
      agent_id: 'deploy-bot',
      action: 'Deploy v2 to production',
      permissions: ['deploy:prod'],
      justification: 'release',
      ttl_minutes: 10,
    });
    expect(req.request_id).toMatch(/^req_/);
    expect(req.consent_url).toBe(`https://consent.acme-corp.io/?request_id=${req.request_id}`);
    expect((await call(2, 'check_authorization', { request_id: req.request_id })).status).toBe('pending');

    const store = DynamoRequestStore.withAudit(client, tableName, { clock: systemClock, retentionDays: 90 });
    await store.decide({
      requestId: req.request_id as never,
      decision: 'approved',
      approverIdentity: 'sub-alice',
      approverEmail: 'alice@acme-corp.io',
      now: new Date(),
      svidExpiresAt: new Date(Date.now() + 10 * 60_000).toISOString(),
      event: auditEvent('approved', { type: 'approver', id: 'sub-alice' }, new Date()),
    });
    await store.linkAudit(req.request_id as never);

    const approved = await call(3, 'check_authorization', { request_id: req.request_id });
    expect(approved.status).toBe('approved');
    expect(approved.spiffe_id).toBe(`spiffe://agents.acme-corp.io/agent/deploy-bot/${req.request_id}`);
    const leaf = new X509Certificate((approved.svid as string).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)![0]);
    expect(leaf.subjectAltName).toBe(`URI:${approved.spiffe_id}`);
    const bundle = await spire.client.getBundle();
    const roots = bundle.x509Authorities.map((d) => new X509Certificate(Buffer.from(d)));
    expect(roots.some((r) => leaf.checkIssued(r) && leaf.verify(r.publicKey))).toBe(true);
    expect((await store.get(req.request_id as never))?.svid_id).toBe(approved.svid_id);
  }, 60_000);

  it('consent API bundle: no token → 401; an agent API key → 401', async () => {
    const { handler } = (await import(pathToFileURL(bundleOf(logicalIdOf(stack.api.consentFunction))).href)) as { handler: Handler };
    const id = 'req_0000000000aaaaaaaaaaaaaaaa';
    const none = await handler(httpEvent('GET', `/api/requests/${id}`), lambdaContext);
    expect(none.statusCode).toBe(401);
    const agentKey = await handler(httpEvent('GET', `/api/requests/${id}`, { headers: { authorization: `Bearer ackd_${'B'.repeat(43)}` } }), lambdaContext);
    expect(agentKey.statusCode).toBe(401);
  });

  it('sweeper bundle: a scheduled event records expiry of an overdue pending request', async () => {
    const { handler } = (await import(pathToFileURL(bundleOf(logicalIdOf(stack.api.sweeperFunction))).href)) as { handler: Handler };
    const client = dynamoClient({ region: 'us-east-1', endpoint });
    const store = DynamoRequestStore.withAudit(client, tableName, { clock: systemClock, retentionDays: 90 });
    const { AuthorizationService } = await import('../../lambdas/core/service.ts');
    const past = { now: () => new Date(Date.now() - 3 * 60 * 60_000) };
    const svc = new AuthorizationService(
      { trustDomain: 'agents.acme-corp.io' as never, consentBaseUrl: 'https://consent.acme-corp.io', retentionDays: 90 },
      { store, minter: { mint: () => Promise.reject(new Error('unused')), trustBundlePem: () => Promise.reject(new Error('unused')) }, clock: past, logger: { info() {}, warn() {}, error() {} } },
    );
    const { request_id } = await svc.requestAuthorization({ agent_id: parseAgentId('old-bot'), action: 'x', permissions: ['p'], justification: 'j', ttl_minutes: 5 });
    expect((await store.get(request_id))?.decision).toBe('pending');
    const scheduled = {
      version: '0',
      id: randomUUID(),
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      account: '123456789012',
      time: new Date().toISOString(),
      region: 'us-east-1',
      resources: ['arn:aws:events:us-east-1:123456789012:rule/ackd-sweep'],
      detail: {},
    };
    const result = await handler(scheduled, lambdaContext);
    expect(result.expired).toBeGreaterThanOrEqual(1);
    const after = await store.get(request_id);
    expect(after?.decision).toBe('expired');
    expect(after?.decision_at).not.toBeNull();
  });
});
