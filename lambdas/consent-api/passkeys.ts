import { parseViewSha256 } from './decision.ts';
import type { Context, Hono } from 'hono';
import { AckdError } from '../core/errors.ts';
import { parseRequestId } from '../core/ids.ts';
import type { PasskeyService, StoredPasskey } from '../core/passkeys.ts';
import type { AuthorizationService } from '../core/service.ts';
import type { Approver } from '../adapters/cognito/verifier.ts';

type Env = { Variables: { approver: Approver } };

/** A registration response (attestation) is larger than a decision. */
const MAX_BODY = 16 * 1024;

/**
 * The consent API's passkey routes (mounted by consentApi, after its authentication: every route
 * needs a signed-in approver and acts on that approver's own passkeys only).
 *
 *   GET    /passkeys                  → { passkeys: [{credential_id, label, created_at, transports}], rp_id }
 *   POST   /passkeys/options          → { nonce, options, confirm? } (options for @simplewebauthn/browser
 *                                     startRegistration; confirm, when the approver already has a passkey:
 *                                     a challenge like a decision's, bound to this registration's nonce)
 *   POST   /passkeys                  body { nonce, response, label?, confirm? } → { passkey }
 *                                     (confirm: an assertion over options.confirm, required when the
 *                                     approver already has a passkey)
 *   POST   /passkeys/:credential_id/challenge
 *                                     → { nonce, challenge, allowCredentials, rpId, timeout, userVerification }
 *                                     (to confirm this passkey's removal with one of the approver's passkeys)
 *   DELETE /passkeys/:credential_id   body { confirm } (an assertion over that challenge) → { deleted: true }
 *   POST   /requests/:id/challenge    body { request_id, decision: "approved"|"denied", view_sha256 }
 *                                     → { nonce, challenge, allowCredentials, rpId, timeout, userVerification: "required" }
 *
 * The decision routes take the assertion as `passkey` in their body (decision.ts, decisionEvidence).
 * An assertion (`passkey`, `confirm`) is core/evidence.ts PasskeyAssertion. So a stolen session
 * alone cannot add a passkey beside the approver's, nor remove one: only the first passkey is
 * registered with the session alone (an operator's `ackd passkeys reset` lets an approver who lost
 * every authenticator start again).
 */
export function passkeyRoutes(app: Hono<Env>, deps: { passkeys: PasskeyService; service: AuthorizationService }): void {
  const { passkeys } = deps;
  const me = (c: Context<Env>) => c.get('approver');

  app.get('/passkeys', async (c) => c.json({ passkeys: (await passkeys.list(me(c).sub)).map(publicView), rp_id: passkeys.rpId }));

  app.post('/passkeys/options', async (c) => {
    await jsonBody(c.req.raw);
    const a = me(c);
    return c.json(await passkeys.registrationOptions({ sub: a.sub, email: a.email }));
  });

  app.post('/passkeys', async (c) => {
    const body = await jsonBody(c.req.raw);
    const stored = await passkeys.register(me(c).sub, { nonce: body.nonce, response: body.response, label: body.label, confirm: body.confirm });
    return c.json({ passkey: publicView(stored) }, 201);
  });

  app.post('/passkeys/:credential_id/challenge', async (c) => {
    const id = credentialId(c.req.param('credential_id'));
    await jsonBody(c.req.raw);
    return c.json(await passkeys.removalChallenge(me(c).sub, id));
  });

  app.delete('/passkeys/:credential_id', async (c) => {
    const id = credentialId(c.req.param('credential_id'));
    // No body at all: refused by remove() as missing its confirmation (ERR_PASSKEY_REQUIRED), not as a malformed body.
    const body = c.req.header('content-type') === undefined && (c.req.header('content-length') ?? '0') === '0' ? {} : await jsonBody(c.req.raw);
    await passkeys.remove(me(c).sub, id, body.confirm);
    return c.json({ deleted: true });
  });

  app.post('/requests/:id/challenge', async (c) => {
    const id = parseRequestId(c.req.param('id'));
    const body = await jsonBody(c.req.raw);
    if (body.request_id !== undefined && body.request_id !== id) throw new AckdError('ERR_INVALID_INPUT', 'request_id: the body must name the same request as the URL', { field: 'request_id' });
    const decision = body.decision;
    if (decision !== 'approved' && decision !== 'denied') throw new AckdError('ERR_INVALID_INPUT', 'decision: must be "approved" or "denied"', { field: 'decision' });
    const view = parseViewSha256(body.view_sha256);
    const r = await deps.service.get(id);
    const status = deps.service.status(r).status;
    if (status !== 'pending') throw new AckdError(status === 'expired' ? 'ERR_EXPIRED' : 'ERR_ALREADY_DECIDED', `request ${id} is ${status}: there is no decision to sign`);
    return c.json(await passkeys.decisionChallenge(me(c).sub, r, decision, view));
  });
}

function credentialId(id: string): string {
  if (!/^[A-Za-z0-9_-]{1,1024}$/.test(id)) throw new AckdError('ERR_INVALID_INPUT', 'credential_id: must be base64url', { field: 'credential_id' });
  return id;
}

function publicView(p: StoredPasskey) {
  return { credential_id: p.credential_id, label: p.label, created_at: p.created_at, transports: p.transports };
}

async function jsonBody(req: Request): Promise<Record<string, unknown>> {
  const type = req.headers.get('content-type') ?? '';
  if (!/^application\/json\b/i.test(type)) throw new AckdError('ERR_INVALID_INPUT', 'body: must be application/json', { field: 'body' });
  const text = await req.text();
  if (text.length > MAX_BODY) throw new AckdError('ERR_INVALID_INPUT', 'body: too large', { field: 'body' });
  if (text.trim() === '') return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new AckdError('ERR_INVALID_INPUT', 'body: must be JSON', { field: 'body' });
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new AckdError('ERR_INVALID_INPUT', 'body: must be a JSON object', { field: 'body' });
  return body as Record<string, unknown>;
}
