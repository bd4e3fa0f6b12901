import { createHash } from 'node:crypto';
import { AckdError } from './errors.ts';
import type { AgentId, RequestId, SvidId } from './ids.ts';
import { statusAt, svidEnd } from './lifecycle.ts';
import type { AuthorizationRecord } from './request.ts';
import type { Clock, Logger, RequestStore } from './ports.ts';
import { auditEvent } from './audit/event.ts';
import { awsRolePermission, awsRolesAsked, sessionSeconds, type AwsRole, type AwsRoleMap } from './aws-roles.ts';

/**
 * The AWS credential broker: an approved, unrevoked request whose permissions name
 * `aws:role/<name>` gets STS credentials for exactly that role, for no longer than the approval,
 * tagged with the request, the agent and the approver; revoking the request denies its sessions
 * on AWS. Pure of AWS and HTTP: STS, IAM and the replay store are ports; the caller has already
 * verified the SVID and its proof of possession (lambdas/http/svid-pop.ts).
 */

/** The session tags every session carries (transitive: they follow role chaining). */
export const SESSION_TAGS = { requestId: 'ackd_request_id', agent: 'ackd_agent', approver: 'ackd_approver' } as const;
export const SESSION_TAG_KEYS = Object.values(SESSION_TAGS);

/** What the verified SVID says about its holder. */
export interface PresentedSvid {
  readonly agentId: AgentId;
  readonly requestId: RequestId;
  readonly svidId: SvidId;
  /** The leaf certificate's notAfter. */
  readonly notAfter: Date;
}

export interface SessionTag {
  readonly Key: string;
  readonly Value: string;
}

/** One STS AssumeRole call, as the decision makes it. */
export interface AssumeRoleParams {
  readonly roleArn: string;
  /** The request id: it names the session in every CloudTrail event (assumed-role/<role>/<request id>). */
  readonly roleSessionName: string;
  readonly durationSeconds: number;
  readonly tags: readonly SessionTag[];
  readonly transitiveTagKeys: readonly string[];
  /** The role's session policy, or null. */
  readonly policy: string | null;
}

/** What STS hands back, and what the agent gets once. */
export interface AwsSessionCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: Date;
  /** `AROA…:<session name>`: how CloudTrail names the session. */
  readonly assumedRoleId: string;
  readonly assumedRoleArn: string;
}

/** Session tag values: at most 256 of letters, digits, spaces and `_ . : / = + - @` (STS's rule); anything else becomes `_`. */
export function tagValue(s: string): string {
  return s.replace(/[^\p{L}\p{Z}\p{N}_.:/=+\-@]/gu, '_').slice(0, 256);
}

/**
 * The pure decision: may the holder of `presented` have credentials for `role` under `record` at
 * `now`? Returns the AssumeRole call to make, or throws the coded refusal:
 * - ERR_FORBIDDEN: the SVID is not this request's (another request or agent), or the request was
 *   not approved for `aws:role/<role>`;
 * - ERR_INVALID_INPUT: no such role in the map;
 * - ERR_NOT_APPROVED: pending, denied or revoked; ERR_EXPIRED: expired, or less than STS's
 *   900-second minimum of the approval left; ERR_SVID_MISMATCH: not the SVID issued for it.
 */
export function decideAwsCredentials(i: { readonly presented: PresentedSvid; readonly record: AuthorizationRecord; readonly role: string; readonly roles: AwsRoleMap; readonly now: Date }): AssumeRoleParams {
  const { presented, record: r, now } = i;
  if (presented.requestId !== r.request_id || presented.agentId !== r.agent_id) {
    throw new AckdError('ERR_FORBIDDEN', `the SVID is for request ${presented.requestId} of agent ${presented.agentId}, not request ${r.request_id}`);
  }
  const role = i.roles.get(i.role);
  if (!role) throw new AckdError('ERR_INVALID_INPUT', `role: ${JSON.stringify(i.role)} is not an AWS role this ackd may open`, { field: 'role' });
  if (!r.permissions.includes(awsRolePermission(role.name))) {
    throw new AckdError('ERR_FORBIDDEN', `request ${r.request_id} was not approved for ${awsRolePermission(role.name)}`);
  }
  const s = statusAt(r, now);
  switch (s.status) {
    case 'pending':
      throw new AckdError('ERR_NOT_APPROVED', `request ${r.request_id} is still pending`);
    case 'denied':
      throw new AckdError('ERR_NOT_APPROVED', `request ${r.request_id} was denied`);
    case 'revoked':
      throw new AckdError('ERR_NOT_APPROVED', `request ${r.request_id} was revoked at ${s.revoked_at}`);
    case 'expired':
      throw new AckdError('ERR_EXPIRED', `request ${r.request_id} expired at ${s.expired_at}`);
    case 'approved':
      break;
  }
  if (r.svid_id === null) throw new AckdError('ERR_NOT_ISSUED', `no SVID has been issued for request ${r.request_id}`);
  if (r.svid_id !== presented.svidId) throw new AckdError('ERR_SVID_MISMATCH', `the SVID ${presented.svidId} is not the one issued for request ${r.request_id}`);
  const end = Math.min(Date.parse(svidEnd(r)), presented.notAfter.getTime());
  return {
    roleArn: role.roleArn,
    roleSessionName: r.request_id,
    durationSeconds: sessionSeconds(role, end - now.getTime()),
    tags: [
      { Key: SESSION_TAGS.requestId, Value: r.request_id },
      { Key: SESSION_TAGS.agent, Value: tagValue(r.agent_id) },
      { Key: SESSION_TAGS.approver, Value: tagValue(r.approver_identity ?? 'unknown') },
    ],
    transitiveTagKeys: SESSION_TAG_KEYS,
    policy: role.sessionPolicy,
  };
}

// ---- revocation on AWS ----

/** How long a deny outlives the request's last possible session: clock skew between ackd and AWS, and IAM's propagation. */
export const DENY_MARGIN_SECONDS = 300;
const DENY_PREFIX = 'ackd-revoked-';
/** How far back the sweep looks for revoked requests: longer than any approval (60 minutes) and its sessions. */
const RECONCILE_HOURS = 3;

/**
 * The inline policy that revokes a request's sessions on one role: Deny everything to a principal
 * whose session tag `ackd_request_id` is the request. Named `ackd-revoked-<request id>-<until>`,
 * `until` the Unix second after which no session of the request can exist (the sweep removes it
 * then). The role's other sessions are untouched.
 */
export function revocationPolicy(requestId: RequestId, untilEpochSeconds: number): { readonly name: string; readonly document: string } {
  return {
    name: `${DENY_PREFIX}${requestId}-${untilEpochSeconds}`,
    document: JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'AckdRevokedRequest',
          Effect: 'Deny',
          Action: '*',
          Resource: '*',
          Condition: { StringEquals: { [`aws:PrincipalTag/${SESSION_TAGS.requestId}`]: requestId } },
        },
      ],
    }),
  };
}

/** Reads a policy name `revocationPolicy` made; undefined for any other name. */
export function parseRevocationPolicyName(name: string): { readonly requestId: string; readonly untilEpochSeconds: number } | undefined {
  const m = /^ackd-revoked-(req_[0-9a-z]{26})-(\d{1,12})$/.exec(name);
  return m ? { requestId: m[1]!, untilEpochSeconds: Number(m[2]) } : undefined;
}

// ---- ports ----

/** STS AssumeRole. Throws AckdError (the adapter maps AWS failures). */
export interface RoleAssumer {
  assumeRole(p: AssumeRoleParams): Promise<AwsSessionCredentials>;
}

/** Inline deny policies on roles (IAM PutRolePolicy / ListRolePolicies / DeleteRolePolicy). */
export interface RoleDenies {
  put(roleArn: string, policy: { readonly name: string; readonly document: string }): Promise<void>;
  list(roleArn: string): Promise<readonly string[]>;
  remove(roleArn: string, name: string): Promise<void>;
}

/** Keys that may be used once: `claim` is true the first time a key is claimed (until `expiresAt`), false after. */
export interface OnceStore {
  claim(key: string, expiresAt: Date): Promise<boolean>;
}

export interface AwsBrokerDeps {
  readonly roles: AwsRoleMap;
  readonly sts: RoleAssumer;
  readonly denies: RoleDenies;
  readonly once: OnceStore;
  readonly store: Pick<RequestStore, 'get' | 'apply' | 'listRecentlyDecided'>;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** A verified call to the broker: the SVID, the proof's single-use id and the role asked for. */
export interface BrokerCall {
  readonly presented: PresentedSvid;
  readonly role: string;
  /** The proof's `jti`; refused when seen before. */
  readonly jti: string;
  /** Until when the proof could be accepted (its iat + the freshness window): the jti is kept that long. */
  readonly replayUntil: Date;
}

export class AwsCredentialBroker {
  constructor(private readonly deps: AwsBrokerDeps) {}

  get roles(): AwsRoleMap {
    return this.deps.roles;
  }

  /**
   * Issues credentials for one verified call, once: refuses a replayed proof (ERR_FORBIDDEN),
   * then decides on the request as stored now, assumes the role, and records an
   * `aws_credentials_issued` event in the same conditional write that proves the request is still
   * issued and unrevoked; the credentials leave only once that write (and so the event) is stored. A
   * revocation that lands between the STS call and the event refuses the call (the credentials are
   * dropped; the revocation's deny covers them).
   */
  async issue(call: BrokerCall): Promise<AwsSessionCredentials> {
    const { presented } = call;
    const key = `jti#${createHash('sha256').update(`${presented.svidId}\n${call.jti}`).digest('hex')}`;
    if (!(await this.deps.once.claim(key, call.replayUntil))) {
      throw new AckdError('ERR_FORBIDDEN', 'this proof was used before: sign a new one (fresh jti) for every call');
    }
    const record = await this.deps.store.get(presented.requestId);
    if (!record) throw new AckdError('ERR_NOT_FOUND', `request_id: no request ${presented.requestId}`, { field: 'request_id' });
    const now = this.deps.clock.now();
    const params = decideAwsCredentials({ presented, record, role: call.role, roles: this.deps.roles, now });
    const creds = await this.deps.sts.assumeRole(params);
    const reason = `role ${call.role} (${params.roleArn}) until ${creds.expiration.toISOString()} (${params.durationSeconds} s); session ${creds.assumedRoleId}, access key ${creds.accessKeyId}`;
    await this.deps.store.apply('issueAwsCredentials', record.request_id, { now: now.toISOString(), svidId: presented.svidId }, auditEvent('aws_credentials_issued', { type: 'agent', id: record.agent_id }, now, reason));
    this.deps.logger.info('aws credentials issued', { request_id: record.request_id, agent_id: record.agent_id, role: call.role, role_arn: params.roleArn, duration_seconds: params.durationSeconds, access_key_id: creds.accessKeyId });
    return creds;
  }

  /**
   * After a request is revoked (by its agent, an approver or an operator): denies its sessions on
   * every role it was approved for, until its last possible session has ended. A request whose SVID
   * was never issued can have had no credentials: nothing to do. Throws on the first role that
   * could not be denied (the caller logs it); the others are still tried.
   */
  async revoked(r: AuthorizationRecord): Promise<{ denied: string[] }> {
    if (r.svid_id === null) return { denied: [] };
    const until = Math.ceil(Date.parse(svidEnd(r)) / 1000) + DENY_MARGIN_SECONDS;
    if (until * 1000 <= this.deps.clock.now().getTime()) return { denied: [] };
    const policy = revocationPolicy(r.request_id, until);
    const roles = awsRolesAsked(r.permissions)
      .map((n) => this.deps.roles.get(n))
      .filter((x): x is AwsRole => x !== undefined);
    const denied: string[] = [];
    const failures: unknown[] = [];
    for (const role of roles) {
      try {
        await this.deps.denies.put(role.roleArn, policy);
        denied.push(role.name);
      } catch (e) {
        failures.push(e);
        this.deps.logger.error('could not deny a revoked request on its AWS role; its sessions stay valid until they expire', { request_id: r.request_id, role: role.name, role_arn: role.roleArn, error: e instanceof Error ? e.message : String(e) });
      }
    }
    if (denied.length > 0) this.deps.logger.info('revoked request denied on AWS', { request_id: r.request_id, roles: denied, policy: policy.name });
    if (failures.length > 0) throw failures[0];
    return { denied };
  }

  /**
   * The periodic reconciliation (the sweeper): every request revoked within the longest approval
   * whose sessions may still run gets its deny on each of its roles, in case the revocation came
   * from a process that could not put it (an operator's CLI without the role map, an IAM error);
   * and every deny whose request can have no session left is removed. IAM is the only record.
   */
  async sweep(): Promise<{ denied: number; removed: number }> {
    const now = this.deps.clock.now();
    const nowS = Math.floor(now.getTime() / 1000);
    const present = new Map<string, readonly string[]>();
    for (const roleArn of new Set([...this.deps.roles.values()].map((r) => r.roleArn))) {
      try {
        present.set(roleArn, await this.deps.denies.list(roleArn));
      } catch (e) {
        this.deps.logger.warn('could not list the revocation denies of an AWS role', { role_arn: roleArn, error: e instanceof Error ? e.message : String(e) });
      }
    }
    let denied = 0;
    const since = new Date(now.getTime() - (RECONCILE_HOURS * 3_600_000));
    let recent: AuthorizationRecord[] = [];
    try {
      recent = (await this.deps.store.listRecentlyDecided(since, 500)).filter((r) => r.revoked && r.svid_id !== null);
    } catch (e) {
      this.deps.logger.warn('could not list recently revoked requests', { error: e instanceof Error ? e.message : String(e) });
    }
    for (const r of recent) {
      const until = Math.ceil(Date.parse(svidEnd(r)) / 1000) + DENY_MARGIN_SECONDS;
      if (until <= nowS) continue;
      const name = revocationPolicy(r.request_id, until).name;
      const missing = awsRolesAsked(r.permissions).some((n) => {
        const arn = this.deps.roles.get(n)?.roleArn;
        return arn !== undefined && present.has(arn) && !present.get(arn)!.includes(name);
      });
      if (!missing) continue;
      try {
        denied += (await this.revoked(r)).denied.length;
      } catch {
        // logged by revoked(); the next sweep tries again
      }
    }
    let removed = 0;
    for (const [roleArn, names] of present) {
      for (const name of names) {
        const d = parseRevocationPolicyName(name);
        if (!d || d.untilEpochSeconds > nowS) continue;
        try {
          await this.deps.denies.remove(roleArn, name);
          removed++;
        } catch (e) {
          this.deps.logger.warn('could not remove an expired revocation deny', { role_arn: roleArn, policy: name, error: e instanceof Error ? e.message : String(e) });
        }
      }
    }
    if (denied + removed > 0) this.deps.logger.info('aws revocation denies reconciled', { denied, removed });
    return { denied, removed };
  }
}
