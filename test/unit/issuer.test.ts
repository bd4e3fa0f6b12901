/**
 * A Lambda function's SVID issuer (lambdas/issuer.ts): SPIRE through the bridge, and nothing else.
 * The in-process CA is the local server's (spire/issuer.ts), refused here even in local mode, and
 * not in any function's bundle (test/infra/bundle-mcp.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../lambdas/config.ts';
import { issuerFromConfig } from '../../lambdas/issuer.ts';
import { isAckdError } from '../../lambdas/core/errors.ts';

const local = loadConfig({ ACKD_STAGE: 'local' });
const BRIDGE = { ACKD_SPIRE_BRIDGE_URL: 'http://127.0.0.1:9', ACKD_SPIRE_BRIDGE_SECRET: 'a'.repeat(64) };

function refusal(f: () => unknown): { code: string; message: string } {
  try {
    f();
  } catch (e) {
    if (isAckdError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('issuerFromConfig (a Lambda function\'s issuer)', () => {
  it('is SPIRE through the bridge, named or by default', () => {
    expect(issuerFromConfig(local, { ...BRIDGE, ACKD_MINTER: 'spire-remote' }).kind).toBe('spire-remote');
    const { kind, minter } = issuerFromConfig(local, BRIDGE);
    expect(kind).toBe('spire-remote');
    expect(typeof minter.mint).toBe('function');
  });

  it('refuses the in-process CA, even in local mode, naming ACKD_MINTER and where that CA belongs', () => {
    const r = refusal(() => issuerFromConfig(local, { ...BRIDGE, ACKD_MINTER: 'local-ca' }));
    expect(r.code).toBe('ERR_CONFIG');
    expect(r.message).toMatch(/^ACKD_MINTER: local-ca is the local server's issuer/);
  });

  it('refuses an unknown issuer, and SPIRE without its bridge URL, naming the variable', () => {
    expect(refusal(() => issuerFromConfig(local, { ...BRIDGE, ACKD_MINTER: 'vault' })).message).toMatch(/^ACKD_MINTER: unknown issuer "vault"/);
    expect(refusal(() => issuerFromConfig(local, {})).message).toMatch(/^ACKD_SPIRE_BRIDGE_URL: is required/);
  });
});
