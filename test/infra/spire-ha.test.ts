/**
 * Issue 15 item 4, an available SPIRE: setting spireServers 2. Two SPIRE server tasks spread over
 * two AZs, replaced one at a time, sharing an Aurora PostgreSQL Serverless v2 datastore that only
 * they can reach (TLS required, encrypted, backed up, password from Secrets Manager as an ECS
 * secret), no SQLite and no EFS; each server with its own CA keys in KMS (its key identifier names
 * its ECS task), the task role limited to this stage's SPIRE aliases; the bridge discovered by DNS
 * with both tasks' addresses. Pinned on the synthesized template (no bundling); the init container
 * that names each server after its task runs here too, against a stand-in of ECS's task metadata
 * endpoint (a test double: there is no ECS here).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildSidecarContext } from '../../lib/constructs/sidecar-image.ts';
import { SPIRE_TASK_ID_MARKER } from '../../lib/constructs/spire.ts';
import type { AckdStack } from '../../lib/stacks/ackd-stack.ts';
import { resourcesOf, synthStack, type Json } from '../helpers/synth-stack.ts';

let t: Json;
let stack: AckdStack;
const R = () => t.Resources as Json;
const one = (type: string) => {
  const r = resourcesOf(t, type);
  expect(r.length, type).toBe(1);
  return r[0]!;
};
const idOf = (c: unknown) => stack.resolve(stack.getLogicalId((c as { node: { defaultChild: never } }).node.defaultChild)) as string;
const containers = () => one('AWS::ECS::TaskDefinition')[1].Properties.ContainerDefinitions as Json[];
const container = (name: string) => containers().find((c) => c.Name === name)!;
const env = (c: Json, name: string) => (c.Environment as Json[]).find((e) => e.Name === name)?.Value as unknown;
/** server.conf as the init container writes it, with the CloudFormation tokens in it named. */
const conf = () => {
  const v = env(container('init'), 'SPIRE_SERVER_CONF') as Json;
  const parts = v['Fn::Join'] ? (v['Fn::Join'][1] as unknown[]) : [v];
  return parts.map((p) => (typeof p === 'string' ? p : `<${JSON.stringify(p)}>`)).join('');
};

beforeAll(() => {
  ({ t, stack } = synthStack({ spireServers: 2 }));
}, 120_000);

describe('two SPIRE server tasks', () => {
  it('desiredCount 2, replaced one at a time (minHealthy 50, max 150), circuit breaker, AZ rebalancing, subnets in two AZs', () => {
    const [, svc] = one('AWS::ECS::Service');
    expect(svc.Properties.DesiredCount).toBe(2);
    expect(svc.Properties.DeploymentConfiguration).toMatchObject({ MinimumHealthyPercent: 50, MaximumPercent: 150, DeploymentCircuitBreaker: { Enable: true, Rollback: true } });
    expect(svc.Properties.AvailabilityZoneRebalancing).toBe('ENABLED');
    const subnets = svc.Properties.NetworkConfiguration.AwsvpcConfiguration.Subnets as Json[];
    expect(subnets).toHaveLength(2);
    const azs = subnets.map((s) => JSON.stringify(R()[s.Ref as string].Properties.AvailabilityZone));
    expect(new Set(azs).size).toBe(2);
  });

  it('the bridge is found by DNS with every healthy task\'s address (Cloud Map A records, multivalue): the MCP function reaches both', () => {
    const [sdId, sd] = one('AWS::ServiceDiscovery::Service');
    expect(sd.Properties.DnsConfig).toMatchObject({ RoutingPolicy: 'MULTIVALUE', DnsRecords: [{ Type: 'A', TTL: 10 }] });
    const [, svc] = one('AWS::ECS::Service');
    expect(svc.Properties.ServiceRegistries).toEqual([{ RegistryArn: { 'Fn::GetAtt': [sdId, 'Arn'] } }]);
  });
});

describe('the shared datastore: Aurora PostgreSQL, no SQLite, no EFS', () => {
  it('server.conf: DataStore sql with database_type postgres at the cluster endpoint, TLS required, the password only as $SPIRE_DB_PASSWORD; no sqlite3', () => {
    const c = conf();
    const [clusterId] = one('AWS::RDS::DBCluster');
    expect(c).toContain('database_type = "postgres"');
    expect(c).toContain(`host=<${JSON.stringify({ 'Fn::GetAtt': [clusterId, 'Endpoint.Address'] })}> port=5432 dbname=spire user=spire password=$SPIRE_DB_PASSWORD sslmode=require`);
    expect(c).not.toMatch(/sqlite/);
    const server = container('spire-server');
    expect(server.Command).toEqual(['-config', '/run/spire/conf/server.conf', '-expandEnv']);
    const [secretId] = one('AWS::SecretsManager::SecretTargetAttachment');
    expect(server.Secrets).toEqual([{ Name: 'SPIRE_DB_PASSWORD', ValueFrom: { 'Fn::Join': ['', [{ Ref: secretId }, ':password::']] } }]);
  });

  it('no EFS and no EFS backup: data_dir is task storage, handed to SPIRE\'s user by init', () => {
    expect(container('init').MountPoints).toContainEqual({ SourceVolume: 'spire-data', ContainerPath: '/run/spire/data', ReadOnly: false });
    expect(env(container('init'), 'SPIRE_DATA_DIR')).toBe('/run/spire/data');
    expect(resourcesOf(t, 'AWS::EFS::FileSystem')).toHaveLength(0);
    expect(resourcesOf(t, 'AWS::Backup::BackupPlan')).toHaveLength(0);
    const volumes = one('AWS::ECS::TaskDefinition')[1].Properties.Volumes as Json[];
    expect(volumes.find((v) => v.Name === 'spire-data')).toEqual({ Name: 'spire-data' });
    expect(JSON.stringify(volumes)).not.toContain('EFSVolumeConfiguration');
    expect(t.Outputs.SpireDatastoreArn).toBeUndefined();
    expect(t.Outputs.SpireDatabaseCluster.Value).toEqual({ Ref: one('AWS::RDS::DBCluster')[0] });
  });

  it('Aurora PostgreSQL Serverless v2: encrypted, private subnets, a writer and a reader, backups kept 35 days, TLS forced, logs exported', () => {
    const [, cluster] = one('AWS::RDS::DBCluster');
    expect(cluster.Properties).toMatchObject({
      Engine: 'aurora-postgresql',
      StorageEncrypted: true,
      BackupRetentionPeriod: 35,
      Port: 5432,
      DatabaseName: 'spire',
      EnableCloudwatchLogsExports: ['postgresql'],
      ServerlessV2ScalingConfiguration: { MinCapacity: 0.5, MaxCapacity: 4 },
    });
    const instances = resourcesOf(t, 'AWS::RDS::DBInstance');
    expect(instances).toHaveLength(2);
    for (const [, i] of instances) expect(i.Properties).toMatchObject({ DBInstanceClass: 'db.serverless', PubliclyAccessible: false });
    // The writer and the reader in different AZs.
    expect(new Set(instances.map(([, i]) => JSON.stringify(i.Properties.AvailabilityZone))).size).toBe(2);
    expect(instances.every(([, i]) => i.Properties.AvailabilityZone !== undefined)).toBe(true);
    const [, subnetGroup] = one('AWS::RDS::DBSubnetGroup');
    const privateIds = stack.node.findAll().filter((c) => c.node.path.includes('/Vpc/privateSubnet') && c.node.path.endsWith('/Subnet')).map((c) => stack.resolve(stack.getLogicalId(c as never)) as string);
    expect((subnetGroup.Properties.SubnetIds as Json[]).map((s) => s.Ref).sort()).toEqual(privateIds.sort());
    const [, params] = one('AWS::RDS::DBClusterParameterGroup');
    expect(params.Properties.Parameters).toMatchObject({ 'rds.force_ssl': '1' });
    // Outside prod the datastore is disposable; prod is pinned below.
    expect(cluster.Properties.DeletionProtection).toBe(false);
  });

  it('only the SPIRE tasks reach the database, on 5432; the database reaches nothing', () => {
    const [, cluster] = one('AWS::RDS::DBCluster');
    const dbSg = (cluster.Properties.VpcSecurityGroupIds as Json[])[0]!['Fn::GetAtt'][0] as string;
    const taskSg = idOf(stack.spire.securityGroup);
    const ingress = [
      ...((R()[dbSg].Properties.SecurityGroupIngress as Json[] | undefined) ?? []),
      ...resourcesOf(t, 'AWS::EC2::SecurityGroupIngress').filter(([, r]) => r.Properties.GroupId?.['Fn::GetAtt']?.[0] === dbSg).map(([, r]) => r.Properties as Json),
    ];
    expect(ingress).toEqual([expect.objectContaining({ IpProtocol: 'tcp', FromPort: 5432, ToPort: 5432, SourceSecurityGroupId: { 'Fn::GetAtt': [taskSg, 'GroupId'] } })]);
    expect(R()[dbSg].Properties.SecurityGroupEgress).toEqual([expect.objectContaining({ CidrIp: '255.255.255.255/32' })]); // CDK's "no egress"
  });

  it('prod: deletion protection on, a snapshot when the stack is deleted', () => {
    const prod = synthStack({ stage: 'prod', spireServers: 2 }).t;
    const [, cluster] = resourcesOf(prod, 'AWS::RDS::DBCluster')[0]!;
    expect(cluster.Properties.DeletionProtection).toBe(true);
    expect(cluster.DeletionPolicy).toBe('Snapshot');
  }, 120_000);
});

describe('each server its own CA keys in KMS', () => {
  it('the key identifier names the task (the init container fills in the ECS task id); the task role is limited to this stage\'s SPIRE aliases', () => {
    expect(conf()).toContain(`key_identifier_value = "ackd-ci_${SPIRE_TASK_ID_MARKER}"`);
    expect(env(container('init'), 'SPIRE_CONF_TASK_ID_MARKER')).toBe(SPIRE_TASK_ID_MARKER);
    const role = idOf(stack.spire.taskDefinition.taskRole);
    const stmts = resourcesOf(t, 'AWS::IAM::Policy')
      .filter(([, p]) => (p.Properties.Roles as Json[]).some((r) => r.Ref === role))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Json[]);
    const use = stmts.find((s) => s.Sid === 'SpireKmsKeyManagerUseOwnKeys')!;
    expect(use.Condition).toEqual({ 'ForAnyValue:StringLike': { 'kms:ResourceAliases': ['alias/SPIRE_SERVER/agents_acme-corp_io/ackd-ci/*', 'alias/SPIRE_SERVER/agents_acme-corp_io/ackd-ci_*/*'] } });
  });

  it('init: replaces the marker with the task id from the task metadata endpoint; refuses to start without one', async () => {
    const contextDir = buildSidecarContext();
    const dir = mkdtempSync(join(tmpdir(), 'ackd-init-ha-'));
    let taskArn: unknown = 'arn:aws:ecs:eu-west-1:123456789012:task/ackd-ci/0123456789abcdef0123456789abcdef';
    const metadata = createServer((req, res) => {
      res.writeHead(req.url === '/v4/abc/task' ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify({ TaskARN: taskArn }));
    });
    await new Promise<void>((r) => metadata.listen(0, '127.0.0.1', r));
    const run = () =>
      new Promise<number | null>((resolve) => {
        spawn(process.execPath, [join(contextDir, 'spire/sidecar/init.mjs')], {
          env: {
            SPIRE_SERVER_CONF: `key_identifier_value = "ackd-ci_${SPIRE_TASK_ID_MARKER}"\n`,
            SPIRE_CONF_FILE: join(dir, 'conf/server.conf'),
            SPIRE_SOCKET_DIR: join(dir, 'sockets'),
            SPIRE_UID: String(process.getuid!()),
            SPIRE_CONF_TASK_ID_MARKER: SPIRE_TASK_ID_MARKER,
            SPIRE_DATA_DIR: join(dir, 'data'),
            ECS_CONTAINER_METADATA_URI_V4: `http://127.0.0.1:${(metadata.address() as AddressInfo).port}/v4/abc`,
          },
          stdio: 'ignore',
        }).on('exit', resolve);
      });
    try {
      expect(await run()).toBe(0);
      expect(readFileSync(join(dir, 'conf/server.conf'), 'utf8')).toBe('key_identifier_value = "ackd-ci_0123456789abcdef0123456789abcdef"\n');
      expect(statSync(join(dir, 'data')).mode & 0o777).toBe(0o700);
      taskArn = undefined;
      rmSync(join(dir, 'conf'), { recursive: true });
      expect(await run()).toBe(2);
      expect(() => readFileSync(join(dir, 'conf/server.conf'))).toThrow();
    } finally {
      metadata.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
