import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { TABLE } from '../../lambdas/adapters/dynamodb/schema.ts';
import { ARCHIVE_PREFIX } from '../../lambdas/core/archive.ts';
import { acknowledge, MANAGED_POLICY } from '../nag.ts';
import { REPO_ROOT } from '../paths.ts';
import { BUNDLING, LAMBDA_RUNTIME } from './api.ts';

/** The daily archive runs at 00:15 UTC: the sweeper (every 5 minutes) has signed a checkpoint after the day's last event by then. */
export const ARCHIVE_SCHEDULE = { minute: '15', hour: '0' } as const;
export const ARCHIVE_HANDLER = 'lambdas/handlers/audit-archive.ts';

export interface ArchiveProps {
  readonly table: dynamodb.ITableV2;
  readonly logRetention: logs.RetentionDays;
  /** Years every archived object is locked for (S3 Object Lock, compliance mode). */
  readonly retentionYears: number;
  /** Environment the function shares with the others (lambdas/config.ts). */
  readonly environment: Record<string, string>;
}

/**
 * Evidence that outlives the table (issue 15): DynamoDB TTL deletes events after retentionDays
 * and PITR reaches back 35 days, so every day the previous UTC day of the audit chain is exported
 * (JSONL: events and the checkpoints that anchor them, what `ackd audit verify` reads) to
 * `audit/YYYY/MM/DD.jsonl` in a bucket with S3 Object Lock in COMPLIANCE mode: for
 * `retentionYears` no one — not an administrator, not the account root — can delete or
 * overwrite an archived version, and the bucket cannot be deleted while any is locked.
 *
 * The bucket is versioned (Object Lock requires it), encrypted (SSE-S3), SSL-only, blocks every
 * form of public access, and logs every access to its own log bucket. The function may read the
 * audit log (the same reads as the audit export) and put objects under audit/ only: it cannot
 * read, delete or re-lock anything.
 */
export class Archive extends Construct {
  readonly bucket: s3.Bucket;
  readonly logBucket: s3.Bucket;
  readonly fn: NodejsFunction;
  readonly schedule: events.Rule;
  /**
   * Where a day's archive run that failed for good lands: a run that failed on every asynchronous
   * attempt (the function's dead-letter queue) or that EventBridge could not deliver (the schedule
   * target's). Its depth alarms (constructs/observability.ts): a day not archived is evidence missing.
   */
  readonly deadLetterQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: ArchiveProps) {
    super(scope, id);
    const retentionDays = props.retentionYears * 365;

    this.logBucket = new s3.Bucket(this, 'AccessLogBucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      // Who read the evidence is evidence too: kept as long as the archive.
      lifecycleRules: [{ expiration: Duration.days(retentionDays), noncurrentVersionExpiration: Duration.days(1) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    acknowledge(
      this.logBucket,
      'This is the access-log bucket of the audit archive; logging its own accesses would need a third bucket, and so on. Access to it is recorded by CloudTrail management events.',
      'AwsSolutions-S1',
    );

    this.bucket = new s3.Bucket(this, 'Bucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      objectLockEnabled: true,
      objectLockDefaultRetention: s3.ObjectLockRetention.compliance(Duration.days(retentionDays)),
      serverAccessLogsBucket: this.logBucket,
      serverAccessLogsPrefix: 's3/archive/',
      // Locked objects cannot be deleted anyway; the bucket outlives the stack.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // As the sweeper's: SQS-managed encryption (EventBridge and Lambda write without a key policy), TLS only, 14 days.
    this.deadLetterQueue = new sqs.Queue(this, 'Dlq', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(
      this.deadLetterQueue,
      'This queue is itself the dead-letter queue of the archive function (its asynchronous invocations and its EventBridge schedule target); nothing consumes it automatically, an operator reads it when its depth alarm fires and re-runs the day ({"day": ...}, docs/operations.md).',
      'AwsSolutions-SQS3',
    );

    const logGroup = new logs.LogGroup(this, 'FnLogs', { retention: props.logRetention, removalPolicy: RemovalPolicy.DESTROY });
    this.fn = new NodejsFunction(this, 'Fn', {
      entry: `${REPO_ROOT}/${ARCHIVE_HANDLER}`,
      handler: 'handler',
      description: 'ackd audit archive (the previous UTC day of the audit chain to S3 Object Lock, daily)',
      runtime: LAMBDA_RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      // The day is buffered before its one PutObject.
      memorySize: 1024,
      timeout: Duration.minutes(10),
      projectRoot: REPO_ROOT,
      depsLockFilePath: `${REPO_ROOT}/package-lock.json`,
      bundling: BUNDLING,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      // One day at a time: a retried run never races the scheduled one.
      reservedConcurrentExecutions: 1,
      // As every ackd function: active X-Ray tracing (each run is a trace; the handler adds no subsegments yet).
      tracing: lambda.Tracing.ACTIVE,
      deadLetterQueue: this.deadLetterQueue,
      environment: { ...props.environment, ACKD_ARCHIVE_BUCKET: this.bucket.bucketName },
    });
    acknowledge(
      this.fn,
      'AWSLambdaBasicExecutionRole is the AWS-maintained minimal policy to write logs; every data permission of this function is an inline statement naming its exact actions and resources.',
      MANAGED_POLICY.lambdaBasic,
    );
    acknowledge(
      this.fn,
      'Active X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permission (Resource * only) and only write trace data.',
      'AwsSolutions-IAM5[Resource::*]',
    );

    // Exactly what AuditService.export reads (as the audit export function): the chain head and
    // events by seq (GetItem, BatchGetItem), events by time and checkpoints (Query on audit-log).
    const tableArn = props.table.tableArn;
    this.fn.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'ReadAuditLog', actions: ['dynamodb:GetItem', 'dynamodb:BatchGetItem'], resources: [tableArn] }),
    );
    this.fn.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'QueryAuditLog', actions: ['dynamodb:Query'], resources: [`${tableArn}/index/${TABLE.auditLog.name}`] }),
    );
    // Write-only, under audit/ only. No GetObject, DeleteObject, PutObjectRetention or ACL action.
    this.fn.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'WriteArchive', actions: ['s3:PutObject'], resources: [this.bucket.arnForObjects(`${ARCHIVE_PREFIX}*`)] }),
    );
    acknowledge(
      this.fn,
      'The function writes one object per day under the audit/ prefix of the archive bucket (audit/YYYY/MM/DD.jsonl): the key is not known in advance, so the resource is the prefix; s3:PutObject is the only action, and Object Lock (compliance mode) makes every written version immutable.',
      `AwsSolutions-IAM5[Resource::<${logicalIdHint(this.bucket)}.Arn>/${ARCHIVE_PREFIX}*]`,
    );

    this.schedule = new events.Rule(this, 'Schedule', {
      description: 'ackd: archive the previous UTC day of the audit chain (S3 Object Lock)',
      schedule: events.Schedule.cron({ ...ARCHIVE_SCHEDULE }),
      targets: [new targets.LambdaFunction(this.fn, { retryAttempts: 2, maxEventAge: Duration.hours(6), deadLetterQueue: this.deadLetterQueue })],
    });
  }
}

/** cdk-nag names a bucket's ARN by its logical id: `<LogicalId.Arn>`. */
function logicalIdHint(bucket: s3.Bucket): string {
  const stack = bucket.stack;
  return stack.resolve(stack.getLogicalId(bucket.node.defaultChild as s3.CfnBucket)) as string;
}
