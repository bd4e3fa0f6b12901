import type { AgentRecord, AgentStore } from '../../core/agents.ts';
import type { AgentId } from '../../core/ids.ts';

/** The AgentStore in one process's memory (unit tests). Same semantics as the DynamoDB adapter. */
export class MemoryAgentStore implements AgentStore {
  readonly agents = new Map<AgentId, AgentRecord>();

  put(agent: AgentRecord): Promise<AgentRecord> {
    const stored = { ...agent, created_at: this.agents.get(agent.agent_id)?.created_at ?? agent.created_at };
    this.agents.set(agent.agent_id, stored);
    return Promise.resolve(stored);
  }

  get(agentId: AgentId): Promise<AgentRecord | undefined> {
    return Promise.resolve(this.agents.get(agentId));
  }
}
