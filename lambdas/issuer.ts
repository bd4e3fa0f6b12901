import type { Config } from './config.ts';
import { AckdError } from './core/errors.ts';
import type { SvidMinter } from './core/ports.ts';
import { LocalCaMinter } from './adapters/local-ca/index.ts';
import { remoteSpireMinterFromEnv } from '../spire/sidecar/client.ts';

export type IssuerKind = 'local-ca' | 'spire-remote';

/**
 * The SVID issuer named by ACKD_MINTER. The in-process CA is for local mode only: it is refused
 * anywhere else, so a deployment can never silently issue from a CA without SPIRE.
 */
export async function issuerFromConfig(config: Config, env: Record<string, string | undefined> = process.env): Promise<{ kind: IssuerKind; minter: SvidMinter }> {
  const kind = env.ACKD_MINTER?.trim() || (config.local ? 'local-ca' : '');
  switch (kind) {
    case 'local-ca':
      if (!config.local) throw new AckdError('ERR_CONFIG', 'ACKD_MINTER: local-ca is allowed only in local mode (ACKD_STAGE=local)', { field: 'ACKD_MINTER' });
      return { kind, minter: await LocalCaMinter.create({ trustDomain: config.trustDomain, ...(env.ACKD_LOCAL_CA_DIR ? { dir: env.ACKD_LOCAL_CA_DIR } : {}) }) };
    case 'spire-remote':
      // On AWS: SPIRE on Fargate through the bridge sidecar (spire/sidecar). ACKD_SPIRE_BRIDGE_URL +
      // ACKD_SPIRE_BRIDGE_SECRET_ARN (a plain ACKD_SPIRE_BRIDGE_SECRET only in local mode).
      return { kind, minter: remoteSpireMinterFromEnv(env, { local: config.local, region: config.region }) };
    default:
      throw new AckdError('ERR_CONFIG', `ACKD_MINTER: unknown issuer "${kind}" (expected local-ca or spire-remote)`, { field: 'ACKD_MINTER' });
  }
}
