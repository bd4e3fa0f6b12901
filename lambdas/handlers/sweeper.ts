import { loadConfig } from '../config.ts';
import { buildDeps, checkpointSealer, noMinter, periodicWork } from '../deps.ts';
import { notifierFromEnv, routesFromEnv } from '../consent-api/deps.ts';

// The audit sequencer and the periodic sweep, in one function with reserved concurrency 1 (so
// one sequencer runs at a time, and checkpoints are never signed concurrently):
// - invoked by the table's DynamoDB stream (filtered to items with audit events waiting): it
//   sequences them into the audit log, announces new requests (consent notifications leave the
//   agent's critical path), and signs a tree head when one is due (ACKD_AUDIT_KEY, a KMS key);
// - invoked by its EventBridge schedule: it also records expiry of overdue pending requests,
//   re-sends consent notifications whose first send failed, escalates, and signs a tree head.
// The stream records only wake it: what to sequence is read from the table itself, so a record
// lost or retried changes nothing.
const config = loadConfig();
const routes = await routesFromEnv(process.env, config);
const deps = buildDeps(config, { minter: noMinter, notifier: notifierFromEnv(process.env, config), ...(routes ? { routes } : {}) });
const seal = checkpointSealer(deps.audit, deps.logger, config.checkpointEverySeconds * 1000);

export async function handler(event: { Records?: unknown[] } = {}): Promise<Record<string, unknown>> {
  if (Array.isArray(event.Records)) {
    const run = await deps.sequencer.run();
    await seal(run);
    const result = { records: event.Records.length, busy: run.busy, sequenced: run.sequenced, recovered: run.recovered, max_lag_ms: run.maxLagMs, tree_size: run.head?.size ?? null };
    deps.logger.info('audit events sequenced', result);
    return result;
  }
  const result = await periodicWork(deps, 500);
  deps.logger.info('sweep done', result);
  return result;
}
