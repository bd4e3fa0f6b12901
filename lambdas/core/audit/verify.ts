import type { KeyObject } from 'node:crypto';
import * as z from 'zod';
import { ACTOR_TYPES, CHECKPOINT_ALG, EVENT_TYPES, GENESIS_HASH, canonicalJson, eventHash, isAdminEvent, sha256Hex, type AuditEvent, type AuditSnapshot, type ChainEvent, type Checkpoint } from './event.ts';
import { checkpointSignatureProblem, keyIdOf } from './signing.ts';
import { appendLeaves, leafHash, rootOf, verifyConsistency } from './merkle.ts';
import { DECISION_EVENTS, fieldsChangedBy, stateOf, statesBefore, VOTE_EVENTS } from '../lifecycle.ts';
import { quorumProblem, type CastVote } from '../quorum.ts';
import { DECISION_ALG, decisionProblem } from '../evidence.ts';
import { CALL_OUTCOMES, EFFECTS } from '../tool-call.ts';

/**
 * Verifies an audit log, streaming: events in chain order, with checkpoints anywhere after the
 * event they sign (or, for the checkpoint that anchors the start of a window, before the first
 * event). Memory follows the number of requests made within about a day (a request is forgotten
 * a day after it can last change), never the number of events.
 */

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters');
const iso = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/, 'must be an ISO-8601 UTC time');
const isoOrNull = iso.nullable();
const b64url = z.string().regex(/^[A-Za-z0-9_-]+$/, 'must be base64url');
/** The passkey assertion a vote carries (core/passkeys.ts VotePasskey). */
const votePasskeySchema = z
  .object({
    assertion: z.object({ credential_id: b64url, authenticator_data: b64url, client_data_json: b64url, signature: b64url, user_handle: b64url.nullable(), nonce: b64url }).strict(),
    view_sha256: hex64.nullable(),
  })
  .strict();

/** A tool call through the ackd gateway (core/tool-calls.ts ToolCall). */
const toolCallSchema = z
  .object({
    server: z.string().min(1),
    tool: z.string().min(1),
    effect: z.enum(EFFECTS),
    outcome: z.enum(CALL_OUTCOMES),
    payload_sha256: hex64,
    caller: z.string().nullable(),
    request_id: z.string().nullable(),
    result_sha256: hex64.nullable(),
    reason: z.string().nullable(),
  })
  .strict();

const eventSchema = z
  .object({
    v: z.literal(1),
    seq: z.number().int().positive(),
    event_id: z.string().min(1),
    type: z.enum(EVENT_TYPES),
    at: iso,
    logged_at: iso,
    actor_type: z.enum(ACTOR_TYPES),
    actor_id: z.string().min(1),
    reason: z.string().nullable(),
    request_id: z.string().min(1),
    agent_id: z.string().min(1),
    action: z.string(),
    permissions: z.array(z.string()),
    justification: z.string(),
    approver_identity: z.string().nullable(),
    requested_at: iso,
    decision_at: isoOrNull,
    decision: z.enum(['pending', 'approved', 'denied', 'expired']),
    svid_id: z.string().nullable(),
    svid_expires_at: isoOrNull,
    revoked: z.boolean(),
    revoked_at: isoOrNull,
    // Requests made since quorums record their quorum and votes; older events do not have them.
    quorum: z
      .object({
        approvals: z.number().int().min(1).max(5),
        approver_groups: z.array(z.array(z.string().min(1))),
        deny: z.enum(['any', 'majority']),
        separation_of_duties: z.boolean(),
        operator_decisions: z.boolean(),
        routes: z.array(z.string()),
        escalation: z.object({ routes: z.array(z.string()), after_percent: z.number().int() }).strict().nullable(),
        passkey: z.literal('required').optional(),
        owner: z.string().nullable(),
        policies: z.array(z.string()),
      })
      .strict()
      .nullable()
      .optional(),
    votes: z
      .array(z.object({ voter: z.string().min(1), email: z.string().nullable(), vote: z.enum(['approve', 'deny']), at: iso, groups: z.array(z.string()), passkey: votePasskeySchema.optional() }).strict())
      .optional(),
    // Requests made since payloads record the digest of their payload (null without one); older events do not have it.
    payload_sha256: hex64.nullable().optional(),
    // The decision service's signed decision (issue 13), from the deciding event on; absent on older events.
    decision_signature: z
      .object({
        statement: z
          .object({
            v: z.literal(1),
            purpose: z.literal('ackd-decision'),
            request_id: z.string(),
            agent_id: z.string(),
            spiffe_id: z.string(),
            permissions: z.array(z.string()),
            decision: z.enum(['approved', 'denied']),
            approver: z.string(),
            decided_at: iso,
            svid_expires_at: isoOrNull,
            payload_sha256: hex64.nullable(),
            view_sha256: hex64.nullable(),
            passkey_assertion_sha256: hex64.nullable(),
            votes_sha256: hex64,
          })
          .strict(),
        key_id: hex64,
        alg: z.literal(DECISION_ALG),
        signature: z.string().regex(/^[A-Za-z0-9+/]+=*$/, 'must be base64'),
      })
      .strict()
      .nullable()
      .optional(),
    // The one call an approval ran through the ackd gateway, from its start on; absent before and on older events.
    call: toolCallSchema.nullable().optional(),
    prev_hash: hex64,
    hash: hex64,
  })
  .strict();

/** An operator's change: the chain's fields and what changed, no request fields. */
const adminFields = {
  v: z.literal(1),
  seq: z.number().int().positive(),
  event_id: z.string().min(1),
  at: iso,
  logged_at: iso,
  actor_type: z.enum(ACTOR_TYPES),
  actor_id: z.string().min(1),
  reason: z.string().nullable(),
  prev_hash: hex64,
  hash: hex64,
};
const policySchema = z.record(z.string(), z.unknown());
const adminEventSchema = z.union([
  z.object({ ...adminFields, type: z.enum(['policy_set', 'policy_removed']), policy: policySchema, previous: policySchema.nullable() }).strict(),
  z.object({ ...adminFields, type: z.literal('owner_set'), agent_id: z.string().min(1), owner: z.string().nullable(), previous_owner: z.string().nullable() }).strict(),
  z.object({ ...adminFields, type: z.literal('tool_call'), call: toolCallSchema }).strict(),
  z.object({ ...adminFields, type: z.enum(['apikey_created', 'apikey_revoked']), agent_id: z.string().min(1), key_id: z.string().min(1) }).strict(),
  z.object({ ...adminFields, type: z.enum(['passkey_added', 'passkey_removed', 'passkeys_reset']), approver_identity: z.string().min(1), credential_ids: z.array(z.string().min(1)) }).strict(),
]);

const checkpointSchema = z
  .object({
    v: z.union([z.literal(1), z.literal(2)]),
    seq: z.number().int().nonnegative(),
    hash: hex64,
    root: hex64.optional(),
    logged_at: z.string(),
    signed_at: iso,
    key_id: hex64,
    alg: z.literal(CHECKPOINT_ALG),
    signature: z.string().regex(/^[A-Za-z0-9+/]+=*$/, 'must be base64'),
  })
  .strict()
  .refine((c) => (c.v === 2) === (c.root !== undefined), { message: 'a v2 checkpoint (signed tree head) has a root; a v1 checkpoint has none', path: ['root'] });

const treeSchema = z.object({ seq: z.number().int().nonnegative(), frontier: z.array(hex64) }).strict();
const consistencySchema = z.object({ from: z.number().int().positive(), to: z.number().int().positive(), proof: z.array(hex64) }).strict();

export type ProblemKind = 'malformed' | 'hash' | 'link' | 'gap' | 'order' | 'time' | 'checkpoint' | 'tree' | 'svid' | 'lifecycle' | 'item' | 'decision';

export interface Problem {
  readonly kind: ProblemKind;
  /** The chain position the problem is at (null for a problem with no position, e.g. a malformed line). */
  readonly seq: number | null;
  /** 1-based line of the input, when verifying a file. */
  readonly line?: number;
  readonly message: string;
}

export interface SvidEvidence {
  readonly seq: number;
  readonly svid_id: string;
  readonly request_id: string;
  readonly agent_id: string;
  readonly action: string;
  readonly approver_identity: string;
  readonly decision_at: string | null;
  readonly svid_expires_at: string | null;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly events: number;
  readonly first_seq: number | null;
  readonly last_seq: number | null;
  readonly first_logged_at: string | null;
  readonly last_logged_at: string | null;
  readonly checkpoints: number;
  /** How the start of the file is anchored: genesis (seq 1), a signed checkpoint, or not at all. */
  readonly start: 'genesis' | 'checkpoint' | 'unanchored' | 'empty';
  /** Highest seq covered by a verified signed checkpoint (every event up to it is proven). */
  readonly signed_through: number | null;
  /** Events after the last signed checkpoint: intact as a chain, but no signature covers them. */
  readonly unsigned_tail: number;
  readonly svids_issued: number;
  /** Signed tree heads whose Merkle root was recomputed from the events and matched. */
  readonly roots_verified: number;
  /** Consistency proofs between consecutive signed tree heads that verified. */
  readonly consistency_verified: number;
  readonly problems: readonly Problem[];
  readonly warnings: readonly string[];
  /** With a decision key: how the decision events (approved, denied) are signed (issue 13). */
  readonly decisions?: DecisionSignatures;
}

/**
 * The decision events of a log checked against the decision service's public key: each approval
 * and denial must carry a signed decision that verifies and states exactly what the event records.
 * An invalid one is a problem; an unsigned one is counted and warned about (events from before
 * signed decisions have none; `--strict` fails on it).
 */
export interface DecisionSignatures {
  readonly key_id: string;
  /** Decision events read. */
  readonly checked: number;
  readonly valid: number;
  readonly unsigned: number;
  readonly invalid: number;
  /** The first few events without a valid signed decision. */
  readonly examples: readonly { readonly seq: number; readonly request_id: string; readonly type: string; readonly problem: string }[];
}

/** What the verifier remembers of a request: its last snapshot, and whether its approval is in the file. */
interface RequestState {
  /** Digest of the fields no event may change (what was asked, by whom, when). */
  fixed: string;
  /** The fields the lifecycle changes, as the request's last event recorded them. */
  state: Pick<AuditSnapshot, LifecycleField>;
  /** `seen`: its approval is in the file; `none`: the file holds its request but no approval (yet); `unknown`: it began before the file. */
  approval: 'seen' | 'none' | 'unknown';
  /** After this time (ISO), nothing may legitimately change the request any more. */
  horizon: string;
}

/** Fields that never change after `requested`. */
const FIXED_FIELDS = ['request_id', 'agent_id', 'action', 'permissions', 'justification', 'requested_at', 'quorum', 'payload_sha256'] as const satisfies readonly (keyof AuditSnapshot)[];
/** Fields the lifecycle changes (which event may change which, and from which state, is the lifecycle table's). */
type LifecycleField = 'approver_identity' | 'decision_at' | 'decision' | 'svid_id' | 'svid_expires_at' | 'revoked' | 'revoked_at' | 'votes' | 'decision_signature' | 'call';
const LIFECYCLE_FIELDS = ['approver_identity', 'decision_at', 'decision', 'svid_id', 'svid_expires_at', 'revoked', 'revoked_at', 'votes', 'decision_signature', 'call'] as const satisfies readonly LifecycleField[];
/** A request whose requested_at is this far after the file's first event must have its whole history in the file (linking may lag the change it records). */
const SCOPE_MARGIN_MS = 5 * 60_000;
/** A closed request is forgotten this long after it can last change (its SVID's end, or the longest TTL), so memory follows the rate of requests, not the log's length. */
const FORGET_AFTER_MS = 24 * 3_600_000;
/** How long event ids are remembered, in event time (a replay written back later than this is the sequencer's to refuse). */
const REPLAY_MEMORY_MS = 2 * 3_600_000;
const MAX_TTL_MS = 60 * 60_000;

export interface VerifierOptions {
  /** Checkpoints are verified with this key; without one, any checkpoint is a problem. */
  readonly publicKey?: KeyObject;
  /** Called for every SVID issued in the log (who approved it), when a caller wants the list. */
  readonly onSvid?: (e: SvidEvidence) => void;
  /** Keep at most this many problems in the report (all are counted in `ok`). */
  readonly maxProblems?: number;
  /** Decision events are checked for a signed decision that verifies with this key (the decision service's public key). */
  readonly decisionKey?: KeyObject;
}

/** How many events without a valid signed decision a report names (all are counted). */
const DECISION_EXAMPLES = 5;

export class ChainVerifier {
  private readonly keyId: string | undefined;
  private events = 0;
  private checkpoints = 0;
  private firstSeq: number | null = null;
  private lastSeq: number | null = null;
  private firstLoggedAt: string | null = null;
  private lastLoggedAt: string | null = null;
  /** The hash the next event must name as prev_hash (null: no expectation, e.g. unanchored start). */
  private expectedPrev: string | null = null;
  private expectedSeq: number | null = null;
  private start: VerifyReport['start'] = 'empty';
  private signedThrough: number | null = null;
  /** Checkpoints whose event has not arrived yet (seq → hash, root). */
  private readonly ahead = new Map<number, { hash: string; root: string | undefined; line: number | undefined }>();
  /** The Merkle tree of the events read so far, when the file says where it starts (`tree` line). */
  private tree: { size: number; frontier: string[] } | null = null;
  /** Roots of the signed tree heads read, by seq (the last few: consistency proofs follow their checkpoint). */
  private readonly signedRoots = new Map<number, string>();
  private rootsVerified = 0;
  private consistencyVerified = 0;
  private signedHeads = 0;
  private readonly requests = new Map<string, RequestState>();
  /** Event ids read, with their time (min of at and logged_at), for the last REPLAY_MEMORY_MS: an id seen twice is a replay. */
  private readonly eventIds = new Map<string, number>();
  private newestAtMs = Number.NEGATIVE_INFINITY;
  private sinceIdPrune = 0;
  private sinceForget = 0;
  private svids = 0;
  private problemCount = 0;
  private readonly problems: Problem[] = [];
  private readonly warnings: string[] = [];
  private startAnchor: { seq: number; hash: string; root: string | undefined } | null = null;
  private ended = false;
  private checkpointLines = 0;
  private eventLines = 0;
  private sawLines = false;

  private readonly decisionKeyId: string | undefined;
  private readonly decisionCounts = { checked: 0, valid: 0, unsigned: 0, invalid: 0 };
  private readonly decisionExamples: { seq: number; request_id: string; type: string; problem: string }[] = [];

  constructor(private readonly opts: VerifierOptions = {}) {
    this.keyId = opts.publicKey ? keyIdOf(opts.publicKey) : undefined;
    this.decisionKeyId = opts.decisionKey ? keyIdOf(opts.decisionKey) : undefined;
  }

  /** One parsed JSONL line of an export: `{"kind":"event",…}` or `{"kind":"checkpoint",…}`. */
  addLine(value: unknown, line?: number): void {
    this.sawLines = true;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.problem({ kind: 'malformed', seq: null, line, message: 'not a JSON object' });
      return;
    }
    const { kind, ...rest } = value as Record<string, unknown>;
    if (this.ended) {
      this.problem({ kind: 'malformed', seq: null, line, message: 'a line follows the export\'s end line' });
      return;
    }
    if (kind === 'event') this.addEvent(rest, line);
    else if (kind === 'checkpoint') this.addCheckpoint(rest, line);
    else if (kind === 'end') this.addEnd(rest, line);
    else if (kind === 'tree') this.addTreeLine(rest, line);
    else if (kind === 'consistency') this.addConsistency(rest, line);
    else this.problem({ kind: 'malformed', seq: null, line, message: `"kind" must be "event", "checkpoint", "tree", "consistency" or "end" (got ${JSON.stringify(kind)})` });
  }

  /** The export's end line: its counts must match what was read (a cut-off download does not end with it). */
  private addEnd(value: Record<string, unknown>, line: number | undefined): void {
    this.ended = true;
    if (value.events !== this.eventLines || value.checkpoints !== this.checkpointLines) {
      this.problem({
        kind: 'gap',
        seq: null,
        line,
        message: `the export says it holds ${String(value.events)} events and ${String(value.checkpoints)} checkpoints, but ${this.eventLines} and ${this.checkpointLines} were read`,
      });
    }
    if (typeof value.first_seq === 'number' && this.firstSeq !== null && value.first_seq < this.firstSeq) {
      this.problem({ kind: 'gap', seq: value.first_seq, line, message: `the export says it starts at event ${value.first_seq}, but the first event is ${this.firstSeq}: events were removed from the start` });
    }
  }

  /** A line that is not JSON at all. */
  addMalformed(message: string, line?: number): void {
    this.problem({ kind: 'malformed', seq: null, line, message });
  }

  addEvent(value: unknown, line?: number): void {
    this.eventLines++;
    const ofAdmin = typeof value === 'object' && value !== null && isAdminEvent(value as { type: string });
    const parsed = (ofAdmin ? adminEventSchema : eventSchema).safeParse(value);
    if (!parsed.success) {
      const seq = typeof (value as { seq?: unknown })?.seq === 'number' ? (value as { seq: number }).seq : null;
      this.problem({ kind: 'malformed', seq, line, message: `event is malformed: ${describeZod(parsed.error)}` });
      return;
    }
    const e = parsed.data as unknown as ChainEvent;
    const recomputed = eventHash(e);
    if (recomputed !== e.hash) {
      this.problem({
        kind: 'hash',
        seq: e.seq,
        line,
        message: `event ${e.seq}: its content does not match its hash (recorded ${short(e.hash)}, recomputed ${short(recomputed)}): the event was changed after it was logged`,
      });
    }
    if (this.expectedSeq === null) {
      this.begin(e, line);
    } else if (e.seq < this.expectedSeq) {
      this.problem({
        kind: 'order',
        seq: e.seq,
        line,
        message: `event ${e.seq} appears after event ${this.expectedSeq - 1}: an event was duplicated, inserted or moved (expected seq ${this.expectedSeq})`,
      });
      return; // keep following the chain as it was
    } else if (e.seq > this.expectedSeq) {
      const missing = e.seq - this.expectedSeq;
      this.problem({
        kind: 'gap',
        seq: this.expectedSeq,
        line,
        message: `${missing === 1 ? `event ${this.expectedSeq} is` : `events ${this.expectedSeq}–${e.seq - 1} are`} missing: seq jumps from ${this.expectedSeq - 1} to ${e.seq}`,
      });
    } else if (this.expectedPrev !== null && e.prev_hash !== this.expectedPrev) {
      this.problem({
        kind: 'link',
        seq: e.seq,
        line,
        message: `event ${e.seq}: prev_hash ${short(e.prev_hash)} is not the hash of event ${e.seq - 1} (${short(this.expectedPrev)}): event ${e.seq - 1} was changed, or event ${e.seq} was forged`,
      });
    }
    if (this.lastLoggedAt !== null && e.logged_at < this.lastLoggedAt) {
      this.problem({ kind: 'time', seq: e.seq, line, message: `event ${e.seq}: logged_at ${e.logged_at} is before the previous event's ${this.lastLoggedAt}` });
    }
    this.checkReplay(e, line);
    if (isAdminEvent(e)) {
      // A gateway's tool call is an agent's record; a passkey added or removed is its own approver's
      // (the consent UI); every other change of no request is an operator's.
      if (e.type === 'passkey_added' || e.type === 'passkey_removed') {
        const own = (e as { approver_identity?: unknown }).approver_identity;
        if (e.actor_type !== 'approver' || e.actor_id !== own) this.problem({ kind: 'lifecycle', seq: e.seq, line, message: `event ${e.seq} (${e.type}): made by ${e.actor_type} ${e.actor_id}, not by the approver ${String(own)} whose passkey it is` });
      } else {
        const by = e.type === 'tool_call' ? 'agent' : 'operator';
        if (e.actor_type !== by) this.problem({ kind: 'lifecycle', seq: e.seq, line, message: `event ${e.seq} (${e.type}): made by an ${by}, not by ${e.actor_type} ${e.actor_id}` });
      }
    } else {
      this.checkMeaning(e, line);
    }

    if (this.tree) {
      if (e.seq === this.tree.size + 1) {
        const r = appendLeaves(this.tree.frontier, this.tree.size, [leafHash(e.hash)]);
        this.tree = { size: e.seq, frontier: r.frontier };
      } else {
        this.tree = null;
        this.warnings.push(`the Merkle tree could not be followed past event ${e.seq - 1} (the events are not consecutive there)`);
      }
    }
    const signed = this.ahead.get(e.seq);
    if (signed) {
      this.ahead.delete(e.seq);
      this.matchCheckpoint(e.seq, signed.hash, e.hash, signed.line, signed.root);
    }
    this.events++;
    this.lastSeq = e.seq;
    this.lastLoggedAt = e.logged_at;
    this.expectedSeq = e.seq + 1;
    this.expectedPrev = e.hash;
  }

  addCheckpoint(value: unknown, line?: number): void {
    this.checkpointLines++;
    const parsed = checkpointSchema.safeParse(value);
    if (!parsed.success) {
      this.problem({ kind: 'malformed', seq: null, line, message: `checkpoint is malformed: ${describeZod(parsed.error)}` });
      return;
    }
    const c = parsed.data as unknown as Checkpoint;
    if (!this.opts.publicKey) {
      this.problem({ kind: 'checkpoint', seq: c.seq, line, message: `checkpoint at seq ${c.seq} cannot be checked: no public key was given` });
      return;
    }
    const bad = checkpointSignatureProblem(c, this.opts.publicKey, this.keyId);
    if (bad) {
      this.problem({ kind: 'checkpoint', seq: c.seq, line, message: `checkpoint at seq ${c.seq} ${bad}` });
      return;
    }
    this.checkpoints++;
    if (c.root !== undefined) {
      this.signedHeads++;
      this.signedRoots.set(c.seq, c.root);
      if (this.signedRoots.size > 8) this.signedRoots.delete(this.signedRoots.keys().next().value!);
    }
    if (this.lastSeq === null) {
      if (this.startAnchor === null && this.ahead.size === 0) {
        // The checkpoint just before the window: the first event must follow it.
        this.startAnchor = { seq: c.seq, hash: c.hash, root: c.root };
        this.signedThrough = c.seq;
        return;
      }
      this.ahead.set(c.seq, { hash: c.hash, root: c.root, line });
    } else if (c.seq === this.lastSeq) {
      this.matchCheckpoint(c.seq, c.hash, this.expectedPrev!, line, c.root);
    } else if (c.seq > this.lastSeq) {
      this.ahead.set(c.seq, { hash: c.hash, root: c.root, line });
    } else {
      this.problem({ kind: 'checkpoint', seq: c.seq, line, message: `checkpoint at seq ${c.seq} comes after event ${this.lastSeq}; a checkpoint must directly follow the event it signs` });
    }
  }

  finish(): VerifyReport {
    for (const [seq, c] of [...this.ahead].sort((a, b) => a[0] - b[0])) {
      const message =
        this.lastSeq === null
          ? `a signed checkpoint covers event ${seq} but the file has no events`
          : seq < this.lastSeq
            ? `a signed checkpoint covers event ${seq}, which is missing`
            : `a signed checkpoint covers event ${seq} but the file ends at event ${this.lastSeq}: signed events were removed from the end`;
      this.problem({ kind: 'gap', seq, line: c.line, message });
    }
    this.ahead.clear();
    if (this.sawLines && !this.ended) this.warnings.push('the file has no end line: the export may have been cut off');
    if (this.signedHeads > 1 && this.consistencyVerified < this.signedHeads - 1 && this.sawLines) {
      this.warnings.push(`${this.signedHeads - 1 - this.consistencyVerified} pair(s) of consecutive signed tree heads have no consistency proof in the file`);
    }
    if (this.start === 'unanchored') {
      this.warnings.push(`the file starts at event ${this.firstSeq} with no checkpoint before it: events removed just before it could not be detected`);
    }
    const unsignedTail = this.lastSeq === null ? 0 : this.lastSeq - Math.max(this.signedThrough ?? 0, (this.firstSeq ?? 1) - 1);
    if (unsignedTail > 0) {
      this.warnings.push(
        `${unsignedTail} event${unsignedTail === 1 ? '' : 's'} after ${this.signedThrough === null ? 'the start' : `checkpoint ${this.signedThrough}`} ${unsignedTail === 1 ? 'is' : 'are'} not covered by a signed checkpoint: their chain is intact, but removal of events after them could not be detected`,
      );
    }
    const decisions = this.decisionKeyId === undefined ? undefined : { key_id: this.decisionKeyId, ...this.decisionCounts, examples: this.decisionExamples };
    if (decisions && decisions.unsigned > 0) {
      this.warnings.push(`${decisions.unsigned} decision event${decisions.unsigned === 1 ? '' : 's'} carr${decisions.unsigned === 1 ? 'ies' : 'y'} no signed decision (made before decisions were signed, or written without the decision service)`);
    }
    return {
      ok: this.problemCount === 0,
      events: this.events,
      first_seq: this.firstSeq,
      last_seq: this.lastSeq,
      first_logged_at: this.firstLoggedAt,
      last_logged_at: this.lastLoggedAt,
      checkpoints: this.checkpoints,
      start: this.start,
      signed_through: this.signedThrough,
      unsigned_tail: unsignedTail,
      svids_issued: this.svids,
      roots_verified: this.rootsVerified,
      consistency_verified: this.consistencyVerified,
      problems: this.problems,
      warnings: this.warnings,
      ...(decisions ? { decisions } : {}),
    };
  }

  /** A decision event's signed decision, checked with the decision key (when one was given). */
  private checkDecisionSignature(e: AuditEvent, line: number | undefined): void {
    const key = this.opts.decisionKey;
    if (!key || (e.type !== 'approved' && e.type !== 'denied')) return;
    this.decisionCounts.checked++;
    const problem = decisionProblem(e, key, this.decisionKeyId);
    if (problem === null) {
      this.decisionCounts.valid++;
      return;
    }
    const unsigned = e.decision_signature === undefined || e.decision_signature === null;
    if (unsigned) this.decisionCounts.unsigned++;
    else {
      this.decisionCounts.invalid++;
      this.problem({ kind: 'decision', seq: e.seq, line, message: `event ${e.seq} (${e.type} of ${e.request_id}): ${problem}` });
    }
    if (this.decisionExamples.length < DECISION_EXAMPLES) this.decisionExamples.push({ seq: e.seq, request_id: e.request_id, type: e.type, problem });
  }

  private begin(e: ChainEvent, line: number | undefined): void {
    this.firstSeq = e.seq;
    this.firstLoggedAt = e.logged_at;
    const anchor = this.startAnchor;
    if (anchor !== null) {
      this.start = 'checkpoint';
      if (e.seq !== anchor.seq + 1) {
        this.problem({ kind: 'gap', seq: anchor.seq + 1, line, message: `the window is signed through event ${anchor.seq}, but the first event is ${e.seq}: events ${anchor.seq + 1}–${e.seq - 1} are missing` });
      } else if (e.prev_hash !== anchor.hash) {
        this.problem({ kind: 'link', seq: e.seq, line, message: `event ${e.seq}: prev_hash ${short(e.prev_hash)} is not the signed hash of event ${anchor.seq} (${short(anchor.hash)})` });
      }
    } else if (e.seq === 1) {
      this.start = 'genesis';
      this.signedThrough = 0;
      if (e.prev_hash !== GENESIS_HASH) this.problem({ kind: 'link', seq: 1, line, message: `event 1: prev_hash must be the genesis hash (64 zeros), got ${short(e.prev_hash)}` });
    } else {
      this.start = 'unanchored';
    }
  }

  private matchCheckpoint(seq: number, signedHash: string, actualHash: string, line: number | undefined, signedRoot?: string): void {
    if (signedHash !== actualHash) {
      this.problem({
        kind: 'checkpoint',
        seq,
        line,
        message: `event ${seq} hashes to ${short(actualHash)} but the signed checkpoint says ${short(signedHash)}: an event at or before ${seq} was rewritten (with its hashes recomputed)`,
      });
      return;
    }
    if (signedRoot !== undefined && this.tree?.size === seq) {
      if (!this.rootMatches(seq, signedRoot, line)) return;
    }
    this.signedThrough = Math.max(this.signedThrough ?? 0, seq);
  }

  private rootMatches(seq: number, root: string, line: number | undefined): boolean {
    const computed = rootOf(this.tree!.frontier);
    if (computed !== root) {
      this.problem({ kind: 'tree', seq, line, message: `the Merkle root of events 1–${seq} is ${short(computed)}, but the signed tree head says ${short(root)}: the log was rewritten, or an event was inserted or removed` });
      return false;
    }
    this.rootsVerified++;
    return true;
  }

  /**
   * The tree of the first `seq` events as perfect subtrees (an export's `tree` line): checked
   * against the signed root of the anchoring checkpoint, then extended with every event read.
   */
  addTree(seq: number, frontier: readonly string[], line?: number): void {
    if (seq === 0 && frontier.length > 0) {
      this.problem({ kind: 'tree', seq: 0, line, message: 'the tree of no events has no nodes' });
      return;
    }
    if (this.lastSeq !== null) {
      this.problem({ kind: 'tree', seq, line, message: 'a tree line must come before the first event' });
      return;
    }
    if (seq > 0) {
      const anchor = this.startAnchor;
      if (anchor?.seq !== seq || anchor.root === undefined) {
        this.problem({ kind: 'tree', seq, line, message: `the tree of ${seq} events is given without the signed tree head of ${seq} events before it` });
        return;
      }
      if (rootOf(frontier) !== anchor.root) {
        this.problem({ kind: 'tree', seq, line, message: `the tree given for the first ${seq} events does not hash to the signed root ${short(anchor.root)}` });
        return;
      }
    }
    this.tree = { size: seq, frontier: [...frontier] };
  }

  private addTreeLine(value: Record<string, unknown>, line: number | undefined): void {
    const parsed = treeSchema.safeParse(value);
    if (!parsed.success) this.problem({ kind: 'malformed', seq: null, line, message: `tree line is malformed: ${describeZod(parsed.error)}` });
    else this.addTree(parsed.data.seq, parsed.data.frontier, line);
  }

  /** A consistency proof between two signed tree heads read before it (RFC 9162 §2.1.4). */
  private addConsistency(value: Record<string, unknown>, line: number | undefined): void {
    const parsed = consistencySchema.safeParse(value);
    if (!parsed.success) {
      this.problem({ kind: 'malformed', seq: null, line, message: `consistency line is malformed: ${describeZod(parsed.error)}` });
      return;
    }
    const { from, to, proof } = parsed.data;
    const r1 = this.signedRoots.get(from);
    const r2 = this.signedRoots.get(to);
    if (r1 === undefined || r2 === undefined) {
      // (a window whose anchoring checkpoint was left out: nothing to check the proof against)
      this.warnings.push(`the consistency proof from ${from} to ${to} events (line ${line ?? '?'}) names a signed tree head the file does not hold; it was not checked`);
    } else if (!verifyConsistency(from, to, r1, r2, proof)) {
      this.problem({ kind: 'tree', seq: to, line, message: `the signed tree head of ${to} events is not an extension of the one of ${from} events (the consistency proof fails): the log was forked or rewritten` });
    } else this.consistencyVerified++;
  }

  /** Whether the events read so far hash to `root` (the head the sequencer recorded, before it is signed). */
  expectRoot(seq: number, root: string): void {
    if (this.tree?.size !== seq) this.problem({ kind: 'tree', seq, message: `the tree could not be followed to event ${seq}` });
    else this.rootMatches(seq, root, undefined);
  }

  /**
   * What each event must say about its request, replayed per request: an event may change only
   * the fields its type changes (a request item changed in the table surfaces at its next event),
   * a decision needs a pending request, and every SVID needs an approval of its request earlier
   * in the file with the same approver.
   */
  private checkMeaning(e: AuditEvent, line: number | undefined): void {
    let reported = false;
    const bad = (kind: ProblemKind, message: string) => {
      reported = true;
      this.problem({ kind, seq: e.seq, line, message: `event ${e.seq} (${e.type} of ${e.request_id}): ${message}` });
    };
    const fixed = sha256Hex(canonicalJson(FIXED_FIELDS.map((f) => e[f] ?? null)));
    let quorumShort: string | null | undefined;
    const shortOfQuorum = () => (quorumShort === undefined ? (quorumShort = quorumProblem(e)) : quorumShort);
    const state = pickLifecycle(e);
    let req = this.requests.get(e.request_id);
    switch (e.type) {
      case 'requested':
        if (e.decision !== 'pending' || LIFECYCLE_FIELDS.some((f) => f !== 'decision' && f !== 'revoked' && f !== 'votes' && (e[f] ?? null) !== null) || e.revoked || (e.votes ?? []).length > 0) {
          bad('lifecycle', 'a new request must be pending, with no vote, decision, SVID or revocation');
        }
        if (req) bad('lifecycle', 'the request was already requested earlier in the log');
        break;
      case 'approved':
        if (e.decision !== 'approved' || !e.approver_identity || !e.decision_at || !e.svid_expires_at) bad('lifecycle', 'an approval must record decision "approved", the approver, decision_at and svid_expires_at');
        else if (e.actor_type !== 'approver' && e.actor_type !== 'operator') bad('lifecycle', `an approval must be made by an approver or operator, not by ${e.actor_type} ${e.actor_id}`);
        else if (shortOfQuorum()) bad('lifecycle', `the approval does not meet its quorum: ${shortOfQuorum()}`);
        break;
      case 'voted':
        if (e.decision !== 'pending' || e.decision_at !== null) bad('lifecycle', 'a vote that does not decide leaves the request pending');
        else if (e.actor_type !== 'approver' && e.actor_type !== 'operator') bad('lifecycle', `a vote must be cast by an approver or operator, not by ${e.actor_type} ${e.actor_id}`);
        break;
      case 'denied':
      case 'expired':
        if (e.decision !== e.type || !e.decision_at) bad('lifecycle', `must record decision "${e.type}" and decision_at`);
        break;
      case 'call_started':
      case 'call_finished': {
        // The call an approval runs is that request's own, by the agent the request is for.
        const c = e.call;
        const outcomes = e.type === 'call_started' ? ['started'] : ['executed', 'failed'];
        if (!c || !outcomes.includes(c.outcome)) bad('lifecycle', `must record the call with outcome ${outcomes.join(' or ')}`);
        else if (c.request_id !== e.request_id || c.payload_sha256 !== e.payload_sha256) bad('lifecycle', 'the call it records is not the one of its request (request_id or payload_sha256 differ)');
        else if (e.actor_type !== 'agent' || e.actor_id !== e.agent_id) bad('lifecycle', `a call is recorded by the request's agent ${e.agent_id}, not by ${e.actor_type} ${e.actor_id}`);
        else if (e.type === 'call_started' && req?.state.call) bad('lifecycle', 'the request already started a call: an approval runs one call');
        else if (e.type === 'call_finished' && req && req.state.call?.outcome !== 'started') bad('lifecycle', 'no started call of the request is left to finish');
        break;
      }
      case 'revoked':
        if (!e.revoked || !e.revoked_at) bad('lifecycle', 'a revocation must record revoked and revoked_at');
        else if (!e.svid_id && e.actor_type !== 'approver' && e.actor_type !== 'operator') bad('lifecycle', 'only a human revokes an approval whose SVID was not issued');
        break;
      case 'svid_issued':
        this.svids++;
        if (e.decision !== 'approved' || !e.approver_identity || !e.svid_id) {
          bad('svid', `SVID ${e.svid_id ?? '(none)'} was issued but the request ${e.decision !== 'approved' ? `is ${e.decision}, not approved` : 'names no approver'}`);
        } else if (req?.approval === 'seen' && req.state.approver_identity !== e.approver_identity) {
          bad('svid', `SVID ${e.svid_id} names approver ${e.approver_identity}, but the request was approved by ${req.state.approver_identity}`);
        } else if (req ? req.approval === 'none' || req.state.decision !== 'approved' : this.inScope(e)) {
          bad('svid', `SVID ${e.svid_id} was issued, but no approval of the request precedes it in the log${req ? ` (the request was ${req.state.decision})` : ''}`);
        } else if (shortOfQuorum()) {
          bad('svid', `SVID ${e.svid_id} was issued without its quorum: ${shortOfQuorum()}`);
        } else {
          this.opts.onSvid?.({
            seq: e.seq,
            svid_id: e.svid_id,
            request_id: e.request_id,
            agent_id: e.agent_id,
            action: e.action,
            approver_identity: e.approver_identity,
            decision_at: e.decision_at,
            svid_expires_at: e.svid_expires_at,
          });
        }
        break;
      default:
        break;
    }
    if (req) {
      if (req.fixed !== fixed) bad('lifecycle', `what was requested (${FIXED_FIELDS.join(', ')}) differs from the request's earlier events: the request was changed after it was made`);
      const changed = LIFECYCLE_FIELDS.filter((f) => canonicalJson(req!.state[f] ?? null) !== canonicalJson(state[f] ?? null));
      const mayChange = fieldsChangedBy(e.type);
      const forbidden = changed.filter((f) => !mayChange.has(f));
      // (one problem per event is enough when the type's own check already named it)
      if (forbidden.length > 0 && !reported) bad('lifecycle', `${forbidden.join(', ')} changed, which a ${e.type} event does not change: the request was changed outside its lifecycle`);
      const before = stateOf(req.state);
      const from = statesBefore(e.type);
      const votesProblem = castProblem(e, req.state.votes ?? []);
      if (votesProblem && !reported) bad('lifecycle', votesProblem);
      if (e.type === 'svid_issued' && req.state.svid_id !== null) bad('svid', `the request already had SVID ${req.state.svid_id}: one request gets one SVID`);
      else if (from && !from.has(before) && !reported) bad('lifecycle', `a ${e.type} event needs the request ${[...from].join(' or ')}, but it was ${before}`);
    } else if (DECISION_EVENTS.has(e.type) && this.inScope(e)) {
      bad('lifecycle', 'the request was made after the log begins, but its earlier events are not in the log');
    }
    this.checkDecisionSignature(e, line);
    const approval = e.type === 'approved' ? 'seen' : (req?.approval ?? (e.type === 'requested' ? 'none' : 'unknown'));
    req = { fixed, state, approval, horizon: horizonOf(e) };
    this.requests.set(e.request_id, req);
    if (++this.sinceForget >= 1000) this.forgetClosed(e.logged_at);
  }

  /** Whether the file must hold every event of `e`'s request: it was made after the file begins. */
  private inScope(e: AuditEvent): boolean {
    if (this.start === 'genesis') return true;
    return this.firstLoggedAt !== null && Date.parse(e.requested_at) >= Date.parse(this.firstLoggedAt) + SCOPE_MARGIN_MS;
  }

  /**
   * An event id logged twice is a replay: a sequenced outbox entry written back into the table
   * and sequenced again (the sequencer refuses those it can tell: core/audit/sequencer.ts
   * `screen`; this finds any it could not, and logs from before it looked). Ids are remembered for
   * REPLAY_MEMORY_MS of event time (the earlier of at and logged_at): memory follows that window.
   */
  private checkReplay(e: ChainEvent, line: number | undefined): void {
    const first = this.eventIds.get(e.event_id);
    if (first !== undefined) this.problem({ kind: 'order', seq: e.seq, line, message: `event ${e.seq}: event_id ${e.event_id} was already logged: an outbox entry was written back and logged twice (a replay)` });
    const t = Math.min(Date.parse(e.at), Date.parse(e.logged_at));
    this.eventIds.set(e.event_id, first ?? t);
    if (t > this.newestAtMs) this.newestAtMs = t;
    if (++this.sinceIdPrune >= 1000) {
      this.sinceIdPrune = 0;
      for (const [id, at] of this.eventIds) if (at < this.newestAtMs - REPLAY_MEMORY_MS) this.eventIds.delete(id);
    }
  }

  /** Forgets requests that are decided and can no longer change (bounded memory on long logs). */
  private forgetClosed(now: string): void {
    this.sinceForget = 0;
    const cutoff = new Date(Date.parse(now) - FORGET_AFTER_MS).toISOString();
    for (const [id, r] of this.requests) if (r.state.decision !== 'pending' && r.horizon < cutoff) this.requests.delete(id);
  }

  private problem(p: Problem): void {
    this.problemCount++;
    if (this.problems.length < (this.opts.maxProblems ?? 100)) this.problems.push(p.line === undefined ? { kind: p.kind, seq: p.seq, message: p.message } : p);
  }
}

function short(h: string): string {
  return `${h.slice(0, 12)}…`;
}

function describeZod(err: z.ZodError): string {
  return err.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(object)'}: ${i.message}`)
    .join('; ');
}

/** Verifies parsed JSONL lines (an export) from any async source. */
export async function verifyLines(lines: AsyncIterable<{ value: unknown; line: number } | { error: string; line: number }>, opts: VerifierOptions = {}): Promise<VerifyReport> {
  const v = new ChainVerifier(opts);
  for await (const l of lines) {
    if ('error' in l) v.addMalformed(l.error, l.line);
    else v.addLine(l.value, l.line);
  }
  return v.finish();
}

function pickLifecycle(e: AuditEvent): Pick<AuditSnapshot, LifecycleField> {
  return {
    approver_identity: e.approver_identity,
    decision_at: e.decision_at,
    decision: e.decision,
    svid_id: e.svid_id,
    svid_expires_at: e.svid_expires_at,
    revoked: e.revoked,
    revoked_at: e.revoked_at,
    votes: e.votes,
    decision_signature: e.decision_signature,
    call: e.call,
  };
}

/**
 * Votes change only by one vote at a time, each recorded by its own voter's event: a vote
 * event adds exactly one vote, cast by its actor; every other event leaves them as they were.
 */
function castProblem(e: AuditEvent, before: readonly CastVote[]): string | null {
  const after = e.votes ?? [];
  if (!VOTE_EVENTS.has(e.type) || e.votes === undefined) return null; // (other events: the changed-fields check)
  const added = after.length - before.length;
  if (added !== 1 || canonicalJson(after.slice(0, before.length)) !== canonicalJson(before)) return `a ${e.type} event must add exactly one vote to the ${before.length} before it`;
  const cast = after.at(-1)!;
  const actor = e.actor_type === 'operator' ? `operator:${e.actor_id}` : e.actor_id;
  if (cast.voter !== actor) return `the vote it adds is ${cast.voter}'s, but the event was made by ${actor}`;
  if (before.some((v) => v.voter === cast.voter)) return `${cast.voter} voted twice`;
  if (e.type === 'approved' && cast.vote !== 'approve') return `the vote that approves it is a ${cast.vote}`;
  if (e.type === 'denied' && cast.vote !== 'deny') return `the vote that denies it is an ${cast.vote}`;
  return null;
}

/** The last moment anything may legitimately change the request: its SVID's end, or the longest a request may wait. */
function horizonOf(e: AuditEvent): string {
  const waitEnd = new Date(Date.parse(e.requested_at) + MAX_TTL_MS).toISOString();
  return e.svid_expires_at !== null && e.svid_expires_at > waitEnd ? e.svid_expires_at : waitEnd;
}
