import { handle } from 'hono/aws-lambda';
import { createServiceApp } from '../app.ts';
import { loadConfig } from '../config.ts';
import { buildServiceDeps } from '../deps.ts';
import { issuerFromConfig } from '../issuer.ts';
import { observedUntraced, powertoolsLogger } from '../adapters/powertools.ts';

// config → dependencies → handle. Built once per Lambda instance. Structured logs and metrics
// through Powertools (inert outside Lambda). What it leaves to other functions, so its bundle and
// cold start stay near a bare MCP + DynamoDB function (test/infra/bundle-mcp.test.ts):
// - consent notifications: a new request is announced once its event is in the audit log, by the
//   sequencer's follow-up, which runs in the sweeper (buildDeps sets notifyAfterSequencing; the
//   sequencer loop never runs in a Lambda). So no notifier, no routes, no passkeys (the consent
//   API's), no audit reader, signer or sequencer (buildServiceDeps);
// - POST /v1/aws/credentials: the AWS credentials function (handlers/aws-credentials.ts), so no
//   STS and no X.509 path validation here (createServiceApp; revoking still denies a request's AWS
//   sessions, through IAM);
// - the in-process CA: a Lambda function mints through SPIRE only (issuerFromConfig);
// - the in-code X-Ray tracer: Lambda's active tracing traces each invocation without it
//   (observedUntraced; docs/operations.md, "Tracing").
const config = loadConfig();
const logger = powertoolsLogger('mcp', { level: config.logLevel });
const { minter } = issuerFromConfig(config);
const deps = buildServiceDeps(config, { minter, logger });

export const handler = observedUntraced(logger, handle(createServiceApp(deps)));
