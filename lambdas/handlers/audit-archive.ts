import { S3ObjectSink } from '../adapters/s3/put-object.ts';
import { formatExport } from '../core/audit/format.ts';
import { archiveDayOf } from '../core/archive.ts';
import { loadConfig, required } from '../config.ts';
import { buildDeps, noMinter } from '../deps.ts';
import { observed, powertoolsLogger, traced } from '../adapters/powertools.ts';

// The daily archive (EventBridge, after midnight UTC): the previous UTC day of the audit chain,
// exported exactly as `ackd audit export --since <day> --until <day+1>` exports it (events and
// the checkpoints that anchor them, JSONL), written once to audit/YYYY/MM/DD.jsonl in a bucket
// with S3 Object Lock (compliance mode). `{"day": "YYYY-MM-DD"}` archives a past day by hand.
// The day is buffered in memory before the single PutObject (a day of ~1 KiB events fits the
// function's memory up to a few hundred thousand events). Structured logs, metrics and X-Ray
// tracing through Powertools, as the other functions.
const config = loadConfig();
const logger = powertoolsLogger('audit-archive', { level: config.logLevel });
const deps = buildDeps(config, { minter: noMinter, logger, instrument: traced });
const sink = new S3ObjectSink(required(process.env, 'ACKD_ARCHIVE_BUCKET'), config.region);

export const handler = observed(logger, async (event: unknown): Promise<{ day: string; key: string; result: 'created' | 'exists'; bytes: number }> => {
  const target = archiveDayOf(event, deps.clock.now());
  const parts: Buffer[] = [];
  for await (const line of formatExport(deps.audit.export(target.window), 'jsonl')) parts.push(Buffer.from(line, 'utf8'));
  const body = Buffer.concat(parts);
  const result = await sink.putOnce(target.key, body, 'application/x-ndjson');
  deps.logger.info(result === 'created' ? 'audit day archived' : 'audit day was archived already', { day: target.day, key: target.key, bytes: body.byteLength });
  return { day: target.day, key: target.key, result, bytes: body.byteLength };
});
