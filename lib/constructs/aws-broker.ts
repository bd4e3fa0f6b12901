import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as cr from 'aws-cdk-lib/custom-resources';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { brokerTrustPolicy, type AwsRoleMap } from '../../lambdas/core/aws-roles.ts';
import { roleNameOf } from '../../lambdas/adapters/aws/iam.ts';
import { acknowledge } from '../nag.ts';

/** The id CDK gives AwsCustomResource's provider function (one per stack). */
export const AWS_CUSTOM_RESOURCE_PROVIDER = 'AWS679f53fac002430cb0da5b7982bd2287';

export interface AwsBrokerProps {
  /** The roles an approval may open (deploy setting `awsRoles`). */
  readonly roles: AwsRoleMap;
  /** The function that serves POST /v1/aws/credentials (the AWS credentials function): the only one that may assume the roles. */
  readonly broker: lambda.IFunction;
  /** Functions that revoke requests (the MCP and consent functions): their revocation denies the request's sessions on its roles. */
  readonly revokers: readonly lambda.IFunction[];
  /** The function that reconciles and removes revocation denies (the sweeper). */
  readonly sweeper: lambda.IFunction;
}

/** The role map as the functions read it (ACKD_AWS_ROLES). */
export function awsRolesEnv(roles: AwsRoleMap): string {
  return JSON.stringify(
    Object.fromEntries([...roles.values()].map((r) => [r.name, { roleArn: r.roleArn, maxSessionSeconds: r.maxSessionSeconds, ...(r.sessionPolicy ? { sessionPolicy: JSON.parse(r.sessionPolicy) as unknown } : {}) }])),
  );
}

/**
 * The AWS credential broker's permissions (issue 17):
 * - the broker function may `sts:AssumeRole` and `sts:TagSession` on exactly the configured roles,
 *   nothing else;
 * - each configured role's trust policy is set to trust only the broker's role, and only with
 *   ackd's session tags (`aws:RequestTag/ackd_request_id` etc.): a custom resource calls
 *   `iam:UpdateAssumeRolePolicy` on every deploy (the role itself is the operator's; its trust
 *   policy is replaced, so use roles dedicated to ackd);
 * - revoking functions may put inline deny policies on those roles (`iam:PutRolePolicy`), the
 *   sweeper may also list and delete them; the broker, which never revokes, may not.
 * The broker, the revokers and the sweeper get the role map (ACKD_AWS_ROLES): the MCP function
 * refuses unknown `aws:role/` permissions at request time with it.
 */
export class AwsBroker extends Construct {
  constructor(scope: Construct, id: string, props: AwsBrokerProps) {
    super(scope, id);
    const arns = [...new Set([...props.roles.values()].map((r) => r.roleArn))].sort();
    const env = awsRolesEnv(props.roles);
    const fns = [...new Set([props.broker, ...props.revokers, props.sweeper])];
    for (const f of fns) (f as lambda.Function).addEnvironment('ACKD_AWS_ROLES', env);

    props.broker.addToRolePolicy(new iam.PolicyStatement({ sid: 'AssumeOnlyConfiguredRoles', actions: ['sts:AssumeRole', 'sts:TagSession'], resources: arns }));
    for (const f of new Set(props.revokers)) {
      f.addToRolePolicy(new iam.PolicyStatement({ sid: 'DenyRevokedSessions', actions: ['iam:PutRolePolicy'], resources: arns }));
    }
    props.sweeper.addToRolePolicy(new iam.PolicyStatement({ sid: 'ReconcileRevocationDenies', actions: ['iam:PutRolePolicy', 'iam:ListRolePolicies', 'iam:DeleteRolePolicy'], resources: arns }));

    const brokerRole = props.broker.role;
    if (!brokerRole) throw new Error('AwsBroker: the broker function has no role');
    for (const role of [...props.roles.values()]) {
      const call: cr.AwsSdkCall = {
        service: 'IAM',
        action: 'UpdateAssumeRolePolicy',
        parameters: { RoleName: roleNameOf(role.roleArn), PolicyDocument: JSON.stringify(brokerTrustPolicy(brokerRole.roleArn)) },
        physicalResourceId: cr.PhysicalResourceId.of(`ackd-trust-${role.name}`),
      };
      const trust = new cr.AwsCustomResource(this, `Trust-${role.name}`, {
        onCreate: call,
        onUpdate: call,
        policy: cr.AwsCustomResourcePolicy.fromStatements([new iam.PolicyStatement({ actions: ['iam:UpdateAssumeRolePolicy'], resources: [role.roleArn] })]),
        installLatestAwsSdk: false,
      });
      trust.node.addDependency(brokerRole);
    }
    // The provider is one Lambda per stack (AwsCustomResource's singleton), not under this construct.
    const provider = Stack.of(this).node.tryFindChild(AWS_CUSTOM_RESOURCE_PROVIDER);
    if (provider) {
      acknowledge(
        provider,
        "The AwsCustomResource provider that sets each configured role's trust policy: AWSLambdaBasicExecutionRole only lets it write its logs; its one data permission is iam:UpdateAssumeRolePolicy on exactly the configured roles.",
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      );
    }
  }
}
