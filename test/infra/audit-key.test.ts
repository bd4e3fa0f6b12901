/**
 * lib/constructs/audit.ts with an existing key (deploy setting `auditKeyArn`): the stack creates
 * no key and no alias, and everything that used the created key now names the given one. The
 * stack is built without bundling (`aws:cdk:bundling-stacks`: none): only its template is read.
 */
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../bin/cdk.ts';
import { DeployConfigError } from '../../lib/config.ts';
import { AuditKey } from '../../lib/constructs/audit.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const REPO = join(import.meta.dirname, '..', '..');
const KEY_ARN = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';

describe('AuditKey with an existing key', () => {
  it('creates no key or alias; ACKD_AUDIT_KEY, the sweeper\'s and the export\'s KMS grants and the output name the given key', () => {
    const cdkJson = JSON.parse(readFileSync(join(REPO, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
    const app = new App({
      context: {
        ...cdkJson.context,
        'aws:cdk:bundling-stacks': [],
        'ackd:stage': 'ci',
        'ackd:trustDomain': 'agents.acme-corp.io',
        'ackd:approverEmails': 'alice@acme-corp.io',
        'ackd:sender': 'acme-corp.io',
        'ackd:auditKeyArn': KEY_ARN,
      },
    });
    const { stack } = buildApp(app);
    const t = Template.fromStack(stack).toJSON() as Json;
    const of = (type: string) => Object.entries(t.Resources as Json).filter(([, r]) => (r as Json).Type === type) as [string, Json][];
    // No audit key is created (the keys left encrypt the alarm topic, constructs/observability.ts, and
    // sign decisions and receipts, constructs/evidence-keys.ts, and seal audit outbox entries, constructs/outbox-seal.ts).
    const idOf = (c: { node: { defaultChild?: unknown } }) => stack.resolve(stack.getLogicalId(c.node.defaultChild as never)) as string;
    expect(of('AWS::KMS::Key').map(([id]) => id).sort()).toEqual([idOf(stack.observability.topicKey), idOf(stack.decisionKey.key!), idOf(stack.receiptKey.key!), idOf(stack.outboxSeal.key)].sort());
    expect(of('AWS::KMS::Alias').map(([id]) => id).sort()).toEqual([idOf(stack.decisionKey.alias!), idOf(stack.receiptKey.alias!), idOf(stack.outboxSeal.alias)].sort());
    expect(stack.auditKey.keyArn).toBe(KEY_ARN);
    expect(t.Outputs.AuditKeyArn.Value).toBe(KEY_ARN);

    const fnId = (f: unknown) => stack.resolve(stack.getLogicalId((f as { node: { defaultChild: never } }).node.defaultChild)) as string;
    const env = (f: unknown) => (t.Resources[fnId(f)] as Json).Properties.Environment.Variables as Json;
    expect(env(stack.api.sweeperFunction).ACKD_AUDIT_KEY).toBe(`kms:${KEY_ARN}`);
    expect(env(stack.api.auditExportFunction).ACKD_AUDIT_KEY).toBe(`kms:${KEY_ARN}`);

    const kmsGrants = (f: unknown) => {
      const role = (t.Resources[fnId(f)] as Json).Properties.Role['Fn::GetAtt'][0] as string;
      return of('AWS::IAM::Policy')
        .filter(([, p]) => (p.Properties.Roles as Json[]).some((r) => r.Ref === role))
        .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Json[])
        .filter((s) => [s.Action].flat().some((a: string) => a.startsWith('kms:')))
        .map((s) => ({ actions: [s.Action].flat().sort(), resource: s.Resource }));
    };
    expect(kmsGrants(stack.api.sweeperFunction)).toEqual(
      expect.arrayContaining([
        { actions: ['kms:Sign'], resource: KEY_ARN },
        { actions: ['kms:GetPublicKey'], resource: KEY_ARN },
      ]),
    );
    expect(kmsGrants(stack.api.auditExportFunction)).toEqual([{ actions: ['kms:GetPublicKey'], resource: KEY_ARN }]);
  });

  it('refuses a key in another region than the stack\'s, naming the setting', () => {
    const stack = new Stack(new App(), 'T', { env: { account: '123456789012', region: 'us-east-1' } });
    let err: unknown;
    try {
      new AuditKey(stack, 'AuditKey', { stage: 'ci', existingKeyArn: KEY_ARN });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DeployConfigError);
    expect((err as DeployConfigError).setting).toBe('auditKeyArn');
    expect((err as Error).message).toMatch(/eu-west-1.*us-east-1/);
  });
});
