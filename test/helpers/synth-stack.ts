import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../bin/cdk.ts';
import type { AckdStack } from '../../lib/stacks/ackd-stack.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = Record<string, any>;

const REPO = join(import.meta.dirname, '..', '..');

/** The CDK app as `cdk synth` builds it (cdk.json's context, no bundling), with the given settings on top. */
export function synthStack(settings: Record<string, unknown> = {}, before?: (stack: AckdStack) => void): { app: App; stack: AckdStack; t: Json } {
  const cdkJson = JSON.parse(readFileSync(join(REPO, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
  const app = new App({
    context: {
      ...cdkJson.context,
      'aws:cdk:bundling-stacks': [],
      'ackd:stage': 'ci',
      'ackd:trustDomain': 'agents.acme-corp.io',
      'ackd:approverEmails': 'alice@acme-corp.io',
      'ackd:sender': 'acme-corp.io',
      ...Object.fromEntries(Object.entries(settings).map(([k, v]) => [`ackd:${k}`, v])),
    },
  });
  const stack = buildApp(app).stack;
  before?.(stack);
  return { app, stack, t: Template.fromStack(stack).toJSON() as Json };
}

export const resourcesOf = (t: Json, type: string) => Object.entries(t.Resources as Json).filter(([, r]) => (r as Json).Type === type) as [string, Json][];

/** An IAM field (Action, Resource, Principal) as a list: absent → [], one → [one]. */
export const asList = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** The logical id of a construct's CloudFormation resource in `stack`. */
export const logicalIdIn = (stack: AckdStack, c: { node: { defaultChild?: unknown } }): string => stack.resolve(stack.getLogicalId(c.node.defaultChild as never)) as string;

/** The DynamoDB actions (`dynamodb:GetItem` …) the policies attached to `fn`'s role allow, on any resource. */
export function tableActionsGranted(stack: AckdStack, t: Json, fn: { role?: { node: { defaultChild?: unknown } } }): Set<string> {
  if (!fn.role) throw new Error('the function has no role');
  const roleId = logicalIdIn(stack, fn.role);
  const out = new Set<string>();
  for (const [, p] of resourcesOf(t, 'AWS::IAM::Policy')) {
    if (!JSON.stringify(p.Properties.Roles).includes(`"${roleId}"`)) continue;
    for (const s of p.Properties.PolicyDocument.Statement as Json[]) {
      if (s.Effect !== 'Allow') continue;
      for (const a of asList(s.Action) as string[]) if (a.startsWith('dynamodb:')) out.add(a);
    }
  }
  return out;
}
