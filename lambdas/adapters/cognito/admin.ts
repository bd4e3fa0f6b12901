import {
  AdminAddUserToGroupCommand,
  AdminCreateUserCommand,
  AdminDeleteUserCommand,
  AdminGetUserCommand,
  AdminRemoveUserFromGroupCommand,
  AdminSetUserPasswordCommand,
  CognitoIdentityProviderClient,
  ListUsersInGroupCommand,
  type AttributeType,
  type UserType,
} from '@aws-sdk/client-cognito-identity-provider';
import { AckdError } from '../../core/errors.ts';
import { parseEmail } from '../ses/notifier.ts';
import { APPROVERS_GROUP } from './verifier.ts';

export interface ApproverEntry {
  readonly email: string | null;
  /** Cognito username (the `sub` when the pool signs in by email). */
  readonly username: string;
  readonly sub: string | null;
  readonly status: string | null;
  readonly enabled: boolean;
}

/** A Cognito Identity Provider client; `endpoint` overrides AWS (cognito-local). */
export function cognitoClient(opts: { region: string; endpoint?: string }): CognitoIdentityProviderClient {
  return new CognitoIdentityProviderClient({
    region: opts.region,
    ...(opts.endpoint ? { endpoint: opts.endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {}),
  });
}

/**
 * Manages the humans in the `approvers` group through the Cognito admin API. Works the same
 * against cognito-local and AWS. The pool signs in by email (UsernameAttributes = email).
 */
export class ApproverAdmin {
  constructor(
    private readonly client: CognitoIdentityProviderClient,
    private readonly userPoolId: string,
    private readonly group = APPROVERS_GROUP,
  ) {}

  /**
   * Adds an approver. A new user is created (Cognito emails an invitation with a temporary
   * password, unless `password` is given, which sets a permanent one — local use); an existing
   * user is just added to the group. Idempotent.
   */
  async add(emailInput: string, opts: { password?: string } = {}): Promise<{ created: boolean; approver: ApproverEntry }> {
    const email = parseEmail(emailInput, 'email');
    let created = false;
    let user = await this.find(email);
    if (!user) {
      try {
        await this.client.send(
          new AdminCreateUserCommand({
            UserPoolId: this.userPoolId,
            Username: email,
            UserAttributes: [
              { Name: 'email', Value: email },
              { Name: 'email_verified', Value: 'true' },
            ],
            DesiredDeliveryMediums: ['EMAIL'],
            ...(opts.password ? { MessageAction: 'SUPPRESS' as const } : {}),
          }),
        );
        created = true;
      } catch (e) {
        throw vendor(e, `could not create user ${email}`);
      }
      if (opts.password) {
        await this.client
          .send(new AdminSetUserPasswordCommand({ UserPoolId: this.userPoolId, Username: email, Password: opts.password, Permanent: true }))
          .catch((e: unknown) => Promise.reject(vendor(e, `could not set the password of ${email}`)));
      }
      user = await this.find(email);
      if (!user) throw new AckdError('ERR_INTERNAL', `user ${email} was created but cannot be read back`);
    }
    await this.client
      .send(new AdminAddUserToGroupCommand({ UserPoolId: this.userPoolId, Username: user.username, GroupName: this.group }))
      .catch((e: unknown) => Promise.reject(vendor(e, `could not add ${email} to the ${this.group} group`)));
    return { created, approver: user };
  }

  /** Removes an approver from the group and (unless keepUser) deletes the user. */
  async remove(emailInput: string, opts: { keepUser?: boolean } = {}): Promise<{ removed: boolean; deleted: boolean }> {
    const email = parseEmail(emailInput, 'email');
    const user = await this.find(email);
    if (!user) return { removed: false, deleted: false };
    const inGroup = (await this.list()).some((a) => a.username === user.username);
    if (inGroup) {
      await this.client
        .send(new AdminRemoveUserFromGroupCommand({ UserPoolId: this.userPoolId, Username: user.username, GroupName: this.group }))
        .catch((e: unknown) => Promise.reject(vendor(e, `could not remove ${email} from the ${this.group} group`)));
    }
    if (opts.keepUser) return { removed: inGroup, deleted: false };
    await this.client
      .send(new AdminDeleteUserCommand({ UserPoolId: this.userPoolId, Username: user.username }))
      .catch((e: unknown) => Promise.reject(vendor(e, `could not delete user ${email}`)));
    return { removed: inGroup, deleted: true };
  }

  async list(): Promise<ApproverEntry[]> {
    const out: ApproverEntry[] = [];
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(new ListUsersInGroupCommand({ UserPoolId: this.userPoolId, GroupName: this.group, NextToken: token, Limit: 60 }));
      } catch (e) {
        throw vendor(e, `could not list the ${this.group} group`);
      }
      for (const u of page.Users ?? []) out.push(entry(u));
      token = page.NextToken;
    } while (token);
    return out.sort((a, b) => (a.email ?? a.username).localeCompare(b.email ?? b.username));
  }

  private async find(email: string): Promise<ApproverEntry | undefined> {
    try {
      const u = await this.client.send(new AdminGetUserCommand({ UserPoolId: this.userPoolId, Username: email }));
      return entry({ Username: u.Username, Attributes: u.UserAttributes, UserStatus: u.UserStatus, Enabled: u.Enabled });
    } catch (e) {
      if (e instanceof Error && e.name === 'UserNotFoundException') return undefined;
      throw vendor(e, `could not look up ${email}`);
    }
  }
}

function attr(attrs: AttributeType[] | undefined, name: string): string | null {
  return attrs?.find((a) => a.Name === name)?.Value ?? null;
}

function entry(u: UserType): ApproverEntry {
  return {
    email: attr(u.Attributes, 'email'),
    username: u.Username ?? '',
    sub: attr(u.Attributes, 'sub'),
    status: u.UserStatus ?? null,
    enabled: u.Enabled ?? true,
  };
}

function vendor(e: unknown, what: string): AckdError {
  if (e instanceof AckdError) return e;
  const name = e instanceof Error ? e.name : 'Error';
  const message = e instanceof Error ? e.message : String(e);
  if (name === 'InvalidPasswordException' || name === 'InvalidParameterException') {
    return new AckdError('ERR_INVALID_INPUT', `${what}: ${message}`, { cause: e });
  }
  return new AckdError('ERR_INTERNAL', `${what}: ${name}: ${message}`, { cause: e });
}
