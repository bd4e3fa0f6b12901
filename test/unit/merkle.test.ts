import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { appendLeaves, consistencyPlan, EMPTY_ROOT, inclusionPlan, keyOf, leafHash, nodeHash, proofFrom, rootOf, verifyConsistency, verifyInclusion } from '../../lambdas/core/audit/merkle.ts';

/** RFC 9162's MTH, written the slow way from its definition, as the reference. */
function mth(leaves: readonly string[]): string {
  if (leaves.length === 0) return EMPTY_ROOT;
  if (leaves.length === 1) return leaves[0]!;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

const eventHash = (i: number) => createHash('sha256').update(`event ${i}`).digest('hex');

/** A tree built by appending in uneven batches, with every perfect node it stored. */
function build(n: number) {
  const leaves = Array.from({ length: n }, (_, i) => leafHash(eventHash(i)));
  let frontier: string[] = [];
  const nodes = new Map<string, string>();
  for (let at = 0; at < n; ) {
    const batch = leaves.slice(at, at + 1 + (at % 7));
    const r = appendLeaves(frontier, at, batch);
    frontier = r.frontier;
    for (const x of r.nodes) nodes.set(keyOf(x), x.hash);
    at += batch.length;
  }
  return { leaves, frontier, nodes };
}

describe('audit Merkle tree (RFC 9162)', () => {
  it('leaf and node hashes use the RFC prefixes', () => {
    const h = eventHash(1);
    expect(leafHash(h)).toBe(createHash('sha256').update(Buffer.concat([Buffer.from([0]), Buffer.from(h, 'hex')])).digest('hex'));
    expect(nodeHash(h, h)).toBe(createHash('sha256').update(Buffer.concat([Buffer.from([1]), Buffer.from(h, 'hex'), Buffer.from(h, 'hex')])).digest('hex'));
  });

  it('the incremental root equals the definition for every size up to 70', () => {
    for (let n = 0; n <= 70; n++) {
      const { leaves, frontier } = build(n);
      expect(rootOf(frontier), `size ${n}`).toBe(mth(leaves));
    }
  });

  it('every inclusion proof verifies, and fails for another leaf, index or path', () => {
    for (const n of [1, 2, 3, 5, 8, 13, 31, 32, 33, 64]) {
      const { leaves, nodes } = build(n);
      const root = mth(leaves);
      for (let i = 0; i < n; i++) {
        const proof = proofFrom(inclusionPlan(i, n), nodes);
        expect(verifyInclusion(i, n, leaves[i]!, proof, root), `${i} of ${n}`).toBe(true);
        expect(verifyInclusion(i, n, leafHash(eventHash(1000)), proof, root)).toBe(false);
        if (n > 1) expect(verifyInclusion((i + 1) % n, n, leaves[i]!, proof, root)).toBe(false);
        if (proof.length > 0) expect(verifyInclusion(i, n, leaves[i]!, [...proof.slice(0, -1), eventHash(7)], root)).toBe(false);
      }
    }
  });

  it('every consistency proof verifies, and fails on any change', () => {
    const { leaves, nodes } = build(40);
    for (let second = 1; second <= 40; second++) {
      const root2 = mth(leaves.slice(0, second));
      for (let first = 1; first <= second; first++) {
        const root1 = mth(leaves.slice(0, first));
        const proof = proofFrom(consistencyPlan(first, second), nodes);
        expect(verifyConsistency(first, second, root1, root2, proof), `${first} → ${second}`).toBe(true);
        if (first < second) {
          expect(verifyConsistency(first, second, eventHash(1), root2, proof)).toBe(false);
          expect(verifyConsistency(first, second, root1, eventHash(2), proof)).toBe(false);
          if (proof.length > 0) expect(verifyConsistency(first, second, root1, root2, [eventHash(3), ...proof.slice(1)])).toBe(false);
        }
      }
    }
  });

  it('a proof asks only for O(log n) stored nodes', () => {
    expect(inclusionPlan(12345, 1_000_000).needs.length).toBeLessThanOrEqual(2 * 20);
    expect(consistencyPlan(333_333, 1_000_000).needs.length).toBeLessThanOrEqual(3 * 20);
  });
});
