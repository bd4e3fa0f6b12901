import { Aspects } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type { DeployConfig } from '../config.ts';
import { acknowledge } from '../nag.ts';

/** The VPC's address range (CDK's default, written out so security group rules can name it literally). */
export const VPC_CIDR = '10.0.0.0/16';

/**
 * Automatic security updates on the NAT instances (Amazon Linux 2023's dnf-automatic, daily,
 * security advisories only). Kernel updates take effect at the next replacement: a deploy that
 * resolves a newer AMI replaces the instance (docs/operations.md, "NAT instances").
 */
export const NAT_INSTANCE_UPDATE_COMMANDS = [
  'dnf install -y dnf-automatic',
  "sed -i -e 's/^upgrade_type *=.*/upgrade_type = security/' -e 's/^apply_updates *=.*/apply_updates = yes/' /etc/dnf/automatic.conf",
  'systemctl enable --now dnf-automatic.timer',
];

/**
 * What does the VPC's NAT (setting natProvider):
 *  - `gateway`: managed NAT gateways (default): highly available within their AZ, nothing to patch;
 *  - `instance`: EC2 NAT instances (NatProvider.instanceV2, Amazon Linux 2023, setting
 *    natInstanceType, a Graviton t4g.nano by default): about $29 a month less per NAT, at the price
 *    of an instance that is yours to keep running. Their security group admits traffic from inside
 *    the VPC only (the default would admit the internet too); IMDSv2 only, encrypted root volume.
 */
export function natProviderFor(config: Pick<DeployConfig, 'natProvider' | 'natInstanceType'>): ec2.NatProvider {
  if (config.natProvider === 'gateway') return ec2.NatProvider.gateway();
  const userData = ec2.UserData.forLinux();
  userData.addCommands(...ec2.NatInstanceProviderV2.DEFAULT_USER_DATA_COMMANDS, ...NAT_INSTANCE_UPDATE_COMMANDS);
  return ec2.NatProvider.instanceV2({
    instanceType: new ec2.InstanceType(config.natInstanceType),
    defaultAllowedTraffic: ec2.NatTrafficDirection.OUTBOUND_ONLY,
    userData,
    associatePublicIpAddress: true,
  });
}

/**
 * After the VPC exists, for NAT instances (nothing for gateways): their security group accepts what
 * the VPC sends (all protocols: webhooks may use other ports than 443), nothing from outside; IMDSv2
 * only; the root volume encrypted. Returns the instances (the stack alarms on their status checks).
 */
export function finishNat(provider: ec2.NatProvider, vpc: ec2.Vpc): ec2.Instance[] {
  if (!(provider instanceof ec2.NatInstanceProviderV2)) return [];
  provider.connections.allowFrom(ec2.Peer.ipv4(VPC_CIDR), ec2.Port.allTraffic(), 'NAT for the private subnets');
  acknowledge(
    provider.securityGroup,
    `The NAT instances' security group admits traffic only from inside the VPC (${VPC_CIDR}), on every port because it forwards what the private subnets send (HTTPS, and webhook routes on other ports); nothing from the internet reaches it.`,
    'HIPAA.Security-EC2RestrictedCommonPorts',
    'NIST.800.53.R5-EC2RestrictedCommonPorts',
  );
  const instances = vpc.publicSubnets.flatMap((s) => {
    const i = s.node.tryFindChild('NatInstance');
    return i instanceof ec2.Instance ? [i] : [];
  });
  for (const instance of instances) {
    Aspects.of(instance).add(new ec2.InstanceRequireImdsv2Aspect());
    // Amazon Linux 2023's root device; encrypted with the account's default EBS key.
    (instance.node.defaultChild as ec2.CfnInstance).blockDeviceMappings = [{ deviceName: '/dev/xvda', ebs: { encrypted: true, volumeType: 'gp3', deleteOnTermination: true } }];
    acknowledge(
      instance,
      'A NAT instance (setting natProvider instance) must have a public IP and sit in a public subnet to forward the private subnets\' traffic: that is its job. It is in the VPC (its network interface names the public subnet; the rule reads only SubnetId). Its security group admits only the VPC\'s range. It is replaceable by design (a deploy with a newer AMI replaces it), so no termination protection; its status checks alarm (constructs/observability.ts), and basic monitoring suffices for them.',
      'AwsSolutions-EC28',
      'AwsSolutions-EC29',
      'HIPAA.Security-EC2InstanceNoPublicIp',
      'NIST.800.53.R5-EC2InstanceNoPublicIp',
      'HIPAA.Security-EC2InstancesInVPC',
      'NIST.800.53.R5-EC2InstancesInVPC',
      'HIPAA.Security-EC2InstanceDetailedMonitoringEnabled',
    );
  }
  return instances;
}
