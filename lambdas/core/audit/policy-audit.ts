import type { PolicyAudit, PolicyChange } from '../policy.ts';
import { auditEvent, chainPolicyEvent } from './event.ts';
import type { AuditLog } from './ports.ts';

/**
 * Policy changes in the audit chain: each `ackd policy set|remove` appends a `policy_set` or
 * `policy_removed` event (who, the policy, what it replaced), covered by the same hashes and signed
 * checkpoints as the requests it governs. A change whose event cannot be appended is undone by
 * the PolicyService.
 */
export class ChainPolicyAudit implements PolicyAudit {
  constructor(private readonly log: Pick<AuditLog, 'append'>) {}

  async policyChanged(c: PolicyChange): Promise<void> {
    const type = c.action === 'set' ? 'policy_set' : 'policy_removed';
    await this.log.append((prev, now) => chainPolicyEvent({ ...auditEvent(type, c.actor, now), type }, { policy: c.policy, previous: c.previous }, prev, now));
  }
}
