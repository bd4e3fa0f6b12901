/**
 * The deploy setting `routes` (lib/config.ts) and what the stack makes of it (lib/constructs/api.ts):
 * ACKD_ROUTES on the functions that notify, GetSecretValue on exactly the secrets it names, egress
 * for webhook ports other than 443. The stack is built without bundling (`aws:cdk:bundling-stacks`:
 * none): only its template is read.
 */
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../bin/cdk.ts';
import { parseRoutes } from '../../lambdas/adapters/channels/config.ts';
import { DeployConfigError, loadDeployConfig, ROUTES_MAX_CHARS, type ConfigSource } from '../../lib/config.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const REPO = join(import.meta.dirname, '..', '..');
const HOOK_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:ackd/ops-hook-AbC123';
const SLACK_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:ackd/oncall-slack-XyZ789';
const ROUTES = {
  default: { email: ['sre@acme-corp.io'], webhooks: [{ name: 'ops', url: 'https://hooks.acme-corp.io:8443/ackd', secret_arn: HOOK_ARN }] },
  oncall: { slack: [{ url_secret_arn: SLACK_ARN }], webhooks: [{ url: 'https://pager.acme-corp.io/ackd', secret_arn: HOOK_ARN }] },
};
const BASE = {
  'ackd:stage': 'ci',
  'ackd:trustDomain': 'agents.acme-corp.io',
  'ackd:approverEmails': 'alice@acme-corp.io',
  'ackd:sender': 'acme-corp.io',
};

function src(context: Record<string, unknown>, env: Record<string, string | undefined> = {}): ConfigSource {
  return { context: (k) => context[k], env };
}

function refusal(context: Record<string, unknown>): DeployConfigError {
  try {
    loadDeployConfig(src(context));
  } catch (e) {
    expect(e).toBeInstanceOf(DeployConfigError);
    return e as DeployConfigError;
  }
  throw new Error('expected a refusal');
}

describe('deploy setting routes', () => {
  it('is optional', () => {
    expect(loadDeployConfig(src(BASE)).routes).toBeUndefined();
  });

  it('takes JSON (-c, env) or an object (cdk.json); the functions\' parser accepts what it passes on', () => {
    const fromObject = loadDeployConfig(src({ ...BASE, 'ackd:routes': ROUTES })).routes!;
    const fromEnv = loadDeployConfig(src(BASE, { ACKD_DEPLOY_ROUTES: JSON.stringify(ROUTES, null, 2) })).routes!;
    expect(fromEnv).toEqual(fromObject);
    expect(fromObject.json).toBe(JSON.stringify(ROUTES));
    expect(fromObject.secretArns).toEqual([SLACK_ARN, HOOK_ARN]); // sorted, each once
    expect([...parseRoutes(fromObject.json, { local: false }).keys()]).toEqual(['default', 'oncall']);
  });

  it('refuses secrets from environment variables: the deployed functions get none', () => {
    const e = refusal({ ...BASE, 'ackd:routes': { oncall: { slack: [{ url_env: 'SLACK_URL' }] } } });
    expect(e.setting).toBe('routes');
    expect(e.message).toContain('routes (context "ackd:routes" or env ACKD_DEPLOY_ROUTES) is invalid at oncall.slack[0].url_env: the deployed functions get no such variable; name a Secrets Manager secret with url_secret_arn');
    expect(refusal({ ...BASE, 'ackd:routes': { default: { webhooks: [{ url: 'https://h.acme-corp.io', secret_env: 'S' }] } } }).message).toContain('with secret_arn');
  });

  it('refuses what the functions would refuse, naming the field', () => {
    expect(refusal({ ...BASE, 'ackd:routes': '{' }).message).toContain('routes (context "ackd:routes" or env ACKD_DEPLOY_ROUTES) must be a JSON object');
    expect(refusal({ ...BASE, 'ackd:routes': { default: { webhooks: [{ url: 'http://h.acme-corp.io', secret_arn: HOOK_ARN }] } } }).message).toContain('is invalid at default.webhooks[0].url: must be an https URL');
    expect(refusal({ ...BASE, 'ackd:routes': { OnCall: { email: ['a@acme-corp.io'] } } }).message).toContain('is invalid at OnCall: route names are');
    expect(refusal({ ...BASE, 'ackd:routes': [] }).message).toContain('is invalid: must be a JSON object of route name to channels');
  });

  it('refuses routes too large for the functions\' environment', () => {
    const email = Array.from({ length: 50 }, (_, i) => `approver-${i}@acme-corp.io`);
    const e = refusal({ ...BASE, 'ackd:routes': { a: { email }, b: { email } } });
    expect(e.message).toMatch(new RegExp(`is \\d+ characters as JSON; at most ${ROUTES_MAX_CHARS} fit`));
  });
});

describe('stack with routes', () => {
  const cdkJson = JSON.parse(readFileSync(join(REPO, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
  const app = new App({ context: { ...cdkJson.context, 'aws:cdk:bundling-stacks': [], ...BASE, 'ackd:routes': JSON.stringify(ROUTES) } });
  const { stack } = buildApp(app);
  const t = Template.fromStack(stack).toJSON() as Json;
  const of = (type: string) => Object.entries(t.Resources as Json).filter(([, r]) => (r as Json).Type === type) as [string, Json][];
  const fnId = (f: unknown) => stack.resolve(stack.getLogicalId((f as { node: { defaultChild: never } }).node.defaultChild)) as string;
  const fns = { mcp: stack.api.mcpFunction, consent: stack.api.consentFunction, sweeper: stack.api.sweeperFunction, auditExport: stack.api.auditExportFunction };
  const env = (f: unknown) => (t.Resources[fnId(f)] as Json).Properties.Environment.Variables as Json;
  const secretGrants = (f: unknown) => {
    const role = (t.Resources[fnId(f)] as Json).Properties.Role['Fn::GetAtt'][0] as string;
    return of('AWS::IAM::Policy')
      .filter(([, p]) => (p.Properties.Roles as Json[]).some((r) => r.Ref === role))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Json[])
      .filter((s) => s.Sid === 'ReadNotificationSecrets');
  };

  it('passes ACKD_ROUTES to the function that notifies (the sweeper, where the sequencer announces requests), and to no other', () => {
    const withRoutes = Object.entries(fns).filter(([, f]) => env(f).ACKD_ROUTES !== undefined).map(([n]) => n);
    expect(withRoutes).toEqual(['sweeper']);
    expect(env(fns.sweeper).ACKD_ROUTES).toBe(JSON.stringify(ROUTES));
  });

  it('grants GetSecretValue on exactly the secrets the routes name, to that function only', () => {
    expect(secretGrants(fns.sweeper)).toEqual([{ Sid: 'ReadNotificationSecrets', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: [SLACK_ARN, HOOK_ARN] }]);
    for (const f of [fns.mcp, fns.consent, fns.auditExport]) expect(secretGrants(f)).toEqual([]);
  });

  it('passes cdk-nag AWS Solutions (the synth fails on any unacknowledged finding)', () => {
    expect(() => app.synth()).not.toThrow();
  });

  it('leaves the MCP function\'s egress at HTTPS 443 even with a webhook on another port (it sends no notification)', () => {
    const sg = (t.Resources[fnId(stack.api.mcpSecurityGroup)] as Json).Properties;
    const ports = (sg.SecurityGroupEgress as Json[]).map((e) => [e.FromPort, e.ToPort, e.CidrIp]);
    expect(ports).toEqual([[443, 443, '0.0.0.0/0']]);
  });
});
