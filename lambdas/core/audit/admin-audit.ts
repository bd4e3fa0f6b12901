import type { OwnerAudit, OwnerChange } from '../agents.ts';
import type { PolicyAudit, PolicyChange } from '../policy.ts';
import { auditEvent, chainAdminEvent } from './event.ts';
import type { AuditLog } from './ports.ts';

/**
 * The operators' changes in the audit chain: each `ackd policy set|remove` appends a `policy_set`
 * or `policy_removed` event (who, the policy, what it replaced), and each `ackd agents create
 * --owner` an `owner_set` event (the agent, its owner, the one before). They are covered by the
 * same hashes and signed checkpoints as the requests they govern. A change whose event cannot be
 * appended is undone by its caller.
 */
export class ChainAdminAudit implements PolicyAudit, OwnerAudit {
  constructor(private readonly log: Pick<AuditLog, 'append'>) {}

  async policyChanged(c: PolicyChange): Promise<void> {
    const type = c.action === 'set' ? 'policy_set' : 'policy_removed';
    await this.log.append((prev, now) => chainAdminEvent({ ...auditEvent(type, c.actor, now), type }, { policy: c.policy, previous: c.previous }, prev, now));
  }

  async ownerChanged(c: OwnerChange): Promise<void> {
    await this.log.append((prev, now) =>
      chainAdminEvent({ ...auditEvent('owner_set', c.actor, now), type: 'owner_set' }, { agent_id: c.agent_id, owner: c.owner, previous_owner: c.previous }, prev, now),
    );
  }
}
