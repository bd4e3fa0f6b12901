import { describe, expect, it } from 'vitest';
import { renderSignInError, renderSignInPage, requestIdOf, signInCsp, SIGNIN_CSS_PATH } from '../../lambdas/local/hosted-login.ts';

const ID = 'req_01kghx48q0ckrw42ymp75x4xgq';
const base = { clientId: 'client', redirectUri: 'http://127.0.0.1:8787/', codeChallenge: 'ch', codeChallengeMethod: 'S256', scope: 'openid email', state: 'st' };

describe('the local sign-in page (lambdas/local/hosted-login.ts)', () => {
  it('finds the request id in the authorize parameters, the redirect URI or the state suffix, and only a well-formed one', () => {
    expect(requestIdOf({ request_id: ID })).toBe(ID);
    expect(requestIdOf({ redirect_uri: `http://127.0.0.1:8787/?request_id=${ID}` })).toBe(ID);
    expect(requestIdOf({ state: `aB3-_x.${ID}` })).toBe(ID);
    expect(requestIdOf({ state: 'aB3-_xYz' })).toBeUndefined();
    expect(requestIdOf({ request_id: `${ID}"><script>` })).toBeUndefined();
    expect(requestIdOf({ request_id: 'req_short', redirect_uri: 'not a url', state: `x${ID}` })).toBeUndefined();
    expect(requestIdOf({})).toBeUndefined();
  });

  it('says what the sign-in is for, with and without a request', () => {
    const without = renderSignInPage(base);
    expect(without).toContain('<title>Sign in — ackd</title>');
    expect(without).toContain('<span class="brand">ackd</span>');
    expect(without).toContain('<h1>Sign in to review authorization requests</h1>');
    expect(without).not.toContain('request-id');
    const withId = renderSignInPage({ ...base, requestId: ID });
    expect(withId).toContain('<h1>Sign in to review an authorization request</h1>');
    expect(withId).toContain(`<code id="request-id">${ID}</code>`);
    expect(withId).toContain(`<input type="hidden" name="request_id" value="${ID}">`);
    expect(withId).toContain('<code>http://127.0.0.1:8787</code>');
    expect(withId).toContain(`href="${SIGNIN_CSS_PATH}"`);
  });

  it('labels its inputs, with autocomplete, and shows an error as an alert', () => {
    const html = renderSignInPage({ ...base, username: 'a@example.com', error: 'Incorrect username or password.' });
    expect(html).toContain('<label for="username">Username</label>');
    expect(html).toMatch(/<input id="username" name="username" type="text"[^>]* autocomplete="username"[^>]* value="a@example.com" aria-invalid="true"/);
    expect(html).toContain('<label for="password">Password</label>');
    expect(html).toMatch(/<input id="password" name="password" type="password" autocomplete="current-password" required autofocus aria-invalid="true"/);
    expect(html).toContain('<p id="signin-error" class="error" role="alert">Incorrect username or password.</p>');
  });

  it('escapes everything it echoes; emits no script and no inline style', () => {
    const evil = `"><script>alert(1)</script><img src=x onerror=alert(1)>'&`;
    const html = renderSignInPage({ clientId: evil, redirectUri: evil, codeChallenge: evil, codeChallengeMethod: evil, scope: evil, state: evil, username: evil, error: evil });
    expect(html).not.toMatch(/<script|<img|<style|style=|onerror=alert\(1\)>/i);
    expect(html).toContain('value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&#39;&amp;"');
    const tags = new Set([...html.matchAll(/<\/?([a-z0-9!]+)/gi)].map((m) => m[1]!.toLowerCase()));
    expect([...tags].sort()).toEqual(['!doctype', 'body', 'button', 'div', 'form', 'h1', 'head', 'header', 'html', 'input', 'label', 'link', 'main', 'meta', 'p', 'span', 'title', 'code'].sort());
    expect(renderSignInError(evil)).toContain('&lt;script&gt;');
    expect(renderSignInError(evil)).not.toContain('<script');
  });

  it('CSP: no script, own styles, the form posts here and to the redirect URI origin only', () => {
    expect(signInCsp('http://127.0.0.1:8787/?x=1')).toBe("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' http://127.0.0.1:8787; base-uri 'none'; frame-ancestors 'none'");
    expect(signInCsp()).toContain("form-action 'self';");
    expect(signInCsp('javascript:alert(1)')).toContain("form-action 'self';");
  });
});
