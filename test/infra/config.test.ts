/** lib/config.ts: the deploy configuration refuses missing and insecure values, naming the setting. */
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CONSENT_THROTTLE,
  DEFAULT_MCP_THROTTLE,
  DEFAULT_RESERVED_CONCURRENCY,
  DEFAULT_SPIRE_IMAGE,
  DeployConfigError,
  loadDeployConfig,
  type ConfigSource,
} from '../../lib/config.ts';
import { LIMIT_RANGES } from '../../lambdas/core/limits.ts';

const BASE = {
  'ackd:stage': 'prod',
  'ackd:trustDomain': 'agents.acme-corp.io',
  'ackd:approverEmails': 'alice@acme-corp.io, Bob@Acme-Corp.io',
  'ackd:sender': 'acme-corp.io',
};

function src(context: Record<string, unknown>, env: Record<string, string | undefined> = {}): ConfigSource {
  return { context: (k) => context[k], env };
}

function refusal(context: Record<string, unknown>, env: Record<string, string> = {}): DeployConfigError {
  try {
    loadDeployConfig(src(context, env));
  } catch (e) {
    expect(e).toBeInstanceOf(DeployConfigError);
    return e as DeployConfigError;
  }
  throw new Error('expected a refusal');
}

describe('loadDeployConfig', () => {
  it('parses a complete prod configuration with secure defaults', () => {
    const c = loadDeployConfig(src(BASE));
    expect(c).toMatchObject({
      stage: 'prod',
      production: true,
      trustDomain: 'agents.acme-corp.io',
      approverEmails: ['alice@acme-corp.io', 'bob@acme-corp.io'],
      senderIdentity: { kind: 'domain', value: 'acme-corp.io' },
      senderAddress: 'ackd@acme-corp.io',
      retentionDays: 365,
      natGateways: 2,
      spireServerImage: DEFAULT_SPIRE_IMAGE,
      approverRoutes: {},
    });
    expect(c.consentDomain).toBeUndefined();
    expect(c.auditKeyArn).toBeUndefined(); // the stack creates the checkpoint key
    expect(c.limits).toEqual({}); // the functions' default flood limits
  });

  it('takes an existing KMS key for audit checkpoints by ARN (single- or multi-Region key), from context or environment', () => {
    const arn = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const mrk = 'arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab';
    expect(loadDeployConfig(src({ ...BASE, 'ackd:auditKeyArn': arn })).auditKeyArn).toBe(arn);
    expect(loadDeployConfig(src(BASE, { ACKD_DEPLOY_AUDIT_KEY_ARN: ` ${mrk} ` })).auditKeyArn).toBe(mrk);
  });

  it('spireServers: 1 by default, 2 for HA, from context or environment', () => {
    expect(loadDeployConfig(src(BASE)).spireServers).toBe(1);
    expect(loadDeployConfig(src({ ...BASE, 'ackd:spireServers': 2 })).spireServers).toBe(2);
    expect(loadDeployConfig(src(BASE, { ACKD_DEPLOY_SPIRE_SERVERS: '2' })).spireServers).toBe(2);
  });

  it('takes existing KMS keys for decisions and receipts by ARN, from context or environment (default: the stack creates them)', () => {
    const arn = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const mrk = 'arn:aws:kms:eu-west-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab';
    expect(loadDeployConfig(src(BASE))).toMatchObject({ decisionKeyArn: undefined, receiptKeyArn: undefined });
    expect(loadDeployConfig(src({ ...BASE, 'ackd:decisionKeyArn': arn, 'ackd:receiptKeyArn': mrk }))).toMatchObject({ decisionKeyArn: arn, receiptKeyArn: mrk });
    expect(loadDeployConfig(src(BASE, { ACKD_DEPLOY_DECISION_KEY_ARN: arn, ACKD_DEPLOY_RECEIPT_KEY_ARN: ` ${mrk} ` }))).toMatchObject({ decisionKeyArn: arn, receiptKeyArn: mrk });
  });

  it('passkeyRequired: all, payload or none (default none); anything else stops the synth naming the setting', () => {
    expect(loadDeployConfig(src(BASE)).passkeyRequired).toBe('none');
    expect(loadDeployConfig(src({ ...BASE, 'ackd:passkeyRequired': 'payload' })).passkeyRequired).toBe('payload');
    expect(loadDeployConfig(src(BASE, { ACKD_DEPLOY_PASSKEY_REQUIRED: 'all' })).passkeyRequired).toBe('all');
    expect(() => loadDeployConfig(src({ ...BASE, 'ackd:passkeyRequired': 'always' }))).toThrow(/passkeyRequired.*must be all, payload or none \(got "always"\)/);
  });

  it('reads the environment when context is absent, and context wins over it', () => {
    const env = {
      ACKD_DEPLOY_STAGE: 'dev',
      ACKD_DEPLOY_TRUST_DOMAIN: 'dev.acme-corp.io',
      ACKD_DEPLOY_APPROVER_EMAILS: 'ops@acme-corp.io',
      ACKD_DEPLOY_SENDER: 'ackd@acme-corp.io',
      ACKD_DEPLOY_RETENTION_DAYS: '30',
    };
    const c = loadDeployConfig(src({}, env));
    expect(c).toMatchObject({ stage: 'dev', production: false, natGateways: 1, retentionDays: 30, senderIdentity: { kind: 'email', value: 'ackd@acme-corp.io' } });
    expect(loadDeployConfig(src({ 'ackd:stage': 'qa' }, env)).stage).toBe('qa');
  });

  it('accepts approver routes as JSON (env) or an object (cdk.json)', () => {
    const routes = { 'deploy-bot': ['sre@acme-corp.io'] };
    expect(loadDeployConfig(src({ ...BASE, 'ackd:approverRoutes': JSON.stringify(routes) })).approverRoutes).toEqual(routes);
    expect(loadDeployConfig(src({ ...BASE, 'ackd:approverRoutes': routes })).approverRoutes).toEqual(routes);
  });

  it('takes flood limits as JSON (-c, env) or an object (cdk.json): only the keys given, each within its range', () => {
    const limits = { requestsPerMinute: 120, openPending: 50, refusalsPerRequest: 0 };
    expect(loadDeployConfig(src({ ...BASE, 'ackd:limits': JSON.stringify(limits) })).limits).toEqual(limits);
    expect(loadDeployConfig(src({ ...BASE, 'ackd:limits': limits })).limits).toEqual(limits);
    expect(loadDeployConfig(src(BASE, { ACKD_DEPLOY_LIMITS: ' {"concurrentWaits": 5} ' })).limits).toEqual({ concurrentWaits: 5 });
    expect(loadDeployConfig(src({ ...BASE, 'ackd:limits': '{}' })).limits).toEqual({});
    // Context wins over the environment, as for every setting.
    expect(loadDeployConfig(src({ ...BASE, 'ackd:limits': '{"openPending":7}' }, { ACKD_DEPLOY_LIMITS: '{"openPending":8}' })).limits).toEqual({ openPending: 7 });
    // Both ends of every range are accepted.
    const mins = Object.fromEntries(Object.entries(LIMIT_RANGES).map(([k, [min]]) => [k, min]));
    const maxs = Object.fromEntries(Object.entries(LIMIT_RANGES).map(([k, [, max]]) => [k, max]));
    expect(loadDeployConfig(src({ ...BASE, 'ackd:limits': mins })).limits).toEqual(mins);
    expect(loadDeployConfig(src({ ...BASE, 'ackd:limits': JSON.stringify(maxs) })).limits).toEqual(maxs);
  });

  it.each([
    ['{"openPending":0}', /key "openPending" must be an integer from 1 to 1000 \(got 0\)/],
    ['{"requestsPerMinute":10001}', /key "requestsPerMinute" must be an integer from 1 to 10000/],
    ['{"mailWindowMinutes":1441}', /key "mailWindowMinutes" must be an integer from 1 to 1440/],
    ['{"refusalsPerRequest":-1}', /key "refusalsPerRequest" must be an integer from 0 to 1000/],
    ['{"concurrentWaits":2.5}', /key "concurrentWaits" must be an integer from 1 to 100 \(got 2.5\)/],
    ['{"concurrentWaits":"5"}', /key "concurrentWaits" must be an integer from 1 to 100 \(got "5"\)/],
    ['{"mailsPerApprover":null}', /key "mailsPerApprover" must be an integer from 1 to 1000 \(got null\)/],
    ['{"mailsPerApprover":true}', /key "mailsPerApprover" must be an integer/],
    ['{"maxRequests":5}', /unknown key "maxRequests" \(allowed: requestsPerMinute, openPending, concurrentWaits, mailsPerApprover, mailWindowMinutes, refusalsPerRequest, refusalsPerAgentPerHour, toolCallsPerMinute\)/],
    ['{"__proto__":{"openPending":5}}', /unknown key "__proto__"/],
    ['{"openPending":5', /must be a JSON object/],
    ['[5]', /must be a JSON object/],
    ['30', /must be a JSON object/],
  ])('refuses the limits %s with a message naming the key and its range', (limits, rule) => {
    for (const e of [refusal({ ...BASE, 'ackd:limits': limits }), refusal(BASE, { ACKD_DEPLOY_LIMITS: limits })]) {
      expect(e.setting).toBe('limits');
      expect(e.message).toMatch(rule);
      expect(e.message).toContain('ackd:limits');
      expect(e.message).toContain('ACKD_DEPLOY_LIMITS');
    }
  });

  it('separate API throttles for agents (MCP) and approvers (consent), and reserved concurrency, with defaults', () => {
    const c = loadDeployConfig(src(BASE));
    expect(c.mcpThrottle).toEqual(DEFAULT_MCP_THROTTLE);
    expect(c.consentThrottle).toEqual(DEFAULT_CONSENT_THROTTLE);
    expect(c.reservedConcurrency).toEqual(DEFAULT_RESERVED_CONCURRENCY);
    const set = loadDeployConfig(
      src(
        { ...BASE, 'ackd:mcpThrottle': { rateLimit: 10 }, 'ackd:reservedConcurrency': '{"mcp":1,"consent":10000}' },
        { ACKD_DEPLOY_CONSENT_THROTTLE: ' {"rateLimit":5,"burstLimit":5000} ', ACKD_DEPLOY_MCP_THROTTLE: '{"rateLimit":99}' },
      ),
    );
    expect(set.mcpThrottle).toEqual({ rateLimit: 10, burstLimit: DEFAULT_MCP_THROTTLE.burstLimit }); // context wins; burst keeps its default
    expect(set.consentThrottle).toEqual({ rateLimit: 5, burstLimit: 5000 });
    expect(set.reservedConcurrency).toEqual({ ...DEFAULT_RESERVED_CONCURRENCY, mcp: 1, consent: 10000 });
  });

  it.each([
    ['mcpThrottle', '{"rateLimit":10001}', /key "rateLimit" must be an integer from 1 to 10000/],
    ['mcpThrottle', '{"burstLimit":0}', /key "burstLimit" must be an integer from 1 to 5000 \(got 0\)/],
    ['consentThrottle', '{"rateLimit":null}', /key "rateLimit" must be an integer from 1 to 10000 \(got null\)/],
    ['consentThrottle', '{"burst":1}', /unknown key "burst" \(allowed: rateLimit, burstLimit\)/],
    ['consentThrottle', '"fast"', /must be a JSON object \{"rateLimit"/],
    ['reservedConcurrency', '{"auditExport":1.5}', /key "auditExport" must be an integer from 1 to 10000 \(got 1.5\)/],
    ['reservedConcurrency', '{"sweeper":1}', /may not set "sweeper": its reserved concurrency is always 1/],
    ['reservedConcurrency', '{"__proto__":{"mcp":5}}', /unknown key "__proto__"/],
  ])('refuses %s = %s naming the setting', (setting, value, rule) => {
    const e = refusal({ ...BASE, [`ackd:${setting}`]: value });
    expect(e.setting).toBe(setting);
    expect(e.message).toMatch(rule);
    expect(e.message).toContain(`ackd:${setting}`);
    expect(e.message).toContain('README.md');
  });

  it.each([
    [{ 'ackd:stage': undefined }, 'stage', /is required/],
    [{ 'ackd:stage': 'local' }, 'stage', /may not be "local"/],
    [{ 'ackd:stage': 'Prod!' }, 'stage', /lowercase/],
    [{ 'ackd:trustDomain': undefined }, 'trustDomain', /is required/],
    [{ 'ackd:trustDomain': 'Agents.Example' }, 'trustDomain', /SPIFFE trust domain/],
    [{ 'ackd:trustDomain': 'example.org' }, 'trustDomain', /placeholder/],
    [{ 'ackd:trustDomain': 'ackd.local' }, 'trustDomain', /placeholder/],
    [{ 'ackd:approverEmails': undefined }, 'approverEmails', /is required/],
    [{ 'ackd:approverEmails': ' , ' }, 'approverEmails', /at least one/],
    [{ 'ackd:approverEmails': 'alice@acme-corp.io,not-an-email' }, 'approverEmails', /invalid email/],
    [{ 'ackd:approverRoutes': '{not json' }, 'approverRoutes', /JSON object/],
    [{ 'ackd:approverRoutes': '{"../x":["a@acme-corp.io"]}' }, 'approverRoutes', /invalid agent_id/],
    [{ 'ackd:approverRoutes': '{"bot":[]}' }, 'approverRoutes', /at least one/],
    [{ 'ackd:sender': undefined }, 'sender', /is required/],
    [{ 'ackd:sender': 'ackd@example.com' }, 'sender', /placeholder/],
    [{ 'ackd:sender': 'not a domain' }, 'sender', /neither an email address nor a domain/],
    [{ 'ackd:retentionDays': '0' }, 'retentionDays', /1 to 3650/],
    [{ 'ackd:retentionDays': '1.5' }, 'retentionDays', /integer/],
    [{ 'ackd:retentionDays': '99999' }, 'retentionDays', /1 to 3650/],
    [{ 'ackd:cognitoDomainPrefix': 'my-cognito-login' }, 'cognitoDomainPrefix', /may not contain/],
    [{ 'ackd:consentDomainName': 'approve.acme-corp.io' }, 'consentCertificateArn', /is required/],
    [{ 'ackd:consentCertificateArn': 'arn:aws:acm:us-east-1:123456789012:certificate/abc' }, 'consentDomainName', /is required/],
    [
      { 'ackd:consentDomainName': 'approve.acme-corp.io', 'ackd:consentCertificateArn': 'arn:aws:acm:eu-west-1:123456789012:certificate/abc' },
      'consentCertificateArn',
      /us-east-1/,
    ],
    [{ 'ackd:natGateways': '0' }, 'natGateways', /1 to 3/],
    [{ 'ackd:spireServers': '3' }, 'spireServers', /1 to 2/],
    [{ 'ackd:spireServers': 'ha' }, 'spireServers', /1 to 2/],
    [{ 'ackd:spireServerImage': 'ghcr.io/spiffe/spire-server:latest' }, 'spireServerImage', /pinned/],
    [{ 'ackd:auditKeyArn': 'arn:aws:kms:eu-west-1:123456789012:alias/ackd-audit' }, 'auditKeyArn', /not an alias/],
    [{ 'ackd:auditKeyArn': '1234abcd-12ab-34cd-56ef-1234567890ab' }, 'auditKeyArn', /KMS key ARN/],
    [{ 'ackd:auditKeyArn': 'arn:aws:kms:eu-west-1:123456789012:key/not-a-key-id' }, 'auditKeyArn', /KMS key ARN/],
    [{ 'ackd:decisionKeyArn': 'arn:aws:kms:eu-west-1:123456789012:alias/ackd-decisions' }, 'decisionKeyArn', /not an alias/],
    [{ 'ackd:receiptKeyArn': 'receipts' }, 'receiptKeyArn', /KMS key ARN/],
    [
      { 'ackd:decisionKeyArn': 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab', 'ackd:receiptKeyArn': 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab' },
      'receiptKeyArn',
      /same key as decisionKeyArn/,
    ],
    [
      { 'ackd:auditKeyArn': 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab', 'ackd:decisionKeyArn': 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab' },
      'decisionKeyArn',
      /same key as auditKeyArn/,
    ],
  ])('refuses %j naming %s', (override, setting, rule) => {
    const ctx: Record<string, unknown> = { ...BASE, ...override };
    const e = refusal(ctx);
    expect(e.setting).toBe(setting);
    expect(e.message).toMatch(rule);
    expect(e.message).toContain(`ackd:${setting}`);
    expect(e.message).toContain('README.md');
  });

  it('accepts placeholder trust domains outside prod (for a throwaway dev stage) but never an unsendable sender', () => {
    expect(loadDeployConfig(src({ ...BASE, 'ackd:stage': 'dev', 'ackd:trustDomain': 'ackd.test' })).trustDomain).toBe('ackd.test');
    expect(refusal({ ...BASE, 'ackd:stage': 'dev', 'ackd:sender': 'ackd@mail.test' }).setting).toBe('sender');
  });

  it('takes a custom consent domain with an ACM certificate in us-east-1', () => {
    const c = loadDeployConfig(
      src({ ...BASE, 'ackd:consentDomainName': 'approve.acme-corp.io', 'ackd:consentCertificateArn': 'arn:aws:acm:us-east-1:123456789012:certificate/0a1b-2c3d' }),
    );
    expect(c.consentDomain).toEqual({ name: 'approve.acme-corp.io', certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/0a1b-2c3d' });
  });
});
