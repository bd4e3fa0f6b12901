/**
 * The CDK app, synthesized ONCE (no AWS account, no credentials, env-agnostic) with cdk.json's
 * feature flags, then:
 *  - template assertions pinning every security property of issue 5,
 *  - cdk-nag AWS Solutions: zero unacknowledged findings, every acknowledgment with a reason,
 *  - the Lambda bundles CDK produced (the asset directories of the cloud assembly, not the
 *    sources) imported and invoked with events of their trigger types against dynalite, and the
 *    MCP bundle issuing a real SVID through the SPIRE bridge bundle and a real spire-server.
 */
import { createSealKeyFileOnce, fileOutboxSealer } from '../../lambdas/adapters/signing/outbox-seal.ts';
import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate, generateKeyPairSync, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { LocalKeySigner } from '../../lambdas/adapters/signing/local.ts';
import { decisionStatement, signDecision } from '../../lambdas/core/evidence.ts';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../bin/cdk.ts';
import { dynamoClient } from '../../lambdas/adapters/dynamodb/client.ts';
import { ensureTable, TABLE } from '../../lambdas/adapters/dynamodb/schema.ts';
import { DynamoApiKeyStore, DynamoRequestStore } from '../../lambdas/adapters/dynamodb/store.ts';
import { auditEvent } from '../../lambdas/core/audit/event.ts';
import { Sequencer } from '../../lambdas/core/audit/sequencer.ts';
import { checkpointSignatureProblem } from '../../lambdas/core/audit/signing.ts';
import { createApiKey, SealedApiKeyStore } from '../../lambdas/core/apikeys.ts';
import { parseAgentId } from '../../lambdas/core/ids.ts';
import { systemClock } from '../../lambdas/core/ports.ts';
import { AUDIT_EXPORT_STAGE, BUNDLING, HANDLERS } from '../../lib/constructs/api.ts';
import { build } from 'esbuild';
import { esbuildOptionsOf } from '../../scripts/bundle-size.ts';
import { POP_SCHEME, signSvidProof } from '../../lambdas/http/svid-pop.ts';
import { AWS_CREDENTIALS_PATH } from '../../lambdas/http/aws-routes.ts';
import { tableIndexes } from '../../lib/constructs/data.ts';
import { buildSidecarContext } from '../../lib/constructs/sidecar-image.ts';
import { DEFAULT_SPIRE_IMAGE, DeployConfigError } from '../../lib/config.ts';
import { LIMIT_ENV } from '../../lambdas/config.ts';
import type { AckdStack } from '../../lib/stacks/ackd-stack.ts';

/**
 * One run of the audit sequencer over the table, as the sweeper makes it. The MCP bundle invoked
 * in this process nudges its own in-process sequencer after each write (lambdas/deps.ts), which
 * may hold the lease for a moment: a busy run is retried until that run has released it (bounded).
 */
/** The outbox seal key of the bundles' run (on AWS a KMS HMAC key; here a key file made for the run). */
let outboxSealKeyFile = '';

async function sequence(store: DynamoRequestStore): Promise<void> {
  const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
  for (let attempt = 0; attempt < 100; attempt++) {
    const run = await new Sequencer({ store: store.audit, clock: systemClock, logger: quiet, sealer: fileOutboxSealer(outboxSealKeyFile) }).run();
    if (!run.busy) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the audit sequencer stayed busy for 5 s');
}
import { startTestSpire, SPIRE_BUILD_TIMEOUT_MS, type TestSpire } from '../helpers/spire.ts';
import { StoreCallCounter } from '../bench/store-calls.ts';

const REPO = join(import.meta.dirname, '..', '..');
const require = createRequire(import.meta.url);
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const TEST_CONTEXT = {
  'ackd:stage': 'ci',
  'ackd:trustDomain': 'agents.acme-corp.io',
  'ackd:approverEmails': 'alice@acme-corp.io,bob@acme-corp.io',
  'ackd:sender': 'acme-corp.io',
  'ackd:retentionDays': '90',
  // As `-c ackd:limits=…` passes it: a JSON string. Only some keys: the others keep the defaults.
  'ackd:limits': '{"requestsPerMinute":120,"openPending":50,"refusalsPerRequest":0}',
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
/** The ARN of a KMS key of the stack, as an IAM policy names it (JSON, as `grants` keeps resources). */
function keyArnOf(key: { node: { defaultChild?: unknown } }): string {
  return JSON.stringify({ 'Fn::GetAtt': [logicalIdOf(key), 'Arn'] });
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
/**
 * What a function's bundle really does to the table must be what its role allows: the DynamoDB
 * actions (`dynamodb:<Op>`, from each call's X-Amz-Target as dynalite receives it) that `run`
 * made. dynalite checks no IAM, so without this a missing grant shows only on AWS.
 */
async function dynamoActionsOf(endpoint: string, run: () => Promise<unknown>): Promise<string[]> {
  const counter = StoreCallCounter.forEndpoint(endpoint);
  try {
    await run();
    return Object.keys(counter.snapshot().byOp).map((op) => `dynamodb:${op}`).sort();
  } finally {
    counter.stop();
  }
}
const expectGranted = (actions: readonly string[], fnId: string): void => {
  const granted = new Set(grants(roleOfFunction(fnId)).keys());
  expect(actions.filter((a) => !granted.has(a)), `made by the bundle but not granted to its role (granted: ${[...granted].filter((a) => a.startsWith('dynamodb:')).join(', ')})`).toEqual([]);
};
/** Active X-Ray tracing (issue 15): every function may write trace data (Resource * is the only form those actions take). */
const XRAY = ['xray:PutTelemetryRecords', 'xray:PutTraceSegments'];
const tableArn = () => JSON.stringify({ 'Fn::GetAtt': [logicalIdOf(stack.data.table as never), 'Arn'] });
const indexArn = (name: string) =>
  JSON.stringify({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [logicalIdOf(stack.data.table as never), 'Arn'] }, `/index/${name}`]] });

describe('synth', () => {
  it('produced one stack with the outputs an operator needs', () => {
    expect(stack.stackName).toBe('Ackd-ci');
    for (const o of ['McpUrl', 'ConsentUiUrl', 'TrustBundleUrl', 'TableName', 'UserPoolId', 'AuditExportUrl', 'AuditKeyArn']) expect(Object.keys(t.Outputs)).toContain(o);
    expect(JSON.stringify(t.Outputs.AuditExportUrl.Value)).toContain('/api/audit/export');
    // The export's REST API publishes no URL of its own: the export lives at the consent URL.
    expect(Object.keys(t.Outputs).filter((k) => k.includes('AuditExportApi'))).toEqual([]);
    expect(t.Outputs.AuditKeyArn.Value).toEqual({ 'Fn::GetAtt': [logicalIdOf(stack.auditKey.key!), 'Arn'] });
    expect(JSON.stringify(t.Outputs.McpUrl.Value)).toContain('/mcp');
    expect(JSON.stringify(t.Outputs.TrustBundleUrl.Value)).toContain('/.well-known/spiffe-bundle');
  });

  it('has no circular dependency between resources (CloudFormation would refuse to deploy it)', () => {
    const R = t.Resources as Json;
    const edges = new Map<string, Set<string>>();
    const refs = (v: unknown, out: Set<string>): void => {
      if (Array.isArray(v)) return v.forEach((x) => refs(x, out));
      if (!v || typeof v !== 'object') return;
      const o = v as Json;
      if (typeof o.Ref === 'string' && o.Ref in R) out.add(o.Ref);
      const att = o['Fn::GetAtt'];
      if (att) {
        const id = Array.isArray(att) ? String(att[0]) : String(att).split('.')[0]!;
        if (id in R) out.add(id);
      }
      const sub = o['Fn::Sub'];
      if (sub) for (const m of String(Array.isArray(sub) ? sub[0] : sub).matchAll(/\$\{([A-Za-z0-9]+)/g)) if (m[1]! in R) out.add(m[1]!);
      for (const x of Object.values(o)) refs(x, out);
    };
    for (const [id, r] of Object.entries(R) as [string, Json][]) {
      const out = new Set<string>();
      refs(r.Properties ?? {}, out);
      for (const d of asList(r.DependsOn ?? [])) out.add(d as string);
      edges.set(id, out);
    }
    // Depth-first search; a node met again while still on the path closes a cycle.
    const state = new Map<string, 'open' | 'done'>();
    const path: string[] = [];
    const visit = (n: string): string[] | null => {
      state.set(n, 'open');
      path.push(n);
      for (const d of edges.get(n) ?? []) {
        if (state.get(d) === 'open') return [...path.slice(path.indexOf(d)), d];
        if (!state.has(d)) {
          const c = visit(d);
          if (c) return c;
        }
      }
      path.pop();
      state.set(n, 'done');
      return null;
    };
    for (const n of edges.keys()) {
      if (state.has(n)) continue;
      const cycle = visit(n);
      expect(cycle, cycle?.join(' → ')).toBeNull();
    }
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
    expect(gsis['audit-log'].KeySchema).toEqual([
      { AttributeName: 'log_part', KeyType: 'HASH' },
      { AttributeName: 'log_key', KeyType: 'RANGE' },
    ]);
    // Exactly the indexes the store's schema declares, read from the same constants.
    expect(Object.keys(gsis).sort()).toEqual([TABLE.byAgent.name, TABLE.pendingByExpiry.name, TABLE.auditLog.name].sort());
    expect(tableIndexes().map((i) => i.name).sort()).toEqual(Object.keys(gsis).sort());
    const attrs = Object.fromEntries((p.AttributeDefinitions as Json[]).map((a) => [a.AttributeName, a.AttributeType]));
    for (const a of ['log_part', 'log_key']) expect(attrs[a], a).toBe('S');
    for (const g of Object.values(gsis) as Json[]) expect(g.Projection).toEqual({ ProjectionType: 'ALL' });
    expect(id).toBe(logicalIdOf(stack.data.table as never));
  });
});

describe('AuditKey: KMS key that signs audit checkpoints', () => {
  it('is an asymmetric ECC_NIST_P256 SIGN_VERIFY key, retained on stack deletion and replacement, with an alias', () => {
    // The other key in the stack encrypts the alarm topic (constructs/observability.ts).
    // (the decision and receipt keys are SIGN_VERIFY keys too: test/infra/evidence-keys.test.ts)
    const id = logicalIdOf(stack.auditKey.key!);
    const key = t.Resources[id] as Json;
    expect(key.Properties.KeySpec).toBe('ECC_NIST_P256');
    expect(key.Properties.KeyUsage).toBe('SIGN_VERIFY');
    expect(key.Properties.EnableKeyRotation ?? false).toBe(false); // KMS cannot rotate asymmetric keys
    expect(key.DeletionPolicy).toBe('Retain');
    expect(key.UpdateReplacePolicy).toBe('Retain');
    const [, alias] = one('AWS::KMS::Alias', (r) => JSON.stringify(r.Properties.TargetKeyId).includes(id));
    expect(alias.Properties.AliasName).toBe('alias/ackd/ci/audit-checkpoints');
    expect(alias.Properties.TargetKeyId).toEqual({ 'Fn::GetAtt': [id, 'Arn'] });
  });

  it('its key policy: the account administers it and reads the public key; only the sweeper role signs (test/infra/kms.test.ts pins it)', () => {
    const key = t.Resources[logicalIdOf(stack.auditKey.key!)] as Json;
    const stmts = key.Properties.KeyPolicy.Statement as Json[];
    expect(stmts.map((s) => s.Sid)).toEqual(['KeyAdministrationWithoutUse', 'ReadPublicKey', 'SignAuditCheckpointsSweeperOnly']);
    for (const s of stmts) expect(s.Effect).toBe('Allow');
    for (const s of stmts.slice(0, 2)) expect(JSON.stringify(s.Principal)).toMatch(/:iam::.*:root/);
    expect(stmts[2]!.Principal).toEqual({ AWS: { 'Fn::GetAtt': [logicalIdOf(stack.api.sweeperFunction.role as never), 'Arn'] } });
  });
});

describe('Api: functions, least privilege, logs, HTTP API', () => {
  const fnIds = () => ({
    mcp: logicalIdOf(stack.api.mcpFunction),
    consent: logicalIdOf(stack.api.consentFunction),
    sweeper: logicalIdOf(stack.api.sweeperFunction),
    auditExport: logicalIdOf(stack.api.auditExportFunction),
  });
  const keyArn = () => JSON.stringify({ 'Fn::GetAtt': [logicalIdOf(stack.auditKey.key!), 'Arn'] });

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

  it('MCP function: exactly GetItem/BatchGetItem/PutItem/UpdateItem/Query on the table, Query on its two indexes, its bridge secret; no SES (the sweeper announces requests)', () => {
    const g = grants(roleOfFunction(fnIds().mcp));
    expect([...g.keys()].sort()).toEqual(
      ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem', 'kms:GenerateMac', 'kms:GetPublicKey', 'kms:Sign', 'secretsmanager:GetSecretValue', ...XRAY].sort(),
    );
    // It seals the audit events it writes (test/infra/outbox-seal.test.ts).
    expect(g.get('kms:GenerateMac')).toEqual([keyArnOf(stack.outboxSeal.key)]);
    for (const a of ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']) expect(g.get(a)).toEqual([tableArn()]);
    // Signed decisions and receipts (issue 13): it reads the decision key's public key, and signs receipts with its own key.
    expect(g.get('kms:GetPublicKey')!.sort()).toEqual([keyArnOf(stack.decisionKey.key!), keyArnOf(stack.receiptKey.key!)].sort());
    expect(g.get('kms:Sign')).toEqual([keyArnOf(stack.receiptKey.key!)]);
    expect(g.get('dynamodb:Query')!.sort()).toEqual([tableArn(), indexArn('by-agent'), indexArn('pending-by-expiry')].sort());
    expect(g.get('secretsmanager:GetSecretValue')).toEqual([JSON.stringify({ Ref: logicalIdOf(stack.spire.bridgeSecret as never) })]);
  });

  it('consent API function: GetItem, PutItem (audit event slots), UpdateItem and BatchGetItem on the table, Query on the two indexes the dashboard reads, the decision key; no SES, no secrets', () => {
    const g = grants(roleOfFunction(fnIds().consent));
    expect([...g.keys()].sort()).toEqual(['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem', 'kms:GenerateMac', 'kms:GetPublicKey', 'kms:Sign', ...XRAY].sort());
    for (const a of ['kms:Sign', 'kms:GetPublicKey']) expect(g.get(a), a).toEqual([keyArnOf(stack.decisionKey.key!)]);
    expect(g.get('kms:GenerateMac')).toEqual([keyArnOf(stack.outboxSeal.key)]);
    for (const a of ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:BatchGetItem']) expect(g.get(a), a).toEqual([tableArn()]);
    expect(g.get('dynamodb:Query')!.sort()).toEqual([indexArn('pending-by-expiry'), indexArn('audit-log')].sort());
  });

  it('sweeper: Query on pending-by-expiry and audit-log, Get/Put/Update/BatchGet on the table, BatchWrite of tree nodes only, SES send (retries), kms:Sign and kms:GetPublicKey on the audit key only', () => {
    const g = grants(roleOfFunction(fnIds().sweeper));
    expect([...g.keys()].sort()).toEqual(
      [
        'dynamodb:BatchGetItem',
        // The sequencer stores a run's Merkle tree nodes in batches (putNodes), on audit#node#… keys only.
        'dynamodb:BatchWriteItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
        'kms:GenerateMac',
        'kms:GetPublicKey',
        'kms:Sign',
        'ses:SendEmail',
        // The audit sequencer's stream trigger and its dead-letter queue (test/infra/observability.test.ts).
        'dynamodb:DescribeStream',
        'dynamodb:GetRecords',
        'dynamodb:GetShardIterator',
        'dynamodb:ListStreams',
        'sqs:GetQueueAttributes',
        'sqs:GetQueueUrl',
        'sqs:SendMessage',
        ...XRAY,
      ].sort(),
    );
    expect(g.get('dynamodb:Query')!.sort()).toEqual([indexArn('pending-by-expiry'), indexArn('audit-log')].sort());
    for (const a of ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:BatchGetItem']) expect(g.get(a), a).toEqual([tableArn()]);
    expect(g.get('kms:Sign')).toEqual([keyArn()]);
    expect(g.get('kms:GetPublicKey')).toEqual([keyArn()]);
    // It seals the events it writes and checks every waiting entry's seal (test/infra/outbox-seal.test.ts).
    expect(g.get('kms:GenerateMac')).toEqual([keyArnOf(stack.outboxSeal.key)]);
    const stmts = statementsOfRole(roleOfFunction(fnIds().sweeper));
    const nodes = stmts.find((s) => asList(s.Action).includes('dynamodb:BatchWriteItem'))!;
    expect(asList(nodes.Action)).toEqual(['dynamodb:BatchWriteItem']);
    expect(JSON.stringify(nodes.Resource)).toEqual(tableArn());
    expect(nodes.Condition).toEqual({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['audit#node#*'] } });
    const ses = stmts.find((s) => asList(s.Action).includes('ses:SendEmail'))!;
    expect(ses.Condition).toEqual({ StringEquals: { 'ses:FromAddress': 'ackd@acme-corp.io' } });
    // Signing only the way KmsSigner signs.
    const sign = stmts.find((s) => asList(s.Action).includes('kms:Sign'))!;
    expect(asList(sign.Action)).toEqual(['kms:Sign']);
    expect(sign.Condition).toEqual({ StringEquals: { 'kms:SigningAlgorithm': 'ECDSA_SHA_256', 'kms:MessageType': 'RAW' } });
  });

  it('audit export function: reads only — GetItem and BatchGetItem on the table, Query on audit-log, kms:GetPublicKey; it can neither write nor sign', () => {
    const g = grants(roleOfFunction(fnIds().auditExport));
    expect([...g.keys()].sort()).toEqual(['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:Query', 'kms:GetPublicKey', ...XRAY].sort());
    expect(g.get('dynamodb:GetItem')).toEqual([tableArn()]);
    expect(g.get('dynamodb:BatchGetItem')).toEqual([tableArn()]);
    expect(g.get('dynamodb:Query')).toEqual([indexArn('audit-log')]);
    expect(g.get('kms:GetPublicKey')).toEqual([keyArn()]);
    // (xray:Put* writes trace data, not the table.)
    expect([...g.keys()].filter((a) => !XRAY.includes(a) && /Put|Update|Delete|Write|Transact|Sign|Encrypt|Decrypt/.test(a))).toEqual([]);
  });

  it('only the sweeper may sign with the audit key; the MCP and consent functions may not use it at all', () => {
    const audit = keyArnOf(stack.auditKey.key!);
    const signers = Object.entries(fnIds()).filter(([, id]) => (grants(roleOfFunction(id)).get('kms:Sign') ?? []).includes(audit)).map(([n]) => n);
    expect(signers).toEqual(['sweeper']);
    for (const n of ['mcp', 'consent'] as const) {
      const g = grants(roleOfFunction(fnIds()[n]));
      expect([...g.keys()].filter((a) => a.startsWith('kms:') && (g.get(a) ?? []).includes(audit)), n).toEqual([]);
    }
    // No other role in the stack may sign with it either (SPIRE's task role signs with its own CA keys).
    const keyRefs = resources('AWS::IAM::Policy').filter(([, p]) => JSON.stringify(p.Properties.PolicyDocument).includes(logicalIdOf(stack.auditKey.key!)));
    const roles = keyRefs.flatMap(([, p]) => (p.Properties.Roles as Json[]).map((r) => r.Ref as string)).sort();
    expect(roles).toEqual([roleOfFunction(fnIds().sweeper), roleOfFunction(fnIds().auditExport)].sort());
  });

  it('no function may Scan, Delete, or use a wildcard action, nor write in batches but the sweeper\'s tree nodes; managed policies are only the basic (and VPC) execution roles', () => {
    for (const [name, id] of Object.entries(fnIds())) {
      // (the sweeper's BatchWriteItem is on audit#node#… keys only: pinned in its own test above)
      const actions = [...grants(roleOfFunction(id)).keys()].filter((a) => !(name === 'sweeper' && a === 'dynamodb:BatchWriteItem'));
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

  it('audit export: a regional REST API whose Lambda integration streams the response (15 min), GET/HEAD/OPTIONS under /api/audit/ only, access logs, throttling', () => {
    const [apiId, api] = one('AWS::ApiGateway::RestApi');
    expect(apiId).toBe(logicalIdOf(stack.api.auditExportApi));
    expect(api.Properties.EndpointConfiguration.Types).toEqual(['REGIONAL']);
    const pathOf = (resId: string): string => {
      const r = (t.Resources[resId] as Json).Properties;
      const parent = r.ParentId['Fn::GetAtt'] ? '' : pathOf(r.ParentId.Ref as string);
      return `${parent}/${r.PathPart}`;
    };
    const methods = resources('AWS::ApiGateway::Method');
    expect(methods.map(([, m]) => `${m.Properties.HttpMethod} ${pathOf(m.Properties.ResourceId.Ref)}`).sort()).toEqual(
      ['GET /api/audit/{proxy+}', 'HEAD /api/audit/{proxy+}', 'OPTIONS /api/audit/{proxy+}'],
    );
    for (const [, m] of methods) {
      const i = m.Properties.Integration;
      expect(i.Type).toBe('AWS_PROXY');
      expect(i.ResponseTransferMode).toBe('STREAM');
      expect(i.TimeoutInMillis).toBe(15 * 60_000);
      const uri = JSON.stringify(i.Uri);
      expect(uri).toContain(fnIds().auditExport);
      expect(uri).toContain('/response-streaming-invocations'); // InvokeWithResponseStream
    }
    const [, stage] = one('AWS::ApiGateway::Stage');
    expect(stage.Properties.StageName).toBe(AUDIT_EXPORT_STAGE);
    expect(stage.Properties.AccessLogSetting.DestinationArn).toBeDefined();
    expect(stage.Properties.MethodSettings).toEqual([expect.objectContaining({ ThrottlingRateLimit: 5, ThrottlingBurstLimit: 10 })]);
    // The function: not in the VPC, bounded memory, as long as a stream may last.
    const fn = (t.Resources[fnIds().auditExport] as Json).Properties;
    expect(fn.Timeout).toBe(900);
    expect(fn.MemorySize).toBe(512);
    expect(fn.VpcConfig).toBeUndefined();
    // API Gateway (this API only) may invoke it; nothing else, and no function URL exists.
    const perms = resources('AWS::Lambda::Permission').filter(([, p]) => JSON.stringify(p.Properties.FunctionName).includes(fnIds().auditExport));
    expect(perms.length).toBeGreaterThan(0);
    for (const [, p] of perms) {
      expect(p.Properties.Principal).toBe('apigateway.amazonaws.com');
      expect(JSON.stringify(p.Properties.SourceArn)).toContain(apiId);
    }
    expect(resources('AWS::Lambda::Url')).toHaveLength(0);
  });

  it('the sweeper runs on a schedule', () => {
    const rules = resources('AWS::Events::Rule').filter(([, r]) => JSON.stringify(r.Properties.Targets).includes(fnIds().sweeper));
    expect(rules.length).toBe(1);
    expect(rules[0]![1].Properties.ScheduleExpression).toBe('rate(5 minutes)');
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
    // The export authenticates approvers with the very same settings as the consent API.
    const exp = env(fnIds().auditExport);
    for (const k of Object.keys(consent).filter((k) => k.startsWith('ACKD_COGNITO_') || k === 'ACKD_CONSENT_URL')) expect(exp[k], k).toEqual(consent[k]);
    expect(exp.ACKD_MINTER).toBeUndefined();
    // ACKD_AUDIT_KEY = kms:<key ARN>, on the sweeper (signs) and the export (public key) only.
    const withKey = Object.entries(fnIds()).filter(([, id]) => env(id).ACKD_AUDIT_KEY !== undefined).map(([n]) => n);
    expect(withKey.sort()).toEqual(['auditExport', 'sweeper']);
    const expected = { 'Fn::Join': ['', ['kms:', { 'Fn::GetAtt': [logicalIdOf(stack.auditKey.key!), 'Arn'] }]] };
    expect(env(fnIds().sweeper).ACKD_AUDIT_KEY).toEqual(expected);
    expect(exp.ACKD_AUDIT_KEY).toEqual(expected);
  });

  it('every function builds the service, so every function gets the configured flood limits (ACKD_LIMIT_*), and only those', () => {
    const env = (id: string) => (t.Resources[id] as Json).Properties.Environment.Variables as Json;
    for (const [name, id] of Object.entries(fnIds())) {
      const limits = Object.fromEntries(Object.entries(env(id)).filter(([k]) => k.startsWith('ACKD_LIMIT_')));
      expect(limits, name).toEqual({
        [LIMIT_ENV.requestsPerMinute]: '120',
        [LIMIT_ENV.openPending]: '50',
        [LIMIT_ENV.refusalsPerRequest]: '0',
      });
    }
    expect(LIMIT_ENV.requestsPerMinute).toBe('ACKD_LIMIT_REQUESTS_PER_MINUTE'); // the names lambdas/config.ts reads
    // The passkey rule too: fixed on requests by the MCP function, enforced where decisions are made.
    for (const [name, id] of Object.entries(fnIds())) expect(env(id).ACKD_PASSKEY_REQUIRED, name).toBe('none');
  });

  it('refuses out-of-range, non-integer or unknown flood limits before building anything, naming the key and its range', () => {
    const synthWith = (limits: string) => () => buildApp(new App({ context: { ...TEST_CONTEXT, 'ackd:limits': limits } }));
    expect(synthWith('{"concurrentWaits":0}')).toThrow(DeployConfigError);
    expect(synthWith('{"concurrentWaits":0}')).toThrow(/limits .*key "concurrentWaits" must be an integer from 1 to 100 \(got 0\)/);
    expect(synthWith('{"mailWindowMinutes":1.5}')).toThrow(/key "mailWindowMinutes" must be an integer from 1 to 1440/);
    expect(synthWith('{"burst":10}')).toThrow(/unknown key "burst"/);
  });
});

describe('Consent: S3, CloudFront, Cognito, SES', () => {
  it('no bucket is public: all four public-access blocks, encryption, TLS-only policy', () => {
    const buckets = resources('AWS::S3::Bucket');
    expect(buckets.length).toBe(4); // consent UI + its access logs, audit archive + its access logs (test/infra/archive.test.ts)
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
    // CloudFront tries behaviors in order: the audit export's must precede the consent API's.
    expect((cfg.CacheBehaviors as Json[]).map((b) => b.PathPattern)).toEqual(['/api/audit/*', '/api/*']);
    const api = cfg.CacheBehaviors[1];
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

  it('CloudFront: /api/audit/* → the audit export API (uncached, every viewer header but Host, GET/HEAD/OPTIONS, 60 s read timeout)', () => {
    const [, dist] = one('AWS::CloudFront::Distribution');
    const cfg = dist.Properties.DistributionConfig;
    const audit = (cfg.CacheBehaviors as Json[]).find((b) => b.PathPattern === '/api/audit/*')!;
    expect(audit.ViewerProtocolPolicy).toBe('https-only');
    expect(audit.CachePolicyId).toBe('4135ea2d-6df8-44a3-9df3-4b5a84be39ad'); // Managed-CachingDisabled
    expect(audit.OriginRequestPolicyId).toBe('b689b0a8-53d0-40ab-baf2-68738e2966ac'); // Managed-AllViewerExceptHostHeader (Authorization included)
    expect(audit.AllowedMethods.sort()).toEqual(['GET', 'HEAD', 'OPTIONS']);
    expect(audit.ResponseHeadersPolicyId).toBeDefined();
    const origin = (cfg.Origins as Json[]).find((o) => o.Id === audit.TargetOriginId)!;
    expect(JSON.stringify(origin.DomainName)).toContain(logicalIdOf(stack.api.auditExportApi));
    expect(JSON.stringify(origin.DomainName)).toContain('.execute-api.');
    expect(origin.OriginPath).toBe(`/${AUDIT_EXPORT_STAGE}`);
    expect(origin.CustomOriginConfig).toMatchObject({ OriginProtocolPolicy: 'https-only', OriginSSLProtocols: ['TLSv1.2'], OriginReadTimeout: 60 });
    // The consent API's behavior keeps its own origin.
    const consentApi = (cfg.CacheBehaviors as Json[]).find((b) => b.PathPattern === '/api/*')!;
    expect(consentApi.TargetOriginId).not.toBe(audit.TargetOriginId);
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
    expect(DEFAULT_SPIRE_IMAGE).toMatch(/^ghcr\.io\/spiffe\/spire-server:1\.15\.3@sha256:[0-9a-f]{64}$/);
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
    const [fsId, fs] = one('AWS::EFS::FileSystem');
    expect(fs.Properties.Encrypted).toBe(true);
    // Backed up by ackd's own AWS Backup plan (test/infra/spire-availability.test.ts), not EFS's automatic one.
    expect(JSON.stringify(resources('AWS::Backup::BackupSelection').map(([, b]) => b.Properties.BackupSelection.Resources))).toContain(fsId);
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
/** The SVID the MCP bundle issued (its test below), for the AWS credentials bundle's test after it. */
let issued: { requestId: string; svid: string } | undefined;

describe('Lambda bundles (imported from cdk.out, invoked with events of their trigger types)', () => {
  let ddb: Server;
  let endpoint: string;
  let spire: TestSpire;
  let bridge: ChildProcess;
  let bridgeUrl: string;
  const tableName = `ackd-bundles-${Date.now()}`;
  const bridgeSecret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex');
  const savedEnv = { ...process.env };
  // The decision and receipt keys of this run (KMS keys on AWS), made at test time.
  const decisionKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyDir = mkdtempSync(join(tmpdir(), 'ackd-bundle-keys-'));
  const receiptKeyFile = join(keyDir, 'receipt.pem');
  outboxSealKeyFile = createSealKeyFileOnce(join(keyDir, 'outbox-seal.key'));

  beforeAll(async () => {
    writeFileSync(receiptKeyFile, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
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
      // On AWS these are KMS keys (kms:<arn>); here, keys made for this run (issue 13: signed decisions, receipts).
      ACKD_DECISION_PUBLIC_KEY: decisionKey.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      ACKD_RECEIPT_KEY: receiptKeyFile,
      ACKD_OUTBOX_SEAL_KEY: outboxSealKeyFile,
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
    rmSync(keyDir, { recursive: true, force: true });
  });

  it('every function\'s bundle is one ESM file built from its handler entry', () => {
    for (const fn of [stack.api.mcpFunction, stack.api.consentFunction, stack.api.sweeperFunction, stack.api.auditExportFunction]) {
      const file = bundleOf(logicalIdOf(fn));
      const src = readFileSync(file, 'utf8');
      expect(src).toMatch(/export\s*\{[^}]*\bhandler\b/);
      expect(src).toContain('createRequire');
    }
    expect(Object.values(HANDLERS).map((h) => h.entry)).toEqual([
      'lambdas/handlers/mcp.ts',
      'lambdas/handlers/consent-api.ts',
      'lambdas/handlers/sweeper.ts',
      'lambdas/handlers/aws-credentials.ts',
      'lambdas/handlers/audit-export.ts',
    ]);
    // The AWS credentials function exists only with awsRoles (not set here: test/infra/aws-broker.test.ts).
    expect(stack.api.awsCredentialsFunction).toBeUndefined();
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
    const { apiKey } = await createApiKey(new SealedApiKeyStore(new DynamoApiKeyStore(client, tableName), fileOutboxSealer(outboxSealKeyFile)), agent, systemClock);
    const headers = { ...MCP_HEADERS, authorization: `Bearer ${apiKey}` };
    const made = new Set<string>();
    const call = async (id: number, name: string, args: Json): Promise<Json> => {
      let res!: Awaited<ReturnType<Handler>>;
      for (const a of await dynamoActionsOf(endpoint, async () => (res = await handler(httpEvent('POST', '/mcp', { headers, body: rpc(id, 'tools/call', { name, arguments: args }) }), lambdaContext)))) made.add(a);
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

    const store = DynamoRequestStore.withAudit(client, tableName, { clock: systemClock, retentionDays: 90, sealer: fileOutboxSealer(outboxSealKeyFile) });
    const now = new Date();
    // The consent function's deciding write: the vote, with the decision signed by the decision key.
    const vote = { voter: 'sub-alice', email: 'alice@acme-corp.io', vote: 'approve' as const, at: now.toISOString(), groups: [] };
    const svidExpiresAt = new Date(Date.now() + 10 * 60_000).toISOString();
    const pending = (await store.get(req.request_id as never))!;
    const signed = await signDecision(new LocalKeySigner(decisionKey.privateKey), decisionStatement(pending, { decision: 'approved', approver: 'sub-alice', decidedAt: now.toISOString(), svidExpiresAt, votes: [vote] }));
    await store.apply(
      'approve',
      req.request_id as never,
      { now: now.toISOString(), approver: 'sub-alice', email: 'alice@acme-corp.io', svidExpiresAt, vote, seen: 0, decisionSignature: signed as never },
      auditEvent('approved', { type: 'approver', id: 'sub-alice' }, now),
    );
    // The sweeper (the sequencer's home on AWS) puts the approval in the audit log.
    await sequence(store);

    const approved = await call(3, 'check_authorization', { request_id: req.request_id });
    expect(approved.status).toBe('approved');
    expect(approved.spiffe_id).toBe(`spiffe://agents.acme-corp.io/agent/deploy-bot/${req.request_id}`);
    const leaf = new X509Certificate((approved.svid as string).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)![0]);
    expect(leaf.subjectAltName).toBe(`URI:${approved.spiffe_id}`);
    const bundle = await spire.client.getBundle();
    const roots = bundle.x509Authorities.map((d) => new X509Certificate(Buffer.from(d)));
    expect(roots.some((r) => leaf.checkIssued(r) && leaf.verify(r.publicKey))).toBe(true);
    // Everything the MCP bundle did to the table on the way (request, check, claim, issue) is granted to its role.
    expect([...made].length).toBeGreaterThanOrEqual(4);
    expectGranted([...made], logicalIdOf(stack.api.mcpFunction));
    expect((await store.get(req.request_id as never))?.svid_id).toBe(approved.svid_id);
    issued = { requestId: req.request_id as string, svid: approved.svid as string };
    // With its receipt, signed by the receipt key, naming this SVID.
    const [, claims] = (approved.receipt as string).split('.');
    expect(JSON.parse(Buffer.from(claims!, 'base64url').toString())).toMatchObject({ request_id: req.request_id, svid_id: approved.svid_id, spiffe_id: approved.spiffe_id, approver: 'sub-alice' });
  }, 60_000);

  it('AWS credentials bundle (built with BUNDLING; CDK creates the function only with awsRoles): checks an SVID proof against SPIRE\'s bundle through the bridge, once, then the request', async () => {
    expect(issued, 'the MCP bundle test above issued an SVID').toBeDefined();
    const { requestId, svid } = issued!;
    const dir = mkdtempSync(join(tmpdir(), 'ackd-aws-credentials-bundle-'));
    try {
      await build({ ...esbuildOptionsOf(BUNDLING), absWorkingDir: REPO, entryPoints: [join(REPO, HANDLERS.awsCredentials.entry)], outfile: join(dir, 'index.mjs') });
      // What AwsBroker sets (constructs/aws-broker.ts). The MCP bundle was built before this, without it.
      process.env.ACKD_AWS_ROLES = JSON.stringify({ deploy: { roleArn: 'arn:aws:iam::111122223333:role/ackd/deploy' } });
      const { handler } = (await import(pathToFileURL(join(dir, 'index.mjs')).href)) as { handler: Handler };
      const url = `https://abc123.execute-api.us-east-1.amazonaws.com${AWS_CREDENTIALS_PATH}`;
      const post = async (headers: Record<string, string>) => {
        const res = await handler(httpEvent('POST', AWS_CREDENTIALS_PATH, { headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ request_id: requestId, role: 'deploy' }) }), lambdaContext);
        return { status: res.statusCode as number, error: (JSON.parse(res.body as string) as { error?: { code: string; message: string } }).error };
      };
      expect((await post({})).status).toBe(401);
      // A proof signed with another key than the SVID's: the chain verifies, the signature does not.
      const other = `${svid.replace(/-----BEGIN PRIVATE KEY-----[\s\S]+$/, '')}${generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()}`;
      const forged = await post({ authorization: `${POP_SCHEME} ${await signSvidProof(other, { requestId, role: 'deploy', aud: url })}` });
      expect(forged.status).toBe(401);
      expect(forged.error?.message).toMatch(/signature/);
      // The real proof: path-validated against the trust bundle SPIRE gave through the bridge, its
      // jti claimed once in the table; then the request, approved for deploy:prod only, is refused the role.
      const proof = await signSvidProof(svid, { requestId, role: 'deploy', aud: url });
      const first = await post({ authorization: `${POP_SCHEME} ${proof}` });
      expect(first.status, JSON.stringify(first.error)).toBe(403);
      expect(first.error?.message).toBe(`request ${requestId} was not approved for aws:role/deploy`);
      const replay = await post({ authorization: `${POP_SCHEME} ${proof}` });
      expect(replay.status).toBe(403);
      expect(replay.error?.message).toMatch(/used before/);
      // It serves nothing else.
      expect((await handler(httpEvent('POST', '/mcp', { headers: MCP_HEADERS, body: '{}' }), lambdaContext)).statusCode).toBe(404);
    } finally {
      delete process.env.ACKD_AWS_ROLES;
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('consent API bundle: no token → 401; an agent API key → 401', async () => {
    const { handler } = (await import(pathToFileURL(bundleOf(logicalIdOf(stack.api.consentFunction))).href)) as { handler: Handler };
    const id = 'req_0000000000aaaaaaaaaaaaaaaa';
    const none = await handler(httpEvent('GET', `/api/requests/${id}`), lambdaContext);
    expect(none.statusCode).toBe(401);
    const agentKey = await handler(httpEvent('GET', `/api/requests/${id}`, { headers: { authorization: `Bearer ackd_${'B'.repeat(43)}` } }), lambdaContext);
    expect(agentKey.statusCode).toBe(401);
  });

  it('audit export bundle: builds its app from the environment, then hands its handler to the Lambda runtime\'s response streaming', async () => {
    const file = bundleOf(logicalIdOf(stack.api.auditExportFunction));
    // hono's streamHandle calls the runtime's global `awslambda.streamifyResponse` when the module
    // is evaluated, so outside Lambda the import stops exactly there, after config, Cognito
    // settings and dependencies were built from the environment without error. (The AWS SDK's
    // invoke store creates an empty `awslambda` global, hence "not a function" rather than
    // "not defined" once any bundle with the SDK has been loaded in this process.)
    await expect(import(pathToFileURL(file).href)).rejects.toThrow(/awslambda(\.streamifyResponse)? is not (defined|a function)/);
    // Test double of that one runtime hook, recording what it is given; nothing is invoked (the
    // streamed response itself is exercised by the integration tests, not here).
    const given: unknown[] = [];
    const g = globalThis as { awslambda?: object };
    const saved = g.awslambda;
    g.awslambda = {
      ...saved,
      streamifyResponse: (fn: unknown) => {
        given.push(fn);
        return fn;
      },
    };
    try {
      const mod = (await import(`${pathToFileURL(file).href}?with-streamify-double`)) as { handler?: unknown };
      expect(typeof mod.handler).toBe('function');
      expect(given).toEqual([mod.handler]);
      expect((mod.handler as (...a: unknown[]) => unknown).length).toBe(3); // (event, responseStream, context)
    } finally {
      if (saved === undefined) delete g.awslambda;
      else g.awslambda = saved;
    }
  });

  it('sweeper bundle: a scheduled event records expiry of an overdue pending request', async () => {
    const { handler } = (await import(pathToFileURL(bundleOf(logicalIdOf(stack.api.sweeperFunction))).href)) as { handler: Handler };
    const client = dynamoClient({ region: 'us-east-1', endpoint });
    const store = DynamoRequestStore.withAudit(client, tableName, { clock: systemClock, retentionDays: 90, sealer: fileOutboxSealer(outboxSealKeyFile) });
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
    let result!: Record<string, unknown>;
    const made = await dynamoActionsOf(endpoint, async () => (result = (await handler(scheduled, lambdaContext)) as Record<string, unknown>));
    expect(result.expired).toBeGreaterThanOrEqual(1);
    // The sweep expired it and sequenced its events (the Merkle nodes in a batch): all granted to the sweeper's role.
    expect(result.sequenced).toBeGreaterThanOrEqual(1);
    expect(made).toContain('dynamodb:BatchWriteItem');
    expectGranted(made, logicalIdOf(stack.api.sweeperFunction));
    const after = await store.get(request_id);
    expect(after?.decision).toBe('expired');
    expect(after?.decision_at).not.toBeNull();
    // Without ACKD_AUDIT_KEY (as here) the sweep signs nothing.
    expect(result.checkpoint_seq).toBeNull();
  });

  it('sweeper bundle with a checkpoint key: the scheduled sweep signs a checkpoint of the audit chain that verifies', async () => {
    // On AWS the key is KMS (ACKD_AUDIT_KEY=kms:<arn>, asserted above); KMS cannot run here, so the
    // same bundle gets the other form lambdas/config.ts accepts: a P-256 private key file.
    const dir = mkdtempSync(join(tmpdir(), 'ackd-audit-key-'));
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const keyFile = join(dir, 'audit-key.pem');
    writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    process.env.ACKD_AUDIT_KEY = keyFile;
    try {
      const { handler } = (await import(`${pathToFileURL(bundleOf(logicalIdOf(stack.api.sweeperFunction))).href}?with-audit-key`)) as { handler: Handler };
      const result = await handler({ 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} }, lambdaContext);
      expect(result.checkpoint_seq).toBeGreaterThanOrEqual(1);
      const log = DynamoRequestStore.withAudit(dynamoClient({ region: 'us-east-1', endpoint }), tableName, { clock: systemClock, retentionDays: 90 }).audit;
      const checkpoint = await log.checkpointAtOrBefore(result.checkpoint_seq as number);
      expect(checkpoint?.seq).toBe(result.checkpoint_seq);
      expect(checkpoint!.hash).toBe((await log.head()).hash);
      expect(checkpointSignatureProblem(checkpoint!, publicKey)).toBeNull();
    } finally {
      delete process.env.ACKD_AUDIT_KEY;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
