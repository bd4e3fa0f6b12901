/**
 * Passkeys on the consent page (issue 13, item 3), with @simplewebauthn/browser: the signed-in
 * approver's "Passkeys" section (add, list, delete), and the assertion that signs a decision.
 * Adding a passkey beside one the approver has, and deleting one, are first confirmed with one of
 * their passkeys (so a stolen session alone cannot). The server (lambdas/consent-api/passkeys.ts)
 * issues every challenge and verifies every answer.
 */
import { startAuthentication, startRegistration, type PublicKeyCredentialCreationOptionsJSON, type PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/browser';
import { button, el } from './dom.ts';

/** The page's API call (main.ts `call`): JSON in, the picked value out, an error with the server's message otherwise. */
export type Call = <T>(path: string, pick: (body: Record<string, unknown>) => T | undefined, init?: RequestInit) => Promise<T>;

interface PasskeyView {
  credential_id: string;
  label: string;
  created_at: string;
  transports: string[];
}

/** The assertion as the decision body carries it (core/evidence.ts PasskeyAssertion). */
interface PasskeyAssertion {
  credential_id: string;
  authenticator_data: string;
  client_data_json: string;
  signature: string;
  user_handle: string | null;
  nonce: string;
}

interface Challenge {
  nonce: string;
  challenge: string;
  allowCredentials: { id: string; type: 'public-key'; transports?: string[] }[];
  rpId: string;
  timeout: number;
  userVerification: 'required';
}

const json = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

function list(call: Call): Promise<PasskeyView[]> {
  return call('/passkeys', (b) => (Array.isArray(b.passkeys) ? (b.passkeys as PasskeyView[]) : undefined));
}

/**
 * The body of a decision, signed when the approver has a passkey: asks the server for the
 * decision's challenge (bound to the request, the verdict and the view hash in `extra`), has the
 * authenticator sign it with user verification, and adds the assertion as `passkey`. An approver
 * with no passkey sends `extra` unchanged: where the request requires one (`passkey_required` in
 * its view) the server refuses with ERR_PASSKEY_REQUIRED, and the page shows why and how to add one.
 * (No read of the request here: the decision's first request stays the decision itself.)
 */
export async function signedDecisionBody(call: Call, requestId: string, decision: 'approved' | 'denied', extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  const path = `/requests/${encodeURIComponent(requestId)}`;
  const mine = await list(call);
  if (mine.length === 0) return extra;
  const view = typeof extra.view_sha256 === 'string' ? extra.view_sha256 : null;
  const c = await call(`${path}/challenge`, pickChallenge, json({ request_id: requestId, decision, view_sha256: view }));
  return { ...extra, passkey: await sign(c) };
}

const pickChallenge = (b: Record<string, unknown>): Challenge | undefined => (typeof b.challenge === 'string' && typeof b.nonce === 'string' ? (b as unknown as Challenge) : undefined);

/** Has the authenticator sign a server's challenge (user verification required): the assertion as the API takes it. */
async function sign(c: Challenge): Promise<PasskeyAssertion> {
  const optionsJSON: PublicKeyCredentialRequestOptionsJSON = {
    challenge: c.challenge,
    allowCredentials: c.allowCredentials.map((a) => ({ id: a.id, type: a.type, ...(a.transports ? { transports: a.transports as AuthenticatorTransport[] } : {}) })),
    rpId: c.rpId,
    timeout: c.timeout,
    userVerification: c.userVerification,
  };
  const r = await startAuthentication({ optionsJSON });
  return {
    credential_id: r.id,
    authenticator_data: r.response.authenticatorData,
    client_data_json: r.response.clientDataJSON,
    signature: r.response.signature,
    user_handle: r.response.userHandle ?? null,
    nonce: c.nonce,
  };
}

/** The "Passkeys" section: the approver's passkeys, each deletable, and a way to add one. */
export function passkeysSection(call: Call): HTMLElement {
  const items = el('ul', { class: 'rows', attrs: { 'data-list': 'passkeys' } });
  const status = el('p', { class: 'muted', attrs: { role: 'status', 'data-field': 'passkey-status' } });
  const label = el('input', { id: 'passkey-label', attrs: { type: 'text', maxlength: '64', placeholder: 'e.g. laptop' } });
  const say = (text: string, error = false): void => {
    status.textContent = text;
    status.className = error ? 'error' : 'muted';
  };
  const refresh = async (): Promise<void> => {
    const mine = await list(call);
    items.replaceChildren(
      ...(mine.length === 0
        ? [el('li', { class: 'row empty' }, 'No passkeys yet.')]
        : mine.map((p) =>
            el(
              'li',
              { class: 'row', attrs: { 'data-credential-id': p.credential_id } },
              el('span', { class: 'cell' }, p.label),
              el('span', { class: 'cell muted' }, `added ${new Date(p.created_at).toLocaleString()}`),
              button(`Delete ${p.label}`, 'deny', () => void remove(p)),
            ),
          )),
    );
  };
  const remove = async (p: PasskeyView): Promise<void> => {
    try {
      // Confirmed with one of the approver's passkeys (it may be this one): a challenge bound to this passkey, signed, sent with the DELETE.
      const path = `/passkeys/${encodeURIComponent(p.credential_id)}`;
      say(`Confirm with one of your passkeys to delete "${p.label}"…`);
      const confirm = await sign(await call(`${path}/challenge`, pickChallenge, json({})));
      say(`Deleting "${p.label}"…`);
      await call(path, (b) => (b.deleted === true ? true : undefined), { ...json({ confirm }), method: 'DELETE' });
      say(`Passkey "${p.label}" deleted.`);
      await refresh();
    } catch (e) {
      say(e instanceof Error ? e.message : String(e), true);
    }
  };
  const add = async (): Promise<void> => {
    addButton.disabled = true;
    try {
      const { nonce, options, confirm: toConfirm } = await call('/passkeys/options', (b) => (typeof b.nonce === 'string' ? (b as { nonce: string; options: PublicKeyCredentialCreationOptionsJSON; confirm?: Challenge }) : undefined), json({}));
      // Beside a passkey the approver has: first confirmed with one of theirs (a challenge bound to this registration).
      let confirm: PasskeyAssertion | undefined;
      if (toConfirm) {
        say('Confirm with one of your passkeys that you are adding another…');
        confirm = await sign(toConfirm);
      }
      say('Create the new passkey with your authenticator…');
      const response = await startRegistration({ optionsJSON: options });
      const stored = await call('/passkeys', (b) => b.passkey as PasskeyView | undefined, json({ nonce, response, label: label.value.trim() || undefined, ...(confirm ? { confirm } : {}) }));
      label.value = '';
      say(`Passkey "${stored.label}" added. Decisions can now be signed with it.`);
      await refresh();
    } catch (e) {
      say(e instanceof Error ? e.message : String(e), true);
    } finally {
      addButton.disabled = false;
    }
  };
  const addButton = button('Add a passkey', 'approve', () => void add());
  void refresh().catch((e: unknown) => say(e instanceof Error ? e.message : String(e), true));
  return el(
    'section',
    { class: 'card passkeys', attrs: { 'aria-labelledby': 'passkeys-title' } },
    el('h2', { id: 'passkeys-title' }, 'Passkeys'),
    el('p', { class: 'muted sub' }, 'A passkey signs your decisions, so they can be verified later. Some requests can only be decided with one. Adding another passkey or deleting one is confirmed with a passkey you have.'),
    items,
    el('div', { class: 'actions' }, el('label', { attrs: { for: 'passkey-label' } }, 'Name '), label, addButton),
    status,
  );
}
