import { DynamoDBClient } from '@aws-sdk/client-dynamodb';

/** A DynamoDB client; `endpoint` points it at dynalite in local mode and tests. */
export function dynamoClient(opts: { region: string; endpoint?: string | undefined }): DynamoDBClient {
  if (!opts.endpoint) return new DynamoDBClient({ region: opts.region });
  return new DynamoDBClient({
    region: opts.region,
    endpoint: opts.endpoint,
    // dynalite accepts any credentials; these are not secrets.
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 3,
  });
}
