import { Annotations, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { AUDIT_KEY_ADMIN_ACTIONS, checkKeyRegion } from './audit.ts';

export interface EvidenceKeyProps {
  /** Deployment stage: names the alias (`alias/ackd/<stage>/<name>`). */
  readonly stage: string;
  /** `decisions` (ACKD_DECISION_KEY) or `receipts` (ACKD_RECEIPT_KEY). */
  readonly name: 'decisions' | 'receipts';
  readonly description: string;
  /** Use this existing key instead of creating one (lib/config.ts `decisionKeyArn` / `receiptKeyArn`). */
  readonly existingKeyArn?: string | undefined;
}

/** How ackd signs evidence with these keys: the caller computes the SHA-256 (a decision or receipt may exceed KMS's 4096-byte RAW limit). */
export const EVIDENCE_SIGNING_CONDITION = { StringEquals: { 'kms:SigningAlgorithm': 'ECDSA_SHA_256', 'kms:MessageType': 'DIGEST' } } as const;

/** The deploy setting that names an existing key of this kind. */
export const EVIDENCE_KEY_SETTING = { decisions: 'decisionKeyArn', receipts: 'receiptKeyArn' } as const;

/** With an existing key, the stack output naming the signer's role (what the owner's key policy must name). */
export const EVIDENCE_SIGNER_OUTPUT = { decisions: 'DecisionSignerRoleArn', receipts: 'ReceiptSignerRoleArn' } as const;

/**
 * A KMS key that signs ackd's evidence (issue 13): the decision key (the consent API signs every
 * decision; the MCP function verifies with its public key before minting) and the receipt key
 * (the MCP function signs the receipt delivered with an SVID). Asymmetric ECC_NIST_P256,
 * SIGN_VERIFY; the private key never leaves KMS. Like the audit key (constructs/audit.ts):
 *  - retained when the stack is deleted (what it signed stays verifiable: `aws kms get-public-key`);
 *  - an explicit key policy: the account (IAM) administers the key and reads its public key, never
 *    Sign, Verify or CreateGrant; kms:Sign is granted to ONE principal, named in the key policy
 *    ({@link allowSigningOnlyBy}), and only ECDSA_SHA_256 over a DIGEST;
 *  - the IAM side of each grant is written out action by action on this key's ARN.
 *
 * With an existing key (`existingKeyArn`, e.g. the key a deleted stack left behind) the stack
 * creates no key and no alias, and cannot write the key policy: it grants through IAM alone, to the
 * same one principal with the same condition, and the key's owner adds the matching key policy
 * statement (docs/aws.md, "Existing keys for decisions and receipts"; the synth prints it).
 */
export class EvidenceKey extends Construct {
  /** The key, when this stack created it. */
  readonly key: kms.Key | undefined;
  readonly alias: kms.Alias | undefined;
  readonly keyArn: string;
  /** `decisions` or `receipts`. */
  readonly kind: EvidenceKeyProps['name'];
  private signer: iam.IRole | undefined;

  /** The role allowed to sign (set by {@link allowSigningOnlyBy}). */
  get signerRole(): iam.IRole | undefined {
    return this.signer;
  }

  constructor(scope: Construct, id: string, props: EvidenceKeyProps) {
    super(scope, id);
    this.kind = props.name;
    this.node.addValidation({ validate: () => (this.signer ? [] : [`EvidenceKey ${props.name}: no signer; call allowSigningOnlyBy(<role>)`]) });
    if (props.existingKeyArn) {
      checkKeyRegion(this, props.existingKeyArn, EVIDENCE_KEY_SETTING[props.name]);
      this.keyArn = props.existingKeyArn;
      this.key = undefined;
      this.alias = undefined;
      return;
    }
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
    this.alias = new kms.Alias(this, 'Alias', { aliasName: `alias/ackd/${props.stage}/${props.name}`, targetKey: this.key, removalPolicy: RemovalPolicy.DESTROY });
    this.keyArn = this.key.keyArn;
  }

  /**
   * The one principal that may sign with the key: in the key policy (a created key), and in its own
   * IAM policy (with kms:GetPublicKey, which signing needs). With an existing key, IAM only, and an
   * info annotation naming the key policy statement the owner must add.
   */
  allowSigningOnlyBy(fn: { readonly role?: iam.IRole | undefined; addToRolePolicy(s: iam.PolicyStatement): void }, sid: string): void {
    if (this.signer) throw new Error('EvidenceKey: the signer is already set; only one principal may sign');
    if (!fn.role) throw new Error('EvidenceKey: the signer has no role');
    this.signer = fn.role;
    const conditions = EVIDENCE_SIGNING_CONDITION;
    if (this.key) {
      this.key.addToResourcePolicy(new iam.PolicyStatement({ sid: `${sid}Only`, principals: [new iam.ArnPrincipal(fn.role.roleArn)], actions: ['kms:Sign'], resources: ['*'], conditions }));
    } else {
      Annotations.of(this).addInfo(
        `${this.kind} are signed with the existing KMS key ${this.keyArn} (setting ${EVIDENCE_KEY_SETTING[this.kind]}); it must be ECC_NIST_P256 with key usage SIGN_VERIFY. ` +
          `Its key policy is yours: allow kms:Sign to the role of stack output ${EVIDENCE_SIGNER_OUTPUT[this.kind]} only, with the conditions kms:SigningAlgorithm=ECDSA_SHA_256 and kms:MessageType=DIGEST, and kms:GetPublicKey to the account (docs/aws.md, "Existing keys for decisions and receipts").`,
      );
    }
    fn.addToRolePolicy(new iam.PolicyStatement({ sid, actions: ['kms:Sign'], resources: [this.keyArn], conditions }));
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
