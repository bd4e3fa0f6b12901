import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * The approver's sign-in page under `npm start` and the tests: ackd's stand-in for Cognito managed
 * login, served by cognito-local's server at `/oauth2/authorize` (GET shows the form, POST checks
 * the password and redirects with a code). cognito-local's own form is an unstyled page with a
 * bare "Username:" and no word of what it is for — to an approver arriving from an email, it
 * looks like phishing; and it echoes the query string unescaped. This one says it is ackd, what
 * the sign-in is for (the request, when the flow names it) and where it leads back to, escapes
 * everything it echoes, and is served with a strict CSP and no script at all.
 *
 * The protocol is cognito-local's, unchanged: the same parameters, the same checks (registered
 * client and redirect URI, code + S256 PKCE), the same code store its `/oauth2/token` redeems.
 */

export const SIGNIN_CSS_PATH = '/oauth2/signin.css';

/** What the sign-in page shows; every string is escaped when rendered. */
export interface SignInView {
  readonly clientId: string;
  readonly redirectUri: string;
  readonly codeChallenge: string;
  readonly codeChallengeMethod: string;
  readonly scope: string;
  readonly state: string;
  /** The request being reviewed, when the flow carries it (see requestIdOf). */
  readonly requestId?: string | undefined;
  /** The username typed before a failed attempt. */
  readonly username?: string | undefined;
  readonly error?: string | undefined;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

const REQUEST_ID = /^req_[0-9a-z]{26}$/;
const REQUEST_ID_SUFFIX = /\.(req_[0-9a-z]{26})$/;

/**
 * The request id an authorize call is about, if it says: a `request_id` parameter of the
 * authorize URL, a `request_id` in the redirect URI's query, or a state ending in
 * `.<request_id>` (state is opaque to the IdP and comes back unchanged). Only a well-formed id
 * is shown; anything else is ignored.
 */
export function requestIdOf(p: { request_id?: string | undefined; redirect_uri?: string | undefined; state?: string | undefined }): string | undefined {
  if (p.request_id && REQUEST_ID.test(p.request_id)) return p.request_id;
  if (p.redirect_uri) {
    try {
      const fromRedirect = new URL(p.redirect_uri).searchParams.get('request_id');
      if (fromRedirect && REQUEST_ID.test(fromRedirect)) return fromRedirect;
    } catch {
      // not a URL: nothing to show
    }
  }
  const m = p.state ? REQUEST_ID_SUFFIX.exec(p.state) : null;
  return m ? m[1] : undefined;
}

/** The origin the browser goes back to after signing in (shown to the approver), or undefined. */
function originOf(uri: string): string | undefined {
  try {
    const u = new URL(uri);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The page's Content-Security-Policy: no script at all, styles only from the served stylesheet,
 * and the form may post only here — and to the registered redirect URI's origin, because
 * Chromium applies form-action to the redirect that follows the POST.
 */
export function signInCsp(redirectUri?: string): string {
  const back = redirectUri ? originOf(redirectUri) : undefined;
  return [
    "default-src 'none'",
    "style-src 'self'",
    "img-src 'self'",
    `form-action 'self'${back ? ` ${back}` : ''}`,
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export function securityHeaders(redirectUri?: string): Record<string, string> {
  return {
    'content-security-policy': signInCsp(redirectUri),
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    'cache-control': 'no-store',
  };
}

/** The consent UI's visual language (consent-ui/src/styles.css), for a single small form. */
export const SIGNIN_CSS = `:root { color-scheme: light dark; --fg: #111; --bg: #f5f5f4; --card: #fff; --muted: #5b5b5b; --line: #ddd; --ok: #176b34; --bad: #a61b1b; --accent: #1f5fd1; }
@media (prefers-color-scheme: dark) { :root { --fg: #eee; --bg: #161616; --card: #222; --muted: #aaa; --line: #3a3a3a; --ok: #4cc37a; --bad: #ff7070; --accent: #7aa7ff; } }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.45 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: var(--fg); background: var(--bg); }
.bar { display: flex; align-items: center; gap: 12px; padding: 10px 16px; border-bottom: 1px solid var(--line); background: var(--card); }
.brand { font-weight: 700; letter-spacing: .02em; }
.tag { margin-left: auto; color: var(--muted); font-size: 14px; }
main { max-width: 440px; margin: 16px auto; padding: 0 12px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 18px; }
h1 { font-size: 22px; line-height: 1.25; margin: 0 0 8px; }
p { margin: 0 0 12px; }
.muted { color: var(--muted); }
.small { font-size: 14px; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .95em; overflow-wrap: anywhere; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 12px; margin: 0 0 16px; font-size: 14px; }
dt { color: var(--muted); font-weight: 600; white-space: nowrap; }
dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
.error { color: var(--bad); font-weight: 600; margin: 0 0 12px; padding: 8px 12px; border-left: 4px solid var(--bad); background: var(--bg); }
form { display: grid; gap: 6px; }
label { font-weight: 600; margin-top: 6px; }
input { font: inherit; width: 100%; min-height: 44px; padding: 8px 10px; border: 1px solid var(--line); border-radius: 8px; background: var(--bg); color: var(--fg); }
input:focus { outline: 2px solid var(--accent); outline-offset: 1px; }
input[aria-invalid="true"] { border-color: var(--bad); }
button { font: inherit; font-weight: 600; margin-top: 14px; padding: 12px 22px; min-height: 44px; border-radius: 8px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
.note { margin: 16px 0 0; }
@media (max-width: 520px) { .card { padding: 14px; } dl { grid-template-columns: 1fr; gap: 0; } dd { margin-bottom: 6px; } }
`;

function shell(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${esc(title)}</title>
<link rel="stylesheet" href="${SIGNIN_CSS_PATH}">
</head>
<body>
<header class="bar"><span class="brand">ackd</span><span class="tag">approver sign-in</span></header>
<main>
<div class="card">
${body}
</div>
</main>
</body>
</html>
`;
}

/** The sign-in form. Everything from the query string or the form is escaped. */
export function renderSignInPage(v: SignInView): string {
  const heading = v.requestId ? 'Sign in to review an authorization request' : 'Sign in to review authorization requests';
  const back = originOf(v.redirectUri);
  const hidden = (name: string, value: string) => `<input type="hidden" name="${name}" value="${esc(value)}">`;
  const invalid = v.error ? ' aria-invalid="true" aria-describedby="signin-error"' : '';
  const context = [
    ...(v.requestId ? [`<dt>Request</dt><dd><code id="request-id">${esc(v.requestId)}</code></dd>`] : []),
    ...(back ? [`<dt>Then back to</dt><dd><code>${esc(back)}</code></dd>`] : []),
  ];
  const body = `<h1>${heading}</h1>
<p id="purpose" class="muted">An AI agent asked ackd for permission to act. Sign in as an approver to see exactly what it wants to do, then approve or deny it.</p>
${context.length > 0 ? `<dl>${context.join('')}</dl>` : ''}
${v.error ? `<p id="signin-error" class="error" role="alert">${esc(v.error)}</p>` : ''}
<form method="post" action="/oauth2/authorize">
${hidden('client_id', v.clientId)}
${hidden('redirect_uri', v.redirectUri)}
${hidden('response_type', 'code')}
${hidden('code_challenge', v.codeChallenge)}
${hidden('code_challenge_method', v.codeChallengeMethod)}
${hidden('scope', v.scope)}
${hidden('state', v.state)}
${v.requestId ? hidden('request_id', v.requestId) : ''}
<label for="username">Username</label>
<input id="username" name="username" type="text" inputmode="email" autocomplete="username" autocapitalize="none" spellcheck="false" required value="${esc(v.username ?? '')}"${v.error ? '' : ' autofocus'}${invalid}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required${v.error ? ' autofocus' : ''}${invalid}>
<button type="submit">Sign in</button>
</form>
<p class="note muted small">Local sign-in of <code>npm start</code> (cognito-local). On AWS, approvers sign in through Amazon Cognito.</p>`;
  return shell('Sign in — ackd', body);
}

/** A sign-in link that cannot be used (unknown client, unregistered redirect URI, no PKCE…). */
export function renderSignInError(reason: string): string {
  return shell(
    'Sign-in link not valid — ackd',
    `<h1>This sign-in link cannot be used</h1>
<p class="error" role="alert">${esc(reason)}</p>
<p class="muted">Open the review link from the approval email again, or ask the operator who runs ackd.</p>`,
  );
}

// ---------------------------------------------------------------------------------------------
// The routes, on cognito-local's Express app. Types are the few members used (cognito-local
// bundles Express without types).

/* eslint-disable @typescript-eslint/no-explicit-any */
interface Req {
  readonly query: Record<string, unknown>;
  readonly body?: Record<string, unknown>;
  readonly log?: unknown;
}
interface Res {
  status(code: number): Res;
  set(headers: Record<string, string>): Res;
  type(t: string): Res;
  send(body: string): void;
  redirect(url: string): void;
}
interface App {
  get(path: string, h: (req: Req, res: Res) => void | Promise<void>): void;
  post(path: string, h: (req: Req, res: Res) => void | Promise<void>): void;
}
/** cognito-local's services (the members used). */
interface CognitoServices {
  readonly cognito: { getAppClient(ctx: any, clientId: string): Promise<any>; getUserPoolForClientId(ctx: any, clientId: string): Promise<any> };
}
interface CodeStore {
  create(data: Record<string, unknown>): string;
}

/** One string parameter: repeated or structured values count as absent. */
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

const sameSecret = (a: string, b: string) => timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());

type Checked = { ok: true; clientId: string; redirectUri: string; codeChallenge: string } | { ok: false; reason: string };

async function checkClient(services: CognitoServices, ctx: unknown, p: Record<string, unknown>): Promise<Checked> {
  const clientId = str(p.client_id);
  const redirectUri = str(p.redirect_uri);
  const codeChallenge = str(p.code_challenge);
  if (!clientId) return { ok: false, reason: 'Missing client_id.' };
  if (!redirectUri) return { ok: false, reason: 'Missing redirect_uri.' };
  if (str(p.response_type) !== 'code') return { ok: false, reason: 'response_type must be code.' };
  if (!codeChallenge) return { ok: false, reason: 'Missing code_challenge.' };
  if (str(p.code_challenge_method) !== 'S256') return { ok: false, reason: 'code_challenge_method must be S256.' };
  const appClient = await services.cognito.getAppClient(ctx, clientId).catch(() => undefined);
  if (!appClient) return { ok: false, reason: 'Invalid client_id.' };
  if (!((appClient.CallbackURLs ?? []) as string[]).includes(redirectUri)) return { ok: false, reason: 'redirect_uri is not registered for this client.' };
  return { ok: true, clientId, redirectUri, codeChallenge };
}

function sendHtml(res: Res, status: number, html: string, redirectUri?: string): void {
  res.status(status).set(securityHeaders(redirectUri)).type('text/html; charset=utf-8').send(html);
}

/**
 * Mounts the sign-in page on cognito-local's app: GET/POST `/oauth2/authorize` and the
 * stylesheet. Mount it before cognito-local's own OAuth routes (its `/oauth2/token` stays), and
 * give both the same code store.
 */
/** The sign-in page for a checked client, with what the flow carried (and a retry's username and error). */
function signInPage(
  c: { clientId: string; redirectUri: string; codeChallenge: string },
  f: { state: string; scope: string; requestId: string | undefined; username?: string; error?: string },
): string {
  return renderSignInPage({
    clientId: c.clientId,
    redirectUri: c.redirectUri,
    codeChallenge: c.codeChallenge,
    codeChallengeMethod: 'S256',
    scope: f.scope,
    state: f.state,
    requestId: requestIdOf({ request_id: f.requestId, redirect_uri: c.redirectUri, state: f.state }),
    ...(f.username === undefined ? {} : { username: f.username }),
    ...(f.error === undefined ? {} : { error: f.error }),
  });
}

export function attachHostedLogin(app: App, services: CognitoServices, codeStore: CodeStore): void {
  app.get(SIGNIN_CSS_PATH, (_req, res) => {
    res.status(200).set({ ...securityHeaders(), 'cache-control': 'no-cache' }).type('text/css; charset=utf-8').send(SIGNIN_CSS);
  });

  app.get('/oauth2/authorize', async (req, res) => {
    const q = req.query;
    const c = await checkClient(services, { logger: req.log }, q);
    if (!c.ok) return sendHtml(res, 400, renderSignInError(c.reason));
    sendHtml(res, 200, signInPage(c, { state: str(q.state) ?? '', scope: str(q.scope) ?? '', requestId: str(q.request_id) }), c.redirectUri);
  });

  app.post('/oauth2/authorize', async (req, res) => {
    const b = req.body ?? {};
    const ctx = { logger: req.log };
    const c = await checkClient(services, ctx, b);
    if (!c.ok) return sendHtml(res, 400, renderSignInError(c.reason));
    const state = str(b.state) ?? '';
    const scope = str(b.scope) ?? '';
    const username = str(b.username) ?? '';
    const password = str(b.password) ?? '';
    const again = (error: string) => sendHtml(res, 200, signInPage(c, { state, scope, requestId: str(b.request_id), username, error }), c.redirectUri);
    if (!username || !password) return again('Enter your username and password.');
    const userPool = await services.cognito.getUserPoolForClientId(ctx, c.clientId).catch(() => undefined);
    if (!userPool) return sendHtml(res, 400, renderSignInError('Invalid client_id.'));
    const user = await userPool.getUserByUsername(ctx, username);
    // One answer for an unknown user, a wrong password and an unconfirmed account (as Cognito).
    if (!user || typeof user.Password !== 'string' || !sameSecret(user.Password, password) || user.UserStatus === 'UNCONFIRMED') {
      return again('Incorrect username or password.');
    }
    const code = codeStore.create({
      clientId: c.clientId,
      userPoolId: userPool.options.Id,
      username: user.Username,
      redirectUri: c.redirectUri,
      codeChallenge: c.codeChallenge,
      scope,
      state: state || undefined,
    });
    const back = new URL(c.redirectUri);
    back.searchParams.set('code', code);
    if (state) back.searchParams.set('state', state);
    res.redirect(back.toString());
  });
}
