import {
  BatchWriteItemCommand,
  CreateTableCommand,
  ScanCommand,
  type AttributeValue,
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

/** The indexes of this version that the table lacks; undefined when there is no such table. */
async function missingIndexes(client: DynamoDBClient, tableName: string): Promise<string[] | undefined> {
  try {
    const d = await client.send(new DescribeTableCommand({ TableName: tableName }));
    const have = new Set((d.Table?.GlobalSecondaryIndexes ?? []).map((i) => i.IndexName));
    return INDEXES.filter((ix) => !have.has(ix.name)).map((ix) => ix.name);
  } catch (e) {
    if (e instanceof ResourceNotFoundException || (e as { name?: string }).name === 'ResourceNotFoundException') return undefined;
    throw e;
  }
}

/**
 * Local mode only: a table kept by an earlier version lacks this version's indexes, and the local
 * store cannot add one. Its items are copied into a new table (`<name>-2`, `-3` …) with the
 * current shape; the old table is left as it was. Returns the table to use.
 */
export async function upgradeLocalTable(client: DynamoDBClient, tableName: string, log: (msg: string) => void): Promise<string> {
  const missing = await missingIndexes(client, tableName);
  if (missing === undefined || missing.length === 0) return tableName;
  const base = tableName.replace(/-\d+$/, '');
  for (let n = 2; n < 100; n++) {
    const next = `${base}-${n}`;
    const nextMissing = await missingIndexes(client, next);
    if (nextMissing !== undefined && nextMissing.length > 0) continue;
    if (nextMissing === undefined) {
      await ensureTable(client, next);
      let copied = 0;
      let start: Record<string, AttributeValue> | undefined;
      do {
        const page = await client.send(new ScanCommand({ TableName: tableName, ExclusiveStartKey: start }));
        const items = page.Items ?? [];
        for (let i = 0; i < items.length; i += 25) {
          let batch = items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } }));
          while (batch.length > 0) {
            const out = await client.send(new BatchWriteItemCommand({ RequestItems: { [next]: batch } }));
            batch = (out.UnprocessedItems?.[next] as typeof batch | undefined) ?? [];
          }
        }
        copied += items.length;
        start = page.LastEvaluatedKey;
      } while (start);
      log(`local table ${tableName} predates index(es) ${missing.join(', ')}: copied its ${copied} items into ${next}, which is used from now on (${tableName} is kept as it was)`);
    }
    return next;
  }
  throw new AckdError('ERR_CONFIG', `table ${tableName}: no free name to upgrade it to`);
}

/** Creates the table if it does not exist (local mode and tests; on AWS, CDK owns the table). */
export async function ensureTable(client: DynamoDBClient, tableName: string): Promise<void> {
  try {
    const d = await client.send(new DescribeTableCommand({ TableName: tableName }));
    const have = new Set((d.Table?.GlobalSecondaryIndexes ?? []).map((i) => i.IndexName));
    const missing = INDEXES.filter((ix) => !have.has(ix.name)).map((ix) => ix.name);
    if (missing.length > 0) {
      throw new AckdError('ERR_CONFIG', `table ${tableName} lacks the index(es) ${missing.join(', ')} of this version; on AWS, deploy this version's stack (CDK adds them); locally, npm start copies the data into an upgraded table`);
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
