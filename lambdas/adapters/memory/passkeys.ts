import { AckdError } from '../../core/errors.ts';
import type { IssuedNonce, NonceStore, PasskeyStore, StoredPasskey } from '../../core/passkeys.ts';

/** Passkeys in one process's memory (unit tests). Same semantics as the DynamoDB adapter. */
export class MemoryPasskeyStore implements PasskeyStore {
  private readonly byApprover = new Map<string, Map<string, StoredPasskey>>();

  private of(approver: string): Map<string, StoredPasskey> {
    let m = this.byApprover.get(approver);
    if (!m) this.byApprover.set(approver, (m = new Map()));
    return m;
  }

  list(approver: string): Promise<StoredPasskey[]> {
    return Promise.resolve([...this.of(approver).values()].sort((a, b) => a.created_at.localeCompare(b.created_at)));
  }

  stored(approver: string): Promise<StoredPasskey[]> {
    return this.list(approver);
  }

  all(): Promise<(StoredPasskey & { retired: boolean })[]> {
    const current = [...this.byApprover.values()].flatMap((m) => [...m.values()].map((p) => ({ ...p, retired: false })));
    return Promise.resolve([...current, ...[...this.retired.values()].map((p) => ({ ...p, retired: true }))]);
  }

  setSeal(p: StoredPasskey & { readonly retired: boolean }, seal: string): Promise<boolean> {
    const key = `${p.approver}\u0000${p.credential_id}`;
    const now = p.retired ? this.retired.get(key) : this.of(p.approver).get(p.credential_id);
    if (!now || now.seal !== undefined || now.public_key !== p.public_key || now.created_at !== p.created_at) return Promise.resolve(false);
    if (p.retired) this.retired.set(key, { ...now, seal });
    else this.of(p.approver).set(p.credential_id, { ...now, seal });
    return Promise.resolve(true);
  }

  /** Stores a credential as given, unsealed or forged (tests: what a table writer would put). */
  writeRaw(p: StoredPasskey): void {
    this.of(p.approver).set(p.credential_id, p);
  }

  get(approver: string, credentialId: string): Promise<StoredPasskey | undefined> {
    return Promise.resolve(this.of(approver).get(credentialId));
  }

  async put(p: StoredPasskey, max: number): Promise<void> {
    const m = this.of(p.approver);
    if (m.has(p.credential_id)) throw new AckdError('ERR_CONFLICT', 'this passkey is already registered');
    if (m.size >= max) throw new AckdError('ERR_CONFLICT', `you already have ${max} passkeys, the most allowed; delete one first`);
    m.set(p.credential_id, { ...p, transports: [...p.transports] });
  }

  private readonly retired = new Map<string, StoredPasskey>();

  delete(approver: string, credentialId: string): Promise<boolean> {
    const p = this.of(approver).get(credentialId);
    if (p) this.retired.set(`${approver}\u0000${credentialId}`, p);
    return Promise.resolve(this.of(approver).delete(credentialId));
  }

  registered(approver: string, credentialId: string): Promise<StoredPasskey | undefined> {
    return Promise.resolve(this.of(approver).get(credentialId) ?? this.retired.get(`${approver}\u0000${credentialId}`));
  }

  updateCounter(approver: string, credentialId: string, from: number, to: number): Promise<boolean> {
    const m = this.of(approver);
    const p = m.get(credentialId);
    if (!p || p.counter !== from) return Promise.resolve(false);
    m.set(credentialId, { ...p, counter: to });
    return Promise.resolve(true);
  }
}

/** Single-use nonces in one process's memory (unit tests). */
export class MemoryNonceStore implements NonceStore {
  private readonly nonces = new Map<string, IssuedNonce>();

  issue(n: IssuedNonce): Promise<void> {
    if (this.nonces.has(n.nonce)) return Promise.reject(new AckdError('ERR_CONFLICT', 'nonce already issued'));
    this.nonces.set(n.nonce, n);
    return Promise.resolve();
  }

  consume(nonce: string, now: Date): Promise<IssuedNonce | undefined> {
    const n = this.nonces.get(nonce);
    if (!n || Date.parse(n.expires_at) <= now.getTime()) return Promise.resolve(undefined);
    this.nonces.delete(nonce);
    return Promise.resolve(n);
  }
}
