import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCognito, type LocalCognito } from '../../lambdas/local/cognito.ts';
import { signInWithPkce } from '../helpers/cognito-token.ts';
import { runAckd } from '../helpers/cli.ts';
import { decodeJwt } from 'jose';

let cognito: LocalCognito;
let dir: string;
let env: NodeJS.ProcessEnv;

const ackd = (...args: string[]) => runAckd(env, ...args);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ackd-approvers-'));
  cognito = await startLocalCognito({ dir, callbackUrls: ['http://127.0.0.1:1/'] });
  env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ACKD_STAGE: 'local',
    ACKD_COGNITO_USER_POOL_ID: cognito.userPoolId,
    ACKD_COGNITO_ENDPOINT: cognito.url,
    NODE_NO_WARNINGS: '1',
  };
}, 60_000);

afterAll(async () => {
  await cognito?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('ackd approvers (against cognito-local)', { timeout: 180_000 }, () => {
  it('has --help on every command', async () => {
    for (const cmd of [['approvers'], ['approvers', 'add'], ['approvers', 'remove'], ['approvers', 'list']]) {
      const { stdout, code } = await ackd(...cmd, '--help');
      expect(code).toBe(0);
      expect(stdout).toMatch(/^Usage: ackd approvers/m);
    }
  });

  it('add → the new approver can sign in and their token carries the approvers group; list; remove', async () => {
    const add = await ackd('approvers', 'add', 'new.approver@example.com', '--json');
    expect(add.code).toBe(0);
    const added = JSON.parse(add.stdout) as { email: string; created: boolean; password: string; sub: string };
    expect(added).toMatchObject({ email: 'new.approver@example.com', created: true });

    const { idToken } = await signInWithPkce({ cognitoUrl: cognito.url, clientId: cognito.clientId, redirectUri: 'http://127.0.0.1:1/', username: 'new.approver@example.com', password: added.password });
    expect(decodeJwt(idToken)).toMatchObject({ sub: added.sub, email: 'new.approver@example.com', 'cognito:groups': ['approvers'] });

    // Adding again is idempotent and shows no password.
    const again = JSON.parse((await ackd('approvers', 'add', 'new.approver@example.com', '--json')).stdout) as Record<string, unknown>;
    expect(again.created).toBe(false);
    expect(again.password).toBeUndefined();

    const list = JSON.parse((await ackd('approvers', 'list', '--json')).stdout) as { email: string }[];
    expect(list.map((a) => a.email)).toEqual(['approver@ackd.local', 'new.approver@example.com']);
    expect((await ackd('approvers', 'list')).stdout).toContain('new.approver@example.com');

    const rm1 = await ackd('approvers', 'remove', 'new.approver@example.com', '--json');
    expect(JSON.parse(rm1.stdout)).toMatchObject({ removed: true, deleted: true });
    const after = JSON.parse((await ackd('approvers', 'list', '--json')).stdout) as { email: string }[];
    expect(after.map((a) => a.email)).toEqual(['approver@ackd.local']);
    expect(JSON.parse((await ackd('approvers', 'remove', 'new.approver@example.com', '--json')).stdout)).toMatchObject({ removed: false, deleted: false });
  });

  it('--keep-user removes only the group membership: new tokens lack the group', async () => {
    const added = JSON.parse((await ackd('approvers', 'add', 'keeper@example.com', '--json')).stdout) as { password: string };
    await ackd('approvers', 'remove', 'keeper@example.com', '--keep-user');
    const { idToken } = await signInWithPkce({ cognitoUrl: cognito.url, clientId: cognito.clientId, redirectUri: 'http://127.0.0.1:1/', username: 'keeper@example.com', password: added.password });
    expect(decodeJwt(idToken)['cognito:groups']).toBeUndefined();
  });

  it('refuses a malformed email naming the field, and a missing pool with a clear message', async () => {
    const bad = await ackd('approvers', 'add', 'not-an-email');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/email: "not-an-email" is not an email address/);
    const saved = env;
    env = { PATH: process.env.PATH, HOME: process.env.HOME, ACKD_HOME: dir, NODE_NO_WARNINGS: '1' };
    try {
      const none = await ackd('approvers', 'list');
      expect(none.code).not.toBe(0);
      expect(none.stderr).toMatch(/ACKD_COGNITO_USER_POOL_ID/);
    } finally {
      env = saved;
    }
  });
});
