import { createHash, randomBytes } from 'node:crypto';

/**
 * Signs in at cognito-local's hosted login the way the browser does (authorization code + PKCE)
 * and returns the tokens. For API tests; the browser e2e drives the same pages in Chromium.
 */
export async function signInWithPkce(opts: { cognitoUrl: string; clientId: string; redirectUri: string; username: string; password: string }): Promise<{ idToken: string; accessToken: string }> {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const state = randomBytes(8).toString('hex');
  const form = new URLSearchParams({
    client_id: opts.clientId,
    redirect_uri: opts.redirectUri,
    response_type: 'code',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    scope: 'openid email',
    state,
    username: opts.username,
    password: opts.password,
  });
  const login = await fetch(`${opts.cognitoUrl}/oauth2/authorize`, { method: 'POST', body: form, redirect: 'manual' });
  const location = login.headers.get('location');
  if (login.status !== 302 || !location) throw new Error(`sign-in failed: HTTP ${login.status}`);
  const back = new URL(location);
  if (back.searchParams.get('state') !== state) throw new Error('state mismatch');
  const res = await fetch(`${opts.cognitoUrl}/oauth2/token`, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'authorization_code', client_id: opts.clientId, code: back.searchParams.get('code')!, redirect_uri: opts.redirectUri, code_verifier: verifier }),
  });
  if (!res.ok) throw new Error(`token exchange failed: HTTP ${res.status} ${await res.text()}`);
  const t = (await res.json()) as { id_token: string; access_token: string };
  return { idToken: t.id_token, accessToken: t.access_token };
}
