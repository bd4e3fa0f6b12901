import { Aws, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as backup from 'aws-cdk-lib/aws-backup';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as servicediscovery from 'aws-cdk-lib/aws-servicediscovery';
import { Construct } from 'constructs';
import { acknowledge } from '../nag.ts';
import { buildSidecarContext } from './sidecar-image.ts';

/** Where things live inside the SPIRE task. */
export const SPIRE_TASK_PATHS = {
  conf: '/run/spire/conf',
  confFile: '/run/spire/conf/server.conf',
  sockets: '/run/spire/sockets',
  socket: '/run/spire/sockets/api.sock',
  data: '/run/spire/data',
  binary: '/opt/spire/bin/spire-server',
} as const;

/** The port the bridge sidecar listens on inside the VPC. */
export const BRIDGE_PORT = 8080;
/** The aliases SPIRE's aws_kms key manager gives its keys: `alias/SPIRE_SERVER/<trust domain>/<server id>/<key id>`. */
export const SPIRE_ALIAS_PATTERN = 'alias/SPIRE_SERVER/*';
/** UID/GID of spire-server and the bridge (the `node` user of the bridge image is 1000 too). */
const SPIRE_UID = '1000';

export interface SpireProps {
  readonly vpc: ec2.IVpc;
  readonly stage: string;
  readonly trustDomain: string;
  readonly image: string;
  readonly logRetention: logs.RetentionDays;
  readonly retainData: boolean;
  /** FROM of the bridge sidecar image (setting sidecarBaseImage); default SIDECAR_BASE_IMAGE. */
  readonly sidecarBaseImage?: string;
}

/** The SPIRE server configuration (HCL), written into the task by the init container. */
export function spireServerConf(input: { trustDomain: string; region: string; keyIdentifier: string }): string {
  const p = SPIRE_TASK_PATHS;
  return `server {
    # The TCP API listens on loopback only: nothing outside the task can reach SPIRE except through the bridge.
    bind_address = "127.0.0.1"
    bind_port = "8081"
    socket_path = "${p.socket}"
    trust_domain = "${input.trustDomain}"
    data_dir = "${p.data}"
    log_level = "INFO"
    log_format = "json"
    ca_key_type = "ec-p256"
    ca_ttl = "168h"
    default_x509_svid_ttl = "1h"
    ca_subject {
        organization = ["ackd"]
        common_name = "${input.trustDomain}"
    }
}

plugins {
    DataStore "sql" {
        plugin_data {
            database_type = "sqlite3"
            connection_string = "${p.data}/datastore.sqlite3"
        }
    }
    KeyManager "aws_kms" {
        plugin_data {
            region = "${input.region}"
            key_identifier_value = "${input.keyIdentifier}"
        }
    }
    NodeAttestor "join_token" {
        plugin_data {}
    }
}
`;
}

/**
 * SPIRE on ECS Fargate, in private subnets. One task runs three containers:
 *  - `init` writes server.conf and prepares the admin-socket directory (then exits),
 *  - `spire-server` (the official image) with its SQLite datastore on encrypted EFS and its CA keys in
 *    KMS (`aws_kms` key manager: the CA private keys never leave KMS),
 *  - `bridge`, a small Node HTTP server (spire/sidecar) that shares the admin socket through a task
 *    volume and forwards MintX509SVID / GetBundle. Callers authenticate with an HMAC over each
 *    request keyed by a Secrets Manager secret; the security group admits only the MCP Lambda.
 * The service is discovered through Cloud Map (private DNS).
 */
export class Spire extends Construct {
  readonly securityGroup: ec2.SecurityGroup;
  readonly bridgeSecret: secretsmanager.Secret;
  readonly bridgeUrl: string;
  readonly service: ecs.FargateService;
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly fileSystem: efs.FileSystem;
  /** Where the datastore's backups go (daily, kept 35 days; on demand before an upgrade). */
  readonly backupVault: backup.BackupVault;
  /** The role AWS Backup uses for the datastore: `aws backup start-backup-job --iam-role-arn` (docs/spire.md). */
  readonly backupRole: iam.IRole;

  constructor(scope: Construct, id: string, props: SpireProps) {
    super(scope, id);
    const p = SPIRE_TASK_PATHS;
    const { vpc } = props;
    const privateSubnets: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS };

    this.securityGroup = new ec2.SecurityGroup(this, 'TaskSg', {
      vpc,
      description: 'ackd SPIRE task: bridge port reachable only from the MCP function',
      allowAllOutbound: true,
    });

    this.bridgeSecret = new secretsmanager.Secret(this, 'BridgeSecret', {
      description: 'ackd: HMAC key shared by the MCP function and the SPIRE bridge sidecar',
      generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
    });
    acknowledge(
      this.bridgeSecret,
      'The HMAC key is internal to ackd (MCP function ↔ bridge) and never crosses the network (requests carry an HMAC, not the key). Operators rotate it by changing the secret and restarting the SPIRE task (README.md, "Rotating the bridge key"); a rotation Lambda would add a moving part for no gain.',
      'AwsSolutions-SMG4',
    );

    const efsSg = new ec2.SecurityGroup(this, 'EfsSg', { vpc, description: 'ackd SPIRE datastore (EFS)', allowAllOutbound: false });
    efsSg.addIngressRule(this.securityGroup, ec2.Port.tcp(2049), 'NFS from the SPIRE task only');
    this.fileSystem = new efs.FileSystem(this, 'Datastore', {
      vpc,
      vpcSubnets: privateSubnets,
      securityGroup: efsSg,
      encrypted: true,
      // Backed up by the plan below (daily, 35 days, and on demand before an upgrade) instead of
      // EFS's automatic plan, whose vault and role the upgrade runbook could not name.
      enableAutomaticBackups: false,
      performanceMode: efs.PerformanceMode.GENERAL_PURPOSE,
      throughputMode: efs.ThroughputMode.ELASTIC,
      removalPolicy: props.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      fileSystemPolicy: new iam.PolicyDocument({
        statements: [
          new iam.PolicyStatement({
            sid: 'DenyInsecureTransport',
            effect: iam.Effect.DENY,
            principals: [new iam.AnyPrincipal()],
            actions: ['*'],
            conditions: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ],
      }),
    });
    // The datastore (registration state, CA journal, bundle history) is what an upgrade could
    // damage: SPIRE migrates its schema on start and never back. docs/spire.md, "Upgrading SPIRE".
    this.backupVault = new backup.BackupVault(this, 'BackupVault', {
      removalPolicy: props.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    const plan = backup.BackupPlan.daily35DayRetention(this, 'BackupPlan', this.backupVault);
    const selection = plan.addSelection('Datastore', {
      resources: [backup.BackupResource.fromEfsFileSystem(this.fileSystem)],
      allowRestores: true,
    });
    this.backupRole = selection.grantPrincipal as iam.IRole;
    acknowledge(
      selection,
      'AWSBackupServiceRolePolicyForBackup and ...ForRestores are the AWS-maintained policies AWS Backup needs to snapshot and restore the EFS datastore; the role can be assumed only by AWS Backup.',
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup]',
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores]',
    );

    const accessPoint = this.fileSystem.addAccessPoint('SpireData', {
      path: '/spire-data',
      posixUser: { uid: SPIRE_UID, gid: SPIRE_UID },
      createAcl: { ownerUid: SPIRE_UID, ownerGid: SPIRE_UID, permissions: '700' },
    });

    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'Task', {
      cpu: 512,
      memoryLimitMiB: 1024,
      runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.X86_64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
      volumes: [
        { name: 'spire-conf' },
        { name: 'spire-sockets' },
        {
          name: 'spire-data',
          efsVolumeConfiguration: {
            fileSystemId: this.fileSystem.fileSystemId,
            transitEncryption: 'ENABLED',
            authorizationConfig: { accessPointId: accessPoint.accessPointId, iam: 'ENABLED' },
          },
        },
      ],
    });
    const taskRole = this.taskDefinition.taskRole;
    this.fileSystem.grant(taskRole, 'elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite');
    // SPIRE's aws_kms key manager (spire/pkg/server/plugin/keymanager/awskms) creates its CA keys
    // with a key policy naming this task role (kms:*), aliases each `alias/SPIRE_SERVER/<trust
    // domain>/<server id>/<key id>`, and on rotation moves the alias to the new key and schedules
    // the old one for deletion. Its own keys are therefore usable through their key policies; the
    // IAM statements below must not reach any other key in the account — above all the audit
    // checkpoint key (constructs/audit.ts), which only the sweeper may sign with.
    const keyArns = `arn:${Aws.PARTITION}:kms:${Aws.REGION}:${Aws.ACCOUNT_ID}:key/*`;
    taskRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'SpireKmsKeyManagerCreateAndList',
        // CreateKey, ListKeys and ListAliases support only Resource *; TagResource for tags at creation.
        actions: ['kms:CreateKey', 'kms:ListKeys', 'kms:ListAliases', 'kms:TagResource'],
        resources: ['*'],
      }),
    );
    taskRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'SpireKmsKeyManagerDescribeKeys',
        // The plugin's stale-key scan describes every key it lists (metadata only: no use of a key).
        actions: ['kms:DescribeKey'],
        resources: [keyArns],
      }),
    );
    taskRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'SpireKmsKeyManagerUseOwnKeys',
        actions: ['kms:GetPublicKey', 'kms:Sign', 'kms:ScheduleKeyDeletion', 'kms:ListResourceTags'],
        resources: [keyArns],
        // Only keys that carry one of SPIRE's aliases (kms:ResourceAliases is the set of aliases of
        // the key the request acts on; a key with none never matches). The audit key's alias is
        // alias/ackd/<stage>/audit-checkpoints, so it never matches — and the task cannot give it a
        // SPIRE alias: CreateAlias/UpdateAlias also need permission on the target key, which no IAM
        // statement here grants (SPIRE's own keys allow it in their key policy).
        conditions: { 'ForAnyValue:StringLike': { 'kms:ResourceAliases': SPIRE_ALIAS_PATTERN } },
      }),
    );
    taskRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'SpireKmsKeyManagerAliases',
        // The alias side only: the key side of Create/Update/DeleteAlias is granted by the key
        // policy SPIRE writes on its own keys, never by IAM on key/*.
        actions: ['kms:CreateAlias', 'kms:UpdateAlias', 'kms:DeleteAlias'],
        resources: [`arn:${Aws.PARTITION}:kms:${Aws.REGION}:${Aws.ACCOUNT_ID}:${SPIRE_ALIAS_PATTERN}`],
      }),
    );
    acknowledge(
      taskRole,
      "SPIRE's aws_kms key manager creates and rotates its own CA keys at run time: kms:CreateKey, ListKeys, ListAliases (and tagging at creation) support only Resource *; DescribeKey (metadata) is on keys of this account and region; Sign, GetPublicKey and ScheduleKeyDeletion only on keys carrying a SPIRE_SERVER/ alias (kms:ResourceAliases condition); aliases only under the SPIRE_SERVER/ prefix the plugin uses. The CA private keys never leave KMS.",
      'AwsSolutions-IAM5[Resource::*]',
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/*]',
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:alias/SPIRE_SERVER/*]',
    );

    const sidecarImage = ecs.ContainerImage.fromAsset(buildSidecarContext(props.sidecarBaseImage), {
      // The task runs on X86_64; the image is built for the same platform.
      platform: Platform.LINUX_AMD64,
    });

    const init = this.taskDefinition.addContainer('init', {
      image: sidecarImage,
      essential: false,
      command: ['node', 'spire/sidecar/init.mjs'],
      user: '0',
      readonlyRootFilesystem: true,
      environment: {
        SPIRE_SERVER_CONF: spireServerConf({
          trustDomain: props.trustDomain,
          region: Stack.of(this).region,
          keyIdentifier: `ackd-${props.stage}`,
        }),
        SPIRE_CONF_FILE: p.confFile,
        SPIRE_SOCKET_DIR: p.sockets,
        SPIRE_UID,
      },
      logging: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: 'init' }),
    });
    init.addMountPoints(
      { sourceVolume: 'spire-conf', containerPath: p.conf, readOnly: false },
      { sourceVolume: 'spire-sockets', containerPath: p.sockets, readOnly: false },
    );

    const server = this.taskDefinition.addContainer('spire-server', {
      image: ecs.ContainerImage.fromRegistry(props.image),
      essential: true,
      command: ['-config', p.confFile],
      user: `${SPIRE_UID}:${SPIRE_UID}`,
      readonlyRootFilesystem: true,
      healthCheck: {
        command: ['CMD', p.binary, 'healthcheck', '-socketPath', p.socket],
        interval: Duration.seconds(15),
        timeout: Duration.seconds(5),
        retries: 3,
        startPeriod: Duration.seconds(30),
      },
      logging: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: 'spire-server' }),
    });
    server.addMountPoints(
      { sourceVolume: 'spire-conf', containerPath: p.conf, readOnly: true },
      { sourceVolume: 'spire-sockets', containerPath: p.sockets, readOnly: false },
      { sourceVolume: 'spire-data', containerPath: p.data, readOnly: false },
    );
    server.addContainerDependencies({ container: init, condition: ecs.ContainerDependencyCondition.SUCCESS });

    const bridge = this.taskDefinition.addContainer('bridge', {
      image: sidecarImage,
      essential: true,
      command: ['node', 'spire/sidecar/server.mjs'],
      user: `${SPIRE_UID}:${SPIRE_UID}`,
      readonlyRootFilesystem: true,
      portMappings: [{ containerPort: BRIDGE_PORT, protocol: ecs.Protocol.TCP }],
      environment: {
        ACKD_BRIDGE_PORT: String(BRIDGE_PORT),
        SPIRE_SOCKET_PATH: p.socket,
        NODE_ENV: 'production',
      },
      secrets: { ACKD_BRIDGE_SECRET: ecs.Secret.fromSecretsManager(this.bridgeSecret) },
      healthCheck: {
        command: [
          'CMD',
          'node',
          '-e',
          `fetch('http://127.0.0.1:${BRIDGE_PORT}/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`,
        ],
        interval: Duration.seconds(15),
        timeout: Duration.seconds(5),
        retries: 3,
        startPeriod: Duration.seconds(20),
      },
      logging: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: 'bridge' }),
    });
    bridge.addMountPoints({ sourceVolume: 'spire-sockets', containerPath: p.sockets, readOnly: false });
    bridge.addContainerDependencies({ container: server, condition: ecs.ContainerDependencyCondition.HEALTHY });

    acknowledge(
      this.taskDefinition,
      'The environment variables are non-secret configuration (SPIRE server.conf, socket path, port); the one secret, the bridge HMAC key, is injected from Secrets Manager.',
      'AwsSolutions-ECS2',
    );
    acknowledge(
      this.taskDefinition.obtainExecutionRole(),
      'The ECS execution role needs ecr:GetAuthorizationToken (supports only Resource *) to pull the bridge image from the CDK asset repository; all other grants name their resources.',
      'AwsSolutions-IAM5[Resource::*]',
    );

    const cluster = new ecs.Cluster(this, 'Cluster', {
      vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
      defaultCloudMapNamespace: {
        name: `ackd-${props.stage}.internal`,
        type: servicediscovery.NamespaceType.DNS_PRIVATE,
        vpc,
      },
    });

    this.service = new ecs.FargateService(this, 'Service', {
      cluster,
      taskDefinition: this.taskDefinition,
      // Exactly one SPIRE server owns the datastore: never two tasks at once, so a change of this
      // task definition stops the old task before the new one starts (an issuance gap of a minute
      // or two, during which check_authorization fails closed with ERR_ISSUER_UNAVAILABLE and a
      // later check issues). Two servers are not safe on this datastore: SQLite on NFS (EFS) is not
      // a database two processes may write, and both would manage the same KMS keys (one
      // key_identifier_value). Running two needs a shared SQL datastore (Aurora PostgreSQL or
      // MySQL) and one key identifier per server: docs/spire.md, "Availability".
      desiredCount: 1,
      minHealthyPercent: 0,
      maxHealthyPercent: 100,
      vpcSubnets: privateSubnets,
      assignPublicIp: false,
      securityGroups: [this.securityGroup],
      circuitBreaker: { rollback: true },
      enableExecuteCommand: false,
      platformVersion: ecs.FargatePlatformVersion.LATEST,
      cloudMapOptions: { name: 'spire-bridge', dnsRecordType: servicediscovery.DnsRecordType.A, dnsTtl: Duration.seconds(10) },
    });

    this.bridgeUrl = `http://spire-bridge.ackd-${props.stage}.internal:${BRIDGE_PORT}`;
  }

  /** Lets `peer` (the MCP function) reach the bridge, and only the bridge port. */
  allowBridgeFrom(peer: ec2.ISecurityGroup): void {
    this.securityGroup.addIngressRule(peer, ec2.Port.tcp(BRIDGE_PORT), 'SPIRE bridge from the MCP function');
  }
}
