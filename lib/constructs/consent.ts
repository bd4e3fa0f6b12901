import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Annotations, Aws, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3deploy from 'aws-cdk-lib/aws-s3-deployment';
import * as ses from 'aws-cdk-lib/aws-ses';
import { rules as nagRules } from 'cdk-nag';
import { Construct } from 'constructs';
import type { DeployConfig } from '../config.ts';
import { AUDIT_EXPORT_PATH_PATTERN } from './api.ts';
import { acknowledge, MANAGED_POLICY } from '../nag.ts';
import { REPO_ROOT } from '../paths.ts';

/** The built consent UI (`npm run build:ui`). */
export const CONSENT_UI_DIST = join(REPO_ROOT, 'consent-ui', 'dist');
/** Where Cognito sends the approver back after sign-in / sign-out: the page itself (consent-ui/src/auth.ts). */
export const CONSENT_CALLBACK_PATH = '/';
export const CONSENT_LOGOUT_PATH = '/';
/** Runtime configuration file of the consent UI, written next to index.html at deploy time. */
export const CONSENT_UI_CONFIG_FILE = 'config.json';
export const APPROVERS_GROUP = 'approvers';

export interface ConsentProps {
  readonly config: DeployConfig;
  /** Domain of the HTTP API (origin of /api/*). */
  readonly apiDomainName: string;
  /** The audit export's REST API (origin of /api/audit/*): its domain and its stage path. */
  readonly auditExport: { readonly domainName: string; readonly stagePath: string };
}

/**
 * Everything the human touches: the consent UI (private, encrypted, TLS-only S3 bucket behind
 * CloudFront with origin access control, the consent API under the same origin at /api/*, the
 * streamed audit export at /api/audit/*), the
 * Cognito user pool with managed login, a code + PKCE app client without secret and the
 * `approvers` group, and the SES sending identity.
 */
export class Consent extends Construct {
  readonly distribution: cloudfront.Distribution;
  readonly bucket: s3.Bucket;
  readonly userPool: cognito.UserPool;
  readonly userPoolClient: cognito.UserPoolClient;
  readonly userPoolDomain: cognito.UserPoolDomain;
  readonly emailIdentity: ses.EmailIdentity;
  /** https://<consent host> without trailing slash. */
  readonly url: string;
  readonly issuer: string;
  /** https://<prefix>.auth.<region>.amazoncognito.com (managed login). */
  readonly cognitoDomainUrl: string;

  constructor(scope: Construct, id: string, props: ConsentProps) {
    super(scope, id);
    const { config } = props;
    const removalPolicy = config.production ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    // --- S3: one bucket for the UI, one for access logs (S3 server access logs + CloudFront logs) ---
    const logBucket = new s3.Bucket(this, 'AccessLogBucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      // CloudFront standard logging writes with ACLs.
      objectOwnership: s3.ObjectOwnership.OBJECT_WRITER,
      lifecycleRules: [{ expiration: Duration.days(config.retentionDays) }],
      removalPolicy,
    });

    this.bucket = new s3.Bucket(this, 'UiBucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      serverAccessLogsBucket: logBucket,
      serverAccessLogsPrefix: 's3/ui/',
      removalPolicy,
    });

    const domainPrefix = config.cognitoDomainPrefix ?? `ackd-${config.stage}-${Aws.ACCOUNT_ID}`;
    this.cognitoDomainUrl = `https://${domainPrefix}.auth.${Aws.REGION}.amazoncognito.com`;

    // --- CloudFront: UI from S3 (OAC), /api/* to the HTTP API, strict security headers ---
    const headers = new cloudfront.ResponseHeadersPolicy(this, 'SecurityHeaders', {
      comment: 'ackd consent UI security headers',
      securityHeadersBehavior: {
        contentSecurityPolicy: {
          contentSecurityPolicy: [
            // The same policy the local server sends (lambdas/local/consent-ui.ts): own files, the API, the token endpoint.
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            `connect-src 'self' ${this.cognitoDomainUrl}`,
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
          ].join('; '),
          override: true,
        },
        strictTransportSecurity: { accessControlMaxAge: Duration.days(365), includeSubdomains: true, preload: false, override: true },
        frameOptions: { frameOption: cloudfront.HeadersFrameOption.DENY, override: true },
        contentTypeOptions: { override: true },
        referrerPolicy: { referrerPolicy: cloudfront.HeadersReferrerPolicy.NO_REFERRER, override: true },
        xssProtection: { protection: true, modeBlock: true, override: true },
      },
    });
    // Single-page app routes (e.g. /requests/<id>, /callback) are served index.html at the edge, so
    // API errors under /api/* are never rewritten (distribution-wide error pages would).
    const spaRewrite = new cloudfront.Function(this, 'SpaRewrite', {
      comment: 'ackd consent UI: serve index.html for app routes',
      runtime: cloudfront.FunctionRuntime.JS_2_0,
      code: cloudfront.FunctionCode.fromInline(
        [
          'function handler(event) {',
          '  var req = event.request;',
          "  var last = req.uri.split('/').pop();",
          "  if (last.indexOf('.') === -1) { req.uri = '/index.html'; }",
          '  return req;',
          '}',
        ].join('\n'),
      ),
    });

    const apiOrigin = new origins.HttpOrigin(props.apiDomainName, {
      protocolPolicy: cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
      originSslProtocols: [cloudfront.OriginSslPolicy.TLS_V1_2],
    });
    // The streamed audit export (lib/constructs/api.ts): the response leaves in pieces as it is
    // read, so the wait for the first piece (cold start, token check, the first page) and between
    // two pieces, not the whole download, is what must fit the read timeout: 60 s, twice
    // CloudFront's default and well within its default quota.
    const auditExportOrigin = new origins.HttpOrigin(props.auditExport.domainName, {
      originPath: props.auditExport.stagePath,
      protocolPolicy: cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
      originSslProtocols: [cloudfront.OriginSslPolicy.TLS_V1_2],
      readTimeout: Duration.seconds(60),
    });
    const certificate = config.consentDomain
      ? acm.Certificate.fromCertificateArn(this, 'Certificate', config.consentDomain.certificateArn)
      : undefined;

    this.distribution = new cloudfront.Distribution(this, 'Distribution', {
      comment: `ackd consent UI (${config.stage})`,
      defaultRootObject: 'index.html',
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
      priceClass: cloudfront.PriceClass.PRICE_CLASS_100,
      ...(config.consentDomain && certificate
        ? { domainNames: [config.consentDomain.name], certificate, minimumProtocolVersion: cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021 }
        : {}),
      enableLogging: true,
      logBucket,
      logFilePrefix: 'cloudfront/',
      defaultBehavior: {
        origin: origins.S3BucketOrigin.withOriginAccessControl(this.bucket),
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD,
        cachePolicy: cloudfront.CachePolicy.CACHING_OPTIMIZED,
        responseHeadersPolicy: headers,
        compress: true,
        functionAssociations: [{ function: spaRewrite, eventType: cloudfront.FunctionEventType.VIEWER_REQUEST }],
      },
      // CloudFront tries behaviors in this order: /api/audit/* must come before /api/*.
      additionalBehaviors: {
        [AUDIT_EXPORT_PATH_PATTERN]: {
          origin: auditExportOrigin,
          viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
          allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD_OPTIONS,
          cachePolicy: cloudfront.CachePolicy.CACHING_DISABLED,
          // Every viewer header but Host, Authorization (the approver's token) included: with
          // caching disabled, CloudFront forwards it under this managed policy.
          originRequestPolicy: cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
          responseHeadersPolicy: headers,
        },
        '/api/*': {
          origin: apiOrigin,
          viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
          allowedMethods: cloudfront.AllowedMethods.ALLOW_ALL,
          cachePolicy: cloudfront.CachePolicy.CACHING_DISABLED,
          originRequestPolicy: cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
          responseHeadersPolicy: headers,
        },
      },
    });

    acknowledge(
      this.distribution,
      'Approvers may travel; access is gated by Cognito sign-in with MFA, not by geography.',
      'AwsSolutions-CFR1',
    );
    acknowledge(
      this.distribution,
      'The distribution serves static files and proxies a consent API that refuses every request without a verified approver token; Cognito threat protection guards sign-in and API Gateway throttles. Operators who want a WAF web ACL (it must live in us-east-1) can attach one.',
      'AwsSolutions-CFR2',
    );
    if (!config.consentDomain) {
      acknowledge(
        this.distribution,
        'Without a custom domain CloudFront serves its *.cloudfront.net certificate and fixes the viewer TLS policy itself; set consentDomainName + consentCertificateArn to get TLSv1.2_2021 (then this finding is not acknowledged).',
        'AwsSolutions-CFR4',
      );
    }

    this.url = config.consentDomain ? `https://${config.consentDomain.name}` : `https://${this.distribution.distributionDomainName}`;

    // --- Cognito: approvers sign in through managed login; no self sign-up; MFA required ---
    this.userPool = new cognito.UserPool(this, 'UserPool', {
      selfSignUpEnabled: false,
      signInAliases: { email: true, username: false },
      autoVerify: { email: true },
      standardAttributes: { email: { required: true, mutable: true } },
      mfa: cognito.Mfa.REQUIRED,
      mfaSecondFactor: { otp: true, sms: false },
      passwordPolicy: {
        minLength: 14,
        requireLowercase: true,
        requireUppercase: true,
        requireDigits: true,
        requireSymbols: true,
        tempPasswordValidity: Duration.days(3),
      },
      accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
      featurePlan: cognito.FeaturePlan.PLUS,
      standardThreatProtectionMode: cognito.StandardThreatProtectionMode.FULL_FUNCTION,
      deletionProtection: config.production,
      removalPolicy,
      userInvitation: {
        emailSubject: 'You are an ackd approver',
        emailBody: 'You were added as an approver of ackd. Sign in with {username} and the temporary password {####}; you will set a new password and an authenticator app.',
      },
    });
    new cognito.CfnUserPoolGroup(this, 'ApproversGroup', {
      userPoolId: this.userPool.userPoolId,
      groupName: APPROVERS_GROUP,
      description: 'People who may approve or deny ackd authorization requests',
    });

    this.userPoolClient = this.userPool.addClient('ConsentUiClient', {
      generateSecret: false,
      authFlows: { userPassword: false, userSrp: false, adminUserPassword: false, custom: false },
      oAuth: {
        flows: { authorizationCodeGrant: true, implicitCodeGrant: false, clientCredentials: false },
        scopes: [cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE],
        callbackUrls: [`${this.url}${CONSENT_CALLBACK_PATH}`],
        logoutUrls: [`${this.url}${CONSENT_LOGOUT_PATH}`],
      },
      supportedIdentityProviders: [cognito.UserPoolClientIdentityProvider.COGNITO],
      preventUserExistenceErrors: true,
      enableTokenRevocation: true,
      accessTokenValidity: Duration.minutes(15),
      idTokenValidity: Duration.minutes(15),
      refreshTokenValidity: Duration.hours(8),
    });

    this.userPoolDomain = this.userPool.addDomain('Domain', {
      cognitoDomain: { domainPrefix },
      managedLoginVersion: cognito.ManagedLoginVersion.NEWER_MANAGED_LOGIN,
    });
    const branding = new cognito.CfnManagedLoginBranding(this, 'ManagedLoginBranding', {
      userPoolId: this.userPool.userPoolId,
      clientId: this.userPoolClient.userPoolClientId,
      useCognitoProvidedValues: true,
    });
    branding.node.addDependency(this.userPoolDomain);

    this.issuer = `https://cognito-idp.${Aws.REGION}.${Aws.URL_SUFFIX}/${this.userPool.userPoolId}`;

    // --- SES identity ---
    this.emailIdentity = new ses.EmailIdentity(this, 'SenderIdentity', {
      identity:
        config.senderIdentity.kind === 'domain'
          ? ses.Identity.domain(config.senderIdentity.value)
          : ses.Identity.email(config.senderIdentity.value),
    });

    // --- the UI files and its runtime config ---
    // Shape: UiConfig of consent-ui/src/auth.ts (the same file the local server serves).
    const uiConfig = {
      cognitoDomain: this.cognitoDomainUrl,
      clientId: this.userPoolClient.userPoolClientId,
      redirectUri: `${this.url}${CONSENT_CALLBACK_PATH}`,
      logoutUri: `${this.url}${CONSENT_LOGOUT_PATH}`,
      apiBase: '/api',
      scopes: 'openid email profile',
    };
    const sources: s3deploy.ISource[] = [s3deploy.Source.jsonData(CONSENT_UI_CONFIG_FILE, uiConfig)];
    if (existsSync(join(CONSENT_UI_DIST, 'index.html'))) {
      sources.unshift(s3deploy.Source.asset(CONSENT_UI_DIST));
    } else {
      Annotations.of(this).addWarningV2(
        'ackd:ConsentUiNotBuilt',
        `consent-ui/dist is missing: deploying a placeholder page. Build the consent UI first (npm run build:ui), then deploy.`,
      );
      sources.unshift(
        s3deploy.Source.data(
          'index.html',
          '<!doctype html><meta charset="utf-8"><title>ackd</title><p>The ackd consent UI was not built before this deployment. Run <code>npm run build:ui</code> and deploy again.</p>',
        ),
      );
    }
    const deployment = new s3deploy.BucketDeployment(this, 'UiDeployment', {
      destinationBucket: this.bucket,
      sources,
      distribution: this.distribution,
      distributionPaths: ['/*'],
      prune: true,
      memoryLimit: 512,
    });
    acknowledgeBucketDeployment(deployment);
  }
}

/**
 * The BucketDeployment handler is a CDK-maintained singleton Lambda at the stack level; these
 * acknowledgments attach to it alone, never to ackd's own functions. Its wildcard findings are
 * computed with cdk-nag's own IAM5 rule on its policy (their text depends on whether account and
 * region are known at synth), and each one must be one of the grants CDK is known to give it —
 * asset bucket read, UI bucket write, CloudFront invalidation — or it stays unacknowledged.
 */
function acknowledgeBucketDeployment(deployment: s3deploy.BucketDeployment): void {
  const stack = Stack.of(deployment);
  const handler = stack.node.children.find((c) => c.node.id.startsWith('Custom::CDKBucketDeployment'));
  if (!handler) throw new Error('BucketDeployment handler not found: cdk-nag acknowledgments need updating');
  const policy = handler.node.findAll().find((c): c is iam.CfnPolicy => c instanceof iam.CfnPolicy);
  if (!policy) throw new Error('BucketDeployment handler policy not found: cdk-nag acknowledgments need updating');
  const result = nagRules.iam.IAMNoWildcardPermissions(policy);
  const findings = Array.isArray(result) ? (result as string[]) : [];
  const expected = [
    /^Action::s3:(GetObject|GetBucket|List|DeleteObject|Abort)\*$/,
    /^Resource::arn:(aws[a-z-]*|<AWS::Partition>):s3:::cdk-[a-z0-9]+-assets-(\d{12}|<AWS::AccountId>)-([a-z0-9-]+|<AWS::Region>)\/\*$/,
    /^Resource::<[A-Za-z0-9]+\.Arn>\/\*$/,
    /^Resource::\*$/,
  ];
  const known = findings.filter((f) => expected.some((re) => re.test(f)));
  acknowledge(
    handler,
    'CDK-maintained BucketDeployment handler (copies the built consent UI into its bucket): AWSLambdaBasicExecutionRole lets it write its own logs.',
    MANAGED_POLICY.lambdaBasic,
  );
  if (known.length > 0) {
    acknowledge(
      handler,
      "CDK-maintained BucketDeployment handler: its S3 wildcards (GetObject*, GetBucket*, List*, DeleteObject*, Abort*) are confined to the CDK asset bucket and the consent UI bucket; Resource * is CloudFront's CreateInvalidation, which supports no resource scoping.",
      ...known.map((f) => `AwsSolutions-IAM5[${f}]`),
    );
  }
  acknowledge(
    handler,
    "CDK-maintained BucketDeployment handler: its runtime is pinned and updated by aws-cdk-lib, not by ackd; ackd's own functions use the latest Node.js runtime.",
    'AwsSolutions-L1',
  );
}
