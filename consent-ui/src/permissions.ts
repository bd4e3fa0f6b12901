/**
 * Which permissions the review page flags for a second look, and why. No DOM here, so the rule is
 * unit-tested (test/unit/consent-ui-permissions.test.ts).
 *
 * The rule, kept simple on purpose (a flag asks the approver to read carefully; it allows or
 * refuses nothing). A permission is cut into words: at every character other than a letter, a
 * digit or `*`, and where a lower-case letter or digit meets an upper-case one
 * (`s3:DeleteObject` → s3, delete, object; `db.force-drop` → db, force, drop). Words are compared
 * lower-cased and whole (`drop` is flagged, `dropdown` is not). A permission is flagged
 *
 *  - destructive   when a word removes or stops something: delete, destroy, drop, truncate,
 *                  purge, wipe, erase, remove, rm, terminate, kill;
 *  - admin         when a word names unrestricted power: admin, administrator, root, sudo,
 *                  superuser, owner;
 *  - wildcard      when a word contains `*` (it covers everything the pattern matches: `s3:*`, `*`);
 *  - production    when a word names production (prod, production) and another one a change:
 *                  write, deploy, push, put, update, patch, modify, create, apply, exec, execute,
 *                  migrate, release.
 *
 * A permission can have several flags; they are listed in this order.
 */

export type Flag = 'destructive' | 'admin' | 'wildcard' | 'production';

const DESTRUCTIVE = new Set(['delete', 'destroy', 'drop', 'truncate', 'purge', 'wipe', 'erase', 'remove', 'rm', 'terminate', 'kill']);
const ADMIN = new Set(['admin', 'administrator', 'root', 'sudo', 'superuser', 'owner']);
const PRODUCTION = new Set(['prod', 'production']);
const CHANGE = new Set(['write', 'deploy', 'push', 'put', 'update', 'patch', 'modify', 'create', 'apply', 'exec', 'execute', 'migrate', 'release']);

/** The words of a permission, lower-cased, as the rule above cuts them. */
export function wordsOf(permission: string): string[] {
  return permission
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[^A-Za-z0-9*]+/)
    .filter((w) => w !== '')
    .map((w) => w.toLowerCase());
}

/** The flags of one permission, in the order of the rule (empty when it is not flagged). */
export function flagsOf(permission: string): Flag[] {
  const words = wordsOf(permission);
  const flags: Flag[] = [];
  if (words.some((w) => DESTRUCTIVE.has(w))) flags.push('destructive');
  if (words.some((w) => ADMIN.has(w))) flags.push('admin');
  if (words.some((w) => w.includes('*'))) flags.push('wildcard');
  if (words.some((w) => PRODUCTION.has(w)) && words.some((w) => CHANGE.has(w))) flags.push('production');
  return flags;
}

/** How a flag reads on the page. */
export const FLAG_TEXT: Record<Flag, string> = {
  destructive: 'destructive',
  admin: 'admin',
  wildcard: 'wildcard',
  production: 'changes production',
};

/** The badge of a flagged permission: "destructive · admin" (empty when not flagged). */
export function flagLabel(flags: readonly Flag[]): string {
  return flags.map((f) => FLAG_TEXT[f]).join(' · ');
}

/**
 * The warning under the permissions, or null when none is flagged:
 * "2 of 3 permissions need a careful look: db:drop (destructive), s3:* (wildcard)."
 * The caller inserts it as text (the permissions are the agent's).
 */
export function flagSummary(permissions: readonly string[]): string | null {
  const flagged = permissions.map((p) => ({ p, flags: flagsOf(p) })).filter((x) => x.flags.length > 0);
  if (flagged.length === 0) return null;
  const head = flagged.length === 1 && permissions.length === 1 ? 'This permission needs a careful look' : `${flagged.length} of ${permissions.length} permissions need a careful look`;
  return `${head}: ${flagged.map((x) => `${x.p} (${flagLabel(x.flags)})`).join(', ')}.`;
}
