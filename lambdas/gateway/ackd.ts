/**
 * The gateway's side of ackd: the gateway is itself an ackd agent (its own key, `ackd.apiKeyEnv`)
 * and talks to ackd's MCP API like any agent, so it works against `npm start` and against AWS.
 *
 * - AckdPort: request_authorization / check_authorization / revoke_authorization, and the check
 *   of an approval (payload digest, SVID serial, ackd's receipt against its JWKS, fetched once and kept).
 * - CallRecorder: record_tool_calls.
 * - whoami: `GET /v1/whoami` checks a caller's agent key (HTTP mode).
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { createHash } from 'node:crypto';
import type { Payload } from '../core/payload.ts';
import type { AckdPort, Approved, CallEvent, CallRecorder, Check, RecordResult } from '../core/gateway/ports.ts';
import { receiptKeysUrl } from '../verify/index.ts';
import { checkApproval, connectAckd, message, toolCaller, type ToolCaller } from '../cli/ackd-client.ts';

/** ackd's refusals of a whole record_tool_calls batch that pass: the batch is sent again later. */
const RETRY_LATER: ReadonlySet<string> = new Set(['ERR_RATE_LIMITED', 'ERR_STORE_UNAVAILABLE', 'ERR_INTERNAL']);

export interface AckdClientOptions {
  readonly url: URL;
  readonly apiKey: string;
  readonly agentId: string;
  readonly ttlMinutes: number;
  readonly receiptKeysUrl?: URL;
  readonly now?: () => number;
}

/** ackd over MCP with the gateway's own key; one connection (stateless HTTP: no session to lose). */
export class AckdMcpClient implements AckdPort, CallRecorder {
  private client: Client | undefined;
  private connecting: Promise<Client> | undefined;
  private readonly life = new AbortController();
  private readonly keys: URL;
  private readonly now: () => number;

  constructor(private readonly o: AckdClientOptions) {
    this.keys = o.receiptKeysUrl ?? receiptKeysUrl(o.url);
    this.now = o.now ?? Date.now;
  }

  private async call<T>(name: string, args: Record<string, unknown>, signal?: AbortSignal): Promise<T> {
    const client = await this.connected();
    const caller: ToolCaller = toolCaller(client, this.life.signal);
    return caller<T>(name, args, signal);
  }

  private connected(): Promise<Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= connectAckd(this.o.url, this.o.apiKey, { name: 'ackd-gateway', signal: this.life.signal }).then(
      (c) => {
        this.client = c;
        this.connecting = undefined;
        return c;
      },
      (e: unknown) => {
        this.connecting = undefined;
        throw new Error(`cannot reach ackd at ${this.o.url.href}: ${message(e)}`);
      },
    );
    return this.connecting;
  }

  async requestAuthorization(input: { action: string; permissions: string[]; justification: string; payload: Payload }): Promise<{ request_id: string; consent_url: string; expires_at: number }> {
    const r = await this.call<{ request_id: string; consent_url: string; payload_sha256?: string | null; expires_at?: string }>('request_authorization', {
      agent_id: this.o.agentId,
      action: input.action,
      permissions: input.permissions,
      justification: input.justification.slice(0, 4000),
      ttl_minutes: this.o.ttlMinutes,
      payload: input.payload,
    });
    const expires = r.expires_at ? Date.parse(r.expires_at) : NaN;
    return { request_id: r.request_id, consent_url: r.consent_url, expires_at: Number.isFinite(expires) ? expires : this.now() + this.o.ttlMinutes * 60_000 };
  }

  checkAuthorization(requestId: string, waitSeconds: number, signal: AbortSignal): Promise<Check> {
    return this.call<Check>('check_authorization', { request_id: requestId, wait_seconds: waitSeconds }, signal);
  }

  async verifyApproval(approved: Approved, payload: Payload, payloadSha256: string): Promise<void> {
    await checkApproval(approved, { payload, payloadSha256, keys: this.keys, requireReceipt: true });
  }

  async revoke(requestId: string, svidId: string): Promise<void> {
    await this.call('revoke_authorization', { request_id: requestId, svid_id: svidId }, AbortSignal.timeout(30_000));
  }

  async record(calls: readonly CallEvent[]): Promise<readonly RecordResult[]> {
    const client = await this.connected();
    let r;
    try {
      r = await client.callTool({ name: 'record_tool_calls', arguments: { calls } }, undefined, { signal: AbortSignal.any([this.life.signal, AbortSignal.timeout(30_000)]) });
    } catch (e) {
      throw new Error(`record_tool_calls: ackd did not answer: ${message(e)}`, { cause: e });
    }
    const results = (r.structuredContent as { results?: RecordResult[] } | undefined)?.results;
    if (!Array.isArray(results) || results.length !== calls.length) {
      const text = Array.isArray(r.content) ? r.content.map((c) => (c.type === 'text' ? c.text : '')).join(' ') : '';
      const code = /^(ERR_[A-Z_]+)/.exec(text)?.[1] ?? 'ERR_REFUSED';
      // Refused for now, not for good (the agent's minute of records used up, the store down): the
      // batch stays queued and is sent again with backoff, so no allowed call goes unrecorded.
      if (RETRY_LATER.has(code)) throw new Error(`record_tool_calls: ${text.slice(0, 500)}`);
      // a refusal of the whole batch for good (bad input, unknown tool, key revoked): the same answer for every call
      return calls.map(() => ({ ok: false as const, code, message: text.slice(0, 500) || 'ackd did not return a result per call' }));
    }
    return results;
  }

  async close(): Promise<void> {
    this.life.abort();
    await this.client?.close().catch(() => undefined);
    this.client = undefined;
  }
}

/** `GET /v1/whoami` with a key: its agent id, null when ackd refuses the key (401/403). Throws when ackd cannot say. */
export async function whoami(ackdUrl: URL, apiKey: string, signal?: AbortSignal): Promise<string | null> {
  const url = new URL('/v1/whoami', ackdUrl.origin);
  let res: Response;
  try {
    res = await fetch(url, { headers: { authorization: `Bearer ${apiKey}` }, signal: signal ?? AbortSignal.timeout(10_000) });
  } catch (e) {
    throw new Error(`cannot reach ackd at ${url.href}: ${message(e)}`, { cause: e });
  }
  if (res.status === 401 || res.status === 403) {
    await res.body?.cancel();
    return null;
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`${url.href} answered ${res.status}${res.status === 404 ? ' (an ackd without /v1/whoami: upgrade ackd)' : ''}`);
  }
  const body = (await res.json().catch(() => null)) as { agent_id?: unknown } | null;
  if (typeof body?.agent_id !== 'string') throw new Error(`${url.href} did not return an agent_id`);
  return body.agent_id;
}

/**
 * Callers' keys checked with ackd, each answer kept 30 s by the key's SHA-256 (a revoked key stops
 * working within that); a refused key is kept 5 s. Concurrent checks of one key share one lookup.
 */
export class CallerKeys {
  private readonly cache = new Map<string, { agentId: string | null; until: number } | Promise<string | null>>();

  constructor(
    private readonly lookup: (key: string) => Promise<string | null>,
    private readonly now: () => number = Date.now,
    private readonly ttlMs = 30_000,
    private readonly refusedTtlMs = 5_000,
    private readonly maxEntries = 10_000,
  ) {}

  async agentOf(key: string): Promise<string | null> {
    const id = createHash('sha256').update(key, 'utf8').digest('hex');
    const hit = this.cache.get(id);
    if (hit instanceof Promise) return hit;
    if (hit && hit.until > this.now()) return hit.agentId;
    if (this.cache.size >= this.maxEntries) this.cache.delete(this.cache.keys().next().value!);
    const p = this.lookup(key).then(
      (agentId) => {
        this.cache.set(id, { agentId, until: this.now() + (agentId === null ? this.refusedTtlMs : this.ttlMs) });
        return agentId;
      },
      (e: unknown) => {
        this.cache.delete(id);
        throw e;
      },
    );
    this.cache.set(id, p);
    return p;
  }
}
