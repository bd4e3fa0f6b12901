/**
 * Issue 15 item 4: SPIRE's images by digest, its single-writer deployment (and why), and the
 * upgrade path: the datastore in an AWS Backup plan, the on-demand backup the runbook in
 * docs/spire.md runs first, with the outputs it names.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SIDECAR_BASE_IMAGE, DEFAULT_SPIRE_IMAGE, SPIRE_VERSION } from '../../lib/config.ts';
import { buildSidecarContext } from '../../lib/constructs/sidecar-image.ts';
import type { AckdStack } from '../../lib/stacks/ackd-stack.ts';
import { resourcesOf, synthStack, type Json } from '../helpers/synth-stack.ts';

const DIGEST = /@sha256:[0-9a-f]{64}$/;
const REPO = join(import.meta.dirname, '..', '..');
let t: Json;
let stack: AckdStack;
const one = (type: string) => {
  const r = resourcesOf(t, type);
  expect(r.length, type).toBe(1);
  return r[0]!;
};

beforeAll(() => {
  ({ t, stack } = synthStack({ stage: 'prod' }));
}, 120_000);

describe('images by digest', () => {
  it('the defaults are pinned by digest: spire-server at the tested version, the sidecar on Node 22 Alpine', () => {
    expect(DEFAULT_SPIRE_IMAGE).toMatch(new RegExp(`^ghcr\\.io/spiffe/spire-server:${SPIRE_VERSION.replace(/\./g, '\\.')}@sha256:[0-9a-f]{64}$`));
    expect(DEFAULT_SIDECAR_BASE_IMAGE).toMatch(/^public\.ecr\.aws\/docker\/library\/node:22-alpine@sha256:[0-9a-f]{64}$/);
    const [, task] = one('AWS::ECS::TaskDefinition');
    const server = (task.Properties.ContainerDefinitions as Json[]).find((c) => c.Name === 'spire-server')!;
    expect(server.Image).toMatch(DIGEST);
    expect(readFileSync(join(buildSidecarContext(), 'Dockerfile'), 'utf8').split('\n')[0]).toBe(`FROM ${DEFAULT_SIDECAR_BASE_IMAGE}`);
  });

  it('the sidecar base image is a setting, written into the Dockerfile', () => {
    const other = `public.ecr.aws/docker/library/node:22.12-alpine@sha256:${'ab'.repeat(32)}`;
    expect(readFileSync(join(buildSidecarContext(other), 'Dockerfile'), 'utf8')).toContain(`FROM ${other}\n`);
  });

  it.each(['spireServerImage', 'sidecarBaseImage'])('prod refuses a tag-only %s, naming the setting', (setting) => {
    expect(() => synthStack({ stage: 'prod', [setting]: 'ghcr.io/spiffe/spire-server:1.15.3' })).toThrow(new RegExp(`${setting} \\(context "ackd:${setting}".*names a tag only; in prod it must be pinned by digest`));
  });

  it.each(['spireServerImage', 'sidecarBaseImage'])('every stage refuses %s "latest" or neither tag nor digest', (setting) => {
    expect(() => synthStack({ [setting]: 'ghcr.io/spiffe/spire-server:latest' })).toThrow(new RegExp(`${setting} .*pinned to a tag or digest`));
    expect(() => synthStack({ [setting]: 'ghcr.io/spiffe/spire-server' })).toThrow(new RegExp(`${setting} .*pinned to a tag or digest`));
  });

  it('outside prod a tag is accepted (for trying a release before pinning it)', () => {
    expect(() => synthStack({ spireServerImage: 'ghcr.io/spiffe/spire-server:1.15.3' })).not.toThrow();
  }, 120_000);
});

describe('availability: one writer of the datastore', () => {
  it('one task, stopped before its replacement starts (two servers on SQLite over EFS are unsafe; docs/spire.md, "Availability")', () => {
    const [, svc] = one('AWS::ECS::Service');
    expect(svc.Properties.DesiredCount).toBe(1);
    expect(svc.Properties.DeploymentConfiguration).toMatchObject({ MinimumHealthyPercent: 0, MaximumPercent: 100, DeploymentCircuitBreaker: { Enable: true, Rollback: true } });
    const [, task] = one('AWS::ECS::TaskDefinition');
    const conf = JSON.stringify((task.Properties.ContainerDefinitions as Json[]).find((c) => c.Name === 'init'));
    expect(conf).toMatch(/database_type = \\+"sqlite3/);
  });
});

describe('upgrade path: the datastore is backed up', () => {
  it('daily by an AWS Backup plan kept 35 days, in its own vault, retained in prod', () => {
    const [vaultId, vault] = one('AWS::Backup::BackupVault');
    expect(vault.DeletionPolicy).toBe('Retain');
    const [planId, plan] = one('AWS::Backup::BackupPlan');
    const rules = plan.Properties.BackupPlan.BackupPlanRule as Json[];
    expect(rules).toEqual([expect.objectContaining({ ScheduleExpression: 'cron(0 5 * * ? *)', Lifecycle: { DeleteAfterDays: 35 }, TargetBackupVault: { 'Fn::GetAtt': [vaultId, 'BackupVaultName'] } })]);
    const [, sel] = one('AWS::Backup::BackupSelection');
    expect(sel.Properties.BackupPlanId).toEqual({ 'Fn::GetAtt': [planId, 'BackupPlanId'] });
    const [fsId, fs] = one('AWS::EFS::FileSystem');
    expect(JSON.stringify(sel.Properties.BackupSelection.Resources)).toContain(fsId);
    // EFS's own automatic plan is off: one plan, whose vault and role the runbook can name.
    expect(fs.Properties.BackupPolicy?.Status ?? 'DISABLED').toBe('DISABLED');
  });

  it('the outputs the runbook names exist: datastore ARN, vault, backup role', () => {
    expect(Object.keys(t.Outputs)).toEqual(expect.arrayContaining(['SpireDatastoreArn', 'SpireBackupVault', 'SpireBackupRoleArn']));
    expect(t.Outputs.SpireBackupRoleArn.Value).toEqual(stack.resolve(stack.spire.backupRole!.roleArn));
  });

  it('docs/spire.md documents the upgrade: on-demand backup first (with those outputs), then the new digest, then the check', () => {
    const doc = readFileSync(join(REPO, 'docs/spire.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## Upgrading SPIRE'));
    expect(section.length).toBeGreaterThan(200);
    for (const s of ['aws backup start-backup-job', 'SpireBackupVault', 'SpireDatastoreArn', 'SpireBackupRoleArn', 'spireServerImage', 'describe-backup-job', 'restore']) expect(section).toContain(s);
    expect(section.indexOf('start-backup-job')).toBeLessThan(section.indexOf('cdk deploy'));
  });
});
