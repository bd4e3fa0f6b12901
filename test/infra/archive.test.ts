/**
 * Issue 15 item 5: the daily audit archive. Pinned on the template: an Object Lock bucket in
 * COMPLIANCE mode for archiveRetentionYears, versioned, encrypted, SSL-only, public access
 * blocked, access-logged; a daily schedule; a function that may only read the audit log and put
 * objects under audit/. (The S3 adapter itself is not exercised here: no S3-compatible server is
 * installed; lambdas/core/archive.ts's day/key logic is unit-tested in test/unit/archive.test.ts.)
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ARCHIVE_PREFIX } from '../../lambdas/core/archive.ts';
import { resourcesOf, synthStack, type Json } from '../helpers/synth-stack.ts';
import type { AckdStack } from '../../lib/stacks/ackd-stack.ts';

let t: Json;
let stack: AckdStack;
const idOf = (c: { node: { defaultChild?: unknown } }) => stack.resolve(stack.getLogicalId(c.node.defaultChild as never)) as string;
const asList = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

beforeAll(() => {
  ({ t, stack } = synthStack({ archiveRetentionYears: 7 }));
}, 120_000);

describe('audit archive bucket', () => {
  it('Object Lock in COMPLIANCE mode for archiveRetentionYears, versioned, SSE, public access blocked, access-logged, retained', () => {
    const b = t.Resources[idOf(stack.archive.bucket)] as Json;
    expect(b.Properties.ObjectLockEnabled).toBe(true);
    expect(b.Properties.ObjectLockConfiguration).toEqual({ ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 7 * 365 } } });
    expect(b.Properties.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(b.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm).toBe('AES256');
    expect(b.Properties.PublicAccessBlockConfiguration).toEqual({ BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
    expect(b.Properties.LoggingConfiguration.DestinationBucketName).toEqual({ Ref: idOf(stack.archive.logBucket) });
    expect(b.DeletionPolicy).toBe('Retain');
    const policy = resourcesOf(t, 'AWS::S3::BucketPolicy').find(([, p]) => p.Properties.Bucket.Ref === idOf(stack.archive.bucket));
    expect((policy![1].Properties.PolicyDocument.Statement as Json[]).some((s) => s.Effect === 'Deny' && s.Condition?.Bool?.['aws:SecureTransport'] === 'false')).toBe(true);
  });

  it('the retention defaults to 6 years in prod and 1 elsewhere', () => {
    const days = (s: AckdStack, tt: Json) => (tt.Resources[s.resolve(s.getLogicalId(s.archive.bucket.node.defaultChild as never)) as string] as Json).Properties.ObjectLockConfiguration.Rule.DefaultRetention.Days;
    const ci = synthStack();
    expect(days(ci.stack, ci.t)).toBe(365);
    const prod = synthStack({ stage: 'prod' });
    expect(days(prod.stack, prod.t)).toBe(6 * 365);
  }, 120_000);

  it('refuses a retention outside 1-100 years, naming the setting', () => {
    expect(() => synthStack({ archiveRetentionYears: 0 })).toThrow(/archiveRetentionYears .*ACKD_DEPLOY_ARCHIVE_RETENTION_YEARS.* from 1 to 100/);
    expect(() => synthStack({ archiveRetentionYears: 'ten' })).toThrow(/archiveRetentionYears/);
  });
});

describe('audit archive function', () => {
  it('runs daily at 00:15 UTC (after the sweeper signed the last checkpoint of the day)', () => {
    const fnId = idOf(stack.archive.fn);
    const rules = resourcesOf(t, 'AWS::Events::Rule').filter(([, r]) => JSON.stringify(r.Properties.Targets).includes(fnId));
    expect(rules.map(([, r]) => r.Properties.ScheduleExpression)).toEqual(['cron(15 0 * * ? *)']);
    const fn = t.Resources[fnId] as Json;
    expect(fn.Properties.Environment.Variables.ACKD_ARCHIVE_BUCKET).toEqual({ Ref: idOf(stack.archive.bucket) });
    expect(fn.Properties.ReservedConcurrentExecutions).toBe(1);
  });

  it('a run that fails for good lands in its own dead-letter queue (the function\'s and the schedule target\'s), which alarms; traced like every function', () => {
    const fnId = idOf(stack.archive.fn);
    const dlqId = idOf(stack.archive.deadLetterQueue);
    const fn = t.Resources[fnId] as Json;
    expect(fn.Properties.DeadLetterConfig).toEqual({ TargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] } });
    expect(fn.Properties.TracingConfig).toEqual({ Mode: 'Active' });
    const [[, rule]] = resourcesOf(t, 'AWS::Events::Rule').filter(([, r]) => JSON.stringify(r.Properties.Targets).includes(fnId)) as [[string, Json]];
    expect((rule.Properties.Targets as Json[])[0]!.DeadLetterConfig).toEqual({ Arn: { 'Fn::GetAtt': [dlqId, 'Arn'] } });
    const q = (t.Resources[dlqId] as Json).Properties;
    expect(q.SqsManagedSseEnabled).toBe(true);
    expect(q.MessageRetentionPeriod).toBe(14 * 24 * 3600);
    const alarm = resourcesOf(t, 'AWS::CloudWatch::Alarm').find(([, a]) => a.Properties.AlarmName === 'ackd-ci-ArchiveDeadLetters')![1];
    expect(alarm.Properties.Namespace).toBe('AWS/SQS');
    expect(alarm.Properties.Dimensions).toEqual([{ Name: 'QueueName', Value: { 'Fn::GetAtt': [dlqId, 'QueueName'] } }]);
  });

  it('may only read the audit log and put objects under audit/ (no read, delete or retention change of the archive)', () => {
    const role = stack.resolve((stack.archive.fn.role!.node.defaultChild as unknown as { ref: string }).ref) as Json;
    const policies = resourcesOf(t, 'AWS::IAM::Policy').filter(([, p]) => asList(p.Properties.Roles).some((r) => JSON.stringify(r) === JSON.stringify(role)));
    const stmts = policies.flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Json[]);
    const actions = stmts.flatMap((s) => asList(s.Action) as string[]).sort();
    // Besides: send to its own dead-letter queue, and write X-Ray trace data (Resource * is the only form).
    expect(actions).toEqual(['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:Query', 's3:PutObject', 'sqs:SendMessage', 'xray:PutTelemetryRecords', 'xray:PutTraceSegments']);
    expect(stmts.find((s) => s.Action === 'sqs:SendMessage')!.Resource).toEqual({ 'Fn::GetAtt': [idOf(stack.archive.deadLetterQueue), 'Arn'] });
    expect(stmts.find((s) => asList(s.Action).includes('xray:PutTraceSegments'))!.Resource).toBe('*');
    const put = stmts.find((s) => s.Action === 's3:PutObject')!;
    expect(put.Resource).toEqual({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [idOf(stack.archive.bucket), 'Arn'] }, `/${ARCHIVE_PREFIX}*`]] });
    expect(JSON.stringify(stmts.find((s) => s.Action === 'dynamodb:Query')!.Resource)).toContain('/index/audit-log');
  });

  it('is named in the outputs', () => {
    expect(t.Outputs.AuditArchiveBucket.Value).toEqual({ Ref: idOf(stack.archive.bucket) });
  });
});
