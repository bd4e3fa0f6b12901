import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { AckdError } from '../../core/errors.ts';

export function documentClient(client: DynamoDBClient): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}

/** Vendor failures become domain errors; a failed condition is handled by the caller. */
export async function send<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (e) {
    if (e instanceof AckdError || isConditionFailure(e)) throw e;
    throw new AckdError('ERR_STORE_UNAVAILABLE', undefined, { cause: e });
  }
}

export function isConditionFailure(e: unknown): boolean {
  return e instanceof ConditionalCheckFailedException || (e as { name?: string } | null)?.name === 'ConditionalCheckFailedException';
}

/** Runs one conditional write: true when it applied, false when its condition did not hold. */
export async function applied(op: () => Promise<unknown>): Promise<boolean> {
  try {
    await send(op);
    return true;
  } catch (e) {
    if (isConditionFailure(e)) return false;
    throw e;
  }
}

/** Every item whose key starts with `prefix`, page by page (a table scan: for operator tools, never the request path). */
export async function* scanPrefix(doc: DynamoDBDocumentClient, tableName: string, prefix: string, opts: { consistent?: boolean } = {}): AsyncGenerator<Record<string, unknown>> {
  let start: Record<string, unknown> | undefined;
  do {
    const out = await send(() =>
      doc.send(
        new ScanCommand({
          TableName: tableName,
          FilterExpression: 'begins_with(pk, :prefix)',
          ExpressionAttributeValues: { ':prefix': prefix },
          ...(opts.consistent ? { ConsistentRead: true } : {}),
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      ),
    );
    yield* out.Items ?? [];
    start = out.LastEvaluatedKey;
  } while (start);
}
