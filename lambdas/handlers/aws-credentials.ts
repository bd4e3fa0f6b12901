import { handle } from 'hono/aws-lambda';
import { loadConfig } from '../config.ts';
import { buildAwsCredentialsDeps } from '../adapters/aws/deps.ts';
import { issuerFromConfig } from '../issuer.ts';
import { awsCredentialsApp } from '../http/aws-routes.ts';
import { observed, powertoolsLogger, traced } from '../adapters/powertools.ts';

// config → dependencies → handle. The AWS credential broker, POST /v1/aws/credentials (created
// only when AWS roles are configured): verifies the SVID proof against the trust bundle (SPIRE
// through the bridge, else the last known bundle), then assumes the role with STS. The one
// function that may assume the configured roles; it serves nothing else. Structured logs,
// metrics and X-Ray tracing (STS, IAM and DynamoDB subsegments) through Powertools.
const config = loadConfig();
const logger = powertoolsLogger('aws-credentials', { level: config.logLevel });
const { minter } = issuerFromConfig(config);
const deps = buildAwsCredentialsDeps(config, { minter, logger, instrument: traced });

export const handler = observed(logger, handle(awsCredentialsApp(deps)));
