/**
 * Issue 15 item 2, "nothing watches it": the alarm topic and its subscriptions, every alarm (its
 * metric and that it notifies the topic), the dashboard, X-Ray on every function, the sweeper's
 * dead-letter queue and the table stream that triggers the audit sequencer — pinned on the
 * synthesized template (lib/constructs/observability.ts, api.ts, data.ts), built as
 * throttles.test.ts builds it (buildApp with cdk.json's context, no bundling). Deploy settings
 * alarmEmails, sequencerBatchWindowSeconds and sequencerLagAlarmMs are refused when bad, naming
 * the setting. cdk-nag runs in every synth.
 */
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../bin/cdk.ts';
import {
  DEFAULT_SEQUENCER_BATCH_WINDOW_SECONDS,
  DEFAULT_SEQUENCER_LAG_ALARM_MS,
  DeployConfigError,
  loadDeployConfig,
} from '../../lib/config.ts';
import { tableIndexes } from '../../lib/constructs/data.ts';
import type { AckdStack } from '../../lib/stacks/ackd-stack.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const REPO = join(import.meta.dirname, '..', '..');
const cdkJson = JSON.parse(readFileSync(join(REPO, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
const BASE = {
  'ackd:stage': 'ci',
  'ackd:trustDomain': 'agents.acme-corp.io',
  'ackd:approverEmails': 'alice@acme-corp.io',
  'ackd:sender': 'acme-corp.io',
};

function synth(context: Record<string, unknown> = {}) {
  const app = new App({ context: { ...cdkJson.context, 'aws:cdk:bundling-stacks': [], ...BASE, ...context } });
  const { stack } = buildApp(app);
  const t = Template.fromStack(stack).toJSON() as Json;
  const of = (type: string) => Object.entries(t.Resources as Json).filter(([, r]) => (r as Json).Type === type) as [string, Json][];
  const idOf = (c: unknown) => stack.resolve(stack.getLogicalId((c as { node: { defaultChild: never } }).node.defaultChild)) as string;
  return { app, stack, t, of, idOf };
}
type Synth = ReturnType<typeof synth>;

const ref = (id: string) => ({ Ref: id });
const getAtt = (id: string, attr: string) => ({ 'Fn::GetAtt': [id, attr] });
const asList = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** Alarms by the id the construct gives them (`ackd-<stage>-<id>` is the alarm name). */
function alarmsOf(s: Synth, stage = 'ci'): Record<string, Json> {
  return Object.fromEntries(s.of('AWS::CloudWatch::Alarm').map(([, a]) => [(a.Properties.AlarmName as string).replace(`ackd-${stage}-`, ''), a.Properties]));
}
/** The metrics an alarm reads: its single metric, or every metric of its math expression. */
function metricsOf(alarm: Json): { namespace: string; name: string; dims: Record<string, unknown>; stat: string }[] {
  if (alarm.MetricName) {
    return [{ namespace: alarm.Namespace, name: alarm.MetricName, dims: Object.fromEntries(asList(alarm.Dimensions).map((d) => [(d as Json).Name, (d as Json).Value])), stat: alarm.Statistic }];
  }
  return (alarm.Metrics as Json[])
    .filter((m) => m.MetricStat)
    .map((m) => ({
      namespace: m.MetricStat.Metric.Namespace,
      name: m.MetricStat.Metric.MetricName,
      dims: Object.fromEntries(asList(m.MetricStat.Metric.Dimensions).map((d) => [(d as Json).Name, (d as Json).Value])),
      stat: m.MetricStat.Stat,
    }));
}
/** The dashboard body with CloudFormation tokens (region, resource names) replaced by "<token>". */
function dashboardOf(s: Synth): Json {
  const [[, d]] = s.of('AWS::CloudWatch::Dashboard') as [[string, Json]];
  const body = d.Properties.DashboardBody as Json;
  const text = typeof body === 'string' ? body : (body['Fn::Join'][1] as unknown[]).map((p) => (typeof p === 'string' ? p : '<token>')).join('');
  return JSON.parse(text) as Json;
}

const s = synth({ 'ackd:alarmEmails': 'oncall@acme-corp.io, SRE@acme-corp.io' });
const stack = (): AckdStack => s.stack;
const fnIds = () => ({
  mcp: s.idOf(stack().api.mcpFunction),
  consent: s.idOf(stack().api.consentFunction),
  sweeper: s.idOf(stack().api.sweeperFunction),
  auditExport: s.idOf(stack().api.auditExportFunction),
  archive: s.idOf(stack().archive.fn),
});
const topicId = () => s.idOf(stack().observability.topic);
const dlqId = () => s.idOf(stack().api.sweeperDeadLetterQueue);
const stageDims = { stage: 'ci' };

describe('the alarm topic', () => {
  it('is encrypted with its own rotating KMS key, which CloudWatch may use to publish, and accepts TLS only', () => {
    const [[id, topic]] = s.of('AWS::SNS::Topic') as [[string, Json]];
    expect(id).toBe(topicId());
    const keyId = s.idOf(stack().observability.topicKey);
    expect(topic.Properties.KmsMasterKeyId).toEqual(getAtt(keyId, 'Arn'));
    const key = (s.t.Resources as Json)[keyId] as Json;
    expect(key.Properties.EnableKeyRotation).toBe(true);
    const cloudwatch = (key.Properties.KeyPolicy.Statement as Json[]).find((st) => JSON.stringify(st.Principal).includes('cloudwatch.amazonaws.com'))!;
    expect(cloudwatch.Effect).toBe('Allow');
    expect(asList(cloudwatch.Action).sort()).toEqual(['kms:Decrypt', 'kms:GenerateDataKey*']);
    const [[, policy]] = s.of('AWS::SNS::TopicPolicy') as [[string, Json]];
    expect(policy.Properties.Topics).toEqual([ref(topicId())]);
    expect(policy.Properties.PolicyDocument.Statement).toContainEqual(
      expect.objectContaining({ Effect: 'Deny', Action: 'sns:Publish', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
    );
  });

  it('has one email subscription per address of alarmEmails (lowercased, deduplicated), and its ARN is an output', () => {
    const subs = s.of('AWS::SNS::Subscription').map(([, r]) => r.Properties as Json);
    expect(subs.map((p) => p.Endpoint).sort()).toEqual(['oncall@acme-corp.io', 'sre@acme-corp.io']);
    for (const p of subs) {
      expect(p.Protocol).toBe('email');
      expect(p.TopicArn).toEqual(ref(topicId()));
    }
    expect(s.t.Outputs.AlarmTopicArn.Value).toEqual(ref(topicId()));
  });
});

describe('the alarms', () => {
  const alarms = () => alarmsOf(s);
  const ackd = (name: string, stat: string) => [{ namespace: 'ackd', name, dims: stageDims, stat }];

  it('exist exactly as listed, and every one notifies the topic on ALARM and on OK, with a description of what to do (≤ 1024 characters)', () => {
    expect(Object.keys(alarms()).sort()).toEqual(
      [
        'IssuerUnavailable',
        'NotificationFailures',
        'AuditVerifyFailures',
        'AuditEntriesRefused',
        'AuditSequencerLag',
        'AuditCheckpointsMissing',
        'SweeperNotRunning',
        'SweeperDeadLetters',
        'ArchiveDeadLetters',
        'McpErrors',
        'ConsentErrors',
        'SweeperErrors',
        'AuditExportErrors',
        'AuditArchiveErrors',
        'McpThrottles',
        'ConsentThrottles',
        'AuditExportThrottles',
        'DynamoDbThrottles',
        'SpireTaskNotRunning',
      ].sort(),
    );
    for (const [id, a] of Object.entries(alarms())) {
      expect(a.AlarmActions, id).toEqual([ref(topicId())]);
      expect(a.OKActions, id).toEqual([ref(topicId())]);
      expect(a.ActionsEnabled ?? true, id).toBe(true);
      expect(a.AlarmDescription.length, id).toBeGreaterThan(150);
      expect(a.AlarmDescription.length, id).toBeLessThanOrEqual(1024); // CloudWatch's limit
      expect(a.AlarmDescription, id).toContain('docs/operations.md');
    }
  });

  it('issuer unavailable: a metric filter counts the MCP function\'s log lines with code ERR_ISSUER_UNAVAILABLE; ≥ 1 in 5 minutes alarms', () => {
    const [[, filter]] = s.of('AWS::Logs::MetricFilter') as [[string, Json]];
    expect(filter.Properties.LogGroupName).toEqual(ref(s.idOf(stack().api.mcpFunction.logGroup)));
    expect(filter.Properties.FilterPattern).toBe('{ $.code = "ERR_ISSUER_UNAVAILABLE" }');
    expect(filter.Properties.MetricTransformations).toEqual([
      { MetricNamespace: 'ackd', MetricName: 'IssuerUnavailable', MetricValue: '1', Dimensions: [{ Key: 'stage', Value: '$.stage' }] },
    ]);
    const a = alarms().IssuerUnavailable!;
    expect(metricsOf(a)).toEqual(ackd('IssuerUnavailable', 'Sum'));
    expect(a).toMatchObject({ Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold', Period: 300, TreatMissingData: 'notBreaching' });
  });

  it('consent email and notification failures: NotificationFailures ≥ 1', () => {
    expect(metricsOf(alarms().NotificationFailures!)).toEqual(ackd('NotificationFailures', 'Sum'));
    expect(alarms().NotificationFailures).toMatchObject({ Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' });
  });

  it('audit chain: any verification failure alarms; the sequencer lag alarms above the setting (missing lag = no events = not breaching)', () => {
    expect(metricsOf(alarms().AuditVerifyFailures!)).toEqual(ackd('AuditVerifyFailures', 'Sum'));
    expect(alarms().AuditVerifyFailures).toMatchObject({ Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold', TreatMissingData: 'notBreaching' });
    // The sequencer's refused outbox entries (the metric filter of constructs/outbox-seal.ts).
    expect(metricsOf(alarms().AuditEntriesRefused!)).toEqual(ackd('AuditEntriesRefused', 'Sum'));
    expect(alarms().AuditEntriesRefused).toMatchObject({ Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold', TreatMissingData: 'notBreaching' });
    const lag = alarms().AuditSequencerLag!;
    expect(metricsOf(lag)).toEqual(ackd('AuditSequencerLagMs', 'Maximum'));
    expect(lag).toMatchObject({ Threshold: DEFAULT_SEQUENCER_LAG_ALARM_MS, ComparisonOperator: 'GreaterThanThreshold', Period: 300, TreatMissingData: 'notBreaching' });
    expect(DEFAULT_SEQUENCER_LAG_ALARM_MS).toBe(120_000);
  });

  it('audit chain: events sequenced in an hour without one checkpoint signed alarms (no events, no checkpoints: not an alarm)', () => {
    const a = alarms().AuditCheckpointsMissing!;
    expect(metricsOf(a).sort((x, y) => x.name.localeCompare(y.name))).toEqual([...ackd('AuditCheckpointsSigned', 'Sum'), ...ackd('AuditEventsSequenced', 'Sum')]);
    const expr = (a.Metrics as Json[]).find((m) => m.Expression)!;
    expect(expr.Expression).toBe('IF(sequenced > 0 AND FILL(signed, 0) == 0, 1, 0)');
    expect((a.Metrics as Json[]).filter((m) => m.MetricStat).every((m) => m.MetricStat.Period === 3600)).toBe(true);
    expect(a).toMatchObject({ Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold', EvaluationPeriods: 1, TreatMissingData: 'notBreaching' });
  });

  it('sweeper: a dead letter alarms; so does a sweeper that has not run for three schedules (missing data = breaching)', () => {
    const dl = alarms().SweeperDeadLetters!;
    expect(metricsOf(dl)).toEqual([{ namespace: 'AWS/SQS', name: 'ApproximateNumberOfMessagesVisible', dims: { QueueName: getAtt(dlqId(), 'QueueName') }, stat: 'Maximum' }]);
    expect(dl).toMatchObject({ Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' });
    const idle = alarms().SweeperNotRunning!;
    expect(metricsOf(idle)).toEqual([{ namespace: 'AWS/Lambda', name: 'Invocations', dims: { FunctionName: ref(fnIds().sweeper) }, stat: 'Sum' }]);
    expect(idle).toMatchObject({ Threshold: 1, ComparisonOperator: 'LessThanThreshold', Period: 900, TreatMissingData: 'breaching' });
  });

  it('Lambda: errors of every function, throttles of the three that serve agents and approvers (the sweeper is throttled by design)', () => {
    const names = { mcp: 'Mcp', consent: 'Consent', sweeper: 'Sweeper', auditExport: 'AuditExport', archive: 'AuditArchive' } as const;
    for (const [k, id] of Object.entries(fnIds()) as [keyof typeof names, string][]) {
      const errors = alarms()[`${names[k]}Errors`]!;
      expect(metricsOf(errors), k).toEqual([{ namespace: 'AWS/Lambda', name: 'Errors', dims: { FunctionName: ref(id) }, stat: 'Sum' }]);
      expect(errors).toMatchObject({ Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold', Period: 300 });
      const throttles = alarms()[`${names[k]}Throttles`];
      if (k === 'sweeper' || k === 'archive') {
        expect(throttles).toBeUndefined();
        continue;
      }
      expect(metricsOf(throttles!), k).toEqual([{ namespace: 'AWS/Lambda', name: 'Throttles', dims: { FunctionName: ref(id) }, stat: 'Sum' }]);
    }
  });

  it('DynamoDB: the sum of read and write throttle events of the table and of each of its indexes', () => {
    const a = alarms().DynamoDbThrottles!;
    const table = ref(s.idOf(stack().data.table));
    const expected = [{ TableName: table }, ...tableIndexes().map((ix) => ({ TableName: table, GlobalSecondaryIndexName: ix.name }))].flatMap((dims) =>
      ['ReadThrottleEvents', 'WriteThrottleEvents'].map((name) => ({ namespace: 'AWS/DynamoDB', name, dims, stat: 'Sum' })),
    );
    expect(metricsOf(a)).toEqual(expected);
    expect(tableIndexes().length).toBe(3);
    const expr = (a.Metrics as Json[]).find((m) => m.Expression)!;
    expect(expr.Expression).toMatch(/^SUM\(\[.+\]\)$/);
    for (const m of (a.Metrics as Json[]).filter((x) => x.MetricStat)) expect(expr.Expression).toContain(m.Id);
    expect(a).toMatchObject({ Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' });
  });

  it('SPIRE: fewer running tasks than desired (Container Insights of the SPIRE service) in 3 of 5 minutes; silence breaches', () => {
    const a = alarms().SpireTaskNotRunning!;
    const dims = { ClusterName: ref(s.idOf(stack().spire.service.cluster)), ServiceName: getAtt(s.idOf(stack().spire.service), 'Name') };
    expect(metricsOf(a)).toEqual([
      { namespace: 'ECS/ContainerInsights', name: 'DesiredTaskCount', dims, stat: 'Maximum' },
      { namespace: 'ECS/ContainerInsights', name: 'RunningTaskCount', dims, stat: 'Minimum' },
    ]);
    expect((a.Metrics as Json[]).find((m) => m.Expression)!.Expression).toBe('desired - running');
    expect(a).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold', EvaluationPeriods: 5, DatapointsToAlarm: 3, TreatMissingData: 'breaching' });
    // Container Insights is what publishes those metrics.
    const [[, cluster]] = s.of('AWS::ECS::Cluster') as [[string, Json]];
    expect(cluster.Properties.ClusterSettings).toContainEqual({ Name: 'containerInsights', Value: 'enabled' });
  });
});

describe('the dashboard', () => {
  it('graphs requests and decisions, time to decision, SVIDs minted, issuance latency, sequencer lag, Lambda per function, DynamoDB throttles, SPIRE tasks, and shows every alarm', () => {
    const [[, d]] = s.of('AWS::CloudWatch::Dashboard') as [[string, Json]];
    expect(d.Properties.DashboardName).toBe('ackd-ci');
    const widgets = dashboardOf(s).widgets as Json[];
    const byTitle = Object.fromEntries(widgets.filter((w) => w.properties.title).map((w) => [w.properties.title as string, w.properties as Json]));
    /** "namespace/metric" of every metric a widget graphs (math expressions: their metrics). */
    const graphed = (title: string) =>
      (byTitle[title]!.metrics as unknown[][]).filter((m) => typeof m[0] === 'string' && typeof m[1] === 'string').map((m) => `${m[0]}/${m[1]}`);
    expect(graphed('Requests and decisions')).toEqual(['ackd/Requests', 'ackd/Approvals', 'ackd/Denials', 'ackd/Expiries']);
    expect(graphed('Time to decision')).toEqual(['ackd/TimeToDecisionMs', 'ackd/TimeToDecisionMs', 'ackd/TimeToDecisionMs']);
    expect(graphed('SVIDs minted and notification failures')).toEqual(['ackd/SvidsMinted', 'ackd/NotificationFailures']);
    expect(graphed('SVID issuance latency')).toEqual(['ackd/IssuanceLatencyMs', 'ackd/IssuanceLatencyMs', 'ackd/IssuanceLatencyMs']);
    expect(graphed('Issuer unavailable')).toEqual(['ackd/IssuerUnavailable']);
    expect(graphed('Audit sequencer lag')).toEqual(['ackd/AuditSequencerLagMs']);
    expect(byTitle['Audit sequencer lag']!.annotations.horizontal[0].value).toBe(DEFAULT_SEQUENCER_LAG_ALARM_MS);
    expect(graphed('Audit sequencer')).toEqual(['ackd/AuditEventsSequenced', 'ackd/AuditCheckpointsSigned', 'ackd/AuditVerifyFailures', 'ackd/AuditEntriesRefused']);
    expect(graphed('Sweeper dead letters')).toEqual(['AWS/SQS/ApproximateNumberOfMessagesVisible']);
    for (const [title, metric] of [
      ['Lambda errors', 'Errors'],
      ['Lambda throttles', 'Throttles'],
      ['Lambda duration p99', 'Duration'],
    ] as const) {
      expect(graphed(title), title).toEqual(Array(5).fill(`AWS/Lambda/${metric}`));
      expect((byTitle[title]!.metrics as unknown[][]).map((m) => (m.at(-1) as Json).label), title).toEqual(['MCP', 'Consent API', 'Sweeper', 'Audit export', 'Audit archive']);
    }
    expect(graphed('DynamoDB throttles')).toHaveLength(8);
    expect(graphed('SPIRE tasks')).toEqual(['ECS/ContainerInsights/RunningTaskCount', 'ECS/ContainerInsights/DesiredTaskCount']);
    // ackd's own metrics are this stage's.
    for (const w of widgets) for (const m of (w.properties.metrics ?? []) as unknown[][]) if (m[0] === 'ackd') expect(m.slice(2, 4)).toEqual(['stage', 'ci']);
    const status = widgets.find((w) => w.type === 'alarm')!;
    expect(status.properties.alarms).toHaveLength(Object.keys(alarmsOf(s)).length);
    expect(s.t.Outputs.DashboardName.Value).toEqual(ref(s.idOf(stack().observability.dashboard)));
  });
});

describe('tracing', () => {
  it('X-Ray is active on every ackd function, and on the audit export\'s REST API stage (HTTP APIs have no X-Ray)', () => {
    for (const [name, id] of Object.entries(fnIds())) {
      expect(((s.t.Resources as Json)[id] as Json).Properties.TracingConfig, name).toEqual({ Mode: 'Active' });
    }
    const [[, restStage]] = s.of('AWS::ApiGateway::Stage') as [[string, Json]];
    expect(restStage.Properties.TracingEnabled).toBe(true);
  });
});

describe('the sweeper\'s dead-letter queue', () => {
  it('is encrypted, TLS only, kept 14 days, and is the dead-letter queue of the sweep schedule\'s target (EventBridge may write to it, from that rule only)', () => {
    const q = ((s.t.Resources as Json)[dlqId()] as Json).Properties;
    expect(q.SqsManagedSseEnabled).toBe(true);
    expect(q.MessageRetentionPeriod).toBe(14 * 24 * 3600);
    const rule = (s.t.Resources as Json)[s.idOf(stack().api.sweepSchedule)] as Json;
    const [target] = rule.Properties.Targets as Json[];
    expect(target!.Arn).toEqual(getAtt(fnIds().sweeper, 'Arn'));
    expect(target!.DeadLetterConfig).toEqual({ Arn: getAtt(dlqId(), 'Arn') });
    expect(target!.RetryPolicy).toEqual({ MaximumRetryAttempts: 2 });
    // The sweeper function's own asynchronous invocations (EventBridge invokes asynchronously) fail into it too.
    expect(((s.t.Resources as Json)[fnIds().sweeper] as Json).Properties.DeadLetterConfig).toEqual({ TargetArn: getAtt(dlqId(), 'Arn') });
    const [, policy] = s.of('AWS::SQS::QueuePolicy').find(([, p]) => JSON.stringify(p.Properties.Queues) === JSON.stringify([ref(dlqId())]))!;
    const st = policy.Properties.PolicyDocument.Statement as Json[];
    expect(st).toContainEqual(expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }));
    const events = st.find((x) => x.Effect === 'Allow')!;
    expect(events.Principal).toEqual({ Service: 'events.amazonaws.com' });
    expect(events.Action).toBe('sqs:SendMessage');
    expect(events.Condition).toEqual({ ArnEquals: { 'aws:SourceArn': getAtt(s.idOf(stack().api.sweepSchedule), 'Arn') } });
  });
});

describe('the audit sequencer trigger: table stream → sweeper', () => {
  it('the table streams new images', () => {
    const [[, table]] = s.of('AWS::DynamoDB::GlobalTable') as [[string, Json]];
    expect(table.Properties.StreamSpecification).toEqual({ StreamViewType: 'NEW_IMAGE' });
  });

  it('one event source mapping: LATEST, batches of 100, the configured window, parallelization 1, 2 retries, failures to the DLQ, only outbox items', () => {
    const maps = s.of('AWS::Lambda::EventSourceMapping');
    expect(maps).toHaveLength(1);
    const [, m] = maps[0]!;
    expect(m.Properties).toEqual({
      FunctionName: ref(fnIds().sweeper),
      EventSourceArn: getAtt(s.idOf(stack().data.table), 'StreamArn'),
      StartingPosition: 'LATEST',
      BatchSize: 100,
      MaximumBatchingWindowInSeconds: DEFAULT_SEQUENCER_BATCH_WINDOW_SECONDS,
      ParallelizationFactor: 1,
      MaximumRetryAttempts: 2,
      DestinationConfig: { OnFailure: { Destination: getAtt(dlqId(), 'Arn') } },
      FilterCriteria: { Filters: [{ Pattern: '{"dynamodb":{"NewImage":{"log_part":{"S":["outbox"]}}}}' }] },
    });
    expect(DEFAULT_SEQUENCER_BATCH_WINDOW_SECONDS).toBe(1);
    // The sweeper keeps its concurrency of 1 and its schedule (the other rule is the daily audit archive's).
    expect(((s.t.Resources as Json)[fnIds().sweeper] as Json).Properties.ReservedConcurrentExecutions).toBe(1);
    const sweeperRules = s.of('AWS::Events::Rule').filter(([, r]) => JSON.stringify(r.Properties.Targets).includes(fnIds().sweeper));
    expect(sweeperRules.map(([id]) => id)).toEqual([s.idOf(stack().api.sweepSchedule)]);
    expect(s.of('AWS::Events::Rule').map(([id]) => id).sort()).toEqual([s.idOf(stack().api.sweepSchedule), s.idOf(stack().archive.schedule)].sort());
  });

  it('the sweeper may read this table\'s stream and send to its DLQ; no other function may; the mapping waits for the grants', () => {
    const roleOf = (fnId: string) => ((s.t.Resources as Json)[fnId] as Json).Properties.Role['Fn::GetAtt'][0] as string;
    const statementsOf = (roleId: string) =>
      s
        .of('AWS::IAM::Policy')
        .filter(([, p]) => (p.Properties.Roles as Json[]).some((r) => r.Ref === roleId))
        .flatMap(([id, p]) => (p.Properties.PolicyDocument.Statement as Json[]).map((st) => ({ policy: id, st })));
    const streamArn = getAtt(s.idOf(stack().data.table), 'StreamArn');
    const sweeper = statementsOf(roleOf(fnIds().sweeper));
    const read = sweeper.find(({ st }) => asList(st.Action).includes('dynamodb:GetRecords'))!.st;
    expect(asList(read.Action).sort()).toEqual(['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator']);
    expect(read.Resource).toEqual(streamArn);
    const list = sweeper.find(({ st }) => asList(st.Action).includes('dynamodb:ListStreams'))!;
    expect(asList(list.st.Action)).toEqual(['dynamodb:ListStreams']);
    const send = sweeper.find(({ st }) => asList(st.Action).includes('sqs:SendMessage'))!.st;
    expect(send.Resource).toEqual(getAtt(dlqId(), 'Arn'));
    for (const [name, id] of Object.entries(fnIds())) {
      if (name === 'sweeper') continue;
      const statements = statementsOf(roleOf(id)).map(({ st }) => st);
      const actions = statements.flatMap((st) => asList(st.Action) as string[]);
      expect(actions.filter((a) => /Stream|GetRecords|GetShardIterator/.test(a)), name).toEqual([]);
      // (the archive sends to its own dead-letter queue, never to the sweeper's)
      const sqsTargets = statements.filter((st) => (asList(st.Action) as string[]).some((a) => a.startsWith('sqs:'))).map((st) => st.Resource);
      expect(sqsTargets, name).toEqual(name === 'archive' ? [getAtt(s.idOf(stack().archive.deadLetterQueue), 'Arn')] : []);
    }
    const [, m] = s.of('AWS::Lambda::EventSourceMapping')[0]!;
    expect(asList(m.DependsOn)).toContain(list.policy);
  });
});

describe('cdk-nag', () => {
  it('AWS Solutions: zero unacknowledged findings with all of the above', () => {
    const report = new AwsSolutionsChecks(s.app).validateScope(s.app);
    expect(report.violations.map((v) => `${v.ruleName} @ ${v.violatingResources.map((r) => r.constructPath).join(', ')}`)).toEqual([]);
    expect(() => s.app.synth()).not.toThrow();
  });
});

describe('configured', () => {
  it('takes the batch window and the lag threshold from the settings; without alarmEmails the topic has no subscriber and the synth warns', () => {
    const c = synth({ 'ackd:sequencerBatchWindowSeconds': '0', 'ackd:sequencerLagAlarmMs': 300000 });
    const [, m] = c.of('AWS::Lambda::EventSourceMapping')[0]!;
    expect(m.Properties.MaximumBatchingWindowInSeconds).toBe(0);
    expect(alarmsOf(c).AuditSequencerLag!.Threshold).toBe(300_000);
    expect(c.of('AWS::SNS::Subscription')).toEqual([]);
    const warnings = Annotations.fromStack(c.stack).findWarning('*', Match.stringLikeRegexp('No alarmEmails'));
    expect(warnings).toHaveLength(1);
    expect(JSON.stringify(warnings[0]!.entry.data)).toContain('ACKD_DEPLOY_ALARM_EMAILS');
    // With alarmEmails there is no such warning.
    expect(Annotations.fromStack(s.stack).findWarning('*', Match.stringLikeRegexp('No alarmEmails'))).toEqual([]);

    const fromEnv = loadDeployConfig({
      context: (k) => ({ ...BASE, 'ackd:stage': 'dev' })[k],
      env: { ACKD_DEPLOY_ALARM_EMAILS: 'a@acme-corp.io,b@acme-corp.io', ACKD_DEPLOY_SEQUENCER_BATCH_WINDOW_SECONDS: '10', ACKD_DEPLOY_SEQUENCER_LAG_ALARM_MS: '10000' },
    });
    expect(fromEnv).toMatchObject({ alarmEmails: ['a@acme-corp.io', 'b@acme-corp.io'], sequencerBatchWindowSeconds: 10, sequencerLagAlarmMs: 10_000 });
    // From cdk.json, alarmEmails may be a list.
    expect(loadDeployConfig({ context: (k) => ({ ...BASE, 'ackd:alarmEmails': ['x@acme-corp.io'] })[k], env: {} }).alarmEmails).toEqual(['x@acme-corp.io']);
  });

  it('refuses bad alarmEmails, sequencerBatchWindowSeconds and sequencerLagAlarmMs, naming the setting and its variable, before building anything', () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ 'ackd:alarmEmails': 'oncall' }, 'alarmEmails', /invalid email address "oncall"/],
      [{ 'ackd:alarmEmails': 'ok@acme-corp.io, <script>@x' }, 'alarmEmails', /invalid email address/],
      [{ 'ackd:alarmEmails': ' , ' }, 'alarmEmails', /at least one email address/],
      [{ 'ackd:alarmEmails': [] }, 'alarmEmails', /at least one email address/],
      [{ 'ackd:alarmEmails': 42 }, 'alarmEmails', /comma-separated list/],
      [{ 'ackd:sequencerBatchWindowSeconds': '11' }, 'sequencerBatchWindowSeconds', /integer from 0 to 10/],
      [{ 'ackd:sequencerBatchWindowSeconds': '-1' }, 'sequencerBatchWindowSeconds', /integer from 0 to 10/],
      [{ 'ackd:sequencerBatchWindowSeconds': '0.5' }, 'sequencerBatchWindowSeconds', /integer from 0 to 10/],
      [{ 'ackd:sequencerBatchWindowSeconds': 'soon' }, 'sequencerBatchWindowSeconds', /integer from 0 to 10/],
      [{ 'ackd:sequencerLagAlarmMs': '9999' }, 'sequencerLagAlarmMs', /integer from 10000 to 86400000/],
      [{ 'ackd:sequencerLagAlarmMs': '2m' }, 'sequencerLagAlarmMs', /integer from 10000 to 86400000/],
    ];
    const envOf = { alarmEmails: 'ACKD_DEPLOY_ALARM_EMAILS', sequencerBatchWindowSeconds: 'ACKD_DEPLOY_SEQUENCER_BATCH_WINDOW_SECONDS', sequencerLagAlarmMs: 'ACKD_DEPLOY_SEQUENCER_LAG_ALARM_MS' } as Record<string, string>;
    for (const [context, setting, rule] of cases) {
      const app = new App({ context: { ...cdkJson.context, 'aws:cdk:bundling-stacks': [], ...BASE, ...context } });
      let err: unknown;
      try {
        buildApp(app);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(context)).toBeInstanceOf(DeployConfigError);
      const message = (err as Error).message;
      expect(message).toContain(`ackd deploy config: ${setting} `);
      expect(message).toContain(envOf[setting]);
      expect(message).toMatch(rule);
      expect(app.node.findAll().some((c) => c.node.id.startsWith('Ackd-')), 'nothing built').toBe(false);
    }
  });
});
