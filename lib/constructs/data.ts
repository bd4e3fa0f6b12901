import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { TABLE } from '../../lambdas/adapters/dynamodb/schema.ts';

/**
 * The one DynamoDB table of ackd: on-demand, point-in-time recovery, retention TTL, deletion
 * protection, encrypted at rest, with the two indexes the store queries.
 */
export class Data extends Construct {
  readonly table: dynamodb.TableV2;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const s = TABLE;
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
          indexName: s.byAgent.name,
          partitionKey: { name: s.byAgent.partitionKey, type: dynamodb.AttributeType.STRING },
          sortKey: { name: s.byAgent.sortKey, type: dynamodb.AttributeType.STRING },
          projectionType: dynamodb.ProjectionType.ALL,
        },
        {
          indexName: s.pendingByExpiry.name,
          partitionKey: { name: s.pendingByExpiry.partitionKey, type: dynamodb.AttributeType.STRING },
          sortKey: { name: s.pendingByExpiry.sortKey, type: dynamodb.AttributeType.STRING },
          projectionType: dynamodb.ProjectionType.ALL,
        },
      ],
    });
  }
}
