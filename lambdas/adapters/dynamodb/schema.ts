import {
  CreateTableCommand,
  DescribeTableCommand,
  ResourceNotFoundException,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { AckdError } from '../../core/errors.ts';

/**
 * The one table of ackd. The CDK Data construct declares the same shape from these constants.
 * - `pk`: `req#<request_id>` for authorization requests, `apikey#<sha256 hex>` for agent API keys.
 * - GSI `by-agent`: an agent's requests by time (requests only: API keys carry no requested_at).
 * - GSI `pending-by-expiry`: sparse; `pending` exists only while a request is pending (sweeper).
 * - GSI `audit-log`: the audit chain by time, its checkpoints, and state changes not yet linked
 *   into it (see adapters/dynamodb/audit.ts).
 * - `retain_until`: epoch seconds; DynamoDB TTL deletes the item after the retention period.
 */
export const TABLE = {
  partitionKey: 'pk',
  ttlAttribute: 'retain_until',
  byAgent: { name: 'by-agent', partitionKey: 'agent_id', sortKey: 'requested_at' },
  pendingByExpiry: { name: 'pending-by-expiry', partitionKey: 'pending', sortKey: 'expires_at' },
  auditLog: { name: 'audit-log', partitionKey: 'log_part', sortKey: 'log_key' },
} as const;

const INDEXES = [TABLE.byAgent, TABLE.pendingByExpiry, TABLE.auditLog];

/** Creates the table if it does not exist (local mode and tests; on AWS, CDK owns the table). */
export async function ensureTable(client: DynamoDBClient, tableName: string): Promise<void> {
  try {
    const d = await client.send(new DescribeTableCommand({ TableName: tableName }));
    const have = new Set((d.Table?.GlobalSecondaryIndexes ?? []).map((i) => i.IndexName));
    const missing = INDEXES.filter((ix) => !have.has(ix.name)).map((ix) => ix.name);
    if (missing.length > 0) {
      throw new AckdError('ERR_CONFIG', `table ${tableName} lacks the index(es) ${missing.join(', ')} of this version (the local store cannot add an index): move the old local state (.ackd) aside and start again`);
    }
    return;
  } catch (e) {
    if (e instanceof AckdError) throw e;
    if (!(e instanceof ResourceNotFoundException) && (e as { name?: string }).name !== 'ResourceNotFoundException') throw e;
  }
  const gsi = (ix: { name: string; partitionKey: string; sortKey: string }) => ({
    IndexName: ix.name,
    KeySchema: [
      { AttributeName: ix.partitionKey, KeyType: 'HASH' as const },
      { AttributeName: ix.sortKey, KeyType: 'RANGE' as const },
    ],
    Projection: { ProjectionType: 'ALL' as const },
  });
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: TABLE.partitionKey, AttributeType: 'S' },
        { AttributeName: TABLE.byAgent.partitionKey, AttributeType: 'S' },
        { AttributeName: TABLE.byAgent.sortKey, AttributeType: 'S' },
        { AttributeName: TABLE.pendingByExpiry.partitionKey, AttributeType: 'S' },
        { AttributeName: TABLE.pendingByExpiry.sortKey, AttributeType: 'S' },
        { AttributeName: TABLE.auditLog.partitionKey, AttributeType: 'S' },
        { AttributeName: TABLE.auditLog.sortKey, AttributeType: 'S' },
      ],
      KeySchema: [{ AttributeName: TABLE.partitionKey, KeyType: 'HASH' }],
      GlobalSecondaryIndexes: INDEXES.map(gsi),
    }),
  );
  for (let i = 0; i < 100; i++) {
    const d = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (d.Table?.TableStatus === 'ACTIVE') return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`table ${tableName} did not become ACTIVE`);
}
