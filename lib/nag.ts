import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks } from 'cdk-nag';
import type { IConstruct } from 'constructs';

/** The rule packs every synth runs (bin/cdk.ts): the project claims HIPAA and SOC 2 evidence (docs/compliance.md). */
export const NAG_PACKS = ['AwsSolutions', 'HIPAA.Security', 'NIST.800.53.R5'] as const;

/** One plugin per pack of NAG_PACKS, for `Validations.of(app).addPlugins(...)`. */
export function nagPacks(scope: IConstruct) {
  return [new AwsSolutionsChecks(scope), new HIPAASecurityChecks(scope), new NIST80053R5Checks(scope)];
}

/**
 * Acknowledges cdk-nag findings on `scope` (and everything below it) with one written reason.
 * cdk-nag 3 matches finding ids exactly, e.g. `AwsSolutions-IAM5[Resource::*]`, so each id names
 * the precise finding being accepted, never a whole rule.
 */
export function acknowledge(scope: IConstruct, reason: string, ...ids: string[]): void {
  if (reason.trim().length < 20) throw new Error(`cdk-nag acknowledgment of ${ids.join(', ')} needs a real reason`);
  Validations.of(scope).acknowledge(...ids.map((id) => ({ id, reason })));
}

export const MANAGED_POLICY = {
  lambdaBasic: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
  lambdaVpc: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
} as const;
