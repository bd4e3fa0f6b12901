/**
 * The local state directory (`.ackd/`) holds secrets: the agent's API key and the approver's password
 * (local.json, cognito/), the CA keys (local-ca/, spire/), the audit signing key, the request store
 * (dynalite/). All of it is the owner's alone: directories 0700, files 0600.
 *
 * Two halves: a umask of 077 for the process, so that whatever creates files later (dynalite's
 * leveldb, cognito-local's store, spire-server, which inherits it) creates them private; and a pass
 * that takes group and other bits off what an earlier run left behind (the upgrade path).
 */
import { chmod, lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Group and other get nothing. */
export const PRIVATE_UMASK = 0o077;

/**
 * What ackd keeps in its state directory. Only these (and the directory itself) are changed, so a
 * state directory pointed somewhere unusual (ACKD_HOME=$HOME) never has unrelated files changed.
 */
export const STATE_ENTRIES = [
  'local.json',
  'trust-bundle.pem',
  'audit-signing-key.pem',
  'decision-signing-key.pem',
  'receipt-signing-key.pem',
  'outbox-seal.key',
  'cognito',
  'dynalite',
  'local-ca',
  'spire',
  'consent-ui',
  'protected-resource.crt', // examples/protected-resource
] as const;

/** Temporary files of atomic writes in the state directory (e.g. `trust-bundle.pem.1234.tmp`). */
const TEMP_FILE = /^(trust-bundle\.pem|local\.json)\.\d+\.tmp$/;

/** Sets the process umask to 077 (new files 0600, new directories 0700); returns the previous one. */
export function usePrivateUmask(): number {
  return process.umask(PRIVATE_UMASK);
}

export interface TightenResult {
  /** Paths whose mode was changed, with the old and new mode (octal). */
  readonly changed: { path: string; from: string; to: string }[];
  /** Paths that could not be changed (e.g. owned by someone else). */
  readonly failed: { path: string; error: string }[];
}

/**
 * Takes every group and other permission bit off `dir`, off ackd's entries in it (STATE_ENTRIES) and
 * off everything beneath them. Symbolic links are neither followed nor changed. Files that vanish
 * while it runs (leveldb compaction) are skipped.
 */
export async function makeOwnerOnly(dir: string, entries: readonly string[] = STATE_ENTRIES): Promise<TightenResult> {
  const result: TightenResult = { changed: [], failed: [] };
  const isDir = await tighten(dir, result);
  if (!isDir) return result;
  const temps = await readdir(dir).then(
    (names) => names.filter((n) => TEMP_FILE.test(n)),
    () => [],
  );
  for (const name of [...entries, ...temps]) await walk(join(dir, name), result);
  return result;
}

async function walk(path: string, result: TightenResult): Promise<void> {
  // Directory first, then its entries: once it is 0700 nobody else can swap an entry in under us.
  if (!(await tighten(path, result))) return;
  let names: string[];
  try {
    names = await readdir(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') result.failed.push({ path, error: (e as Error).message });
    return;
  }
  for (const n of names) await walk(join(path, n), result);
}

/** Removes group/other bits from one path; true when it is a directory (to descend into). */
async function tighten(path: string, result: TightenResult): Promise<boolean> {
  let st;
  try {
    st = await lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') result.failed.push({ path, error: (e as Error).message });
    return false;
  }
  if (st.isSymbolicLink()) return false;
  const mode = st.mode & 0o7777;
  // No group/other bits, and no setuid/setgid/sticky either: nothing here needs them.
  const wanted = mode & 0o700;
  if (mode !== wanted) {
    try {
      await chmod(path, wanted);
      result.changed.push({ path, from: mode.toString(8).padStart(4, '0'), to: wanted.toString(8).padStart(4, '0') });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') result.failed.push({ path, error: (e as Error).message });
    }
  }
  return st.isDirectory();
}
