/**
 * The gateway's configuration (`ackd gateway --config gateway.json`): the shape MCP clients already
 * use for their servers (`mcpServers`), plus where ackd is and the approval policy.
 *
 * ```json
 * { "ackd": { "url": "http://127.0.0.1:8787/mcp", "apiKeyEnv": "ACKD_API_KEY" },
 *   "mcpServers": { "fs": { "command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/srv/data"] },
 *                   "remote": { "url": "https://tools.internal/mcp", "headers": { "Authorization": "Bearer ${TOOLS_TOKEN}" } } },
 *   "policy": { "default": { "read": "allow", "mutating": "approve", "destructive": "approve", "admin": "approve" },
 *               "tools": { "fs__write_file": "approve", "remote__drop_table": "deny" } },
 *   "waitSeconds": 25 }
 * ```
 *
 * Parsed once at start. Every string may say `${VAR}`: it is replaced by the environment variable
 * (unset is an error naming the field and the variable; `$${` writes a literal `${`). Unknown keys
 * are refused. Every refusal is a GatewayConfigError whose message is `<field path>: <rule>`.
 */
import * as z from 'zod';
import { EFFECTS, type Effect } from './effects.ts';

export const DECISIONS = ['allow', 'approve', 'deny'] as const;
export type Decision = (typeof DECISIONS)[number];

/** A downstream server's name: it prefixes its tools (`<server>__<tool>`), so no `__` inside. */
export const SERVER_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]|_(?!_)){0,31}$/;
/** The separator between the server's name and the tool's in the gateway's tool names. */
export const SEP = '__';

export class GatewayConfigError extends Error {
  override readonly name = 'GatewayConfigError';
  constructor(
    readonly field: string,
    readonly rule: string,
  ) {
    super(`${field}: ${rule}`);
  }
}

export interface StdioServer {
  readonly kind: 'stdio';
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd?: string;
  readonly timeoutMs: number;
}
export interface HttpServer {
  readonly kind: 'http';
  readonly name: string;
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
}
export type DownstreamServer = StdioServer | HttpServer;

/** A per-tool policy entry: a decision, or the tool's effect class (and optionally a decision). */
export interface ToolRule {
  readonly decision?: Decision;
  readonly effect?: Effect;
}

export interface GatewayConfig {
  readonly ackd: { readonly url: URL; readonly apiKey: string; readonly apiKeyEnv: string; readonly agentId?: string; readonly ttlMinutes: number; readonly receiptKeysUrl?: URL };
  readonly servers: readonly DownstreamServer[];
  readonly policy: { readonly default: Readonly<Record<Effect, Decision>>; readonly tools: ReadonlyMap<string, ToolRule> };
  readonly waitSeconds: number;
  /** Calls waiting to be recorded in ackd at most; allowed calls are refused beyond it. */
  readonly auditQueueLimit: number;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const DEFAULT_POLICY: Record<Effect, Decision> = { read: 'allow', mutating: 'approve', destructive: 'approve', admin: 'approve' };

const decision = z.enum(DECISIONS, { error: `must be one of ${DECISIONS.join(', ')}` });
const effect = z.enum(EFFECTS, { error: `must be one of ${EFFECTS.join(', ')}` });
const str = (what = 'a non-empty string') => z.string({ error: `must be ${what}` }).min(1, { error: `must be ${what}` });
const stringMap = z.record(z.string(), z.string({ error: 'must be a string' }), { error: 'must be an object of strings' });
const timeout = z.number({ error: 'must be a number of seconds' }).int({ error: 'must be a whole number of seconds' }).min(1, { error: 'must be at least 1' }).max(3600, { error: 'must be at most 3600' });

const stdioSchema = z.strictObject({
  type: z.literal('stdio', { error: 'must be "stdio" for a server with a command' }).optional(),
  command: str('the program to start (a non-empty string)'),
  args: z.array(z.string({ error: 'must be a string' }), { error: 'must be an array of strings' }).default([]),
  env: stringMap.default({}),
  cwd: str('a directory (a non-empty string)').optional(),
  timeoutSeconds: timeout.default(60),
});
const httpSchema = z.strictObject({
  type: z.enum(['http', 'streamable-http', 'streamableHttp'], { error: 'must be "http" for a server with a url' }).optional(),
  url: str('an http(s) URL'),
  headers: stringMap.default({}),
  timeoutSeconds: timeout.default(60),
});

const schema = z.strictObject({
  ackd: z.strictObject(
    {
      url: str("ackd's MCP endpoint, an http(s) URL ending in /mcp"),
      apiKeyEnv: str('the name of the environment variable holding the gateway\'s own ackd agent API key').regex(ENV_NAME, { error: 'must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)' }),
      agentId: str('the agent id of the gateway\'s key').optional(),
      ttlMinutes: z.number({ error: 'must be a number of minutes' }).int({ error: 'must be a whole number of minutes' }).min(1, { error: 'must be from 1 to 60' }).max(60, { error: 'must be from 1 to 60' }).default(15),
      receiptKeysUrl: str('an http(s) URL').optional(),
    },
    { error: 'must be an object {url, apiKeyEnv}' },
  ),
  mcpServers: z.record(z.string(), z.unknown(), { error: 'must be an object of servers by name' }),
  policy: z
    .strictObject(
      {
        default: z.strictObject({ read: decision.optional(), mutating: decision.optional(), destructive: decision.optional(), admin: decision.optional() }, { error: 'must be an object {read, mutating, destructive, admin}' }).default({}),
        tools: z
          .record(z.string(), z.union([decision, z.strictObject({ effect: effect.optional(), decision: decision.optional() }, { error: 'must be allow, approve, deny or an object {effect, decision}' })], { error: 'must be allow, approve, deny or an object {effect, decision}' }), { error: 'must be an object of tool rules by <server>__<tool>' })
          .default({}),
      },
      { error: 'must be an object {default, tools}' },
    )
    .default({ default: {}, tools: {} }),
  waitSeconds: z.number({ error: 'must be a number of seconds' }).int({ error: 'must be a whole number of seconds' }).min(0, { error: 'must be from 0 to 300' }).max(300, { error: 'must be from 0 to 300' }).default(25),
  auditQueueLimit: z.number({ error: 'must be a number' }).int({ error: 'must be a whole number' }).min(1, { error: 'must be from 1 to 100000' }).max(100_000, { error: 'must be from 1 to 100000' }).default(10_000),
});

/** The field path as the configuration file spells it: `mcpServers.fs.args[2]`. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else {
      const s = String(p);
      out += /^[A-Za-z_$][\w$-]*$/.test(s) ? (out ? `.${s}` : s) : `[${JSON.stringify(s)}]`;
    }
  }
  return out || '(the configuration)';
}

/** Replaces `${VAR}` in every string of `value` (recursively); throws naming the field and the variable. */
export function expandEnv(value: unknown, env: Readonly<Record<string, string | undefined>>, path: PropertyKey[] = []): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$(\$)?\{([^}]*)\}/g, (whole, escaped: string | undefined, name: string) => {
      if (escaped) return whole.slice(1);
      if (!ENV_NAME.test(name)) throw new GatewayConfigError(fieldPath(path), `\${${name}} is not a variable name ([A-Za-z_][A-Za-z0-9_]*)`);
      const v = env[name];
      if (v === undefined) throw new GatewayConfigError(fieldPath(path), `uses \${${name}}, but the environment variable ${name} is not set`);
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => expandEnv(v, env, [...path, i]));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = expandEnv(v, env, [...path, k]);
    return out;
  }
  return value;
}

function firstIssue(e: z.ZodError, base: PropertyKey[] = []): GatewayConfigError {
  const issue = e.issues[0]!;
  if (issue.code === 'unrecognized_keys') return new GatewayConfigError(fieldPath([...base, ...issue.path, issue.keys[0]!]), 'is not a known setting');
  if (issue.code === 'invalid_union') return new GatewayConfigError(fieldPath([...base, ...issue.path]), issue.message);
  return new GatewayConfigError(fieldPath([...base, ...issue.path]), issue.message);
}

function httpUrl(raw: string, field: string): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new GatewayConfigError(field, 'must be an http(s) URL');
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new GatewayConfigError(field, 'must be an http(s) URL');
  if (u.username || u.password) throw new GatewayConfigError(field, 'must not carry credentials; use headers');
  return u;
}

/**
 * Parses the configuration (already JSON-parsed). `env` gives `${VAR}` and the API key.
 * Throws GatewayConfigError naming the field.
 */
export function parseGatewayConfig(raw: unknown, env: Readonly<Record<string, string | undefined>>): GatewayConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new GatewayConfigError('(the configuration)', 'must be a JSON object');
  const expanded = expandEnv(raw, env);
  const top = schema.safeParse(expanded);
  if (!top.success) throw firstIssue(top.error);
  const c = top.data;

  const url = httpUrl(c.ackd.url, 'ackd.url');
  const apiKey = env[c.ackd.apiKeyEnv];
  if (!apiKey) throw new GatewayConfigError('ackd.apiKeyEnv', `the environment variable ${c.ackd.apiKeyEnv} is not set (it must hold the gateway's own ackd agent API key)`);
  const receiptKeysUrl = c.ackd.receiptKeysUrl === undefined ? undefined : httpUrl(c.ackd.receiptKeysUrl, 'ackd.receiptKeysUrl');
  if (c.ackd.agentId !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(c.ackd.agentId)) throw new GatewayConfigError('ackd.agentId', 'must be 1-64 characters of [A-Za-z0-9._-]');

  const names = Object.keys(c.mcpServers);
  if (names.length === 0) throw new GatewayConfigError('mcpServers', 'must name at least one server');
  const servers: DownstreamServer[] = names.map((name) => {
    const at = ['mcpServers', name];
    if (!SERVER_NAME.test(name)) throw new GatewayConfigError(fieldPath(at), 'a server name must be 1-32 characters of [A-Za-z0-9_-], start with a letter or digit, and not contain "__"');
    const s = c.mcpServers[name];
    if (s === null || typeof s !== 'object' || Array.isArray(s)) throw new GatewayConfigError(fieldPath(at), 'must be an object with "command" (stdio) or "url" (streamable HTTP)');
    const hasCommand = 'command' in s;
    const hasUrl = 'url' in s;
    if (hasCommand === hasUrl) throw new GatewayConfigError(fieldPath(at), 'must have exactly one of "command" (stdio) or "url" (streamable HTTP)');
    if (hasCommand) {
      const p = stdioSchema.safeParse(s);
      if (!p.success) throw firstIssue(p.error, at);
      return { kind: 'stdio', name, command: p.data.command, args: p.data.args, env: p.data.env, ...(p.data.cwd === undefined ? {} : { cwd: p.data.cwd }), timeoutMs: p.data.timeoutSeconds * 1000 };
    }
    const p = httpSchema.safeParse(s);
    if (!p.success) throw firstIssue(p.error, at);
    return { kind: 'http', name, url: httpUrl(p.data.url, fieldPath([...at, 'url'])), headers: p.data.headers, timeoutMs: p.data.timeoutSeconds * 1000 };
  });

  const def: Record<Effect, Decision> = { ...DEFAULT_POLICY, ...c.policy.default };
  if (def.admin === 'allow') throw new GatewayConfigError('policy.default.admin', 'admin tools can never be "allow" (use approve or deny)');
  const tools = new Map<string, ToolRule>();
  for (const [tool, rule] of Object.entries(c.policy.tools)) {
    const at = fieldPath(['policy', 'tools', tool]);
    const i = tool.indexOf(SEP);
    if (i <= 0 || i + SEP.length >= tool.length) throw new GatewayConfigError(at, 'a tool is named <server>__<tool>');
    if (!names.includes(tool.slice(0, i))) throw new GatewayConfigError(at, `no server "${tool.slice(0, i)}" in mcpServers (have: ${names.join(', ')})`);
    const r: ToolRule = typeof rule === 'string' ? { decision: rule } : rule;
    if (r.effect === 'admin' && r.decision === 'allow') throw new GatewayConfigError(at, 'admin tools can never be "allow" (use approve or deny)');
    tools.set(tool, r);
  }

  return {
    ackd: { url, apiKey, apiKeyEnv: c.ackd.apiKeyEnv, ...(c.ackd.agentId === undefined ? {} : { agentId: c.ackd.agentId }), ttlMinutes: c.ackd.ttlMinutes, ...(receiptKeysUrl ? { receiptKeysUrl } : {}) },
    servers,
    policy: { default: def, tools },
    waitSeconds: c.waitSeconds,
    auditQueueLimit: c.auditQueueLimit,
  };
}
