import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';

/** Names the store code relies on (lambdas/adapters/dynamodb). */
export const TABLE_SCHEMA = {
  partitionKey: 'pk',
  ttlAttribute: 'retain_until',
  byAgentIndex: { name: 'by-agent', partitionKey: 'agent_id', sortKey: 'requested_at' },
  pendingIndex: { name: 'pending-by-expiry', partitionKey: 'pending', sortKey: 'expires_at' },
} as const;

/**
 * The one DynamoDB table of ackd: on-demand, point-in-time recovery, retention TTL, deletion
 * protection, encrypted at rest, with the two indexes the store queries.
 */
export class Data extends Construct {
  readonly table: dynamodb.TableV2;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const s = TABLE_SCHEMA;
    this.table = new dynamodb.TableV2(this, 'Table', {
      partitionKey: { name: s.partitionKey, type: dynamodb.AttributeType.STRING },
      billing: dynamodb.Billing.onDemand(),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: s.ttlAttribute,
      deletionProtection: true,
      encryption: dynamodb.TableEncryptionV2.awsManagedKey(),
      // The table is audit evidence: it outlives the stack (and deletion protection guards it).
      removalPolicy: RemovalPolicy.RETAIN,
      globalSecondaryIndexes: [
        {
          indexName: s.byAgentIndex.name,
          partitionKey: { name: s.byAgentIndex.partitionKey, type: dynamodb.AttributeType.STRING },
          sortKey: { name: s.byAgentIndex.sortKey, type: dynamodb.AttributeType.STRING },
          projectionType: dynamodb.ProjectionType.ALL,
        },
        {
          indexName: s.pendingIndex.name,
          partitionKey: { name: s.pendingIndex.partitionKey, type: dynamodb.AttributeType.STRING },
          sortKey: { name: s.pendingIndex.sortKey, type: dynamodb.AttributeType.STRING },
          projectionType: dynamodb.ProjectionType.ALL,
        },
      ],
    });
  }
}
