import { Annotations, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { DeployConfigError } from '../config.ts';

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
 * The key policy is CDK's default: the account administers the key and IAM policies grant its
 * use. In this stack only two roles get any (api.ts): the sweeper may sign and read the public
 * key, the audit export function may only read the public key.
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
      const region = Stack.of(this).region;
      const keyRegion = props.existingKeyArn.split(':')[3];
      // The sweeper calls KMS in its own region; a key elsewhere cannot be used by ARN from there.
      if (!Token.isUnresolved(region) && keyRegion !== region) {
        throw new DeployConfigError('auditKeyArn', `names a key in ${keyRegion}, but the stack deploys to ${region}; use a key in ${region}`);
      }
      Annotations.of(this).addInfo(`Audit checkpoints are signed with the existing KMS key ${props.existingKeyArn}; it must be ECC_NIST_P256 with key usage SIGN_VERIFY.`);
      return;
    }
    this.key = new kms.Key(this, 'Key', {
      description: `ackd (${props.stage}): signs audit log checkpoints (ECDSA P-256); retained as audit evidence`,
      keySpec: kms.KeySpec.ECC_NIST_P256,
      keyUsage: kms.KeyUsage.SIGN_VERIFY,
      // KMS does not rotate asymmetric keys; a new key means new checkpoints carry a new key_id.
      enableKeyRotation: false,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.alias = new kms.Alias(this, 'Alias', {
      aliasName: `alias/ackd/${props.stage}/audit-checkpoints`,
      targetKey: this.key,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.keyArn = this.key.keyArn;
  }

  /** The value of ACKD_AUDIT_KEY (lambdas/config.ts). */
  get envValue(): string {
    return `kms:${this.keyArn}`;
  }
}
