import type { Logger } from '../core/ports.ts';

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;
type Level = keyof typeof LEVELS;

/** Keys whose values are never written to a log, wherever they appear. */
const SECRET_KEYS = /^(svid|private_?key|privatekeypem|api_?key|apikey|authorization|token|access_token|id_token|refresh_token|password|secret|code_verifier)$/i;

/** A copy of `value` with the values of secret keys (SECRET_KEYS, at any depth up to 5) replaced by "[redacted]". */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 5 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEYS.test(k) ? '[redacted]' : redact(v, depth + 1);
  return out;
}

/** JSON-lines logger (CloudWatch-friendly). Secrets are redacted by key name. */
export function jsonLogger(opts: { level?: Level; write?: (line: string) => void; base?: Record<string, unknown> } = {}): Logger {
  const min = LEVELS[opts.level ?? 'info'];
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const log = (level: Level) => (msg: string, detail?: Record<string, unknown>) => {
    if (LEVELS[level] < min) return;
    write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...opts.base, ...(redact(detail ?? {}) as object) }));
  };
  return { info: log('info'), warn: log('warn'), error: log('error') };
}
