/**
 * Issue 15 item 9, the cheaper shape: setting natProvider (gateway | instance). With `instance`
 * the VPC's NAT is EC2 NAT instances (NatProvider.instanceV2, Amazon Linux 2023 on Graviton)
 * instead of NAT gateways: locked down (VPC-only ingress, IMDSv2, encrypted root volume) and
 * watched (a status-check alarm each). The default stays NAT gateways.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDeployConfig, DeployConfigError } from '../../lib/config.ts';
import { VPC_CIDR } from '../../lib/constructs/nat.ts';
import { resourcesOf, synthStack, type Json } from '../helpers/synth-stack.ts';

let gw: Json;
let inst: Json;

beforeAll(() => {
  gw = synthStack().t;
  inst = synthStack({ natProvider: 'instance', natGateways: 2, natInstanceType: 't4g.micro' }).t;
}, 240_000);

describe('natProvider gateway (default)', () => {
  it('NAT gateways with their Elastic IPs, no NAT instance', () => {
    expect(resourcesOf(gw, 'AWS::EC2::NatGateway')).toHaveLength(1);
    expect(resourcesOf(gw, 'AWS::EC2::Instance')).toHaveLength(0);
    expect(Object.keys(gw.Resources as Json).some((id) => id.includes('StatusCheck'))).toBe(false);
  });
});

describe('natProvider instance', () => {
  const instances = () => resourcesOf(inst, 'AWS::EC2::Instance');

  it('one NAT instance per natGateways, of natInstanceType, on the ARM64 Amazon Linux 2023 image; no NAT gateway', () => {
    expect(resourcesOf(inst, 'AWS::EC2::NatGateway')).toHaveLength(0);
    expect(instances()).toHaveLength(2);
    for (const [, i] of instances()) {
      expect(i.Properties).toMatchObject({ InstanceType: 't4g.micro', SourceDestCheck: false });
      const image = (inst.Parameters as Json)[i.Properties.ImageId.Ref as string] as Json;
      expect(image.Default).toMatch(/al2023-ami-kernel-.*-arm64$/);
    }
    // Each private subnet routes its default route through an instance.
    const viaInstance = resourcesOf(inst, 'AWS::EC2::Route').filter(([, r]) => r.Properties.DestinationCidrBlock === '0.0.0.0/0' && r.Properties.InstanceId);
    expect(viaInstance).toHaveLength(2);
  });

  it('reachable only from the VPC; IMDSv2 only; an encrypted root volume; security updates applied daily', () => {
    const sgIds = new Set(instances().flatMap(([, i]) => (i.Properties.NetworkInterfaces as Json[]).flatMap((n) => (n.GroupSet as Json[]).map((g) => g['Fn::GetAtt'][0] as string))));
    expect(sgIds.size).toBe(1);
    const sg = (inst.Resources as Json)[[...sgIds][0]!] as Json;
    expect(sg.Properties.SecurityGroupIngress).toEqual([expect.objectContaining({ CidrIp: VPC_CIDR, IpProtocol: '-1' })]);
    const extraIngress = resourcesOf(inst, 'AWS::EC2::SecurityGroupIngress').filter(([, r]) => r.Properties.GroupId?.['Fn::GetAtt']?.[0] === [...sgIds][0]);
    expect(extraIngress).toEqual([]);
    for (const [, i] of instances()) {
      expect(i.Properties.BlockDeviceMappings).toEqual([{ DeviceName: '/dev/xvda', Ebs: { DeleteOnTermination: true, Encrypted: true, VolumeType: 'gp3' } }]);
      const lt = (inst.Resources as Json)[i.Properties.LaunchTemplate.Version['Fn::GetAtt'][0] as string] as Json;
      expect(lt.Properties.LaunchTemplateData.MetadataOptions).toMatchObject({ HttpTokens: 'required' });
      expect(JSON.stringify(i.Properties.UserData)).toContain('dnf-automatic.timer');
    }
  });

  it('each instance has a status-check alarm to the alarm topic (missing data breaches: a stopped instance alarms)', () => {
    const alarms = resourcesOf(inst, 'AWS::CloudWatch::Alarm').filter(([, a]) => a.Properties.MetricName === 'StatusCheckFailed');
    expect(alarms).toHaveLength(2);
    const watched = alarms.map(([, a]) => (a.Properties.Dimensions as Json[])[0]!.Value.Ref as string).sort();
    expect(watched).toEqual(instances().map(([id]) => id).sort());
    for (const [, a] of alarms) {
      expect(a.Properties).toMatchObject({ Namespace: 'AWS/EC2', TreatMissingData: 'breaching', Threshold: 1 });
      expect(a.Properties.AlarmActions).toHaveLength(1);
    }
  });
});

describe('the settings', () => {
  const src = (context: Record<string, unknown>) => ({
    context: (k: string) => ({ 'ackd:stage': 'dev', 'ackd:trustDomain': 'agents.acme-corp.io', 'ackd:approverEmails': 'a@acme-corp.io', 'ackd:sender': 'acme-corp.io', ...context })[k],
    env: {},
  });
  const refusal = (context: Record<string, unknown>) => {
    try {
      loadDeployConfig(src(context));
    } catch (e) {
      if (e instanceof DeployConfigError) return e;
      throw e;
    }
    throw new Error('accepted');
  };

  it('default gateway; instance takes t4g.nano unless natInstanceType says otherwise', () => {
    expect(loadDeployConfig(src({}))).toMatchObject({ natProvider: 'gateway' });
    expect(loadDeployConfig(src({ 'ackd:natProvider': 'instance' }))).toMatchObject({ natProvider: 'instance', natInstanceType: 't4g.nano' });
    expect(loadDeployConfig({ ...src({}), env: { ACKD_DEPLOY_NAT_PROVIDER: 'instance', ACKD_DEPLOY_NAT_INSTANCE_TYPE: 'c7gn.medium' } })).toMatchObject({ natProvider: 'instance', natInstanceType: 'c7gn.medium' });
  });

  it('refuses an unknown provider, a malformed type, and a type without natProvider instance, naming the setting', () => {
    expect(refusal({ 'ackd:natProvider': 'endpoints' })).toMatchObject({ setting: 'natProvider', message: expect.stringMatching(/gateway or instance/) });
    expect(refusal({ 'ackd:natProvider': 'instance', 'ackd:natInstanceType': 'nano' })).toMatchObject({ setting: 'natInstanceType' });
    expect(refusal({ 'ackd:natInstanceType': 't4g.nano' })).toMatchObject({ setting: 'natInstanceType', message: expect.stringMatching(/only with natProvider instance/) });
  });
});
