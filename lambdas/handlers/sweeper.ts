import { loadConfig } from '../config.ts';
import { buildDeps, noMinter, periodicWork } from '../deps.ts';
import { notifierFromEnv, routesFromEnv } from '../consent-api/deps.ts';

// The periodic sweep (EventBridge schedule): links audit events whose linking failed, records
// expiry of overdue pending requests so every audit record gets decision = expired and a
// decision_at even if nobody reads it again, re-sends consent emails whose first send failed, and
// asks the escalation routes of requests nobody decided in time, and signs a checkpoint of the
// audit chain (ACKD_AUDIT_KEY, a KMS key).
const config = loadConfig();
const routes = await routesFromEnv(process.env, config);
const deps = buildDeps(config, { minter: noMinter, notifier: notifierFromEnv(process.env, config), ...(routes ? { routes } : {}) });

export async function handler(): Promise<{ expired: number; renotified: number; linked: number; escalated: number; checkpoint_seq: number | null }> {
  const result = await periodicWork(deps, 500);
  deps.logger.info('sweep done', result);
  return result;
}
