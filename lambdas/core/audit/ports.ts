import type { AdminChange, AdminEventType, AuditEvent, AuditSnapshot, Checkpoint, PendingEvent } from './event.ts';
import type { NodeKey } from './merkle.ts';
import type { QuarantinePage, QuarantineQuery } from './quarantine.ts';

/** The newest sequenced event of the log: seq 0 and the genesis hash when the log is empty; `root` is the Merkle tree's. */
export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
  readonly logged_at: string | null;
  readonly root: string;
}

/** Read side of the audit log, its checkpoints and its tree. (Events are written by the RequestStore and sequenced by the Sequencer.) */
export interface AuditLog {
  /** The head the sequencer last moved to, read consistently. */
  head(): Promise<ChainHead>;
  /** One event, read consistently. */
  event(seq: number): Promise<AuditEvent | undefined>;
  /** Events with from <= seq <= to, in chain order, fields in export column order (`eventFields`). Missing events (removed) are simply absent. */
  events(from: number, to: number): AsyncIterable<AuditEvent>;
  /** The run of the log logged in [since, until): its first and last seq, or null when empty. */
  seqRange(window: { since?: string | undefined; until?: string | undefined }): Promise<{ from: number; to: number } | null>;
  checkpointAtOrBefore(seq: number): Promise<Checkpoint | undefined>;
  checkpointAtOrAfter(seq: number): Promise<Checkpoint | undefined>;
  /** Checkpoints with from <= seq <= to, in order. */
  checkpoints(from: number, to: number): AsyncIterable<Checkpoint>;
  /** Stores a checkpoint once (a second checkpoint of the same seq is ignored). */
  putCheckpoint(c: Checkpoint): Promise<boolean>;
  /** The events at these seqs, in chain order (missing ones left out). */
  eventsAt(seqs: readonly number[]): Promise<AuditEvent[]>;
  /** Perfect tree nodes by key (merkle.ts `keyOf` → hash); missing ones left out. */
  nodes(keys: readonly NodeKey[]): Promise<Map<string, string>>;
  /** The seqs of a request's sequenced events, in order; undefined when there is no such request. */
  requestEventSeqs(requestId: string): Promise<number[] | undefined>;
  /** Every request item as stored, with where it points into the log (for live verification). */
  requestItems(): AsyncIterable<RequestItemView>;
  /** How many sources of events are waiting to be sequenced (up to `limit`), and since when the oldest waits. */
  backlog(limit: number): Promise<{ count: number; oldest_at: string | null }>;
  /** Records an operator's change (a policy, an agent's owner) for the sequencer; throws when it cannot. */
  enqueueAdmin(event: PendingEvent & { readonly type: AdminEventType }, change: AdminChange): Promise<void>;
  /** The outbox entries the sequencer refused and quarantined in [since, until), newest or oldest first, at most `limit`, and how many more (quarantine.ts). */
  quarantineRecords(q: QuarantineQuery): Promise<QuarantinePage>;
}

/** A request item's audit fields and its pointers into the log. */
export interface RequestItemView {
  readonly snapshot: AuditSnapshot;
  /** The seq of the request's latest sequenced event. */
  readonly latestSeq: number | null;
  /** The seq of the event that decided it (approved, denied or expired). */
  readonly decisionSeq: number | null;
  /** Events of its changes are still waiting to be sequenced. */
  readonly unlinked: boolean;
}
