import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { AckdError } from '../errors.ts';
import { canonicalJson } from '../jcs.ts';

/**
 * Seals on audit outbox entries: a MAC that a writer of ackd computes over each entry it puts in
 * an outbox, and the sequencer checks before the entry may enter the log. Whoever can write the
 * table but does not hold the seal key cannot make an entry the sequencer admits: not a forged
 * `tool_call` or policy change, not a forged `approved` in a pending request's outbox, and not a
 * genuine entry copied into another item (the seal covers where the entry is stored).
 *
 * The MAC is HMAC-SHA256 over the RFC 8785 (JCS) canonical JSON of
 * `{"entry":…,"place":…,"purpose":"ackd-outbox-entry","v":1}`: `entry` is the entry as stored
 * without its `seal`, `place` is where it is stored (`{"kind":"request","request_id":…}` for a
 * request item's outbox, `{"kind":"admin","event_id":…}` for an `audit#admin#<event_id>` item,
 * `{"kind":"apikey","key_hash":…}` for an agent API key's entry, core/apikeys.ts;
 * `{"kind":"passkey","approver":…,"credential_id":…}` for an approver's passkey, core/passkey-seal.ts).
 * The seal is `v1.` followed by the MAC in base64url.
 *
 * The key is the 32-byte MAC of the label {@link SEAL_KEY_LABEL} under the deployment's seal key:
 * on AWS, KMS GenerateMac with an HMAC_256 key (one call per process); locally, HMAC-SHA256 under
 * a random key file. It is derived once per process and never stored in the table.
 */

/** What the seal key derives the process's HMAC key from (the message of KMS GenerateMac). */
export const SEAL_KEY_LABEL = 'ackd-outbox-seal-v1';
/** The purpose tag inside every MAC input: a seal is never valid as any other MAC made with the key. */
export const SEAL_PURPOSE = 'ackd-outbox-entry';
export const SEAL_VERSION = 1;
const PREFIX = `v${SEAL_VERSION}.`;

/** Where an entry is stored: what its seal binds it to (an agent API key's entry and an approver's passkey are sealed the same way: core/apikeys.ts, core/passkey-seal.ts). */
export type SealPlace =
  | { readonly kind: 'request'; readonly request_id: string }
  | { readonly kind: 'admin'; readonly event_id: string }
  | { readonly kind: 'apikey'; readonly key_hash: string }
  | { readonly kind: 'passkey'; readonly approver: string; readonly credential_id: string };

/** The outcome of a check; `reason` says why an entry is refused (for the log and the quarantine record). */
export type SealVerdict = { readonly ok: true } | { readonly ok: false; readonly reason: 'missing' | 'malformed' | 'mismatch'; readonly message: string };

/** The port: writers seal what they put in an outbox, the sequencer checks before linking. */
export interface OutboxSealer {
  /** The seal of `entry` (without any `seal` field) stored at `place`. Rejects when the key is unavailable (the write must then fail). */
  seal(place: SealPlace, entry: object): Promise<string>;
  /** Whether `seal` is the seal of `entry` (its own `seal` field ignored) at `place`. Rejects only when the key is unavailable. */
  check(place: SealPlace, entry: object, seal: unknown): Promise<SealVerdict>;
}

/** The MAC input: JCS of the purpose, version, place and the entry without its seal. */
export function sealInput(place: SealPlace, entry: object): string {
  const { seal: _seal, ...rest } = entry as Record<string, unknown>;
  return canonicalJson({ purpose: SEAL_PURPOSE, v: SEAL_VERSION, place, entry: rest });
}

/** The process's HMAC key from the seal key's own MAC primitive (`mac(label)`): HMAC-SHA256 of the label under a local key file. */
export function deriveLocalKey(fileKey: Uint8Array): Buffer {
  return createHmac('sha256', fileKey).update(SEAL_KEY_LABEL, 'utf8').digest();
}

/**
 * HMAC-SHA256 seals with a key derived once (`deriveKey`: KMS GenerateMac, or a key file). A
 * failed derivation is not cached: the next seal or check tries again, and until then every seal
 * and check rejects (writes fail, nothing is admitted: fail closed).
 */
export class HmacOutboxSealer implements OutboxSealer {
  private key: Promise<Buffer> | undefined;

  constructor(private readonly deriveKey: () => Promise<Uint8Array>) {}

  /** A sealer with a fixed key (tests; the in-memory store). */
  static withKey(key: Uint8Array): HmacOutboxSealer {
    const k = Buffer.from(key);
    return new HmacOutboxSealer(() => Promise.resolve(k));
  }

  /** A sealer with a fresh random key: what one process seals, only it can check (the in-memory adapter). */
  static random(): HmacOutboxSealer {
    return HmacOutboxSealer.withKey(randomBytes(32));
  }

  private keyNow(): Promise<Buffer> {
    this.key ??= this.deriveKey().then(
      (k) => {
        if (k.length < 32) throw new AckdError('ERR_SIGNER_UNAVAILABLE', `the outbox seal key is ${k.length} bytes; it must be at least 32`);
        return Buffer.from(k);
      },
      (e: unknown) => {
        this.key = undefined;
        throw e;
      },
    );
    return this.key;
  }

  private async mac(place: SealPlace, entry: object): Promise<Buffer> {
    return createHmac('sha256', await this.keyNow()).update(sealInput(place, entry), 'utf8').digest();
  }

  async seal(place: SealPlace, entry: object): Promise<string> {
    return PREFIX + (await this.mac(place, entry)).toString('base64url');
  }

  async check(place: SealPlace, entry: object, seal: unknown): Promise<SealVerdict> {
    const expected = await this.mac(place, entry);
    if (seal === undefined || seal === null) return { ok: false, reason: 'missing', message: 'the entry carries no seal' };
    if (typeof seal !== 'string' || !seal.startsWith(PREFIX) || !/^[A-Za-z0-9_-]{43}$/.test(seal.slice(PREFIX.length))) {
      return { ok: false, reason: 'malformed', message: `the seal is not ${PREFIX}<43 base64url characters>` };
    }
    const given = Buffer.from(seal.slice(PREFIX.length), 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return { ok: false, reason: 'mismatch', message: 'the seal does not match this entry stored here (changed, made for another item, or made without the key)' };
    }
    return { ok: true };
  }
}

/** An entry with its seal (what a writer stores). */
export async function sealed<T extends object>(sealer: OutboxSealer, place: SealPlace, entry: T): Promise<T & { readonly seal: string }> {
  return { ...entry, seal: await sealer.seal(place, entry) };
}

/** A sealer for a process without a seal key: every seal and check refuses, naming the setting (fail closed). */
export function unavailableSealer(setting = 'ACKD_OUTBOX_SEAL_KEY'): OutboxSealer {
  const refuse = (): Promise<never> => Promise.reject(new AckdError('ERR_SIGNER_UNAVAILABLE', `${setting} is not set: this process can neither write audit events nor admit them to the log`));
  return { seal: refuse, check: refuse };
}

/** Whether `seal` holds for `entry` at `place`, or null when this process has no seal key to check with (an operator's listing). */
export function sealHolds(sealer: OutboxSealer, place: SealPlace, entry: object, seal: unknown): Promise<boolean | null> {
  return sealer.check(place, entry, seal).then(
    (v) => v.ok,
    () => null,
  );
}

/**
 * The upgrade step for entries stored before they were sealed (API keys, passkeys): seals each of
 * `all` that carries no seal at all, through `setSeal` (conditional on the entry as listed), and
 * returns those sealed. With `ids`, only the entries they name; every id must name exactly one
 * unsealed entry, else nothing is sealed (ERR_NOT_FOUND; ERR_CONFLICT when a twin carries the same
 * id: the operator vouches for one entry, not for whatever a table writer put beside it).
 */
export async function sealUnsealedEntries<T extends { readonly seal?: string }>(
  all: readonly T[],
  opts: {
    readonly ids: readonly string[] | undefined;
    readonly idOf: (e: T) => string;
    /** The id's field and what an entry is, for the errors: `key_id`, `API key`. */
    readonly field: string;
    readonly noun: string;
    readonly seal: (e: T) => Promise<string>;
    readonly setSeal: (e: T, seal: string) => Promise<boolean>;
  },
): Promise<T[]> {
  const unsealed = all.filter((e) => e.seal === undefined);
  if (opts.ids !== undefined) {
    const count = (id: string) => unsealed.filter((e) => opts.idOf(e) === id).length;
    const unknown = opts.ids.filter((id) => count(id) === 0);
    if (unknown.length > 0) throw new AckdError('ERR_NOT_FOUND', `${opts.field}: no unsealed ${opts.noun} ${unknown.join(', ')} (the listing shows what is unsealed)`, { field: opts.field });
    const twins = opts.ids.filter((id) => count(id) > 1);
    if (twins.length > 0) throw new AckdError('ERR_CONFLICT', `${opts.field}: ${twins.join(', ')} names more than one unsealed ${opts.noun}: an entry written outside ackd carries the same id; nothing sealed`, { field: opts.field });
  }
  const done: T[] = [];
  for (const e of unsealed) {
    if (opts.ids !== undefined && !opts.ids.includes(opts.idOf(e))) continue;
    if (await opts.setSeal(e, await opts.seal(e))) done.push(e);
  }
  return done;
}

