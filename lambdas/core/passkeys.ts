import { createHash, randomBytes } from 'node:crypto';
import { AckdError } from './errors.ts';
import { canonicalJson } from './jcs.ts';
import type { Clock } from './ports.ts';
import type { AuthorizationRecord } from './request.ts';
import type { PasskeyAssertion } from './evidence.ts';
import type { Quorum } from './quorum.ts';

/**
 * Passkeys (WebAuthn, user verification required) of approvers, and the passkey that signs a
 * decision (issue 13, item 3).
 *
 * An approver registers passkeys while signed in. When a decision must be signed (the request's
 * approval policy says `passkey: "required"`, or ACKD_PASSKEY_REQUIRED), the consent page asks for
 * a challenge bound to the decision, the authenticator signs it, and the decision carries the
 * assertion. The server verifies it (nonce single-use and fresh, challenge recomputed from the
 * request as stored, signature, UV flag, credential of this approver, counter) and records it raw
 * with the vote, so `ackd audit verify --passkeys` can check it again offline.
 *
 * Pure: storage and the WebAuthn verification are ports (adapters: memory, dynamodb,
 * webauthn/simplewebauthn).
 */

// ---------------------------------------------------------------------------------------------
// The challenge.

export type DecisionVerdict = 'approved' | 'denied';

/**
 * The challenge a decision's passkey signs: SHA-256 over
 *
 *     UTF-8( nonce "\n" request_id "\n" decision "\n" payload_sha256 "\n" view_sha256 )
 *
 * - `nonce`: the server's single-use nonce, base64url as issued;
 * - `request_id`: as stored (`req_…`);
 * - `decision`: `approved` or `denied`;
 * - `payload_sha256`, `view_sha256`: lowercase hex, or the empty string when null.
 *
 * No field can contain "\n" (each is base64url, an id or hex; checked), so the concatenation is
 * unambiguous. The WebAuthn `challenge` is these 32 bytes; clientDataJSON carries them base64url.
 */
export function decisionChallenge(nonce: string, requestId: string, decision: DecisionVerdict, payloadSha256: string | null, viewSha256: string | null): Uint8Array {
  const fields = [nonce, requestId, decision, payloadSha256 ?? '', viewSha256 ?? ''];
  if (fields.some((f) => f.includes('\n'))) throw new AckdError('ERR_INVALID_INPUT', 'a challenge field contains a line break');
  return new Uint8Array(createHash('sha256').update(fields.join('\n'), 'utf8').digest());
}

/** decisionChallenge as the base64url string WebAuthn's clientDataJSON carries. */
export function decisionChallengeB64(nonce: string, requestId: string, decision: DecisionVerdict, payloadSha256: string | null, viewSha256: string | null): string {
  return Buffer.from(decisionChallenge(nonce, requestId, decision, payloadSha256, viewSha256)).toString('base64url');
}

/**
 * The challenge that confirms a change to an approver's passkeys with one of their passkeys:
 * SHA-256 over the UTF-8 of the JCS (RFC 8785) of
 *
 *     {"purpose": "ackd-passkey-add", "nonce": <registration nonce>}
 *     {"purpose": "ackd-passkey-remove", "nonce": <removal nonce>, "credential_id": <the passkey removed>}
 *
 * base64url. It can never be a decision's challenge (and a decision's never one of these): a
 * decision's is over text that begins with a base64url nonce, these over a JSON object that
 * begins with "{"; and the nonces carry their purpose on the server (NonceBinding.purpose).
 */
export type PasskeyChange = { readonly purpose: 'ackd-passkey-add'; readonly nonce: string } | { readonly purpose: 'ackd-passkey-remove'; readonly nonce: string; readonly credential_id: string };

export function passkeyChangeChallengeB64(change: PasskeyChange): string {
  return createHash('sha256').update(canonicalJson(change), 'utf8').digest('base64url');
}

// ---------------------------------------------------------------------------------------------
// Policy.

/** ACKD_PASSKEY_REQUIRED: every decision, decisions on requests with a payload, or none (default). */
export type PasskeyRule = 'all' | 'payload' | 'none';
export const PASSKEY_RULES: readonly PasskeyRule[] = ['all', 'payload', 'none'];

/**
 * Why this decision must be signed with a passkey, or null when it need not be: the request's
 * policy (fixed on its quorum when it was made), or the deployment's rule now (a rule tightened
 * later applies to pending requests too; a rule loosened never lifts a policy's requirement).
 * Applies to approvals and denials alike: both are evidence.
 */
export function passkeyRequirement(rule: PasskeyRule, r: Pick<AuthorizationRecord, 'payload_sha256'> & { readonly quorum?: Quorum | null }): string | null {
  if (r.quorum?.passkey === 'required') return 'this request requires a passkey for every decision (its approval policy, or ACKD_PASSKEY_REQUIRED when it was made)';
  if (rule === 'all') return 'this deployment requires a passkey for every decision (ACKD_PASSKEY_REQUIRED=all)';
  if (rule === 'payload' && r.payload_sha256) return 'this deployment requires a passkey for a decision on a request with a payload (ACKD_PASSKEY_REQUIRED=payload)';
  return null;
}

/**
 * The quorum a new request is decided under, with the deployment's rule fixed on it: a request
 * made while ACKD_PASSKEY_REQUIRED asks for a passkey keeps needing one, in every process that
 * decides it (the CLI reads the requirement from the request, not from its own environment).
 */
export function withPasskeyRule(quorum: Quorum, rule: PasskeyRule, hasPayload: boolean): Quorum {
  if (quorum.passkey === 'required' || rule === 'none' || (rule === 'payload' && !hasPayload)) return quorum;
  return { ...quorum, passkey: 'required' };
}

// ---------------------------------------------------------------------------------------------
// Ports.

/** One registered passkey of one approver. */
export interface StoredPasskey {
  /** Credential ID, base64url. */
  readonly credential_id: string;
  /** The approver it belongs to (Cognito sub). */
  readonly approver: string;
  /** COSE public key, base64url, as the authenticator gave it at registration. */
  readonly public_key: string;
  /** Signature counter last seen (0 for authenticators that keep none). */
  readonly counter: number;
  readonly transports: readonly string[];
  readonly created_at: string;
  /** The approver's name for it ("laptop", "YubiKey 5"). */
  readonly label: string;
  /** The writer's seal over which public key is this approver's credential (core/passkey-seal.ts); absent on passkeys stored before passkeys were sealed. */
  readonly seal?: string;
}

/**
 * A change to an approver's passkeys, for the audit log: one added or removed by the approver
 * (in the consent UI), or all of them reset by an operator.
 */
export interface PasskeyAuditChange {
  readonly type: 'passkey_added' | 'passkey_removed' | 'passkeys_reset';
  /** The approver's Cognito sub. */
  readonly approver: string;
  readonly credential_ids: readonly string[];
  readonly actor: { readonly type: 'approver' | 'operator'; readonly id: string };
}

/** Records changes to approvers' passkeys in the audit log. */
export interface PasskeyAudit {
  passkeyChanged(change: PasskeyAuditChange): Promise<void>;
}

/** Passkeys per approver. Each write is one conditional write. */
export interface PasskeyStore {
  list(approver: string): Promise<StoredPasskey[]>;
  /** Every credential stored for the approver, sealed or not (what a reset removes). */
  stored(approver: string): Promise<StoredPasskey[]>;
  /** Every stored credential of every approver, current and retired (operators: listing, sealing). */
  all(): Promise<(StoredPasskey & { readonly retired: boolean })[]>;
  /** Adds `seal` to a stored credential that has none, only while it is as given (false: changed, gone or sealed since). */
  setSeal(p: StoredPasskey & { readonly retired: boolean }, seal: string): Promise<boolean>;
  get(approver: string, credentialId: string): Promise<StoredPasskey | undefined>;
  /** Adds a passkey: ERR_CONFLICT when the approver already has this credential or `max` passkeys. */
  put(p: StoredPasskey, max: number): Promise<void>;
  /** Removes one (it signs nothing more), keeping its public key as retired; false when there was none. */
  delete(approver: string, credentialId: string): Promise<boolean>;
  /** The passkey as registered, also after it was removed: what re-verifying a logged assertion checks against. */
  registered(approver: string, credentialId: string): Promise<StoredPasskey | undefined>;
  /** Moves the counter from `from` to `to`; false when it is no longer `from` (a concurrent use) or the passkey is gone. */
  updateCounter(approver: string, credentialId: string, from: number, to: number): Promise<boolean>;
}

/**
 * What a nonce is for: `decide`, a decision's challenge; `register`, a registration (and, when
 * the approver already has a passkey, the confirmation of it: passkeyChangeChallengeB64 with
 * `ackd-passkey-add`); `remove`, the confirmation of a passkey's removal.
 */
export const NONCE_PURPOSES = ['decide', 'register', 'remove'] as const;
export type NoncePurpose = (typeof NONCE_PURPOSES)[number];

/** What a nonce was issued for. */
export interface NonceBinding {
  readonly approver: string;
  readonly purpose: NoncePurpose;
  readonly request_id: string | null;
  readonly decision: DecisionVerdict | null;
}

export interface IssuedNonce extends NonceBinding {
  readonly nonce: string;
  readonly expires_at: string;
}

/** Single-use nonces: `consume` succeeds at most once per nonce, and only before it expires. */
export interface NonceStore {
  issue(n: IssuedNonce): Promise<void>;
  /** Takes the nonce (atomically: a second consume gets undefined); undefined when unknown, used or expired at `now`. */
  consume(nonce: string, now: Date): Promise<IssuedNonce | undefined>;
}

/** A credential as registration verified it. */
export interface VerifiedCredential {
  readonly credential_id: string;
  readonly public_key: string;
  readonly counter: number;
  readonly transports: readonly string[];
}

/**
 * WebAuthn verification (adapter: @simplewebauthn/server). Every method requires user
 * verification and checks the origin and RP ID it was made for; a failure is ERR_PASSKEY_INVALID
 * with what failed.
 */
export interface PasskeyVerifier {
  /** The RP ID (the consent UI's hostname). */
  readonly rpId: string;
  /** The consent UI's origin. */
  readonly origin: string;
  registrationOptions(input: { challenge: string; userId: string; userName: string; exclude: readonly StoredPasskey[]; timeoutMs: number }): Promise<Record<string, unknown>>;
  verifyRegistration(response: unknown, expectedChallenge: string): Promise<VerifiedCredential>;
  /**
   * Verifies an assertion over `expectedChallenge` (base64url) by `credential`; returns the
   * authenticator's new counter. ERR_PASSKEY_INVALID says why it does not verify "for `what`"
   * (default "this decision"; "this registration", "this removal" for changes to the passkeys).
   */
  verifyAssertion(assertion: PasskeyAssertion, expectedChallenge: string, credential: Pick<StoredPasskey, 'credential_id' | 'public_key' | 'counter' | 'transports'>, what?: string): Promise<{ counter: number }>;
}

/** What a vote records of the passkey that signed it (CastVote.passkey): the raw assertion and the view hash its challenge covered. */
export type VotePasskey = {
  /** (A type, not an interface, so a vote stays a plain JSON value for the lifecycle's writes.) */
  readonly assertion: { readonly [K in keyof PasskeyAssertion]: PasskeyAssertion[K] };
  /** The view_sha256 the challenge was computed with (null when the decision carried none). */
  readonly view_sha256: string | null;
};

// ---------------------------------------------------------------------------------------------
// The service.

export const PASSKEY_LIMITS = {
  /** Passkeys per approver. */
  perApprover: 10,
  labelMax: 64,
  /** How long a nonce may be used. */
  nonceTtlMs: 5 * 60_000,
  /** How long the browser waits for the authenticator. */
  timeoutMs: 120_000,
  /** The longest base64url field of an assertion accepted (clientDataJSON, authenticator data …). */
  fieldMax: 4096,
} as const;

const B64URL = /^[A-Za-z0-9_-]*$/;
const HEX64 = /^[0-9a-f]{64}$/;

/** A PasskeyAssertion from untrusted JSON; ERR_INVALID_INPUT naming the field otherwise. */
export function parsePasskeyAssertion(value: unknown, field = 'passkey'): PasskeyAssertion {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(field, 'must be an object {credential_id, authenticator_data, client_data_json, signature, user_handle, nonce}');
  const o = value as Record<string, unknown>;
  const keys = ['credential_id', 'authenticator_data', 'client_data_json', 'signature', 'user_handle', 'nonce'];
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw bad(`${field}.${k}`, 'is not a field of a passkey assertion');
  const str = (k: string, nullable = false): string | null => {
    const v = o[k];
    if (nullable && (v === null || v === undefined)) return null;
    if (typeof v !== 'string' || v.length === 0 || v.length > PASSKEY_LIMITS.fieldMax || !B64URL.test(v)) throw bad(`${field}.${k}`, `must be base64url text of at most ${PASSKEY_LIMITS.fieldMax} characters`);
    return v;
  };
  return {
    credential_id: str('credential_id')!,
    authenticator_data: str('authenticator_data')!,
    client_data_json: str('client_data_json')!,
    signature: str('signature')!,
    user_handle: str('user_handle', true),
    nonce: str('nonce')!,
  };
}

function bad(field: string, rule: string): AckdError {
  return new AckdError('ERR_INVALID_INPUT', `${field}: ${rule}`, { field });
}

function invalidPasskey(why: string, what = 'this decision'): AckdError {
  return new AckdError('ERR_PASSKEY_INVALID', `the passkey assertion does not verify for ${what}: ${why}`);
}

/** Base64url of 32 random bytes. */
function newNonce(): string {
  return randomBytes(32).toString('base64url');
}

export interface PasskeyDeps {
  readonly store: PasskeyStore;
  readonly nonces: NonceStore;
  readonly verifier: PasskeyVerifier;
  readonly clock: Clock;
  /** Where passkeys added, removed and reset are recorded (the audit log); none: not recorded (unit tests). */
  readonly audit?: PasskeyAudit;
}

/** A challenge the consent page asks the authenticator to sign (a decision's, or the confirmation of a change to the approver's passkeys). */
export interface DecisionChallenge {
  readonly nonce: string;
  readonly challenge: string;
  readonly allowCredentials: readonly { readonly id: string; readonly type: 'public-key'; readonly transports?: readonly string[] }[];
  readonly rpId: string;
  readonly timeout: number;
  readonly userVerification: 'required';
}

/** Registration, listing and removal of an approver's passkeys; challenges and their verification. */
export class PasskeyService {
  constructor(private readonly deps: PasskeyDeps) {}

  get rpId(): string {
    return this.deps.verifier.rpId;
  }

  list(approver: string): Promise<StoredPasskey[]> {
    return this.deps.store.list(approver);
  }

  /** The public key a logged assertion names, also of a passkey removed since (`audit verify --passkeys`). */
  registered(approver: string, credentialId: string): Promise<StoredPasskey | undefined> {
    return this.deps.store.registered(approver, credentialId);
  }

  /**
   * A single-use challenge to confirm the removal of `credentialId` with one of the approver's
   * passkeys (it may be the one removed): ERR_NOT_FOUND when the approver has no such passkey.
   */
  async removalChallenge(approver: string, credentialId: string): Promise<DecisionChallenge> {
    const mine = await this.deps.store.list(approver);
    if (!mine.some((p) => p.credential_id === credentialId)) throw notYours(credentialId);
    const nonce = await this.issue({ approver, purpose: 'remove', request_id: null, decision: null });
    return this.challenge(nonce, passkeyChangeChallengeB64({ purpose: 'ackd-passkey-remove', nonce, credential_id: credentialId }), mine);
  }

  /**
   * Removes one of the approver's passkeys, confirmed by `confirm`: an assertion by one of their
   * passkeys over removalChallenge's challenge for this credential (nonce single-use, fresh,
   * issued to this approver for a removal). A stolen session alone cannot remove a passkey.
   */
  async remove(approver: string, credentialId: string, confirm: unknown): Promise<void> {
    if (confirm === undefined || confirm === null) {
      throw new AckdError('ERR_PASSKEY_REQUIRED', 'confirm: removing a passkey must be confirmed with one of your passkeys: ask for a challenge (POST /api/passkeys/{credential_id}/challenge), sign it, and send the assertion as `confirm`', { field: 'confirm' });
    }
    const a = parsePasskeyAssertion(confirm, 'confirm');
    const what = 'this removal';
    const n = await this.deps.nonces.consume(a.nonce, this.deps.clock.now());
    if (!n) throw invalidPasskey('its nonce is unknown, already used or expired (ask for a new challenge)', what);
    if (n.purpose !== 'remove' || n.approver !== approver) throw invalidPasskey("its nonce was not issued to you for a passkey's removal", what);
    await this.verifyChange(approver, a, passkeyChangeChallengeB64({ purpose: 'ackd-passkey-remove', nonce: a.nonce, credential_id: credentialId }), what);
    // Recorded before it is removed: a removal that cannot be logged does not happen.
    if (!(await this.deps.store.get(approver, credentialId))) throw notYours(credentialId);
    await this.deps.audit?.passkeyChanged({ type: 'passkey_removed', approver, credential_ids: [credentialId], actor: { type: 'approver', id: approver } });
    if (!(await this.deps.store.delete(approver, credentialId))) throw notYours(credentialId);
  }

  /**
   * Removes every passkey of `approver` (an operator's recovery for an approver who lost all
   * their authenticators: `ackd passkeys reset`); the approver then registers a first one with
   * their session alone. Returns the passkeys removed. The reset is a `passkeys_reset` event by
   * `operator` naming the approver and the credentials, recorded before anything is removed: a
   * reset that cannot be logged does not happen (an approver with no passkeys gets no event).
   */
  async reset(approver: string, operator: { readonly type: 'operator'; readonly id: string }): Promise<StoredPasskey[]> {
    const current = await this.deps.store.stored(approver);
    if (current.length > 0) await this.deps.audit?.passkeyChanged({ type: 'passkeys_reset', approver, credential_ids: current.map((p) => p.credential_id), actor: operator });
    const removed: StoredPasskey[] = [];
    for (const p of current) if (await this.deps.store.delete(approver, p.credential_id)) removed.push(p);
    return removed;
  }

  /**
   * Options for @simplewebauthn/browser's startRegistration, and the nonce to send back with the
   * response; when the approver already has a passkey, `confirm`: the challenge one of them must
   * sign first (bound to this registration's nonce), whose assertion register() requires.
   */
  async registrationOptions(approver: { sub: string; email: string | null }): Promise<{ nonce: string; options: Record<string, unknown>; confirm?: DecisionChallenge }> {
    const existing = await this.deps.store.list(approver.sub);
    if (existing.length >= PASSKEY_LIMITS.perApprover) throw new AckdError('ERR_CONFLICT', `you already have ${existing.length} passkeys, the most allowed; delete one first`);
    const nonce = await this.issue({ approver: approver.sub, purpose: 'register', request_id: null, decision: null });
    const options = await this.deps.verifier.registrationOptions({ challenge: nonce, userId: approver.sub, userName: approver.email ?? approver.sub, exclude: existing, timeoutMs: PASSKEY_LIMITS.timeoutMs });
    if (existing.length === 0) return { nonce, options };
    return { nonce, options, confirm: this.challenge(nonce, passkeyChangeChallengeB64({ purpose: 'ackd-passkey-add', nonce }), existing) };
  }

  /**
   * Verifies a registration response made with `nonce` and stores the passkey under `label`.
   * When the approver already has a passkey, `confirm` must be an assertion by one of them over
   * the options' confirm challenge (its nonce: this registration's); the first passkey needs
   * only the session, and is stored only while the approver still has none (a conditional write).
   */
  async register(approver: string, input: { nonce: unknown; response: unknown; label: unknown; confirm?: unknown }): Promise<StoredPasskey> {
    const label = parseLabel(input.label);
    if (typeof input.nonce !== 'string' || !B64URL.test(input.nonce) || input.nonce.length > 100) throw bad('nonce', 'must be the nonce of the registration options');
    const confirm = input.confirm === undefined || input.confirm === null ? null : parsePasskeyAssertion(input.confirm, 'confirm');
    const mine = await this.deps.store.list(approver);
    if (mine.length > 0 && !confirm) throw confirmRequired();
    const n = await this.deps.nonces.consume(input.nonce, this.deps.clock.now());
    if (!n || n.purpose !== 'register' || n.approver !== approver) throw new AckdError('ERR_PASSKEY_INVALID', 'the registration was not made with a fresh nonce issued to you; start again');
    if (mine.length > 0) {
      const what = 'this registration';
      if (confirm!.nonce !== input.nonce) throw invalidPasskey("confirm.nonce is not this registration's nonce (sign the options' confirm challenge)", what);
      await this.verifyChange(approver, confirm!, passkeyChangeChallengeB64({ purpose: 'ackd-passkey-add', nonce: input.nonce }), what);
    }
    const c = await this.deps.verifier.verifyRegistration(input.response, input.nonce);
    const stored: StoredPasskey = { ...c, transports: [...c.transports], approver, created_at: this.deps.clock.now().toISOString(), label };
    try {
      await this.deps.store.put(stored, mine.length === 0 ? 1 : PASSKEY_LIMITS.perApprover);
    } catch (e) {
      // A first passkey (no confirmation) is stored only while there is none: one added meanwhile must confirm this one.
      if (mine.length === 0 && e instanceof AckdError && e.code === 'ERR_CONFLICT' && !(await this.deps.store.get(approver, stored.credential_id))) throw confirmRequired();
      throw e;
    }
    // Recorded once stored; a passkey whose adding cannot be logged is removed again (kept retired: it signed nothing).
    try {
      await this.deps.audit?.passkeyChanged({ type: 'passkey_added', approver, credential_ids: [stored.credential_id], actor: { type: 'approver', id: approver } });
    } catch (e) {
      await this.deps.store.delete(approver, stored.credential_id);
      throw e;
    }
    return stored;
  }

  /** Checks an assertion confirming a change against the approver's own passkey it names, and moves that passkey's counter on. */
  private async verifyChange(approver: string, a: PasskeyAssertion, expected: string, what: string): Promise<void> {
    const credential = await this.deps.store.get(approver, a.credential_id);
    if (!credential) throw invalidPasskey('the passkey that signed it is not one of yours', what);
    const { counter } = await this.deps.verifier.verifyAssertion(a, expected, credential, what);
    if (counter !== credential.counter && !(await this.deps.store.updateCounter(approver, credential.credential_id, credential.counter, counter))) {
      throw invalidPasskey('the passkey was used again at the same time (its signature counter moved); try again', what);
    }
  }

  private challenge(nonce: string, challenge: string, mine: readonly StoredPasskey[]): DecisionChallenge {
    return {
      nonce,
      challenge,
      allowCredentials: mine.map((p) => ({ id: p.credential_id, type: 'public-key' as const, ...(p.transports.length > 0 ? { transports: [...p.transports] } : {}) })),
      rpId: this.deps.verifier.rpId,
      timeout: PASSKEY_LIMITS.timeoutMs,
      userVerification: 'required',
    };
  }

  /** A single-use challenge for `approver` to sign `decision` on `record` as shown with `viewSha256`. */
  async decisionChallenge(approver: string, record: Pick<AuthorizationRecord, 'request_id' | 'payload_sha256'>, decision: DecisionVerdict, viewSha256: string | null): Promise<DecisionChallenge> {
    if (viewSha256 !== null && !HEX64.test(viewSha256)) throw bad('view_sha256', 'must be 64 lowercase hex digits');
    const mine = await this.deps.store.list(approver);
    if (mine.length === 0) throw new AckdError('ERR_PASSKEY_REQUIRED', 'you have no passkey registered: add one under Passkeys first');
    const nonce = await this.issue({ approver, purpose: 'decide', request_id: record.request_id, decision });
    return this.challenge(nonce, decisionChallengeB64(nonce, record.request_id, decision, record.payload_sha256 ?? null, viewSha256), mine);
  }

  /**
   * Verifies the assertion on a decision: its nonce is consumed (once, fresh, issued to this
   * approver for this request and verdict), the challenge is recomputed from the request as
   * stored now and the view hash the decision carries, and the signature, UV flag, credential
   * (this approver's) and counter are checked; the counter is moved on. ERR_PASSKEY_INVALID says
   * what failed. Returns what the vote records.
   */
  async verifyDecision(input: {
    approver: string;
    record: Pick<AuthorizationRecord, 'request_id' | 'payload_sha256'>;
    decision: DecisionVerdict;
    viewSha256: string | null;
    assertion: PasskeyAssertion;
  }): Promise<VotePasskey> {
    const a = parsePasskeyAssertion(input.assertion);
    const n = await this.deps.nonces.consume(a.nonce, this.deps.clock.now());
    if (!n) throw invalidPasskey('its nonce is unknown, already used or expired (ask for a new challenge)');
    if (n.purpose !== 'decide' || n.approver !== input.approver) throw invalidPasskey('its nonce was not issued to you for a decision');
    if (n.request_id !== input.record.request_id) throw invalidPasskey('its nonce was issued for another request');
    if (n.decision !== input.decision) throw invalidPasskey(`its nonce was issued for ${n.decision === 'approved' ? 'an approval' : 'a denial'}, not ${input.decision === 'approved' ? 'an approval' : 'a denial'}`);
    const credential = await this.deps.store.get(input.approver, a.credential_id);
    if (!credential) throw invalidPasskey('the passkey that signed it is not one of yours');
    const expected = decisionChallengeB64(a.nonce, input.record.request_id, input.decision, input.record.payload_sha256 ?? null, input.viewSha256);
    const { counter } = await this.deps.verifier.verifyAssertion(a, expected, credential);
    if (counter !== credential.counter && !(await this.deps.store.updateCounter(input.approver, credential.credential_id, credential.counter, counter))) {
      throw invalidPasskey('the passkey was used again at the same time (its signature counter moved); try again');
    }
    return { assertion: a, view_sha256: input.viewSha256 };
  }

  private async issue(binding: NonceBinding): Promise<string> {
    const nonce = newNonce();
    const expires_at = new Date(this.deps.clock.now().getTime() + PASSKEY_LIMITS.nonceTtlMs).toISOString();
    await this.deps.nonces.issue({ ...binding, nonce, expires_at });
    return nonce;
  }
}

function notYours(credentialId: string): AckdError {
  return new AckdError('ERR_NOT_FOUND', `credential_id: you have no passkey ${credentialId}`, { field: 'credential_id' });
}

function confirmRequired(): AckdError {
  return new AckdError(
    'ERR_PASSKEY_REQUIRED',
    "confirm: you already have a passkey, so adding one must be confirmed with it: sign the registration options' `confirm` challenge with one of your passkeys and send the assertion as `confirm`",
    { field: 'confirm' },
  );
}

function parseLabel(v: unknown): string {
  if (v === undefined || v === null || v === '') return 'passkey';
  if (typeof v !== 'string' || v.trim().length === 0 || v.length > PASSKEY_LIMITS.labelMax || /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(v)) {
    throw bad('label', `must be one line of at most ${PASSKEY_LIMITS.labelMax} characters`);
  }
  return v.trim();
}

// ---------------------------------------------------------------------------------------------
// Offline verification (ackd audit verify --passkeys).

/** An event that records votes, as the audit verifier sees it. */
export interface PasskeyEventView {
  readonly seq: number;
  readonly type: string;
  readonly request_id: string;
  readonly payload_sha256?: string | null;
  /** The rule the request is decided under: `passkey: 'required'` when every vote must carry an assertion. */
  readonly quorum?: { readonly passkey?: 'required' } | null;
  readonly votes?: readonly { readonly voter: string; readonly vote: 'approve' | 'deny'; readonly passkey?: VotePasskey }[];
}

/** Whether `e` is a vote event the passkey check looks at: its vote carries an assertion, or its request required one. */
export function needsPasskeyCheck(e: PasskeyEventView): boolean {
  if (!['voted', 'approved', 'denied'].includes(e.type)) return false;
  const cast = e.votes?.at(-1);
  return cast !== undefined && (cast.passkey !== undefined || e.quorum?.passkey === 'required');
}

export interface PasskeyCheckReport {
  /** Assertions checked (one per vote that carries one, counted at the event that cast it). */
  readonly checked: number;
  readonly verified: number;
  readonly failures: readonly { readonly seq: number; readonly request_id: string; readonly voter: string; readonly credential_id: string; readonly reason: string }[];
}

/**
 * Re-verifies every passkey assertion the log's vote events cast: the vote an event adds (its
 * last) is checked against the voter's registered public key (`keys(voter, credential_id)`),
 * with the challenge recomputed from the event (nonce, request_id, the vote's verdict, the
 * event's payload_sha256, the vote's view_sha256). A vote without one on a request whose quorum
 * required one fails. The counter is not checked (it is state).
 */
export async function verifyLoggedPasskeys(
  events: AsyncIterable<PasskeyEventView> | Iterable<PasskeyEventView>,
  keys: (voter: string, credentialId: string) => Promise<Pick<StoredPasskey, 'credential_id' | 'public_key' | 'transports'> | undefined>,
  verifier: Pick<PasskeyVerifier, 'verifyAssertion'>,
): Promise<PasskeyCheckReport> {
  let checked = 0;
  let verified = 0;
  const failures: { seq: number; request_id: string; voter: string; credential_id: string; reason: string }[] = [];
  for await (const e of events) {
    if (!needsPasskeyCheck(e)) continue;
    const cast = e.votes!.at(-1)!;
    checked++;
    if (!cast.passkey) {
      failures.push({ seq: e.seq, request_id: e.request_id, voter: cast.voter, credential_id: '', reason: 'its request required a passkey, but the vote carries none' });
      continue;
    }
    const a = cast.passkey.assertion;
    const fail = (reason: string) => failures.push({ seq: e.seq, request_id: e.request_id, voter: cast.voter, credential_id: a.credential_id, reason });
    try {
      const key = await keys(cast.voter, a.credential_id);
      if (!key) {
        fail('no registered public key of this voter has this credential id');
        continue;
      }
      const expected = decisionChallengeB64(a.nonce, e.request_id, cast.vote === 'approve' ? 'approved' : 'denied', e.payload_sha256 ?? null, cast.passkey.view_sha256);
      await verifier.verifyAssertion(a, expected, { ...key, counter: 0 });
      verified++;
    } catch (err) {
      fail(err instanceof Error ? err.message : String(err));
    }
  }
  return { checked, verified, failures };
}
