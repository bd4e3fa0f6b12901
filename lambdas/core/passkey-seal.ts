import { sealHolds, sealUnsealedEntries, type OutboxSealer, type SealPlace } from './audit/seal.ts';
import { ThrottledWarnings } from './log-throttle.ts';
import type { Logger } from './ports.ts';
import type { PasskeyStore, StoredPasskey } from './passkeys.ts';

/** A stored credential as listed to operators: current or retired, and whether its seal holds (null: this process has no seal key to check with). */
export type PasskeyListing = StoredPasskey & { readonly retired: boolean; readonly sealed: boolean | null };

const placeOf = (p: Pick<StoredPasskey, 'approver' | 'credential_id'>): SealPlace => ({ kind: 'passkey', approver: p.approver, credential_id: p.credential_id });
/** What a passkey's seal covers: which public key is this approver's credential (its place), since when. Not the counter, label or transports, which change or are only shown. */
const sealedFields = (p: StoredPasskey) => ({ public_key: p.public_key, created_at: p.created_at });

/**
 * Approvers' passkeys sealed like audit outbox entries (core/audit/seal.ts, the place
 * `{kind:"passkey", approver, credential_id}`), so that whoever can write the table but does not
 * hold the seal key cannot put a public key of their own among an approver's passkeys. Without the
 * seal, such a key would confirm the adding of more passkeys in place of the approver's own (the
 * step-up a stolen session must pass), sign decisions "with the approver's passkey", and vouch for
 * forged assertions when a decision is re-verified (`ackd audit verify --passkeys`).
 *
 * A credential without a valid seal is not the approver's: listing, lookup and re-verification
 * leave it out, and a warning names it (`ERR_PASSKEY_UNSEALED`). A reset still removes it. Passkeys
 * stored before passkeys were sealed are sealed once by an operator (`ackd passkeys seal`).
 */
export class SealedPasskeyStore implements PasskeyStore {
  private readonly refusals: ThrottledWarnings;

  constructor(
    private readonly inner: PasskeyStore,
    private readonly sealer: OutboxSealer,
    logger?: Logger,
  ) {
    this.refusals = new ThrottledWarnings(logger);
  }

  async list(approver: string): Promise<StoredPasskey[]> {
    const all = await this.inner.list(approver);
    const holds = await Promise.all(all.map((p) => this.holds(p)));
    return all.filter((_, i) => holds[i]);
  }

  stored(approver: string): Promise<StoredPasskey[]> {
    return this.inner.stored(approver);
  }

  async get(approver: string, credentialId: string): Promise<StoredPasskey | undefined> {
    return this.ifSealed(await this.inner.get(approver, credentialId));
  }

  async registered(approver: string, credentialId: string): Promise<StoredPasskey | undefined> {
    return this.ifSealed(await this.inner.registered(approver, credentialId));
  }

  async put(p: StoredPasskey, max: number): Promise<void> {
    await this.inner.put({ ...p, seal: await this.sealer.seal(placeOf(p), sealedFields(p)) }, max);
  }

  delete(approver: string, credentialId: string): Promise<boolean> {
    return this.inner.delete(approver, credentialId);
  }

  updateCounter(approver: string, credentialId: string, from: number, to: number): Promise<boolean> {
    return this.inner.updateCounter(approver, credentialId, from, to);
  }

  /** Every stored credential with whether its seal holds; works without the seal key too, saying so with null. */
  async all(): Promise<PasskeyListing[]> {
    return Promise.all(
      (await this.inner.all()).map(async (p) => ({
        ...p,
        sealed: await sealHolds(this.sealer, placeOf(p), sealedFields(p), p.seal),
      })),
    );
  }

  setSeal(p: StoredPasskey & { readonly retired: boolean }, seal: string): Promise<boolean> {
    return this.inner.setSeal(p, seal);
  }

  /**
   * Seals every stored credential (current or retired) that carries no seal at all (passkeys stored
   * before passkeys were sealed), each only while it is as listed; returns those sealed. An operator
   * runs it once after upgrading, having checked `ackd passkeys list`: what it seals, they vouch
   * for. A credential whose seal is present but wrong is left as it is (it was changed outside ackd).
   * With `credentialIds`, only those (what the operator checked by name): sealUnsealedEntries.
   */
  async sealUnsealed(credentialIds?: readonly string[]): Promise<(StoredPasskey & { readonly retired: boolean })[]> {
    return sealUnsealedEntries(await this.inner.all(), {
      ids: credentialIds,
      idOf: (p) => p.credential_id,
      field: 'credential_id',
      noun: 'passkey',
      seal: (p) => this.sealer.seal(placeOf(p), sealedFields(p)),
      setSeal: (p, seal) => this.inner.setSeal(p, seal),
    });
  }

  private async ifSealed(p: StoredPasskey | undefined): Promise<StoredPasskey | undefined> {
    return p !== undefined && (await this.holds(p)) ? p : undefined;
  }

  /** Whether the credential's seal holds; a warning names one that does not. Rejects when the seal key is unavailable (fail closed). */
  private async holds(p: StoredPasskey): Promise<boolean> {
    const v = await this.sealer.check(placeOf(p), sealedFields(p), p.seal);
    if (v.ok) return true;
    this.refusals.warn(`${p.approver}\u0000${p.credential_id}:${v.reason}`, 'passkey refused: it carries no valid seal (written outside ackd, or stored before passkeys were sealed: ackd passkeys seal)', {
      code: 'ERR_PASSKEY_UNSEALED',
      approver: String(p.approver).slice(0, 128),
      credential_id: String(p.credential_id).slice(0, 128),
      reason: v.reason,
    });
    return false;
  }
}
