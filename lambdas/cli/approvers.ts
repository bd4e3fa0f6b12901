import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { ApproverAdmin, cognitoClient } from '../adapters/cognito/admin.ts';
import { AckdError } from '../core/errors.ts';
import { output, readLocalInfo } from './context.ts';

type Env = Record<string, string | undefined>;

/**
 * Where the approvers live: ACKD_COGNITO_USER_POOL_ID (+ AWS credentials and region), or the
 * cognito-local of `npm start` in this directory (.ackd/local.json).
 */
export function approverAdminFromEnv(env: Env = process.env): { admin: ApproverAdmin; local: boolean } {
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1';
  const poolId = env.ACKD_COGNITO_USER_POOL_ID?.trim();
  if (poolId) {
    const endpoint = env.ACKD_COGNITO_ENDPOINT?.trim();
    if (endpoint && (env.ACKD_STAGE ?? 'local') !== 'local') throw new AckdError('ERR_CONFIG', 'ACKD_COGNITO_ENDPOINT: is for local mode only (ACKD_STAGE=local)', { field: 'ACKD_COGNITO_ENDPOINT' });
    return { admin: new ApproverAdmin(cognitoClient({ region, ...(endpoint ? { endpoint } : {}) }), poolId), local: Boolean(endpoint) };
  }
  const info = readLocalInfo();
  if (info && typeof info.cognitoEndpoint === 'string' && typeof info.userPoolId === 'string') {
    return { admin: new ApproverAdmin(cognitoClient({ region, endpoint: info.cognitoEndpoint }), info.userPoolId), local: true };
  }
  throw new AckdError('ERR_CONFIG', 'no user pool: set ACKD_COGNITO_USER_POOL_ID (and AWS credentials), or run `npm start` in this directory first', { field: 'ACKD_COGNITO_USER_POOL_ID' });
}

/** `ackd approvers add|remove|list`: the humans in the Cognito `approvers` group. */
export function registerApproverCommands(program: Command, env: Env = process.env): void {
  const approvers = program.command('approvers').description('humans who may approve or deny requests (Cognito "approvers" group)');

  approvers
    .command('add <email>')
    .description('add an approver: creates the Cognito user if needed (AWS emails an invitation; locally a password is printed) and adds it to the group')
    .option('--json', 'print JSON')
    .action(async (email: string, opts: { json?: boolean }) => {
      const { admin, local } = approverAdminFromEnv(env);
      // Locally there is no mail delivery for Cognito invitations: set a password and show it once.
      const password = local ? `Ack-${randomBytes(12).toString('base64url')}9a` : undefined;
      const { created, approver } = await admin.add(email, password ? { password } : {});
      const shownPassword = created && password ? password : undefined;
      output(opts.json, { email: approver.email, username: approver.username, sub: approver.sub, created, ...(shownPassword ? { password: shownPassword } : {}) }, () =>
        [
          `${approver.email} is an approver${created ? ' (new user)' : ''}`,
          ...(shownPassword ? [`password: ${shownPassword}`, 'This password is shown once.'] : []),
          ...(created && !local ? ['Cognito has emailed a temporary password; the approver sets a new one at first sign-in.'] : []),
        ].join('\n'),
      );
    });

  approvers
    .command('remove <email>')
    .description('remove an approver from the group and delete the user (tokens already issued stay valid until they expire)')
    .option('--keep-user', 'only remove from the group; keep the Cognito user')
    .option('--json', 'print JSON')
    .action(async (email: string, opts: { keepUser?: boolean; json?: boolean }) => {
      const { admin } = approverAdminFromEnv(env);
      const r = await admin.remove(email, { keepUser: opts.keepUser ?? false });
      output(opts.json, { email, ...r }, () =>
        !r.removed && !r.deleted ? `${email} was not an approver` : `${email} removed from approvers${r.deleted ? ' and deleted' : ''}`,
      );
    });

  approvers
    .command('list')
    .description('list approvers')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const { admin } = approverAdminFromEnv(env);
      const list = await admin.list();
      output(opts.json, list, () => (list.length === 0 ? 'no approvers' : list.map((a) => `${a.email ?? a.username}  ${a.status ?? ''}${a.enabled ? '' : '  DISABLED'}`).join('\n')));
    });
}
