import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { AckdError } from '../../core/errors.ts';
import { AwsCredentialBroker, type AwsBrokerDeps, type OnceStore, type RoleAssumer, type RoleDenies } from '../../core/aws-broker.ts';
import { parseAwsRoles, type AwsRoleMap } from '../../core/aws-roles.ts';
import type { Clock, Logger } from '../../core/ports.ts';
import { DynamoOnceStore } from '../dynamodb/once.ts';
import { IamRoleDenies } from './iam.ts';
import { StsRoleAssumer } from './sts.ts';
import type { AwsClientConfig } from './client.ts';

/** The broker's configuration: the roles an approval may open, and where STS and IAM are. */
export interface AwsBrokerConfig {
  readonly roles: AwsRoleMap;
  readonly client: AwsClientConfig;
}

type Env = Record<string, string | undefined>;

/**
 * ACKD_AWS_ROLES (the role map as JSON: name → {roleArn, maxSessionSeconds?, sessionPolicy?}; the
 * stack sets it from the deploy setting `awsRoles`) and, locally only, ACKD_AWS_ENDPOINT (an AWS
 * API emulator) with ACKD_AWS_ACCESS_KEY_ID / ACKD_AWS_SECRET_ACCESS_KEY (the emulator's
 * credentials of the broker). Undefined when no role is configured: no broker, and every
 * `aws:role/` permission is refused at request time.
 */
export function awsBrokerConfigFromEnv(env: Env, c: { readonly local: boolean; readonly region: string }): AwsBrokerConfig | undefined {
  const roles = parseAwsRoles(env.ACKD_AWS_ROLES?.trim() || undefined, 'ACKD_AWS_ROLES');
  const endpoint = env.ACKD_AWS_ENDPOINT?.trim() || undefined;
  if (endpoint && !c.local) throw new AckdError('ERR_CONFIG', 'ACKD_AWS_ENDPOINT: is for local mode only (an AWS API emulator)', { field: 'ACKD_AWS_ENDPOINT' });
  if (roles.size === 0) return undefined;
  const id = env.ACKD_AWS_ACCESS_KEY_ID?.trim();
  const secret = env.ACKD_AWS_SECRET_ACCESS_KEY?.trim();
  return { roles, client: { region: c.region, ...(endpoint ? { endpoint } : {}), ...(endpoint && id && secret ? { credentials: { accessKeyId: id, secretAccessKey: secret } } : {}) } };
}

/** The broker on STS, IAM and the request table: issues credentials (the AWS credentials function, the local server) and denies revoked requests' sessions. */
export function buildAwsBroker(config: AwsBrokerConfig, d: { readonly store: AwsBrokerDeps['store']; readonly ddb: DynamoDBClient; readonly tableName: string; readonly clock: Clock; readonly logger: Logger }): AwsCredentialBroker {
  return new AwsCredentialBroker({
    roles: config.roles,
    sts: new StsRoleAssumer(config.client),
    denies: new IamRoleDenies(config.client),
    once: new DynamoOnceStore(d.ddb, d.tableName, d.clock),
    store: d.store,
    clock: d.clock,
    logger: d.logger,
  });
}

const refuse = (why: string) => (): Promise<never> => Promise.reject(new AckdError('ERR_INTERNAL', why));

/**
 * The broker's issuing side only, on STS and the request table (the AWS credentials function, which
 * never revokes): `issue` works; `revoked` and `sweep` are refused. No IAM client, as its role has
 * no IAM permission (lib/constructs/aws-broker.ts).
 */
export function buildAwsIssuer(config: AwsBrokerConfig, d: { readonly store: AwsBrokerDeps['store']; readonly ddb: DynamoDBClient; readonly tableName: string; readonly clock: Clock; readonly logger: Logger }): AwsCredentialBroker {
  const notHere = refuse('this function does not deny revoked requests on AWS roles (the MCP, consent and sweeper functions do)');
  const denies: RoleDenies = { put: notHere, list: notHere, remove: notHere };
  return new AwsCredentialBroker({ roles: config.roles, sts: new StsRoleAssumer(config.client), denies, once: new DynamoOnceStore(d.ddb, d.tableName, d.clock), store: d.store, clock: d.clock, logger: d.logger });
}

/**
 * The broker's revocation side only, on IAM (the MCP function, whose revoke_authorization denies a
 * revoked request's sessions at once): `revoked` and `sweep` work, `issue` is refused. No STS
 * client, so the MCP function's bundle carries none (test/infra/bundle-mcp.test.ts).
 */
export function buildAwsRevoker(config: AwsBrokerConfig, d: { readonly store: AwsBrokerDeps['store']; readonly clock: Clock; readonly logger: Logger }): AwsCredentialBroker {
  const notHere = refuse('this function does not issue AWS credentials (POST /v1/aws/credentials is served by the AWS credentials function)');
  const sts: RoleAssumer = { assumeRole: notHere };
  const once: OnceStore = { claim: notHere };
  return new AwsCredentialBroker({ roles: config.roles, sts, denies: new IamRoleDenies(config.client), once, store: d.store, clock: d.clock, logger: d.logger });
}
