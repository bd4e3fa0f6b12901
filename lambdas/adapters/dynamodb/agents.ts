import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AgentRecord, AgentStore } from '../../core/agents.ts';
import type { AgentId } from '../../core/ids.ts';
import { documentClient, send } from './send.ts';

/** Key prefix of agent items: `agent#<agent_id>`. */
export const AGENT_PK = 'agent#';

/** Agent records in the request table (`kind: 'agent'`), one item per agent; upserts keep the first `created_at`. */
export class DynamoAgentStore implements AgentStore {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
  ) {
    this.doc = documentClient(client);
  }

  async put(agent: AgentRecord): Promise<AgentRecord> {
    const out = await send(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: AGENT_PK + agent.agent_id },
          UpdateExpression: 'SET kind = :kind, agent_id = :id, #owner = :owner, updated_at = :u, created_at = if_not_exists(created_at, :c)',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':kind': 'agent', ':id': agent.agent_id, ':owner': agent.owner, ':u': agent.updated_at, ':c': agent.created_at },
          ReturnValues: 'ALL_NEW',
        }),
      ),
    );
    return toAgent(out.Attributes ?? {});
  }

  async get(agentId: AgentId): Promise<AgentRecord | undefined> {
    const out = await send(() => this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: AGENT_PK + agentId }, ConsistentRead: true })));
    return out.Item ? toAgent(out.Item) : undefined;
  }
}

/** An agent item as an AgentRecord (also read by the policy store's batched read, policies.ts). */
export function toAgent(item: Record<string, unknown>): AgentRecord {
  return {
    agent_id: item.agent_id as AgentId,
    owner: typeof item.owner === 'string' ? item.owner : null,
    created_at: item.created_at as string,
    updated_at: item.updated_at as string,
  };
}
