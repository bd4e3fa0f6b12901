import { Option, type Command } from 'commander';
import { AckdError, invalid } from '../core/errors.ts';
import { parseAgentId, parseRequestId, type AgentId, type RequestId } from '../core/ids.ts';
import { statusAt } from '../core/lifecycle.ts';
import { parseOperator } from '../core/policy.ts';
import { approvalsOf } from '../core/quorum.ts';
import { AUDIT_FIELDS, QUORUM_FIELDS } from '../core/audit/event.ts';
import { parseRevokeReason, type AuthorizationRecord, type RequestStatus } from '../core/request.ts';
import { visible } from '../core/visible.ts';
import { approvalView, viewSha256, type ApprovalView } from '../core/view.ts';
import { groupedHex, payloadFields, shownText } from '../core/payload-fields.ts';
import { payloadSha256 } from '../core/payload.ts';
import { cliDeps, output } from './context.ts';

/** Fields of a request that `requests show` prints besides the audit and quorum fields. */
const REVOCATION_FIELDS = ['revoked_by', 'revoked_by_email', 'revoke_reason'] as const;

/** A request as listed: the record and where it stands now (a pending request past its deadline is expired). */
type Status = RequestStatus['status'];
type Listed = AuthorizationRecord & { readonly status: Status };

/** `ackd requests list|pending|show|approve|deny|revoke`. */
export function registerRequestCommands(program: Command): void {
  const requests = program.command('requests').description('authorization requests');
  requests
    .command('list')
    .description("list an agent's requests, newest first, each once with where it stands now; pages with --cursor")
    .requiredOption('--agent <agent_id>', 'the agent')
    .addOption(new Option('--limit <n>', 'at most this many (1-1000)').default('20'))
    .option('--cursor <token>', 'continue after the previous page (the token it printed after "more:")')
    .option('--json', 'print JSON: { agent_id, requests, next_cursor }')
    .action(async (opts: { agent: string; limit: string; cursor?: string; json?: boolean }) => {
      const agentId = parseAgentId(opts.agent, '--agent');
      const limit = parseLimit(opts.limit);
      const after = opts.cursor === undefined ? undefined : parseCursor(opts.cursor, agentId);
      const d = cliDeps();
      // One more than asked for says whether there is a next page.
      const got = await d.store.listByAgent(agentId, { limit: limit + 1, ...(after ? { after } : {}) });
      const page = got.slice(0, limit);
      const last = page.at(-1);
      const next = got.length > limit && last ? cursorOf(agentId, last) : null;
      const now = d.clock.now();
      const shown: Listed[] = page.map((r) => ({ ...r, status: statusAt(r, now).status }));
      output(opts.json, { agent_id: agentId, requests: shown, next_cursor: next }, () =>
        [...(shown.length === 0 ? [after ? 'no more requests' : 'no requests'] : shown.map((r) => summary(r, r.status))), ...(next ? [`more: --cursor ${next}`] : [])].join('\n'),
      );
    });
  requests
    .command('pending')
    .description('requests of every agent still awaiting a decision, soonest deadline first')
    .addOption(new Option('--limit <n>', 'at most this many (1-1000)').default('50'))
    .option('--json', 'print JSON')
    .action(async (opts: { limit: string; json?: boolean }) => {
      const d = cliDeps();
      const items = await d.store.listPending(d.clock.now(), parseLimit(opts.limit));
      output(opts.json, items, () => (items.length === 0 ? 'no pending requests' : items.map((r) => `${summary(r, 'pending')}  agent ${r.agent_id}  decide by ${r.expires_at}`).join('\n')));
    });
  requests
    .command('show <request_id>')
    .description('show one request with every audit field, who revoked it and why, and where it stands now')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      const d = cliDeps();
      const r = await d.service.get(parseRequestId(id));
      const status = statusAt(r, d.clock.now()).status;
      output(opts.json, { ...r, status }, () =>
        [...[...AUDIT_FIELDS, ...QUORUM_FIELDS, ...REVOCATION_FIELDS].map((f) => `${f.padEnd(18)} ${visible(JSON.stringify(r[f] ?? null))}`), `${'status'.padEnd(18)} ${JSON.stringify(status)}`].join('\n'),
      );
    });
  for (const [verb, decision] of [['approve', 'approved'], ['deny', 'denied']] as const) {
    requests
      .command(`${verb} <request_id>`)
      .description(`${verb} a pending request as an operator (recorded as the approver identity); prints what is decided (every payload field and its SHA-256) first, and the decision is bound to exactly that`)
      .requiredOption('--as <approver>', 'who is deciding (recorded in approver_identity)')
      .option('--json', 'print JSON (the request after the decision, with the view_sha256 it was bound to)')
      .action(async (id: string, opts: { as: string; json?: boolean }) => {
        const requestId = parseRequestId(id);
        const actor = parseOperator(opts.as, '--as');
        const d = cliDeps();
        // What the operator decides on, printed before deciding; the decision carries its hash, so
        // it is refused (ERR_STALE_VIEW) if the request as stored differs from what was printed.
        const shown = approvalView(await d.service.get(requestId));
        const view_sha256 = viewSha256(shown);
        if (!opts.json) process.stdout.write(`${viewLines(shown, view_sha256).join('\n')}\n\n`);
        const r = await d.service.decide(requestId, decision, `operator:${actor.id}`, null, { evidence: { view_sha256 } });
        const { have, need } = approvalsOf(r);
        output(opts.json, { ...r, view_sha256 }, () =>
          r.decision === 'pending' ? `${r.request_id} vote recorded: ${have} of ${need} approvals; still pending` : `${r.request_id} ${r.decision} by ${r.approver_identity} at ${r.decision_at}`,
        );
      });
  }
  requests
    .command('revoke <request_id>')
    .description('revoke an approved request as an operator, whether or not its SVID was picked up: an SVID issued is revoked, none is issued after; a second revocation changes nothing')
    .requiredOption('--as <operator>', 'who is revoking (recorded as operator:<name>)')
    .option('--reason <text>', 'why (one line of at most 500 characters; recorded in the audit log)')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { as: string; reason?: string; json?: boolean }) => {
      const requestId = parseRequestId(id);
      const actor = parseOperator(opts.as, '--as');
      const reason = parseRevokeReason(opts.reason, '--reason');
      const r = await cliDeps().service.revokeApproval(requestId, `operator:${actor.id}`, null, reason);
      output(opts.json, r, () => `${r.request_id} revoked by ${r.revoked_by ?? 'unknown'} at ${r.revoked_at}${r.revoke_reason ? `: ${visible(r.revoke_reason)}` : ''}`);
    });
}

/**
 * What an operator deciding from the CLI reads: the approval view (core/view.ts), agent text made
 * visible (invisible, direction-changing and control characters as [U+XXXX], so nothing can move
 * the terminal's cursor or colour), every payload field as `path: value` and the payload's
 * SHA-256 in groups of 4 to compare with what the pipeline printed.
 */
export function viewLines(v: ApprovalView, viewHash = viewSha256(v)): string[] {
  const pad = (label: string) => label.padEnd(20);
  const lines = [
    `${pad('request')} ${v.request_id}`,
    `${pad('agent')} ${shownText(v.agent_id)}`,
    `${pad('action')} ${shownText(v.action).replace(/\n/g, ' ')}`,
    `${pad('permissions')} ${v.permissions.map(shownText).join(', ')}`,
    `${pad('justification')}`,
    ...shownText(v.justification).split('\n').map((l) => `  ${l}`),
  ];
  if (v.payload === null) {
    lines.push(`${pad('parameters')} none (the agent sent no payload)`);
  } else {
    const fields = payloadFields(v.payload);
    lines.push(`${pad('parameters')}${fields.length === 0 ? ' {} (an empty object)' : ''}`, ...fields.map((f) => `  ${f.path}: ${f.text.replace(/\n/g, '\n    ')}`));
    lines.push(`${pad('parameters sha256')} ${groupedHex(payloadSha256(v.payload))}`, `${' '.repeat(21)}(compare it with the SHA-256 the pipeline printed)`);
  }
  lines.push(`${pad('lifetime')} ${v.ttl_minutes} minute${v.ttl_minutes === 1 ? '' : 's'} from approval`, `${pad('decide by')} ${v.expires_at}`, `${pad('view sha256')} ${groupedHex(viewHash)}`);
  return lines;
}

export function parseLimit(raw: string): number {
  const limit = Number(raw);
  if (!/^\d+$/.test(raw) || limit < 1 || limit > 1000) throw new AckdError('ERR_INVALID_INPUT', '--limit: must be an integer from 1 to 1000', { field: '--limit' });
  return limit;
}

/**
 * The cursor of a listing: where the next page starts, opaque to the operator. It names the last
 * request listed (its time and id; the store resumes just after it) and the agent, so a cursor is
 * not taken for another agent's listing.
 */
function cursorOf(agentId: AgentId, last: AuthorizationRecord): string {
  return Buffer.from(JSON.stringify({ v: 1, a: agentId, t: last.requested_at, r: last.request_id })).toString('base64url');
}

function parseCursor(token: string, agentId: AgentId): { requested_at: string; request_id: RequestId } {
  const bad = () => invalid('--cursor', 'is not a cursor of `requests list` (use the token printed after "more:")');
  let c: unknown;
  try {
    if (!/^[A-Za-z0-9_-]{1,400}$/.test(token)) throw bad();
    c = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  const o = c as { v?: unknown; a?: unknown; t?: unknown; r?: unknown };
  if (typeof c !== 'object' || c === null || o.v !== 1 || typeof o.t !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(o.t) || typeof o.r !== 'string' || typeof o.a !== 'string') throw bad();
  let requestId: RequestId;
  try {
    requestId = parseRequestId(o.r);
  } catch {
    throw bad();
  }
  if (o.a !== agentId) throw invalid('--cursor', "continues another agent's listing, not this one");
  return { requested_at: o.t, request_id: requestId };
}

function summary(r: AuthorizationRecord, status: Status): string {
  const { have, need } = approvalsOf(r);
  const progress = status === 'pending' && need > 1 ? `  ${have} of ${need} approvals` : '';
  return `${r.request_id}  ${r.requested_at}  ${status.padEnd(8)}  ${visible(r.action.slice(0, 60).replace(/\s+/g, ' '))}${progress}`;
}
