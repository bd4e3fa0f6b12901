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
};

/** In the MCP bundle, but evaluated only when first used (await import), not at a cold start. */
const FIRST_USE: Record<string, string> = {
  '@aws-lambda-powertools/tracer': 'loaded by startTracing() at the first invocation',
  'aws-xray-sdk-core': 'under the Powertools tracer',
  'cls-hooked': 'under the X-Ray SDK',
  'node_modules/semver/': 'under the X-Ray SDK',
  '@peculiar/x509': 'X.509 path validation runs at the first SVID proof; the in-process CA is local only',
  'node_modules/asn1js/': 'under @peculiar/x509',
  'reflect-metadata': 'under @peculiar/x509',
  'node_modules/tsyringe/': 'under @peculiar/x509',
  'lambdas/verify/path.ts': 'X.509 path validation runs at the first SVID proof',
  'lambdas/adapters/local-ca/': 'the in-process CA is for local mode only',
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

  it.each(Object.entries(FIRST_USE))('contains %s but does not evaluate it at a cold start (%s)', (needle) => {
    expect(mcp.why(needle), `${needle} is no longer in the MCP bundle at all: update FIRST_USE`).toBeDefined();
    expect(chainText(mcp.why(needle, { atInit: true })), `${needle} is evaluated at init through this chain of static imports`).toBe('');
  });

  it('still evaluates at init what every request needs: the MCP SDK, DynamoDB, the service', () => {
    for (const needle of ['@modelcontextprotocol/sdk/dist/esm/server/index.js', '@aws-sdk/client-dynamodb', 'lambdas/core/service.ts', 'lambdas/mcp/server.ts']) {
      expect(mcp.why(needle, { atInit: true }), needle).toBeDefined();
    }
  });
});

describe('the checks above can fail', () => {
  it('the sweeper\'s bundle does carry the audit service, SES and the channels', async () => {
    const sweeper = await bundleGraph(HANDLERS.sweeper.entry);
    for (const needle of ['lambdas/core/audit/service.ts', 'lambdas/core/audit/sequencer.ts', '@aws-sdk/client-sesv2', 'lambdas/adapters/channels/']) expect(sweeper.bytesOf(needle), needle).toBeGreaterThan(RESIDUE_BYTES);
  });

  it('the consent API function\'s bundle does carry @simplewebauthn/server, at init', async () => {
    const consent = await bundleGraph(HANDLERS.consentApi.entry);
    expect(chainText(consent.why('@simplewebauthn/server', { atInit: true }))).toContain('lambdas/adapters/webauthn/simplewebauthn.ts');
    expect(consent.bytesOf('@simplewebauthn/server')).toBeGreaterThan(RESIDUE_BYTES);
  });
});
