/**
 * `npx cdk synth` exactly as an operator (or CI) runs it: the real CDK CLI and cdk.json's app
 * command, with NO network (a fresh network namespace: `unshare -rn`, loopback down) and NO AWS
 * credentials or config (empty environment, empty HOME). cdk-nag (AWS Solutions, HIPAA Security,
 * NIST 800-53 rev 5) runs inside that synth; any unacknowledged finding fails it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const REPO = join(import.meta.dirname, '..', '..');
const home = mkdtempSync(join(tmpdir(), 'ackd-synth-home-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

function cdkSynth(args: string[]): { status: number | null; output: string } {
  const r = spawnSync('unshare', ['-rn', join(REPO, 'node_modules/.bin/cdk'), 'synth', '--no-notices', '--quiet', ...args], {
    cwd: REPO,
    env: { PATH: process.env.PATH, HOME: home }, // nothing else: no AWS_*, no CDK_* variables
    encoding: 'utf8',
    timeout: 240_000,
  });
  if (r.error) throw new Error(`could not run cdk synth under unshare -rn (needs util-linux unshare and user namespaces): ${r.error.message}`);
  return { status: r.status, output: `${r.stdout}\n${r.stderr}` };
}

describe('npx cdk synth (offline, no credentials)', () => {
  it('synthesizes the app with cdk-nag passing', () => {
    const out = join(home, 'cdk.out');
    const { status, output } = cdkSynth([
      '-o',
      out,
      '-c',
      'ackd:stage=ci',
      '-c',
      'ackd:trustDomain=agents.acme-corp.io',
      '-c',
      'ackd:approverEmails=alice@acme-corp.io',
      '-c',
      'ackd:sender=ackd@acme-corp.io',
    ]);
    expect(status, output).toBe(0);
    expect(output).not.toMatch(/AwsSolutions-|HIPAA\.Security-|NIST\.800\.53\.R5-/);
    const template = JSON.parse(readFileSync(join(out, 'Ackd-ci.template.json'), 'utf8')) as { Outputs: Record<string, unknown> };
    expect(Object.keys(template.Outputs)).toEqual(expect.arrayContaining(['McpUrl', 'ConsentUiUrl', 'TrustBundleUrl']));
    expect(existsSync(join(out, 'Ackd-ci.assets.json'))).toBe(true);
  }, 240_000);

  it('refuses a missing setting with a message naming it, before building anything', () => {
    const { status, output } = cdkSynth(['-c', 'ackd:stage=ci', '-c', 'ackd:trustDomain=agents.acme-corp.io', '-c', 'ackd:sender=ackd@acme-corp.io']);
    expect(status).not.toBe(0);
    expect(output).toContain('approverEmails');
    expect(output).toContain('ACKD_DEPLOY_APPROVER_EMAILS');
    expect(output).not.toContain('Bundling asset');
  }, 120_000);
});
