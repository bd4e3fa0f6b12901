import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { eventHash, type AuditEvent, type Checkpoint } from './event.ts';
import { leafHash, verifyInclusion } from './merkle.ts';
import { checkpointSignatureProblem } from './signing.ts';
import type { InclusionProof } from './service.ts';

/**
 * Offline verification of `ackd audit prove`'s output: the signed tree head verifies with the
 * auditor's public key, and each event hashes to what it says and is included in that tree at
 * its position (RFC 9162 §2.1.3.2). What it proves: these events, exactly as shown, are in the
 * log the key holder signed, at these positions; nothing can be added to or changed in them
 * without a new signature. What it does not prove: that the request has no other events (the
 * log's consistency and completeness are `ackd audit verify`'s).
 */

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters');
const proofSchema = z
  .object({
    v: z.literal(1),
    request_id: z.string().min(1),
    checkpoint: z.looseObject({ v: z.literal(2), seq: z.number().int().positive(), root: hex64 }),
    events: z.array(z.object({ event: z.looseObject({ seq: z.number().int().positive(), hash: hex64, request_id: z.string() }), leaf_index: z.number().int().nonnegative(), path: z.array(hex64) }).strict()).min(1),
    not_yet_covered: z.number().int().nonnegative(),
  })
  .strict();

export interface ProofReport {
  readonly ok: boolean;
  readonly request_id: string | null;
  /** The signed tree head the events are proven against. */
  readonly tree_size: number | null;
  readonly root: string | null;
  readonly signed_at: string | null;
  /** The events proven, in order: seq and type. */
  readonly events: readonly { readonly seq: number; readonly type: string; readonly at: string }[];
  readonly problems: readonly string[];
  readonly warnings: readonly string[];
}

export function verifyInclusionProof(value: unknown, publicKey: KeyObject): ProofReport {
  const parsed = proofSchema.safeParse(value);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    return { ok: false, request_id: null, tree_size: null, root: null, signed_at: null, events: [], problems: [`not an ackd inclusion proof: ${i.path.join('.') || '(object)'}: ${i.message}`], warnings: [] };
  }
  const p = parsed.data as unknown as InclusionProof;
  const c = p.checkpoint as Checkpoint;
  const problems: string[] = [];
  const bad = checkpointSignatureProblem(c, publicKey);
  if (bad) problems.push(`the tree head ${bad}`);
  const proven: { seq: number; type: string; at: string }[] = [];
  for (const { event, leaf_index, path } of p.events) {
    const e = event as AuditEvent;
    const name = `event ${e.seq}`;
    if (e.request_id !== p.request_id) problems.push(`${name} is of request ${e.request_id}, not ${p.request_id}`);
    if (leaf_index !== e.seq - 1) problems.push(`${name} is claimed at leaf ${leaf_index}; event seq n is leaf n-1`);
    if (eventHash(e) !== e.hash) problems.push(`${name}: its content does not match its hash (it was changed)`);
    else if (!verifyInclusion(leaf_index, c.seq, leafHash(e.hash), path, c.root!)) problems.push(`${name}: its audit path does not lead to the signed root: it is not in the signed log as shown`);
    proven.push({ seq: e.seq, type: e.type, at: e.at });
  }
  const seqs = proven.map((e) => e.seq);
  if (seqs.some((s, i) => i > 0 && s <= seqs[i - 1]!)) problems.push('the events are not in log order');
  const warnings = p.not_yet_covered > 0 ? [`${p.not_yet_covered} later event(s) of the request were not yet covered by a signed tree head when the proof was made`] : [];
  return { ok: problems.length === 0, request_id: p.request_id, tree_size: c.seq, root: c.root ?? null, signed_at: c.signed_at, events: proven, problems, warnings };
}
