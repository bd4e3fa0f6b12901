/**
 * What the MCP function's bundle carries and what its cold start evaluates (issue 15 item 8),
 * read from esbuild's metafile of the bundle built with exactly lib/constructs/api.ts BUNDLING
 * (scripts/bundle-graph.ts). Sizes and times are measured by scripts/bundle-size.ts and the
 * bench's `bundle` row, not here: this pins the cuts, so none can come back silently.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { HANDLERS } from '../../lib/constructs/api.ts';
import { bundleGraph, type BundleGraph } from '../../scripts/bundle-graph.ts';

/** Never in the MCP function, and why (a module path contains the key). */
const ABSENT: Record<string, string> = {
  '@simplewebauthn/server': 'passkeys are registered and verified by the consent API only',
  'lambdas/adapters/webauthn/': 'passkeys are registered and verified by the consent API only',
  '@aws-sdk/client-sesv2': 'consent mail is sent by the sweeper (after sequencing), never by the MCP function',
  'lambdas/adapters/ses/': 'consent mail is sent by the sweeper (after sequencing), never by the MCP function',
  'lambdas/adapters/channels/': 'notification routes are the sweeper\'s',
  'lambdas/consent-api/': 'the consent API is its own function',
  '@aws-sdk/client-cognito-identity-provider': 'approver administration is the CLI\'s',
  'lambdas/core/audit/service.ts': 'the audit log is exported, verified and signed by the sweeper and the audit functions (buildServiceDeps)',
  'lambdas/core/audit/sequencer.ts': 'the audit log is sequenced by the sweeper (buildServiceDeps)',
  // Issue 15: the AWS credential broker is its own function (lambdas/handlers/aws-credentials.ts).
  '@aws-sdk/client-sts': 'AWS credentials are issued by the AWS credentials function (the MCP function only revokes, through IAM)',
  'lambdas/adapters/aws/sts.ts': 'AWS credentials are issued by the AWS credentials function',
  'lambdas/http/aws-routes.ts': 'POST /v1/aws/credentials is the AWS credentials function\'s (createServiceApp)',
  'lambdas/http/svid-pop.ts': 'SVID proofs are verified by the AWS credentials function',
  'lambdas/http/svid-chain.ts': 'SVID proofs are verified by the AWS credentials function',
  'lambdas/verify/path.ts': 'X.509 path validation of SVID proofs is the AWS credentials function\'s',
  // The X.509 family: reached only through the SVID proofs and the in-process CA, neither here.
  '@peculiar/': 'no X.509 library: SVID proofs are the AWS credentials function\'s, the in-process CA the local server\'s, and the CSR is hand-written DER (spire/bridge/csr.ts)',
  'node_modules/asn1js/': 'under @peculiar/x509',
  'reflect-metadata': 'under @peculiar/x509',
  'node_modules/tsyringe/': 'under @peculiar/x509',
  'lambdas/adapters/local-ca/': 'a Lambda function mints through SPIRE only (lambdas/issuer.ts); the in-process CA is the local server\'s',
  // The in-code tracer: Lambda's active tracing traces the MCP function's invocations without it.
  '@aws-lambda-powertools/tracer': 'the MCP function uses observedUntraced (docs/operations.md, "Tracing")',
  'aws-xray-sdk-core': 'under the Powertools tracer',
  'cls-hooked': 'under the X-Ray SDK',
  'node_modules/semver/': 'under the X-Ray SDK',
};


/** What an imported, unused module may leave in the output (see ABSENT's test). */
const RESIDUE_BYTES = 256;

const chainText = (chain: string[] | undefined): string => (chain ? chain.join(' → ') : '');

describe('the MCP function\'s bundle (lambdas/handlers/mcp.ts, built with BUNDLING)', () => {
  let mcp: BundleGraph;
  beforeAll(async () => {
    mcp = await bundleGraph(HANDLERS.mcp.entry);
  });

  // A module imported but entirely unused can leave a few bytes: top-level constants esbuild
  // cannot prove free of side effects (a `new Set(...)`, a regex). Any real use is kilobytes.
  it.each(Object.entries(ABSENT))('does not contain %s (%s)', (needle) => {
    expect(mcp.bytesOf(needle), `${needle} is in the MCP bundle through ${chainText(mcp.why(needle))}`).toBeLessThan(RESIDUE_BYTES);
  });

  it('still evaluates at init what every request needs: the MCP SDK, DynamoDB, the service', () => {
    for (const needle of ['@modelcontextprotocol/sdk/dist/esm/server/index.js', '@aws-sdk/client-dynamodb', 'lambdas/core/service.ts', 'lambdas/mcp/server.ts']) {
      expect(mcp.why(needle, { atInit: true }), needle).toBeDefined();
    }
  });

  it('still denies a revoked request\'s AWS sessions itself (revoke_authorization): IAM and the broker\'s revocation side are in it', () => {
    for (const needle of ['@aws-sdk/client-iam', 'lambdas/adapters/aws/iam.ts', 'lambdas/core/aws-broker.ts']) expect(mcp.bytesOf(needle), needle).toBeGreaterThan(RESIDUE_BYTES);
  });
});

describe('the AWS credentials function\'s bundle (lambdas/handlers/aws-credentials.ts)', () => {
  let broker: BundleGraph;
  beforeAll(async () => {
    broker = await bundleGraph(HANDLERS.awsCredentials.entry);
  });

  it('carries what the broker needs: STS, the SVID proof check (X.509 path validation evaluated at the first proof), the SPIRE bridge client, KMS for the outbox seal', () => {
    // (and KMS: it seals the outbox entry of its aws_credentials_issued event with the seal key's GenerateMac)
    for (const needle of ['@aws-sdk/client-sts', 'lambdas/http/svid-pop.ts', 'spire/sidecar/client.ts', '@peculiar/x509', '@aws-sdk/client-kms']) expect(broker.bytesOf(needle), needle).toBeGreaterThan(RESIDUE_BYTES);
    expect(chainText(broker.why('@peculiar/x509', { atInit: true })), '@peculiar/x509 is evaluated at init through this chain').toBe('');
  });

  it('carries none of the service: no MCP server or its schemas (no zod), no authorization service, no signers, no passkeys, no mail, no IAM (it never revokes)', () => {
    for (const needle of ['@modelcontextprotocol/sdk', 'lambdas/mcp/', 'node_modules/zod/', 'lambdas/core/service.ts', 'lambdas/mcp/server.ts', 'lambdas/mcp/http.ts', 'lambdas/adapters/signing/kms.ts', '@simplewebauthn/server', '@aws-sdk/client-sesv2', 'lambdas/adapters/local-ca/', '@aws-sdk/client-iam']) {
      expect(broker.bytesOf(needle), `${needle} through ${chainText(broker.why(needle))}`).toBeLessThan(RESIDUE_BYTES);
    }
  });
});

describe('the checks above can fail', () => {
  it('the sweeper\'s bundle does carry the audit service, SES and the channels', async () => {
    const sweeper = await bundleGraph(HANDLERS.sweeper.entry);
    for (const needle of ['lambdas/core/audit/service.ts', 'lambdas/core/audit/sequencer.ts', '@aws-sdk/client-sesv2', 'lambdas/adapters/channels/']) expect(sweeper.bytesOf(needle), needle).toBeGreaterThan(RESIDUE_BYTES);
  });

  it('the sweeper\'s bundle does carry the Powertools tracer (it uses observed and traced)', async () => {
    const sweeper = await bundleGraph(HANDLERS.sweeper.entry);
    expect(sweeper.bytesOf('@aws-lambda-powertools/tracer')).toBeGreaterThan(RESIDUE_BYTES);
  });

  it('the consent API function\'s bundle does carry @simplewebauthn/server, at init', async () => {
    const consent = await bundleGraph(HANDLERS.consentApi.entry);
    expect(chainText(consent.why('@simplewebauthn/server', { atInit: true }))).toContain('lambdas/adapters/webauthn/simplewebauthn.ts');
    expect(consent.bytesOf('@simplewebauthn/server')).toBeGreaterThan(RESIDUE_BYTES);
  });
});
