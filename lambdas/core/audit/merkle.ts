import { createHash } from 'node:crypto';

/**
 * The audit log's Merkle tree, as RFC 9162 (Certificate Transparency 2.0) §2.1 defines it, over
 * the events in sequence order: leaf i is event seq i+1, and its leaf input is the event's hash
 * (which commits to every field of the event). Hashes are lowercase hex SHA-256:
 *   leaf = SHA-256(0x00 ‖ event hash),  node = SHA-256(0x01 ‖ left ‖ right).
 *
 * Pure. Proofs are computed from "perfect" nodes: the root of each complete, aligned subtree of
 * 2^level leaves, stored once by the sequencer when it completes (`level`, `index` = its first
 * leaf / 2^level). Any range the RFC's recursion needs is a few of them, so a proof costs
 * O(log n) node reads.
 */

export interface NodeKey {
  readonly level: number;
  readonly index: number;
}

export interface TreeNode extends NodeKey {
  readonly hash: string;
}

/** The roots of the perfect subtrees a tree of `size` leaves is made of, largest (leftmost) first. */
export type Frontier = readonly string[];

const LEAF = Buffer.from([0]);
const NODE = Buffer.from([1]);

export function leafHash(eventHash: string): string {
  return createHash('sha256').update(LEAF).update(Buffer.from(eventHash, 'hex')).digest('hex');
}

export function nodeHash(left: string, right: string): string {
  return createHash('sha256').update(NODE).update(Buffer.from(left, 'hex')).update(Buffer.from(right, 'hex')).digest('hex');
}

/** MTH({}) = SHA-256 of the empty string. */
export const EMPTY_ROOT = createHash('sha256').digest('hex');

/** The tree's root from its frontier: the perfect subtrees folded right to left. */
export function rootOf(frontier: Frontier): string {
  if (frontier.length === 0) return EMPTY_ROOT;
  let h = frontier.at(-1)!;
  for (let i = frontier.length - 2; i >= 0; i--) h = nodeHash(frontier[i]!, h);
  return h;
}

/** The keys of the perfect subtrees of a tree of `size` leaves, largest first (what `Frontier` holds). */
export function frontierKeys(size: number): NodeKey[] {
  const out: NodeKey[] = [];
  let start = 0;
  for (let level = 52; level >= 0; level--) {
    const span = 2 ** level;
    if (size - start >= span) {
      out.push({ level, index: start / span });
      start += span;
    }
  }
  return out;
}

/**
 * Appends leaves to a tree of `size` leaves with this frontier. Returns the new frontier and
 * every perfect node completed on the way (the leaves themselves are level 0).
 */
export function appendLeaves(frontier: Frontier, size: number, leaves: readonly string[]): { frontier: string[]; nodes: TreeNode[] } {
  const stack = frontierKeys(size).map((k, i) => ({ ...k, hash: frontier[i]! }));
  if (stack.length !== frontier.length) throw new Error(`merkle: a tree of ${size} leaves has ${stack.length} frontier nodes, not ${frontier.length}`);
  const nodes: TreeNode[] = [];
  let n = size;
  for (const leaf of leaves) {
    let node: TreeNode = { level: 0, index: n, hash: leaf };
    nodes.push(node);
    // Merge while the new node completes a pair with the frontier's last node of its level.
    while (stack.length > 0 && stack.at(-1)!.level === node.level) {
      const left = stack.pop()!;
      node = { level: node.level + 1, index: left.index / 2, hash: nodeHash(left.hash, node.hash) };
      nodes.push(node);
    }
    stack.push(node);
    n++;
  }
  return { frontier: stack.map((s) => s.hash), nodes };
}

/** A range of leaves [start, end). */
type Range = readonly [number, number];

function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** The perfect nodes that make up the subtree hash of [start, end) as the RFC's recursion splits it. */
function cover([start, end]: Range): NodeKey[] {
  const n = end - start;
  if (n <= 0) throw new Error('merkle: empty range');
  if ((n & (n - 1)) === 0 && start % n === 0) return [{ level: Math.log2(n), index: start / n }];
  const k = largestPowerOfTwoBelow(n);
  return [...cover([start, start + k]), ...cover([start + k, end])];
}

/** The subtree hash of [start, end), from perfect nodes. */
function rangeHash([start, end]: Range, nodes: ReadonlyMap<string, string>): string {
  const n = end - start;
  if ((n & (n - 1)) === 0 && start % n === 0) {
    const h = nodes.get(keyOf({ level: Math.log2(n), index: start / n }));
    if (h === undefined) throw new Error(`merkle: node for leaves ${start}–${end - 1} is missing`);
    return h;
  }
  const k = largestPowerOfTwoBelow(n);
  return nodeHash(rangeHash([start, start + k], nodes), rangeHash([start + k, end], nodes));
}

export function keyOf(k: NodeKey): string {
  return `${k.level}/${k.index}`;
}

/** RFC 6962 PATH(m, D[start:end]): the ranges whose hashes form leaf m's audit path, bottom first. */
function pathRanges(m: number, start: number, end: number): Range[] {
  const n = end - start;
  if (n <= 1) return [];
  const k = largestPowerOfTwoBelow(n);
  return m < k ? [...pathRanges(m, start, start + k), [start + k, end]] : [...pathRanges(m - k, start + k, end), [start, start + k]];
}

/** RFC 6962 SUBPROOF(m, D[start:end], b): the ranges of the consistency proof, bottom first. */
function subproofRanges(m: number, start: number, end: number, b: boolean): Range[] {
  const n = end - start;
  if (m === n) return b ? [] : [[start, end]];
  const k = largestPowerOfTwoBelow(n);
  return m <= k ? [...subproofRanges(m, start, start + k, b), [start + k, end]] : [...subproofRanges(m - k, start + k, end, false), [start, start + k]];
}

/** What a proof needs: its ranges, and the perfect nodes to read to hash them. */
export interface ProofPlan {
  readonly ranges: readonly Range[];
  readonly needs: readonly NodeKey[];
}

function plan(ranges: Range[]): ProofPlan {
  const seen = new Map<string, NodeKey>();
  for (const r of ranges) for (const k of cover(r)) seen.set(keyOf(k), k);
  return { ranges, needs: [...seen.values()] };
}

/** The plan of the inclusion proof of leaf `index` in the tree of `size` leaves. */
export function inclusionPlan(index: number, size: number): ProofPlan {
  if (!Number.isInteger(index) || index < 0 || index >= size) throw new Error(`merkle: leaf ${index} is not in a tree of ${size} leaves`);
  return plan(pathRanges(index, 0, size));
}

/** The plan of the consistency proof from the tree of `first` leaves to the tree of `second` leaves. */
export function consistencyPlan(first: number, second: number): ProofPlan {
  if (!Number.isInteger(first) || first < 0 || first > second) throw new Error(`merkle: no consistency proof from ${first} to ${second} leaves`);
  if (first === 0 || first === second) return { ranges: [], needs: [] };
  return plan(subproofRanges(first, 0, second, true));
}

/** A plan's proof, once its nodes are read (`nodes`: keyOf → hash). */
export function proofFrom(p: ProofPlan, nodes: ReadonlyMap<string, string>): string[] {
  return p.ranges.map((r) => rangeHash(r, nodes));
}

/** RFC 9162 §2.1.3.2: whether `path` proves leaf `index` (its leaf hash) is in the tree of `size` leaves with `root`. */
export function verifyInclusion(index: number, size: number, leaf: string, path: readonly string[], root: string): boolean {
  if (!Number.isInteger(index) || index < 0 || index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r === root;
}

/** RFC 9162 §2.1.4.2: whether `proof` shows the tree of `first` leaves (root1) is a prefix of the tree of `second` leaves (root2). */
export function verifyConsistency(first: number, second: number, root1: string, root2: string, proof: readonly string[]): boolean {
  if (!Number.isInteger(first) || !Number.isInteger(second) || first < 0 || first > second) return false;
  if (first === second) return proof.length === 0 && root1 === root2;
  if (first === 0) return proof.length === 0;
  let path = [...proof];
  // A power-of-two first tree is itself a node of the second: its root starts the path.
  if ((first & (first - 1)) === 0) path = [root1, ...path];
  if (path.length === 0) return false;
  let fn = first - 1;
  let sn = second - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return fr === root1 && sr === root2 && sn === 0;
}
