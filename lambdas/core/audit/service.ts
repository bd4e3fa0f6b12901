import { AckdError } from '../errors.ts';
import type { Clock, Logger } from '../ports.ts';
import { AdminStateCheck, type AdminStateSources } from './admin-state.ts';
import { AUDIT_FIELDS, differingFields, EVIDENCE_FIELDS, PAYLOAD_FIELDS, type AuditEvent, type AuditSnapshot, type Checkpoint } from './event.ts';
import { consistencyPlan, frontierKeys, inclusionPlan, keyOf, proofFrom, type NodeKey } from './merkle.ts';
import type { AuditLog, RequestItemView } from './ports.ts';
import { quarantineQuery, type QuarantinePage, type QuarantineQuery } from './quarantine.ts';
import { checkpointPublicKey, signCheckpoint, type CheckpointSigner } from './signing.ts';
import { ChainVerifier, type Problem, type VerifierOptions, type VerifyReport } from './verify.ts';

/**
 * One line of an export: an event, a checkpoint (a signed tree head), the tree's frontier at the
 * checkpoint that anchors the window (`tree`: the perfect subtrees of its first `seq` events, so
 * the verifier can extend the signed root with the window's events), or a consistency proof
 * between two consecutive checkpoints; each tagged with `kind`. The last line is an `end`
 * summary, so a truncated download is noticed (it is not signed: it only counts).
 */
export type ExportLine =
  | ({ kind: 'event' } & AuditEvent)
  | ({ kind: 'checkpoint' } & Checkpoint)
  | { kind: 'tree'; seq: number; frontier: string[] }
  | { kind: 'consistency'; from: number; to: number; proof: string[] }
  | ExportEnd;

/** `ackd audit prove`: a request's events, each with its audit path to one signed tree head. Verifiable offline (`verifyInclusionProof`). */
export interface InclusionProof {
  readonly v: 1;
  readonly request_id: string;
  readonly checkpoint: Checkpoint;
  readonly events: readonly { readonly event: AuditEvent; readonly leaf_index: number; readonly path: readonly string[] }[];
  /** Events of the request not yet covered by a signed tree head (sequenced after it). */
  readonly not_yet_covered: number;
}

export interface ExportEnd {
  readonly kind: 'end';
  readonly events: number;
  readonly checkpoints: number;
  readonly first_seq: number | null;
  readonly last_seq: number | null;
  /** The window's start as used: the requested one, or the oldest time still safely retained. */
  readonly since: string;
  readonly until: string | null;
  readonly exported_at: string;
}

export interface ExportWindow {
  /** Events logged at or after this ISO time. */
  readonly since?: string | undefined;
  /** Events logged before this ISO time. */
  readonly until?: string | undefined;
}

/**
 * The audit log's read side: signed checkpoints, export and live verification. Pure of vendor:
 * it speaks to the AuditLog port and a CheckpointSigner.
 */
export class AuditService {
  constructor(
    private readonly deps: {
      log: AuditLog;
      clock: Clock;
      logger: Logger;
      signer?: CheckpointSigner | undefined;
      retentionDays: number;
      /** The operators' settings as stored (API keys, policies, owners), for live verification to hold to what the log says (admin-state.ts). */
      settings?: AdminStateSources | undefined;
    },
  ) {}

  get canSign(): boolean {
    return this.deps.signer !== undefined;
  }

  private signer(): CheckpointSigner {
    if (!this.deps.signer) throw new AckdError('ERR_CONFIG', 'ACKD_AUDIT_KEY: not set, so checkpoints cannot be signed');
    return this.deps.signer;
  }

  /** The outbox entries the sequencer refused (`ackd audit quarantine`): the window and order as used, and the page (defaults: quarantine.ts quarantineQuery). */
  async quarantine(window: ExportWindow, opts: { limit?: number | undefined; order?: QuarantineQuery['order'] | undefined } = {}): Promise<QuarantineQuery & QuarantinePage> {
    const q = quarantineQuery(window, opts, this.deps.clock.now());
    return { ...q, ...(await this.deps.log.quarantineRecords(q)) };
  }

  async publicKeyPem(): Promise<string> {
    return this.signer().publicKeyPem();
  }

  /**
   * Signs a checkpoint of the chain's head, when the head has moved since the last checkpoint.
   * ackd first verifies every event since that checkpoint: it never signs a chain it cannot
   * verify itself (a broken chain is reported, not papered over).
   */
  async checkpoint(): Promise<{ created: boolean; checkpoint?: Checkpoint }> {
    const signer = this.signer();
    const head = await this.deps.log.head();
    if (head.seq === 0 || head.logged_at === null) return { created: false };
    const last = await this.deps.log.checkpointAtOrBefore(head.seq);
    if (last?.seq === head.seq) return { created: false, checkpoint: last };
    const key = checkpointPublicKey(await signer.publicKeyPem());
    const v = new ChainVerifier({ publicKey: key });
    if (last) {
      v.addCheckpoint(last);
      // The tree as it was at the last checkpoint, so the new root is checked against the events.
      if (last.root !== undefined) v.addTree(last.seq, await this.frontierAt(last.seq));
    } else v.addTree(0, []);
    for await (const e of this.deps.log.events(last ? last.seq + 1 : 1, head.seq)) v.addEvent(e);
    v.expectRoot(head.seq, head.root);
    const report = v.finish();
    if (!report.ok) {
      const first = report.problems[0]!;
      this.deps.logger.error('audit log does not verify; not signing a tree head', { seq: first.seq, problem: first.message });
      throw new AckdError('ERR_INTERNAL', `the audit log does not verify (${first.message}); no checkpoint was signed`);
    }
    const c = await signCheckpoint(signer, { seq: head.seq, hash: head.hash, root: head.root, logged_at: head.logged_at }, this.deps.clock.now());
    const created = await this.deps.log.putCheckpoint(c);
    if (created) this.deps.logger.info('audit tree head signed', { seq: c.seq, root: c.root });
    return { created, checkpoint: c };
  }

  /** The perfect subtrees of the tree of the first `size` events (read from the stored nodes). */
  private async frontierAt(size: number): Promise<string[]> {
    const keys = frontierKeys(size);
    return this.read(keys).then((nodes) => keys.map((k) => nodes.get(keyOf(k))!));
  }

  private async read(keys: readonly NodeKey[]): Promise<Map<string, string>> {
    const nodes = await this.deps.log.nodes(keys);
    const missing = keys.find((k) => !nodes.has(keyOf(k)));
    if (missing) throw new AckdError('ERR_INTERNAL', `the audit tree lacks node ${keyOf(missing)}; no proof can be made`);
    return nodes;
  }

  /** The consistency proof between the trees of `from` and `to` events. */
  async consistency(from: number, to: number): Promise<string[]> {
    const plan = consistencyPlan(from, to);
    return proofFrom(plan, await this.read(plan.needs));
  }

  /**
   * A request's events with their audit paths to the newest signed tree head (RFC 9162
   * inclusion proofs): anyone with the checkpoint key verifies it offline. Events sequenced after
   * that head are counted in `not_yet_covered` (the next checkpoint covers them).
   */
  async prove(requestId: string): Promise<InclusionProof> {
    const seqs = await this.deps.log.requestEventSeqs(requestId);
    if (seqs === undefined) throw new AckdError('ERR_NOT_FOUND', `request_id: no request ${requestId}`, { field: 'request_id' });
    const head = await this.deps.log.head();
    const checkpoint = await this.deps.log.checkpointAtOrBefore(head.seq);
    if (!checkpoint || checkpoint.root === undefined) throw new AckdError('ERR_CONFLICT', 'no signed tree head yet: the sequencer signs one within seconds of the first events; try again');
    const covered = seqs.filter((s) => s <= checkpoint.seq);
    if (covered.length === 0) throw new AckdError('ERR_CONFLICT', `request ${requestId}: none of its events is covered by a signed tree head yet; try again in a few seconds`);
    const events = await this.deps.log.eventsAt(covered);
    const plans = events.map((e) => ({ e, plan: inclusionPlan(e.seq - 1, checkpoint.seq) }));
    const nodes = await this.read(plans.flatMap((p) => p.plan.needs));
    return {
      v: 1,
      request_id: requestId,
      checkpoint,
      events: plans.map(({ e, plan }) => ({ event: e, leaf_index: e.seq - 1, path: proofFrom(plan, nodes) })),
      not_yet_covered: seqs.length - covered.length,
    };
  }

  /**
   * The export of a window, in chain order, with the checkpoints that anchor it: the window is
   * widened to start right after the last checkpoint before it and to end at the first
   * checkpoint after it, so that a verifier can prove nothing was removed inside it. Where no
   * checkpoint exists yet (the live tail), that end is not anchored and the verifier says so.
   *
   * Events within a day of their retention are left out: DynamoDB TTL deletes expired items in
   * no particular order, and a hole it leaves must not read as tampering. The end line gives
   * the `since` actually used. Streams: holds one page of events at a time.
   */
  async *export(requested: ExportWindow = {}): AsyncGenerator<ExportLine> {
    validateWindow(requested);
    const retained = new Date(this.deps.clock.now().getTime() - (this.deps.retentionDays - 1) * 86_400_000).toISOString();
    const window = { since: requested.since !== undefined && requested.since > retained ? requested.since : retained, until: requested.until };
    const count = { events: 0, checkpoints: 0, first: null as number | null, last: null as number | null };
    for await (const line of this.lines(window)) {
      if (line.kind === 'event') {
        count.events++;
        count.first ??= line.seq;
        count.last = line.seq;
      } else if (line.kind === 'checkpoint') count.checkpoints++;
      yield line;
    }
    yield {
      kind: 'end',
      events: count.events,
      checkpoints: count.checkpoints,
      first_seq: count.first,
      last_seq: count.last,
      since: window.since,
      until: window.until ?? null,
      exported_at: this.deps.clock.now().toISOString(),
    };
  }

  private async *lines(window: ExportWindow): AsyncGenerator<Exclude<ExportLine, ExportEnd>> {
    const range = await this.deps.log.seqRange(window);
    if (!range) return;
    let from = range.from;
    let to = range.to;
    const before = from > 1 ? await this.deps.log.checkpointAtOrBefore(from - 1) : undefined;
    let lastSigned: Checkpoint | undefined;
    // Widen back to the checkpoint only while the events after it are all still there.
    if (before && (before.seq + 1 === from || (await this.deps.log.event(before.seq + 1)) !== undefined)) {
      from = before.seq + 1;
      yield { kind: 'checkpoint', ...before };
      if (before.root !== undefined) {
        yield { kind: 'tree', seq: before.seq, frontier: await this.frontierAt(before.seq) };
        lastSigned = before;
      }
    } else if (from === 1) yield { kind: 'tree', seq: 0, frontier: [] };
    // After each signed tree head (but the first): the proof that it extends the one before.
    const withProof = async function* (this: AuditService, c: Checkpoint): AsyncGenerator<Exclude<ExportLine, ExportEnd>> {
      yield { kind: 'checkpoint', ...c };
      if (c.root === undefined) return;
      if (lastSigned?.root !== undefined && lastSigned.seq < c.seq) yield { kind: 'consistency', from: lastSigned.seq, to: c.seq, proof: await this.consistency(lastSigned.seq, c.seq) };
      lastSigned = c;
    }.bind(this);
    const after = await this.deps.log.checkpointAtOrAfter(to);
    if (after) to = after.seq;
    const checkpoints = this.deps.log.checkpoints(from, to)[Symbol.asyncIterator]();
    let nextCheckpoint = (await checkpoints.next()).value as Checkpoint | undefined;
    for await (const e of this.deps.log.events(from, to)) {
      // A checkpoint whose event is no longer there still goes out, where the event should be:
      // it reveals the removal.
      while (nextCheckpoint && nextCheckpoint.seq < e.seq) {
        yield* withProof(nextCheckpoint);
        nextCheckpoint = (await checkpoints.next()).value as Checkpoint | undefined;
      }
      yield { kind: 'event', ...e };
      if (nextCheckpoint?.seq === e.seq) {
        yield* withProof(nextCheckpoint);
        nextCheckpoint = (await checkpoints.next()).value as Checkpoint | undefined;
      }
    }
    while (nextCheckpoint) {
      yield* withProof(nextCheckpoint);
      nextCheckpoint = (await checkpoints.next()).value as Checkpoint | undefined;
    }
  }

  /**
   * Verifies the stored log (a window of it) as an auditor would verify its export, then every
   * request item against the chain: an item's audit fields must be what its latest event
   * recorded, and its decision the event it names. (A table writer's change to an item alone,
   * such as a denial flipped to an approval or a rewritten justification, shows here.)
   */
  async verifyLive(window: ExportWindow, opts: VerifierOptions): Promise<VerifyReport & { unlinked: number; items: number }> {
    const v = new ChainVerifier(opts);
    const settings = new AdminStateCheck();
    for await (const line of this.export(window)) {
      v.addLine(line);
      if (line.kind === 'event') settings.add(line);
    }
    const report = v.finish();
    const items = await this.itemProblems(opts.maxProblems ?? 100);
    const backlog = await this.deps.log.backlog(100);
    const unlinked = backlog.count;
    const changed = await settings.problems(this.deps.settings ?? {}, { settings: unlinked === 0 });
    const problems = [...report.problems, ...items.problems, ...changed];
    const warnings = [...report.warnings];
    if (unlinked > 0) {
      warnings.push(`${unlinked}${unlinked === 100 ? '+' : ''} requests or changes have events waiting to be sequenced (the oldest since ${backlog.oldest_at ?? '?'}; the sequencer runs seconds behind)`);
      if (this.deps.settings?.policies || this.deps.settings?.agents) warnings.push('approval policies and owners were not compared with the log while changes wait to be sequenced: run it again');
    }
    return { ...report, ok: report.ok && items.count === 0 && changed.length === 0, problems, items: items.checked, unlinked, warnings };
  }

  private async itemProblems(max: number): Promise<{ problems: Problem[]; count: number; checked: number }> {
    const problems: Problem[] = [];
    let count = 0;
    let checked = 0;
    const flush = async (page: RequestItemView[]) => {
      const seqs = page.flatMap((i) => [i.latestSeq, i.decisionSeq].filter((s): s is number => s !== null));
      const events = new Map((await this.deps.log.eventsAt(seqs)).map((e) => [e.seq, e]));
      for (const item of page) {
        checked++;
        for (const message of itemMismatches(item, events)) {
          count++;
          if (problems.length < max) problems.push({ kind: 'item', seq: item.latestSeq, message: `request ${item.snapshot.request_id}: ${message}` });
        }
      }
    };
    let page: RequestItemView[] = [];
    for await (const item of this.deps.log.requestItems()) {
      if (item.unlinked) continue; // its change is not in the chain yet: reported as unlinked
      page.push(item);
      if (page.length === 100) {
        await flush(page);
        page = [];
      }
    }
    await flush(page);
    return { problems, count, checked };
  }
}

const SNAPSHOT_FIELDS_COMPARED: readonly (keyof AuditSnapshot)[] = [...AUDIT_FIELDS, ...PAYLOAD_FIELDS, ...EVIDENCE_FIELDS];

/** How a request item disagrees with the events it points at (empty when it agrees). */
export function itemMismatches(item: RequestItemView, events: ReadonlyMap<number, AuditEvent>): string[] {
  const out: string[] = [];
  const id = item.snapshot.request_id;
  if (item.latestSeq === null) return ['its item names no event in the log (its pointer was removed, or it predates pointers)'];
  const latest = events.get(item.latestSeq);
  if (!latest || latest.request_id !== id) out.push(`its item names event ${item.latestSeq} as its latest, but ${latest ? `that event is of ${latest.request_id}` : 'the log has no such event'}`);
  else {
    const changed = differingFields(item.snapshot, latest, SNAPSHOT_FIELDS_COMPARED);
    if (changed.length > 0) out.push(`its item's ${changed.join(', ')} differ${changed.length === 1 ? 's' : ''} from its latest event ${latest.seq} (${latest.type}): the item was changed outside the audited lifecycle`);
  }
  if (item.snapshot.decision !== 'pending') {
    const d = item.decisionSeq === null ? undefined : events.get(item.decisionSeq);
    if (!d || d.request_id !== id || d.type !== item.snapshot.decision) {
      out.push(`its item says ${item.snapshot.decision}, but the log holds no ${item.snapshot.decision} event of it where the item points${d ? ` (event ${d.seq} is ${d.type} of ${d.request_id})` : ''}`);
    }
  }
  return out;
}

const ISO = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?Z)?$/;

/** Window bounds are ISO-8601 UTC times (or dates); since must be before until. */
export function parseWindow(since: string | undefined, until: string | undefined): ExportWindow {
  const norm = (name: string, v: string | undefined): string | undefined => {
    if (v === undefined) return undefined;
    if (!ISO.test(v) || Number.isNaN(Date.parse(v))) throw new AckdError('ERR_INVALID_INPUT', `${name}: must be an ISO-8601 UTC date or time like 2026-11-01 or 2026-11-01T12:00:00Z (got "${v}")`, { field: name });
    return new Date(v).toISOString();
  };
  const w = { since: norm('since', since), until: norm('until', until) };
  validateWindow(w);
  return w;
}

function validateWindow(w: ExportWindow): void {
  if (w.since !== undefined && w.until !== undefined && w.since >= w.until) {
    throw new AckdError('ERR_INVALID_INPUT', `until: must be after since (${w.since} is not before ${w.until})`, { field: 'until' });
  }
}
