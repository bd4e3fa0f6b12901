import type { AgentStore } from '../agents.ts';
import { canonicalJson } from '../jcs.ts';
import type { Policy, PolicyStore } from '../policy.ts';
import { policyKey } from '../policy.ts';
import type { ApiKeyEntry, ApiKeyStore } from '../ports.ts';
import type { Problem } from './verify.ts';

/** Where live verification reads the operators' settings as they are now. */
export interface AdminStateSources {
  readonly apiKeys?: Pick<ApiKeyStore, 'listAll'> | undefined;
  readonly policies?: Pick<PolicyStore, 'get'> | undefined;
  readonly agents?: Pick<AgentStore, 'get'> | undefined;
}

/** What an operator's event says, as exported (only the fields read here). */
interface Logged {
  readonly seq: number;
  readonly at: string;
  readonly actor_id: string;
}
type KeyRevocation = Logged & { readonly agent_id: string; readonly key_id: string };
type PolicyEvent = Logged & { readonly type: 'policy_set' | 'policy_removed'; readonly policy: Policy };
type OwnerEvent = Logged & { readonly agent_id: string; readonly owner: string | null };

/**
 * The operators' settings in the table held to what the log says was last done to them. Nothing in
 * ackd changes a setting without its event, so a difference is a change made outside ackd (a table
 * writer's): a revoked API key active again, an approval policy changed, removed or put back, an
 * agent's owner changed. Only what the verified window's events say is compared (an event past the
 * log's retention no longer vouches for anything); events are fed in chain order, the last one per
 * setting counts.
 */
export class AdminStateCheck {
  private readonly revocations: KeyRevocation[] = [];
  private readonly policies = new Map<string, PolicyEvent>();
  private readonly owners = new Map<string, OwnerEvent>();

  /** One event of the verified window, in chain order. */
  add(e: { readonly type: string }): void {
    if (e.type === 'apikey_revoked') this.revocations.push(e as unknown as KeyRevocation);
    else if (e.type === 'policy_set' || e.type === 'policy_removed') {
      const p = e as unknown as PolicyEvent;
      if (typeof p.policy === 'object' && p.policy !== null) this.policies.set(policyKey(p.policy.agent, p.policy.permission), p);
    } else if (e.type === 'owner_set') {
      const o = e as unknown as OwnerEvent;
      this.owners.set(o.agent_id, o);
    }
  }

  /**
   * The settings that differ from their last event. `settings: false` compares the API keys only:
   * while operators' changes still wait to be sequenced, a policy or owner set a moment ago is not
   * in the log yet (keys are safe either way: a revocation takes effect before its event is written).
   */
  async problems(sources: AdminStateSources, opts: { settings: boolean }): Promise<Problem[]> {
    const out: Problem[] = sources.apiKeys ? revokedKeysActive(this.revocations, await sources.apiKeys.listAll()) : [];
    if (!opts.settings) return out;
    if (sources.policies) {
      for (const [key, e] of this.policies) {
        const what = `approval policy ${key}`;
        let stored: Policy | undefined;
        try {
          stored = await sources.policies.get(e.policy.agent, e.policy.permission);
        } catch (err) {
          out.push({ kind: 'item', seq: e.seq, message: `${what}: cannot be read (${err instanceof Error ? err.message : String(err)}): changed outside ackd` });
          continue;
        }
        const last = `its last event ${e.seq} (${e.type}, ${e.at}, by ${e.actor_id})`;
        if (e.type === 'policy_removed') {
          if (stored) out.push({ kind: 'item', seq: e.seq, message: `${what} is in force, but ${last} removed it: it was put back outside ackd` });
        } else if (!stored) {
          out.push({ kind: 'item', seq: e.seq, message: `${what} is gone, but ${last} set it: it was removed outside ackd` });
        } else {
          const changed = differingPolicyFields(e.policy, stored);
          if (changed.length > 0) out.push({ kind: 'item', seq: e.seq, message: `${what} differs from ${last} in ${changed.join(', ')}: it was changed outside ackd` });
        }
      }
    }
    if (sources.agents) {
      for (const [agent, e] of this.owners) {
        const owner = (await sources.agents.get(agent as never))?.owner ?? null;
        if (owner !== e.owner) {
          out.push({ kind: 'item', seq: e.seq, message: `agent ${agent}: owner ${owner === null ? 'none' : owner}, but its last event ${e.seq} (owner_set, ${e.at}, by ${e.actor_id}) set ${e.owner === null ? 'none' : e.owner}: it was changed outside ackd` });
        }
      }
    }
    return out;
  }
}

/**
 * The fields of a logged policy the stored one does not match. Only the fields the event has are
 * compared: a policy logged by a version before some field existed reads with that field's default
 * now, which is no change.
 */
function differingPolicyFields(logged: Policy, stored: Policy): string[] {
  const now = stored as unknown as Record<string, unknown>;
  return Object.entries(logged as unknown as Record<string, unknown>)
    .filter(([k, v]) => canonicalJson(v ?? null) !== canonicalJson(now[k] ?? null))
    .map(([k]) => k);
}

/**
 * The keys the log says were revoked whose stored entry is active again (no `revoked_at`). Nothing
 * in ackd takes a revocation back, so each is a change made outside ackd: a table writer's way back
 * in with a key that was revoked (its entry put back as copied before the revocation, seal and all).
 */
export function revokedKeysActive(revocations: readonly KeyRevocation[], stored: readonly ApiKeyEntry[]): Problem[] {
  const out: Problem[] = [];
  const seen = new Set<string>();
  for (const r of revocations) {
    for (const e of stored) {
      if (e.key_id !== r.key_id || e.revoked_at !== null || seen.has(e.key_hash)) continue;
      seen.add(e.key_hash);
      out.push({
        kind: 'item',
        seq: r.seq,
        message: `API key ${r.key_id} of agent ${r.agent_id} was revoked (event ${r.seq}, ${r.at}, by ${r.actor_id}), but its entry (agent ${String(e.agent_id)}) is active again: it was changed outside ackd; revoke it again (ackd agents revoke-key ${r.key_id})`,
      });
    }
  }
  return out;
}
