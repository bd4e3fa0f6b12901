import type { AgentId } from '../../core/ids.ts';
import { comparePolicies, policyConflict, policyKey, type Policy, type PolicyAudit, type PolicyChange, type PolicyStore } from '../../core/policy.ts';

/**
 * The PolicyStore in one process's memory, for unit tests of the core. Same semantics as the
 * DynamoDB adapter (each method is atomic here because it does not await between read and write).
 */
export class MemoryPolicyStore implements PolicyStore {
  readonly policies = new Map<string, Policy>();

  // async: a refused condition rejects the promise, as a store that does I/O would.
  async put(policy: Policy, opts: { expectedUpdatedAt?: string | null }): Promise<{ previous: Policy | undefined }> {
    const key = policyKey(policy.agent, policy.permission);
    const previous = this.policies.get(key);
    checkExpected(key, previous, opts.expectedUpdatedAt);
    this.policies.set(key, policy);
    return { previous };
  }

  get(agent: string, permission: string | null): Promise<Policy | undefined> {
    return Promise.resolve(this.policies.get(policyKey(agent, permission)));
  }

  list(): Promise<Policy[]> {
    return Promise.resolve([...this.policies.values()].sort(comparePolicies));
  }

  async remove(agent: string, permission: string | null, opts: { expectedUpdatedAt?: string } = {}): Promise<Policy | undefined> {
    const key = policyKey(agent, permission);
    const previous = this.policies.get(key);
    if (opts.expectedUpdatedAt !== undefined) checkExpected(key, previous, opts.expectedUpdatedAt);
    this.policies.delete(key);
    return previous;
  }

  candidates(agentId: AgentId): Promise<Policy[]> {
    return Promise.resolve([...this.policies.values()].filter((p) => p.agent === '*' || p.agent === agentId));
  }
}

/** The condition of a conditional put/remove, with the DynamoDB adapter's error. */
function checkExpected(key: string, current: Policy | undefined, expected: string | null | undefined): void {
  if (expected === undefined) return;
  if (expected === null ? current === undefined : current?.updated_at === expected) return;
  throw policyConflict(key, expected);
}

/** A PolicyAudit that keeps the changes it is given; `failWith` makes the next calls fail (to test the undo). */
export class MemoryPolicyAudit implements PolicyAudit {
  readonly changes: PolicyChange[] = [];
  failWith: Error | undefined;

  policyChanged(change: PolicyChange): Promise<void> {
    if (this.failWith) return Promise.reject(this.failWith);
    this.changes.push(change);
    return Promise.resolve();
  }
}
