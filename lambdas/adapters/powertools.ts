/**
 * Powertools for AWS Lambda behind ackd's ports: structured JSON logs (the `Logger` port), EMF
 * metrics (namespace `ackd`, dimension `stage`; names in ./metric-names.ts) and X-Ray tracing of
 * AWS SDK clients.
 *
 * Metrics and tracing work only inside Lambda (AWS_LAMBDA_FUNCTION_NAME set): anywhere else
 * (tests, `npm start`, the CLI) they do nothing and print nothing, and nothing of Powertools'
 * metrics or tracer is even constructed. The logger works everywhere.
 *
 * The tracer (Powertools Tracer over the X-Ray SDK, cls-hooked and semver) is not even evaluated
 * at import: the first invocation loads it (`observed`, `observeRequests`), so a cold start's
 * init does not pay for it. A function built with `observedUntraced` and without `traced` does
 * not carry it at all (the MCP function): Lambda's active tracing still traces its invocations.
 */
import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { Metrics, type MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Tracer } from '@aws-lambda-powertools/tracer';
import type { MiddlewareHandler } from 'hono';
import type { ChainEvent } from '../core/audit/event.ts';
import type { Logger } from '../core/ports.ts';
import { redact } from './log.ts';
import { METRICS, METRICS_NAMESPACE, STAGE_DIMENSION, type MetricName } from './metric-names.ts';

/** True inside a Lambda execution environment. Read on every call, so tests can switch it. */
function inLambda(): boolean {
  return Boolean(process.env.AWS_LAMBDA_FUNCTION_NAME);
}

function stage(): string {
  return process.env.ACKD_STAGE?.trim() || 'unknown';
}

// ---------- logs ----------

/** Keys Powertools reserves for itself (it would drop them from a log line): ours are kept with a `_` suffix. */
const RESERVED = new Set(['level', 'message', 'sampling_rate', 'service', 'timestamp']);

function attributes(detail: Record<string, unknown> | undefined): Record<string, unknown> {
  const clean = redact(detail ?? {}) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(clean)) out[RESERVED.has(k) ? `${k}_` : k] = v;
  return out;
}

/** The Lambda context object a handler receives (request id, function name, …). */
export type LambdaContext = Parameters<PowertoolsLogger['addContext']>[0];

/** The `Logger` port, plus the Lambda invocation its lines belong to. */
export interface LambdaLogger extends Logger {
  /** Adds the invocation's request id, function name and cold start to the lines that follow. */
  addContext(context: LambdaContext): void;
}

/**
 * ackd's `Logger` port over Powertools Logger: one JSON object per line with `level`, `message`,
 * `timestamp`, `service` (serviceName), `stage`, the detail's keys at the top level (so
 * CloudWatch metric filters and Logs Insights can match e.g. `$.code`), and, after
 * `addContext`, the invocation's request id. Secrets are redacted by key name, as jsonLogger does.
 */
export function powertoolsLogger(serviceName: string, opts: { level?: 'debug' | 'info' | 'warn' | 'error'; base?: Record<string, unknown> } = {}): LambdaLogger {
  const logger = new PowertoolsLogger({
    serviceName,
    logLevel: opts.level ?? 'info',
    persistentKeys: { [STAGE_DIMENSION]: stage(), ...attributes(opts.base) },
  });
  return {
    info: (msg, detail) => logger.info(msg, attributes(detail)),
    warn: (msg, detail) => logger.warn(msg, attributes(detail)),
    error: (msg, detail) => logger.error(msg, attributes(detail)),
    addContext: (context) => logger.addContext(context),
  };
}

// ---------- metrics ----------

let metricsInstance: Metrics | undefined;

/** The process's one Metrics buffer, made on first use inside Lambda; undefined outside it. */
function metrics(): Metrics | undefined {
  if (!inLambda()) return undefined;
  if (!metricsInstance) {
    metricsInstance = new Metrics({ namespace: METRICS_NAMESPACE });
    // Exactly one dimension, the stage: Powertools' default `service` dimension would split each
    // metric by function, and the alarms name one metric per stage.
    metricsInstance.clearDefaultDimensions();
    metricsInstance.setDefaultDimensions({ [STAGE_DIMENSION]: stage() });
  }
  return metricsInstance;
}

function add(m: Metrics, name: MetricName, value: number): void {
  m.addMetric(name, METRICS[name] as (typeof MetricUnit)[keyof typeof MetricUnit], value);
}

/** Milliseconds from `from` to `to` (ISO timestamps), or undefined when either is missing or unreadable. */
function msBetween(from: string | null | undefined, to: string | null | undefined): number | undefined {
  if (!from || !to) return undefined;
  const d = Date.parse(to) - Date.parse(from);
  return Number.isFinite(d) && d >= 0 ? d : undefined;
}

const COUNTED: Partial<Record<string, MetricName>> = {
  requested: 'Requests',
  approved: 'Approvals',
  denied: 'Denials',
  expired: 'Expiries',
  svid_issued: 'SvidsMinted',
  email_failed: 'NotificationFailures',
  notify_failed: 'NotificationFailures',
};

/**
 * Business metrics of sequenced audit events (the sequencer calls it once per batch, so each
 * event counts exactly once): Requests, Approvals, Denials, Expiries, SvidsMinted,
 * NotificationFailures; TimeToDecisionMs per approval or denial; IssuanceLatencyMs per SVID.
 * Stored until flushMetrics(). Outside Lambda: nothing.
 */
export function recordEventMetrics(events: readonly ChainEvent[]): void {
  const m = metrics();
  if (!m || events.length === 0) return;
  for (const e of events) {
    const name = COUNTED[e.type];
    if (!name) continue;
    add(m, name, 1);
    if (!('requested_at' in e)) continue; // admin events have no request fields
    if (e.type === 'approved' || e.type === 'denied') {
      const ms = msBetween(e.requested_at, e.decision_at);
      if (ms !== undefined) add(m, 'TimeToDecisionMs', ms);
    } else if (e.type === 'svid_issued') {
      const ms = msBetween(e.decision_at, e.at);
      if (ms !== undefined) add(m, 'IssuanceLatencyMs', ms);
    }
  }
}

export interface SequencerRun {
  /** How long the oldest event of this run waited to be sequenced; null when there was none. */
  readonly lagMs: number | null;
  /** Events put into the chain. */
  readonly sequenced: number;
  readonly checkpointSigned: boolean;
  /** The chain did not verify (so no checkpoint was signed). */
  readonly verifyFailed: boolean;
}

/**
 * One sequencer run: AuditSequencerLagMs (when there was an event), AuditEventsSequenced,
 * AuditCheckpointsSigned and AuditVerifyFailures (0 or 1, published every run so a graph shows
 * zeros, not gaps). Stored until flushMetrics(). Outside Lambda: nothing.
 */
export function recordSequencerMetrics(run: SequencerRun): void {
  const m = metrics();
  if (!m) return;
  if (run.lagMs !== null && Number.isFinite(run.lagMs)) add(m, 'AuditSequencerLagMs', Math.max(0, run.lagMs));
  add(m, 'AuditEventsSequenced', run.sequenced);
  add(m, 'AuditCheckpointsSigned', run.checkpointSigned ? 1 : 0);
  add(m, 'AuditVerifyFailures', run.verifyFailed ? 1 : 0);
}

/** Publishes the stored metrics (one EMF line on stdout) at the end of an invocation; nothing when none are stored. */
export function flushMetrics(): void {
  const m = metricsInstance;
  if (!m || !m.hasStoredMetrics()) return;
  m.publishStoredMetrics();
}

// ---------- tracing ----------

let tracerInstance: Tracer | undefined;
let tracerLoading: Promise<Tracer> | undefined;
/** Clients traced() was given before the tracer was loaded: instrumented when it is. */
const awaitingTracer = new Set<object>();

/**
 * An AWS SDK v3 client whose calls appear in X-Ray as subsegments (Powertools Tracer,
 * captureAWSv3Client). Inside Lambda before the first invocation, the client is instrumented
 * when startTracing() runs (the start of that invocation, before any call is made); outside
 * Lambda: the very same client, untouched.
 */
export function traced<C extends object>(client: C): C {
  if (!inLambda()) return client;
  if (tracerInstance) return tracerInstance.captureAWSv3Client(client);
  awaitingTracer.add(client);
  return client;
}

/**
 * Loads the tracer (once per process, inside Lambda only, once a client was traced) and
 * instruments the clients traced() was given so far. `observed` and `observeRequests` call it at the start of every invocation;
 * after the first it costs nothing. Tracer itself stays disabled outside a real Lambda runtime
 * (AWS_EXECUTION_ENV unset) and under SAM.
 */
export async function startTracing(): Promise<void> {
  if (!inLambda() || awaitingTracer.size === 0) return;
  if (!tracerInstance) {
    tracerLoading ??= import('@aws-lambda-powertools/tracer').then(({ Tracer }) => new Tracer({ serviceName: 'ackd' }));
    tracerInstance = await tracerLoading;
  }
  for (const client of awaitingTracer) tracerInstance.captureAWSv3Client(client);
  awaitingTracer.clear();
}

// ---------- invocations ----------

/**
 * A Lambda handler whose log lines carry the invocation (request id, cold start), whose AWS SDK
 * calls are traced, and whose stored metrics are published when it ends, however it ends.
 */
export function observed<E, R>(logger: LambdaLogger, handler: (event: E, context: LambdaContext) => Promise<R>): (event: E, context: LambdaContext) => Promise<R> {
  return observedUntraced(logger, async (event, context) => {
    await startTracing();
    return handler(event, context);
  });
}

/**
 * observed() without the in-code tracer: no AWS SDK subsegments, and no Powertools Tracer, X-Ray
 * SDK, cls-hooked or semver in the bundle (the MCP function: test/infra/bundle-mcp.test.ts).
 * With Lambda's active tracing the invocation is still traced: X-Ray gets the Lambda service's
 * segment and the function's (init, invocation, overhead) without any SDK in the function.
 */
export function observedUntraced<E, R>(logger: LambdaLogger, handler: (event: E, context: LambdaContext) => Promise<R>): (event: E, context: LambdaContext) => Promise<R> {
  return async (event, context) => {
    if (context) logger.addContext(context);
    try {
      return await handler(event, context);
    } finally {
      flushMetrics();
    }
  };
}

/**
 * The same for a Hono app whose Lambda handler cannot be wrapped (a streamed response: the runtime
 * owns the handler): the invocation comes from the adapter's env (`lambdaContext`, or `context`
 * when streaming), metrics are published once the response is made.
 */
export function observeRequests(logger: LambdaLogger): MiddlewareHandler {
  return async (c, next) => {
    const env = c.env as { lambdaContext?: LambdaContext; context?: LambdaContext } | undefined;
    const context = env?.lambdaContext ?? env?.context;
    if (context) logger.addContext(context);
    try {
      await startTracing();
      await next();
    } finally {
      flushMetrics();
    }
  };
}
