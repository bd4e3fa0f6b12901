import { completeSignIn, consumeSignedOut, currentSession, forgetSession, signIn, signOut, type Session, type UiConfig } from './auth.ts';
import { visible } from '../../lambdas/core/visible.ts';
import { isMine, isQuorum, localWithZone, modeOf, progressText, refusalText, sentence, voteVerb, waitingText, type Mode, type VoteView } from './votes.ts';

/** What GET /api/requests/:id returns (see lambdas/consent-api/app.ts). */
interface RequestView {
  request_id: string;
  agent_id: string;
  action: string;
  permissions: string[];
  justification: string;
  ttl_minutes: number;
  requested_at: string;
  expires_at: string;
  status: 'pending' | 'approved' | 'denied' | 'expired' | 'revoked';
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

// ---- DOM helpers: agent data is only ever inserted as text. ----

type Child = Node | string | null | undefined | false;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: { class?: string; id?: string; attrs?: Record<string, string> } = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (props.class) e.className = props.class;
  if (props.id) e.id = props.id;
  for (const [k, v] of Object.entries(props.attrs ?? {})) e.setAttribute(k, v);
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.append(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return e;
}

function button(label: string, cls: string, onClick: () => void): HTMLButtonElement {
  const b = el('button', { class: cls, attrs: { type: 'button' } }, label);
  b.addEventListener('click', onClick);
  return b;
}

const main = document.getElementById('main')!;
let ticker: number | undefined;

function show(...nodes: Child[]): void {
  if (ticker !== undefined) clearInterval(ticker);
  ticker = undefined;
  unwatch();
  main.replaceChildren(...nodes.filter((n): n is Node | string => n !== null && n !== undefined && n !== false));
  const h = main.querySelector('h1');
  if (h) {
    h.setAttribute('tabindex', '-1');
    h.focus({ preventScroll: true });
  }
}

function page(title: string, ...body: Child[]): HTMLElement {
  return el('section', { class: 'card' }, el('h1', {}, title), ...body);
}

// ---- time ----

function utc(iso: string): string {
  return new Date(iso).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

function local(iso: string): string {
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

function duration(ms: number): string {
  if (ms <= 0) return 'none — expired';
  const s = Math.floor(ms / 1000);
  const m = Math.floor(s / 60);
  return m > 0 ? `${m} min ${s % 60} s` : `${s} s`;
}

const STATUS_TEXT: Record<RequestView['status'], string> = {
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

async function api(path: string, init: RequestInit = {}): Promise<RequestView> {
  const res = await fetch(`${cfg.apiBase}${path}`, {
    ...init,
    headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${session!.idToken}` },
    cache: 'no-store',
  });
  const body = (await res.json().catch(() => ({}))) as { request?: RequestView; error?: { code: string; message: string } };
  if (!res.ok || !body.request) throw new ApiError(res.status, body.error?.code ?? 'ERR_INTERNAL', body.error?.message ?? `HTTP ${res.status}`);
  return body.request;
}

// ---- refreshing a pending request ----
// While a request is pending, the page reads it again every few seconds (only while the tab is
// visible), so other approvers' votes and the decision show up without a reload.

const POLL_MS = 3000;
const POLL_MAX_MS = 60_000;
let watching: { id: string; update: (next: RequestView) => void } | undefined;
let pollTimer: number | undefined;
let polling = false;
let pollFailures = 0;
/** A vote is being sent: refreshes are held back so they cannot overwrite its answer. */
let deciding = false;
/** Bumped whenever the page is replaced: an answer for an older page is dropped. */
let generation = 0;

function unwatch(): void {
  generation++;
  watching = undefined;
  if (pollTimer !== undefined) clearTimeout(pollTimer);
  pollTimer = undefined;
}

function watch(id: string, update: (next: RequestView) => void): void {
  watching = { id, update };
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
    if (deciding) return;
    const next = await api(`/requests/${encodeURIComponent(w.id)}`);
    if (gen !== generation || deciding) return;
    pollFailures = 0;
    refreshNote(null);
    w.update(next);
  } catch (e) {
    if (gen !== generation || deciding) return;
    if (e instanceof ApiError && (e.status === 401 || e.status === 403 || e.status === 404)) {
      handleError(e, w.id);
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

// ---- pages ----

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

function details(r: RequestView, offsetMs: number): { dl: HTMLElement; timeLeft: HTMLElement } {
  const timeLeft = el('span', { id: 'time-left' });
  const update = () => {
    timeLeft.textContent = r.status === 'pending' ? duration(Date.parse(r.expires_at) - (Date.now() + offsetMs)) : '—';
  };
  update();
  const dl = el(
    'dl',
    {},
    el('dt', {}, 'Agent'),
    el('dd', { attrs: { 'data-field': 'agent' } }, el('code', {}, r.agent_id)),
    el('dt', {}, 'Action'),
    el('dd', { attrs: { 'data-field': 'action' } }, visible(r.action)),
    el('dt', {}, 'Permissions'),
    el('dd', { attrs: { 'data-field': 'permissions' } }, el('ul', {}, ...r.permissions.map((p) => el('li', {}, el('code', {}, visible(p)))))),
    el('dt', {}, 'Justification'),
    el('dd', { class: 'justification scroll', attrs: { 'data-field': 'justification' } }, visible(r.justification)),
    el('dt', {}, 'Requested'),
    el('dd', { attrs: { 'data-field': 'requested' } }, local(r.requested_at), el('br'), el('small', { class: 'muted' }, utc(r.requested_at))),
    el('dt', {}, 'Decide by'),
    el('dd', { attrs: { 'data-field': 'expires' } }, local(r.expires_at), el('br'), el('small', { class: 'muted' }, `${utc(r.expires_at)} (TTL ${r.ttl_minutes} min)`)),
    el('dt', {}, 'Time left'),
    el('dd', { attrs: { 'data-field': 'time-left' } }, timeLeft),
    el('dt', {}, 'Status'),
    el('dd', { attrs: { 'data-field': 'status' } }, el('span', { class: `status status-${r.status}`, id: 'status' }, statusText(r))),
    ...quorumRows(r),
    r.decision_at ? el('dt', {}, 'Decided') : null,
    r.decision_at ? el('dd', {}, utc(r.decision_at), r.approver_email ? ` by ${r.approver_email}` : '') : null,
    el('dt', {}, 'Request ID'),
    el('dd', {}, el('code', {}, r.request_id)),
  );
  (dl as HTMLElement & { tick?: () => void }).tick = update;
  return { dl, timeLeft };
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
  return JSON.stringify([r.status, r.decidable, r.approvals, r.votes, r.your_vote, r.not_eligible, r.why_you, r.expires_at, r.decision_at]);
}

function renderRequest(r: RequestView, notice?: string): void {
  const mode = modeOf(r);
  if (mode === 'closed') {
    const { dl } = details(r, Date.parse(r.server_time) - Date.now());
    const title = r.status === 'expired' ? 'This request has expired' : r.status === 'revoked' ? 'This request was approved and later revoked' : `This request was already ${r.status}`;
    show(page(title, noticeLine(notice), el('p', { class: 'muted' }, 'There is nothing left to decide.'), dl));
    return;
  }
  let shown = r;
  let refreshConfirm: (() => void) | undefined;
  let offsetMs = Date.parse(r.server_time) - Date.now();
  let { dl } = details(r, offsetMs);
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
      const yes = button('Confirm', decision === 'approved' ? 'approve' : 'deny', () => void decide(decision, yes, no));
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
      const box = el('div', { class: 'confirm', attrs: { role: 'alertdialog', 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-desc' } },
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
    (dl as HTMLElement & { tick?: () => void }).tick?.();
    if (Date.parse(shown.expires_at) <= Date.now() + offsetMs) {
      // Time ran out while the page was open: no more buttons.
      void load(r.request_id);
    }
  }, 1000);
  watch(r.request_id, (next) => {
    if (next.request_id === r.request_id && modeOf(next) === mode) {
      // The same page with fresher numbers: updated in place, an open confirmation stays open.
      offsetMs = Date.parse(next.server_time) - Date.now();
      if (fingerprint(next) === fingerprint(shown)) return;
      shown = next;
      const fresh = details(next, offsetMs);
      dl.replaceWith(fresh.dl);
      dl = fresh.dl;
      info.replaceChildren(...standing(next, mode).filter((n): n is Node => n instanceof Node));
      refreshConfirm?.();
      return;
    }
    moved(mode, next);
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
  const { dl } = details(r, Date.parse(r.server_time) - Date.now());
  const approved = r.status === 'approved';
  show(el('section', { class: 'card' }, el('h1', { class: `outcome ${approved ? 'approved' : 'denied'}` }, approved ? 'Approved' : 'Denied'), el('p', {}, lead), dl));
}

async function decide(decision: 'approved' | 'denied', ...buttons: HTMLButtonElement[]): Promise<void> {
  for (const b of buttons) b.disabled = true;
  const id = new URL(location.href).searchParams.get('request_id')!;
  let r: RequestView;
  deciding = true;
  try {
    r = await api(`/requests/${encodeURIComponent(id)}/${decision === 'approved' ? 'approve' : 'deny'}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ request_id: id }),
    });
  } catch (e) {
    deciding = false;
    // A refused vote (voted already, may not vote, decided or expired meanwhile): the request as it is now, with why.
    const refusal = e instanceof ApiError && (e.status === 409 || e.status === 403) ? refusalText(e.code, e.message) : undefined;
    if (refusal) {
      await load(id, refusal);
      return;
    }
    handleError(e, id);
    return;
  }
  deciding = false;
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

function handleError(e: unknown, id: string): void {
  if (e instanceof ApiError) {
    if (e.status === 401) {
      forgetSession();
      show(page('Your sign-in has expired', el('p', {}, 'Sign in again to continue.'), el('div', { class: 'actions' }, button('Sign in', 'approve', () => void signIn(cfg, `?request_id=${encodeURIComponent(id)}`)))));
      return;
    }
    if (e.status === 403) {
      show(page('You are not an approver', el('p', {}, `You are signed in${session?.email ? ` as ${session.email}` : ''}, but this account is not in the approvers group. Ask an operator to run "ackd approvers add".`)));
      return;
    }
    if (e.status === 404 || e.status === 400) {
      show(page('Unknown request', el('p', {}, 'No authorization request exists with this link. Check that you opened the whole link from the email.')));
      return;
    }
  }
  show(page('Something went wrong', el('p', { class: 'error' }, e instanceof Error ? e.message : String(e)), el('div', { class: 'actions' }, button('Try again', '', () => void load(id)))));
}

function renderSignedOut(): void {
  const id = new URL(location.href).searchParams.get('request_id');
  show(page('You are signed out', el('div', { class: 'actions' }, button('Sign in', 'approve', () => void signIn(cfg, id ? `?request_id=${encodeURIComponent(id)}` : '')))));
}

function renderHeader(): void {
  const who = document.getElementById('who')!;
  const out = document.getElementById('signout') as HTMLButtonElement;
  who.textContent = session?.email ? `Signed in as ${session.email}` : '';
  out.hidden = !session;
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
  if (!id) {
    show(page('No request selected', el('p', {}, 'Open the link from a consent email to review a request.')));
    return;
  }
  if (!session) {
    await signIn(cfg, `?request_id=${encodeURIComponent(id)}`);
    return;
  }
  await load(id);
}

void start();
