import { loadConfig } from '../config.ts';
import { buildDeps, noMinter } from '../deps.ts';
import { notifierFromEnv } from '../consent-api/deps.ts';

// The periodic sweep (EventBridge schedule): records expiry of overdue pending requests so every
// audit record gets decision = expired and a decision_at, even if nobody reads it again; and
// re-sends consent emails whose first send failed.
const config = loadConfig();
const deps = buildDeps(config, { minter: noMinter, notifier: notifierFromEnv(process.env, config) });

export async function handler(): Promise<{ expired: number; renotified: number }> {
  const result = await deps.service.sweep(500);
  deps.logger.info('sweep done', result);
  return result;
}
