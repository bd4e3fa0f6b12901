import { Aws, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as backup from 'aws-cdk-lib/aws-backup';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
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
/** Replaced by the init container with the ECS task id (spire/sidecar/init.ts): each HA server's own key identifier. */
export const SPIRE_TASK_ID_MARKER = '{{ecs_task_id}}';
/** The PostgreSQL port of the HA datastore. */
export const SPIRE_DB_PORT = 5432;
/** Database and user of the HA datastore (the password is generated into Secrets Manager). */
export const SPIRE_DB_NAME = 'spire';
/** The spire-server environment variable holding the datastore password (an ECS secret; expanded by `-expandEnv`). */
export const SPIRE_DB_PASSWORD_ENV = 'SPIRE_DB_PASSWORD';

/**
 * The server id of SPIRE's aws_kms key manager (key_identifier_value): it names the server's own
 * CA keys (`alias/SPIRE_SERVER/<trust domain>/<server id>/…`). One server: `ackd-<stage>`, stable
 * across task replacements. Two (HA): `ackd-<stage>_<ECS task id>`, so the two tasks never share
 * (or race on) keys; a replaced task's keys go stale and the servers still running prune them after
 * two weeks (SPIRE's stale-alias scan). `_` cannot occur in a stage name, so the stage `dev` never
 * matches the keys of a stage `dev-2`.
 */
export function spireServerId(stage: string, servers: SpireServers): string {
  return servers === 1 ? `ackd-${stage}` : `ackd-${stage}_${SPIRE_TASK_ID_MARKER}`;
}

/**
 * SPIRE's aws_kms key manager aliases its keys `alias/SPIRE_SERVER/<trust domain>/<server id>/<key id>`.
 * The aliases this stage's SPIRE servers may use and manage, as SPIRE writes them (the trust
 * domain with `.` → `_`): the single server's and every HA server's, so a stage switched between
 * the two shapes can still prune the keys of the other. Nothing of another stage or trust domain.
 */
export function spireAliasPatterns(trustDomain: string, stage: string): string[] {
  const prefix = `alias/SPIRE_SERVER/${trustDomain.replaceAll('.', '_')}`;
  return [`${prefix}/ackd-${stage}/*`, `${prefix}/ackd-${stage}_*/*`];
}

/** How many SPIRE servers run (setting spireServers): one on SQLite over EFS, or two on Aurora PostgreSQL. */
export type SpireServers = 1 | 2;
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
  /** Setting spireServers: 1 (default) or 2 (HA, shared Aurora PostgreSQL datastore). */
  readonly servers?: SpireServers;
}

/** Where the SPIRE datastore is: SQLite on the task's EFS volume, or the shared PostgreSQL cluster. */
export type SpireDatastore = { readonly kind: 'sqlite' } | { readonly kind: 'postgres'; readonly host: string; readonly port: number };

/** The DataStore "sql" plugin_data: SQLite in data_dir, or PostgreSQL over TLS with the password from the environment. */
function datastoreConf(d: SpireDatastore): string {
  if (d.kind === 'sqlite') {
    return `            database_type = "sqlite3"
            connection_string = "${SPIRE_TASK_PATHS.data}/datastore.sqlite3"`;
  }
  // sslmode=require: TLS always (the cluster also refuses plaintext: rds.force_ssl). The password
  // is expanded by spire-server (-expandEnv) from its ECS secret; it is never in this file.
  return `            database_type = "postgres"
            connection_string = "host=${d.host} port=${d.port} dbname=${SPIRE_DB_NAME} user=${SPIRE_DB_NAME} password=$${SPIRE_DB_PASSWORD_ENV} sslmode=require connect_timeout=10"
            max_open_conns = 20
            max_idle_conns = 5
            conn_max_lifetime = "300s"`;
}

/** The SPIRE server configuration (HCL), written into the task by the init container. */
export function spireServerConf(input: { trustDomain: string; region: string; keyIdentifier: string; datastore?: SpireDatastore }): string {
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
${datastoreConf(input.datastore ?? { kind: 'sqlite' })}
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
 * SPIRE on ECS Fargate, in private subnets. Each task runs three containers:
 *  - `init` writes server.conf and prepares the admin-socket directory (then exits),
 *  - `spire-server` (the official image) with its CA keys in KMS (`aws_kms` key manager: the CA
 *    private keys never leave KMS) and its datastore: SQLite on encrypted EFS with one server
 *    (`servers: 1`), or a shared Aurora PostgreSQL Serverless v2 cluster with two (`servers: 2`, HA),
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
  /** 1 or 2 SPIRE servers (tasks). */
  readonly servers: SpireServers;
  /** One server: the EFS file system of its SQLite datastore. */
  readonly fileSystem: efs.FileSystem | undefined;
  /** One server: where the datastore's backups go (daily, kept 35 days; on demand before an upgrade). */
  readonly backupVault: backup.BackupVault | undefined;
  /** One server: the role AWS Backup uses for the datastore: `aws backup start-backup-job --iam-role-arn` (docs/spire.md). */
  readonly backupRole: iam.IRole | undefined;
  /** Two servers: the shared Aurora PostgreSQL datastore (automated backups 35 days; a snapshot before an upgrade). */
  readonly database: rds.DatabaseCluster | undefined;
  /** Two servers: the datastore's security group (5432 from the SPIRE tasks only). */
  readonly databaseSecurityGroup: ec2.SecurityGroup | undefined;

  constructor(scope: Construct, id: string, props: SpireProps) {
    super(scope, id);
    const p = SPIRE_TASK_PATHS;
    const { vpc } = props;
    const servers = props.servers ?? 1;
    this.servers = servers;
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

    let accessPoint: efs.AccessPoint | undefined;
    let datastore: SpireDatastore = { kind: 'sqlite' };
    if (servers === 1) {
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

      accessPoint = this.fileSystem.addAccessPoint('SpireData', {
        path: '/spire-data',
        posixUser: { uid: SPIRE_UID, gid: SPIRE_UID },
        createAcl: { ownerUid: SPIRE_UID, ownerGid: SPIRE_UID, permissions: '700' },
      });
      this.database = undefined;
      this.databaseSecurityGroup = undefined;
    } else {
      this.fileSystem = undefined;
      this.backupVault = undefined;
      this.backupRole = undefined;
      ({ cluster: this.database, securityGroup: this.databaseSecurityGroup } = this.sharedDatastore(vpc, privateSubnets, props));
      datastore = { kind: 'postgres', host: this.database.clusterEndpoint.hostname, port: SPIRE_DB_PORT };
    }

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
        // One server: SQLite on EFS. Two: data_dir is task storage (nothing of value in it: the
        // datastore is PostgreSQL, the keys are in KMS).
        this.fileSystem && accessPoint
          ? {
              name: 'spire-data',
              efsVolumeConfiguration: {
                fileSystemId: this.fileSystem.fileSystemId,
                transitEncryption: 'ENABLED',
                authorizationConfig: { accessPointId: accessPoint.accessPointId, iam: 'ENABLED' },
              },
            }
          : { name: 'spire-data' },
      ],
    });
    const taskRole = this.taskDefinition.taskRole;
    this.fileSystem?.grant(taskRole, 'elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite');
    // SPIRE's aws_kms key manager (spire/pkg/server/plugin/keymanager/awskms) creates its CA keys
    // with a key policy naming this task role (kms:*), aliases each `alias/SPIRE_SERVER/<trust
    // domain>/<server id>/<key id>`, and on rotation moves the alias to the new key and schedules
    // the old one for deletion. Its own keys are therefore usable through their key policies; the
    // IAM statements below must not reach any other key in the account — above all the audit
    // checkpoint key (constructs/audit.ts), which only the sweeper may sign with.
    const keyArns = `arn:${Aws.PARTITION}:kms:${Aws.REGION}:${Aws.ACCOUNT_ID}:key/*`;
    const aliasPatterns = spireAliasPatterns(props.trustDomain, props.stage);
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
        // Narrower still: only this stage's servers' aliases in this trust domain (spireAliasPatterns).
        conditions: { 'ForAnyValue:StringLike': { 'kms:ResourceAliases': aliasPatterns } },
      }),
    );
    taskRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'SpireKmsKeyManagerAliases',
        // The alias side only: the key side of Create/Update/DeleteAlias is granted by the key
        // policy SPIRE writes on its own keys, never by IAM on key/*.
        actions: ['kms:CreateAlias', 'kms:UpdateAlias', 'kms:DeleteAlias'],
        resources: aliasPatterns.map((a) => `arn:${Aws.PARTITION}:kms:${Aws.REGION}:${Aws.ACCOUNT_ID}:${a}`),
      }),
    );
    acknowledge(
      taskRole,
      "SPIRE's aws_kms key manager creates and rotates its own CA keys at run time: kms:CreateKey, ListKeys, ListAliases (and tagging at creation) support only Resource *; DescribeKey (metadata) is on keys of this account and region; Sign, GetPublicKey and ScheduleKeyDeletion only on keys carrying an alias of this stage's SPIRE servers in this trust domain (kms:ResourceAliases condition); aliases only under those prefixes (alias/SPIRE_SERVER/<trust domain>/ackd-<stage>/ and …/ackd-<stage>_<task>/). The CA private keys never leave KMS.",
      'AwsSolutions-IAM5[Resource::*]',
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/*]',
      ...aliasPatterns.map((a) => `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:${a}]`),
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
          keyIdentifier: spireServerId(props.stage, servers),
          datastore,
        }),
        SPIRE_CONF_FILE: p.confFile,
        SPIRE_SOCKET_DIR: p.sockets,
        SPIRE_UID,
        // HA: each task's server id names its own task (ECS task metadata), so the two never share keys.
        ...(servers === 2 ? { SPIRE_CONF_TASK_ID_MARKER: SPIRE_TASK_ID_MARKER } : {}),
      },
      logging: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: 'init' }),
    });
    init.addMountPoints(
      { sourceVolume: 'spire-conf', containerPath: p.conf, readOnly: false },
      { sourceVolume: 'spire-sockets', containerPath: p.sockets, readOnly: false },
    );
    if (servers === 2) {
      // Task storage is root's when the task starts (EFS's access point sets the owner in the
      // one-server shape): init hands data_dir to SPIRE_UID, mode 0700.
      init.addMountPoints({ sourceVolume: 'spire-data', containerPath: p.data, readOnly: false });
      init.addEnvironment('SPIRE_DATA_DIR', p.data);
    }

    const server = this.taskDefinition.addContainer('spire-server', {
      image: ecs.ContainerImage.fromRegistry(props.image),
      essential: true,
      // -expandEnv: the HA datastore's password comes from the environment (an ECS secret), never the file.
      command: servers === 2 ? ['-config', p.confFile, '-expandEnv'] : ['-config', p.confFile],
      ...(this.database?.secret ? { secrets: { [SPIRE_DB_PASSWORD_ENV]: ecs.Secret.fromSecretsManager(this.database.secret, 'password') } } : {}),
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
      // One server (SQLite on EFS) owns its datastore: never two tasks at once, so a change of this
      // task definition stops the old task before the new one starts (an issuance gap of a minute
      // or two, during which check_authorization fails closed with ERR_ISSUER_UNAVAILABLE and a
      // later check issues). SQLite on NFS is not a database two processes may write, and both
      // would manage the same KMS keys (one key_identifier_value).
      // Two servers (HA) share PostgreSQL and each has its own keys: a deployment starts one new
      // task before it stops an old one (maxHealthyPercent 150) and never runs fewer than one
      // (minHealthyPercent 50: one keeps issuing); the tasks are spread over the two AZs' private
      // subnets, and ECS rebalances them when an AZ comes back. docs/spire.md, "Availability".
      desiredCount: servers,
      minHealthyPercent: servers === 1 ? 0 : 50,
      maxHealthyPercent: servers === 1 ? 100 : 150,
      ...(servers === 2 ? { availabilityZoneRebalancing: ecs.AvailabilityZoneRebalancing.ENABLED } : {}),
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

  /**
   * The HA datastore: Aurora PostgreSQL Serverless v2 in the private subnets, a writer and a reader
   * in the other AZ (failover in about half a minute), storage encrypted, TLS required
   * (rds.force_ssl), automated backups kept 35 days, deletion protection and a final snapshot when
   * data is retained (prod). The password is generated into Secrets Manager (no punctuation: it sits
   * in a libpq key=value string) and reaches spire-server as an ECS secret. Only the SPIRE tasks
   * reach it, on 5432.
   */
  private sharedDatastore(vpc: ec2.IVpc, subnets: ec2.SubnetSelection, props: SpireProps): { cluster: rds.DatabaseCluster; securityGroup: ec2.SecurityGroup } {
    const securityGroup = new ec2.SecurityGroup(this, 'DatabaseSg', { vpc, description: 'ackd SPIRE datastore (Aurora PostgreSQL): 5432 from the SPIRE tasks only', allowAllOutbound: false });
    securityGroup.addIngressRule(this.securityGroup, ec2.Port.tcp(SPIRE_DB_PORT), 'PostgreSQL from the SPIRE tasks only');
    const engine = rds.DatabaseClusterEngine.auroraPostgres({ version: rds.AuroraPostgresEngineVersion.VER_16_13 });
    const clusterIdentifier = `ackd-${props.stage}-spire`;
    // The exported PostgreSQL log, made here with the stack's retention (RDS would create it
    // without one, and CDK's retention setter is a custom-resource Lambda).
    const dbLogs = new logs.LogGroup(this, 'DatabaseLogs', {
      logGroupName: `/aws/rds/cluster/${clusterIdentifier}/postgresql`,
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const parameterGroup = new rds.ParameterGroup(this, 'DatabaseParams', {
      engine,
      description: 'ackd SPIRE datastore: TLS only, connections logged',
      parameters: { 'rds.force_ssl': '1', log_connections: '1', log_disconnections: '1' },
    });
    const cluster = new rds.DatabaseCluster(this, 'Database', {
      engine,
      parameterGroup,
      vpc,
      vpcSubnets: subnets,
      securityGroups: [securityGroup],
      port: SPIRE_DB_PORT,
      defaultDatabaseName: SPIRE_DB_NAME,
      credentials: rds.Credentials.fromGeneratedSecret(SPIRE_DB_NAME, { excludeCharacters: ' %+~`#$&*()|[]{}:;<>?!\'/@"\\,=^.-_' }),
      // One instance per AZ, so losing an AZ promotes the reader instead of waiting for a new writer.
      writer: rds.ClusterInstance.serverlessV2('Writer', { availabilityZone: vpc.availabilityZones[0], autoMinorVersionUpgrade: true, enablePerformanceInsights: false }),
      readers: [rds.ClusterInstance.serverlessV2('Reader', { availabilityZone: vpc.availabilityZones[1], scaleWithWriter: true, autoMinorVersionUpgrade: true, enablePerformanceInsights: false })],
      serverlessV2MinCapacity: 0.5,
      serverlessV2MaxCapacity: 4,
      storageEncrypted: true,
      iamAuthentication: false,
      backup: { retention: Duration.days(35), preferredWindow: '04:00-05:00' },
      preferredMaintenanceWindow: 'sun:05:30-sun:06:30',
      clusterIdentifier,
      cloudwatchLogsExports: ['postgresql'],
      deletionProtection: props.retainData,
      removalPolicy: props.retainData ? RemovalPolicy.SNAPSHOT : RemovalPolicy.DESTROY,
      copyTagsToSnapshot: true,
    });
    cluster.node.addDependency(dbLogs);
    acknowledge(
      cluster,
      'IAM database authentication would need a database user created by SQL (a custom resource with its own credentials); spire-server authenticates with a generated password instead, injected as an ECS secret, over TLS (rds.force_ssl), to a cluster only the SPIRE tasks can reach (security group).',
      'AwsSolutions-RDS6',
    );
    if (!props.retainData) {
      acknowledge(
        cluster,
        'Deletion protection is on where data is retained (prod); in other stages the SPIRE datastore is disposable (SVIDs live at most an hour; a new datastore starts a new CA) and `cdk destroy` must be able to remove it.',
        'AwsSolutions-RDS10',
        'HIPAA.Security-RDSInstanceDeletionProtectionEnabled',
        'NIST.800.53.R5-RDSInstanceDeletionProtectionEnabled',
      );
    }
    for (const instance of ['Writer', 'Reader']) {
      acknowledge(
        cluster.node.findChild(instance),
        "Aurora's automated backups (35 days, point-in-time restore) and a manual snapshot before every SPIRE upgrade (docs/spire.md) back up the cluster; an AWS Backup plan would duplicate them. Enhanced Monitoring (per-second OS metrics, an extra IAM role) adds nothing the CloudWatch RDS metrics, the PostgreSQL log and the SPIRE task alarm do not already show for a datastore this small.",
        ...['HIPAA.Security', 'NIST.800.53.R5'].flatMap((pack) => [`${pack}-RDSInBackupPlan`, `${pack}-RDSEnhancedMonitoringEnabled`]),
      );
    }
    acknowledge(
      cluster.node.findChild('Secret'),
      'The datastore password is read by spire-server only when a task starts, so an automatic rotation would break the running servers\' new connections until they restart; it is rotated by hand (docs/spire.md, "Availability": change the secret, then force a new deployment of the SPIRE service). Encrypted by Secrets Manager with the AWS-managed key; only the SPIRE task execution role may read it.',
      'AwsSolutions-SMG4',
      'HIPAA.Security-SecretsManagerRotationEnabled',
      'NIST.800.53.R5-SecretsManagerRotationEnabled',
      'HIPAA.Security-SecretsManagerUsingKMSKey',
      'NIST.800.53.R5-SecretsManagerUsingKMSKey',
    );
    return { cluster, securityGroup };
  }

  /** Lets `peer` (the MCP function) reach the bridge, and only the bridge port. */
  allowBridgeFrom(peer: ec2.ISecurityGroup): void {
    this.securityGroup.addIngressRule(peer, ec2.Port.tcp(BRIDGE_PORT), 'SPIRE bridge from the MCP function');
  }
}
