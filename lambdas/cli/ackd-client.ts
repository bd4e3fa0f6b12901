/**
 * An ackd client as an agent sees it, over MCP (streamable HTTP, bearer API key): shared by
 * `ackd gate` and `ackd gateway`. Connects, calls ackd's tools (a tool error or a transport failure
 * becomes a ToolFailure that says whether a later call may succeed), and checks that an approval
 * is of exactly what was asked (the payload digest, the SVID's serial, ackd's signed receipt).
 */
import { X509Certificate } from 'node:crypto';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { AckdError } from '../core/errors.ts';
import { svidIdFromSerial } from '../core/ids.ts';
import { POLL_SECONDS } from '../core/gateway/flow.ts';
import type { Approved, Check } from '../core/gateway/ports.ts';
import type { Payload } from '../core/payload.ts';
import { SvidVerifyError, verifyReceipt, type ReceiptKeys } from '../verify/index.ts';

/** A check_authorization long-poll holds at most this long (the tool's limit). */
export { POLL_SECONDS };

/** Tool errors that a later call may not get (ackd says to retry them). */
export const RETRYABLE = new Set(['ERR_ISSUER_UNAVAILABLE', 'ERR_ISSUANCE_IN_PROGRESS', 'ERR_RATE_LIMITED', 'ERR_INTERNAL']);

/** check_authorization's answer: one definition, the gateway's port (core/gateway/ports.ts). */
export type { Approved, Check };

export class ToolFailure extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    /** ackd's error code, when the tool refused with one. */
    readonly code?: string,
  ) {
    super(message);
  }
}

export type ToolCaller = <T>(name: string, args: Record<string, unknown>, signal?: AbortSignal) => Promise<T>;

/** Connects an MCP client to ackd with the agent's key (the SDK's client is loaded on first use). */
export async function connectAckd(mcpUrl: string | URL, apiKey: string, opts: { name: string; signal?: AbortSignal }): Promise<Client> {
  const [{ Client: McpClient }, { StreamableHTTPClientTransport }] = await Promise.all([import('@modelcontextprotocol/sdk/client/index.js'), import('@modelcontextprotocol/sdk/client/streamableHttp.js')]);
  const client = new McpClient({ name: opts.name, version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { requestInit: { headers: { authorization: `Bearer ${apiKey}` } } }), opts.signal ? { signal: opts.signal } : undefined);
  return client;
}

/**
 * A tool's structured result; a tool error or a transport failure becomes a ToolFailure naming it.
 * When `signal` aborted with an Error of the caller's own (not the platform's AbortError/TimeoutError),
 * that Error propagates instead.
 */
export function toolCaller(client: Client, signal: AbortSignal): ToolCaller {
  return async <T>(name: string, args: Record<string, unknown>, callSignal?: AbortSignal): Promise<T> => {
    const s = callSignal ? AbortSignal.any([signal, callSignal]) : signal;
    let r: CallToolResult;
    try {
      r = (await client.callTool({ name, arguments: args }, undefined, { signal: s, timeout: (POLL_SECONDS + 35) * 1000 })) as CallToolResult;
    } catch (e) {
      if (signal.aborted && signal.reason instanceof Error && !(signal.reason instanceof DOMException)) throw signal.reason;
      throw new ToolFailure(`${name}: ackd did not answer: ${message(e)}`, true);
    }
    if (r.isError) {
      const text = r.content.map((c) => (c.type === 'text' ? c.text : '')).join(' ');
      const code = /^(ERR_[A-Z_]+)/.exec(text)?.[1];
      throw new ToolFailure(`${name} refused: ${text}`, code !== undefined && RETRYABLE.has(code), code);
    }
    return r.structuredContent as T;
  };
}

/** An approval that is not of what was asked. */
export class ApprovalMismatch extends Error {}

/**
 * What was approved must be what was asked: the payload digest, the SVID's serial, and ackd's
 * receipt (signature against `keys`, this SVID, this payload). `requireReceipt`: an approval
 * without a receipt is refused too (else it is accepted: an ackd that issues no receipts).
 */
export async function checkApproval(a: Approved, expect: { payload: Payload; payloadSha256: string; keys: ReceiptKeys; requireReceipt?: boolean }): Promise<void> {
  if (a.payload_sha256 !== undefined && a.payload_sha256 !== expect.payloadSha256) {
    throw new ApprovalMismatch(`ackd approved payload sha256 ${a.payload_sha256 ?? 'none'}, not ${expect.payloadSha256}`);
  }
  let leafSerial: string;
  try {
    leafSerial = svidIdFromSerial(new X509Certificate(a.svid).serialNumber);
  } catch (e) {
    throw new ApprovalMismatch(`the SVID ackd sent cannot be read: ${message(e)}`);
  }
  if (leafSerial !== a.svid_id) throw new ApprovalMismatch(`the SVID's serial ${leafSerial} is not the svid_id ${a.svid_id} ackd reported`);
  if (!a.receipt) {
    if (expect.requireReceipt) throw new ApprovalMismatch('ackd sent no receipt with the approval, so it cannot be checked against the payload');
    return;
  }
  try {
    await verifyReceipt(a.receipt, { keys: expect.keys, svid: { svid_id: a.svid_id, spiffe_id: a.spiffe_id }, payload: expect.payload });
  } catch (e) {
    if (e instanceof SvidVerifyError) throw new ApprovalMismatch(`the receipt does not hold: ${e.code}: ${e.message}`);
    throw e;
  }
}

export function message(e: unknown): string {
  if (e instanceof AckdError) return `${e.code}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}
