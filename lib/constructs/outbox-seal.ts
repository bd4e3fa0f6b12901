import { CfnOutput, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE, STAGE_DIMENSION, type MetricName } from '../../lambdas/adapters/metric-names.ts';
import { AUDIT_KEY_ADMIN_ACTIONS } from './audit.ts';

/** The one way ackd uses the seal key: GenerateMac with HMAC_SHA_256 (lambdas/adapters/signing/outbox-seal.ts). */
export const OUTBOX_SEAL_CONDITION = { StringEquals: { 'kms:MacAlgorithm': 'HMAC_SHA_256' } } as const;
/** The environment variable the writers and the sequencer read the key from. */
export const OUTBOX_SEAL_ENV = 'ACKD_OUTBOX_SEAL_KEY';
/** What the sequencer logs for every entry it refuses (lambdas/core/audit/sequencer.ts). */
export const ENTRY_REFUSED_CODE = 'ERR_AUDIT_ENTRY_REFUSED';

export interface OutboxSealProps {
  /** Deployment stage: names the alias (`alias/ackd/<stage>/outbox-seal`). */
  readonly stage: string;
  /**
   * The functions that write audit events (the MCP function, the consent API, the sweeper) and the
   * one that sequences them (the sweeper): the only principals that may use the key.
   */
  readonly users: readonly lambda.Function[];
  /** The sequencer's function: its log lines with code ERR_AUDIT_ENTRY_REFUSED are counted. */
  readonly sequencer: lambda.Function;
}

/**
 * The key that seals audit outbox entries (docs/audit.md, "Sealed outbox entries"): a KMS HMAC_256
 * key with usage GENERATE_VERIFY_MAC. Each writer and the sequencer call kms:GenerateMac once per
 * process (message: the label `ackd-outbox-seal-v1`) and seal with the result; a table writer
 * without GenerateMac on this key cannot make an entry the sequencer admits.
 *
 * Like the audit key (constructs/audit.ts), the key policy is explicit: the account (IAM)
 * administers the key and never uses it (no GenerateMac, VerifyMac or CreateGrant); GenerateMac is
 * allowed to exactly the given functions' roles, named in the key policy and in their own IAM
 * policies, HMAC_SHA_256 only. Adding a principal takes kms:PutKeyPolicy (CloudTrail logs it).
 *
 * Not evidence: seals are checked before events enter the log and never after, so the key is
 * destroyed with the stack (after KMS's 7-day waiting period). Entries still waiting in a table
 * that outlives the stack are quarantined by the next stack's sequencer (its key is another one).
 *
 * The sequencer's refusals become the metric `AuditEntriesRefused` (a log metric filter on its
 * log group); an alarm on it (≥ 1 in 5 minutes) belongs with the others (constructs/observability.ts).
 */
export class OutboxSeal extends Construct {
  readonly key: kms.Key;
  readonly alias: kms.Alias;
  /** Counts the sequencer's ERR_AUDIT_ENTRY_REFUSED lines as `ackd/AuditEntriesRefused` (dimension stage). */
  readonly refusedFilter: logs.MetricFilter;

  constructor(scope: Construct, id: string, props: OutboxSealProps) {
    super(scope, id);
    if (props.users.length === 0) throw new Error('OutboxSeal: no function may use the key');
    this.key = new kms.Key(this, 'Key', {
      description: `ackd (${props.stage}): seals audit outbox entries (HMAC-SHA256); only ackd's event writers and its sequencer may use it`,
      keySpec: kms.KeySpec.HMAC_256,
      keyUsage: kms.KeyUsage.GENERATE_VERIFY_MAC,
      // KMS does not rotate HMAC keys; a new key means new seals (waiting entries drain first: docs/audit.md).
      enableKeyRotation: false,
      removalPolicy: RemovalPolicy.DESTROY,
      policy: new iam.PolicyDocument({
        statements: [new iam.PolicyStatement({ sid: 'KeyAdministrationWithoutUse', principals: [new iam.AccountRootPrincipal()], actions: AUDIT_KEY_ADMIN_ACTIONS, resources: ['*'] })],
      }),
    });
    this.alias = new kms.Alias(this, 'Alias', { aliasName: `alias/ackd/${props.stage}/outbox-seal`, targetKey: this.key, removalPolicy: RemovalPolicy.DESTROY });
    const roles = props.users.map((f) => {
      if (!f.role) throw new Error(`OutboxSeal: function ${f.node.path} has no role`);
      return f.role;
    });
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({ sid: 'SealOutboxEntriesOnly', principals: roles.map((r) => new iam.ArnPrincipal(r.roleArn)), actions: ['kms:GenerateMac'], resources: ['*'], conditions: OUTBOX_SEAL_CONDITION }),
    );
    for (const f of props.users) {
      f.addToRolePolicy(new iam.PolicyStatement({ sid: 'SealOutboxEntries', actions: ['kms:GenerateMac'], resources: [this.key.keyArn], conditions: OUTBOX_SEAL_CONDITION }));
      f.addEnvironment(OUTBOX_SEAL_ENV, `kms:${this.key.keyArn}`);
    }
    // What an operator's CLI names (ACKD_OUTBOX_SEAL_KEY=kms:<ARN>) once the key policy allows it (docs/aws.md).
    new CfnOutput(Stack.of(this), 'OutboxSealKeyArn', { description: 'KMS HMAC key that seals audit outbox entries (ACKD_OUTBOX_SEAL_KEY=kms:<this>)', value: this.key.keyArn });
    this.refusedFilter = new logs.MetricFilter(this, 'EntriesRefusedFilter', {
      logGroup: props.sequencer.logGroup,
      filterPattern: logs.FilterPattern.literal(`{ $.code = "${ENTRY_REFUSED_CODE}" }`),
      metricNamespace: METRICS_NAMESPACE,
      metricName: 'AuditEntriesRefused' satisfies MetricName,
      metricValue: '1',
      dimensions: { [STAGE_DIMENSION]: '$.stage' },
    });
  }
}
