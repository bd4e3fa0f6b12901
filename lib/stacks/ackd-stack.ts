import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { LIMIT_ENV } from '../../lambdas/config.ts';
import type { DeployConfig } from '../config.ts';
import { Api, AUDIT_EXPORT_STAGE, TRUST_BUNDLE_PATH } from '../constructs/api.ts';
import { AuditKey } from '../constructs/audit.ts';
import { EVIDENCE_SIGNER_OUTPUT, EvidenceKey } from '../constructs/evidence-keys.ts';
import { BRIDGE_PORT, Spire } from '../constructs/spire.ts';
import { Consent } from '../constructs/consent.ts';
import { Data } from '../constructs/data.ts';
import { Observability } from '../constructs/observability.ts';
import { Archive } from '../constructs/archive.ts';
import { McpDomain } from '../constructs/domain.ts';
import { acknowledgeCompliancePacks } from '../nag-compliance.ts';
import { AwsBroker } from '../constructs/aws-broker.ts';
import { OutboxSeal } from '../constructs/outbox-seal.ts';
import { finishNat, natProviderFor, VPC_CIDR } from '../constructs/nat.ts';

export interface AckdStackProps extends StackProps {
  readonly config: DeployConfig;
}

/** How often the sweeper records expiry of overdue pending requests. */
export const SWEEP_EVERY = Duration.minutes(5);

/**
 * All of ackd in one stack: Data (DynamoDB), AuditKey (KMS, signs audit checkpoints), Spire
 * (Fargate + bridge), Api (Lambdas + HTTP API + the audit export's streaming REST API), Consent
 * (S3 + CloudFront + Cognito + SES). One stack keeps the cross-references (consent URL ↔ Cognito
 * callback ↔ API origins) plain values instead of exports between stacks.
 */
export class AckdStack extends Stack {
  readonly data: Data;
  readonly auditKey: AuditKey;
  /** Signs decisions (the consent API); the MCP function verifies with its public key before minting. */
  readonly decisionKey: EvidenceKey;
  /** Signs approval receipts (the MCP function). */
  readonly receiptKey: EvidenceKey;
  readonly spire: Spire;
  readonly api: Api;
  readonly consent: Consent;
  readonly observability: Observability;
  readonly archive: Archive;
  readonly mcpDomain: McpDomain | undefined;
  /** The key that seals audit outbox entries (only the event writers and the sequencer may use it). */
  readonly outboxSeal: OutboxSeal;

  constructor(scope: Construct, id: string, props: AckdStackProps) {
    super(scope, id, props);
    const { config } = props;
    const logRetention = config.production ? logs.RetentionDays.ONE_YEAR : logs.RetentionDays.ONE_MONTH;

    const flowLogs = new logs.LogGroup(this, 'VpcFlowLogs', { retention: logRetention, removalPolicy: RemovalPolicy.DESTROY });
    const natGatewayProvider = natProviderFor(config);
    const vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      ipAddresses: ec2.IpAddresses.cidr(VPC_CIDR),
      natGateways: config.natGateways,
      natGatewayProvider,
      subnetConfiguration: [
        // Only the NAT gateways live here, with their Elastic IPs: nothing gets a public IP by default.
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24, mapPublicIpOnLaunch: false },
        { name: 'private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
      ],
      flowLogs: {
        all: { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs), trafficType: ec2.FlowLogTrafficType.ALL },
      },
    });
    const natInstances = finishNat(natGatewayProvider, vpc);
    // DynamoDB traffic from the MCP function stays on the AWS network (and off the NAT bill).
    vpc.addGatewayEndpoint('DynamoDbEndpoint', { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB });

    this.data = new Data(this, 'Data');
    this.auditKey = new AuditKey(this, 'AuditKey', { stage: config.stage, existingKeyArn: config.auditKeyArn });

    this.spire = new Spire(this, 'Spire', {
      vpc,
      stage: config.stage,
      trustDomain: config.trustDomain,
      image: config.spireServerImage,
      logRetention,
      retainData: config.production,
      sidecarBaseImage: config.sidecarBaseImage,
      servers: config.spireServers,
    });

    const environment: Record<string, string> = {
      ACKD_STAGE: config.stage,
      ACKD_TRUST_DOMAIN: config.trustDomain,
      ACKD_TABLE_NAME: this.data.table.tableName,
      ACKD_RETENTION_DAYS: String(config.retentionDays),
      ACKD_SENDER: config.senderAddress,
      ACKD_APPROVERS: config.approverEmails.join(','),
      ACKD_LOG_LEVEL: 'info',
      // Fixed on each request when it is made (the MCP function) and enforced where decisions are made.
      ACKD_PASSKEY_REQUIRED: config.passkeyRequired,
    };
    if (Object.keys(config.approverRoutes).length > 0) environment.ACKD_APPROVER_ROUTES = JSON.stringify(config.approverRoutes);
    // Flood limits: only those configured; every function builds the service (lambdas/deps.ts)
    // and so enforces them. Unset limits keep the functions' defaults.
    for (const [k, v] of Object.entries(config.limits) as [keyof typeof LIMIT_ENV, number][]) environment[LIMIT_ENV[k]] = String(v);

    // AWS roles an approval may open (deploy setting awsRoles): the AWS credential broker's function exists only with them.
    const awsRoles = config.awsRoles && config.awsRoles.size > 0 ? config.awsRoles : undefined;
    this.api = new Api(this, 'Api', {
      vpc,
      table: this.data.table,
      logRetention,
      environment,
      consentEnvironment: {},
      spire: { bridgeUrl: this.spire.bridgeUrl, bridgeSecret: this.spire.bridgeSecret },
      ses: {
        identityName: config.senderIdentity.value,
        fromAddress: config.senderAddress,
      },
      sweepEvery: SWEEP_EVERY,
      auditKeyArn: this.auditKey.keyArn,
      ...(config.routes ? { routes: config.routes } : {}),
      throttles: { mcp: config.mcpThrottle, consent: config.consentThrottle },
      reservedConcurrency: config.reservedConcurrency,
      sequencerBatchWindow: Duration.seconds(config.sequencerBatchWindowSeconds),
      awsCredentials: awsRoles !== undefined,
    });
    // The audit key's policy names the sweeper as its only signer (constructs/audit.ts).
    this.auditKey.allowSigningOnlyBy(this.api.sweeperFunction.role!);
    // Signed decisions and receipts (issue 13): the consent API alone signs decisions (the CLI's
    // operator decisions sign with an operator's own IAM permission, ACKD_DECISION_KEY=kms:<arn>);
    // the MCP function only reads the decision key's public key, and alone signs receipts.
    // With decisionKeyArn / receiptKeyArn the stack uses that key and grants through IAM only (the
    // owner's key policy must name the signer: output DecisionSignerRoleArn / ReceiptSignerRoleArn).
    this.decisionKey = new EvidenceKey(this, 'DecisionKey', {
      stage: config.stage,
      name: 'decisions',
      description: 'signs approvers\' decisions (ECDSA P-256); the MCP function verifies them before minting an SVID',
      existingKeyArn: config.decisionKeyArn,
    });
    this.receiptKey = new EvidenceKey(this, 'ReceiptKey', { stage: config.stage, name: 'receipts', description: 'signs the approval receipts delivered with SVIDs (ES256)', existingKeyArn: config.receiptKeyArn });
    this.decisionKey.allowSigningOnlyBy(this.api.consentFunction, 'SignDecisions');
    this.decisionKey.allowReadingPublicKey(this.api.mcpFunction, 'ReadDecisionPublicKey');
    this.receiptKey.allowSigningOnlyBy(this.api.mcpFunction, 'SignReceipts');
    this.api.consentFunction.addEnvironment('ACKD_DECISION_KEY', this.decisionKey.envValue);
    this.api.mcpFunction.addEnvironment('ACKD_DECISION_PUBLIC_KEY', this.decisionKey.envValue);
    this.api.mcpFunction.addEnvironment('ACKD_RECEIPT_KEY', this.receiptKey.envValue);
    for (const sg of [this.api.mcpSecurityGroup, this.api.awsCredentialsSecurityGroup]) {
      if (!sg) continue;
      sg.addEgressRule(this.spire.securityGroup, ec2.Port.tcp(BRIDGE_PORT), 'SPIRE bridge');
      this.spire.allowBridgeFrom(sg);
    }

    this.consent = new Consent(this, 'Consent', {
      config,
      apiDomainName: this.api.domainName,
      auditExport: { domainName: this.api.auditExportDomainName, stagePath: `/${AUDIT_EXPORT_STAGE}` },
    });

    // The consent URL and the Cognito settings exist only once Consent does.
    const consentUrl = this.consent.url;
    const cognitoEnv = {
      ACKD_COGNITO_ISSUER: this.consent.issuer,
      ACKD_COGNITO_JWKS_URL: `${this.consent.issuer}/.well-known/jwks.json`,
      ACKD_COGNITO_CLIENT_ID: this.consent.userPoolClient.userPoolClientId,
      ACKD_COGNITO_USER_POOL_ID: this.consent.userPool.userPoolId,
      ACKD_COGNITO_DOMAIN: this.consent.cognitoDomainUrl,
    };
    for (const f of [this.api.mcpFunction, this.api.consentFunction, this.api.sweeperFunction, this.api.auditExportFunction, this.api.awsCredentialsFunction]) {
      f?.addEnvironment('ACKD_CONSENT_URL', consentUrl);
    }
    // The audit export authenticates approvers exactly as the consent API does.
    for (const f of [this.api.consentFunction, this.api.auditExportFunction]) {
      for (const [k, v] of Object.entries(cognitoEnv)) f.addEnvironment(k, v);
    }

    // Evidence beyond the table's retention: the daily archive (S3 Object Lock), reading as the export does.
    this.archive = new Archive(this, 'Archive', {
      table: this.data.table,
      logRetention,
      retentionYears: config.archiveRetentionYears,
      environment: { ...environment, ACKD_CONSENT_URL: consentUrl },
    });
    // Alarms, their topic and the dashboard (issue 15: "nothing watches it").
    this.observability = new Observability(this, 'Observability', {
      stage: config.stage,
      alarmEmails: config.alarmEmails,
      functions: {
        mcp: this.api.mcpFunction,
        consent: this.api.consentFunction,
        sweeper: this.api.sweeperFunction,
        auditExport: this.api.auditExportFunction,
        archive: this.archive.fn,
        ...(this.api.awsCredentialsFunction ? { awsCredentials: this.api.awsCredentialsFunction } : {}),
      },
      mcpLogGroup: this.api.mcpFunction.logGroup,
      ...(this.api.awsCredentialsFunction ? { awsCredentialsLogGroup: this.api.awsCredentialsFunction.logGroup } : {}),
      tableName: this.data.table.tableName,
      sweeperDeadLetterQueue: this.api.sweeperDeadLetterQueue,
      archiveDeadLetterQueue: this.archive.deadLetterQueue,
      spireService: this.spire.service,
      sweepEvery: SWEEP_EVERY,
      sequencerLagAlarmMs: config.sequencerLagAlarmMs,
      natInstances,
    });
    // Audit outbox entries are sealed by the functions that write events (the AWS credentials function's
    // aws_credentials_issued too) and checked by the sequencer (the sweeper).
    this.outboxSeal = new OutboxSeal(this, 'OutboxSeal', { stage: config.stage, users: [this.api.mcpFunction, this.api.consentFunction, this.api.sweeperFunction, ...(this.api.awsCredentialsFunction ? [this.api.awsCredentialsFunction] : [])], sequencer: this.api.sweeperFunction });
    // A stable MCP host name, when configured.
    this.mcpDomain = config.customDomain
      ? new McpDomain(this, 'McpDomain', { config: config.customDomain, httpApi: this.api.httpApi, stage: this.api.httpStage })
      : undefined;
    // The broker is its own function; the MCP function (revoke_authorization) and the consent API revoke.
    if (awsRoles && this.api.awsCredentialsFunction) {
      new AwsBroker(this, 'AwsBroker', { roles: awsRoles, broker: this.api.awsCredentialsFunction, revokers: [this.api.mcpFunction, this.api.consentFunction], sweeper: this.api.sweeperFunction });
    }

    new CfnOutput(this, 'McpUrl', { description: 'MCP endpoint for agents (streamable HTTP)', value: `${this.api.endpoint}/mcp` });
    new CfnOutput(this, 'ConsentUiUrl', { description: 'Consent UI for approvers', value: consentUrl });
    new CfnOutput(this, 'TrustBundleUrl', { description: 'SPIFFE trust bundle of the trust domain', value: `${this.api.endpoint}${TRUST_BUNDLE_PATH}` });
    new CfnOutput(this, 'AuditExportUrl', {
      description: 'Audit log export for approvers (GET with an approver ID token; ?since=&until=&format=jsonl|csv), streamed',
      value: `${consentUrl}/api/audit/export`,
    });
    new CfnOutput(this, 'AuditKeyArn', {
      description: 'KMS key that signs audit checkpoints (aws kms get-public-key --key-id <arn>); retained when the stack is deleted',
      value: this.auditKey.keyArn,
    });
    new CfnOutput(this, 'DecisionKeyArn', { description: 'KMS key that signs decisions (ACKD_DECISION_KEY for `ackd requests approve|deny`; its public key verifies them: `ackd audit decision-key`); retained', value: this.decisionKey.keyArn });
    new CfnOutput(this, 'ReceiptKeyArn', { description: 'KMS key that signs approval receipts (JWKS: GET <McpUrl origin>/.well-known/ackd-receipt-keys.json); retained', value: this.receiptKey.keyArn });
    for (const k of [this.decisionKey, this.receiptKey]) {
      if (k.key || !k.signerRole) continue;
      new CfnOutput(this, EVIDENCE_SIGNER_OUTPUT[k.kind], {
        description: `The one role that signs with the existing ${k.kind} key: name it in that key's policy (docs/aws.md, "Existing keys for decisions and receipts")`,
        value: k.signerRole.roleArn,
      });
    }
    new CfnOutput(this, 'TableName', { description: 'DynamoDB table (ACKD_TABLE_NAME for the ackd CLI)', value: this.data.table.tableName });
    new CfnOutput(this, 'UserPoolId', { description: 'Cognito user pool (ACKD_COGNITO_USER_POOL_ID for `ackd approvers`)', value: this.consent.userPool.userPoolId });
    new CfnOutput(this, 'UserPoolClientId', { description: 'Cognito app client of the consent UI', value: this.consent.userPoolClient.userPoolClientId });
    new CfnOutput(this, 'AlarmTopicArn', {
      description: 'SNS topic of the CloudWatch alarms (subscribe: aws sns subscribe --topic-arn <arn> --protocol email --notification-endpoint <you>)',
      value: this.observability.topic.topicArn,
    });
    new CfnOutput(this, 'DashboardName', { description: 'CloudWatch dashboard of ackd', value: this.observability.dashboard.dashboardName });
    if (this.mcpDomain) {
      new CfnOutput(this, 'McpCustomUrl', { description: 'MCP endpoint for agents at the custom domain (stable across API replacements)', value: `${this.mcpDomain.url}/mcp` });
    }
    new CfnOutput(this, 'AuditArchiveBucket', {
      description: `Daily audit archive (audit/YYYY/MM/DD.jsonl, Object Lock compliance ${config.archiveRetentionYears} years); retained when the stack is deleted`,
      value: this.archive.bucket.bucketName,
    });
    if (this.spire.fileSystem && this.spire.backupVault && this.spire.backupRole) {
      new CfnOutput(this, 'SpireDatastoreArn', { description: 'EFS file system of the SPIRE datastore (back it up before a SPIRE upgrade)', value: this.spire.fileSystem.fileSystemArn });
      new CfnOutput(this, 'SpireBackupVault', { description: 'AWS Backup vault of the SPIRE datastore', value: this.spire.backupVault.backupVaultName });
      new CfnOutput(this, 'SpireBackupRoleArn', { description: 'Role for on-demand backups of the SPIRE datastore (aws backup start-backup-job --iam-role-arn)', value: this.spire.backupRole.roleArn });
    }
    if (this.spire.database) {
      new CfnOutput(this, 'SpireDatabaseCluster', {
        description: 'Aurora PostgreSQL cluster of the SPIRE datastore (HA); snapshot it before a SPIRE upgrade: aws rds create-db-cluster-snapshot --db-cluster-identifier <this>',
        value: this.spire.database.clusterIdentifier,
      });
    }
    new CfnOutput(this, 'SesIdentity', { description: 'SES identity to verify before consent emails can be sent', value: config.senderIdentity.value });

    // HIPAA Security and NIST 800-53 rev 5 findings accepted, each with its reason (lib/nag-compliance.ts).
    acknowledgeCompliancePacks(this);
  }
}
