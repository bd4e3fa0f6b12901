import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { TABLE } from '../../lambdas/adapters/dynamodb/schema.ts';

/** An index of the store's schema: a name, a string partition key and a string sort key. */
export type IndexShape = { readonly name: string; readonly partitionKey: string; readonly sortKey: string };

/**
 * Every global secondary index the store declares in TABLE (lambdas/adapters/dynamodb/schema.ts),
 * found by shape, so an index added there is deployed without a second list to keep in step.
 */
export function tableIndexes(): IndexShape[] {
  const values: readonly unknown[] = Object.values(TABLE);
  return values.filter(
    (v): v is IndexShape =>
      typeof v === 'object' && v !== null && ['name', 'partitionKey', 'sortKey'].every((k) => typeof (v as Record<string, unknown>)[k] === 'string'),
  );
}

/**
 * The one DynamoDB table of ackd: on-demand, point-in-time recovery, retention TTL, deletion
 * protection, encrypted at rest, with the indexes the store queries (requests by agent, pending
 * requests by expiry, the audit log), and a stream of new item images that drives the audit sequencer.
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
      // The audit sequencer (the sweeper) is triggered by this stream: items that carry audit
      // events not yet sequenced (constructs/api.ts filters on them). NEW_IMAGE: the item as written.
      dynamoStream: dynamodb.StreamViewType.NEW_IMAGE,
      deletionProtection: true,
      encryption: dynamodb.TableEncryptionV2.awsManagedKey(),
      // The table is audit evidence: it outlives the stack (and deletion protection guards it).
      removalPolicy: RemovalPolicy.RETAIN,
      globalSecondaryIndexes: tableIndexes().map((ix) => ({
        indexName: ix.name,
        partitionKey: { name: ix.partitionKey, type: dynamodb.AttributeType.STRING },
        sortKey: { name: ix.sortKey, type: dynamodb.AttributeType.STRING },
        projectionType: dynamodb.ProjectionType.ALL,
      })),
    });
  }
}
