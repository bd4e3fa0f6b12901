import type { AgentId } from './ids.ts';
import type { Clock } from './ports.ts';

/**
 * What ackd knows about an agent besides its API keys: who owns it. The owner (an email) is the
 * human that separation of duties keeps from voting on the agent's requests. An agent created
 * before owners existed, or without `--owner`, has no record (or owner null): nothing to exclude.
 */
export interface AgentRecord {
  readonly agent_id: AgentId;
  /** Email of the human responsible for the agent, or null. Compared case-insensitively. */
  readonly owner: string | null;
  readonly created_at: string;
  readonly updated_at: string;
}

/** Agent records. `put` is an upsert that keeps the `created_at` of the first put. */
export interface AgentStore {
  put(agent: AgentRecord): Promise<AgentRecord>;
  get(agentId: AgentId): Promise<AgentRecord | undefined>;
}

/** A change of an agent's owner, for the audit log. */
export interface OwnerChange {
  readonly agent_id: AgentId;
  readonly owner: string | null;
  readonly previous: string | null;
  readonly actor: { readonly type: 'operator'; readonly id: string };
}

/** Records owner changes in the audit log. */
export interface OwnerAudit {
  ownerChanged(change: OwnerChange): Promise<void>;
}

/**
 * Records (or replaces) the owner of an agent. With `audit`, the change is an audit event (who
 * owns an agent decides who separation of duties keeps from voting); a change whose event cannot
 * be recorded is put back, and the error thrown.
 */
export async function recordOwner(
  store: AgentStore,
  agentId: AgentId,
  owner: string | null,
  clock: Clock,
  audit?: { log: OwnerAudit; actor: OwnerChange['actor'] },
): Promise<AgentRecord> {
  const now = clock.now().toISOString();
  const before = audit ? await store.get(agentId) : undefined;
  const after = await store.put({ agent_id: agentId, owner, created_at: now, updated_at: now });
  if (audit) {
    try {
      await audit.log.ownerChanged({ agent_id: agentId, owner, previous: before?.owner ?? null, actor: audit.actor });
    } catch (e) {
      if (before) await store.put(before);
      throw e;
    }
  }
  return after;
}

/** The owner of an agent, null when none is recorded: what separation of duties compares voters with. */
export async function ownerOf(store: AgentStore, agentId: AgentId): Promise<string | null> {
  return (await store.get(agentId))?.owner ?? null;
}
