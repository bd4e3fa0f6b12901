import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
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

/**
 * The items of these keys (consistent reads), the absent ones left out: BatchGetItem in pages of
 * 100 sent together, keys the store defers asked again with backoff.
 */
export async function batchGet(doc: DynamoDBDocumentClient, tableName: string, keys: readonly Record<string, unknown>[]): Promise<Record<string, unknown>[]> {
  const pages: Record<string, unknown>[][] = [];
  for (let i = 0; i < keys.length; i += 100) pages.push(keys.slice(i, i + 100));
  const got = await Promise.all(
    pages.map(async (page) => {
      const items: Record<string, unknown>[] = [];
      let pending = page;
      for (let round = 0; pending.length > 0; round++) {
        if (round > 10) throw new AckdError('ERR_STORE_UNAVAILABLE', 'the store keeps deferring reads');
        const out = await send(() => doc.send(new BatchGetCommand({ RequestItems: { [tableName]: { Keys: pending, ConsistentRead: true } } })));
        items.push(...(out.Responses?.[tableName] ?? []));
        pending = (out.UnprocessedKeys?.[tableName]?.Keys as Record<string, unknown>[] | undefined) ?? [];
        if (pending.length > 0) await new Promise((r) => setTimeout(r, 20 * 2 ** Math.min(round, 5)));
      }
      return items;
    }),
  );
  return got.flat();
}

/**
 * A text attribute of an item as read: itself when it is a string, '' when absent, else its JSON.
 * Items that whoever can write the table made are read without crashing the reader (a sort, a
 * listing): they then fail their seal or schema check like any forged item.
 */
export function textOf(v: unknown): string {
  return typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v);
}
