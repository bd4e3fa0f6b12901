import { describe, expect, it } from 'vitest';
import { isAckdError } from '../../lambdas/core/errors.ts';
import { parseAgentId, parseRequestId, parseSvidId, parseTrustDomain, type SvidId } from '../../lambdas/core/ids.ts';
import { addMinutes, newRecord, type AuthorizationRecord } from '../../lambdas/core/request.ts';
import { LEGACY_QUORUM } from '../../lambdas/core/quorum.ts';
import { checkAwsRolePermissions, parseAwsRoles, sessionSeconds, type AwsRoleMap } from '../../lambdas/core/aws-roles.ts';
import { decideAwsCredentials, parseRevocationPolicyName, revocationPolicy, tagValue, type PresentedSvid } from '../../lambdas/core/aws-broker.ts';
import { MemoryOnceStore } from '../../lambdas/adapters/memory/once.ts';
import { ManualClock } from '../helpers/clock.ts';

const ARN = 'arn:aws:iam::123456789012:role/deploy-prod';

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (isAckdError(e)) return `${e.code}: ${e.message}`;
    throw e;
  }
  return 'no error';
}

describe('the role map', () => {
  it('reads name → ARN or {roleArn, maxSessionSeconds, sessionPolicy}', () => {
    const roles = parseAwsRoles(JSON.stringify({ 'deploy-prod': ARN, reader: { roleArn: 'arn:aws:iam::123456789012:role/team/reader', maxSessionSeconds: 900, sessionPolicy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: '*' }] } } }));
    expect(roles.get('deploy-prod')).toEqual({ name: 'deploy-prod', roleArn: ARN, maxSessionSeconds: 3600, sessionPolicy: null });
    expect(roles.get('reader')?.maxSessionSeconds).toBe(900);
    expect(JSON.parse(roles.get('reader')!.sessionPolicy!)).toHaveProperty('Statement');
    expect(parseAwsRoles(undefined).size).toBe(0);
  });

  it('refuses what STS or IAM would, naming the setting and the role', () => {
    expect(code(() => parseAwsRoles('{"x":"arn:aws:iam::1:role/x"}'))).toBe('ERR_CONFIG: ACKD_AWS_ROLES.x.roleArn: must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)');
    expect(code(() => parseAwsRoles({ 'bad,name': ARN }))).toMatch(/role name "bad,name" must be 1-64/);
    expect(code(() => parseAwsRoles({ x: { roleArn: ARN, maxSessionSeconds: 600 } }))).toMatch(/x\.maxSessionSeconds: must be an integer from 900 to 43200/);
    expect(code(() => parseAwsRoles({ x: { roleArn: ARN, sessionPolicy: { Statement: [{ Sid: 'a'.repeat(3000) }] } } }))).toMatch(/STS takes at most 2048/);
    expect(code(() => parseAwsRoles({ x: { roleArn: ARN, externalId: 'e' } }))).toMatch(/unknown key "externalId"/);
    expect(code(() => parseAwsRoles('not json', 'awsRoles'))).toMatch(/^ERR_CONFIG: awsRoles: must be a JSON object/);
  });

  it('at request time: unknown roles are refused by index, and an approval must last at least 15 minutes', () => {
    const roles = parseAwsRoles({ 'deploy-prod': ARN });
    expect(code(() => checkAwsRolePermissions({ permissions: ['db:write', 'aws:role/deploy-prod'], ttl_minutes: 15 }, roles))).toBe('no error');
    expect(code(() => checkAwsRolePermissions({ permissions: ['db:write'], ttl_minutes: 1 }, roles))).toBe('no error');
    expect(code(() => checkAwsRolePermissions({ permissions: ['db:write', 'aws:role/admin'], ttl_minutes: 30 }, roles))).toBe('ERR_INVALID_INPUT: permissions[1]: "aws:role/admin" names no AWS role this ackd may open (known roles: deploy-prod)');
    expect(code(() => checkAwsRolePermissions({ permissions: ['aws:role/*'], ttl_minutes: 30 }, roles))).toMatch(/permissions\[0\]/);
    expect(code(() => checkAwsRolePermissions({ permissions: ['aws:role/x'], ttl_minutes: 30 }, new Map()))).toMatch(/this ackd opens no AWS roles/);
    expect(code(() => checkAwsRolePermissions({ permissions: ['aws:role/deploy-prod'], ttl_minutes: 14 }, roles))).toMatch(/^ERR_INVALID_INPUT: ttl_minutes: must be at least 15/);
  });

  it('a session lasts the role maximum or what is left of the approval, never under 900 s', () => {
    const role = parseAwsRoles({ r: { roleArn: ARN, maxSessionSeconds: 1200 } }).get('r')!;
    expect(sessionSeconds(role, 3_600_000)).toBe(1200);
    expect(sessionSeconds(role, 1_000_999)).toBe(1000);
    expect(sessionSeconds(role, 900_000)).toBe(900);
    expect(code(() => sessionSeconds(role, 899_999))).toMatch(/^ERR_EXPIRED: only 899 s of the approval remain; AWS STS issues sessions of at least 900 s/);
  });
});

describe('the decision', () => {
  const td = parseTrustDomain('ackd.test');
  const agent = parseAgentId('deploy-bot');
  const T0 = new Date('2026-11-21T12:00:00.000Z');
  const roles: AwsRoleMap = parseAwsRoles({ 'deploy-prod': { roleArn: ARN, sessionPolicy: { Version: '2012-10-17', Statement: [{ Effect: 'Deny', Action: 'iam:*', Resource: '*' }] } }, other: 'arn:aws:iam::123456789012:role/other' });
  const rid = parseRequestId('req_0000000000aaaaaaaaaaaaaaaa');
  const svidId = parseSvidId('abc123') as SvidId;
  const base = newRecord({ agent_id: agent, action: 'terraform apply', permissions: ['aws:role/deploy-prod'], justification: 'j', ttl_minutes: 30 }, rid, td, T0, LEGACY_QUORUM);
  const issued: AuthorizationRecord = { ...base, decision: 'approved', decision_at: T0.toISOString(), approver_identity: 'operator:alice', svid_expires_at: addMinutes(T0.toISOString(), 30), svid_id: svidId, svid_not_after: addMinutes(T0.toISOString(), 30) };
  const presented: PresentedSvid = { agentId: agent, requestId: rid, svidId, notAfter: new Date(T0.getTime() + 30 * 60_000) };
  const at = (min: number) => new Date(T0.getTime() + min * 60_000);
  const decide = (over: Partial<AuthorizationRecord> = {}, o: { role?: string; presented?: Partial<PresentedSvid>; now?: Date } = {}) =>
    code(() => decideAwsCredentials({ presented: { ...presented, ...o.presented }, record: { ...issued, ...over }, role: o.role ?? 'deploy-prod', roles, now: o.now ?? at(1) }));

  it('an issued, unrevoked request with the permission gets the role, named and tagged, within the approval', () => {
    const p = decideAwsCredentials({ presented, record: issued, role: 'deploy-prod', roles, now: at(1) });
    expect(p).toEqual({
      roleArn: ARN,
      roleSessionName: rid,
      durationSeconds: 29 * 60,
      tags: [
        { Key: 'ackd_request_id', Value: rid },
        { Key: 'ackd_agent', Value: 'deploy-bot' },
        { Key: 'ackd_approver', Value: 'operator:alice' },
      ],
      transitiveTagKeys: ['ackd_request_id', 'ackd_agent', 'ackd_approver'],
      policy: roles.get('deploy-prod')!.sessionPolicy,
    });
    // The SVID's own notAfter bounds it too.
    expect(decideAwsCredentials({ presented: { ...presented, notAfter: at(20) }, record: issued, role: 'deploy-prod', roles, now: at(1) }).durationSeconds).toBe(19 * 60);
  });

  it('everything else is a coded refusal', () => {
    expect(decide({}, { presented: { agentId: parseAgentId('other-bot') } })).toMatch(/^ERR_FORBIDDEN: the SVID is for request .* of agent other-bot/);
    expect(decide({}, { presented: { requestId: parseRequestId('req_0000000000bbbbbbbbbbbbbbbb') } })).toMatch(/^ERR_FORBIDDEN/);
    expect(decide({}, { role: 'nope' })).toMatch(/^ERR_INVALID_INPUT: role: "nope"/);
    expect(decide({}, { role: 'other' })).toBe(`ERR_FORBIDDEN: request ${rid} was not approved for aws:role/other`);
    expect(decide({ ...base })).toMatch(/^ERR_NOT_APPROVED: .* still pending/);
    expect(decide({ ...base }, { now: at(31) })).toMatch(/^ERR_EXPIRED/);
    expect(decide({ decision: 'denied', svid_id: null })).toMatch(/^ERR_NOT_APPROVED: .* was denied/);
    expect(decide({ revoked: true, revoked_at: at(1).toISOString() })).toMatch(/^ERR_NOT_APPROVED: .* was revoked/);
    expect(decide({}, { now: at(30) })).toMatch(/^ERR_EXPIRED: request .* expired/);
    expect(decide({}, { now: at(16) })).toMatch(/^ERR_EXPIRED: only 840 s of the approval remain/);
    expect(decide({ svid_id: null, svid_not_after: null })).toMatch(/^ERR_NOT_ISSUED/);
    expect(decide({ svid_id: parseSvidId('ff') })).toMatch(/^ERR_SVID_MISMATCH/);
  });

  it('the revocation deny names the request by principal tag and carries when it may go', () => {
    const p = revocationPolicy(rid, 1_800_000_000);
    expect(p.name).toBe(`ackd-revoked-${rid}-1800000000`);
    expect(parseRevocationPolicyName(p.name)).toEqual({ requestId: rid, untilEpochSeconds: 1_800_000_000 });
    expect(parseRevocationPolicyName('demo-bucket-read-write')).toBeUndefined();
    expect(JSON.parse(p.document)).toEqual({
      Version: '2012-10-17',
      Statement: [{ Sid: 'AckdRevokedRequest', Effect: 'Deny', Action: '*', Resource: '*', Condition: { StringEquals: { 'aws:PrincipalTag/ackd_request_id': rid } } }],
    });
    expect(tagValue('sub 1:é@x<y>')).toBe('sub 1:é@x_y_');
  });

  it('a proof id is accepted once while it counts', async () => {
    const clock = new ManualClock(T0);
    const once = new MemoryOnceStore(clock);
    expect(await once.claim('k', at(1))).toBe(true);
    expect(await once.claim('k', at(1))).toBe(false);
    clock.advanceMinutes(2);
    expect(await once.claim('k', at(3))).toBe(true);
  });
});
