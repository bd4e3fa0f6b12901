import { describe, expect, it } from 'vitest';
import { auditEvent, chainEvent, eventHash, GENESIS_HASH, snapshotOf, type AuditEvent, type AuditSnapshot, type Checkpoint } from '../../lambdas/core/audit/event.ts';
import type { AgentId, RequestId } from '../../lambdas/core/ids.ts';
import { pendingRecord } from '../helpers/consent-fixtures.ts';
import { checkpointPublicKey, signCheckpoint } from '../../lambdas/core/audit/signing.ts';
import { ChainVerifier, type VerifyReport } from '../../lambdas/core/audit/verify.ts';
import { LocalKeySigner } from '../../lambdas/adapters/signing/local.ts';
import { appendLeaves, consistencyPlan, frontierKeys, keyOf, leafHash, proofFrom, rootOf } from '../../lambdas/core/audit/merkle.ts';

// The verifier, on chains built in memory by the same code that builds them in the store. Every
// tampering is one edit of an otherwise valid export; the report must name the exact seq.

type Line = Record<string, unknown>;
const signer = LocalKeySigner.generate();
const publicKey = checkpointPublicKey(await signer.publicKeyPem());

function snapshot(i: number, over: Partial<AuditSnapshot> = {}): AuditSnapshot {
  const id = `req_${String(i).padStart(26, '0')}` as RequestId;
  return snapshotOf(pendingRecord({ request_id: id, agent_id: 'deploy-bot' as AgentId, action: `deploy ${i}`, ...over }, new Date('2026-11-01T00:00:00.000Z')));
}

/** `requests` lifecycles (requested → approved → svid_issued), a signed checkpoint every `every` events. */
async function buildExport(requests: number, every = 5): Promise<{ lines: Line[]; events: AuditEvent[]; nodes: Map<string, string> }> {
  const events: AuditEvent[] = [];
  let prev = { seq: 0, hash: GENESIS_HASH, logged_at: null as string | null };
  const t = (n: number) => new Date(Date.UTC(2026, 10, 1, 0, 0, n));
  const add = (e: ReturnType<typeof auditEvent>, s: AuditSnapshot) => {
    const ev = chainEvent(e, s, prev, t(events.length));
    events.push(ev);
    prev = { seq: ev.seq, hash: ev.hash, logged_at: ev.logged_at };
  };
  for (let i = 0; i < requests; i++) {
    add(auditEvent('requested', { type: 'agent', id: 'deploy-bot' }, t(events.length)), snapshot(i));
    const at = t(events.length).toISOString();
    const votes = [{ voter: 'sub-alice', email: null, vote: 'approve' as const, at, groups: [] }];
    const approved = snapshot(i, { decision: 'approved', approver_identity: 'sub-alice', decision_at: at, svid_expires_at: '2026-11-01T01:00:00.000Z', votes });
    add(auditEvent('approved', { type: 'approver', id: 'sub-alice' }, t(events.length)), approved);
    add(auditEvent('svid_issued', { type: 'agent', id: 'deploy-bot' }, t(events.length)), { ...approved, svid_id: `abc${i}` as never });
  }
  // As the export writes it: the tree at the start, every signed tree head with its root, and
  // after each one the consistency proof from the one before.
  const lines: Line[] = [{ kind: 'tree', seq: 0, frontier: [] }];
  const nodes = new Map<string, string>();
  let frontier: string[] = [];
  let lastSigned = 0;
  for (const e of events) {
    lines.push({ kind: 'event', ...e });
    const r = appendLeaves(frontier, e.seq - 1, [leafHash(e.hash)]);
    frontier = r.frontier;
    for (const n of r.nodes) nodes.set(keyOf(n), n.hash);
    if (e.seq % every === 0) {
      lines.push({ kind: 'checkpoint', ...(await signCheckpoint(signer, { ...e, root: rootOf(frontier) }, t(1000 + e.seq))) });
      if (lastSigned > 0) lines.push({ kind: 'consistency', from: lastSigned, to: e.seq, proof: proofFrom(consistencyPlan(lastSigned, e.seq), nodes) });
      lastSigned = e.seq;
    }
  }
  lines.push(endLine(lines));
  return { lines, events, nodes };
}

/** The export's end line; `firstSeq` as the exporter wrote it (a forger who fixes the counts may leave it). */
function endLine(lines: Line[], firstSeq?: number): Line {
  const events = lines.filter((l) => l.kind === 'event');
  return { kind: 'end', events: events.length, checkpoints: lines.filter((l) => l.kind === 'checkpoint').length, first_seq: firstSeq ?? events[0]?.seq ?? null, last_seq: events.at(-1)?.seq ?? null };
}

function verify(lines: Line[], opts: { key?: boolean } = {}): VerifyReport {
  const v = new ChainVerifier(opts.key === false ? {} : { publicKey });
  lines.forEach((l, i) => v.addLine(structuredClone(l), i + 1));
  return v.finish();
}

/** The export with the event `seq` replaced (end line recounted, as a careful forger would). */
function edit(lines: Line[], seq: number, f: (e: Line) => Line | Line[] | null): Line[] {
  const out: Line[] = [];
  const firstSeq = lines.find((l) => l.kind === 'end')?.first_seq as number | undefined;
  for (const l of lines) {
    if (l.kind === 'end') continue;
    if (l.kind === 'event' && l.seq === seq) {
      const r = f({ ...l });
      if (r === null) continue;
      out.push(...(Array.isArray(r) ? r : [r]));
    } else out.push(l);
  }
  out.push(endLine(out, firstSeq));
  return out;
}

function rehash(e: Line): Line {
  const { kind: _k, ...rest } = e;
  return { ...e, hash: eventHash(rest as unknown as AuditEvent) };
}

describe('audit chain verification', () => {
  it('an intact export verifies: genesis start, every checkpoint signed, each SVID with its approver', async () => {
    const { lines } = await buildExport(10);
    const svids: string[] = [];
    const v = new ChainVerifier({ publicKey, onSvid: (s) => svids.push(`${s.svid_id}:${s.approver_identity}`) });
    lines.forEach((l, i) => v.addLine(l, i + 1));
    const r = v.finish();
    expect(r.problems).toEqual([]);
    expect(r).toMatchObject({ ok: true, events: 30, first_seq: 1, last_seq: 30, start: 'genesis', checkpoints: 6, signed_through: 30, unsigned_tail: 0, svids_issued: 10 });
    expect(r.warnings).toEqual([]);
    expect(svids).toHaveLength(10);
    expect(svids[0]).toBe('abc0:sub-alice');
  });

  it('a changed event fails at exactly its seq, whichever event it is', async () => {
    const { lines } = await buildExport(6);
    for (const seq of [1, 2, 9, 17, 18]) {
      const r = verify(edit(lines, seq, (e) => ({ ...e, approver_identity: 'sub-mallory' })));
      expect(r.ok).toBe(false);
      expect(r.problems[0]).toMatchObject({ kind: 'hash', seq });
    }
  });

  it('a changed event with its hash recomputed breaks the link into the next event; its checkpoint catches a rewritten tail', async () => {
    const { lines } = await buildExport(6, 5);
    const r = verify(edit(lines, 7, (e) => rehash({ ...e, action: 'drop database' })));
    expect(r.problems[0]).toMatchObject({ kind: 'link', seq: 8 });
    expect(r.problems[0]!.message).toContain('event 7 was changed');

    // Rewrite event 7 and re-chain everything after it: only the signed checkpoint at 10 can tell.
    let prevHash = '';
    const rewritten = lines.map((l) => {
      if (l.kind !== 'event' || (l.seq as number) < 7) return l;
      const changed = l.seq === 7 ? { ...l, action: 'drop database' } : { ...l, prev_hash: prevHash };
      const out = rehash(changed);
      prevHash = out.hash as string;
      return out;
    });
    const r2 = verify(rewritten);
    expect(r2.ok).toBe(false);
    expect(r2.problems).toContainEqual(expect.objectContaining({ kind: 'checkpoint', seq: 10 }));
    // The per-request replay sees it too: the request's later event asks for something else.
    expect(r2.problems).toContainEqual(expect.objectContaining({ kind: 'lifecycle', seq: 8 }));
  });

  it('a deleted event fails at its seq', async () => {
    const { lines } = await buildExport(6);
    for (const seq of [1, 3, 11]) {
      const r = verify(edit(lines, seq, () => null));
      expect(r.problems[0]).toMatchObject({ kind: 'gap', seq });
    }
  });

  it('a deleted event whose checkpoint stays is reported at its seq, and by the checkpoint', async () => {
    const { lines } = await buildExport(4, 5);
    // As the export writes it: the checkpoint where its event should be.
    const r2 = verify(edit(lines, 5, () => null));
    expect(r2.problems[0]).toMatchObject({ kind: 'gap', seq: 5 });
    expect(r2.problems.map((p) => p.message).join('\n')).toContain('a signed checkpoint covers event 5, which is missing');
  });

  it('two reordered events fail at the first of them', async () => {
    const { lines, events } = await buildExport(6);
    const seq = 8;
    const swapped = edit(lines, seq, () => null).flatMap((l) => (l.kind === 'event' && l.seq === seq + 1 ? [l, { kind: 'event', ...events[seq - 1] }] : [l]));
    const r = verify(swapped);
    expect(r.problems[0]!.seq).toBe(seq);
  });

  it('an inserted event, even one correctly hashed and linked, fails at its seq', async () => {
    const { lines, events } = await buildExport(6);
    const seq = 13;
    const before = events[seq - 2]!;
    const forged = chainEvent(auditEvent('approved', { type: 'approver', id: 'sub-mallory' }, new Date('2026-11-01T00:00:12Z')), snapshot(99, { decision: 'approved', approver_identity: 'sub-mallory', decision_at: '2026-11-01T00:00:12.000Z' }), before, new Date(before.logged_at));
    const r = verify(edit(lines, seq, (e) => [{ kind: 'event', ...forged }, e]));
    expect(r.ok).toBe(false);
    expect(r.problems[0]!.seq).toBe(seq);
  });

  it('a forged or foreign checkpoint is detected', async () => {
    const { lines } = await buildExport(4);
    const idx = lines.findIndex((l) => l.kind === 'checkpoint');
    const forgedHash = lines.map((l, i) => (i === idx ? { ...l, hash: 'f'.repeat(64) } : l));
    expect(verify(forgedHash).problems[0]).toMatchObject({ kind: 'checkpoint', seq: 5 });
    expect(verify(forgedHash).problems[0]!.message).toContain('does not verify');

    const other = LocalKeySigner.generate();
    const cp = lines[idx] as unknown as Checkpoint;
    const foreign = { kind: 'checkpoint', ...(await signCheckpoint(other, { ...cp, root: cp.root! }, new Date())) };
    const r = verify(lines.map((l, i) => (i === idx ? foreign : l)));
    expect(r.problems[0]).toMatchObject({ kind: 'checkpoint', seq: 5 });
    expect(r.problems[0]!.message).toContain('not by the given public key');

    expect(verify(lines, { key: false }).problems[0]!.message).toContain('no public key');
  });

  it('events removed from the end are detected by the checkpoint that signed them', async () => {
    const { lines } = await buildExport(4, 6); // checkpoints at 6 and 12
    const cut = lines.filter((l) => !(l.kind === 'event' && (l.seq as number) > 10)).filter((l) => l.kind !== 'end');
    cut.push(endLine(cut));
    const r = verify(cut);
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatchObject({ kind: 'gap', seq: 12 });

    const noEnd = lines.slice(0, -1);
    expect(verify(noEnd).warnings.join(' ')).toContain('no end line');
    const wrongCount = [...lines.slice(0, -1), { kind: 'end', events: 13, checkpoints: 2 }];
    expect(verify(wrongCount).ok).toBe(false);
  });

  it('an SVID without an approval by a named approver fails, even in a well-formed chain', async () => {
    let prev = { seq: 0, hash: GENESIS_HASH, logged_at: null as string | null };
    const lines: Line[] = [];
    const at = new Date('2026-11-01T00:00:00Z');
    for (const [type, snap] of [
      ['requested', snapshot(1)],
      ['svid_issued', snapshot(1, { svid_id: 'dead' as never })],
    ] as const) {
      const e = chainEvent(auditEvent(type, { type: 'agent', id: 'deploy-bot' }, at), snap, prev, at);
      prev = e;
      lines.push({ kind: 'event', ...e });
    }
    lines.push(endLine(lines));
    const r = verify(lines);
    expect(r.problems[0]).toMatchObject({ kind: 'svid', seq: 2 });
    expect(r.problems[0]!.message).toContain('not approved');
  });

  it('a window starting after a checkpoint is anchored by it; without it the start is only a warning', async () => {
    const { lines, nodes } = await buildExport(8, 5);
    const at = lines.findIndex((l) => l.kind === 'checkpoint' && l.seq === 10);
    // As the export writes a window: its anchoring checkpoint, then the tree as of it.
    const tree: Line = { kind: 'tree', seq: 10, frontier: frontierKeys(10).map((k) => nodes.get(keyOf(k))!) };
    const window = [lines[at]!, tree, ...lines.slice(at + 2, -1)];
    window.push(endLine(window));
    const r = verify(window);
    expect(r).toMatchObject({ ok: true, start: 'checkpoint', first_seq: 11, roots_verified: 2, consistency_verified: 2 });
    // A tree that is not the signed one's is refused.
    const badTree = verify(window.map((l) => (l.kind === 'tree' ? { ...l, frontier: [...(l.frontier as string[]).slice(0, -1), '0'.repeat(64)] } : l)));
    expect(badTree.problems[0]).toMatchObject({ kind: 'tree', seq: 10 });
    const unanchored = verify(window.filter((l) => l.kind !== 'tree').slice(1).map((l) => (l.kind === 'end' ? { ...l, checkpoints: (l.checkpoints as number) - 1 } : l)));
    expect(unanchored).toMatchObject({ ok: true, start: 'unanchored' });
    expect(unanchored.warnings.join(' ')).toContain('starts at event 11');
    // The anchor names the event that must follow it: dropping event 11 is caught.
    const dropped = edit(window, 11, () => null);
    expect(verify(dropped).problems[0]).toMatchObject({ kind: 'gap', seq: 11 });
  });

  it('every signed root is recomputed from the events, and each pair of tree heads is proven consistent', async () => {
    const { lines } = await buildExport(8, 5);
    expect(verify(lines)).toMatchObject({ ok: true, roots_verified: 4, consistency_verified: 3 });
    // A consistency proof with one hash changed fails, naming the later tree head.
    const i = lines.findIndex((l) => l.kind === 'consistency' && l.to === 15);
    const broken = lines.map((l, j) => (j === i ? { ...l, proof: ['0'.repeat(64), ...(l.proof as string[]).slice(1)] } : l));
    expect(verify(broken).problems[0]).toMatchObject({ kind: 'tree', seq: 15 });
    // A proof between tree heads the file does not hold cannot be checked: said so.
    const foreign = [...lines.slice(0, -1), { kind: 'consistency', from: 3, to: 20, proof: [] }];
    expect(verify(foreign).warnings.join()).toMatch(/does not hold; it was not checked/);
  });

  it('malformed lines are named by line number and change nothing else', async () => {
    const { lines } = await buildExport(2);
    const bad = [...lines.slice(0, 2), { kind: 'event', seq: 'x' }, ...lines.slice(2)];
    const r = verify(bad);
    expect(r.problems[0]).toMatchObject({ kind: 'malformed', line: 3 });
    expect(r.problems[0]!.message).toContain('seq');
  });
});

describe('gateway calls in the chain (issue 14)', () => {
  const t = (n: number) => new Date(Date.UTC(2026, 10, 1, 0, 0, n));
  const agent = { type: 'agent' as const, id: 'deploy-bot' };
  const payload_sha256 = 'a'.repeat(64);
  const id = `req_${'1'.padStart(26, '0')}` as RequestId;
  const call = (outcome: 'started' | 'executed' | 'failed', over: Record<string, unknown> = {}) => ({
    server: 'fs', tool: 'write_file', effect: 'mutating' as const, outcome, payload_sha256, caller: null, request_id: id, result_sha256: outcome === 'executed' ? 'b'.repeat(64) : null, reason: null, ...over,
  });

  /** requested → approved → svid_issued → the given call events, as the sequencer would chain them. */
  function chain(calls: { type: 'call_started' | 'call_finished'; call: ReturnType<typeof call>; actor?: { type: 'agent' | 'operator'; id: string } }[]): Line[] {
    const events: AuditEvent[] = [];
    let prev = { seq: 0, hash: GENESIS_HASH, logged_at: null as string | null };
    const add = (e: ReturnType<typeof auditEvent>, s: AuditSnapshot) => {
      const ev = chainEvent(e, s, prev, t(events.length));
      events.push(ev);
      prev = { seq: ev.seq, hash: ev.hash, logged_at: ev.logged_at };
    };
    const base = snapshot(1, { payload_sha256 });
    add(auditEvent('requested', agent, t(0)), base);
    const at = t(1).toISOString();
    const approved = { ...base, decision: 'approved' as const, approver_identity: 'sub-alice', decision_at: at, svid_expires_at: '2026-11-01T01:00:00.000Z', votes: [{ voter: 'sub-alice', email: null, vote: 'approve' as const, at, groups: [] }] };
    add(auditEvent('approved', { type: 'approver', id: 'sub-alice' }, t(1)), approved);
    const issued = { ...approved, svid_id: 'abc1' as never };
    add(auditEvent('svid_issued', agent, t(2)), issued);
    for (const [i, c] of calls.entries()) add(auditEvent(c.type, c.actor ?? agent, t(3 + i)), { ...issued, call: c.call });
    return [{ kind: 'tree', seq: 0, frontier: [] }, ...events.map((e) => ({ kind: 'event', ...e }))];
  }
  const messages = (lines: Line[]) => verify(lines, { key: false }).problems.filter((p) => p.kind !== 'checkpoint').map((p) => p.message);

  it('a call started and finished by the request’s agent verifies', () => {
    expect(messages(chain([{ type: 'call_started', call: call('started') }, { type: 'call_finished', call: call('executed') }]))).toEqual([]);
  });
  it('a second start, a finish without a start, another payload, or another actor are reported', () => {
    expect(messages(chain([{ type: 'call_started', call: call('started') }, { type: 'call_started', call: call('started') }]))).toContainEqual(expect.stringContaining('an approval runs one call'));
    expect(messages(chain([{ type: 'call_finished', call: call('executed') }]))).toContainEqual(expect.stringContaining('no started call of the request is left to finish'));
    expect(messages(chain([{ type: 'call_started', call: call('started', { payload_sha256: 'c'.repeat(64) }) }]))).toContainEqual(expect.stringContaining('is not the one of its request'));
    expect(messages(chain([{ type: 'call_started', call: call('started'), actor: { type: 'operator', id: 'mallory' } }]))).toContainEqual(expect.stringContaining("recorded by the request's agent deploy-bot"));
    expect(messages(chain([{ type: 'call_started', call: call('executed') }]))).toContainEqual(expect.stringContaining('with outcome started'));
  });
});
