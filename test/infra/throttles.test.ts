/**
 * Issue 15, "one agent can lock approvers out": the MCP routes and the consent API have separate
 * API Gateway throttles, and every function has its own reserved concurrency, all deploy settings
 * (lib/config.ts) that the stack (lib/constructs/api.ts) puts into the template. Built as
 * routes.test.ts and stack.test.ts build it (buildApp with cdk.json's context), without bundling
 * (`aws:cdk:bundling-stacks`: none): only the template is read.
 */
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../bin/cdk.ts';
import { CONSENT_ROUTE_KEY, MCP_ROUTE_KEY } from '../../lib/constructs/api.ts';
import {
  DEFAULT_CONSENT_THROTTLE,
  DEFAULT_MCP_THROTTLE,
  DEFAULT_RESERVED_CONCURRENCY,
  DeployConfigError,
  SWEEPER_RESERVED_CONCURRENCY,
} from '../../lib/config.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const REPO = join(import.meta.dirname, '..', '..');
const cdkJson = JSON.parse(readFileSync(join(REPO, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
const BASE = {
  'ackd:stage': 'ci',
  'ackd:trustDomain': 'agents.acme-corp.io',
  'ackd:approverEmails': 'alice@acme-corp.io',
  'ackd:sender': 'acme-corp.io',
};

function synth(context: Record<string, unknown> = {}) {
  const app = new App({ context: { ...cdkJson.context, 'aws:cdk:bundling-stacks': [], ...BASE, ...context } });
  const { stack } = buildApp(app);
  const t = Template.fromStack(stack).toJSON() as Json;
  const of = (type: string) => Object.entries(t.Resources as Json).filter(([, r]) => (r as Json).Type === type) as [string, Json][];
  const fnId = (f: unknown) => stack.resolve(stack.getLogicalId((f as { node: { defaultChild: never } }).node.defaultChild)) as string;
  const fns = { mcp: stack.api.mcpFunction, consent: stack.api.consentFunction, sweeper: stack.api.sweeperFunction, auditExport: stack.api.auditExportFunction };
  const reserved = Object.fromEntries(Object.entries(fns).map(([n, f]) => [n, (t.Resources[fnId(f)] as Json).Properties.ReservedConcurrentExecutions]));
  const stages = of('AWS::ApiGatewayV2::Stage');
  expect(stages).toHaveLength(1);
  return { app, t, of, reserved, stage: stages[0]![1].Properties as Json };
}

const throttle = (rate: number, burst: number) => ({ ThrottlingRateLimit: rate, ThrottlingBurstLimit: burst });

describe('defaults', () => {
  const { app, of, reserved, stage } = synth();

  it('the MCP routes and the consent API route each have their own throttle', () => {
    const routeKeys = of('AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties.RouteKey).sort();
    expect(routeKeys).toEqual([MCP_ROUTE_KEY, CONSENT_ROUTE_KEY].sort()); // a throttle for every route there is
    expect(stage.RouteSettings).toEqual({
      [MCP_ROUTE_KEY]: throttle(DEFAULT_MCP_THROTTLE.rateLimit, DEFAULT_MCP_THROTTLE.burstLimit),
      [CONSENT_ROUTE_KEY]: throttle(DEFAULT_CONSENT_THROTTLE.rateLimit, DEFAULT_CONSENT_THROTTLE.burstLimit),
    });
    expect(stage.DefaultRouteSettings).toMatchObject(throttle(50, 100)); // any other route: the MCP throttle
    expect(DEFAULT_MCP_THROTTLE).toEqual({ rateLimit: 50, burstLimit: 100 });
    expect(DEFAULT_CONSENT_THROTTLE).toEqual({ rateLimit: 20, burstLimit: 40 });
  });

  it('every function has its reserved concurrency; the sweeper exactly 1', () => {
    expect(reserved).toEqual({ mcp: 200, consent: 20, auditExport: 5, sweeper: 1 });
    // awsCredentials: the AWS credential broker's function, only with awsRoles (test/infra/aws-broker.test.ts).
    expect(DEFAULT_RESERVED_CONCURRENCY).toEqual({ mcp: 200, consent: 20, auditExport: 5, awsCredentials: 10 });
    expect(SWEEPER_RESERVED_CONCURRENCY).toBe(1);
    // Lambda keeps 100 of the account's executions unreserved: the defaults fit the default quota of 1,000.
    expect(Object.values(reserved).reduce((a, b) => a + b, 0) + 100).toBeLessThanOrEqual(1000);
  });

  it('passes cdk-nag AWS Solutions (the synth fails on any unacknowledged finding)', () => {
    expect(() => app.synth()).not.toThrow();
  });
});

describe('configured', () => {
  it('puts the configured throttles and reserved concurrency into the template (JSON from -c or env, objects from cdk.json)', () => {
    const { app, reserved, stage } = synth({
      'ackd:mcpThrottle': '{"rateLimit":300,"burstLimit":600}',
      'ackd:consentThrottle': { burstLimit: 15 }, // rateLimit keeps its default
      'ackd:reservedConcurrency': '{"mcp":400,"consent":50}',
    });
    expect(stage.RouteSettings).toEqual({ [MCP_ROUTE_KEY]: throttle(300, 600), [CONSENT_ROUTE_KEY]: throttle(20, 15) });
    expect(stage.DefaultRouteSettings).toMatchObject(throttle(300, 600));
    expect(reserved).toEqual({ mcp: 400, consent: 50, auditExport: 5, sweeper: 1 });
    expect(() => app.synth()).not.toThrow();
  });

  it('reads the environment when context is absent', () => {
    const saved = { ...process.env };
    process.env.ACKD_DEPLOY_CONSENT_THROTTLE = '{"rateLimit":7,"burstLimit":9}';
    process.env.ACKD_DEPLOY_RESERVED_CONCURRENCY = '{"auditExport":2}';
    try {
      const { reserved, stage } = synth();
      expect(stage.RouteSettings[CONSENT_ROUTE_KEY]).toEqual(throttle(7, 9));
      expect(reserved.auditExport).toBe(2);
    } finally {
      delete process.env.ACKD_DEPLOY_CONSENT_THROTTLE;
      delete process.env.ACKD_DEPLOY_RESERVED_CONCURRENCY;
      Object.assign(process.env, saved);
    }
  });
});

describe('bad settings are refused before anything is built, naming the setting', () => {
  it.each([
    ['mcpThrottle', '{"rateLimit":0}', /key "rateLimit" must be an integer from 1 to 10000 \(got 0\)/],
    ['mcpThrottle', '{"burstLimit":5001}', /key "burstLimit" must be an integer from 1 to 5000/],
    ['mcpThrottle', '{"rate":10}', /unknown key "rate" \(allowed: rateLimit, burstLimit\)/],
    ['consentThrottle', '{"rateLimit":2.5}', /key "rateLimit" must be an integer from 1 to 10000 \(got 2.5\)/],
    ['consentThrottle', '{"rateLimit":"20"}', /key "rateLimit" must be an integer .*\(got "20"\)/],
    ['consentThrottle', '[20,40]', /must be a JSON object \{"rateLimit"/],
    ['consentThrottle', '{not json', /must be a JSON object \{"rateLimit"/],
    ['reservedConcurrency', '{"mcp":0}', /key "mcp" must be an integer from 1 to 10000 \(got 0\)/],
    ['reservedConcurrency', '{"consent":-5}', /key "consent" must be an integer from 1 to 10000/],
    ['reservedConcurrency', '{"sweeper":2}', /may not set "sweeper": its reserved concurrency is always 1/],
    ['reservedConcurrency', '{"spire":2}', /unknown key "spire" \(allowed: mcp, consent, auditExport, awsCredentials\)/],
    ['reservedConcurrency', '5', /must be a JSON object with any of the keys mcp, consent, auditExport, awsCredentials/],
  ])('%s = %s', (setting, value, rule) => {
    let error: unknown;
    try {
      synth({ [`ackd:${setting}`]: value });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DeployConfigError);
    const e = error as DeployConfigError;
    expect(e.setting).toBe(setting);
    expect(e.message).toMatch(rule);
    expect(e.message).toContain(`ackd:${setting}`);
    expect(e.message).toMatch(/env ACKD_DEPLOY_(MCP_THROTTLE|CONSENT_THROTTLE|RESERVED_CONCURRENCY)/);
  });
});
