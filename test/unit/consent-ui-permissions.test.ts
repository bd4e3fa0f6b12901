import { describe, expect, it } from 'vitest';
import { flagLabel, flagsOf, flagSummary, wordsOf } from '../../consent-ui/src/permissions.ts';

describe('consent page: which permissions are flagged', () => {
  it('cuts a permission into whole lower-case words, at separators and camelCase', () => {
    expect(wordsOf('s3:DeleteObject')).toEqual(['s3', 'delete', 'object']);
    expect(wordsOf('db.force-drop')).toEqual(['db', 'force', 'drop']);
    expect(wordsOf('repo/acme:push')).toEqual(['repo', 'acme', 'push']);
    expect(wordsOf('iam:*')).toEqual(['iam', '*']);
    expect(wordsOf('ec2:TerminateInstances')).toEqual(['ec2', 'terminate', 'instances']);
    expect(wordsOf('a__b::c')).toEqual(['a', 'b', 'c']);
  });

  it('destructive: a word that removes or stops something', () => {
    for (const p of ['db:drop', 'db:delete', 's3:DeleteObject', 'k8s:namespace:destroy', 'table.truncate', 'cache:purge', 'disk:wipe', 'files:erase', 'user:remove', 'fs:rm', 'ec2:TerminateInstances', 'proc:kill']) {
      expect(flagsOf(p), p).toEqual(['destructive']);
    }
  });

  it('admin: a word of unrestricted power', () => {
    for (const p of ['cluster:admin', 'iam:AdministratorAccess', 'host:root', 'shell:sudo', 'db:superuser', 'org:owner']) expect(flagsOf(p), p).toEqual(['admin']);
  });

  it('wildcard: a word with *', () => {
    expect(flagsOf('*')).toEqual(['wildcard']);
    expect(flagsOf('s3:*')).toEqual(['wildcard']);
    expect(flagsOf('repo/*:read')).toEqual(['wildcard']);
    expect(flagsOf('logs:read*')).toEqual(['wildcard']);
  });

  it('production: production and a change, together', () => {
    for (const p of ['deploy:prod', 'prod:db:write', 'k8s:production:apply', 'prod/api:push', 'PutProdConfig', 'migrate:prod']) expect(flagsOf(p), p).toEqual(['production']);
    // Reading production, or writing elsewhere, is not flagged.
    expect(flagsOf('prod:logs:read')).toEqual([]);
    expect(flagsOf('db:write')).toEqual([]);
    expect(flagsOf('staging:deploy')).toEqual([]);
  });

  it('words compare whole: look-alikes are not flagged', () => {
    for (const p of ['ui:dropdown', 'admins-list:read', 'rootfs:read', 'product:read', 'k8s:rollout', 'kms:rotate', 'repo/acme:push', 'p'.repeat(128)]) expect(flagsOf(p), p).toEqual([]);
  });

  it('several flags, in the order of the rule', () => {
    expect(flagsOf('prod:*:delete')).toEqual(['destructive', 'wildcard']);
    expect(flagsOf('admin:prod:drop:write')).toEqual(['destructive', 'admin', 'production']);
    expect(flagLabel(['destructive', 'admin', 'production'])).toBe('destructive · admin · changes production');
    expect(flagLabel([])).toBe('');
  });

  it('the warning names each flagged permission, or is absent', () => {
    expect(flagSummary(['deploy:prod', 'k8s:rollout', 'db:drop'])).toBe('2 of 3 permissions need a careful look: deploy:prod (changes production), db:drop (destructive).');
    expect(flagSummary(['s3:*'])).toBe('This permission needs a careful look: s3:* (wildcard).');
    expect(flagSummary(['s3:*', 'logs:read'])).toBe('1 of 2 permissions need a careful look: s3:* (wildcard).');
    expect(flagSummary(['db:write', 'kms:rotate'])).toBeNull();
  });
});
