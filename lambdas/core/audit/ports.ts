import type { AuditEvent, AuditSnapshot, ChainEvent, Checkpoint } from './event.ts';

/** The newest event of the chain: seq 0 and the genesis hash when the chain is empty. */
export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
  readonly logged_at: string | null;
}

/** Read side of the audit chain, and its checkpoints. (Events are appended by the RequestStore.) */
export interface AuditLog {
  /** The newest event, read consistently. */
  head(): Promise<ChainHead>;
  /** One event, read consistently. */
  event(seq: number): Promise<AuditEvent | undefined>;
  /** Events with from <= seq <= to, in chain order, fields in export column order (`eventFields`). Missing events (removed) are simply absent. */
  events(from: number, to: number): AsyncIterable<AuditEvent>;
  /** The run of the chain logged in [since, until): its first and last seq, or null when empty. */
  seqRange(window: { since?: string | undefined; until?: string | undefined }): Promise<{ from: number; to: number } | null>;
  checkpointAtOrBefore(seq: number): Promise<Checkpoint | undefined>;
  checkpointAtOrAfter(seq: number): Promise<Checkpoint | undefined>;
  /** Checkpoints with from <= seq <= to, in order. */
  checkpoints(from: number, to: number): AsyncIterable<Checkpoint>;
  /** Stores a checkpoint once (a second checkpoint of the same seq is ignored). */
  putCheckpoint(c: Checkpoint): Promise<boolean>;
  /** The events at these seqs, in chain order (missing ones left out). */
  eventsAt(seqs: readonly number[]): Promise<AuditEvent[]>;
  /** Every request item as stored, with where it points into the chain (for live verification). */
  requestItems(): AsyncIterable<RequestItemView>;
  /** How many state changes are waiting to be linked into the chain (after a failed write). */
  backlog(limit: number): Promise<number>;
  /** Appends an event of no request (a policy change), built by `make` after the chain's head. */
  append(make: (prev: ChainHead, now: Date) => ChainEvent): Promise<ChainEvent>;
}

/** A request item's audit fields and its pointers into the chain. */
export interface RequestItemView {
  readonly snapshot: AuditSnapshot;
  /** The seq of the request's latest linked event. */
  readonly latestSeq: number | null;
  /** The seq of the event that decided it (approved, denied or expired). */
  readonly decisionSeq: number | null;
  /** A state change is recorded on the item but not yet linked into the chain. */
  readonly unlinked: boolean;
}
