import { AckdError, type ErrorCode } from './errors.ts';
import type { AuditEventType } from './audit/event.ts';
import type { AuthorizationRecord, RequestStatus } from './request.ts';

/**
 * The lifecycle of an authorization request, as one table. Every change a request can undergo
 * after it is created is a row of TRANSITIONS: the states it may start from, the guards it needs
 * (each with the refusal a caller gets when it fails), the fields it sets, and the audit event it
 * records. Three readers, one source:
 * - the service drives it (`store.apply(name, …)`, then `refusal` shapes the error),
 * - each store turns it into its own conditional write (DynamoDB: `compileTransition`; memory:
 *   `holds` and `applyUpdates` on an object),
 * - the audit verifier replays it (which event may change which field, from which state).
 *
 * The table speaks of stored fields only; time enters as the `now` parameter, so "pending but past
 * its deadline" is a guard, and `statusAt` derives what a record means at a moment.
 */

/** Where a request stands, from its stored fields alone. */
export type State = 'pending' | 'approved' | 'issued' | 'revoked' | 'denied' | 'expired';
export const STATES = ['pending', 'approved', 'issued', 'revoked', 'denied', 'expired'] as const satisfies readonly State[];

/** What `stateOf` reads: the decision and the SVID's fields (an audit snapshot has them too). */
export type StateFields = Pick<AuthorizationRecord, 'decision' | 'svid_id' | 'revoked'>;

/** Bookkeeping fields a transition may guard or set besides the record's own. */
export type BookkeepingField = 'issuing_claim' | 'issuing_until' | 'refused_attempts' | 'voters' | 'escalated_at' | 'decision_seq' | 'audit_outbox' | 'call_status';
export type Field = keyof AuthorizationRecord | BookkeepingField;

export type Scalar = string | number | boolean | null;
/** A parameter may also be a JSON value (a vote). */
export type Value = Scalar | readonly Value[] | { readonly [k: string]: Value };
/**
 * A value in a guard or an update: a parameter of the call, another field of the item, or a
 * constant. A parameter marked `orNull` reads as null when the call (or an event written before
 * the parameter existed, replayed by the audit sequencer) does not give it.
 */
export type Operand = { readonly param: string; readonly orNull?: true } | { readonly field: Field } | { readonly value: Scalar };

/** One condition on the stored item. `absent`: the attribute is not stored at all (bookkeeping). */
export type Clause =
  | { readonly field: Field; readonly op: '=' | '<>' | '>' | '<='; readonly to: Operand }
  | { readonly field: Field; readonly op: 'null' | 'notNull' | 'absent' }
  /** A list attribute of this many elements; one that does not contain the value. */
  | { readonly field: Field; readonly op: 'size' | 'lacks'; readonly to: Operand }
  | { readonly all: readonly Clause[] }
  | { readonly any: readonly Clause[] };

export type Update =
  | { readonly set: Field; readonly to: Operand }
  | { readonly add: Field; readonly by: number }
  | { readonly remove: Field }
  /** Appends one element to a list attribute (created empty when absent). */
  | { readonly append: Field; readonly item: Operand };

/** Why a write was not applied; `unchanged`: the request is already where the call wanted it (idempotent). */
export type Refusal = { readonly code: ErrorCode; readonly say: (r: AuthorizationRecord, p: Params) => string } | 'unchanged';

export type Params = Readonly<Record<string, Value>>;

export interface Transition {
  /** States the transition starts from. */
  readonly from: readonly State[];
  /** States in which the call is already done: no write, the current record is returned (when the guards hold). */
  readonly doneIn?: readonly State[];
  /** The refusal when the request is in another state: per state, else `otherwise`. */
  readonly wrongState: { readonly [S in State]?: Refusal } & { readonly otherwise: Refusal };
  /** Conditions besides the state, checked in order, each with its refusal. */
  readonly guards: readonly { readonly holds: Clause; readonly else: Refusal }[];
  readonly updates: readonly Update[];
  /** The audit event types the write records (one of them); empty: the write records none. */
  readonly events: readonly AuditEventType[];
}

const p = (name: string): Operand => ({ param: name });
/** A parameter that older writes did not give (their events replay with null). */
const pOrNull = (name: string): Operand => ({ param: name, orNull: true });
const v = (value: Scalar): Operand => ({ value });
const f = (field: Field): Operand => ({ field });
const refuse = (code: ErrorCode, say: (r: AuthorizationRecord, p: Params) => string): Refusal => ({ code, say });

/** Which stored fields make each state. */
export const STATE_CLAUSES: Readonly<Record<State, Clause>> = {
  pending: { field: 'decision', op: '=', to: v('pending') },
  denied: { field: 'decision', op: '=', to: v('denied') },
  expired: { field: 'decision', op: '=', to: v('expired') },
  approved: { all: [{ field: 'decision', op: '=', to: v('approved') }, { field: 'svid_id', op: 'null' }, { field: 'revoked', op: '=', to: v(false) }] },
  issued: { all: [{ field: 'decision', op: '=', to: v('approved') }, { field: 'svid_id', op: 'notNull' }, { field: 'revoked', op: '=', to: v(false) }] },
  revoked: { all: [{ field: 'decision', op: '=', to: v('approved') }, { field: 'revoked', op: '=', to: v(true) }] },
};

export function stateOf(r: StateFields): State {
  if (r.decision !== 'approved') return r.decision;
  if (r.revoked) return 'revoked';
  return r.svid_id === null ? 'approved' : 'issued';
}

/** The refusal of an issuance whose approval the sequencer has not yet put in the audit log (the service waits for it). */
export const AWAITING_LOG_MESSAGE = 'is being recorded in the audit log; check again shortly';
const AWAITING_LOG = refuse('ERR_ISSUANCE_IN_PROGRESS', (r) => `the approval of request ${r.request_id} ${AWAITING_LOG_MESSAGE}`);
/** The refusal of an issuance whose item says approved but whose log holds no decision, and nothing waits to be sequenced: written into the table. */
export const NOT_IN_LOG_MESSAGE = 'has no approval in the audit log; no SVID is issued';
const NOT_IN_LOG = refuse('ERR_NOT_APPROVED', (r) => `request ${r.request_id} ${NOT_IN_LOG_MESSAGE}`);
const decidedAlready = refuse('ERR_ALREADY_DECIDED', (r) => `request ${r.request_id} was already decided: ${r.decision}`);
const expiredAt = refuse('ERR_EXPIRED', (r) => `request ${r.request_id} expired at ${r.expires_at}`);
const beforeDeadline = { holds: { field: 'expires_at', op: '>', to: p('now') }, else: expiredAt } as const;
/** A vote: its voter has not voted on the request, and nobody voted since the voter's tally was read (`seen` votes). */
const voteGuards = [
  { holds: { field: 'voters', op: 'lacks', to: p('approver') }, else: refuse('ERR_ALREADY_VOTED', (r) => `you already voted on request ${r.request_id}; one vote per person`) },
  {
    holds: { any: [{ field: 'votes', op: 'absent' }, { field: 'votes', op: 'size', to: p('seen') }] },
    else: refuse('ERR_CONFLICT', (r) => `another vote on request ${r.request_id} was recorded at the same time; count again`),
  },
] as const;
const recordVote: readonly Update[] = [
  { append: 'votes', item: p('vote') },
  { append: 'voters', item: p('approver') },
];
const ANY_STATE = STATES;

/** Every change of a request after `create`, by name. */
export const TRANSITIONS = {
  /**
   * A vote that does not decide yet: the request stays pending with one more vote. Params: now,
   * approver (the voter, as approver_identity), vote (the CastVote), seen (votes counted).
   */
  vote: {
    from: ['pending'],
    wrongState: { expired: expiredAt, otherwise: decidedAlready },
    guards: [beforeDeadline, ...voteGuards],
    updates: recordVote,
    events: ['voted'],
  },
  /**
   * The vote that completes the quorum: pending → approved, only before the deadline. Params:
   * those of vote, email, svidExpiresAt, decisionSignature (the decision service's SignedDecision,
   * core/evidence.ts).
   */
  approve: {
    from: ['pending'],
    wrongState: { expired: expiredAt, otherwise: decidedAlready },
    guards: [beforeDeadline, ...voteGuards],
    updates: [
      ...recordVote,
      { set: 'decision', to: v('approved') },
      { set: 'decision_at', to: p('now') },
      { set: 'approver_identity', to: p('approver') },
      { set: 'approver_email', to: p('email') },
      { set: 'svid_expires_at', to: p('svidExpiresAt') },
      { set: 'decision_signature', to: pOrNull('decisionSignature') },
    ],
    events: ['approved'],
  },
  /** The vote that denies (one denial, or a quorum of them): pending → denied, only before the deadline. Params: those of vote, email, decisionSignature. */
  deny: {
    from: ['pending'],
    wrongState: { expired: expiredAt, otherwise: decidedAlready },
    guards: [beforeDeadline, ...voteGuards],
    updates: [
      ...recordVote,
      { set: 'decision', to: v('denied') },
      { set: 'decision_at', to: p('now') },
      { set: 'approver_identity', to: p('approver') },
      { set: 'approver_email', to: p('email') },
      { set: 'svid_expires_at', to: v(null) },
      { set: 'decision_signature', to: pOrNull('decisionSignature') },
    ],
    events: ['denied'],
  },
  /** Nobody decided in time: pending → expired, from the deadline on. Params: now. */
  expire: {
    from: ['pending'],
    wrongState: { otherwise: decidedAlready },
    guards: [{ holds: { field: 'expires_at', op: '<=', to: p('now') }, else: refuse('ERR_CONFLICT', (r) => `request ${r.request_id} is not yet due to expire (expires_at ${r.expires_at})`) }],
    updates: [
      { set: 'decision', to: v('expired') },
      { set: 'decision_at', to: f('expires_at') },
    ],
    events: ['expired'],
  },
  /**
   * One caller claims the right to mint the request's one SVID for a lease (not audited: the
   * issuance is). Only once the sequencer has put the approval in the audit log (the item points
   * at it: `decision_seq`). Params: now, nowMs, claim, until.
   */
  claimIssuance: {
    from: ['approved'],
    wrongState: {
      issued: refuse('ERR_CONFLICT', (r) => `the SVID for request ${r.request_id} was already issued (svid_id ${r.svid_id})`),
      revoked: refuse('ERR_NOT_APPROVED', (r) => `request ${r.request_id} was revoked`),
      otherwise: refuse('ERR_NOT_APPROVED', (r) => `request ${r.request_id} is ${r.decision}, not approved`),
    },
    guards: [
      { holds: { field: 'svid_expires_at', op: '>', to: p('now') }, else: refuse('ERR_EXPIRED', (r) => `the approval of request ${r.request_id} expired at ${r.svid_expires_at}`) },
      {
        holds: { any: [{ field: 'issuing_until', op: 'absent' }, { field: 'issuing_until', op: '<=', to: p('nowMs') }] },
        else: refuse('ERR_ISSUANCE_IN_PROGRESS', (r) => `SVID issuance for request ${r.request_id} is in progress in another call; check again shortly`),
      },
      {
        holds: { any: [{ field: 'decision_seq', op: 'notNull' }, { field: 'audit_outbox', op: 'absent' }, { field: 'audit_outbox', op: 'size', to: v(0) }] },
        else: AWAITING_LOG,
      },
      { holds: { field: 'decision_seq', op: 'notNull' }, else: NOT_IN_LOG },
    ],
    updates: [
      { set: 'issuing_claim', to: p('claim') },
      { set: 'issuing_until', to: p('until') },
    ],
    events: [],
  },
  /** The holder of a claim gives it back after a failed mint. Params: claim. */
  releaseIssuance: {
    from: ANY_STATE,
    wrongState: { otherwise: 'unchanged' },
    guards: [{ holds: { field: 'issuing_claim', op: '=', to: p('claim') }, else: 'unchanged' }],
    updates: [{ remove: 'issuing_claim' }, { remove: 'issuing_until' }],
    events: [],
  },
  /** The minted SVID is recorded: approved → issued, only by the claim's holder. Params: now, claim, svidId, notAfter (the certificate's). */
  issue: {
    from: ['approved'],
    wrongState: { otherwise: refuse('ERR_ISSUANCE_IN_PROGRESS', (r) => `the issuance claim on request ${r.request_id} was lost; check again`) },
    guards: [{ holds: { field: 'issuing_claim', op: '=', to: p('claim') }, else: refuse('ERR_ISSUANCE_IN_PROGRESS', (r) => `the issuance claim on request ${r.request_id} was lost; check again`) }],
    updates: [
      { set: 'svid_id', to: p('svidId') },
      { set: 'svid_issued_at', to: p('now') },
      { set: 'svid_not_after', to: p('notAfter') },
      { remove: 'issuing_claim' },
      { remove: 'issuing_until' },
    ],
    events: ['svid_issued'],
  },
  /** The agent pulls its SVID back: issued → revoked, naming the SVID. Idempotent. Params: now, svidId, by. */
  revoke: {
    from: ['issued'],
    doneIn: ['revoked'],
    wrongState: { otherwise: refuse('ERR_NOT_ISSUED', (r) => `svid_id: no SVID has been issued for request ${r.request_id}`) },
    guards: [{ holds: { field: 'svid_id', op: '=', to: p('svidId') }, else: refuse('ERR_SVID_MISMATCH', (r, q) => `svid_id: ${String(q.svidId)} is not the SVID issued for request ${r.request_id}`) }],
    updates: [
      { set: 'revoked', to: v(true) },
      { set: 'revoked_at', to: p('now') },
      { set: 'revoked_by', to: p('by') },
    ],
    events: ['revoked'],
  },
  /**
   * A human (approver or operator) pulls an approval back, with or without its SVID: approved or
   * issued → revoked; an approval revoked before its SVID is picked up never gets one. Idempotent.
   * Params: now, by, email, reason.
   */
  revokeApproval: {
    from: ['approved', 'issued'],
    doneIn: ['revoked'],
    wrongState: { otherwise: refuse('ERR_NOT_APPROVED', (r) => `request ${r.request_id} is ${r.decision}: only an approved request can be revoked`) },
    guards: [],
    updates: [
      { set: 'revoked', to: v(true) },
      { set: 'revoked_at', to: p('now') },
      { set: 'revoked_by', to: p('by') },
      { set: 'revoked_by_email', to: p('email') },
      { set: 'revoke_reason', to: p('reason') },
    ],
    events: ['revoked'],
  },
  /** The consent notification went out, or failed (bookkeeping for the retry): by email, or to a route's channels. Params: outcome. */
  recordNotification: {
    from: ANY_STATE,
    wrongState: { otherwise: 'unchanged' },
    guards: [],
    updates: [{ set: 'notify_status', to: p('outcome') }, { add: 'notify_attempts', by: 1 }],
    events: ['email_sent', 'email_failed', 'notified', 'notify_failed'],
  },
  /** A notification beyond the first (an escalation) went out to its routes' channels, or failed; the request is unchanged. */
  recordDelivery: {
    from: ANY_STATE,
    wrongState: { otherwise: 'unchanged' },
    guards: [],
    updates: [],
    events: ['notified', 'notify_failed'],
  },
  /** Nobody decided by the policy's share of the wait: the escalation routes are asked, once. Params: now. */
  escalate: {
    from: ['pending'],
    wrongState: { otherwise: 'unchanged' },
    guards: [beforeDeadline, { holds: { field: 'escalated_at', op: 'absent' }, else: 'unchanged' }],
    updates: [{ set: 'escalated_at', to: p('now') }],
    events: ['escalated'],
  },
  /** A refused attempt to change the request is recorded; the request itself is unchanged. */
  recordRefusal: {
    from: ANY_STATE,
    wrongState: { otherwise: 'unchanged' },
    guards: [],
    updates: [{ add: 'refused_attempts', by: 1 }],
    events: ['refused'],
  },
  /**
   * AWS credentials were issued for the request (the broker, lambdas/core/aws-broker.ts): only
   * while it is issued, unrevoked, within its approval and for the SVID the agent presented; the
   * request is unchanged. Params: now, svidId.
   */
  issueAwsCredentials: {
    from: ['issued'],
    wrongState: {
      revoked: refuse('ERR_NOT_APPROVED', (r) => `request ${r.request_id} was revoked`),
      otherwise: refuse('ERR_NOT_APPROVED', (r) => `request ${r.request_id} is ${r.decision} without an issued SVID`),
    },
    guards: [
      { holds: { field: 'svid_id', op: '=', to: p('svidId') }, else: refuse('ERR_SVID_MISMATCH', (r, q) => `the SVID ${String(q.svidId)} is not the one issued for request ${r.request_id}`) },
      { holds: { field: 'svid_expires_at', op: '>', to: p('now') }, else: refuse('ERR_EXPIRED', (r) => `the approval of request ${r.request_id} expired at ${r.svid_expires_at}`) },
    ],
    updates: [],
    events: ['aws_credentials_issued'],
  },
  /**
   * The one call an approval allows starts (the ackd gateway, core/tool-calls.ts): claimed before
   * it runs, so an approval never runs a second call. Only while issued, for the SVID issued, its
   * payload, before the SVID ends. Params: now, svidId, payloadSha256, call (the ToolCall).
   */
  startCall: {
    from: ['issued'],
    wrongState: {
      revoked: refuse('ERR_NOT_APPROVED', (r) => `request ${r.request_id} was revoked; its call may not run`),
      otherwise: refuse('ERR_NOT_ISSUED', (r) => `request ${r.request_id} is ${r.decision} without an issued SVID; its call may not run`),
    },
    guards: [
      { holds: { field: 'svid_id', op: '=', to: p('svidId') }, else: refuse('ERR_SVID_MISMATCH', (r, q) => `svid_id: ${String(q.svidId)} is not the SVID issued for request ${r.request_id}`) },
      { holds: { field: 'svid_not_after', op: '>', to: p('now') }, else: refuse('ERR_EXPIRED', (r) => `the SVID of request ${r.request_id} ended at ${r.svid_not_after}; its call may not run`) },
      {
        holds: { field: 'payload_sha256', op: '=', to: p('payloadSha256') },
        else: refuse('ERR_PAYLOAD_MISMATCH', (r, q) => `payload_sha256: ${String(q.payloadSha256)} is not the payload digest of request ${r.request_id}`),
      },
      { holds: { field: 'call_status', op: 'absent' }, else: refuse('ERR_ALREADY_EXECUTED', (r) => `the approved call of request ${r.request_id} was already started; an approval runs one call`) },
    ],
    updates: [
      { set: 'call_status', to: v('started') },
      { set: 'call', to: p('call') },
    ],
    events: ['call_started'],
  },
  /** The started call ended: executed (with its result's digest) or failed. Once. Params: svidId, status, call. */
  finishCall: {
    from: ['issued', 'revoked'],
    wrongState: { otherwise: refuse('ERR_NOT_ISSUED', (r) => `request ${r.request_id} has no issued SVID, so no call`) },
    guards: [
      { holds: { field: 'svid_id', op: '=', to: p('svidId') }, else: refuse('ERR_SVID_MISMATCH', (r, q) => `svid_id: ${String(q.svidId)} is not the SVID issued for request ${r.request_id}`) },
      { holds: { field: 'call_status', op: 'notNull' }, else: refuse('ERR_CONFLICT', (r) => `outcome: no call of request ${r.request_id} was started`) },
      { holds: { field: 'call_status', op: '=', to: v('started') }, else: refuse('ERR_ALREADY_EXECUTED', (r) => `the call of request ${r.request_id} was already recorded as finished`) },
    ],
    updates: [
      { set: 'call_status', to: p('status') },
      { set: 'call', to: p('call') },
    ],
    events: ['call_finished'],
  },
} as const satisfies Record<string, Transition>;

export type TransitionName = keyof typeof TRANSITIONS;

/** The state clauses of a transition's `from`, as one clause. */
export function fromClause(t: Transition): Clause {
  if (t.from.length === STATES.length) return { all: [] };
  return t.from.length === 1 ? STATE_CLAUSES[t.from[0]!] : { any: t.from.map((s) => STATE_CLAUSES[s]) };
}

/** The whole condition of a transition's write: its from-state and every guard. */
export function conditionOf(t: Transition): Clause {
  return { all: [fromClause(t), ...t.guards.map((g) => g.holds)] };
}

// ---- evaluation on a plain object (the in-memory store, and explaining a refused write) ----

/** A stored item, read field by field. */
type Item = object;

function read(item: Item, field: string): unknown {
  return (item as Record<string, unknown>)[field];
}

function operand(o: Operand, item: Item, params: Params): unknown {
  if ('param' in o) {
    if (!Object.hasOwn(params, o.param)) {
      if (o.orNull) return null;
      throw new Error(`lifecycle: parameter ${o.param} is missing`);
    }
    return params[o.param];
  }
  return 'field' in o ? read(item, o.field) : o.value;
}

/** Whether `c` holds on a stored item. Comparisons follow DynamoDB's: only values of one type compare. */
export function holds(c: Clause, item: Item, params: Params): boolean {
  if ('all' in c) return c.all.every((x) => holds(x, item, params));
  if ('any' in c) return c.any.some((x) => holds(x, item, params));
  const a = read(item, c.field);
  switch (c.op) {
    case 'absent':
      return a === undefined;
    case 'null':
      return a === null;
    case 'notNull':
      return a !== null && a !== undefined;
    case 'size':
      return Array.isArray(a) && a.length === operand(c.to, item, params);
    case 'lacks':
      return !(Array.isArray(a) && a.includes(operand(c.to, item, params)));
    default: {
      const b = operand(c.to, item, params);
      if (a === undefined || a === null || b === null || typeof a !== typeof b) return c.op === '<>' && a !== undefined && a !== b;
      if (c.op === '=') return a === b;
      if (c.op === '<>') return a !== b;
      return c.op === '>' ? (a as number | string) > (b as number | string) : (a as number | string) <= (b as number | string);
    }
  }
}

/** The item after a transition's updates (pure). */
export function applyUpdates(t: Transition, item: Item, params: Params): Record<string, unknown> {
  const out: Record<string, unknown> = { ...item };
  for (const u of t.updates) {
    if ('set' in u) out[u.set] = operand(u.to, item, params);
    else if ('add' in u) out[u.add] = ((read(item, u.add) as number | undefined) ?? 0) + u.by;
    else if ('append' in u) out[u.append] = [...((read(item, u.append) as unknown[] | undefined) ?? []), operand(u.item, item, params)];
    else delete out[u.remove];
  }
  return out;
}

/**
 * Why `t` does not apply to the request as stored (`item`: its record and bookkeeping fields), as
 * the table says; null when it would apply. Reading after a refused write only shapes the error:
 * the write's own condition decided.
 */
export function refusal(t: Transition, item: StoredItem, params: Params): Refusal | null {
  const state = stateOf(item);
  const inFrom = t.from.includes(state);
  if (inFrom || t.doneIn?.includes(state)) {
    const failed = t.guards.find((g) => !holds(g.holds, item, params));
    if (failed) return failed.else;
    return inFrom ? null : 'unchanged';
  }
  return t.wrongState[state] ?? t.wrongState.otherwise;
}

/** A stored request: its record and its bookkeeping fields. */
export type StoredItem = AuthorizationRecord & Partial<Record<BookkeepingField, Value>>;

/**
 * After a store's conditional write of `t` was not applied: the error the table names for the
 * request as it now stands (thrown), or nothing when the call was already done (`unchanged`) or
 * the write would now apply (a race the caller retries).
 */
export function explainRefused(t: Transition, item: StoredItem, params: Params): 'unchanged' | 'retry' {
  const rf = refusal(t, item, params);
  if (rf === null) return 'retry';
  if (rf === 'unchanged') return 'unchanged';
  const message = rf.say(item, params);
  const field = /^(\w+): /.exec(message)?.[1];
  throw new AckdError(rf.code, message, field ? { field } : undefined);
}

// ---- what the audit verifier replays ----

/** The transitions that record events of `type`. */
export function transitionsRecording(type: AuditEventType): Transition[] {
  return Object.values(TRANSITIONS as Record<string, Transition>).filter((t) => t.events.includes(type));
}

function updatedField(u: Update): Field {
  if ('set' in u) return u.set;
  if ('add' in u) return u.add;
  return 'append' in u ? u.append : u.remove;
}

/** The fields an event of `type` may change: those its transitions set (`requested` creates, and changes nothing). */
export function fieldsChangedBy(type: AuditEventType): ReadonlySet<Field> {
  const out = new Set<Field>();
  for (const t of transitionsRecording(type)) for (const u of t.updates) out.add(updatedField(u));
  return out;
}

/** The events that decide a request: those of the rows that set its decision (the item points at it as `decision_seq`). */
export const DECISION_EVENTS: ReadonlySet<string> = new Set<string>(
  Object.values(TRANSITIONS as Record<string, Transition>).flatMap((t) => (t.updates.some((u) => 'set' in u && u.set === 'decision') ? t.events : [])),
);

/** The events that record one human's vote: those of the rows that add to the votes (the item lists their seqs as `vote_seqs`). */
export const VOTE_EVENTS: ReadonlySet<string> = new Set<string>(
  Object.values(TRANSITIONS as Record<string, Transition>).flatMap((t) => (t.updates.some((u) => 'append' in u && u.append === 'votes') ? t.events : [])),
);

/** The states an event of `type` may follow; undefined for `requested` (the first event). */
export function statesBefore(type: AuditEventType): ReadonlySet<State> | undefined {
  const ts = transitionsRecording(type);
  return ts.length === 0 ? undefined : new Set(ts.flatMap((t) => t.from));
}

// ---- what a record means at a moment ----

export function isPast(iso: string, now: Date): boolean {
  return Date.parse(iso) <= now.getTime();
}

/** When an approved request's SVID ends: the issued certificate's notAfter, else the approved bound. One instant for every API. */
export function svidEnd(r: Pick<AuthorizationRecord, 'svid_not_after' | 'svid_expires_at' | 'expires_at'>): string {
  return r.svid_not_after ?? r.svid_expires_at ?? r.expires_at;
}

/** Pure: what the record means at time `now` (a pending request past its deadline is expired, an SVID past its end too). */
export function statusAt(r: AuthorizationRecord, now: Date): RequestStatus {
  switch (stateOf(r)) {
    case 'pending':
      return isPast(r.expires_at, now) ? { status: 'expired', expired_at: r.expires_at } : { status: 'pending', expires_at: r.expires_at };
    case 'denied':
      return { status: 'denied', decision_at: r.decision_at ?? r.requested_at };
    case 'expired':
      return { status: 'expired', expired_at: r.decision_at ?? r.expires_at };
    case 'revoked':
      return { status: 'revoked', revoked_at: r.revoked_at ?? '' };
    case 'approved':
    case 'issued': {
      const svidExpires = svidEnd(r);
      if (isPast(svidExpires, now)) return { status: 'expired', expired_at: svidExpires };
      return { status: 'approved', svid_expires_at: svidExpires, issued: r.svid_id !== null, svid_id: r.svid_id };
    }
  }
}
