import { RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { AUDIT_KEY_ADMIN_ACTIONS } from './audit.ts';

export interface EvidenceKeyProps {
  /** Deployment stage: names the alias (`alias/ackd/<stage>/<name>`). */
  readonly stage: string;
  /** `decisions` (ACKD_DECISION_KEY) or `receipts` (ACKD_RECEIPT_KEY). */
  readonly name: 'decisions' | 'receipts';
  readonly description: string;
}

/**
 * A KMS key that signs ackd's evidence (issue 13): the decision key (the consent API signs every
 * decision; the MCP function verifies with its public key before minting) and the receipt key
 * (the MCP function signs the receipt delivered with an SVID). Asymmetric ECC_NIST_P256,
 * SIGN_VERIFY; the private key never leaves KMS. Like the audit key (constructs/audit.ts):
 *  - retained when the stack is deleted (what it signed stays verifiable: `aws kms get-public-key`);
 *  - an explicit key policy: the account (IAM) administers the key and reads its public key, never
 *    Sign, Verify or CreateGrant; kms:Sign is granted to ONE principal, named in the key policy
 *    ({@link allowSigningOnlyBy}), and only ECDSA_SHA_256 over a DIGEST (the SHA-256 is computed by
 *    the caller: a decision or receipt may exceed KMS's 4096-byte RAW limit);
 *  - the IAM side of each grant is written out action by action on this key's ARN.
 */
export class EvidenceKey extends Construct {
  readonly key: kms.Key;
  readonly alias: kms.Alias;
  readonly keyArn: string;
  private signer: iam.IRole | undefined;

  constructor(scope: Construct, id: string, props: EvidenceKeyProps) {
    super(scope, id);
    this.key = new kms.Key(this, 'Key', {
      description: `ackd (${props.stage}): ${props.description}; retained as evidence`,
      keySpec: kms.KeySpec.ECC_NIST_P256,
      keyUsage: kms.KeyUsage.SIGN_VERIFY,
      // KMS does not rotate asymmetric keys; a new key is a new key id (decisions) or kid (receipts).
      enableKeyRotation: false,
      removalPolicy: RemovalPolicy.RETAIN,
      policy: new iam.PolicyDocument({
        statements: [
          new iam.PolicyStatement({ sid: 'KeyAdministrationWithoutUse', principals: [new iam.AccountRootPrincipal()], actions: AUDIT_KEY_ADMIN_ACTIONS, resources: ['*'] }),
          new iam.PolicyStatement({ sid: 'ReadPublicKey', principals: [new iam.AccountRootPrincipal()], actions: ['kms:GetPublicKey'], resources: ['*'] }),
        ],
      }),
    });
    this.node.addValidation({ validate: () => (this.signer ? [] : [`EvidenceKey ${props.name}: no signer; call allowSigningOnlyBy(<role>)`]) });
    this.alias = new kms.Alias(this, 'Alias', { aliasName: `alias/ackd/${props.stage}/${props.name}`, targetKey: this.key, removalPolicy: RemovalPolicy.DESTROY });
    this.keyArn = this.key.keyArn;
  }

  /** The one principal that may sign with the key: in the key policy, and in its own IAM policy (with kms:GetPublicKey, which signing needs). */
  allowSigningOnlyBy(fn: { readonly role?: iam.IRole | undefined; addToRolePolicy(s: iam.PolicyStatement): void }, sid: string): void {
    if (this.signer) throw new Error('EvidenceKey: the signer is already set; only one principal may sign');
    if (!fn.role) throw new Error('EvidenceKey: the signer has no role');
    this.signer = fn.role;
    const condition = { StringEquals: { 'kms:SigningAlgorithm': 'ECDSA_SHA_256', 'kms:MessageType': 'DIGEST' } };
    this.key.addToResourcePolicy(new iam.PolicyStatement({ sid: `${sid}Only`, principals: [new iam.ArnPrincipal(fn.role.roleArn)], actions: ['kms:Sign'], resources: ['*'], conditions: condition }));
    fn.addToRolePolicy(new iam.PolicyStatement({ sid, actions: ['kms:Sign'], resources: [this.keyArn], conditions: condition }));
    this.allowReadingPublicKey(fn, `${sid}PublicKey`);
  }

  /** kms:GetPublicKey on this key only (what a verifier needs). */
  allowReadingPublicKey(fn: { addToRolePolicy(s: iam.PolicyStatement): void }, sid: string): void {
    fn.addToRolePolicy(new iam.PolicyStatement({ sid, actions: ['kms:GetPublicKey'], resources: [this.keyArn] }));
  }

  /** `kms:<key ARN>`: the value of ACKD_DECISION_KEY, ACKD_DECISION_PUBLIC_KEY or ACKD_RECEIPT_KEY. */
  get envValue(): string {
    return `kms:${this.keyArn}`;
  }
}
