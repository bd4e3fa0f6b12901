import type { Config } from '../../config.ts';
import { AckdError } from '../../core/errors.ts';
import type { AwsCredentialBroker } from '../../core/aws-broker.ts';
import { systemClock, type BundleStore, type Clock, type Logger, type SvidMinter } from '../../core/ports.ts';
import { dynamoClient } from '../dynamodb/client.ts';
import { DynamoRequestStore } from '../dynamodb/store.ts';
import { DynamoBundleStore } from '../dynamodb/bundle.ts';
import { jsonLogger } from '../log.ts';
import { outboxSealerFrom } from '../signing/outbox-seal.ts';
import { awsBrokerConfigFromEnv, buildAwsIssuer, type AwsBrokerConfig } from './config.ts';

/** What the AWS credentials function serves POST /v1/aws/credentials with (lambdas/http/aws-routes.ts). */
export interface AwsCredentialsDeps {
  readonly config: Config;
  readonly broker: AwsCredentialBroker;
  /** The issuer's trust bundle verifies the SVIDs of the proofs. */
  readonly minter: Pick<SvidMinter, 'trustBundlePem'>;
  /** The last trust bundle the issuer gave (used while it is down). */
  readonly bundles: BundleStore;
  readonly trustDomain: string;
  readonly logger: Logger;
  readonly clock: Clock;
}

export interface AwsCredentialsOptions {
  readonly minter: Pick<SvidMinter, 'trustBundlePem'>;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Wraps the AWS SDK client (X-Ray tracing on Lambda: adapters/powertools.ts `traced`); default: as is. */
  readonly instrument?: <C extends object>(client: C) => C;
  /** The roles and where STS/IAM are; default: ACKD_AWS_ROLES. */
  readonly aws?: AwsBrokerConfig;
}

/**
 * The composition root of the AWS credentials function (lambdas/handlers/aws-credentials.ts):
 * config → the AWS credential broker and only what it needs: the request table (the request's
 * state, single-use proofs, the `aws_credentials_issued` event, the last known trust bundle) and
 * STS (buildAwsIssuer: it never revokes, so no IAM). Apart from lambdas/deps.ts (everyone else's), so its bundle carries none of the service,
 * the MCP server or the signers. ACKD_AWS_ROLES must name a role: the function exists only when
 * roles are configured. Locally the one app serves the route instead (lambdas/app.ts createApp).
 */
export function buildAwsCredentialsDeps(config: Config, opts: AwsCredentialsOptions): AwsCredentialsDeps {
  const logger = opts.logger ?? jsonLogger({ level: config.logLevel, base: { stage: config.stage } });
  const clock = opts.clock ?? systemClock;
  const awsConfig = opts.aws ?? awsBrokerConfigFromEnv(process.env, config);
  if (!awsConfig) throw new AckdError('ERR_CONFIG', 'ACKD_AWS_ROLES: the AWS credentials function needs at least one role (deploy setting awsRoles)', { field: 'ACKD_AWS_ROLES' });
  const ddb = (opts.instrument ?? ((c) => c))(dynamoClient({ region: config.region, endpoint: config.dynamodbEndpoint }));
  const store = DynamoRequestStore.withAudit(ddb, config.tableName, { clock, retentionDays: config.retentionDays, sealer: outboxSealerFrom(config) });
  return {
    config,
    broker: buildAwsIssuer(awsConfig, { store, ddb, tableName: config.tableName, clock, logger }),
    minter: opts.minter,
    bundles: new DynamoBundleStore(ddb, config.tableName),
    trustDomain: config.trustDomain,
    logger,
    clock,
  };
}
