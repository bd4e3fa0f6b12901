/**
 * The HIPAA Security and NIST 800-53 rev 5 findings ackd accepts, each by rule id on the exact
 * resources it concerns, with the reason (issue 15). What was cheap and right was fixed instead:
 * public subnets no longer auto-assign public IPs (only the NAT gateways' Elastic IPs are public),
 * the audit archive is versioned, locked and access-logged, every function traces with X-Ray, and the
 * two asynchronously invoked functions (sweeper, archive) have dead-letter queues that alarm.
 * Everything here is a decision, not an oversight; docs/compliance.md ("Infrastructure checks") summarises it for an auditor.
 *
 * Kept in one place, applied from AckdStack after every construct exists, so a pack's findings
 * are reviewed together and the constructs stay about what they build. A path that no longer
 * exists fails the synth (a renamed resource must be re-reviewed, not silently un-acknowledged).
 */
import type { Stack } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { acknowledge } from './nag.ts';
import { AWS_CUSTOM_RESOURCE_PROVIDER } from './constructs/aws-broker.ts';

const HIPAA = 'HIPAA.Security';
const NIST = 'NIST.800.53.R5';
/** The rule in both packs: `HIPAA.Security-<rule>` and `NIST.800.53.R5-<rule>`. */
const both = (rule: string) => [`${HIPAA}-${rule}`, `${NIST}-${rule}`];

function at(scope: IConstruct, path: string): IConstruct {
  const c = path.split('/').reduce<IConstruct | undefined>((n, id) => n?.node.tryFindChild(id), scope);
  if (!c) throw new Error(`lib/nag-compliance.ts: no construct at ${scope.node.path}/${path}; review the acknowledgments of the renamed resource`);
  return c;
}

/** The CDK BucketDeployment's singleton function (stack-level, id Custom::CDKBucketDeployment<hash>). */
function bucketDeploymentFn(stack: Stack): IConstruct | undefined {
  return stack.node.children.find((c) => c.node.id.startsWith('Custom::CDKBucketDeployment'));
}

export function acknowledgeCompliancePacks(stack: Stack): void {
  const logGroups = ['VpcFlowLogs', 'Spire/Logs', 'Api/McpLogs', 'Api/ConsentLogs', 'Api/SweeperLogs', 'Api/AuditExportLogs', 'Api/AccessLogs', 'Api/AuditExportAccessLogs', 'Archive/FnLogs'];
  // The HA SPIRE datastore's PostgreSQL log (spireServers 2): connections only, no data.
  if (stack.node.tryFindChild('Spire')?.node.tryFindChild('DatabaseLogs')) logGroups.push('Spire/DatabaseLogs');
  // The AWS credential broker's function exists only with awsRoles (constructs/api.ts).
  const awsCredentials = stack.node.tryFindChild('Api')?.node.tryFindChild('AwsCredentials') !== undefined;
  if (awsCredentials) logGroups.push('Api/AwsCredentialsLogs');
  for (const p of logGroups) {
    acknowledge(
      at(stack, p),
      'CloudWatch Logs encrypts every log group at rest (AES-256, service-managed keys). ackd never logs a secret, key, token or request payload (DESIGN.md, security rules), so a customer-managed key would add a key policy to maintain and a way to lose the logs, for no data that needs it.',
      ...both('CloudWatchLogGroupEncrypted'),
    );
  }

  const lambdaRoles = ['Api/Mcp/ServiceRole', 'Api/Consent/ServiceRole', 'Api/Sweeper/ServiceRole', 'Api/AuditExport/ServiceRole', 'Spire/Task/TaskRole', 'Spire/Task/ExecutionRole', 'Vpc/all/IAMRole', 'Archive/Fn/ServiceRole'];
  if (awsCredentials) lambdaRoles.push('Api/AwsCredentials/ServiceRole');
  for (const p of lambdaRoles) {
    acknowledge(
      at(stack, p),
      "Each role's permissions are one inline policy owned by that role alone (CDK's DefaultPolicy), each statement naming its exact actions and resources; a customer-managed policy would be attachable to other principals, which least privilege argues against. test/infra/kms.test.ts and the stack tests pin every statement.",
      ...both('IAMNoInlinePolicy'),
    );
  }

  acknowledge(
    at(stack, 'Api/SweeperListStreams'),
    "dynamodb:ListStreams (Resource * only: the action takes no resource) is the one statement of this inline policy of the sweeper's role, kept apart from the role's DefaultPolicy so that its AwsSolutions-IAM5 acknowledgment covers it alone, and so that the stream trigger can depend on exactly it; it is attachable to no other principal.",
    ...both('IAMNoInlinePolicy'),
  );

  const outsideVpc = ['Api/Consent', 'Api/Sweeper', 'Api/AuditExport', 'Archive/Fn'];
  for (const p of outsideVpc) {
    acknowledge(
      at(stack, p),
      'This function reaches only AWS APIs (DynamoDB, SES, KMS, Cognito JWKS, S3) over TLS with IAM authentication and nothing in the VPC; in the VPC it would only add NAT traffic and ENI cold starts. Only the MCP and AWS credentials functions, which call the SPIRE bridge, run in the VPC.',
      ...both('LambdaInsideVPC'),
    );
  }
  // The sweeper and the archive, invoked asynchronously (EventBridge, and the table stream for the
  // sweeper), have dead-letter queues (constructs/api.ts, archive.ts) that alarm. These do not:
  for (const p of ['Api/Mcp', 'Api/Consent', 'Api/AuditExport', ...(awsCredentials ? ['Api/AwsCredentials'] : [])]) {
    acknowledge(
      at(stack, p),
      'A Lambda DLQ receives only failed asynchronous invocations; this function is only ever invoked synchronously, by API Gateway (a failure is the HTTP response the caller sees, and its Errors alarm fires), so a DLQ would never receive anything.',
      ...both('LambdaDLQ'),
    );
  }

  const deployFn = bucketDeploymentFn(stack);
  if (deployFn) {
    acknowledge(
      deployFn,
      "CDK's BucketDeployment provider copies the consent UI into its bucket during a deployment only (CloudFormation invokes it synchronously); it holds no data, is not invoked otherwise, and its inline policy is CDK's, scoped to the asset and UI buckets.",
      ...both('LambdaInsideVPC'),
      ...both('IAMNoInlinePolicy'),
      ...both('LambdaDLQ'),
      ...both('LambdaConcurrency'),
    );
  }

  const broker = stack.node.tryFindChild('AwsBroker');
  if (broker) {
    // One AwsCustomResource per configured role (deploy setting awsRoles), each with its own policy on the provider's role.
    for (const trust of broker.node.children.filter((c) => c.node.id.startsWith('Trust-'))) {
      acknowledge(
        at(trust, 'CustomResourcePolicy'),
        "The AwsCustomResource policy that lets CDK's provider function call iam:UpdateAssumeRolePolicy on exactly this one configured role (deploy setting awsRoles); inline, so it exists only as long as the custom resource that needs it and is attachable to nothing else.",
        ...both('IAMNoInlinePolicy'),
      );
    }
    acknowledge(
      at(stack, AWS_CUSTOM_RESOURCE_PROVIDER),
      "CDK's AwsCustomResource provider sets the configured roles' trust policies during a deployment only (CloudFormation invokes it synchronously, once per role per deploy); it calls only the IAM API, holds no data, is not invoked otherwise, and a failure fails the deployment, so a VPC, a DLQ or a concurrency limit would protect nothing.",
      ...both('LambdaInsideVPC'),
      ...both('LambdaDLQ'),
      ...both('LambdaConcurrency'),
    );
  }

  const buckets = ['Consent/AccessLogBucket', 'Consent/UiBucket', 'Archive/AccessLogBucket', 'Archive/Bucket'];
  for (const p of buckets) {
    acknowledge(
      at(stack, p),
      'SSE-S3 (AES-256) encrypts every object at rest; the buckets hold the public consent UI, access logs and audit archives whose integrity is proven by signed checkpoints and Object Lock, not by key secrecy. Cross-region replication would double storage for data that is either rebuilt by a deploy (UI), expendable (access logs) or locked in place (archive); operators who need a second region replicate the archive bucket themselves.',
      ...both('S3DefaultEncryptionKMS'),
      ...both('S3BucketReplicationEnabled'),
    );
  }
  acknowledge(
    at(stack, 'Consent/AccessLogBucket'),
    'CloudFront and S3 access logs are written once and expire with the retention setting; versioning them would keep deleted logs past that retention.',
    ...both('S3BucketVersioningEnabled'),
  );

  acknowledge(
    at(stack, 'Spire/BridgeSecret'),
    'The bridge HMAC key is encrypted by Secrets Manager with the AWS-managed key; only the functions that call the bridge (MCP, AWS credentials) and the SPIRE task may read it (IAM), and the key policy of a customer-managed key would restate exactly that. Rotation is manual (README.md, "Rotating the bridge key"): both ends must change together, which a rotation Lambda cannot do without an outage.',
    ...both('SecretsManagerUsingKMSKey'),
    ...both('SecretsManagerRotationEnabled'),
  );

  const exportStage = at(stack, 'Api/AuditExportApi/DeploymentStage.live');
  acknowledge(
    exportStage,
    'The audit export streams a different, approver-specific answer to every request: a cache would serve one approver\'s export to another and is wrong here.',
    ...both('APIGWCacheEnabledAndEncrypted'),
  );
  acknowledge(
    exportStage,
    'A client certificate would authenticate API Gateway to a backend HTTP endpoint; this API\'s only integration is a Lambda function, invoked by IAM.',
    ...both('APIGWSSLEnabled'),
  );
  acknowledge(
    exportStage,
    'Every request is in the stage access log (CloudWatch Logs); execution logging needs the account-wide API Gateway CloudWatch role, which this app does not create (@aws-cdk/aws-apigateway:disableCloudWatchRole).',
    ...both('APIGWExecutionLoggingEnabled'),
  );
  acknowledge(
    exportStage,
    'The export API answers only requests with a verified approver ID token, is throttled at the stage (5 rps, burst 10) and is reached through the consent CloudFront distribution; a WAF web ACL (about $5 a month plus rules) is left to operators who want one (README.md).',
    `${NIST}-APIGWAssociatedWithWAF`,
  );

  for (const p of ['Vpc/publicSubnet1/DefaultRoute', 'Vpc/publicSubnet2/DefaultRoute']) {
    acknowledge(
      at(stack, p),
      'The public subnets hold only the NAT gateways, whose route to the internet gateway is what gives the private subnets (MCP function, SPIRE task) their outbound HTTPS; nothing in them accepts inbound traffic.',
      ...both('VPCNoUnrestrictedRouteToIGW'),
    );
  }
}
