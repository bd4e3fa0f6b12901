import { describe, expect, it } from 'vitest';
import { csvField } from '../../lambdas/core/audit/format.ts';
import { AckdError, exposeError } from '../../lambdas/core/errors.ts';
import { newRequestId, parseAgentId, parseRequestId, parseTrustDomain, SpiffeId, svidIdFromSerial } from '../../lambdas/core/ids.ts';
import type { AuthorizationRecord } from '../../lambdas/core/request.ts';
import { statusAt } from '../../lambdas/core/lifecycle.ts';
import { loadConfig } from '../../lambdas/config.ts';
import { pendingRecord } from '../helpers/consent-fixtures.ts';

describe('ids', () => {
  it('agent ids follow the SPIFFE path segment rules', () => {
    expect(parseAgentId('deploy-agent_1.x')).toBe('deploy-agent_1.x');
    for (const bad of ['', '.', '..', 'a/b', 'agént', 'a b', 'a'.repeat(65), 42]) {
      expect(() => parseAgentId(bad)).toThrow(AckdError);
    }
  });

  it('request ids are path-safe, unique and time-ordered', () => {
    const a = newRequestId(Date.parse('2026-01-01T00:00:00Z'));
    const b = newRequestId(Date.parse('2026-01-01T00:00:01Z'));
    expect(parseRequestId(a)).toBe(a);
    expect(a < b).toBe(true);
    const many = new Set(Array.from({ length: 1000 }, () => newRequestId(0)));
    expect(many.size).toBe(1000);
    expect(() => parseRequestId('req_../../x')).toThrow(/request_id/);
  });

  it('SPIFFE ids round-trip and refuse anything else', () => {
    const id = SpiffeId.forRequest(parseTrustDomain('dev.ackd.io'), parseAgentId('deploy-agent'), parseRequestId('req_0000000000abcdefghjkmnpqrs'));
    expect(id.toString()).toBe('spiffe://dev.ackd.io/agent/deploy-agent/req_0000000000abcdefghjkmnpqrs');
    expect(SpiffeId.parse(id.toString()).requestId).toBe('req_0000000000abcdefghjkmnpqrs');
    for (const bad of ['https://dev.ackd.io/agent/a/req_0000000000abcdefghjkmnpqrs', 'spiffe://dev.ackd.io/agent/a', 'spiffe://DEV/agent/a/req_0000000000abcdefghjkmnpqrs', 'spiffe://td/agent/../req_0000000000abcdefghjkmnpqrs']) {
      expect(() => SpiffeId.parse(bad)).toThrow(AckdError);
    }
  });

  it('svid ids are lowercase hex serials without leading zeros', () => {
    expect(svidIdFromSerial('00AB12')).toBe('ab12');
    expect(() => svidIdFromSerial('xyz')).toThrow(/svid_id/);
  });
});

describe('statusAt', () => {
  const rec = (over: Partial<AuthorizationRecord>): AuthorizationRecord => pendingRecord({ ttl_minutes: 10, ...over }, new Date('2026-01-01T00:00:00.000Z'));

  it('pending until the deadline, expired from it', () => {
    expect(statusAt(rec({}), new Date('2026-01-01T00:09:59.999Z')).status).toBe('pending');
    expect(statusAt(rec({}), new Date('2026-01-01T00:10:00.000Z')).status).toBe('expired');
  });
  it('approved until the SVID lifetime ends; revoked wins', () => {
    const approved = rec({ decision: 'approved', decision_at: '2026-01-01T00:05:00.000Z', svid_expires_at: '2026-01-01T00:15:00.000Z' });
    expect(statusAt(approved, new Date('2026-01-01T00:14:00Z'))).toMatchObject({ status: 'approved', issued: false });
    expect(statusAt(approved, new Date('2026-01-01T00:15:00Z')).status).toBe('expired');
    expect(statusAt({ ...approved, revoked: true, revoked_at: '2026-01-01T00:06:00.000Z' }, new Date('2026-01-01T00:07:00Z'))).toEqual({ status: 'revoked', revoked_at: '2026-01-01T00:06:00.000Z' });
  });
  it('audit CSV neutralises spreadsheet formulas and quotes separators', () => {
    expect(csvField('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
    expect(csvField('a,b\nc')).toBe('"a,b\nc"');
    expect(csvField(['read', 'write'])).toBe('"[""read"",""write""]"');
    expect(csvField(null)).toBe('');
  });
});

describe('errors and config', () => {
  it('unknown errors are exposed as internal error, with the cause logged only', () => {
    const logged: unknown[] = [];
    const e = exposeError(new Error('db password is hunter2'), (m, d) => logged.push([m, d]));
    expect(e.code).toBe('ERR_INTERNAL');
    expect(e.message).toBe('internal error');
    expect(JSON.stringify(logged)).toContain('hunter2');
  });
  it('config refuses insecure or missing values outside local mode', () => {
    expect(() => loadConfig({ ACKD_STAGE: 'prod' })).toThrow(/ACKD_TRUST_DOMAIN: is required/);
    expect(() => loadConfig({ ACKD_STAGE: 'prod', ACKD_TRUST_DOMAIN: 'ackd.example', ACKD_TABLE_NAME: 't', ACKD_CONSENT_URL: 'http://x.example' })).toThrow(/ACKD_CONSENT_URL: must be an https URL/);
    expect(() => loadConfig({ ACKD_STAGE: 'prod', ACKD_TRUST_DOMAIN: 'ackd.example', ACKD_TABLE_NAME: 't', ACKD_CONSENT_URL: 'https://x.example', ACKD_DYNAMODB_ENDPOINT: 'http://127.0.0.1:1' })).toThrow(/local mode only/);
    expect(() => loadConfig({ ACKD_RETENTION_DAYS: '0' })).toThrow(/ACKD_RETENTION_DAYS/);
    const prod = { ACKD_STAGE: 'prod', ACKD_TRUST_DOMAIN: 'ackd.example', ACKD_TABLE_NAME: 't', ACKD_CONSENT_URL: 'https://x.example' };
    expect(() => loadConfig({ ...prod, ACKD_AUDIT_KEY: '/tmp/key.pem' })).toThrow(/ACKD_AUDIT_KEY: must be kms:/);
    expect(loadConfig({ ...prod, ACKD_AUDIT_KEY: 'kms:arn:aws:kms:eu-west-1:123456789012:key/abc' }).auditKey).toBe('kms:arn:aws:kms:eu-west-1:123456789012:key/abc');
    expect(loadConfig({}).local).toBe(true);
  });
});
