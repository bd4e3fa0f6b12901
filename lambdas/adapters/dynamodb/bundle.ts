import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { BundleStore, KnownBundle } from '../../core/ports.ts';
import { documentClient, send } from './send.ts';

const PK = 'bundle#last';

/** The last trust bundle fetched from the issuer, in the table: one item, replaced when the bundle changes. */
export class DynamoBundleStore implements BundleStore {
  private readonly doc: DynamoDBDocumentClient;

  constructor(client: DynamoDBClient, private readonly tableName: string) {
    this.doc = documentClient(client);
  }

  async lastKnown(): Promise<KnownBundle | undefined> {
    const out = await send(() => this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: PK }, ConsistentRead: true })));
    const it = out.Item;
    return it && typeof it.pem === 'string' && typeof it.fetched_at === 'string' ? { pem: it.pem, fetched_at: it.fetched_at } : undefined;
  }

  async remember(b: KnownBundle): Promise<void> {
    await send(() => this.doc.send(new PutCommand({ TableName: this.tableName, Item: { pk: PK, kind: 'bundle', pem: b.pem, fetched_at: b.fetched_at } })));
  }
}
