import type { AuditEvent, Checkpoint } from './event.ts';

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
  /** How many state changes are waiting to be linked into the chain (after a failed write). */
  backlog(limit: number): Promise<number>;
}
