import { loadConfig } from '../config.ts';
import { buildDeps, noMinter } from '../deps.ts';

// The periodic sweep (EventBridge schedule): records expiry of overdue pending requests so every
// audit record gets decision = expired and a decision_at, even if nobody reads it again.
const config = loadConfig();
const deps = buildDeps(config, { minter: noMinter });

export async function handler(): Promise<{ expired: number }> {
  const result = await deps.service.sweep(500);
  deps.logger.info('sweep done', result);
  return result;
}
