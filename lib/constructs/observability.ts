import { Annotations, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE, STAGE_DIMENSION, type MetricName } from '../../lambdas/adapters/metric-names.ts';
import { tableIndexes } from './data.ts';

/** Where an operator reads what an alarm means and what to do about it. */
export const RUNBOOK = 'docs/operations.md ("Alarms, metrics and tracing")';

/** The error code the MCP function logs (field `code`) when the SVID issuer cannot be reached. */
export const ISSUER_UNAVAILABLE_CODE = 'ERR_ISSUER_UNAVAILABLE';

/** The functions watched, by the name alarms and widgets use. */
export interface WatchedFunctions {
  readonly mcp: lambda.IFunction;
  readonly consent: lambda.IFunction;
  readonly sweeper: lambda.IFunction;
  readonly auditExport: lambda.IFunction;
  /** The daily audit archive (constructs/archive.ts). */
  readonly archive: lambda.IFunction;
  /** The AWS credential broker (only with awsRoles: constructs/api.ts). */
  readonly awsCredentials?: lambda.IFunction;
}

export interface ObservabilityProps {
  readonly stage: string;
  /** Email subscriptions of the alarm topic (each confirms by mail); none: the topic has no subscriber yet. */
  readonly alarmEmails: readonly string[];
  readonly functions: WatchedFunctions;
  /** The MCP function's log group: where ERR_ISSUER_UNAVAILABLE is logged. */
  readonly mcpLogGroup: logs.ILogGroup;
  /** The AWS credentials function's log group (with awsRoles): it logs ERR_ISSUER_UNAVAILABLE too, when it cannot read SPIRE's trust bundle. */
  readonly awsCredentialsLogGroup?: logs.ILogGroup;
  readonly tableName: string;
  /** The sweeper's dead-letter queue (failed scheduled sweeps and failed sequencer batches). */
  readonly sweeperDeadLetterQueue: sqs.IQueue;
  /** The audit archive's dead-letter queue (daily runs that failed for good: constructs/archive.ts). */
  readonly archiveDeadLetterQueue: sqs.IQueue;
  /** The SPIRE server's ECS service (Container Insights publishes its task counts). */
  readonly spireService: ecs.IBaseService;
  /** How often the sweeper is scheduled. */
  readonly sweepEvery: Duration;
  /** AuditSequencerLagMs above this alarms (milliseconds). */
  readonly sequencerLagAlarmMs: number;
  /** The NAT instances (setting natProvider instance); none with NAT gateways, which AWS keeps running. */
  readonly natInstances?: readonly { readonly instanceId: string }[];
}

const FIVE_MINUTES = Duration.minutes(5);
const ONE_MINUTE = Duration.minutes(1);

/** Display names of the watched functions. */
const FUNCTION_LABELS: Record<keyof WatchedFunctions, string> = {
  mcp: 'MCP',
  consent: 'Consent API',
  sweeper: 'Sweeper',
  auditExport: 'Audit export',
  archive: 'Audit archive',
  awsCredentials: 'AWS credentials',
};
/** Alarm id prefixes of the watched functions. */
const FUNCTION_IDS: Record<keyof WatchedFunctions, string> = { mcp: 'Mcp', consent: 'Consent', sweeper: 'Sweeper', auditExport: 'AuditExport', archive: 'AuditArchive', awsCredentials: 'AwsCredentials' };

/**
 * What watches ackd on AWS (issue 15): an SNS topic for alarms (KMS-encrypted, TLS only, email
 * subscriptions from the deploy setting alarmEmails), the CloudWatch alarms an operator must act
 * on, each with a description of what it means and what to do (every state change, ALARM and OK,
 * goes to the topic), and one dashboard. The functions publish their metrics as EMF in the
 * namespace `ackd` with the dimension `stage` (lambdas/adapters/powertools.ts); "issuer
 * unavailable" is a metric filter on the MCP function's structured logs.
 */
export class Observability extends Construct {
  readonly topic: sns.Topic;
  readonly topicKey: kms.Key;
  readonly dashboard: cw.Dashboard;
  /** Every alarm, by id (e.g. `IssuerUnavailable`, `McpErrors`). */
  readonly alarms: Readonly<Record<string, cw.Alarm>>;

  private readonly stage: string;
  private readonly alarmsById: Record<string, cw.Alarm> = {};

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    this.stage = props.stage;
    this.alarms = this.alarmsById;
    const fns = props.functions;

    // --- the topic: CloudWatch publishes to it, so its key must let CloudWatch encrypt ---
    this.topicKey = new kms.Key(this, 'AlarmTopicKey', {
      description: `ackd ${props.stage}: encrypts the alarm topic`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.DESTROY,
      pendingWindow: Duration.days(7),
    });
    this.topicKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsPublishToTheEncryptedTopic',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
      }),
    );
    this.topic = new sns.Topic(this, 'AlarmTopic', {
      displayName: `ackd ${props.stage} alarms`,
      masterKey: this.topicKey,
      enforceSSL: true,
    });
    for (const email of props.alarmEmails) this.topic.addSubscription(new subscriptions.EmailSubscription(email));
    if (props.alarmEmails.length === 0) {
      Annotations.of(this).addWarningV2(
        'ackd:noAlarmEmails',
        'No alarmEmails: the alarm topic has no subscriber, so nobody hears of an alarm. Set alarmEmails (ACKD_DEPLOY_ALARM_EMAILS) or subscribe to the AlarmTopicArn output.',
      );
    }

    // --- issuer unavailable: a metric filter on the JSON log lines of the functions that reach SPIRE ---
    const issuerLogs: [string, logs.ILogGroup][] = [['IssuerUnavailableFilter', props.mcpLogGroup], ...(props.awsCredentialsLogGroup ? [['AwsCredentialsIssuerUnavailableFilter', props.awsCredentialsLogGroup] as [string, logs.ILogGroup]] : [])];
    for (const [id, logGroup] of issuerLogs) {
      new logs.MetricFilter(this, id, {
        logGroup,
        filterPattern: logs.FilterPattern.stringValue('$.code', '=', ISSUER_UNAVAILABLE_CODE),
        metricNamespace: METRICS_NAMESPACE,
        metricName: 'IssuerUnavailable' satisfies MetricName,
        metricValue: '1',
        // Every ackd log line carries the stage; it makes the metric the same one the alarm names.
        dimensions: { [STAGE_DIMENSION]: `$.${STAGE_DIMENSION}` },
      });
    }
    this.alarm('IssuerUnavailable', this.ackd('IssuerUnavailable', 'Sum'), {
      threshold: 1,
      description:
        'Agents are being refused SVIDs (or AWS credentials): the MCP function (or the AWS credentials function) could not reach the SVID issuer (SPIRE through its bridge) and answered ERR_ISSUER_UNAVAILABLE (nothing was issued; agents may retry). ' +
        'Check the SpireTaskNotRunning alarm and the SPIRE service in ECS (task health, its logs), and those functions\' log lines with code ERR_ISSUER_UNAVAILABLE for the cause.',
    });

    // --- consent email and notification failures (email_failed / notify_failed audit events) ---
    this.alarm('NotificationFailures', this.ackd('NotificationFailures', 'Sum'), {
      threshold: 1,
      description:
        'A consent email or another notification channel failed (audit events email_failed / notify_failed): approvers may not know a request awaits them. The sweeper re-sends, and the request still expires on time. ' +
        'Check SES (sandbox, suppression list, sending quota, the sender identity) and the routes\' webhooks; the events name the failed channel.',
    });

    // --- the audit log: chain verification, sequencer lag, the sweeper and its dead letters ---
    this.alarm('AuditVerifyFailures', this.ackd('AuditVerifyFailures', 'Sum'), {
      threshold: 1,
      description:
        'The audit chain did not verify when the sweeper tried to sign a checkpoint, so no checkpoint was signed. Treat it as possible tampering: do not delete anything; run `npx ackd audit verify --live` against the table and read the sweeper\'s error log line, which names the first event that fails.',
    });
    this.alarm('AuditEntriesRefused', this.ackd('AuditEntriesRefused', 'Sum'), {
      threshold: 1,
      description:
        'The audit sequencer refused an outbox entry (its seal missing or wrong, copied from another item, or a replay of a logged event): someone wrote the table outside ackd, or entries from before sealing were waiting after an upgrade. Nothing refused is in the log; genuine events keep flowing. ' +
        'Treat it as possible tampering and delete nothing: the sweeper\'s log line (code ERR_AUDIT_ENTRY_REFUSED) names the event, item and reason, npx ackd audit quarantine lists the kept entries, and CloudTrail shows who wrote the table (docs/operations.md).',
    });
    this.alarm('AuditSequencerLag', this.ackd('AuditSequencerLagMs', 'Maximum'), {
      threshold: props.sequencerLagAlarmMs,
      comparison: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      description:
        `Audit events are waiting more than ${props.sequencerLagAlarmMs} ms (setting sequencerLagAlarmMs) to enter the chain and its checkpoints, and approvals wait with them (no SVID is handed out before its approval is in the chain). ` +
        'Check the sweeper: its errors and throttles, the SweeperDeadLetters alarm, and that the table stream\'s trigger (AuditSequencerTrigger) is enabled. No data (no events) is not an alarm.',
    });
    // Checkpoints are signed only when there are new events (none at idle), so "too long without a
    // checkpoint" means: events entered the chain in the last hour and not one checkpoint was signed.
    const ONE_HOUR = Duration.hours(1);
    this.alarm(
      'AuditCheckpointsMissing',
      new cw.MathExpression({
        expression: 'IF(sequenced > 0 AND FILL(signed, 0) == 0, 1, 0)',
        usingMetrics: { sequenced: this.ackd('AuditEventsSequenced', 'Sum').with({ period: ONE_HOUR }), signed: this.ackd('AuditCheckpointsSigned', 'Sum').with({ period: ONE_HOUR }) },
        label: 'events sequenced, no checkpoint signed (1 = true)',
        period: ONE_HOUR,
      }),
      {
        threshold: 1,
        description:
          'Audit events entered the chain in the last hour but no checkpoint was signed: the newest evidence is not anchored by a signature, and exports of that hour end in an unsigned tail. ' +
          'Read the sweeper\'s log for "audit tree head not signed" (KMS access to the audit key, the key disabled or pending deletion, ACKD_AUDIT_KEY missing) and check AuditVerifyFailures; once signing works, the next sweep signs a checkpoint over everything since.',
      },
    );
    const notRunningPeriod = Duration.minutes(Math.max(15, props.sweepEvery.toMinutes() * 3));
    this.alarm('SweeperNotRunning', fns.sweeper.metricInvocations({ statistic: 'Sum', period: notRunningPeriod }), {
      threshold: 1,
      comparison: cw.ComparisonOperator.LESS_THAN_THRESHOLD,
      treatMissingData: cw.TreatMissingData.BREACHING,
      description:
        `The sweeper has not run for ${notRunningPeriod.toMinutes()} minutes (it is scheduled every ${props.sweepEvery.toMinutes()}): nothing records expiries, re-sends failed mail or signs audit checkpoints. ` +
        'Check that its EventBridge rule (SweepSchedule) is enabled and that the function is not failing at start (its log group).',
    });
    this.alarm('SweeperDeadLetters', props.sweeperDeadLetterQueue.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: FIVE_MINUTES }), {
      threshold: 1,
      description:
        'A sweep or an audit sequencer batch failed for good and was parked in the sweeper dead-letter queue (EventBridge after its retries, or the stream trigger after 3 attempts). Events of a failed batch stay in the outbox and the next scheduled sweep sequences them. ' +
        'Read the messages (they name the failed invocation or the stream records), fix the cause from the sweeper\'s error log, then purge the queue.',
    });

    this.alarm('ArchiveDeadLetters', props.archiveDeadLetterQueue.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: FIVE_MINUTES }), {
      threshold: 1,
      description:
        'A daily audit archive run failed for good (every asynchronous attempt, or EventBridge could not deliver it) and was parked in the archive dead-letter queue: that UTC day is not in the Object Lock archive yet, and the table deletes its events after retentionDays. ' +
        'Read the message (it names the run), fix the cause from the archive function\'s error log, invoke the function with {"day": "YYYY-MM-DD"} for the missing day, then purge the queue.',
    });

    // --- every function: errors; throttles of those that serve people ---
    for (const key of Object.keys(fns) as (keyof WatchedFunctions)[]) {
      const f = fns[key];
      if (!f) continue;
      const label = FUNCTION_LABELS[key];
      this.alarm(`${FUNCTION_IDS[key]}Errors`, f.metricErrors({ statistic: 'Sum', period: FIVE_MINUTES }), {
        threshold: 1,
        description:
          `The ${label} function failed (an unhandled error, a timeout or a crash at start; answers the code handles, such as ERR_* tool errors, are not counted). ` +
          'Read the function\'s log group for the ERROR lines and the X-Ray traces of the failed invocations.',
      });
      // The sweeper is throttled by design: its concurrency is 1 and its schedule and stream trigger
      // both invoke it; both retry, and what matters (lag, dead letters) alarms above. The archive
      // runs once a day, asynchronously with retries: a run that fails for good alarms as a dead letter.
      if (key === 'sweeper' || key === 'archive') continue;
      this.alarm(`${FUNCTION_IDS[key]}Throttles`, f.metricThrottles({ statistic: 'Sum', period: FIVE_MINUTES }), {
        threshold: 1,
        description:
          `The ${label} function was throttled: it reached its reserved concurrency (setting reservedConcurrency) and turned invocations away. ` +
          'If the load is legitimate, raise reservedConcurrency; if one agent floods, lower its flood limits (setting limits) or revoke its API key.',
      });
    }

    // --- DynamoDB: any throttled read or write, on the table or an index ---
    const tableDims = { TableName: props.tableName };
    const ddbThrottles: Record<string, cw.IMetric> = {};
    const throttleMetric = (metricName: string, dims: Record<string, string>) =>
      new cw.Metric({ namespace: 'AWS/DynamoDB', metricName, dimensionsMap: dims, statistic: 'Sum', period: FIVE_MINUTES });
    ddbThrottles.readTable = throttleMetric('ReadThrottleEvents', tableDims);
    ddbThrottles.writeTable = throttleMetric('WriteThrottleEvents', tableDims);
    tableIndexes().forEach((ix, i) => {
      const dims = { ...tableDims, GlobalSecondaryIndexName: ix.name };
      ddbThrottles[`readIndex${i}`] = throttleMetric('ReadThrottleEvents', dims);
      ddbThrottles[`writeIndex${i}`] = throttleMetric('WriteThrottleEvents', dims);
    });
    const ddbThrottleSum = new cw.MathExpression({
      expression: `SUM([${Object.keys(ddbThrottles).join(', ')}])`,
      usingMetrics: ddbThrottles,
      label: 'DynamoDB throttle events (table and indexes)',
      period: FIVE_MINUTES,
    });
    this.alarm('DynamoDbThrottles', ddbThrottleSum, {
      threshold: 1,
      description:
        'DynamoDB throttled reads or writes of the ackd table or one of its indexes (on-demand tables throttle above their account or partition limits, or on a hot key). Requests and decisions may fail with ERR_STORE_UNAVAILABLE. ' +
        'Check the table\'s metrics for the operation and index, the account\'s DynamoDB quotas, and whether one agent floods.',
    });

    // --- SPIRE: fewer running tasks than desired (ECS replaces a task whose health check fails) ---
    const spireDims = { ClusterName: props.spireService.cluster.clusterName, ServiceName: props.spireService.serviceName };
    const spireMetric = (metricName: string, statistic: string) =>
      new cw.Metric({ namespace: 'ECS/ContainerInsights', metricName, dimensionsMap: spireDims, statistic, period: ONE_MINUTE });
    const spireRunning = spireMetric('RunningTaskCount', 'Minimum');
    const spireDesired = spireMetric('DesiredTaskCount', 'Maximum');
    const spireMissing = new cw.MathExpression({
      expression: 'desired - running',
      usingMetrics: { desired: spireDesired, running: spireRunning },
      label: 'SPIRE tasks missing (desired − running)',
      period: ONE_MINUTE,
    });
    this.alarm('SpireTaskNotRunning', spireMissing, {
      threshold: 0,
      comparison: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      // Container Insights reports the service every minute: silence means something is wrong.
      treatMissingData: cw.TreatMissingData.BREACHING,
      description:
        'A SPIRE server task is not running (or keeps failing its health check and being replaced) in 3 of the last 5 minutes: with one server no SVID can be minted and agents get ERR_ISSUER_UNAVAILABLE; with two (spireServers 2) the other keeps issuing alone. ' +
        'Open the SPIRE service in ECS: its events and stopped tasks say why (health check of spire-server or the bridge, image pull, EFS mount or database connection, KMS); the task\'s log group has the server\'s own log. Right after the first deploy, it may alarm once until Container Insights reports.',
    });

    // --- NAT instances (natProvider instance): a failed status check means no egress from that AZ ---
    (props.natInstances ?? []).forEach((instance, i) => {
      this.alarm(`NatInstance${i + 1}StatusCheck`, new cw.Metric({ namespace: 'AWS/EC2', metricName: 'StatusCheckFailed', dimensionsMap: { InstanceId: instance.instanceId }, statistic: 'Maximum', period: FIVE_MINUTES }), {
        threshold: 1,
        evaluationPeriods: 2,
        // EC2 reports status checks of a running instance every period: silence means it is stopped or gone.
        treatMissingData: cw.TreatMissingData.BREACHING,
        description:
          `NAT instance ${i + 1} fails its EC2 status checks (or reports nothing): the private subnets routed through it have no egress, so SVID issuance (the SPIRE task's KMS calls), consent emails and webhooks fail in that AZ. ` +
          'EC2 recovers a t4g instance on a failed system check by itself; if it does not, reboot it, or redeploy (a newer AMI replaces it); for an outage-free egress use natProvider gateway (docs/operations.md, "NAT instances").',
      });
    });

    // --- the dashboard ---
    this.dashboard = new cw.Dashboard(this, 'Dashboard', {
      dashboardName: `ackd-${props.stage}`,
      defaultInterval: Duration.hours(24),
    });
    const graph = (title: string, left: cw.IMetric[], extra: Partial<cw.GraphWidgetProps> = {}) =>
      new cw.GraphWidget({ title, left, width: 8, height: 6, ...extra });
    const perFunction = (title: string, metric: (f: lambda.IFunction) => cw.Metric) =>
      graph(
        title,
        (Object.keys(fns) as (keyof WatchedFunctions)[]).flatMap((k) => {
          const f = fns[k];
          return f ? [metric(f).with({ label: FUNCTION_LABELS[k] })] : [];
        }),
      );
    const count = (name: MetricName, label: string) => this.ackd(name, 'Sum').with({ label });
    this.dashboard.addWidgets(
      new cw.TextWidget({
        markdown: `# ackd ${props.stage}\nWhat each alarm means and what to do: ${RUNBOOK}. Metrics: namespace \`${METRICS_NAMESPACE}\`, dimension \`${STAGE_DIMENSION}=${props.stage}\`.`,
        width: 24,
        height: 2,
      }),
    );
    this.dashboard.addWidgets(
      graph('Requests and decisions', [count('Requests', 'Requests'), count('Approvals', 'Approvals'), count('Denials', 'Denials'), count('Expiries', 'Expiries')]),
      graph('Time to decision', [
        this.ackd('TimeToDecisionMs', 'p50').with({ label: 'p50' }),
        this.ackd('TimeToDecisionMs', 'p90').with({ label: 'p90' }),
        this.ackd('TimeToDecisionMs', 'Maximum').with({ label: 'max' }),
      ]),
      graph('SVIDs minted and notification failures', [count('SvidsMinted', 'SVIDs minted'), count('NotificationFailures', 'Notification failures')]),
    );
    this.dashboard.addWidgets(
      graph('SVID issuance latency', [
        this.ackd('IssuanceLatencyMs', 'p50').with({ label: 'p50' }),
        this.ackd('IssuanceLatencyMs', 'p99').with({ label: 'p99' }),
        this.ackd('IssuanceLatencyMs', 'Maximum').with({ label: 'max' }),
      ]),
      graph('Issuer unavailable', [count('IssuerUnavailable', 'ERR_ISSUER_UNAVAILABLE logged')]),
      graph('SPIRE tasks', [spireRunning.with({ label: 'running (min)' }), spireDesired.with({ label: 'desired' })]),
    );
    this.dashboard.addWidgets(
      graph('Audit sequencer lag', [this.ackd('AuditSequencerLagMs', 'Maximum').with({ label: 'lag (max)' })], {
        leftAnnotations: [{ value: props.sequencerLagAlarmMs, label: 'alarm', color: cw.Color.RED }],
      }),
      graph('Audit sequencer', [
        count('AuditEventsSequenced', 'events sequenced'),
        count('AuditCheckpointsSigned', 'checkpoints signed'),
        count('AuditVerifyFailures', 'verify failures'),
        count('AuditEntriesRefused', 'entries refused'),
      ]),
      graph('Sweeper dead letters', [props.sweeperDeadLetterQueue.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: FIVE_MINUTES }).with({ label: 'messages' })]),
    );
    this.dashboard.addWidgets(
      perFunction('Lambda errors', (f) => f.metricErrors({ statistic: 'Sum', period: FIVE_MINUTES })),
      perFunction('Lambda throttles', (f) => f.metricThrottles({ statistic: 'Sum', period: FIVE_MINUTES })),
      perFunction('Lambda duration p99', (f) => f.metricDuration({ statistic: 'p99', period: FIVE_MINUTES })),
    );
    this.dashboard.addWidgets(
      graph('DynamoDB throttles', [ddbThrottleSum]),
      new cw.AlarmStatusWidget({ title: 'Alarms', alarms: Object.values(this.alarmsById), width: 16, height: 6 }),
    );
  }

  /** One of ackd's own metrics (namespace `ackd`, this stage). */
  private ackd(name: MetricName, statistic: string): cw.Metric {
    return new cw.Metric({ namespace: METRICS_NAMESPACE, metricName: name, dimensionsMap: { [STAGE_DIMENSION]: this.stage }, statistic, period: FIVE_MINUTES });
  }

  /** An alarm whose every state change (ALARM and back to OK) goes to the topic. Default: ≥ threshold in one period, no data = OK. */
  private alarm(
    id: string,
    metric: cw.IMetric,
    opts: {
      threshold: number;
      description: string;
      comparison?: cw.ComparisonOperator;
      evaluationPeriods?: number;
      datapointsToAlarm?: number;
      treatMissingData?: cw.TreatMissingData;
    },
  ): cw.Alarm {
    const alarm = new cw.Alarm(this, id, {
      alarmName: `ackd-${this.stage}-${id}`,
      alarmDescription: `${opts.description} See ${RUNBOOK}.`,
      metric,
      threshold: opts.threshold,
      comparisonOperator: opts.comparison ?? cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: opts.evaluationPeriods ?? 1,
      ...(opts.datapointsToAlarm !== undefined ? { datapointsToAlarm: opts.datapointsToAlarm } : {}),
      treatMissingData: opts.treatMissingData ?? cw.TreatMissingData.NOT_BREACHING,
    });
    const action = new cwActions.SnsAction(this.topic);
    alarm.addAlarmAction(action);
    alarm.addOkAction(action);
    this.alarmsById[id] = alarm;
    return alarm;
  }
}
