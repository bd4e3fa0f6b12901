import type { OwnerAudit, OwnerChange } from '../agents.ts';
import type { ApiKeyAudit, ApiKeyChange } from '../apikeys.ts';
import type { PasskeyAudit, PasskeyAuditChange } from '../passkeys.ts';
import type { PolicyAudit, PolicyChange } from '../policy.ts';
import { systemClock, type Clock } from '../ports.ts';
import { auditEvent } from './event.ts';
import type { AuditLog } from './ports.ts';

/**
 * The operators' changes in the audit log: each `ackd policy set|remove` records a `policy_set`
 * or `policy_removed` event (who, the policy, what it replaced); each `ackd agents create
 * --owner` an `owner_set` event (the agent, its owner, the one before); each API key created or
 * revoked an `apikey_created` / `apikey_revoked` event (the agent and the key id); each passkey an
 * approver adds or removes a `passkey_added` / `passkey_removed` event, and each `ackd passkeys
 * reset` a `passkeys_reset` event (the approver, the credentials). The sequencer puts them in
 * the same log as the requests they govern, under the same hashes and signed tree heads. A change
 * whose event cannot be recorded is undone by its caller.
 */
export class ChainAdminAudit implements PolicyAudit, OwnerAudit, ApiKeyAudit, PasskeyAudit {
  constructor(
    private readonly log: Pick<AuditLog, 'enqueueAdmin'>,
    private readonly clock: Clock = systemClock,
    private readonly nudge: () => unknown = () => undefined,
  ) {}

  async policyChanged(c: PolicyChange): Promise<void> {
    const type = c.action === 'set' ? 'policy_set' : 'policy_removed';
    await this.log.enqueueAdmin({ ...auditEvent(type, c.actor, this.clock.now()), type }, { policy: c.policy, previous: c.previous });
    this.nudge();
  }

  async ownerChanged(c: OwnerChange): Promise<void> {
    await this.log.enqueueAdmin({ ...auditEvent('owner_set', c.actor, this.clock.now()), type: 'owner_set' }, { agent_id: c.agent_id, owner: c.owner, previous_owner: c.previous });
    this.nudge();
  }

  keyCreated(c: ApiKeyChange): Promise<void> {
    return this.key('apikey_created', c);
  }

  keyRevoked(c: ApiKeyChange): Promise<void> {
    return this.key('apikey_revoked', c);
  }

  async passkeyChanged(c: PasskeyAuditChange): Promise<void> {
    await this.log.enqueueAdmin({ ...auditEvent(c.type, c.actor, this.clock.now()), type: c.type }, { approver_identity: c.approver, credential_ids: [...c.credential_ids] });
    this.nudge();
  }

  private async key(type: 'apikey_created' | 'apikey_revoked', c: ApiKeyChange): Promise<void> {
    await this.log.enqueueAdmin({ ...auditEvent(type, c.actor, this.clock.now()), type }, { agent_id: c.agent_id, key_id: c.key_id });
    this.nudge();
  }
}
