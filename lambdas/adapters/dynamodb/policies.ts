import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { AckdError } from '../../core/errors.ts';
import type { AgentId } from '../../core/ids.ts';
import { comparePolicies, parseStoredPolicyInput, patternMatches, policyConflict, policyKey, type Policy, type PolicyStore } from '../../core/policy.ts';
import { batchGet, documentClient, isConditionFailure, scanPrefix, send } from './send.ts';
import { AGENT_PK, toAgent } from './agents.ts';

/** Key prefix of policy items: `policy#<agent>#<permission or empty>`. */
export const POLICY_PK = 'policy#';
/** Key prefix of the pattern index items: `policyidx#<agent>`. */
export const POLICY_INDEX_PK = 'policyidx#';

/**
 * Policies in the request table, one item per policy (`kind: 'policy'`). Listing scans the
 * prefix (operator tools; policies are few). The request path never scans: exact and
 * "any permission" policies are read by key, and the patterns an agent scope ('*' or one
 * agent) has ever had are kept in one index item, `policyidx#<agent>` (`kind: 'policy-index'`,
 * string set `patterns`), so `candidates` is two batched reads.
 *
 * The index is add-only and written before the policy: it may name patterns whose policy is gone
 * (a read of an absent key, harmless) but never misses one that exists, whatever the order of
 * concurrent writes. Each policy change itself is one conditional write.
 */
export class DynamoPolicyStore implements PolicyStore {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
  ) {
    this.doc = documentClient(client);
  }

  async put(policy: Policy, opts: { expectedUpdatedAt?: string | null }): Promise<{ previous: Policy | undefined }> {
    const key = policyKey(policy.agent, policy.permission);
    if (policy.permission?.includes('*')) {
      await send(() =>
        this.doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { pk: POLICY_INDEX_PK + policy.agent },
            UpdateExpression: 'SET kind = :kind ADD patterns :p',
            ExpressionAttributeValues: { ':kind': 'policy-index', ':p': new Set([policy.permission]) },
          }),
        ),
      );
    }
    const condition = conditionFor(opts.expectedUpdatedAt);
    try {
      const out = await send(() =>
        this.doc.send(
          new PutCommand({
            TableName: this.tableName,
            Item: { pk: POLICY_PK + key, kind: 'policy', ...policy },
            ReturnValues: 'ALL_OLD',
            ...condition,
          }),
        ),
      );
      return { previous: out.Attributes ? toPolicy(out.Attributes) : undefined };
    } catch (e) {
      if (isConditionFailure(e)) throw policyConflict(key, opts.expectedUpdatedAt ?? null);
      throw e;
    }
  }

  async get(agent: string, permission: string | null): Promise<Policy | undefined> {
    const out = await send(() => this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: POLICY_PK + policyKey(agent, permission) }, ConsistentRead: true })));
    return out.Item ? toPolicy(out.Item) : undefined;
  }

  async list(): Promise<Policy[]> {
    const out: Policy[] = [];
    for await (const item of scanPrefix(this.doc, this.tableName, POLICY_PK, { consistent: true })) out.push(toPolicy(item));
    return out.sort(comparePolicies);
  }

  async remove(agent: string, permission: string | null, opts: { expectedUpdatedAt?: string } = {}): Promise<Policy | undefined> {
    const key = policyKey(agent, permission);
    try {
      const out = await send(() =>
        this.doc.send(new DeleteCommand({ TableName: this.tableName, Key: { pk: POLICY_PK + key }, ReturnValues: 'ALL_OLD', ...conditionFor(opts.expectedUpdatedAt) })),
      );
      return out.Attributes ? toPolicy(out.Attributes) : undefined;
    } catch (e) {
      if (isConditionFailure(e) && opts.expectedUpdatedAt !== undefined) throw policyConflict(key, opts.expectedUpdatedAt);
      throw e;
    }
  }

  async candidates(agentId: AgentId, permissions: readonly string[]): Promise<Policy[]> {
    return (await this.read(agentId, permissions, false)).policies;
  }

  /** The candidates and the agent's owner (its DynamoAgentStore item, in this table) in the same batched read. */
  async candidatesWithOwner(agentId: AgentId, permissions: readonly string[]): Promise<{ policies: Policy[]; owner: string | null }> {
    const { policies, agent } = await this.read(agentId, permissions, true);
    return { policies, owner: agent ? toAgent(agent).owner : null };
  }

  /**
   * One BatchGetItem of both scopes' pattern indexes, every exact and "any permission" key (and
   * the agent's item); a second one only for pattern policies the indexes name that match.
   * With 32 permissions that is 69 keys, within one call's 100.
   */
  private async read(agentId: AgentId, permissions: readonly string[], withAgent: boolean): Promise<{ policies: Policy[]; agent: Record<string, unknown> | undefined }> {
    const scopes = [agentId as string, '*'];
    const exact = new Set<string>();
    for (const agent of scopes) {
      exact.add(policyKey(agent, null));
      for (const p of permissions) exact.add(policyKey(agent, p));
    }
    const agentPk = AGENT_PK + agentId;
    const first = await batchGet(this.doc, this.tableName, [
      ...scopes.map((a) => ({ pk: POLICY_INDEX_PK + a })),
      ...[...exact].map((k) => ({ pk: POLICY_PK + k })),
      ...(withAgent ? [{ pk: agentPk }] : []),
    ]);
    const byPk = new Map(first.map((it) => [it.pk as string, it]));
    const patternKeys = new Set<string>();
    for (const agent of scopes) {
      const index = byPk.get(POLICY_INDEX_PK + agent);
      const patterns = index?.patterns instanceof Set ? [...(index.patterns as Set<string>)] : [];
      for (const pattern of patterns) {
        const key = policyKey(agent, pattern);
        if (!exact.has(key) && permissions.some((p) => patternMatches(pattern, p))) patternKeys.add(key);
      }
    }
    const second = patternKeys.size > 0 ? await batchGet(this.doc, this.tableName, [...patternKeys].map((k) => ({ pk: POLICY_PK + k }))) : [];
    const policies = [...first.filter((it) => String(it.pk).startsWith(POLICY_PK)), ...second].map(toPolicy);
    return { policies, agent: withAgent ? byPk.get(agentPk) : undefined };
  }
}

function conditionFor(expected: string | null | undefined): { ConditionExpression?: string; ExpressionAttributeValues?: Record<string, unknown> } {
  if (expected === undefined) return {};
  if (expected === null) return { ConditionExpression: 'attribute_not_exists(pk)' };
  return { ConditionExpression: 'updated_at = :expected', ExpressionAttributeValues: { ':expected': expected } };
}

/**
 * A stored item as a Policy, validated like new input (parseStoredPolicyInput): an item changed
 * in the table to something ackd would not accept (approvals 0, an odd group, a bad route name)
 * fails closed here instead of being used or skipped.
 */
function toPolicy(item: Record<string, unknown>): Policy {
  try {
    const input = parseStoredPolicyInput({
      agent: item.agent,
      permission: item.permission ?? null,
      approvals: item.approvals,
      approvers: item.approvers,
      deny: item.deny,
      separation_of_duties: item.separation_of_duties,
      operator_decisions: item.operator_decisions,
      // Absent on items written before routes: they read as the default route and no escalation.
      route: item.route ?? null,
      escalate_to: item.escalate_to ?? null,
      escalate_after: item.escalate_after,
      passkey: item.passkey ?? null,
    });
    if (item.pk !== POLICY_PK + policyKey(input.agent, input.permission)) throw new Error('its key does not match its agent and permission');
    if (typeof item.updated_at !== 'string' || typeof item.updated_by !== 'string') throw new Error('updated_at and updated_by must be strings');
    return { ...input, updated_at: item.updated_at, updated_by: item.updated_by };
  } catch (e) {
    throw new AckdError('ERR_INTERNAL', `stored policy ${String(item.pk)} is not valid: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}
