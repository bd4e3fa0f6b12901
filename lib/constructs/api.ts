import { Aws, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as apigwv1 from 'aws-cdk-lib/aws-apigateway';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import { LogLevel, NodejsFunction, OutputFormat, type BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { TABLE } from '../../lambdas/adapters/dynamodb/schema.ts';
import { AUDIT_PK } from '../../lambdas/adapters/dynamodb/audit.ts';
import { acknowledge, MANAGED_POLICY } from '../nag.ts';
import { SWEEPER_RESERVED_CONCURRENCY, type DeployRoutes, type ReservedConcurrencyConfig, type ThrottleConfig } from '../config.ts';
import { REPO_ROOT } from '../paths.ts';

/** The Lambda runtime of every ackd function. */
export const LAMBDA_RUNTIME = lambda.Runtime.NODEJS_24_X;

/** The path, on the MCP endpoint, where the SPIFFE trust bundle is served (lambdas/app.ts). */
export const TRUST_BUNDLE_PATH = '/.well-known/spiffe-bundle';

/** What the API access logs record, one JSON object per request. */
const ACCESS_LOG_FIELDS = {
  requestId: '$context.requestId',
  ip: '$context.identity.sourceIp',
  requestTime: '$context.requestTime',
  method: '$context.httpMethod',
  path: '$context.path',
  status: '$context.status',
  latency: '$context.responseLatency',
  integrationError: '$context.integrationErrorMessage',
};

/** Route keys of the HTTP API: everything not under /api (MCP, /healthz, trust bundle), and the consent API. */
export const MCP_ROUTE_KEY = '$default';
export const CONSENT_ROUTE_KEY = 'ANY /api/{proxy+}';
/** The AWS credential broker's route (POST /v1/aws/credentials), to its own function, when AWS roles are configured. */
export const AWS_CREDENTIALS_ROUTE_KEY = 'ANY /v1/aws/{proxy+}';

/**
 * The only stream records that trigger the audit sequencer: items written with audit events not
 * yet sequenced (`log_part` = "outbox"). Everything else on the stream is dropped by Lambda's
 * event filtering before the function runs (and is not billed).
 */
export const SEQUENCER_FILTER = { dynamodb: { NewImage: { log_part: { S: lambda.FilterRule.isEqual('outbox') } } } };

/** The paths the audit export function serves (lambdas/consent-api/app.ts, mounted at /api). */
export const AUDIT_EXPORT_PATH_PATTERN = '/api/audit/*';
/** The stage of the audit export REST API (CloudFront's origin path). */
export const AUDIT_EXPORT_STAGE = 'live';

/**
 * esbuild options of every ackd function: one ESM file (index.mjs) per function, a `require` shim
 * for the CommonJS dependencies, built with the local esbuild (no Docker). Tests build the same
 * way (test/infra/bundles.test.ts); scripts/bundle-size.ts measures the result against a floor.
 *  - target: the Node version of LAMBDA_RUNTIME (nothing down-levelled that Node 24 runs natively);
 *  - the AWS SDK v3 is external: every Lambda Node.js runtime since nodejs18.x provides it, so the
 *    zip does not carry a second copy (the runtime's copy is kept current by AWS);
 *  - no source map in the zip (it was larger than the code and slowed every cold start); stack
 *    traces name minified frames, and `esbuild --sourcemap` of the same commit maps them back.
 */
export const BUNDLING = {
  format: OutputFormat.ESM,
  target: `node${LAMBDA_RUNTIME.name.replace(/^nodejs(\d+)\.x$/, '$1')}`,
  mainFields: ['module', 'main'],
  banner: "import { createRequire as __ackdCreateRequire } from 'node:module'; const require = __ackdCreateRequire(import.meta.url);",
  minify: true,
  sourceMap: false,
  sourcesContent: false,
  externalModules: [],
  // Flags BundlingOptions has no field for: dead code dropped (esbuild's default when bundling,
  // spelled out), ESM entry points of packages that offer one, no license comments in the code
  // Lambda loads (the packages' licenses ship in node_modules, not in the function).
  esbuildArgs: { '--tree-shaking': 'true', '--conditions': 'module', '--legal-comments': 'none' },
  forceDockerBundling: false,
  logLevel: LogLevel.ERROR,
} satisfies BundlingOptions;

export interface HandlerSpec {
  /** Entry file relative to the repository root. */
  readonly entry: string;
  readonly description: string;
  readonly memorySize: number;
  readonly timeout: Duration;
}

export const HANDLERS = {
  mcp: {
    entry: 'lambdas/handlers/mcp.ts',
    description: 'ackd MCP server (request/check/revoke authorization) and trust bundle',
    memorySize: 1024,
    // API Gateway HTTP APIs time out at 30 s; long-polls (wait_seconds ≤ 25) end before that.
    timeout: Duration.seconds(29),
  },
  consentApi: {
    entry: 'lambdas/handlers/consent-api.ts',
    description: 'ackd consent API (approver reads and decides a request)',
    memorySize: 512,
    timeout: Duration.seconds(10),
  },
  sweeper: {
    entry: 'lambdas/handlers/sweeper.ts',
    description: 'ackd sweeper (links audit events, records expiry, retries consent mail, signs an audit checkpoint)',
    memorySize: 512,
    timeout: Duration.minutes(2),
  },
  awsCredentials: {
    entry: 'lambdas/handlers/aws-credentials.ts',
    description: 'ackd AWS credential broker (POST /v1/aws/credentials: SVID proof → STS AssumeRole)',
    memorySize: 512,
    // One proof check, a trust bundle read, a few DynamoDB writes and one STS call.
    timeout: Duration.seconds(10),
  },
  auditExport: {
    entry: 'lambdas/handlers/audit-export.ts',
    description: 'ackd audit export (approver downloads the audit log, streamed) and the checkpoint public key',
    // The export streams one page of events at a time: memory stays bounded whatever its size.
    memorySize: 512,
    // A streamed response may last up to 15 minutes (Lambda's and API Gateway's limit alike).
    timeout: Duration.minutes(15),
  },
} as const satisfies Record<string, HandlerSpec>;

export interface ApiProps {
  readonly vpc: ec2.IVpc;
  readonly table: dynamodb.ITableV2;
  readonly logRetention: logs.RetentionDays;
  /** Environment shared by every function (config of lambdas/config.ts). */
  readonly environment: Record<string, string>;
  /** Environment of the consent API only (Cognito verifier). */
  readonly consentEnvironment: Record<string, string>;
  readonly spire: { readonly bridgeUrl: string; readonly bridgeSecret: secretsmanager.ISecret };
  /** SES: the identity the sweeper sends consent mail from, and the From address it may use. */
  readonly ses: { readonly identityName: string; readonly fromAddress: string };
  readonly sweepEvery: Duration;
  /** ARN of the KMS key that signs audit checkpoints (constructs/audit.ts). */
  readonly auditKeyArn: string;
  /** Notification routes (webhooks, Slack, email) for the functions that notify; none: email to the approvers only. */
  readonly routes?: DeployRoutes;
  /** API Gateway throttles: the MCP routes (agents) and the consent API (approvers), each its own bucket. */
  readonly throttles: { readonly mcp: ThrottleConfig; readonly consent: ThrottleConfig };
  /** Reserved concurrency of the MCP, consent and audit export functions (the sweeper's is always 1). */
  readonly reservedConcurrency: ReservedConcurrencyConfig;
  /** How long the table stream's trigger of the audit sequencer (the sweeper) gathers records per batch (0-10 s). */
  readonly sequencerBatchWindow: Duration;
  /**
   * AWS roles are configured (deploy setting awsRoles): the AWS credential broker gets its own
   * function (awsCredentialsFunction) and the HTTP API routes /v1/aws/* to it. Its role map and
   * sts:AssumeRole come from constructs/aws-broker.ts.
   */
  readonly awsCredentials?: boolean;
}

/**
 * The HTTP side of ackd: the MCP function (in the VPC, to reach the SPIRE bridge), the consent API
 * function, the periodic sweeper, one HTTP API in front of the first two, and the audit export
 * function behind a REST API that streams its response. Every function gets only the table, SES
 * and KMS actions it uses, its own log group with retention, arm64, Node 22+.
 */
export class Api extends Construct {
  readonly httpApi: apigw.HttpApi;
  /** The HTTP API's $default stage (a custom domain maps to it: constructs/domain.ts). */
  readonly httpStage: apigw.HttpStage;
  readonly mcpFunction: NodejsFunction;
  readonly consentFunction: NodejsFunction;
  readonly sweeperFunction: NodejsFunction;
  readonly auditExportFunction: NodejsFunction;
  /** The AWS credential broker (POST /v1/aws/credentials), only when AWS roles are configured (props.awsCredentials). */
  readonly awsCredentialsFunction?: NodejsFunction;
  /** Its security group (HTTPS out, the bridge port to SPIRE), with the function. */
  readonly awsCredentialsSecurityGroup?: ec2.SecurityGroup;
  /**
   * The audit export's own API: a regional REST API whose Lambda integration streams the
   * response (HTTP APIs cannot stream). CloudFront routes /api/audit/* to it.
   */
  readonly auditExportApi: apigwv1.RestApi;
  /** <rest-api-id>.execute-api.<region>.<suffix> (the CloudFront origin of /api/audit/*, at /AUDIT_EXPORT_STAGE). */
  readonly auditExportDomainName: string;
  readonly mcpSecurityGroup: ec2.SecurityGroup;
  /** The sweeper's schedule (EventBridge rule). */
  readonly sweepSchedule: events.Rule;
  /**
   * Where invocations of the sweeper that failed for good land: scheduled sweeps that failed on
   * every asynchronous attempt (the function's dead-letter queue), those EventBridge could not
   * deliver after its retries, and stream batches the sequencer failed on after its retries.
   */
  readonly sweeperDeadLetterQueue: sqs.Queue;
  /** The table stream → sweeper (audit sequencer) trigger. */
  readonly sequencerTrigger: lambda.EventSourceMapping;
  /** https://<api-id>.execute-api.<region>.<suffix> */
  readonly endpoint: string;
  /** <api-id>.execute-api.<region>.<suffix> (the CloudFront origin of /api/*). */
  readonly domainName: string;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    const table = props.table;

    // Reserved concurrency guarantees each function its share and caps it there: however many
    // agents call, the MCP function cannot take the executions the consent API and the sweeper need.
    ({ fn: this.mcpFunction, securityGroup: this.mcpSecurityGroup } = this.spireFunction('Mcp', HANDLERS.mcp, props, 'ackd MCP function', 'DynamoDB, KMS, Secrets Manager', props.reservedConcurrency.mcp));
    // The AWS credential broker: its own function, so STS and the X.509 path validation of SVID
    // proofs stay out of the MCP function (issue 15), and only its role may assume the configured
    // roles (constructs/aws-broker.ts). In the VPC like the MCP function: it reads the trust bundle
    // from SPIRE through the bridge (else the last known one, from the table).
    if (props.awsCredentials) {
      ({ fn: this.awsCredentialsFunction, securityGroup: this.awsCredentialsSecurityGroup } = this.spireFunction(
        'AwsCredentials',
        HANDLERS.awsCredentials,
        props,
        'ackd AWS credentials function',
        'DynamoDB, STS, KMS, Secrets Manager',
        props.reservedConcurrency.awsCredentials,
      ));
    }
    this.consentFunction = this.fn('Consent', HANDLERS.consentApi, props, { ...props.environment, ...props.consentEnvironment }, {
      reservedConcurrentExecutions: props.reservedConcurrency.consent,
    });
    // Failed sweeps are never lost silently: a scheduled sweep that failed on each of Lambda's
    // asynchronous attempts (the function's own dead-letter queue), one EventBridge could not deliver
    // after its retries, or a stream batch the sequencer failed on 3 times, lands here (and alarms, see
    // constructs/observability.ts). SQS-managed encryption: EventBridge and Lambda both write to it
    // without a key policy to keep in step. Kept 14 days, SQS's longest.
    this.sweeperDeadLetterQueue = new sqs.Queue(this, 'SweeperDlq', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(
      this.sweeperDeadLetterQueue,
      'This queue is itself the dead-letter queue of the sweeper (the function\'s asynchronous invocations, its EventBridge schedule target and its DynamoDB stream trigger); nothing consumes it automatically, an operator reads it when its depth alarm fires (docs/operations.md).',
      'AwsSolutions-SQS3',
    );
    // ACKD_AUDIT_KEY only where checkpoints are signed (sweeper) or their public key is served (export).
    const auditKey = { ACKD_AUDIT_KEY: `kms:${props.auditKeyArn}` };
    // One sweep at a time: a scheduled sweep that overlaps a slow one is throttled (EventBridge
    // retries it), so audit checkpoints are never signed concurrently.
    this.sweeperFunction = this.fn('Sweeper', HANDLERS.sweeper, props, { ...props.environment, ...auditKey }, {
      reservedConcurrentExecutions: SWEEPER_RESERVED_CONCURRENCY,
      // EventBridge invokes asynchronously: a sweep that fails Lambda's attempts lands here, not in the rule's DLQ.
      deadLetterQueue: this.sweeperDeadLetterQueue,
    });
    this.auditExportFunction = this.fn('AuditExport', HANDLERS.auditExport, props, {
      ...props.environment,
      ...props.consentEnvironment,
      ...auditKey,
    }, { reservedConcurrentExecutions: props.reservedConcurrency.auditExport });

    // --- least privilege, written out action by action ---
    const tableArn = table.tableArn;
    const indexArn = (name: string) => `${tableArn}/index/${name}`;
    this.mcpFunction.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'RequestsAndApiKeys',
        // BatchGetItem: the flood limits read an agent's slots in one batch.
        actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query', 'dynamodb:BatchGetItem'],
        resources: [tableArn],
      }),
    );
    this.mcpFunction.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'QueryIndexes',
        actions: ['dynamodb:Query'],
        resources: [indexArn(TABLE.byAgent.name), indexArn(TABLE.pendingByExpiry.name)],
      }),
    );
    // Consent emails and notification routes: a request is announced once its event is in the audit
    // log, by the sequencer's follow-up, and the sequencer runs in the sweeper only (never in the
    // MCP function, whose composition root has no mailer and no routes: test/infra/bundle-mcp.test.ts).
    // The sweeper also re-sends what failed (AuthorizationService.sweep). So only the sweeper may send.
    {
      const f = this.sweeperFunction;
      f.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'SendConsentEmail',
          actions: ['ses:SendEmail'],
          // In the SES sandbox the recipients' identities are authorized too, hence identity/*; the
          // condition pins the From address to ackd's own sender.
          resources: [`arn:${Aws.PARTITION}:ses:${Aws.REGION}:${Aws.ACCOUNT_ID}:identity/*`],
          conditions: { StringEquals: { 'ses:FromAddress': props.ses.fromAddress } },
        }),
      );
    }
    // Notification routes: the function that notifies (the sweeper, as above) gets ACKD_ROUTES and
    // may read exactly the secrets it names (webhook signing keys, Slack URLs), nothing else of
    // Secrets Manager. It runs outside the VPC, so a webhook on any port is reachable.
    if (props.routes) {
      {
        const f = this.sweeperFunction;
        f.addEnvironment('ACKD_ROUTES', props.routes.json);
        if (props.routes.secretArns.length > 0) {
          f.addToRolePolicy(
            new iam.PolicyStatement({
              sid: 'ReadNotificationSecrets',
              actions: ['secretsmanager:GetSecretValue'],
              resources: [...props.routes.secretArns],
            }),
          );
        }
      }
    }
    for (const f of [this.mcpFunction, this.awsCredentialsFunction]) {
      f?.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'ReadBridgeKey',
          actions: ['secretsmanager:GetSecretValue'],
          resources: [props.spire.bridgeSecret.secretArn],
        }),
      );
    }
    // The AWS credential broker reads the request (GetItem), claims the proof's jti once (PutItem),
    // records `aws_credentials_issued` on the request (UpdateItem) and reads the last known trust
    // bundle (GetItem). Nothing else of the table.
    this.awsCredentialsFunction?.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'IssueAwsCredentials',
        actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
        resources: [tableArn],
      }),
    );
    // Reading a request is GetItem; deciding and revoking are UpdateItems of the request, which
    // carry their audit events in its outbox (the sweeper sequences them into the log); passkeys
    // are the approver's item (GetItem, UpdateItem) and one-time nonces (PutItem). The dashboard
    // lists pending requests (pending-by-expiry) and recent decisions (the audit log's time index,
    // then BatchGetItem of their requests). test/integration/consent-api-handler.test.ts holds
    // what the function really does to the table to this grant.
    this.consentFunction.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ReadDecideAndLinkAudit',
        actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:BatchGetItem'],
        resources: [tableArn],
      }),
    );
    this.consentFunction.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ListForDashboard',
        actions: ['dynamodb:Query'],
        resources: [indexArn(TABLE.pendingByExpiry.name), indexArn(TABLE.auditLog.name)],
      }),
    );
    // Sweeper: finds overdue and unnotified pending requests (pending-by-expiry) and unlinked
    // audit events (audit-log), expires and links them, then signs a checkpoint after verifying
    // the events since the last one (BatchGetItem) and storing it (PutItem).
    this.sweeperFunction.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'FindPendingAndUnlinked',
        actions: ['dynamodb:Query'],
        resources: [indexArn(TABLE.pendingByExpiry.name), indexArn(TABLE.auditLog.name)],
      }),
    );
    this.sweeperFunction.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ExpireLinkAndCheckpoint',
        actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:BatchGetItem'],
        resources: [tableArn],
      }),
    );
    // The sequencer stores the Merkle tree's nodes of a run in batches (adapters/dynamodb/audit.ts
    // putNodes): BatchWriteItem, on audit#node#… items only (its puts there are never conditional;
    // everything else it writes is a conditional PutItem or UpdateItem above).
    this.sweeperFunction.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'StoreAuditTreeNodes',
        actions: ['dynamodb:BatchWriteItem'],
        resources: [tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${AUDIT_PK.node}*`] } },
      }),
    );
    this.sweeperFunction.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'SignAuditCheckpoints',
        actions: ['kms:Sign'],
        resources: [props.auditKeyArn],
        // Exactly how KmsSigner signs: ECDSA P-256 / SHA-256 over the raw checkpoint payload.
        conditions: { StringEquals: { 'kms:SigningAlgorithm': 'ECDSA_SHA_256', 'kms:MessageType': 'RAW' } },
      }),
    );
    // The export only reads: the chain head (GetItem), events by time and checkpoints by seq
    // (Query on audit-log), events by seq (BatchGetItem); it signs nothing.
    this.auditExportFunction.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ReadAuditLog',
        actions: ['dynamodb:GetItem', 'dynamodb:BatchGetItem'],
        resources: [tableArn],
      }),
    );
    this.auditExportFunction.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'QueryAuditLog',
        actions: ['dynamodb:Query'],
        resources: [indexArn(TABLE.auditLog.name)],
      }),
    );
    for (const f of [this.sweeperFunction, this.auditExportFunction]) {
      f.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'ReadAuditPublicKey',
          actions: ['kms:GetPublicKey'],
          resources: [props.auditKeyArn],
        }),
      );
    }
    for (const f of [this.sweeperFunction]) {
      acknowledge(
        f,
        "ses:SendEmail on identity/* of this account and region only, and the ses:FromAddress condition pins the sender to ackd's own address: SES authorizes the recipients' identities too while the account is in the SES sandbox, so the sender identity alone is not enough.",
        'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ses:<AWS::Region>:<AWS::AccountId>:identity/*]',
      );
    }
    for (const f of [this.mcpFunction, this.awsCredentialsFunction]) {
      if (!f) continue;
      acknowledge(
        f,
        'AWSLambdaVPCAccessExecutionRole is the AWS-maintained minimal policy for a function in a VPC to manage its network interfaces (those EC2 actions support no resource scoping).',
        MANAGED_POLICY.lambdaVpc,
      );
    }

    this.sweepSchedule = new events.Rule(this, 'SweepSchedule', {
      description: 'ackd: record expiry of overdue pending requests',
      schedule: events.Schedule.rate(props.sweepEvery),
      targets: [new targets.LambdaFunction(this.sweeperFunction, { retryAttempts: 2, deadLetterQueue: this.sweeperDeadLetterQueue })],
    });

    // The audit sequencer: the table's stream triggers the sweeper for items that carry audit
    // events not yet sequenced (SEQUENCER_FILTER), in order (one batch at a time per shard, and
    // the sweeper runs one at a time: reserved concurrency 1). A batch that fails 3 times goes to
    // the dead-letter queue; its events stay in the outbox and the next scheduled sweep sequences them.
    const streamArn = props.table.tableStreamArn;
    if (!streamArn) throw new Error('the table needs a stream (constructs/data.ts) to trigger the audit sequencer');
    this.sequencerTrigger = new lambda.EventSourceMapping(this, 'AuditSequencerTrigger', {
      target: this.sweeperFunction,
      eventSourceArn: streamArn,
      startingPosition: lambda.StartingPosition.LATEST,
      batchSize: 100,
      maxBatchingWindow: props.sequencerBatchWindow,
      parallelizationFactor: 1,
      retryAttempts: 2,
      onFailure: new SqsDlq(this.sweeperDeadLetterQueue),
      filters: [lambda.FilterCriteria.filter(SEQUENCER_FILTER)],
    });
    this.sweeperFunction.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ReadTableStream',
        actions: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator'],
        resources: [streamArn],
      }),
    );
    // Its own policy, so the acknowledgment below covers this statement alone.
    const listStreams = new iam.Policy(this, 'SweeperListStreams', {
      roles: [this.sweeperFunction.role!],
      statements: [new iam.PolicyStatement({ sid: 'ListTableStreams', actions: ['dynamodb:ListStreams'], resources: ['*'] })],
    });
    acknowledge(
      listStreams,
      'dynamodb:ListStreams supports no resource-level permission (Resource * only) and reveals only stream ARNs; reading a stream (DescribeStream, GetRecords, GetShardIterator) is granted on this table\'s stream alone.',
      'AwsSolutions-IAM5[Resource::*]',
    );
    // Lambda checks the role's stream permissions when it creates the mapping.
    this.sequencerTrigger.node.addDependency(listStreams);

    // --- one HTTP API: /api/* → consent API, everything else (/mcp, /healthz, trust bundle) → MCP ---
    const accessLogs = new logs.LogGroup(this, 'AccessLogs', { retention: props.logRetention, removalPolicy: RemovalPolicy.DESTROY });
    this.httpApi = new apigw.HttpApi(this, 'HttpApi', {
      description: 'ackd: MCP endpoint and consent API',
      createDefaultStage: false,
      defaultIntegration: new HttpLambdaIntegration('McpIntegration', this.mcpFunction, {
        payloadFormatVersion: apigw.PayloadFormatVersion.VERSION_2_0,
      }),
    });
    this.httpApi.addRoutes({
      path: '/api/{proxy+}', // CONSENT_ROUTE_KEY
      methods: [apigw.HttpMethod.ANY],
      integration: new HttpLambdaIntegration('ConsentIntegration', this.consentFunction, {
        payloadFormatVersion: apigw.PayloadFormatVersion.VERSION_2_0,
      }),
    });
    if (this.awsCredentialsFunction) {
      this.httpApi.addRoutes({
        path: '/v1/aws/{proxy+}', // AWS_CREDENTIALS_ROUTE_KEY
        methods: [apigw.HttpMethod.ANY],
        integration: new HttpLambdaIntegration('AwsCredentialsIntegration', this.awsCredentialsFunction, {
          payloadFormatVersion: apigw.PayloadFormatVersion.VERSION_2_0,
        }),
      });
    }
    const stage = new apigw.HttpStage(this, 'DefaultStage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      // The default of any route without its own settings: the MCP throttle.
      throttle: props.throttles.mcp,
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(accessLogs),
        format: apigwv1.AccessLogFormat.custom(JSON.stringify(ACCESS_LOG_FIELDS)),
      },
    });
    this.httpStage = stage;
    // Route-level throttles: the MCP routes (agents) and the consent API (approvers) each have their
    // own token bucket, so no number of agent requests can use up the approvers' (issue 15).
    const routeThrottle = (t: ThrottleConfig) => ({ ThrottlingRateLimit: t.rateLimit, ThrottlingBurstLimit: t.burstLimit });
    // The AWS credential broker is called by agents too: the MCP throttle (its own bucket).
    (stage.node.defaultChild as apigw.CfnStage).routeSettings = {
      [MCP_ROUTE_KEY]: routeThrottle(props.throttles.mcp),
      [CONSENT_ROUTE_KEY]: routeThrottle(props.throttles.consent),
      ...(this.awsCredentialsFunction ? { [AWS_CREDENTIALS_ROUTE_KEY]: routeThrottle(props.throttles.mcp) } : {}),
    };

    acknowledge(
      this.httpApi,
      'Authorization is enforced inside the functions on every request, where API Gateway authorizers cannot express it: /mcp requires an agent API key (stored as a hash, constant-time compare, 401 + WWW-Authenticate); /api/* requires a verified Cognito ID token (issuer, audience, signature) of a user in the approvers group; /v1/aws/* requires a single-use proof signed with an approved SVID\'s key (chain verified against the trust bundle). /healthz and the trust bundle are public by design.',
      'AwsSolutions-APIG4',
    );

    this.domainName = `${this.httpApi.apiId}.execute-api.${Aws.REGION}.${Aws.URL_SUFFIX}`;
    this.endpoint = `https://${this.domainName}`;

    // --- the audit export: a REST API streaming the function's response, behind CloudFront ---
    // Not a Lambda function URL: CloudFront would have to name the URL's domain, which exists only
    // once the function does, while the function's environment names the distribution (its
    // ACKD_CONSENT_URL and the Cognito app client, whose callback URL is the distribution's):
    // a dependency cycle CloudFormation refuses. A REST API's domain is known before its
    // integration exists, like the HTTP API's above. (Origin access control would not fit either:
    // it signs the origin request in the Authorization header, where the approver's token must go.)
    const exportLogs = new logs.LogGroup(this, 'AuditExportAccessLogs', { retention: props.logRetention, removalPolicy: RemovalPolicy.DESTROY });
    this.auditExportApi = new apigwv1.RestApi(this, 'AuditExportApi', {
      description: 'ackd: audit export (streamed) and checkpoint public key; CloudFront routes /api/audit/* here',
      endpointConfiguration: { types: [apigwv1.EndpointType.REGIONAL] },
      cloudWatchRole: false,
      deployOptions: {
        stageName: AUDIT_EXPORT_STAGE,
        // X-Ray through API Gateway to the function (the HTTP API has no X-Ray; its functions trace).
        tracingEnabled: true,
        // Exports are occasional and long: a few at a time is plenty.
        throttlingRateLimit: 5,
        throttlingBurstLimit: 10,
        accessLogDestination: new apigwv1.LogGroupLogDestination(exportLogs),
        accessLogFormat: apigwv1.AccessLogFormat.custom(JSON.stringify({ ...ACCESS_LOG_FIELDS, bytes: '$context.responseLength' })),
      },
    });
    // Its own execute-api URL is not an entry point to publish: the export lives at the consent URL.
    this.auditExportApi.node.tryRemoveChild('Endpoint');
    const exportIntegration = new apigwv1.LambdaIntegration(this.auditExportFunction, {
      proxy: true,
      responseTransferMode: apigwv1.ResponseTransferMode.STREAM,
      timeout: HANDLERS.auditExport.timeout,
    });
    const auditResource = this.auditExportApi.root.addResource('api').addResource('audit').addResource('{proxy+}');
    for (const method of ['GET', 'HEAD', 'OPTIONS']) auditResource.addMethod(method, exportIntegration);
    this.auditExportDomainName = `${this.auditExportApi.restApiId}.execute-api.${Aws.REGION}.${Aws.URL_SUFFIX}`;

    acknowledge(
      this.auditExportApi,
      'Authorization is enforced inside the function on every request, as on the consent API: a verified Cognito ID token (issuer, audience, signature) of a user in the approvers group, which an API Gateway Cognito authorizer cannot check (group membership). The approver\'s Authorization header reaches the function through CloudFront.',
      'AwsSolutions-APIG4',
      'AwsSolutions-COG4',
    );
    acknowledge(
      this.auditExportApi,
      'The only inputs are the since, until and format query parameters, which the function validates (unknown parameters refused) before reading anything; an API Gateway request validator would duplicate that and answer in a different error shape.',
      'AwsSolutions-APIG2',
    );
    acknowledge(
      this.auditExportApi,
      'Access logs of every request go to CloudWatch Logs; execution logging needs the account-wide API Gateway CloudWatch role, which this app does not create (@aws-cdk/aws-apigateway:disableCloudWatchRole).',
      'AwsSolutions-APIG6',
    );
    acknowledge(
      this.auditExportApi,
      'The API is reached through the consent CloudFront distribution and refuses every request without a verified approver token; it is throttled at the stage. Operators who want a WAF web ACL can attach one to the stage or the distribution.',
      'AwsSolutions-APIG3',
    );
  }

  /**
   * A function that reaches SPIRE through the bridge (the MCP function, the AWS credentials
   * function): in the private subnets with its own security group (HTTPS out to AWS APIs; the
   * bridge admits it separately), minting or reading the bundle through `spire-remote`.
   */
  private spireFunction(id: string, spec: HandlerSpec, props: ApiProps, what: string, apis: string, reserved: number): { fn: NodejsFunction; securityGroup: ec2.SecurityGroup } {
    const securityGroup = new ec2.SecurityGroup(this, `${id}Sg`, { vpc: props.vpc, description: `${what}: HTTPS to AWS APIs, HTTP to the SPIRE bridge`, allowAllOutbound: false });
    securityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), `HTTPS to AWS APIs (${apis})`);
    const fn = this.fn(
      id,
      spec,
      props,
      { ...props.environment, ACKD_MINTER: 'spire-remote', ACKD_SPIRE_BRIDGE_URL: props.spire.bridgeUrl, ACKD_SPIRE_BRIDGE_SECRET_ARN: props.spire.bridgeSecret.secretArn },
      { vpc: props.vpc, vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }, securityGroups: [securityGroup], reservedConcurrentExecutions: reserved },
    );
    return { fn, securityGroup };
  }

  private fn(
    id: string,
    spec: HandlerSpec,
    props: ApiProps,
    environment: Record<string, string>,
    extra: Partial<ConstructorParameters<typeof NodejsFunction>[2]> = {},
  ): NodejsFunction {
    const logGroup = new logs.LogGroup(this, `${id}Logs`, { retention: props.logRetention, removalPolicy: RemovalPolicy.DESTROY });
    const f = new NodejsFunction(this, id, {
      entry: `${REPO_ROOT}/${spec.entry}`,
      handler: 'handler',
      description: spec.description,
      runtime: LAMBDA_RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      memorySize: spec.memorySize,
      timeout: spec.timeout,
      projectRoot: REPO_ROOT,
      depsLockFilePath: `${REPO_ROOT}/package-lock.json`,
      bundling: BUNDLING,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      // Active X-Ray tracing of every function: each invocation's segment (init, invocation,
      // overhead) comes from the Lambda service. Where the handler uses Powertools Tracer
      // (lambdas/adapters/powertools.ts `observed` + `traced`: every function but MCP's) its AWS SDK
      // calls are subsegments too (docs/operations.md, "Tracing").
      tracing: lambda.Tracing.ACTIVE,
      environment,
      ...extra,
    });
    acknowledge(
      f,
      'AWSLambdaBasicExecutionRole is the AWS-maintained minimal policy to write logs; every data permission of this function is an inline statement naming its exact actions and resources.',
      MANAGED_POLICY.lambdaBasic,
    );
    acknowledge(
      f,
      'Active X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permission (Resource * only) and only write trace data.',
      'AwsSolutions-IAM5[Resource::*]',
    );
    return f;
  }
}
