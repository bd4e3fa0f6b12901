import { createReadStream, readFileSync } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { KeyObject } from 'node:crypto';
import { Option, type Command } from 'commander';
import { AckdError } from '../core/errors.ts';
import { formatExport, type ExportFormat } from '../core/audit/format.ts';
import { parseWindow, type ExportLine } from '../core/audit/service.ts';
import { checkpointPublicKey, keyIdOf } from '../core/audit/signing.ts';
import { verifyLines, type SvidEvidence, type VerifyReport } from '../core/audit/verify.ts';
import { verifyInclusionProof } from '../core/audit/proof.ts';
import { cliDeps, output, UsageError } from './context.ts';
import { needsPasskeyCheck, verifyLoggedPasskeys, type PasskeyCheckReport, type PasskeyEventView } from '../core/passkeys.ts';
import { SimpleWebAuthnVerifier } from '../adapters/webauthn/simplewebauthn.ts';
import { QUARANTINE_DEFAULT_DAYS, QUARANTINE_DEFAULT_LIMIT, type QuarantinePage, type QuarantineQuery, type QuarantineRecord } from '../core/audit/quarantine.ts';
import { shownText } from '../core/payload-fields.ts';
import { INVISIBLE } from '../core/visible.ts';
import { parseLimit } from './requests.ts';

/** Exit code of `audit verify` when the log does not verify. */
export const VERIFY_FAILED = 1;

/** Ends a command with this exit code after it has printed its result (not an error). */
export class ExitCode extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('the tamper-evident audit log: export, verify, checkpoints');

  audit
    .command('export')
    .description('export audit events (every state change, with the 13 audit fields) and the signed checkpoints that anchor them; streams')
    .option('--since <time>', 'events logged at or after this ISO-8601 UTC time or date')
    .option('--until <time>', 'events logged before this ISO-8601 UTC time or date')
    .addOption(new Option('--format <format>', 'jsonl (events + checkpoints: what `audit verify` reads) or csv (events only)').choices(['jsonl', 'csv']).default('jsonl'))
    .option('--out <file>', 'write to a new file instead of stdout (never overwrites)')
    .option('--checkpoint', 'sign a checkpoint of the newest event first, so the end of the export is anchored (needs ACKD_AUDIT_KEY)')
    .option('--json', 'with --out: print a JSON summary of what was written (without --out the export itself is on stdout)')
    .action(async (opts: { since?: string; until?: string; format: ExportFormat; out?: string; checkpoint?: boolean; json?: boolean }) => {
      const window = parseWindow(opts.since, opts.until);
      if (opts.json && !opts.out) throw new UsageError('--json needs --out: without it the export itself is what goes to stdout');
      let written = 0;
      // The file first: an export that cannot be written signs nothing and reads nothing.
      await withNewFile(opts.out, async (file) => {
        const d = cliDeps();
        if (opts.checkpoint) await d.audit.checkpoint();
        let end: Extract<ExportLine, { kind: 'end' }> | undefined;
        async function* lines(): AsyncGenerator<ExportLine> {
          for await (const l of d.audit.export(window)) {
            if (l.kind === 'end') end = l;
            yield l;
          }
        }
        async function* counted(): AsyncGenerator<string> {
          for await (const text of formatExport(lines(), opts.format)) {
            written += Buffer.byteLength(text);
            yield text;
          }
        }
        await pipeline(Readable.from(counted()), file ? file.createWriteStream() : stdoutSink());
        const summary = {
          out: opts.out ?? null,
          format: opts.format,
          bytes: written,
          events: end?.events ?? null,
          first_seq: end?.first_seq ?? null,
          last_seq: end?.last_seq ?? null,
          checkpoints: end?.checkpoints ?? null,
          since: end?.since ?? null,
          until: end?.until ?? null,
        };
        if (opts.json) output(true, summary, () => '');
        else if (end) {
          const range = end.first_seq === null ? 'no events' : `${end.events} events (seq ${end.first_seq}–${end.last_seq})`;
          process.stderr.write(`exported ${range} and ${end.checkpoints} checkpoint(s)${opts.out ? ` to ${opts.out}` : ''}\n`);
        }
      });
    });

  audit
    .command('verify [file]')
    .description('verify an export (JSONL, "-" for stdin) or, with --live, the stored log: hash chain, signed checkpoints, and that every SVID was approved by a named approver')
    .option('--live', 'verify the log in the table instead of a file')
    .option('--since <time>', 'with --live: from this time')
    .option('--until <time>', 'with --live: up to this time')
    .option('--public-key <file>', 'PEM public key that signs the checkpoints (with --live, defaults to the configured ACKD_AUDIT_KEY)')
    .option('--svids', 'list every SVID issued and who approved it')
    .option('--decision-key <file|url>', "the decision service's PEM public key (a file, or the URL GET /.well-known/ackd-decision-key.pem): every approval and denial must carry a signed decision that verifies with it (with --live, defaults to the configured key)")
    .option('--strict', 'also fail on warnings (an unsigned tail, an unanchored start, a missing end line, unsigned decisions)')
    .option('--passkeys', "also re-verify every passkey assertion a vote carries: against the voter's public key as registered in the passkey store, over the challenge recomputed from the event")
    .option('--origin <url>', 'with --passkeys: the consent UI origin the passkeys belong to (default: ACKD_CONSENT_URL; its host name is the RP ID)')
    .option('--json', 'print the report as JSON')
    .action(async (file: string | undefined, opts: { live?: boolean; since?: string; until?: string; publicKey?: string; decisionKey?: string; svids?: boolean; strict?: boolean; passkeys?: boolean; origin?: string; json?: boolean }) => {
      if (Boolean(opts.live) === (file !== undefined)) throw new AckdError('ERR_INVALID_INPUT', 'give either a file to verify or --live', { field: 'file' });
      if (!opts.live && (opts.since || opts.until)) throw new AckdError('ERR_INVALID_INPUT', '--since/--until: only with --live (a file is verified whole)', { field: '--since' });
      if (opts.origin && !opts.passkeys) throw new UsageError('--origin: only with --passkeys');
      const svids: SvidEvidence[] = [];
      const onSvid = opts.svids ? (e: SvidEvidence) => svids.push(e) : undefined;
      // With --passkeys: the vote events that carry an assertion, kept while the chain is verified.
      const signedVotes: PasskeyEventView[] = [];
      const keep = (v: unknown) => {
        if (opts.passkeys && isSignedVote(v)) signedVotes.push(v);
      };
      let report: VerifyReport & { unlinked?: number; items?: number };
      if (opts.live) {
        const d = cliDeps();
        const pem = opts.publicKey ? readKeyFile(opts.publicKey) : await d.audit.publicKeyPem();
        const window = parseWindow(opts.since, opts.until);
        const decisionKey = await decisionKeyOption(opts.decisionKey, d.decisionPublicKeyPem);
        report = await d.audit.verifyLive(window, { publicKey: parsedKey(pem, opts.publicKey ?? 'ACKD_AUDIT_KEY'), ...(decisionKey ? { decisionKey } : {}), ...(onSvid ? { onSvid } : {}) });
        if (opts.passkeys) for await (const l of d.audit.export(window)) keep(l);
      } else {
        const publicKey = opts.publicKey ? parsedKey(readKeyFile(opts.publicKey), opts.publicKey) : undefined;
        const decisionKey = await decisionKeyOption(opts.decisionKey);
        report = await verifyLines(tee(jsonLines(file!), (l) => 'value' in l && keep(l.value)), { ...(publicKey ? { publicKey } : {}), ...(decisionKey ? { decisionKey } : {}), ...(onSvid ? { onSvid } : {}) });
      }
      let passkeys: PasskeyCheckReport | undefined;
      if (opts.passkeys) {
        const d = cliDeps();
        const verifier = new SimpleWebAuthnVerifier(opts.origin ?? d.config.consentUrl);
        passkeys = await verifyLoggedPasskeys(signedVotes, (voter, id) => d.passkeys.registered(voter, id), verifier);
      }
      const failed = !report.ok || (opts.strict === true && report.warnings.length > 0) || (passkeys !== undefined && passkeys.failures.length > 0);
      const result = { ...report, ...(opts.svids ? { svids } : {}), ...(passkeys ? { passkeys } : {}) };
      output(opts.json, result, () => describeReport(report, svids, opts.svids === true) + (passkeys ? `\n${describePasskeys(passkeys)}` : ''));
      if (failed) throw new ExitCode(VERIFY_FAILED);
    });

  audit
    .command('prove <request_id>')
    .description("a request's audit events with their inclusion proofs (RFC 9162 audit paths) to the newest signed tree head: verifiable offline by anyone with the public key (`audit verify-proof`)")
    .option('--out <file>', 'write the proof to a new file instead of stdout (never overwrites)')
    .option('--wait <seconds>', 'wait up to this long for a signed tree head to cover every event of the request (default 30; 0: do not wait)', '30')
    .option('--json', 'the proof is JSON either way (accepted for uniformity with every other command)')
    .action(async (requestId: string, opts: { out?: string; wait: string; json?: boolean }) => {
      const wait = Number(opts.wait);
      if (!Number.isInteger(wait) || wait < 0 || wait > 3600) throw new UsageError(`--wait: must be a whole number of seconds, 0-3600 (got "${opts.wait}")`);
      await withNewFile(opts.out, async (file) => {
        const d = cliDeps();
        const deadline = Date.now() + wait * 1000;
        let proof: Awaited<ReturnType<typeof d.audit.prove>> | undefined;
        for (;;) {
          try {
            proof = await d.audit.prove(requestId);
            if (proof.not_yet_covered === 0) break;
          } catch (e) {
            if (!(e instanceof AckdError && e.code === 'ERR_CONFLICT') || Date.now() >= deadline) throw e;
          }
          if (Date.now() >= deadline) break;
          // Where this CLI holds the key (locally), it signs the tree head itself; elsewhere the sequencer does, within seconds.
          if (d.audit.canSign) await d.audit.checkpoint().catch(() => undefined);
          await new Promise((r) => setTimeout(r, 1000));
        }
        const text = JSON.stringify(proof, null, 2) + '\n';
        if (file) await file.writeFile(text);
        else process.stdout.write(text);
        process.stderr.write(`proved ${proof!.events.length} event(s) of ${requestId} against the tree head of ${proof!.checkpoint.seq} events${proof!.not_yet_covered > 0 ? `; ${proof!.not_yet_covered} later event(s) not yet covered` : ''}\n`);
      });
    });

  audit
    .command('verify-proof <file>')
    .description('verify an inclusion proof from `audit prove` offline: the tree head signature, each event\'s hash and its audit path to the signed root')
    .requiredOption('--public-key <file>', 'PEM public key that signs the tree heads (`ackd audit public-key`)')
    .option('--json', 'print the report as JSON')
    .action((file: string, opts: { publicKey: string; json?: boolean }) => {
      const key = parsedKey(readKeyFile(opts.publicKey), opts.publicKey);
      let value: unknown;
      try {
        value = JSON.parse(readFileSync(file === '-' ? 0 : file, 'utf8'));
      } catch (e) {
        throw new AckdError('ERR_INVALID_INPUT', `file: ${file} is not a readable JSON proof (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { field: 'file' });
      }
      const r = verifyInclusionProof(value, key);
      output(opts.json, r, () =>
        [
          r.ok ? `OK: ${r.events.length} event(s) of ${r.request_id} are in the log signed at ${r.signed_at} (tree of ${r.tree_size} events, root ${r.root})` : `NOT PROVEN: ${r.problems[0]}`,
          ...r.events.map((e) => `  seq ${e.seq}  ${e.type.padEnd(12)} ${e.at}`),
          ...r.problems.slice(1).map((p) => `problem: ${p}`),
          ...r.warnings.map((w) => `warning: ${w}`),
        ].join('\n'),
      );
      if (!r.ok) throw new ExitCode(VERIFY_FAILED);
    });

  audit
    .command('quarantine')
    .description('list the outbox entries the audit sequencer refused (missing, malformed or wrong seal, copied from another item, a replay) and kept aside: what to read on the AuditEntriesRefused alarm')
    .option('--since <time>', `quarantined at or after this ISO-8601 UTC time or date (default: ${QUARANTINE_DEFAULT_DAYS} days before --until, or before now)`)
    .option('--until <time>', 'quarantined before this ISO-8601 UTC time or date (default: now)')
    .option('--limit <n>', `at most this many records, 1-1000 (default ${QUARANTINE_DEFAULT_LIMIT})`)
    .option('--oldest-first', 'oldest first (default: newest first)')
    .option('--json', 'print the records as JSON, each entry included as stored')
    .action(async (opts: { since?: string; until?: string; limit?: string; oldestFirst?: boolean; json?: boolean }) => {
      const window = parseWindow(opts.since, opts.until);
      const limit = opts.limit === undefined ? undefined : parseLimit(opts.limit);
      const r = await cliDeps().audit.quarantine(window, { limit, order: opts.oldestFirst ? 'oldest' : 'newest' });
      const data = { since: r.since, until: r.until ?? null, order: r.order, limit: r.limit, count: r.records.length, more: r.more, more_exact: r.more_exact, records: r.records };
      // (JSON escapes C0 controls itself; C1 controls, DEL and invisible characters from the table are escaped too, so printing it to a terminal is harmless)
      if (opts.json) process.stdout.write(terminalSafeJson(data) + '\n');
      else output(false, data, () => describeQuarantine(r));
    });

  audit
    .command('checkpoint')
    .description('sign a tree head (checkpoint) of the log now (the sequencer does this every few seconds while the log grows); verifies the log since the last one first')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const r = await cliDeps().audit.checkpoint();
      output(opts.json, r, () =>
        r.checkpoint === undefined ? 'the audit log is empty: nothing to sign' : `${r.created ? 'signed' : 'already signed'}: seq ${r.checkpoint.seq} hash ${r.checkpoint.hash} at ${r.checkpoint.signed_at}`,
      );
    });

  audit
    .command('decision-key')
    .description("print the decision service's PEM public key: what signed decisions verify with (`audit verify --decision-key`; also served at GET /.well-known/ackd-decision-key.pem)")
    .option('--json', 'print JSON: { public_key_pem, key_id }')
    .action(async (opts: { json?: boolean }) => {
      const pem = await cliDeps().decisionPublicKeyPem();
      if (opts.json) output(true, { public_key_pem: pem, key_id: keyIdOf(checkpointPublicKey(pem)) }, () => '');
      else process.stdout.write(pem);
    });

  audit
    .command('public-key')
    .description('print the PEM public key that verifies checkpoints (give it to auditors)')
    .option('--json', 'print JSON: { public_key_pem, key_id } (key_id: the SHA-256 of the key that checkpoints name)')
    .action(async (opts: { json?: boolean }) => {
      const pem = await cliDeps().audit.publicKeyPem();
      if (opts.json) output(true, { public_key_pem: pem, key_id: keyIdOf(checkpointPublicKey(pem)) }, () => '');
      else process.stdout.write(pem);
    });
}

/** Characters a terminal may act on, or that hide, which JSON.stringify leaves as they are (it escapes C0 controls itself). */
const JSON_UNSAFE = new RegExp(`[\\u007f-\\u009f\\u2028\\u2029]|${INVISIBLE.source}`, 'gu');

/** JSON (indented) with JSON_UNSAFE characters written as \uXXXX escapes (a pair for one beyond the BMP): the same value, harmless on a terminal. */
export function terminalSafeJson(data: unknown): string {
  const escape = (c: string) => Array.from({ length: c.length }, (_, i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`).join('');
  return JSON.stringify(data, null, 2).replace(JSON_UNSAFE, escape);
}

/**
 * `audit quarantine` for a human: one line per record. Everything in a record came from the table
 * (a table writer chose it): shown one line each, control and invisible characters as [U+XXXX]
 * (no escape sequence reaches the terminal), each field cut to a bounded length.
 */
export function describeQuarantine(r: QuarantineQuery & QuarantinePage): string {
  const window = `quarantined from ${r.since} ${r.until === undefined ? 'to now' : `until ${r.until}`}`;
  if (r.records.length === 0) return `no refused entries ${window}`;
  const more = r.more === 0 ? '' : `\n… and ${r.more_exact ? '' : 'at least '}${r.more} more in this window (raise --limit, up to 1000, or narrow --since/--until; --json gives every field)`;
  return [`${r.records.length} refused entr${r.records.length === 1 ? 'y' : 'ies'} ${window}, ${r.order} first:`, ...r.records.map(quarantineLine)].join('\n') + more;
}

function quarantineLine(q: QuarantineRecord): string {
  const event = eventOf(q.entry);
  const what = event ? `${oneLine(event.type ?? '?', 32)} ${oneLine(event.event_id ?? '?', 64)}` : q.entry === null && q.entry_bytes > 0 ? '(entry kept as its digest only)' : '(no event)';
  return `${oneLine(q.quarantined_at, 30)}  ${oneLine(q.reason, 10).padEnd(9)}  ${oneLine(q.source, 80)}  ${what}  ${q.entry_bytes} B  ${oneLine(q.message, 120)}`;
}

/** The event an entry names (`entry.event`), when it has one. */
function eventOf(entry: unknown): { type?: string; event_id?: string } | undefined {
  const event = typeof entry === 'object' && entry !== null ? (entry as { event?: unknown }).event : undefined;
  if (typeof event !== 'object' || event === null) return undefined;
  const e = event as { type?: unknown; event_id?: unknown };
  const text = (v: unknown) => (typeof v === 'string' ? v : v === undefined ? undefined : (JSON.stringify(v) ?? undefined));
  return { type: text(e.type), event_id: text(e.event_id) };
}

/** Text from the table on one line: control and invisible characters shown, line breaks and tabs as spaces, at most `max` characters. */
function oneLine(s: string, max: number): string {
  const head = Array.from(s.slice(0, 2 * max + 2)); // (code points: a pair is never cut in two)
  const cut = head.length > max ? `${head.slice(0, max).join('')}…` : head.join('');
  return shownText(cut).replace(/[\n\t]/g, ' ');
}

/**
 * Runs `write` with `out` created new (or undefined: stdout). On failure the file is removed:
 * never a partial export or proof left behind as if it were whole.
 */
async function withNewFile(out: string | undefined, write: (file: FileHandle | undefined) => Promise<void>): Promise<void> {
  const file = out ? await createNew(out) : undefined;
  try {
    await write(file);
  } catch (e) {
    if (out) await rm(out, { force: true }).catch(() => undefined);
    throw e;
  } finally {
    await file?.close().catch(() => undefined);
  }
}

/** A file that did not exist, opened for writing by this user alone; an existing file is refused in one line. */
async function createNew(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'wx', 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new UsageError(`--out: ${path} already exists; an export never overwrites a file (EEXIST)`);
    throw new UsageError(`--out: cannot create ${path} (${code ?? String(e)})`);
  }
}

function stdoutSink(): Writable {
  // stdout must stay open after the export (pipeline would end it).
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (process.stdout.write(chunk)) cb();
      else process.stdout.once('drain', () => cb());
    },
  });
}

function readKeyFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new AckdError('ERR_INVALID_INPUT', `--public-key: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { field: '--public-key' });
  }
}

/**
 * The decision key of `--decision-key` (a PEM file, or an http(s) URL serving it); without the
 * option, `fallback` (the configured key, with --live) when it can be read, else none.
 */
async function decisionKeyOption(option: string | undefined, fallback?: () => Promise<string>): Promise<KeyObject | undefined> {
  const field = '--decision-key';
  if (option === undefined) {
    const pem = await fallback?.().catch(() => undefined);
    return pem === undefined ? undefined : checkpointPublicKey(pem);
  }
  let pem: string;
  if (/^https?:\/\//.test(option)) {
    const res = await fetch(option).catch((e: unknown) => {
      throw new AckdError('ERR_INVALID_INPUT', `${field}: cannot fetch ${option} (${e instanceof Error ? e.message : String(e)})`, { field });
    });
    if (!res.ok) throw new AckdError('ERR_INVALID_INPUT', `${field}: ${option} answered HTTP ${res.status}`, { field });
    pem = await res.text();
  } else {
    try {
      pem = readFileSync(option, 'utf8');
    } catch (e) {
      throw new AckdError('ERR_INVALID_INPUT', `${field}: cannot read ${option} (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { field });
    }
  }
  try {
    return checkpointPublicKey(pem);
  } catch (e) {
    throw new AckdError('ERR_INVALID_INPUT', `${field}: ${option}: ${(e as Error).message}`, { field });
  }
}

function parsedKey(pem: string, source: string) {
  try {
    return checkpointPublicKey(pem);
  } catch (e) {
    throw new AckdError('ERR_INVALID_INPUT', `--public-key: ${source}: ${(e as Error).message}`, { field: '--public-key' });
  }
}

/** JSON lines of a file (or stdin for "-"), one at a time; blank lines are skipped. */
/** Passes `src` through, showing each item to `see` on the way. */
async function* tee<T>(src: AsyncIterable<T>, see: (x: T) => unknown): AsyncGenerator<T> {
  for await (const x of src) {
    see(x);
    yield x;
  }
}

/** A vote event (voted, approved, denied) whose added vote carries a passkey assertion, or whose request required one. */
function isSignedVote(v: unknown): v is PasskeyEventView {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as { kind?: unknown; votes?: unknown; seq?: unknown; request_id?: unknown };
  if ((e.kind !== undefined && e.kind !== 'event') || !Array.isArray(e.votes) || typeof e.seq !== 'number' || typeof e.request_id !== 'string') return false;
  return needsPasskeyCheck(v as PasskeyEventView);
}

function describePasskeys(p: PasskeyCheckReport): string {
  const head = `passkeys: ${p.checked} assertion(s) checked, ${p.verified} verified${p.failures.length > 0 ? `, ${p.failures.length} FAILED` : ''}`;
  return [head, ...p.failures.slice(0, 20).map((f) => shownText(`  - seq ${f.seq}: ${f.request_id} vote of ${f.voter} (credential ${f.credential_id}): ${f.reason}`))].join('\n');
}

async function* jsonLines(file: string): AsyncGenerator<{ value: unknown; line: number } | { error: string; line: number }> {
  const input = file === '-' ? process.stdin : createReadStream(file);
  const opened = new Promise<void>((resolve, reject) => {
    if (file === '-') resolve();
    else input.once('open', () => resolve()).once('error', reject);
  });
  try {
    await opened;
  } catch (e) {
    throw new AckdError('ERR_INVALID_INPUT', `file: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { field: 'file' });
  }
  let n = 0;
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    n++;
    if (!text.trim()) continue;
    try {
      yield { value: JSON.parse(text) as unknown, line: n };
    } catch {
      yield { error: `line ${n} is not JSON`, line: n };
    }
  }
}

function describeReport(r: VerifyReport & { unlinked?: number; items?: number }, svids: SvidEvidence[], listSvids: boolean): string {
  const out: string[] = [];
  const span = r.first_seq === null ? 'no events' : `${r.events} events, seq ${r.first_seq}–${r.last_seq}, logged ${r.first_logged_at} to ${r.last_logged_at}`;
  if (r.ok) out.push(`OK: ${span}`);
  else {
    const first = r.problems[0]!;
    out.push(`BROKEN${first.seq !== null ? ` at seq ${first.seq}` : ''}: ${shownText(first.message)}`);
    out.push(`(${span})`);
  }
  const start = { genesis: 'from the first event ever (genesis)', checkpoint: 'from a signed checkpoint', unanchored: 'without an anchor', empty: '-' }[r.start];
  out.push(`start: ${start}; ${r.checkpoints} checkpoint(s) verified${r.signed_through !== null && r.signed_through > 0 ? `, signed through seq ${r.signed_through}` : ''}`);
  out.push(`Merkle tree: ${r.roots_verified} signed root(s) recomputed from the events, ${r.consistency_verified} consistency proof(s) between tree heads verified`);
  out.push(`SVIDs issued: ${r.svids_issued}${r.svids_issued > 0 && r.problems.every((p) => p.kind !== 'svid') ? ', each approved by a named approver' : ''}`);
  if (r.decisions) {
    const d = r.decisions;
    out.push(`signed decisions: ${d.valid} of ${d.checked} decision event(s) carry a valid signed decision${d.unsigned + d.invalid > 0 ? `; ${d.unsigned} unsigned, ${d.invalid} invalid` : ''}`);
    for (const x of d.examples) out.push(`  - seq ${x.seq} (${x.type} of ${x.request_id}): ${x.problem}`);
  }
  if (r.items !== undefined) out.push(`request items compared with their events: ${r.items}${r.problems.some((p) => p.kind === 'item') ? '' : ', each as its events recorded it'}`);
  if (r.problems.length > 1) {
    out.push(`${r.problems.length} problems:`);
    // (messages quote what the table or the file holds: shown safe for a terminal)
    for (const p of r.problems.slice(0, 20)) out.push(`  - ${p.seq !== null ? `seq ${p.seq}: ` : ''}${p.line !== undefined ? `(line ${p.line}) ` : ''}${shownText(p.message)}`);
    if (r.problems.length > 20) out.push(`  … and ${r.problems.length - 20} more (--json lists them)`);
  }
  for (const w of r.warnings) out.push(`warning: ${shownText(w)}`);
  if (listSvids) {
    out.push('', 'seq       svid_id                           request_id                      approver_identity                       approved_at');
    for (const s of svids) out.push(`${String(s.seq).padEnd(9)} ${s.svid_id.padEnd(33)} ${s.request_id.padEnd(31)} ${s.approver_identity.padEnd(39)} ${s.decision_at ?? ''}`);
  }
  return out.join('\n');
}
