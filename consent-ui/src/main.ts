import { completeSignIn, consumeSignedOut, currentSession, forgetSession, signIn, signOut, type Session, type UiConfig } from './auth.ts';
import { visible } from '../../lambdas/core/visible.ts';
import { button, el, nodes, type Child } from './dom.ts';
import { approvalsText, dashboardFingerprint, EMPTY_PENDING, EMPTY_RECENT, recentAt, RECENT_STATUS, timeLeftText, yourPart, type Dashboard, type Summary } from './dashboard.ts';
import { flagLabel, flagsOf, flagSummary } from './permissions.ts';
import { approvedText, cleanReason, duration, lifetimeText, REASON_MAX, revokeConsequence, revokedWhenBy, revokeRefusalText, revokerText, type Status } from './review.ts';
import { passkeysSection, signedDecisionBody } from './passkeys.ts';
import { isMine, isQuorum, localWithZone, modeOf, progressText, refusalText, sentence, voteVerb, waitingText, type Mode, type VoteView } from './votes.ts';
import { CHANGED_TEXT, digestText, DIGEST_HINT, DIGEST_MISMATCH, EMPTY_PAYLOAD, PAYLOAD_HINT, payloadRows, SHOW_LESS, showAllLabel, type PayloadRow } from './payload-view.ts';
import { payloadSha256Hex, viewSha256 } from './view-hash.ts';

/** What GET /api/requests/:id returns (see lambdas/consent-api/app.ts). */
interface RequestView {
  request_id: string;
  agent_id: string;
  action: string;
  permissions: string[];
  justification: string;
  /** The operation's exact parameters, or null when the agent sent none. */
  payload: Record<string, unknown> | null;
  /** SHA-256 (hex) of the payload's canonical JSON, as the server computed it; null without a payload. */
  payload_sha256: string | null;
  /** The server's hash of this view (the page sends its own computation with a decision). */
  view_sha256: string;
  ttl_minutes: number;
  requested_at: string;
  expires_at: string;
  status: Status;
  decision_at: string | null;
  approver_email: string | null;
  /** Pending, the caller has not voted, and the caller may vote. */
  decidable: boolean;
  /** Distinct approvals so far, and how many approve the request. */
  approvals: { have: number; need: number };
  /** Votes so far, in order. */
  votes: VoteView[];
  your_vote: 'approve' | 'deny' | null;
  /** Why the caller may not vote, when so. */
  not_eligible: string | null;
  /** The rule the request is decided under, in words. */
  why_you: string;
  /** Approved (with or without its SVID): the caller may revoke it. */
  revocable: boolean;
  revoked_at: string | null;
  /** An approver's email, `operator:<name>`, `agent:<id>` or `system`. */
  revoked_by: string | null;
  revoke_reason: string | null;
  svid_id: string | null;
  svid_expires_at: string | null;
  /** A decision must be signed with a passkey (passkeys.ts asks for one). */
  passkey_required: boolean;
  server_time: string;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const main = document.getElementById('main')!;
let ticker: number | undefined;

/** Replaces the page (a review page's layout; the dashboard widens it after). */
function show(...children: Child[]): void {
  if (ticker !== undefined) clearInterval(ticker);
  ticker = undefined;
  unwatch();
  document.body.dataset.view = 'request';
  main.replaceChildren(...nodes(children));
  const h = main.querySelector('h1');
  if (h) {
    h.setAttribute('tabindex', '-1');
    h.focus({ preventScroll: true });
  }
}

function page(title: string, ...body: Child[]): HTMLElement {
  return el('section', { class: 'card' }, el('h1', {}, title), ...body);
}

const STATUS_TEXT: Record<Status, string> = {
  pending: 'Pending — awaiting your decision',
  approved: 'Approved',
  denied: 'Denied',
  expired: 'Expired',
  revoked: 'Revoked',
};

/** A pending request the caller can no longer vote on waits for the other approvers. */
function statusText(r: RequestView): string {
  return r.status === 'pending' && !r.decidable ? 'Pending — awaiting other approvers' : STATUS_TEXT[r.status];
}

// ---- API ----

let cfg: UiConfig;
let session: Session | undefined;

async function call<T>(path: string, pick: (body: Record<string, unknown>) => T | undefined, init: RequestInit = {}): Promise<T> {
  const res = await fetch(`${cfg.apiBase}${path}`, {
    ...init,
    headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${session!.idToken}` },
    cache: 'no-store',
  });
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown> & { error?: { code: string; message: string } };
  const value = res.ok ? pick(body) : undefined;
  if (value === undefined) throw new ApiError(res.status, body.error?.code ?? 'ERR_INTERNAL', body.error?.message ?? `HTTP ${res.status}`);
  return value;
}

/** One request (GET, or a POST that changes it). */
function api(path: string, init: RequestInit = {}): Promise<RequestView> {
  return call(path, (b) => b.request as RequestView | undefined, init);
}

function post(id: string, verb: 'approve' | 'deny' | 'revoke', extra: Record<string, unknown> = {}): Promise<RequestView> {
  return api(`/requests/${encodeURIComponent(id)}/${verb}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ request_id: id, ...extra }),
  });
}

function dashboard(): Promise<Dashboard> {
  return call('/requests', (b) => (Array.isArray(b.pending) && Array.isArray(b.recent) ? (b as unknown as Dashboard) : undefined));
}

// ---- refreshing ----
// A page whose data can change elsewhere (a pending or approved request, the dashboard) reads it
// again every few seconds, only while the tab is visible, and updates in place.

const POLL_MS = 3000;
const POLL_MAX_MS = 60_000;

interface Watcher {
  /** Reads the page's data again; returns what puts it on the page (dropped if the page changed meanwhile). */
  read: () => Promise<() => void>;
  /** A refresh was refused for good (401, 403, 404). */
  fail: (e: ApiError) => void;
}

let watching: Watcher | undefined;
let pollTimer: number | undefined;
let polling = false;
let pollFailures = 0;
/** A vote or revocation is being sent: refreshes are held back so they cannot overwrite its answer. */
let busy = false;
/** Bumped whenever the page is replaced: an answer for an older page is dropped. */
let generation = 0;

function unwatch(): void {
  generation++;
  watching = undefined;
  if (pollTimer !== undefined) clearTimeout(pollTimer);
  pollTimer = undefined;
}

function watch(w: Watcher): void {
  watching = w;
  pollFailures = 0;
  schedulePoll();
}

function schedulePoll(): void {
  if (pollTimer !== undefined) clearTimeout(pollTimer);
  pollTimer = undefined;
  if (!watching || document.visibilityState === 'hidden') return;
  pollTimer = window.setTimeout(() => void poll(), Math.min(POLL_MS * 2 ** pollFailures, POLL_MAX_MS));
}

async function poll(): Promise<void> {
  pollTimer = undefined;
  const w = watching;
  if (!w || polling) return;
  const gen = generation;
  polling = true;
  try {
    if (busy) return;
    const apply = await w.read();
    if (gen !== generation || busy) return;
    pollFailures = 0;
    refreshNote(null);
    apply();
  } catch (e) {
    if (gen !== generation || busy) return;
    if (e instanceof ApiError && (e.status === 401 || e.status === 403 || e.status === 404)) {
      w.fail(e);
      return;
    }
    pollFailures++;
    refreshNote('Could not refresh this page; trying again.');
  } finally {
    polling = false;
    // For the page shown now (it may have been replaced meanwhile), unless it already waits.
    if (watching && pollTimer === undefined) schedulePoll();
  }
}

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'hidden') {
    if (pollTimer !== undefined) clearTimeout(pollTimer);
    pollTimer = undefined;
  } else if (watching && pollTimer === undefined && !polling) {
    void poll();
  }
});

function refreshNote(text: string | null): void {
  const existing = document.getElementById('refresh-note');
  if (text === null) {
    existing?.remove();
    return;
  }
  if (existing) existing.textContent = text;
  else main.querySelector('.card')?.append(el('p', { id: 'refresh-note', class: 'muted' }, text));
}

// ---- the dashboard (/) ----

function requestHref(id: string): string {
  return `?request_id=${encodeURIComponent(id)}`;
}

function pendingRow(s: Summary, nowMs: number): HTMLElement {
  const approvals = approvalsText(s);
  const part = yourPart(s);
  return el(
    'li',
    { attrs: { 'data-request-id': s.request_id } },
    el(
      'a',
      { class: 'row', attrs: { href: requestHref(s.request_id) } },
      el('span', { class: 'cell when' }, el('span', { class: 'left', attrs: { 'data-expires': s.expires_at } }, timeLeftText(s.expires_at, nowMs))),
      el('span', { class: 'cell agent' }, el('code', {}, visible(s.agent_id))),
      el('span', { class: 'cell action' }, visible(s.action)),
      el('span', { class: 'cell meta' }, approvals ? el('span', { class: 'approvals' }, approvals) : null, part ? el('span', { class: 'mine', attrs: { 'data-your-vote': s.your_vote ?? 'none' } }, part) : null),
    ),
  );
}

function recentRow(s: Summary): HTMLElement {
  const at = recentAt(s);
  return el(
    'li',
    { attrs: { 'data-request-id': s.request_id, 'data-status': s.status } },
    el(
      'a',
      { class: 'row', attrs: { href: requestHref(s.request_id) } },
      el('span', { class: 'cell state' }, el('span', { class: `status status-${s.status}` }, RECENT_STATUS[s.status])),
      el('span', { class: 'cell when' }, el('time', { attrs: { datetime: at } }, localWithZone(at))),
      el('span', { class: 'cell agent' }, el('code', {}, visible(s.agent_id))),
      el('span', { class: 'cell action' }, visible(s.action)),
    ),
  );
}

function rows(list: 'pending' | 'recent', items: readonly Summary[], row: (s: Summary) => HTMLElement, empty: string, heads: string[]): HTMLElement {
  if (items.length === 0) return el('p', { class: 'empty muted', attrs: { 'data-empty': list } }, empty);
  return el(
    'div',
    { class: `list ${list}` },
    el('div', { class: 'row head', attrs: { 'aria-hidden': 'true' } }, ...heads.map((h) => el('span', { class: 'cell' }, h))),
    el('ul', { class: 'rows', attrs: { 'data-list': list } }, ...items.map(row)),
  );
}

function renderDashboard(d: Dashboard): void {
  let offsetMs = Date.parse(d.server_time) - Date.now();
  let shown = dashboardFingerprint(d);
  const pendingCount = el('span', { class: 'count', attrs: { 'data-count': 'pending' } });
  const recentCount = el('span', { class: 'count', attrs: { 'data-count': 'recent' } });
  const pendingBox = el('div', { id: 'pending' });
  const recentBox = el('div', { id: 'recent' });
  const fill = (next: Dashboard): void => {
    // A refresh keeps the keyboard where it was.
    const focusedId = document.activeElement?.closest('[data-request-id]')?.getAttribute('data-request-id');
    pendingCount.textContent = ` (${next.pending.length})`;
    recentCount.textContent = ` (${next.recent.length})`;
    pendingBox.replaceChildren(rows('pending', next.pending, (s) => pendingRow(s, Date.now() + offsetMs), EMPTY_PENDING, ['Time left', 'Agent', 'Action', 'Votes']));
    recentBox.replaceChildren(rows('recent', next.recent, recentRow, EMPTY_RECENT, ['Status', 'When', 'Agent', 'Action']));
    if (focusedId) main.querySelector<HTMLElement>(`[data-request-id="${CSS.escape(focusedId)}"] a`)?.focus({ preventScroll: true });
  };
  const tick = (): void => {
    for (const left of main.querySelectorAll<HTMLElement>('[data-expires]')) left.textContent = timeLeftText(left.dataset.expires!, Date.now() + offsetMs);
  };
  fill(d);
  document.title = 'ackd — authorization requests';
  show(
    el(
      'section',
      { class: 'card dashboard' },
      el('h1', {}, 'Authorization requests'),
      el('p', { class: 'muted' }, 'Open a request to review it. This page updates by itself every few seconds.'),
      el('h2', {}, 'Awaiting decision', pendingCount),
      pendingBox,
      el('h2', {}, 'Recent decisions', recentCount),
      el('p', { class: 'muted sub' }, 'Decided or revoked in the last 24 hours, most recent first.'),
      recentBox,
    ),
    passkeysSection(call),
  );
  document.body.dataset.view = 'dashboard';
  ticker = window.setInterval(tick, 1000);
  watch({
    read: async () => {
      const next = await dashboard();
      return () => {
        offsetMs = Date.parse(next.server_time) - Date.now();
        const fp = dashboardFingerprint(next);
        if (fp !== shown) {
          shown = fp;
          fill(next);
        }
        tick();
      };
    },
    fail: (e) => handleError(e, null),
  });
}

async function loadDashboard(): Promise<void> {
  try {
    renderDashboard(await dashboard());
  } catch (e) {
    handleError(e, null);
  }
}

// ---- the review page (/?request_id=…) ----

function voteItem(v: VoteView): HTMLElement {
  return el(
    'li',
    { attrs: { 'data-vote': v.vote } },
    el('span', { class: 'voter' }, visible(v.who)),
    isMine(v.who, session?.email) ? ' (you)' : '',
    ' ',
    el('span', { class: `vote vote-${v.vote}` }, voteVerb(v.vote)),
    ' · ',
    el('time', { attrs: { datetime: v.at } }, localWithZone(v.at)),
  );
}

/** Progress and votes, for requests that need more than one approval. */
function quorumRows(r: RequestView): Child[] {
  if (!isQuorum(r)) return [];
  const bar = el('progress', { attrs: { max: String(r.approvals.need), value: String(Math.min(r.approvals.have, r.approvals.need)), 'aria-hidden': 'true' } });
  const rows: Child[] = [el('dt', {}, 'Approvals'), el('dd', { attrs: { 'data-field': 'approvals' } }, bar, el('span', { id: 'approvals' }, progressText(r.approvals)))];
  if (r.votes.length > 0) rows.push(el('dt', {}, 'Votes'), el('dd', { attrs: { 'data-field': 'votes' } }, el('ul', { class: 'votes' }, ...r.votes.map(voteItem))));
  return rows;
}

/** The label of a field whose text the agent wrote: the page says so, and the text is set apart. */
function claimTerm(name: string): HTMLElement {
  return el('dt', {}, name, el('span', { class: 'claim-tag' }, 'as stated by the agent'));
}

/** The permissions, each flagged when the rule of permissions.ts says so, and a warning under them. */
function permissionList(permissions: readonly string[]): Child[] {
  const items = permissions.map((p) => {
    const flags = flagsOf(p);
    // The badge comes from the stylesheet (attr()), so each item's text stays the permission itself.
    const attrs: Record<string, string> = flags.length > 0 ? { 'data-flags': flags.join(' '), 'data-flag-label': flagLabel(flags) } : {};
    return el('li', { class: flags.length > 0 ? 'flagged' : '', attrs }, el('code', {}, visible(p)));
  });
  const summary = flagSummary(permissions);
  return [el('ul', {}, ...items), summary ? el('p', { class: 'flag-note', id: 'permission-flags', attrs: { role: 'note' } }, visible(summary)) : null];
}

type Details = HTMLElement & { tick?: () => void };

function details(r: RequestView, offsetMs: number): Details {
  const pending = r.status === 'pending';
  const timeLeft = el('span', { id: 'time-left' });
  const update = () => {
    timeLeft.textContent = duration(Date.parse(r.expires_at) - (Date.now() + offsetMs));
  };
  update();
  const dl: Details = el(
    'dl',
    {},
    el('dt', {}, 'Agent'),
    el('dd', { attrs: { 'data-field': 'agent' } }, el('code', {}, r.agent_id)),
    claimTerm('Action'),
    el('dd', { class: 'claim', attrs: { 'data-field': 'action', 'data-claim': 'agent' } }, visible(r.action)),
    el('dt', {}, 'Permissions'),
    el('dd', { attrs: { 'data-field': 'permissions' } }, ...permissionList(r.permissions)),
    claimTerm('Justification'),
    el('dd', { class: 'claim justification scroll', attrs: { 'data-field': 'justification', 'data-claim': 'agent' } }, visible(r.justification)),
    ...payloadSection(r),
    el('dt', {}, 'Requested'),
    el('dd', { attrs: { 'data-field': 'requested' } }, localWithZone(r.requested_at)),
    pending ? el('dt', {}, 'Decide by') : null,
    pending ? el('dd', { attrs: { 'data-field': 'expires' } }, localWithZone(r.expires_at)) : null,
    pending ? el('dt', {}, 'Time left') : null,
    pending ? el('dd', { attrs: { 'data-field': 'time-left' } }, timeLeft) : null,
    pending ? el('dt', {}, 'If approved') : null,
    pending ? el('dd', { attrs: { 'data-field': 'lifetime' } }, lifetimeText(r.ttl_minutes)) : null,
    r.status === 'expired' ? el('dt', {}, 'Expired') : null,
    r.status === 'expired' ? el('dd', { attrs: { 'data-field': 'expires' } }, localWithZone(r.expires_at)) : null,
    el('dt', {}, 'Status'),
    el('dd', { attrs: { 'data-field': 'status' } }, el('span', { class: `status status-${r.status}`, id: 'status' }, statusText(r))),
    ...quorumRows(r),
    r.decision_at && r.status !== 'expired' ? el('dt', {}, 'Decided') : null,
    r.decision_at && r.status !== 'expired' ? el('dd', { attrs: { 'data-field': 'decided' } }, localWithZone(r.decision_at), r.approver_email ? ` by ${r.approver_email}` : '') : null,
    r.status === 'approved' ? el('dt', {}, 'Identity') : null,
    r.status === 'approved' ? el('dd', { attrs: { 'data-field': 'identity' } }, approvedText(r, Date.now() + offsetMs)) : null,
    r.status === 'revoked' ? el('dt', {}, 'Revoked') : null,
    r.status === 'revoked' ? el('dd', { attrs: { 'data-field': 'revoked' } }, visible(revokedWhenBy(r, session?.email))) : null,
    r.status === 'revoked' && r.revoke_reason ? el('dt', {}, 'Reason') : null,
    r.status === 'revoked' && r.revoke_reason ? el('dd', { attrs: { 'data-field': 'revoke-reason' } }, visible(r.revoke_reason)) : null,
    el('dt', {}, 'Request ID'),
    el('dd', {}, el('code', {}, r.request_id)),
  );
  if (pending) dl.tick = update;
  return dl;
}

// ---- the payload: every field as path → value, and its SHA-256 ----

/** A field's path as text with line-break opportunities before each `.` and `[` (so `targets[0].region` wraps between its parts). */
function pathParts(path: string): Child[] {
  return path.split(/(?=[.[])/).flatMap((part, i) => (i === 0 ? [part] : [el('wbr'), part]));
}

/** One value of the payload: its text, folded behind "Show all" when long or multi-line. */
function payloadValue(row: PayloadRow): HTMLElement {
  const value = el('code', { class: 'value', attrs: { 'data-kind': row.kind } }, row.fold.folded ? `${row.fold.preview}…` : row.text);
  const cell = el('td', {}, value);
  if (row.fold.folded) {
    let open = false;
    const toggle = button(showAllLabel(row.fold), 'link show-all', () => {
      open = !open;
      value.textContent = open ? row.text : `${row.fold.preview}…`;
      toggle.textContent = open ? SHOW_LESS : showAllLabel(row.fold);
      toggle.setAttribute('aria-expanded', String(open));
      cell.dataset.folded = String(!open);
    });
    toggle.setAttribute('aria-expanded', 'false');
    cell.dataset.folded = 'true';
    cell.append(' ', toggle);
  }
  return cell;
}

/**
 * The rows of the details for the payload (none when the agent sent none): a table of every field,
 * the SHA-256 in groups of 4 to compare with what the pipeline printed, checked here against the
 * payload shown (a mismatch says not to approve).
 */
function payloadSection(r: RequestView): Child[] {
  if (r.payload === null) return [];
  const rows = payloadRows(r.payload);
  const table =
    rows.length === 0
      ? el('p', { class: 'muted' }, EMPTY_PAYLOAD)
      : el(
          'div',
          { class: 'payload-wrap' },
          el(
            'table',
            { class: 'payload' },
            el('thead', {}, el('tr', {}, el('th', { attrs: { scope: 'col' } }, 'Field'), el('th', { attrs: { scope: 'col' } }, 'Value'))),
            el('tbody', {}, ...rows.map((row) => el('tr', { attrs: { 'data-path': row.path } }, el('th', { attrs: { scope: 'row' } }, el('code', {}, ...pathParts(row.path))), payloadValue(row)))),
          ),
        );
  const out: Child[] = [
    el('dt', {}, 'Parameters', el('span', { class: 'claim-tag' }, 'exactly what is approved')),
    el('dd', { attrs: { 'data-field': 'payload' } }, el('p', { class: 'muted hint' }, PAYLOAD_HINT), table),
  ];
  if (r.payload_sha256) {
    const digest = el('code', { class: 'digest', id: 'payload-sha256' }, digestText(r.payload_sha256));
    const dd = el('dd', { attrs: { 'data-field': 'payload-sha256' } }, digest, el('small', { class: 'muted hint' }, DIGEST_HINT));
    // The page checks the server's digest against the payload it shows (WebCrypto).
    const expected = r.payload_sha256;
    void payloadSha256Hex(r.payload).then(
      (mine) => {
        dd.dataset.checked = String(mine === expected);
        if (mine !== expected) dd.append(el('p', { class: 'error', attrs: { role: 'alert' } }, DIGEST_MISMATCH));
      },
      () => {
        dd.dataset.checked = 'false';
        dd.append(el('p', { class: 'error', attrs: { role: 'alert' } }, DIGEST_MISMATCH));
      },
    );
    out.push(el('dt', {}, 'Parameters SHA-256'), dd);
  }
  return out;
}

function noticeLine(notice: string | undefined): Child {
  return notice ? el('p', { class: 'notice', attrs: { role: 'alert' } }, notice) : null;
}

const PENDING_TITLE: Record<Exclude<Mode, 'closed'>, string> = {
  decide: 'An agent is asking for your approval',
  voted: 'Your vote is recorded',
  ineligible: 'You cannot vote on this request',
};

/** The lines above the details of a pending request: where the caller stands, and the rule. */
function standing(r: RequestView, mode: Exclude<Mode, 'closed'>): Child[] {
  const lines: Child[] = [];
  if (mode === 'voted') lines.push(el('p', { id: 'vote-state', class: 'state' }, waitingText(r)));
  if (mode === 'ineligible') {
    lines.push(
      el('p', { id: 'vote-state', class: 'state' }, r.not_eligible ? sentence(visible(r.not_eligible)) : 'You may not vote on this request.'),
      el('p', { class: 'muted' }, 'Other approvers can still decide it; this page updates when they do.'),
    );
  }
  // The rule is shown where it matters: several approvals, or a caller it leaves out.
  if (isQuorum(r) || mode === 'ineligible') lines.push(el('p', { class: 'why', attrs: { 'data-field': 'why-you' } }, 'Why you: ', visible(r.why_you)));
  return lines;
}

/** What changes the page when a refresh brings it (not server_time, nor nothing at all). */
function fingerprint(r: RequestView): string {
  return JSON.stringify([r.status, r.decidable, r.approvals, r.votes, r.your_vote, r.not_eligible, r.why_you, r.expires_at, r.decision_at, r.revocable, r.revoked_at, r.svid_id, r.svid_expires_at]);
}

function renderRequest(r: RequestView, notice?: string): void {
  document.title = 'ackd — review request';
  const mode = modeOf(r);
  if (mode === 'closed') {
    const title = r.status === 'expired' ? 'This request has expired' : r.status === 'revoked' ? 'This request was approved and later revoked' : `This request was already ${r.status}`;
    renderClosed(r, { title, notice });
    return;
  }
  let shown = r;
  let refreshConfirm: (() => void) | undefined;
  let offsetMs = Date.parse(r.server_time) - Date.now();
  let dl = details(r, offsetMs);
  const info = el('div', { class: 'standing' }, ...standing(r, mode));
  const body: Child[] = [noticeLine(notice), info, dl];

  if (mode === 'decide') {
    const actions = el('div', { class: 'actions' });
    const confirmBox = el('div', { id: 'confirm-slot' });
    const approve = button('Approve', 'approve', () => confirm('approved'));
    const deny = button('Deny', 'deny', () => confirm('denied'));
    actions.append(approve, deny);

    // What a decision does, for the request as last read (an open confirmation follows refreshes).
    const consequence = (decision: 'approved' | 'denied'): string =>
      decision === 'denied'
        ? `The agent "${r.agent_id}" will not be allowed to do this.`
        : isQuorum(shown) && shown.approvals.have + 1 < shown.approvals.need
          ? `Your approval is ${shown.approvals.have + 1} of the ${shown.approvals.need} this request needs; the agent gets its identity once all are in.`
          : `The agent "${r.agent_id}" will receive an identity for this one action, valid for ${r.ttl_minutes} minute${r.ttl_minutes === 1 ? '' : 's'}.`;

    const confirm = (decision: 'approved' | 'denied'): void => {
      approve.disabled = true;
      deny.disabled = true;
      const verb = decision === 'approved' ? 'approve' : 'deny';
      const yes = button('Confirm', decision === 'approved' ? 'approve' : 'deny', () => void decide(decision, shown, yes, no));
      const no = button('Cancel', '', () => {
        confirmBox.replaceChildren();
        refreshConfirm = undefined;
        approve.disabled = false;
        deny.disabled = false;
        approve.focus();
      });
      const desc = el('p', { id: 'confirm-desc' }, consequence(decision));
      refreshConfirm = () => {
        desc.textContent = consequence(decision);
      };
      const box = el(
        'div',
        { class: 'confirm', attrs: { role: 'alertdialog', 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-desc' } },
        el('h2', { id: 'confirm-title' }, `Really ${verb} this request?`),
        desc,
        el('div', { class: 'actions' }, yes, no),
      );
      confirmBox.replaceChildren(box);
      yes.focus();
    };
    body.push(actions, confirmBox);
  }

  show(page(PENDING_TITLE[mode], ...body));
  ticker = window.setInterval(() => {
    dl.tick?.();
    if (Date.parse(shown.expires_at) <= Date.now() + offsetMs) {
      // Time ran out while the page was open: no more buttons.
      void load(r.request_id);
    }
  }, 1000);
  watch({
    read: async () => {
      const next = await api(`/requests/${encodeURIComponent(r.request_id)}`);
      return () => {
        if (next.request_id === r.request_id && next.view_sha256 !== shown.view_sha256 && modeOf(next) !== 'closed') {
          // What the request asks changed (in the table, behind ackd's back): shown anew, any open confirmation closed.
          renderRequest(next, CHANGED_TEXT);
          return;
        }
        if (next.request_id === r.request_id && modeOf(next) === mode) {
          // The same page with fresher numbers: updated in place, an open confirmation stays open.
          offsetMs = Date.parse(next.server_time) - Date.now();
          if (fingerprint(next) === fingerprint(shown)) return;
          shown = next;
          const fresh = details(next, offsetMs);
          dl.replaceWith(fresh);
          dl = fresh;
          info.replaceChildren(...nodes(standing(next, mode)));
          refreshConfirm?.();
          return;
        }
        moved(mode, next);
      };
    },
    fail: (e) => handleError(e, r.request_id),
  });
}

/** A refresh found the request in another state than the page shows. */
function moved(was: Mode, next: RequestView): void {
  const decided = next.status === 'approved' || next.status === 'denied';
  if (decided && was === 'decide' && next.your_vote === null) {
    renderRequest(next, 'Another approver decided this request while you were reviewing it.');
  } else if (decided && (was === 'voted' || was === 'ineligible')) {
    renderOutcome(
      next,
      next.status === 'approved'
        ? `${isQuorum(next) ? `Approved with ${progressText(next.approvals)}. ` : ''}The agent can now pick up its identity for this request.`
        : 'The request was denied. The agent will not receive an identity for this request.',
    );
  } else {
    renderRequest(next);
  }
}

function renderOutcome(r: RequestView, lead: string): void {
  const approved = r.status === 'approved';
  renderClosed(r, { title: approved ? 'Approved' : 'Denied', outcome: approved ? 'approved' : 'denied', lead });
}

/**
 * A request nobody can vote on any more: approved (with Revoke, refreshed so a revocation
 * elsewhere shows), denied, expired or revoked (when and by whom).
 */
function renderClosed(r: RequestView, o: { title: string; outcome?: 'approved' | 'denied' | 'revoked'; lead?: string; notice?: string }): void {
  let shown = r;
  let offsetMs = Date.parse(r.server_time) - Date.now();
  let dl = details(r, offsetMs);
  const lead = o.lead ? el('p', { id: 'lead' }, o.lead) : r.revocable ? null : el('p', { class: 'muted' }, 'There is nothing left to decide.');
  const h1 = el('h1', o.outcome ? { class: `outcome ${o.outcome}` } : {}, o.title);
  show(el('section', { class: 'card' }, h1, noticeLine(o.notice), lead, dl, ...(r.revocable ? revokeControls(r.request_id, () => shown) : [])));
  if (r.status !== 'approved') return;
  watch({
    read: async () => {
      const next = await api(`/requests/${encodeURIComponent(r.request_id)}`);
      return () => {
        offsetMs = Date.parse(next.server_time) - Date.now();
        if (next.status !== 'approved') {
          renderRequest(next, next.status === 'revoked' ? 'This approval was revoked while the page was open.' : undefined);
          return;
        }
        if (fingerprint(next) === fingerprint(shown)) return;
        // Still approved (the agent may have picked up its identity): updated in place, an open confirmation stays open.
        shown = next;
        const fresh = details(next, offsetMs);
        dl.replaceWith(fresh);
        dl = fresh;
      };
    },
    fail: (e) => handleError(e, r.request_id),
  });
}

/** Revoke → a confirmation with an optional one-line reason → POST revoke. */
function revokeControls(id: string, current: () => RequestView): Child[] {
  const slot = el('div', { id: 'revoke-slot' });
  const revoke = button('Revoke', 'deny', () => open());
  const open = (): void => {
    revoke.disabled = true;
    const input = el('input', { id: 'revoke-reason', attrs: { type: 'text', maxlength: String(REASON_MAX), autocomplete: 'off', 'aria-describedby': 'revoke-reason-hint' } });
    const problem = el('p', { id: 'revoke-problem', class: 'error', attrs: { role: 'alert' } });
    problem.hidden = true;
    const say = (text: string): void => {
      problem.textContent = text;
      problem.hidden = false;
    };
    const yes = button('Revoke approval', 'deny', () => void submit());
    const no = button('Cancel', '', () => {
      slot.replaceChildren();
      revoke.disabled = false;
      revoke.focus();
    });
    const enable = (on: boolean): void => {
      yes.disabled = !on;
      no.disabled = !on;
      input.disabled = !on;
    };
    const submit = async (): Promise<void> => {
      const cleaned = cleanReason(input.value);
      if (!cleaned.ok) {
        say(cleaned.problem);
        return;
      }
      enable(false);
      busy = true;
      let r: RequestView;
      try {
        r = await post(id, 'revoke', cleaned.reason ? { reason: cleaned.reason } : {});
      } catch (e) {
        busy = false;
        if (e instanceof ApiError && e.status === 409) {
          // Not approved (any more): the request as it is now, with why.
          try {
            const now = await api(`/requests/${encodeURIComponent(id)}`);
            renderRequest(now, revokeRefusalText(e.code, now.status));
          } catch (e2) {
            handleError(e2, id);
          }
          return;
        }
        if (e instanceof ApiError && e.status === 400 && e.code === 'ERR_INVALID_INPUT') {
          enable(true);
          say(`The reason was not accepted: it must be one line of at most ${REASON_MAX} characters.`);
          input.focus();
          return;
        }
        if (e instanceof ApiError && (e.status === 401 || e.status === 403 || e.status === 404)) {
          handleError(e, id);
          return;
        }
        enable(true);
        say(`The approval was not revoked: ${e instanceof Error ? e.message : String(e)}. Try again.`);
        return;
      }
      busy = false;
      const byMe = r.revoked_by !== null && isMine(r.revoked_by, session?.email);
      renderClosed(r, {
        title: 'Revoked',
        outcome: 'revoked',
        lead: byMe ? 'You revoked this approval. The agent can no longer use it.' : `This approval had already been revoked by ${revokerText(r.revoked_by, session?.email) ?? 'someone else'}.`,
      });
    };
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') {
        ev.preventDefault();
        void submit();
      }
    });
    slot.replaceChildren(
      el(
        'div',
        { class: 'confirm', attrs: { role: 'alertdialog', 'aria-labelledby': 'revoke-title', 'aria-describedby': 'revoke-desc' } },
        el('h2', { id: 'revoke-title' }, 'Revoke this approval?'),
        el('p', { id: 'revoke-desc' }, revokeConsequence(current())),
        el('label', { attrs: { for: 'revoke-reason' } }, 'Reason (optional)'),
        input,
        el('small', { id: 'revoke-reason-hint', class: 'muted hint' }, `One line, at most ${REASON_MAX} characters. It is kept in the audit log with your name.`),
        problem,
        el('div', { class: 'actions' }, yes, no),
      ),
    );
    input.focus();
  };
  return [el('div', { class: 'actions' }, revoke), slot];
}

/**
 * What binds a decision to what the page showed: the SHA-256 of the view rendered (view-hash.ts,
 * the same computation as the server's core/view.ts), over exactly the request the page displays.
 */
async function viewEvidence(shown: RequestView): Promise<{ view_sha256: string }> {
  return { view_sha256: await viewSha256(shown) };
}

async function decide(decision: 'approved' | 'denied', shown: RequestView, ...buttons: HTMLButtonElement[]): Promise<void> {
  for (const b of buttons) b.disabled = true;
  const id = shown.request_id;
  let r: RequestView;
  busy = true;
  try {
    // Bound to the view shown, and signed with the approver's passkey when they have one (passkeys.ts: the challenge covers the view hash).
    r = await post(id, decision === 'approved' ? 'approve' : 'deny', await signedDecisionBody(call, id, decision, await viewEvidence(shown)));
  } catch (e) {
    busy = false;
    // A refused vote (voted already, may not vote, decided or expired meanwhile): the request as it is now, with why.
    const refusal = e instanceof ApiError && (e.status === 409 || e.status === 403) ? refusalText(e.code, e.message) : undefined;
    if (refusal) {
      await load(id, refusal);
      return;
    }
    handleError(e, id);
    return;
  }
  busy = false;
  if (r.status === 'pending') {
    // A vote that does not decide yet: the page waits for the others.
    renderRequest(r);
    return;
  }
  renderOutcome(r, r.status === 'approved' ? 'The agent can now pick up its identity for this request.' : 'The agent will not receive an identity for this request.');
}

async function load(id: string, notice?: string): Promise<void> {
  try {
    const r = await api(`/requests/${encodeURIComponent(id)}`);
    renderRequest(r, notice);
  } catch (e) {
    handleError(e, id);
  }
}

/** The query to come back to after signing in: the request, or the dashboard. */
function returnTo(id: string | null): string {
  return id ? requestHref(id) : '';
}

function handleError(e: unknown, id: string | null): void {
  if (e instanceof ApiError) {
    if (e.status === 401) {
      forgetSession();
      show(page('Your sign-in has expired', el('p', {}, 'Sign in again to continue.'), el('div', { class: 'actions' }, button('Sign in', 'approve', () => void signIn(cfg, returnTo(id))))));
      return;
    }
    if (e.status === 403) {
      show(page('You are not an approver', el('p', {}, `You are signed in${session?.email ? ` as ${session.email}` : ''}, but this account is not in the approvers group. Ask an operator to run "ackd approvers add".`)));
      return;
    }
    if (id !== null && (e.status === 404 || e.status === 400)) {
      show(page('Unknown request', el('p', {}, 'No authorization request exists with this link. Check that you opened the whole link from the email.')));
      return;
    }
  }
  show(page('Something went wrong', el('p', { class: 'error' }, e instanceof Error ? e.message : String(e)), el('div', { class: 'actions' }, button('Try again', '', () => void (id ? load(id) : loadDashboard())))));
}

function renderSignedOut(): void {
  const id = new URL(location.href).searchParams.get('request_id');
  show(page('You are signed out', el('div', { class: 'actions' }, button('Sign in', 'approve', () => void signIn(cfg, returnTo(id))))));
}

function renderHeader(): void {
  const who = document.getElementById('who')!;
  const out = document.getElementById('signout') as HTMLButtonElement;
  const home = document.getElementById('home') as HTMLButtonElement;
  who.textContent = session?.email ? `Signed in as ${session.email}` : '';
  out.hidden = !session;
  // On a review page: the way back to the dashboard.
  home.hidden = !session || !new URL(location.href).searchParams.has('request_id');
}

async function start(): Promise<void> {
  try {
    const res = await fetch('config.json', { cache: 'no-store' });
    if (!res.ok) throw new Error(`config.json: HTTP ${res.status}`);
    cfg = (await res.json()) as UiConfig;
  } catch (e) {
    show(page('ackd is not configured', el('p', { class: 'error' }, e instanceof Error ? e.message : String(e))));
    return;
  }
  document.getElementById('signout')!.addEventListener('click', () => {
    session = undefined;
    renderHeader();
    if (!signOut(cfg)) renderSignedOut();
  });
  document.getElementById('home')!.addEventListener('click', () => location.assign(location.pathname));

  const url = new URL(location.href);
  try {
    const restore = await completeSignIn(cfg, url);
    if (restore !== undefined) history.replaceState(null, '', `${url.pathname}${restore}`);
  } catch (e) {
    history.replaceState(null, '', url.pathname);
    show(page('Sign-in failed', el('p', { class: 'error' }, e instanceof Error ? e.message : String(e)), el('div', { class: 'actions' }, button('Sign in again', 'approve', () => void signIn(cfg, '')))));
    return;
  }

  const id = new URL(location.href).searchParams.get('request_id');
  session = currentSession();
  renderHeader();
  if (consumeSignedOut() && !session) {
    // Back from Cognito's /logout.
    renderSignedOut();
    return;
  }
  if (!session) {
    // The review page and the dashboard both need a sign-in; afterwards the browser comes back here.
    await signIn(cfg, returnTo(id));
    return;
  }
  if (!id) {
    await loadDashboard();
    return;
  }
  await load(id);
}

void start();
