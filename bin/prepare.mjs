#!/usr/bin/env node
// `npm start` and `npm test` run this first (prestart / pretest), so the quick start is exactly
// those two commands on a fresh clone: it installs the npm dependencies when node_modules is
// missing or was installed from another package-lock.json, and, for the tests, Chromium from
// Debian's packages when it is missing and this user can install it. spire-server is built on
// demand by `npm start` and the tests themselves (spire/build.ts). Plain Node: no dependencies.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
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

if (process.argv.includes('--test')) {
  const chromium = process.env.ACKD_CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(chromium)) {
    const canInstall = process.getuid?.() === 0 && existsSync('/usr/bin/apt-get');
    if (!canInstall) {
      console.error(`ackd: the browser tests need Chromium at ${chromium} (Debian: apt-get install chromium); they will fail without it`);
    } else {
      console.error('ackd: installing Chromium for the browser tests (apt-get install chromium) …');
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      for (const args of [['update', '-qq'], ['install', '-y', '-qq', 'chromium']]) {
        const r = spawnSync('apt-get', args, { stdio: 'inherit', env });
        if (r.status !== 0) {
          console.error(`ackd: apt-get ${args.join(' ')} failed; the browser tests will fail`);
          break;
        }
      }
    }
  }
}
