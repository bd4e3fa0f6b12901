import { newEventId } from '../ids.ts';
import type { AuthorizationRecord } from '../request.ts';
import { quorumProblem, type CastVote, type Quorum } from '../quorum.ts';
import type { Policy } from '../policy.ts';
import type { SignedDecision } from '../evidence.ts';
import type { ToolCall } from '../tool-call.ts';

import { canonicalJson, sha256Hex } from '../jcs.ts';

export { canonicalJson, sha256Hex };

/**
 * The audit log: one append-only event per state change, linked into a SHA-256 hash chain (and
 * a Merkle tree: merkle.ts) by the sequencer (sequencer.ts).
 *
 * An event commits to its predecessor: `hash = SHA-256(JCS(event without "hash"))`, and the
 * event carries `prev_hash`, the hash of the event before it (the first event ever carries
 * GENESIS_HASH). JCS is the JSON Canonicalization Scheme (RFC 8785), so anyone can recompute a
 * hash from the exported JSON with any language's JCS library.
 */

/** The 13 audit fields of the product description, in its order. */
export const AUDIT_FIELDS = [
  'request_id',
  'agent_id',
  'action',
  'permissions',
  'justification',
  'approver_identity',
  'requested_at',
  'decision_at',
  'decision',
  'svid_id',
  'svid_expires_at',
  'revoked',
  'revoked_at',
] as const satisfies readonly (keyof AuthorizationRecord)[];

/**
 * What every event records of its request: the 13 fields, and (on requests made since quorums)
 * the quorum it is decided under and the votes cast so far. Events of older requests lack the
 * last two, and their hashes do not cover them.
 */
export type AuditSnapshot = Pick<AuthorizationRecord, (typeof AUDIT_FIELDS)[number]> & {
  readonly quorum?: Quorum | null;
  readonly votes?: readonly CastVote[];
  /** The digest of the operation's exact parameters (core/payload.ts); null without a payload, absent on requests from before payloads. */
  readonly payload_sha256?: string | null;
  /** The decision service's signed decision, from the deciding event on (absent before it, and on events of older requests). */
  readonly decision_signature?: SignedDecision | null;
  /** The one call the approval ran through the ackd gateway (core/tool-calls.ts), from its start on; absent before. */
  readonly call?: ToolCall | null;
};

/** The quorum fields of a snapshot, after the 13. */
export const QUORUM_FIELDS = ['quorum', 'votes'] as const;
/** The payload field of a snapshot, after the quorum fields (the payload itself stays on the record; every event commits to its digest). */
export const PAYLOAD_FIELDS = ['payload_sha256'] as const;
/** The evidence fields of a snapshot, after the payload field: what binds a decision to the decision service. */
export const EVIDENCE_FIELDS = ['decision_signature'] as const;
/** The call field of a snapshot, last: the gateway call an approval ran. */
export const CALL_FIELDS = ['call'] as const;
/** Every field a snapshot may hold. */
export const SNAPSHOT_FIELDS = [...AUDIT_FIELDS, ...QUORUM_FIELDS, ...PAYLOAD_FIELDS, ...EVIDENCE_FIELDS, ...CALL_FIELDS] as const;

/** Every kind of event: the state changes of a request, and refused attempts to change it. */
export const EVENT_TYPES = [
  'requested',
  'email_sent',
  'email_failed',
  'notified',
  'notify_failed',
  'escalated',
  'voted',
  'approved',
  'denied',
  'expired',
  'svid_issued',
  'revoked',
  'refused',
  'aws_credentials_issued',
  'call_started',
  'call_finished',
] as const;
export type AuditEventType = (typeof EVENT_TYPES)[number];
/**
 * Events of no request's lifecycle: by operators, an approval policy set or removed, an agent's
 * owner set, an agent's API key created or revoked, an approver's passkeys reset; by an approver,
 * a passkey of theirs added or removed; by an agent (the ackd gateway), a tool call it let through
 * or refused.
 */
export const ADMIN_EVENT_TYPES = ['policy_set', 'policy_removed', 'owner_set', 'tool_call', 'apikey_created', 'apikey_revoked', 'passkey_added', 'passkey_removed', 'passkeys_reset'] as const;
export type AdminEventType = (typeof ADMIN_EVENT_TYPES)[number];

/** Who caused the event: an agent (agent_id), an approver (Cognito sub), an operator (CLI name) or ackd itself. */
export const ACTOR_TYPES = ['agent', 'approver', 'operator', 'system'] as const;
export type ActorType = (typeof ACTOR_TYPES)[number];

export interface Actor {
  readonly type: ActorType;
  readonly id: string;
}

export const SYSTEM_ACTOR: Actor = { type: 'system', id: 'ackd' };

/** An approver identity as stored on a record: CLI decisions are `operator:<name>`, the rest are Cognito subs. */
export function deciderActor(approverIdentity: string): Actor {
  return approverIdentity.startsWith('operator:') ? { type: 'operator', id: approverIdentity.slice('operator:'.length) } : { type: 'approver', id: approverIdentity };
}

/** An actor as one string, the form records keep: `agent:<id>`, a Cognito sub, `operator:<name>`, `system`. */
export function actorIdentity(a: Actor): string {
  switch (a.type) {
    case 'approver':
      return a.id;
    case 'system':
      return 'system';
    default:
      return `${a.type}:${a.id}`;
  }
}

/**
 * What a state change knows about its event when it happens. It is written in the same
 * conditional write as the change itself, so a change can never exist without its event.
 */
export interface PendingEvent {
  readonly event_id: string;
  readonly type: AuditEventType | AdminEventType;
  /** When the change happened. */
  readonly at: string;
  readonly actor_type: ActorType;
  readonly actor_id: string;
  /** Why an attempt was refused (refused events only). */
  readonly reason: string | null;
}

/** The event a state change records, made when the change is. */
export function auditEvent(type: AuditEventType | AdminEventType, actor: Actor, at: Date, reason: string | null = null): PendingEvent {
  return { event_id: newEventId(at.getTime()), type, at: at.toISOString(), actor_type: actor.type, actor_id: actor.id, reason };
}

/** Column order of an exported event (JSONL keys and CSV columns). */
export const EVENT_COLUMNS = [
  'seq',
  'event_id',
  'type',
  'at',
  'logged_at',
  'actor_type',
  'actor_id',
  'reason',
  ...AUDIT_FIELDS,
  ...QUORUM_FIELDS,
  ...PAYLOAD_FIELDS,
  ...EVIDENCE_FIELDS,
  ...CALL_FIELDS,
  'policy',
  'previous',
  'owner',
  'previous_owner',
  'key_id',
  'credential_ids',
  'prev_hash',
  'hash',
] as const;

/** One event of the chain about a request. */
export interface AuditEvent extends PendingEvent, AuditSnapshot {
  readonly type: AuditEventType;
  readonly v: 1;
  /** Position in the chain: 1, 2, 3 … without gaps. */
  readonly seq: number;
  /** When the event entered the chain; never decreases along the chain. */
  readonly logged_at: string;
  readonly prev_hash: string;
  readonly hash: string;
}

/**
 * What an operator's change records: a policy as set (or as it was when removed) and what it
 * replaced; an agent's new owner and the one before; which API key (its id, never the key or its
 * hash) of which agent was created or revoked; whose passkeys were reset, and which credentials that
 * removed. Or a gateway's tool call.
 */
export type AdminChange =
  | { readonly policy: Policy; readonly previous: Policy | null }
  | { readonly agent_id: string; readonly owner: string | null; readonly previous_owner: string | null }
  | { readonly agent_id: string; readonly key_id: string }
  | { readonly approver_identity: string; readonly credential_ids: readonly string[] }
  | { readonly call: ToolCall };

/**
 * One event of the chain about an operator's change. It has no request fields; it shares the
 * chain (seq, hashes, checkpoints) with request events, so the rules in force at any moment are
 * proven by the same signed checkpoints as the decisions made under them.
 */
export type AdminEvent = PendingEvent &
  AdminChange & {
    readonly type: AdminEventType;
    readonly v: 1;
    readonly seq: number;
    readonly logged_at: string;
    readonly prev_hash: string;
    readonly hash: string;
  };

export type ChainEvent = AuditEvent | AdminEvent;

export function isAdminEvent(e: { readonly type: string }): e is AdminEvent {
  return (ADMIN_EVENT_TYPES as readonly string[]).includes(e.type);
}

export const GENESIS_HASH = '0'.repeat(64);

/** The event's own fields, in export column order, from anything that holds them (a stored item, a parsed line). */
export function eventFields(source: Record<string, unknown>): AuditEvent {
  const e: Record<string, unknown> = { v: source.v };
  // (a field an event does not have stays absent: request fields on a policy event, quorum fields on older events)
  for (const k of EVENT_COLUMNS) if (source[k] !== undefined) e[k] = source[k];
  return e as unknown as AuditEvent;
}

/**
 * A copy of the snapshot fields. `r` may be a table item as stored, so lists are copied only when
 * they are lists: a malformed item (a table writer's) is compared as it is, and found to differ,
 * instead of stopping the verifier that reads it.
 */
export function snapshotOf(r: AuditSnapshot): AuditSnapshot {
  const list = <T>(v: readonly T[]): T[] => (Array.isArray(v) ? [...v] : v) as T[];
  return {
    request_id: r.request_id,
    agent_id: r.agent_id,
    action: r.action,
    permissions: list(r.permissions),
    justification: r.justification,
    approver_identity: r.approver_identity,
    requested_at: r.requested_at,
    decision_at: r.decision_at,
    decision: r.decision,
    svid_id: r.svid_id,
    svid_expires_at: r.svid_expires_at,
    revoked: r.revoked,
    revoked_at: r.revoked_at,
    ...(r.quorum === undefined ? {} : { quorum: r.quorum }),
    ...(r.votes === undefined ? {} : { votes: Array.isArray(r.votes) ? r.votes.map((v) => (typeof v === 'object' && v !== null ? { ...v, groups: list(v.groups) } : v)) : r.votes }),
    ...(r.payload_sha256 === undefined ? {} : { payload_sha256: r.payload_sha256 }),
    ...(r.decision_signature === undefined ? {} : { decision_signature: r.decision_signature }),
    ...(r.call === undefined ? {} : { call: r.call }),
  };
}

/** The hash an event must carry: SHA-256 over the canonical JSON of every other field. */
export function eventHash(event: Omit<AuditEvent, 'hash'> | Omit<AdminEvent, 'hash'> | ChainEvent): string {
  const { hash: _ignored, ...rest } = event as ChainEvent;
  return sha256Hex(canonicalJson(rest));
}

/** Links an operator's change into the chain after `prev`. Pure. */
export function chainAdminEvent(
  pending: PendingEvent & { type: AdminEventType },
  change: AdminChange,
  prev: { seq: number; hash: string; logged_at: string | null },
  now: Date,
): AdminEvent {
  const body = { ...chainFields(pending, prev, now), type: pending.type, ...change, prev_hash: prev.hash } as Omit<AdminEvent, 'hash'>;
  return { ...body, hash: eventHash(body) } as AdminEvent;
}

/** The fields every event of the chain has, for `pending` linked after `prev` at `now`. */
function chainFields(pending: PendingEvent, prev: { seq: number; logged_at: string | null }, now: Date) {
  const nowIso = now.toISOString();
  return {
    v: 1 as const,
    seq: prev.seq + 1,
    event_id: pending.event_id,
    at: pending.at,
    // Never before the previous event's, so a time window is always a contiguous run of the chain.
    logged_at: prev.logged_at !== null && prev.logged_at > nowIso ? prev.logged_at : nowIso,
    actor_type: pending.actor_type,
    actor_id: pending.actor_id,
    reason: pending.reason,
  };
}

/** Links a pending event into the chain after `prev`. Pure. */
export function chainEvent(
  pending: PendingEvent,
  snapshot: AuditSnapshot,
  prev: { seq: number; hash: string; logged_at: string | null },
  now: Date,
): AuditEvent {
  const body: Omit<AuditEvent, 'hash'> = {
    ...chainFields(pending, prev, now),
    // (a request's state change: PendingEvents of policies are linked by chainPolicyEvent)
    type: pending.type as AuditEventType,
    ...snapshotOf(snapshot),
    prev_hash: prev.hash,
  };
  return { ...body, hash: eventHash(body) };
}

/**
 * A signed checkpoint (a signed tree head): "the log holds `seq` events; the newest has hash
 * `hash`; their Merkle tree (merkle.ts) has root `root`", signed at `signed_at` with the key
 * whose SPKI SHA-256 is `key_id`. A signed head commits to every event before it, so a verifier
 * can check a window of the log even after older events have been deleted by retention, and
 * inclusion and consistency proofs end at it. Version 1 checkpoints (before the Merkle tree)
 * have no root.
 */
export interface Checkpoint {
  readonly v: 1 | 2;
  /** The tree size: the seq of the newest event it covers. */
  readonly seq: number;
  readonly hash: string;
  /** The Merkle tree hash of events 1..seq (v2). */
  readonly root?: string;
  readonly logged_at: string;
  readonly signed_at: string;
  readonly key_id: string;
  readonly alg: typeof CHECKPOINT_ALG;
  /** base64 DER ECDSA signature over checkpointPayload(). */
  readonly signature: string;
}

/** ECDSA over P-256 with SHA-256 (the same in AWS KMS, `ECDSA_SHA_256` on an ECC_NIST_P256 key). */
export const CHECKPOINT_ALG = 'ECDSA_P256_SHA256';

/** The exact bytes a checkpoint signature covers. */
export function checkpointPayload(c: Omit<Checkpoint, 'signature'>): Uint8Array {
  const common = { v: c.v, seq: c.seq, hash: c.hash, logged_at: c.logged_at, signed_at: c.signed_at, key_id: c.key_id, alg: c.alg };
  return new TextEncoder().encode(
    canonicalJson(c.v === 1 ? { purpose: 'ackd-audit-checkpoint', ...common } : { purpose: 'ackd-audit-tree-head', ...common, root: c.root ?? null }),
  );
}

/** The audit fields on which `a` and `b` differ (compared as canonical JSON). */
export function differingFields(a: AuditSnapshot, b: AuditSnapshot, fields: readonly (keyof AuditSnapshot)[] = AUDIT_FIELDS): (keyof AuditSnapshot)[] {
  return fields.filter((f) => canonicalJson(a[f] ?? null) !== canonicalJson(b[f] ?? null));
}

/** What an approval fixes: what was asked, who approved it (every vote), when, and how long its SVID may live. */
const APPROVAL_FIELDS = [
  'request_id',
  'agent_id',
  'action',
  'permissions',
  'justification',
  'requested_at',
  'approver_identity',
  'decision',
  'decision_at',
  'svid_expires_at',
  'quorum',
  'votes',
  'payload_sha256',
  // the decision service's signature: the approval in the chain carries the very one on the item
  'decision_signature',
] as const satisfies readonly (keyof AuditSnapshot)[];

/**
 * Why `record` may not get an SVID on the strength of `event`, the audit event its item names as
 * its decision; null when `event` is the intact approval of exactly this request as it stands.
 * A record changed in the table (a denial flipped to an approval, another approver, a longer
 * lifetime, other permissions) has no such event.
 */
export function approvalProblem(record: AuditSnapshot, event: AuditEvent | undefined, requested?: AuditEvent, voteEvents?: readonly (AuditEvent | undefined)[]): string | null {
  if (!event) return 'the audit log records no decision for it';
  if (event.type !== 'approved') return `the audit log records it as ${event.type} (event ${event.seq}), not approved`;
  if (eventHash(event) !== event.hash) return `its approval (event ${event.seq}) does not match its hash`;
  const changed = differingFields(record, event, APPROVAL_FIELDS);
  if (changed.length > 0) return `its ${changed.join(', ')} differ${changed.length === 1 ? 's' : ''} from the approval recorded in event ${event.seq}`;
  // The rule it is decided under is the one it was made with: a quorum lowered on the item (and so
  // in its approval) differs from the request's own event.
  if (record.quorum !== undefined) {
    if (!requested || requested.type !== 'requested' || requested.request_id !== record.request_id) return 'the audit log holds no request event for it';
    if (eventHash(requested) !== requested.hash) return `its request (event ${requested.seq}) does not match its hash`;
    const moved = differingFields(record, requested, ['agent_id', 'action', 'permissions', 'justification', 'requested_at', 'quorum', 'payload_sha256']);
    if (moved.length > 0) return `its ${moved.join(', ')} differ${moved.length === 1 ? 's' : ''} from its request (event ${requested.seq})`;
  }
  const quorum = quorumProblem(event);
  if (quorum) return `its approval (event ${event.seq}) does not meet its quorum: ${quorum}`;
  if (record.quorum !== undefined) return castVotesProblem(event, voteEvents ?? []);
  return null;
}

/**
 * Whether every vote the approval counts was cast in an event of its own: the i-th vote event
 * (the item's `vote_seqs`, the approval last) is an intact event of this request by that voter,
 * recording exactly the votes up to and including it. Votes written onto the item without their
 * events are not votes.
 */
function castVotesProblem(approval: AuditEvent, voteEvents: readonly (AuditEvent | undefined)[]): string | null {
  const votes = approval.votes ?? [];
  if (voteEvents.length !== votes.length) return `its approval counts ${votes.length} votes, but the audit log holds ${voteEvents.length} vote events for it`;
  for (const [i, e] of voteEvents.entries()) {
    const v = votes[i]!;
    const actor = e?.actor_type === 'operator' ? `operator:${e.actor_id}` : e?.actor_id;
    if (!e || e.request_id !== approval.request_id || eventHash(e) !== e.hash || actor !== v.voter || canonicalJson(e.votes ?? []) !== canonicalJson(votes.slice(0, i + 1))) {
      return `the vote of ${v.voter} is not recorded in an intact vote event of its own`;
    }
  }
  return null;
}
