/**
 * lambdas/adapters/powertools.ts: ackd's logs, EMF metrics and tracing through Powertools for AWS
 * Lambda. Outside Lambda, metrics and tracing are inert (no output, clients untouched); inside
 * (AWS_LAMBDA_FUNCTION_NAME set, as the Lambda runtime sets it) the EMF lines Powertools writes
 * on stdout carry ackd's metric names, units and values in namespace `ackd`, dimension `stage`.
 * Output is captured at process.stdout/stderr, where Powertools writes it.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ChainEvent } from '../../lambdas/core/audit/event.ts';
import { flushMetrics, observed, observedUntraced, powertoolsLogger, recordEventMetrics, recordSequencerMetrics, traced } from '../../lambdas/adapters/powertools.ts';
import { METRICS, METRICS_NAMESPACE } from '../../lambdas/adapters/metric-names.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const LAMBDA_ENV = ['AWS_LAMBDA_FUNCTION_NAME', 'AWS_EXECUTION_ENV', 'ACKD_STAGE', 'POWERTOOLS_DEV', 'POWERTOOLS_METRICS_DISABLED', 'POWERTOOLS_TRACE_ENABLED'] as const;
const saved = Object.fromEntries(LAMBDA_ENV.map((k) => [k, process.env[k]]));
afterAll(() => {
  for (const k of LAMBDA_ENV) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

/** Everything written to stdout and stderr while `fn` runs. */
async function captured(fn: () => unknown): Promise<string[]> {
  const lines: string[] = [];
  const grab = (chunk: unknown) => {
    lines.push(...String(chunk).split('\n').filter((l) => l.trim() !== ''));
    return true;
  };
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(grab);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(grab);
  try {
    await fn();
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
  return lines;
}

const emfLines = (lines: string[]) => lines.map((l) => JSON.parse(l) as Json).filter((j) => j._aws?.CloudWatchMetrics);

const T0 = Date.parse('2026-11-30T10:00:00.000Z');
const iso = (ms: number) => new Date(T0 + ms).toISOString();
/** A request event as the sequencer sees it (only the fields the metrics read matter). */
function event(type: string, at: number, fields: { decision_at?: number | null } = {}): ChainEvent {
  return {
    type,
    at: iso(at),
    requested_at: iso(0),
    decision_at: fields.decision_at === undefined || fields.decision_at === null ? null : iso(fields.decision_at),
  } as unknown as ChainEvent;
}

const BATCH: ChainEvent[] = [
  event('requested', 0),
  event('email_sent', 10),
  event('requested', 0),
  event('email_failed', 20),
  event('notify_failed', 30),
  event('voted', 40_000),
  event('approved', 45_000, { decision_at: 45_000 }),
  event('denied', 90_000, { decision_at: 90_000 }),
  event('svid_issued', 45_750, { decision_at: 45_000 }),
  event('expired', 600_000, { decision_at: 600_000 }),
  { type: 'policy_set', at: iso(5) } as unknown as ChainEvent, // an admin event: no request fields, no metric
];

describe('outside Lambda (tests, npm start, the CLI): metrics and tracing are inert', () => {
  beforeEach(() => {
    for (const k of LAMBDA_ENV) delete process.env[k];
  });

  it('records and flushes nothing, prints nothing', async () => {
    const lines = await captured(() => {
      recordEventMetrics(BATCH);
      recordSequencerMetrics({ lagMs: 1234, sequenced: 10, checkpointSigned: true, verifyFailed: false });
      flushMetrics();
    });
    expect(lines).toEqual([]);
  });

  it('traced() hands back the very client, its middleware untouched', () => {
    const client = new DynamoDBClient({ region: 'us-east-1' });
    const before = client.middlewareStack.identify();
    expect(traced(client)).toBe(client);
    expect(client.middlewareStack.identify()).toEqual(before);
  });
});

describe('inside Lambda: EMF metrics in namespace ackd, dimension stage', () => {
  beforeEach(() => {
    process.env.AWS_LAMBDA_FUNCTION_NAME = 'ackd-test-Sweeper';
    process.env.ACKD_STAGE = 'test';
  });
  afterEach(() => {
    delete process.env.AWS_LAMBDA_FUNCTION_NAME;
  });

  it('every unit named in metric-names.ts is a CloudWatch unit Powertools accepts', () => {
    for (const unit of Object.values(METRICS)) expect(Object.values(MetricUnit)).toContain(unit);
  });

  it('recordEventMetrics: counts by event type, time to decision and issuance latency, published by flushMetrics', async () => {
    const before = await captured(() => recordEventMetrics(BATCH));
    expect(before).toEqual([]); // stored, not yet published
    const lines = await captured(() => flushMetrics());
    const emf = emfLines(lines);
    expect(emf).toHaveLength(1);
    const blob = emf[0]!;
    const [directive] = blob._aws.CloudWatchMetrics as Json[];
    expect(directive!.Namespace).toBe(METRICS_NAMESPACE);
    expect(directive!.Namespace).toBe('ackd');
    expect(directive!.Dimensions).toEqual([['stage']]); // the stage only: no per-function `service` split
    expect(blob.stage).toBe('test');
    expect(typeof blob._aws.Timestamp).toBe('number');
    const units = Object.fromEntries((directive!.Metrics as Json[]).map((m) => [m.Name, m.Unit]));
    expect(units).toEqual({
      Requests: 'Count',
      Approvals: 'Count',
      Denials: 'Count',
      Expiries: 'Count',
      SvidsMinted: 'Count',
      NotificationFailures: 'Count',
      TimeToDecisionMs: 'Milliseconds',
      IssuanceLatencyMs: 'Milliseconds',
    });
    expect(blob.Requests).toEqual([1, 1]);
    expect(blob.Approvals).toBe(1);
    expect(blob.Denials).toBe(1);
    expect(blob.Expiries).toBe(1);
    expect(blob.SvidsMinted).toBe(1);
    expect(blob.NotificationFailures).toEqual([1, 1]); // email_failed + notify_failed
    expect(blob.TimeToDecisionMs).toEqual([45_000, 90_000]); // approved, denied; expiry is not a decision by anyone
    expect(blob.IssuanceLatencyMs).toBe(750);

    // Published once: the buffer is empty afterwards, and an empty flush prints nothing (no Powertools warning either).
    expect(await captured(() => flushMetrics())).toEqual([]);
  });

  it('recordSequencerMetrics: lag, events sequenced, checkpoints signed, verify failures (0 as well as 1)', async () => {
    const lines = await captured(() => {
      recordSequencerMetrics({ lagMs: 1500, sequenced: 42, checkpointSigned: true, verifyFailed: false });
      flushMetrics();
    });
    const [blob] = emfLines(lines);
    const units = Object.fromEntries((blob!._aws.CloudWatchMetrics[0].Metrics as Json[]).map((m) => [m.Name, m.Unit]));
    expect(units).toEqual({
      AuditSequencerLagMs: 'Milliseconds',
      AuditEventsSequenced: 'Count',
      AuditCheckpointsSigned: 'Count',
      AuditVerifyFailures: 'Count',
    });
    expect(blob).toMatchObject({ AuditSequencerLagMs: 1500, AuditEventsSequenced: 42, AuditCheckpointsSigned: 1, AuditVerifyFailures: 0, stage: 'test' });

    // A run with nothing to sequence has no lag to report; a chain that does not verify counts 1.
    const [idle] = emfLines(
      await captured(() => {
        recordSequencerMetrics({ lagMs: null, sequenced: 0, checkpointSigned: false, verifyFailed: true });
        flushMetrics();
      }),
    );
    expect(idle).not.toHaveProperty('AuditSequencerLagMs');
    expect(idle).toMatchObject({ AuditEventsSequenced: 0, AuditCheckpointsSigned: 0, AuditVerifyFailures: 1 });
  });

  it('observed(): the handler\'s result passes through and its metrics are published when it ends, even when it throws', async () => {
    const logger = powertoolsLogger('test');
    const ok = observed(logger, async (e: { n: number }) => {
      recordSequencerMetrics({ lagMs: 5, sequenced: e.n, checkpointSigned: false, verifyFailed: false });
      return e.n * 2;
    });
    const context = { awsRequestId: 'req-1', functionName: 'ackd-test-Sweeper', memoryLimitInMB: '512', invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:x' } as never;
    let result = 0;
    const lines = await captured(async () => {
      result = await ok({ n: 3 }, context);
    });
    expect(result).toBe(6);
    expect(emfLines(lines)[0]).toMatchObject({ AuditEventsSequenced: 3 });

    const failing = observed(logger, async () => {
      recordEventMetrics([event('requested', 0)]);
      throw new Error('boom');
    });
    let thrown: unknown;
    const failed = await captured(async () => {
      await failing({}, context).catch((e: unknown) => (thrown = e));
    });
    expect((thrown as Error).message).toBe('boom');
    expect(emfLines(failed)[0]).toMatchObject({ Requests: 1 });
  });

  it('observedUntraced() (the MCP function): the same, its log lines carry the invocation, and nothing is instrumented for X-Ray', async () => {
    // As in a real Lambda runtime (Powertools Tracer is disabled without AWS_EXECUTION_ENV).
    process.env.AWS_EXECUTION_ENV = 'AWS_Lambda_nodejs24.x';
    try {
      const logger = powertoolsLogger('test');
      // A client handed to traced() is instrumented when observed() starts an invocation; observedUntraced() never loads the tracer.
      const client = traced(new DynamoDBClient({ region: 'us-east-1' }));
      const handler = observedUntraced(logger, async (e: { n: number }) => {
        logger.warn('inside', { n: e.n });
        recordEventMetrics([event('requested', 0)]);
        if (e.n < 0) throw new Error('boom');
        return client.middlewareStack.identify().join(' ');
      });
      const context = { awsRequestId: 'req-untraced', functionName: 'ackd-test-Mcp', memoryLimitInMB: '1024', invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:x' } as never;
      let stack = '';
      const lines = await captured(async () => {
        stack = await handler({ n: 1 }, context);
      });
      expect(stack).not.toContain('XRaySDKInstrumentation');
      expect(lines.map((l) => JSON.parse(l) as Json).find((l) => l.message === 'inside')).toMatchObject({ function_request_id: 'req-untraced', n: 1 });
      expect(emfLines(lines)[0]).toMatchObject({ Requests: 1 });
      const failed = await captured(async () => {
        await handler({ n: -1 }, context).catch(() => undefined);
      });
      expect(emfLines(failed)[0]).toMatchObject({ Requests: 1 });
    } finally {
      delete process.env.AWS_EXECUTION_ENV;
    }
  });
});

describe('powertoolsLogger: ackd\'s Logger port as Powertools structured JSON', () => {
  beforeEach(() => {
    process.env.AWS_LAMBDA_FUNCTION_NAME = 'ackd-test-Mcp';
    process.env.ACKD_STAGE = 'test';
  });

  it('one JSON object per line: level, message, service, stage, the detail at the top level (metric filters match $.code); secrets redacted', async () => {
    const logger = powertoolsLogger('mcp', { level: 'info' });
    logger.addContext({ awsRequestId: 'req-42', functionName: 'ackd-test-Mcp', memoryLimitInMB: '1024', invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:ackd-test-Mcp' } as never);
    const lines = await captured(() => {
      logger.error('dependency error', { tool: 'check_authorization', code: 'ERR_ISSUER_UNAVAILABLE', cause: 'connect ECONNREFUSED', api_key: 'ackd_secret', nested: { password: 'p' } });
      logger.warn('careful', { message: 'a key Powertools reserves', level: 3 });
      logger.info('sweep done', { expired: 2 });
    });
    const [err, warn, info] = lines.map((l) => JSON.parse(l) as Json);
    expect(err).toMatchObject({
      level: 'ERROR',
      message: 'dependency error',
      service: 'mcp',
      stage: 'test',
      tool: 'check_authorization',
      code: 'ERR_ISSUER_UNAVAILABLE',
      cause: 'connect ECONNREFUSED',
      api_key: '[redacted]',
      nested: { password: '[redacted]' },
      function_request_id: 'req-42',
    });
    expect(typeof err!.timestamp).toBe('string');
    expect(lines.join('\n')).not.toContain('ackd_secret');
    // Keys Powertools keeps for itself are not dropped: they are kept with a `_` suffix.
    expect(warn).toMatchObject({ level: 'WARN', message: 'careful', message_: 'a key Powertools reserves', level_: 3 });
    expect(info).toMatchObject({ level: 'INFO', message: 'sweep done', expired: 2 });
  });

  it('honours the level: below it nothing is written', async () => {
    const logger = powertoolsLogger('consent-api', { level: 'error' });
    const lines = await captured(() => {
      logger.info('quiet');
      logger.warn('quiet too');
      logger.error('loud');
    });
    expect(lines.map((l) => (JSON.parse(l) as Json).message)).toEqual(['loud']);
  });
});

describe('traced() in a Lambda runtime: the client reports its calls to X-Ray', () => {
  it('adds the X-Ray SDK instrumentation to the client\'s middleware when the first invocation starts (the tracer is loaded then, not at import)', async () => {
    process.env.AWS_LAMBDA_FUNCTION_NAME = 'ackd-test-Mcp';
    process.env.AWS_EXECUTION_ENV = 'AWS_Lambda_nodejs24.x';
    try {
      const client = new DynamoDBClient({ region: 'us-east-1' });
      expect(client.middlewareStack.identify().join(' ')).not.toContain('XRaySDKInstrumentation');
      expect(traced(client)).toBe(client);
      const seen: string[] = [];
      await observed(powertoolsLogger('mcp', { level: 'error' }), async () => void seen.push(client.middlewareStack.identify().join(' ')))({}, undefined as never);
      expect(seen[0]).toContain('XRaySDKInstrumentation');
      // A client traced once the tracer is loaded is instrumented at once.
      const later = new DynamoDBClient({ region: 'us-east-1' });
      expect(traced(later).middlewareStack.identify().join(' ')).toContain('XRaySDKInstrumentation');
    } finally {
      delete process.env.AWS_EXECUTION_ENV;
      delete process.env.AWS_LAMBDA_FUNCTION_NAME;
    }
  });
});
