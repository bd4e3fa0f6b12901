import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Clock } from '../../core/ports.ts';
import type { OnceStore } from '../../core/aws-broker.ts';
import { applied, documentClient } from './send.ts';

/** Key prefix of single-use keys; nothing else in the table starts with it. */
export const ONCE_PK = 'once#';

/**
 * Single-use keys in the request table: `once#<key>` is claimed by one conditional put that
 * requires it absent or lapsed (`until_ms` passed: DynamoDB's TTL deletes items late), so across
 * every instance a key is claimed once while it counts. `retain_until` lets TTL remove it.
 */
export class DynamoOnceStore implements OnceStore {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
    private readonly clock: Clock,
  ) {
    this.doc = documentClient(client);
  }

  claim(key: string, expiresAt: Date): Promise<boolean> {
    const until = expiresAt.getTime();
    return applied(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { pk: `${ONCE_PK}${key}`, until_ms: until, retain_until: Math.ceil(until / 1000) + 3600 },
          ConditionExpression: 'attribute_not_exists(pk) OR until_ms <= :now',
          ExpressionAttributeValues: { ':now': this.clock.now().getTime() },
        }),
      ),
    );
  }
}
