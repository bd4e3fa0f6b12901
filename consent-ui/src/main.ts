import { completeSignIn, consumeSignedOut, currentSession, forgetSession, signIn, signOut, type Session, type UiConfig } from './auth.ts';
import { visible } from '../../lambdas/core/visible.ts';

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
  decidable: boolean;
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

// ---- pages ----

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
    el('dd', { attrs: { 'data-field': 'status' } }, el('span', { class: `status status-${r.status}`, id: 'status' }, STATUS_TEXT[r.status])),
    r.decision_at ? el('dt', {}, 'Decided') : null,
    r.decision_at ? el('dd', {}, utc(r.decision_at), r.approver_email ? ` by ${r.approver_email}` : '') : null,
    el('dt', {}, 'Request ID'),
    el('dd', {}, el('code', {}, r.request_id)),
  );
  (dl as HTMLElement & { tick?: () => void }).tick = update;
  return { dl, timeLeft };
}

function renderRequest(r: RequestView): void {
  const offsetMs = Date.parse(r.server_time) - Date.now();
  const { dl } = details(r, offsetMs);
  if (!r.decidable) {
    const title = r.status === 'expired' ? 'This request has expired' : r.status === 'revoked' ? 'This request was approved and later revoked' : `This request was already ${r.status}`;
    show(page(title, el('p', { class: 'muted' }, 'There is nothing left to decide.'), dl));
    return;
  }
  const actions = el('div', { class: 'actions' });
  const confirmBox = el('div', { id: 'confirm-slot' });
  const approve = button('Approve', 'approve', () => confirm('approved'));
  const deny = button('Deny', 'deny', () => confirm('denied'));
  actions.append(approve, deny);

  function confirm(decision: 'approved' | 'denied'): void {
    approve.disabled = true;
    deny.disabled = true;
    const verb = decision === 'approved' ? 'approve' : 'deny';
    const consequence =
      decision === 'approved'
        ? `The agent "${r.agent_id}" will receive an identity for this one action, valid for ${r.ttl_minutes} minute${r.ttl_minutes === 1 ? '' : 's'}.`
        : `The agent "${r.agent_id}" will not be allowed to do this.`;
    const yes = button('Confirm', decision === 'approved' ? 'approve' : 'deny', () => void decide(decision, yes, no));
    const no = button('Cancel', '', () => {
      confirmBox.replaceChildren();
      approve.disabled = false;
      deny.disabled = false;
      approve.focus();
    });
    const box = el('div', { class: 'confirm', attrs: { role: 'alertdialog', 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-desc' } },
      el('h2', { id: 'confirm-title' }, `Really ${verb} this request?`),
      el('p', { id: 'confirm-desc' }, consequence),
      el('div', { class: 'actions' }, yes, no),
    );
    confirmBox.replaceChildren(box);
    yes.focus();
  }

  show(page('An agent is asking for your approval', dl, actions, confirmBox));
  ticker = window.setInterval(() => {
    (dl as HTMLElement & { tick?: () => void }).tick?.();
    if (Date.parse(r.expires_at) <= Date.now() + offsetMs) {
      // Time ran out while the page was open: no more buttons.
      void load(r.request_id);
    }
  }, 1000);
}

async function decide(decision: 'approved' | 'denied', ...buttons: HTMLButtonElement[]): Promise<void> {
  for (const b of buttons) b.disabled = true;
  const id = new URL(location.href).searchParams.get('request_id')!;
  try {
    const r = await api(`/requests/${encodeURIComponent(id)}/${decision === 'approved' ? 'approve' : 'deny'}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ request_id: id }),
    });
    const { dl } = details(r, Date.parse(r.server_time) - Date.now());
    show(
      el('section', { class: 'card' },
        el('h1', { class: `outcome ${decision}` }, decision === 'approved' ? 'Approved' : 'Denied'),
        el('p', {}, decision === 'approved' ? 'The agent can now pick up its identity for this request.' : 'The agent will not receive an identity for this request.'),
        dl,
      ),
    );
  } catch (e) {
    if (e instanceof ApiError && (e.code === 'ERR_ALREADY_DECIDED' || e.code === 'ERR_EXPIRED')) {
      await load(id, e.code === 'ERR_EXPIRED' ? 'The request expired before your decision was recorded.' : 'Someone else decided this request first.');
      return;
    }
    handleError(e, id);
  }
}

async function load(id: string, notice?: string): Promise<void> {
  try {
    const r = await api(`/requests/${encodeURIComponent(id)}`);
    renderRequest(r);
    if (notice) main.querySelector('.card')?.insertBefore(el('p', { class: 'error', attrs: { role: 'alert' } }, notice), main.querySelector('dl'));
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
