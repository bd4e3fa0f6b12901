#!/usr/bin/env node
// `npm start` and `npm test` run this first (prestart / pretest), so the quick start is exactly
// those two commands on a fresh clone: it installs the npm dependencies when node_modules is
// missing or was installed from another package-lock.json, and, for the tests, Chromium from
// Debian's packages when it is missing and this user can install it, and PostgreSQL (the SPIRE HA
// test's datastore) the same way. spire-server is built on
// demand by `npm start` and the tests themselves (spire/build.ts). Plain Node: no dependencies.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stamp = join(root, 'node_modules', '.ackd-lock-sha256');
const lock = createHash('sha256').update(readFileSync(join(root, 'package-lock.json'))).digest('hex');

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`ackd: \`${cmd} ${args.join(' ')}\` failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status ?? 1);
  }
}

// npm's own record of the last install: newer than package-lock.json means an install from it
// (by hand, or by an earlier version of this script) that left no stamp.
const hidden = join(root, 'node_modules', '.package-lock.json');
const installed = existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : null;
const installedByHand = installed === null && existsSync(hidden) && statSync(hidden).mtimeMs >= statSync(join(root, 'package-lock.json')).mtimeMs;
if (installedByHand) writeFileSync(stamp, `${lock}\n`);
else if (!existsSync(join(root, 'node_modules')) || installed !== lock) {
  console.error(installed === null ? 'ackd: installing dependencies (npm ci) …' : 'ackd: package-lock.json changed since the last install: npm ci …');
  run('npm', ['ci', '--no-audit', '--no-fund']);
  writeFileSync(stamp, `${lock}\n`);
}

/** Whether PostgreSQL's server binaries are here (on PATH, or where Debian's packages put them). */
function hasPostgres() {
  if (spawnSync('sh', ['-c', 'command -v initdb && command -v postgres'], { stdio: 'ignore' }).status === 0) return true;
  const base = '/usr/lib/postgresql';
  return existsSync(base) && readdirSync(base).some((v) => existsSync(join(base, v, 'bin', 'initdb')) && existsSync(join(base, v, 'bin', 'postgres')));
}

/** Installs Debian packages the tests need when they are missing and this user can (root with apt-get); says what fails otherwise. */
function ensurePackage(what, present, pkg) {
  if (present) return;
  const canInstall = process.getuid?.() === 0 && existsSync('/usr/bin/apt-get');
  if (!canInstall) {
    console.error(`ackd: ${what} (Debian: apt-get install ${pkg}); they will fail without it`);
    return;
  }
  console.error(`ackd: installing ${pkg} for the tests (apt-get install ${pkg}) …`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update', '-qq'], ['install', '-y', '-qq', pkg]]) {
    const r = spawnSync('apt-get', args, { stdio: 'inherit', env });
    if (r.status !== 0) {
      console.error(`ackd: apt-get ${args.join(' ')} failed; the tests that need ${pkg} will fail`);
      break;
    }
  }
}

if (process.argv.includes('--test')) {
  const chromium = process.env.ACKD_CHROMIUM ?? '/usr/bin/chromium';
  ensurePackage(`the browser tests need Chromium at ${chromium}`, existsSync(chromium), 'chromium');
  // The SPIRE HA test runs two spire-servers on one real PostgreSQL (test/infra/spire-ha-local.test.ts).
  ensurePackage('the SPIRE HA test needs a PostgreSQL server', hasPostgres(), 'postgresql');
}
