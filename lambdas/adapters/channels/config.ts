import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SESv2Client } from '@aws-sdk/client-sesv2';
import * as z from 'zod';
import { AckdError } from '../../core/errors.ts';
import type { Clock } from '../../core/ports.ts';
import { parseEmail } from '../ses/notifier.ts';
import type { RetryPolicy } from './delivery.ts';
import { EmailChannel } from './email.ts';
import type { ChannelNotifier } from './message.ts';
import { SlackChannel } from './slack.ts';
import { MIN_WEBHOOK_SECRET_LENGTH, WebhookChannel } from './webhook.ts';

/**
 * ACKD_ROUTES: the notification routes, each a named set of channels.
 *
 * ```json
 * { "default": { "email": ["a@example.com"],
 *                "webhooks": [{ "url": "https://hooks.example/ackd", "secret_env": "ACKD_WEBHOOK_SECRET" }],
 *                "slack": [{ "url_env": "ACKD_SLACK_URL" }] },
 *   "oncall":  { "slack": [{ "url_secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:oncall-slack-AbCdEf" }] } }
 * ```
 *
 * No secret is ever written in the configuration itself (it is an environment variable and a CDK
 * setting, visible to anyone who can read either): a webhook's HMAC secret and a Slack URL (the
 * URL is the credential) are named, by an environment variable (`secret_env`, `url_env`) or a
 * Secrets Manager secret (`secret_arn`, `url_secret_arn`, the complete ARN), and read once at
 * start by `buildChannels`. Every error names the exact field (`ACKD_ROUTES.oncall.slack[0].url_env`)
 * and never echoes a URL or a secret.
 *
 * Each webhook and Slack entry may carry a `name` (default `<route>-webhook-<n>`,
 * `<route>-slack-<n>`); the email list of a route is the channel named after the route.
 */

export const ROUTES_ENV = 'ACKD_ROUTES';
export const ROUTE_NAME = /^[a-z][a-z0-9-]{0,31}$/;
const CHANNEL_NAME = /^[a-z][a-z0-9-]{0,63}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** A complete Secrets Manager ARN, with the six characters Secrets Manager appends: IAM grants exactly it. */
export const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}-[A-Za-z0-9]{6}$/;
export const MAX_SECRET_LENGTH = 4096;

/** Where a secret is read from; `field` is the config path that names it, for errors. */
export type SecretRef = { readonly env: string; readonly field: string } | { readonly arn: string; readonly field: string };

export interface WebhookSpec {
  readonly name: string;
  readonly url: string;
  readonly secret: SecretRef;
}

export interface SlackSpec {
  readonly name: string;
  /** The incoming-webhook URL is itself a secret. */
  readonly url: SecretRef;
}

export interface RouteSpec {
  readonly name: string;
  readonly email: readonly string[];
  readonly webhooks: readonly WebhookSpec[];
  readonly slack: readonly SlackSpec[];
}

export type RoutesConfig = ReadonlyMap<string, RouteSpec>;

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(hostname);
}

/** Why `raw` is not an acceptable destination URL, or null. https only, except http to loopback in local mode. */
export function destinationUrlProblem(raw: string, local: boolean): string | null {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return 'must be an absolute URL';
  }
  if (raw.length > 2048) return 'must be at most 2048 characters';
  if (u.username || u.password) return 'may not carry credentials (user:password@); use the signing secret';
  if (u.protocol === 'https:') return null;
  if (u.protocol === 'http:' && local && isLoopback(u.hostname)) return null;
  return local ? 'must be https (http only to 127.0.0.1, [::1] or localhost in local mode)' : 'must be an https URL';
}

const str = (what: string) => z.string({ error: `must be ${what}` });

function routeSchema(local: boolean) {
  const name = str('a string').regex(CHANNEL_NAME, 'must be 1-64 lowercase letters, digits and dashes, starting with a letter');
  const envName = str('an environment variable name').regex(ENV_NAME, 'must be an environment variable name (letters, digits, underscores)');
  const arn = str('a Secrets Manager ARN').regex(SECRET_ARN, 'must be the complete ARN of a Secrets Manager secret (arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 characters>)');
  const url = str('a URL').check((ctx) => {
    const problem = destinationUrlProblem(ctx.value, local);
    if (problem) ctx.issues.push({ code: 'custom', message: problem, input: ctx.value });
  });
  const exactlyOne = (a: string, b: string) => (ctx: { value: Record<string, unknown>; issues: unknown[] }) => {
    if ((ctx.value[a] === undefined) === (ctx.value[b] === undefined)) {
      (ctx.issues as z.core.$ZodRawIssue[]).push({ code: 'custom', message: `needs exactly one of ${a} or ${b}`, input: ctx.value });
    }
  };
  const webhook = z
    .strictObject({ name: name.optional(), url, secret_env: envName.optional(), secret_arn: arn.optional() }, { error: 'must be an object' })
    .check(exactlyOne('secret_env', 'secret_arn'));
  const slack = z
    .strictObject({ name: name.optional(), url_env: envName.optional(), url_secret_arn: arn.optional() }, { error: 'must be an object' })
    .check(exactlyOne('url_env', 'url_secret_arn'));
  const email = str('an email address').check((ctx) => {
    try {
      parseEmail(ctx.value, 'email');
    } catch {
      ctx.issues.push({ code: 'custom', message: 'must be an email address', input: ctx.value });
    }
  });
  return z
    .strictObject(
      {
        email: z.array(email, { error: 'must be a list of email addresses' }).max(50, 'may list at most 50 addresses (one SES message)').optional(),
        webhooks: z.array(webhook, { error: 'must be a list of webhooks' }).max(10, 'may list at most 10 webhooks').optional(),
        slack: z.array(slack, { error: 'must be a list of Slack webhooks' }).max(10, 'may list at most 10 Slack webhooks').optional(),
      },
      { error: 'must be an object with any of email, webhooks, slack' },
    )
    .check((ctx) => {
      const v = ctx.value;
      if ((v.email?.length ?? 0) + (v.webhooks?.length ?? 0) + (v.slack?.length ?? 0) === 0) {
        ctx.issues.push({ code: 'custom', message: 'must name at least one channel (email, webhooks or slack)', input: v });
      }
    });
}

function routesSchema(local: boolean) {
  return z
    .record(str('a route name').regex(ROUTE_NAME, 'route names are 1-32 lowercase letters, digits and dashes, starting with a letter'), routeSchema(local), {
      error: 'must be a JSON object of route name to channels',
    })
    .check((ctx) => {
      if (Object.keys(ctx.value).length > 32) ctx.issues.push({ code: 'custom', message: 'may define at most 32 routes', input: ctx.value });
    });
}

/** `default.webhooks[0].url` from a zod path; odd keys are quoted and bounded. */
function formatPath(path: readonly PropertyKey[]): string {
  let out = ROUTES_ENV;
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const s = String(seg);
      out += /^[A-Za-z0-9_-]{1,64}$/.test(s) ? `.${s}` : `[${JSON.stringify(s.slice(0, 40))}]`;
    }
  }
  return out;
}

function configError(field: string, rule: string): AckdError {
  return new AckdError('ERR_CONFIG', `${field}: ${rule}`, { field: ROUTES_ENV });
}

function fromIssue(issue: z.core.$ZodIssue): AckdError {
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '';
    return configError(formatPath([...issue.path, key]), 'is not a known setting');
  }
  if (issue.code === 'invalid_key') {
    return configError(formatPath(issue.path), issue.issues[0]?.message ?? issue.message);
  }
  return configError(formatPath(issue.path), issue.message);
}

/**
 * Parses ACKD_ROUTES (see the top of this file). Unset or blank: no routes. Pure: secrets are only
 * named here, and read by `buildChannels`.
 */
export function parseRoutes(json: string | undefined, opts: { local: boolean }): RoutesConfig {
  const routes = new Map<string, RouteSpec>();
  if (json === undefined || json.trim() === '') return routes;
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw configError(ROUTES_ENV, 'must be JSON like {"default": {"email": ["approver@example.com"]}}');
  }
  const result = routesSchema(opts.local).safeParse(parsed);
  if (!result.success) throw fromIssue(result.error.issues[0]!);
  for (const [route, spec] of Object.entries(result.data)) {
    const at = (...p: (string | number)[]) => formatPath([route, ...p]);
    const names = new Set<string>();
    const unique = (name: string, field: string) => {
      if (names.has(name)) throw configError(field, `channel name "${name}" is used twice in route ${route}`);
      names.add(name);
      return name;
    };
    const webhooks = (spec.webhooks ?? []).map((w, i): WebhookSpec => ({
      name: unique(w.name ?? `${route}-webhook-${i + 1}`, at('webhooks', i, 'name')),
      url: w.url,
      secret: w.secret_env !== undefined ? { env: w.secret_env, field: at('webhooks', i, 'secret_env') } : { arn: w.secret_arn!, field: at('webhooks', i, 'secret_arn') },
    }));
    const slack = (spec.slack ?? []).map((s, i): SlackSpec => ({
      name: unique(s.name ?? `${route}-slack-${i + 1}`, at('slack', i, 'name')),
      url: s.url_env !== undefined ? { env: s.url_env, field: at('slack', i, 'url_env') } : { arn: s.url_secret_arn!, field: at('slack', i, 'url_secret_arn') },
    }));
    const email = [...new Set((spec.email ?? []).map((e) => e.trim().toLowerCase()))];
    if (email.length > 0) unique(route, at('email'));
    routes.set(route, { name: route, email, webhooks, slack });
  }
  return routes;
}

/** Every Secrets Manager ARN the routes name (CDK grants GetSecretValue on exactly these). */
export function routeSecretArns(routes: RoutesConfig): string[] {
  const arns = new Set<string>();
  for (const r of routes.values()) {
    for (const ref of [...r.webhooks.map((w) => w.secret), ...r.slack.map((s) => s.url)]) if ('arn' in ref) arns.add(ref.arn);
  }
  return [...arns].sort();
}

/** Reads a Secrets Manager secret by ARN, in the ARN's own region. */
export type SecretReader = (arn: string) => Promise<string>;

export function secretsManagerReader(): SecretReader {
  const clients = new Map<string, SecretsManagerClient>();
  return async (arn) => {
    const region = arn.split(':')[3]!;
    let sm = clients.get(region);
    if (!sm) clients.set(region, (sm = new SecretsManagerClient({ region, maxAttempts: 3 })));
    const out = await sm.send(new GetSecretValueCommand({ SecretId: arn }));
    if (out.SecretString === undefined) throw new Error('the secret has no string value');
    return out.SecretString;
  };
}

export interface ChannelDeps {
  /** Where `secret_env` / `url_env` are read (process.env at start). */
  readonly env: Record<string, string | undefined>;
  /** Local mode: a Slack URL may then be http to loopback. */
  readonly local: boolean;
  /** SES, for routes with email: the client and the verified sender (ACKD_SENDER). */
  readonly ses?: SESv2Client;
  readonly sender?: string;
  readonly configurationSetName?: string;
  readonly fetch?: typeof fetch;
  readonly clock?: Clock;
  readonly policy?: Partial<RetryPolicy>;
  /** Reads `secret_arn` / `url_secret_arn` (default: Secrets Manager). */
  readonly readSecret?: SecretReader;
}

/** One secret's value, checked; errors name the variable or ARN field, never the value. */
async function resolveSecret(ref: SecretRef, deps: ChannelDeps, reader: () => SecretReader): Promise<string> {
  if ('env' in ref) {
    const v = deps.env[ref.env]?.trim();
    if (!v) throw new AckdError('ERR_CONFIG', `${ref.env}: is required (named by ${ref.field}) and is unset or empty`, { field: ref.env });
    return v;
  }
  let v: string;
  try {
    v = (await reader()(ref.arn)).trim();
  } catch (e) {
    const name = e instanceof Error && /^[A-Za-z]{1,64}$/.test(e.name) && e.name !== 'Error' ? ` (${e.name})` : '';
    throw new AckdError('ERR_CONFIG', `${ref.field}: the secret could not be read${name}`, { field: ROUTES_ENV, cause: name || undefined });
  }
  if (!v) throw new AckdError('ERR_CONFIG', `${ref.field}: the secret is empty`, { field: ROUTES_ENV });
  return v;
}

function where(ref: SecretRef): { message: string; field: string } {
  return 'env' in ref ? { message: `${ref.env} (named by ${ref.field})`, field: ref.env } : { message: `the secret of ${ref.field}`, field: ROUTES_ENV };
}

/**
 * The channels of every route, secrets read and checked (call once, at start: a missing or weak
 * secret fails the start, not the first notification). Route name → its channels: email first,
 * then webhooks, then Slack.
 */
export async function buildChannels(routes: RoutesConfig, deps: ChannelDeps): Promise<Map<string, ChannelNotifier[]>> {
  let reader: SecretReader | undefined;
  const lazyReader = () => (reader ??= deps.readSecret ?? secretsManagerReader());
  const common = { ...(deps.fetch ? { fetch: deps.fetch } : {}), ...(deps.policy ? { policy: deps.policy } : {}) };

  const out = new Map<string, ChannelNotifier[]>();
  for (const route of routes.values()) {
    const channels: ChannelNotifier[] = [];
    if (route.email.length > 0) {
      if (!deps.ses || !deps.sender) throw configError(formatPath([route.name, 'email']), 'needs SES and a sender (ACKD_SENDER) to send email');
      channels.push(
        new EmailChannel({
          name: route.name,
          client: deps.ses,
          sender: deps.sender,
          to: route.email,
          ...(deps.configurationSetName ? { configurationSetName: deps.configurationSetName } : {}),
        }),
      );
    }
    const webhooks = await Promise.all(
      route.webhooks.map(async (w) => {
        const secret = await resolveSecret(w.secret, deps, lazyReader);
        if (secret.length < MIN_WEBHOOK_SECRET_LENGTH || secret.length > MAX_SECRET_LENGTH) {
          const { message, field } = where(w.secret);
          throw new AckdError('ERR_CONFIG', `${message}: the webhook secret must be ${MIN_WEBHOOK_SECRET_LENGTH} to ${MAX_SECRET_LENGTH} characters`, { field });
        }
        return new WebhookChannel({ name: w.name, url: w.url, secret, ...(deps.clock ? { clock: deps.clock } : {}), ...common });
      }),
    );
    const slack = await Promise.all(
      route.slack.map(async (s) => {
        const url = await resolveSecret(s.url, deps, lazyReader);
        const problem = destinationUrlProblem(url, deps.local);
        if (problem) {
          const { message, field } = where(s.url);
          throw new AckdError('ERR_CONFIG', `${message}: the Slack webhook URL ${problem}`, { field });
        }
        return new SlackChannel({ name: s.name, url, ...common });
      }),
    );
    out.set(route.name, [...channels, ...webhooks, ...slack]);
  }
  return out;
}
