/** Authorization code + PKCE against Cognito's /oauth2 endpoints (managed login on AWS, cognito-local locally). */

export interface UiConfig {
  /** Base URL of the Cognito domain: `${cognitoDomain}/oauth2/authorize`, `/oauth2/token`, `/logout`. */
  readonly cognitoDomain: string;
  readonly clientId: string;
  /** Registered callback URL of the app client (this page). */
  readonly redirectUri: string;
  /** Base of the consent API, e.g. "/api". */
  readonly apiBase: string;
  /** Where Cognito's /logout sends the browser back; absent when the IdP has no logout endpoint. */
  readonly logoutUri?: string;
  readonly scopes?: string;
}

const PENDING = 'ackd.pkce';
const TOKEN = 'ackd.idToken';
const SIGNED_OUT = 'ackd.signedOut';
const REQUEST_ID = /^req_[0-9a-z]{26}$/;

/** True once, on the page load that follows a sign-out through Cognito's /logout. */
export function consumeSignedOut(): boolean {
  const v = sessionStorage.getItem(SIGNED_OUT) !== null;
  sessionStorage.removeItem(SIGNED_OUT);
  return v;
}

function b64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function random(n: number): string {
  return b64url(crypto.getRandomValues(new Uint8Array(n)));
}

async function challengeOf(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return b64url(new Uint8Array(digest));
}

/** Sends the browser to sign in; `returnTo` is the query to restore afterwards (e.g. the request id). */
export async function signIn(cfg: UiConfig, returnTo: string): Promise<never> {
  const verifier = random(48);
  // State is opaque to the IdP and comes back unchanged; ending it with ".<request id>" lets a
  // sign-in page that reads it (the local one) say which request the approver signs in to review.
  const requestId = new URLSearchParams(returnTo).get('request_id');
  const state = requestId && REQUEST_ID.test(requestId) ? `${random(24)}.${requestId}` : random(24);
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, returnTo }));
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: cfg.clientId,
    redirect_uri: cfg.redirectUri,
    scope: cfg.scopes ?? 'openid email profile',
    state,
    code_challenge: await challengeOf(verifier),
    code_challenge_method: 'S256',
  });
  location.assign(`${cfg.cognitoDomain}/oauth2/authorize?${q}`);
  return new Promise<never>(() => undefined);
}

/**
 * Completes a sign-in if this page load is the callback. Returns the query to restore, or
 * undefined when this is not a callback. Throws with a readable message on a bad callback.
 */
export async function completeSignIn(cfg: UiConfig, url: URL): Promise<string | undefined> {
  const code = url.searchParams.get('code');
  const error = url.searchParams.get('error');
  if (!code && !error) return undefined;
  const pending = sessionStorage.getItem(PENDING);
  sessionStorage.removeItem(PENDING);
  if (error) throw new Error(`Sign-in failed: ${url.searchParams.get('error_description') ?? error}`);
  if (!pending) throw new Error('Sign-in could not be completed (no sign-in was started in this tab).');
  const { verifier, state, returnTo } = JSON.parse(pending) as { verifier: string; state: string; returnTo: string };
  if (url.searchParams.get('state') !== state) throw new Error('Sign-in could not be completed (state mismatch).');
  const res = await fetch(`${cfg.cognitoDomain}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', client_id: cfg.clientId, code: code!, redirect_uri: cfg.redirectUri, code_verifier: verifier }),
  });
  if (!res.ok) throw new Error(`Sign-in failed: the token endpoint answered ${res.status}.`);
  const tokens = (await res.json()) as { id_token?: string };
  if (!tokens.id_token) throw new Error('Sign-in failed: no ID token was returned.');
  sessionStorage.setItem(TOKEN, tokens.id_token);
  return returnTo;
}

export interface Session {
  readonly idToken: string;
  readonly email: string | null;
  readonly exp: number;
}

/** The stored ID token, if it has not expired. (Display only: the API verifies it.) */
export function currentSession(): Session | undefined {
  const t = sessionStorage.getItem(TOKEN);
  if (!t) return undefined;
  try {
    const payload = JSON.parse(atob(t.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as { exp?: number; email?: string };
    if (typeof payload.exp !== 'number' || payload.exp * 1000 <= Date.now()) {
      sessionStorage.removeItem(TOKEN);
      return undefined;
    }
    return { idToken: t, email: typeof payload.email === 'string' ? payload.email : null, exp: payload.exp };
  } catch {
    sessionStorage.removeItem(TOKEN);
    return undefined;
  }
}

export function forgetSession(): void {
  sessionStorage.removeItem(TOKEN);
  sessionStorage.removeItem(PENDING);
}

/** Signs out locally, then at Cognito when it has a logout endpoint. Returns false if the page should render "signed out". */
export function signOut(cfg: UiConfig): boolean {
  forgetSession();
  if (!cfg.logoutUri) return false;
  // Cognito sends the browser back to logoutUri; this flag makes that page say "signed out".
  sessionStorage.setItem(SIGNED_OUT, '1');
  const q = new URLSearchParams({ client_id: cfg.clientId, logout_uri: cfg.logoutUri });
  location.assign(`${cfg.cognitoDomain}/logout?${q}`);
  return true;
}
