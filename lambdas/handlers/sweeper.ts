import { loadConfig } from '../config.ts';
import { buildDeps, checkpointSealer, noMinter, periodicWork } from '../deps.ts';
import { notifierFromEnv, routesFromEnv } from '../consent-api/deps.ts';
import { observed, powertoolsLogger, recordEventMetrics, recordSequencerMetrics, traced } from '../adapters/powertools.ts';

// The audit sequencer and the periodic sweep, in one function with reserved concurrency 1 (so
// one sequencer runs at a time, and tree heads are never signed concurrently):
// - invoked by the table's DynamoDB stream (filtered to items with audit events waiting): it
//   sequences them into the audit log, announces new requests (consent notifications leave the
//   agent's critical path), and signs a tree head when one is due (ACKD_AUDIT_KEY, a KMS key);
// - invoked by its EventBridge schedule: it also records expiry of overdue pending requests,
//   re-sends consent notifications whose first send failed, escalates, and signs a tree head.
// The stream records only wake it: what to sequence is read from the table itself, so a record
// lost or delivered twice changes nothing. Metrics (EMF) come from the events it sequences.
const config = loadConfig();
const logger = powertoolsLogger('sweeper', { level: config.logLevel });
const routes = await routesFromEnv(process.env, config);
const deps = buildDeps(config, {
  minter: noMinter,
  notifier: notifierFromEnv(process.env, config),
  logger,
  instrument: traced,
  onSequenced: recordEventMetrics,
  ...(routes ? { routes } : {}),
});
const seal = checkpointSealer(deps.audit, deps.logger, config.checkpointEverySeconds * 1000);

export const handler = observed(logger, async (event: { Records?: unknown[] } = {}): Promise<Record<string, unknown>> => {
  if (Array.isArray(event.Records)) {
    const run = await deps.sequencer.run();
    const sealed = await seal(run);
    recordSequencerMetrics({ lagMs: run.sequenced > 0 ? run.maxLagMs : null, sequenced: run.sequenced, checkpointSigned: sealed.signed, verifyFailed: sealed.failed });
    const result = { records: event.Records.length, busy: run.busy, sequenced: run.sequenced, recovered: run.recovered, max_lag_ms: run.maxLagMs, tree_size: run.head?.size ?? null };
    deps.logger.info('audit events sequenced', result);
    return result;
  }
  const result = await periodicWork(deps, 500);
  recordSequencerMetrics({ lagMs: null, sequenced: result.sequenced, checkpointSigned: result.checkpoint_seq !== null && result.checkpoint_error === undefined, verifyFailed: result.checkpoint_error !== undefined });
  deps.logger.info('sweep done', result);
  return result;
});
