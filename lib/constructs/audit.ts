import { Annotations, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { DeployConfigError } from '../config.ts';

/**
 * What the account (through IAM) may do to the audit key: administer it, never use it. No
 * kms:Sign, kms:Verify, kms:CreateGrant (a grant can confer Sign), no wildcards (`Get*`, `Create*`
 * would include them or future use actions). CloudFormation (the deploy role) needs these to
 * create, update, tag and alias the key; PutKeyPolicy also satisfies KMS's lockout check.
 */
export const AUDIT_KEY_ADMIN_ACTIONS = [
  'kms:DescribeKey',
  'kms:GetKeyPolicy',
  'kms:PutKeyPolicy',
  'kms:ListKeyPolicies',
  'kms:GetKeyRotationStatus',
  'kms:ListResourceTags',
  'kms:TagResource',
  'kms:UntagResource',
  'kms:CreateAlias',
  'kms:UpdateAlias',
  'kms:DeleteAlias',
  'kms:UpdateKeyDescription',
  'kms:EnableKey',
  'kms:DisableKey',
  'kms:ListGrants',
  'kms:RevokeGrant',
  'kms:ScheduleKeyDeletion',
  'kms:CancelKeyDeletion',
];

/**
 * An existing key (settings auditKeyArn, decisionKeyArn, receiptKeyArn) must be in the stack's
 * region: the functions call KMS in their own region, and a key elsewhere cannot be used by ARN
 * from there. Refuses it naming the setting (when the region is known at synth time).
 */
export function checkKeyRegion(scope: Construct, keyArn: string, setting: 'auditKeyArn' | 'decisionKeyArn' | 'receiptKeyArn'): void {
  const region = Stack.of(scope).region;
  const keyRegion = keyArn.split(':')[3];
  if (!Token.isUnresolved(region) && keyRegion !== region) {
    throw new DeployConfigError(setting, `names a key in ${keyRegion}, but the stack deploys to ${region}; use a key in ${region}`);
  }
}

export interface AuditKeyProps {
  /** Deployment stage: names the alias (`alias/ackd/<stage>/audit-checkpoints`). */
  readonly stage: string;
  /** Use this existing key instead of creating one (lib/config.ts `auditKeyArn`). */
  readonly existingKeyArn?: string | undefined;
}

/**
 * The KMS key that signs audit checkpoints (lambdas/adapters/signing/kms.ts): asymmetric
 * ECC_NIST_P256 for SIGN_VERIFY (ECDSA_SHA_256 over the RAW checkpoint payload); the private key
 * never leaves KMS. Anyone can verify a checkpoint with the public key alone.
 *
 * The key is audit evidence: it is retained when the stack is deleted, so the checkpoints already
 * signed stay attributable to it (`aws kms get-public-key` keeps answering) and a new deployment
 * can continue with the same key (`auditKeyArn`). Its alias is not retained, so a new deployment
 * that creates a key can create the alias again.
 *
 * The key policy is explicit, not CDK's default (which gives the account root `kms:*` and so lets
 * any IAM policy in the account grant kms:Sign, e.g. a `key/*` statement meant for other keys):
 *  - the account (through IAM) administers the key: describe, policy, aliases, tags, enable and
 *    disable, schedule and cancel deletion — but never Sign, Verify or CreateGrant (a grant could
 *    hand Sign to anyone);
 *  - the account (through IAM) may read the public key: it is public, and operators read it
 *    (`ackd audit public-key`, `aws kms get-public-key`); the export function's IAM grant uses this;
 *  - kms:Sign is granted to ONE principal, the sweeper's role, named in the key policy itself
 *    ({@link allowSigningOnlyBy}), and only the way KmsSigner signs (ECDSA_SHA_256, RAW).
 * No IAM policy can add a signer: KMS needs the key policy to allow a principal (or the account,
 * which it does not for Sign). Changing that takes kms:PutKeyPolicy, an administrative act logged
 * by CloudTrail.
 */
export class AuditKey extends Construct {
  /** ARN of the key (what ACKD_AUDIT_KEY names and IAM statements are scoped to). */
  readonly keyArn: string;
  /** The key, when this stack created it. */
  readonly key: kms.Key | undefined;
  readonly alias: kms.Alias | undefined;

  constructor(scope: Construct, id: string, props: AuditKeyProps) {
    super(scope, id);
    if (props.existingKeyArn) {
      this.keyArn = props.existingKeyArn;
      this.key = undefined;
      this.alias = undefined;
      checkKeyRegion(this, props.existingKeyArn, 'auditKeyArn');
      Annotations.of(this).addInfo(
        `Audit checkpoints are signed with the existing KMS key ${props.existingKeyArn}; it must be ECC_NIST_P256 with key usage SIGN_VERIFY. Its key policy is yours: let only the sweeper's role kms:Sign (the stack cannot change it).`,
      );
      return;
    }
    this.key = new kms.Key(this, 'Key', {
      description: `ackd (${props.stage}): signs audit log checkpoints (ECDSA P-256); retained as audit evidence`,
      keySpec: kms.KeySpec.ECC_NIST_P256,
      keyUsage: kms.KeyUsage.SIGN_VERIFY,
      // KMS does not rotate asymmetric keys; a new key means new checkpoints carry a new key_id.
      enableKeyRotation: false,
      removalPolicy: RemovalPolicy.RETAIN,
      // Passing `policy` replaces CDK's default key policy (account root: kms:*).
      policy: new iam.PolicyDocument({
        statements: [
          new iam.PolicyStatement({
            sid: 'KeyAdministrationWithoutUse',
            principals: [new iam.AccountRootPrincipal()],
            actions: AUDIT_KEY_ADMIN_ACTIONS,
            resources: ['*'],
          }),
          new iam.PolicyStatement({
            sid: 'ReadPublicKey',
            principals: [new iam.AccountRootPrincipal()],
            actions: ['kms:GetPublicKey'],
            resources: ['*'],
          }),
        ],
      }),
    });
    this.node.addValidation({
      validate: () => (this.signer ? [] : ['AuditKey: no signer; call allowSigningOnlyBy(<the sweeper role>) or nothing can sign checkpoints']),
    });
    this.alias = new kms.Alias(this, 'Alias', {
      aliasName: `alias/ackd/${props.stage}/audit-checkpoints`,
      targetKey: this.key,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.keyArn = this.key.keyArn;
  }

  private signer: iam.IRole | undefined;

  /**
   * Names the one principal that may kms:Sign with the key, in the key policy (the sweeper's role).
   * With an existing key (`auditKeyArn`) the stack does not own its policy: nothing is added.
   */
  allowSigningOnlyBy(signer: iam.IRole): void {
    if (this.signer) throw new Error('AuditKey: the signer is already set; only one principal may sign checkpoints');
    this.signer = signer;
    this.key?.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'SignAuditCheckpointsSweeperOnly',
        principals: [new iam.ArnPrincipal(signer.roleArn)],
        actions: ['kms:Sign'],
        resources: ['*'],
        // Exactly how KmsSigner signs: ECDSA P-256 / SHA-256 over the raw checkpoint payload.
        conditions: { StringEquals: { 'kms:SigningAlgorithm': 'ECDSA_SHA_256', 'kms:MessageType': 'RAW' } },
      }),
    );
  }

  /** The value of ACKD_AUDIT_KEY (lambdas/config.ts). */
  get envValue(): string {
    return `kms:${this.keyArn}`;
  }
}
