import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
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
