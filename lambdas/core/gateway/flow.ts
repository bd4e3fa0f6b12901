/**
 * One tool call through the gateway, as a small state machine over ports:
 *
 *   deny ──▶ refused (recorded off-path), nothing asked, nothing run
 *   allow ─▶ place reserved in the audit queue ─▶ run downstream ─▶ "allowed" recorded off-path
 *   approve ─▶ request (or the pending one for the same payload) ─▶ wait ≤ waitSeconds
 *        ├─ pending ─▶ "pending" with the consent URL (a repeat reuses the request)
 *        ├─ denied / expired / revoked ─▶ recorded off-path, nothing run
 *        └─ approved ─▶ verify receipt ─▶ "started" recorded (ackd refuses a second start: the
 *             exactly-once guard) ─▶ run downstream ONCE ─▶ "executed" (result digest) or "failed"
 *             ─▶ SVID revoked. A downstream failure is never retried.
 */
import { exposeMessage } from './messages.ts';
import type { AuditQueue } from './audit-queue.ts';
import { digest } from './audit-queue.ts';
import type { Effect } from './effects.ts';
import type { PendingMemo } from './memo.ts';
import type { AckdPort, Approved, CallEvent, CallRecorder, Check, DownstreamPort, ToolResult } from './ports.ts';
import { parsePayload, payloadSha256, type JsonValue, type Payload } from '../payload.ts';

/** ackd holds one check_authorization long-poll at most this long (its wait_seconds limit). */
export const POLL_SECONDS = 25;

export interface FlowDeps {
  readonly ackd: AckdPort;
  readonly recorder: CallRecorder;
  readonly queue: AuditQueue;
  readonly downstream: DownstreamPort;
  readonly memo: PendingMemo;
  readonly now: () => number;
  readonly waitSeconds: number;
  /** Tells the operator (stderr). */
  readonly warn: (line: string) => void;
}

export interface GatewayCall {
  readonly server: string;
  readonly tool: string;
  readonly arguments: Record<string, unknown>;
  readonly effect: Effect;
  readonly decision: 'allow' | 'approve' | 'deny';
  /** The agent that called the gateway (HTTP mode); absent over stdio. */
  readonly caller?: string;
  /** Aborts when the caller went away: ends a wait (the request stays pending), never a started call. */
  readonly signal?: AbortSignal;
}

export type FlowOutcome =
  | { readonly kind: 'result'; readonly result: ToolResult }
  | { readonly kind: 'pending'; readonly request_id: string; readonly consent_url: string; readonly payload_sha256: string; readonly reused: boolean }
  | {
      readonly kind: 'stopped';
      readonly status: 'denied' | 'expired' | 'revoked' | 'refused' | 'failed' | 'error';
      readonly message: string;
      readonly request_id?: string;
      readonly payload_sha256?: string;
    };

const qualified = (c: { server: string; tool: string }) => `${c.server}__${c.tool}`;

export class GatewayFlow {
  constructor(private readonly d: FlowDeps) {}

  async call(c: GatewayCall): Promise<FlowOutcome> {
    switch (c.decision) {
      case 'deny':
        return this.refuse(c);
      case 'allow':
        return this.allowed(c);
      case 'approve':
        return this.gated(c);
    }
  }

  private base(c: GatewayCall): Pick<CallEvent, 'server' | 'tool' | 'effect'> & { caller?: string } {
    return { server: c.server, tool: c.tool, effect: c.effect, ...(c.caller === undefined ? {} : { caller: c.caller }) };
  }

  private refuse(c: GatewayCall): FlowOutcome {
    const reason = `the gateway's policy denies ${qualified(c)}`;
    this.d.queue.push({ event: { ...this.base(c), outcome: 'refused', reason }, payload: { server: c.server, tool: c.tool, arguments: c.arguments } });
    return { kind: 'stopped', status: 'refused', message: `${reason}; it was not called and no approval can be asked for it` };
  }

  private async allowed(c: GatewayCall): Promise<FlowOutcome> {
    if (!this.d.queue.reserve()) {
      return { kind: 'stopped', status: 'error', message: `${qualified(c)} was not called: ${this.d.queue.waiting} calls are waiting to be recorded in ackd (is ackd reachable?), and no call runs unaudited beyond that` };
    }
    const payload = { server: c.server, tool: c.tool, arguments: c.arguments };
    let result: ToolResult;
    try {
      result = await this.d.downstream.call(c.server, c.tool, c.arguments, c.signal);
    } catch (e) {
      const reason = `downstream failed: ${exposeMessage(e)}`;
      this.d.queue.push({ event: { ...this.base(c), outcome: 'allowed', reason: reason.slice(0, 500) }, payload }, true);
      return { kind: 'stopped', status: 'failed', message: `the call to ${qualified(c)} failed downstream: ${exposeMessage(e)}` };
    }
    this.d.queue.push({ event: { ...this.base(c), outcome: 'allowed' }, payload, result }, true);
    return { kind: 'result', result };
  }

  private async gated(c: GatewayCall): Promise<FlowOutcome> {
    const name = qualified(c);
    let payload: Payload;
    try {
      payload = parsePayload({ server: c.server, tool: c.tool, arguments: c.arguments as JsonValue }, 'payload');
    } catch (e) {
      return { kind: 'stopped', status: 'error', message: `${name} was not called: its arguments cannot be put before an approver (${exposeMessage(e).replace(/^payload\.arguments/, 'arguments')})` };
    }
    const sha = payloadSha256(payload);
    // A repeat reuses the pending request of the same call by the same caller only: the approver
    // approves "<caller> called <tool>", and another caller never learns of that request or runs it.
    const memoKey = `${c.caller ?? ''}\n${sha}`;
    let entry, created;
    try {
      ({ entry, created } = await this.d.memo.getOrCreate(memoKey, () =>
        this.d.ackd.requestAuthorization({
          action: `call ${name}`,
          permissions: [`mcp:${c.server}:${c.tool}`],
          justification: `${c.caller ?? "the gateway's own user (stdio)"} called ${name} through the ackd gateway`,
          payload,
        }),
      ));
    } catch (e) {
      return { kind: 'stopped', status: 'error', message: `${name} was not called: ackd did not take the request for approval: ${exposeMessage(e)}`, payload_sha256: sha };
    }
    const pending: FlowOutcome = { kind: 'pending', request_id: entry.request_id, consent_url: entry.consent_url, payload_sha256: sha, reused: !created };

    // wait for a decision, up to waitSeconds (a wait of 0 still looks once)
    const deadline = this.d.now() + this.d.waitSeconds * 1000;
    let approved: Approved;
    for (let first = true; ; first = false) {
      const left = deadline - this.d.now();
      if ((!first && left <= 0) || c.signal?.aborted) return pending;
      let check: Check;
      try {
        check = await this.d.ackd.checkAuthorization(entry.request_id, Math.max(0, Math.min(POLL_SECONDS, Math.ceil(left / 1000))), c.signal ?? new AbortController().signal);
      } catch (e) {
        if (c.signal?.aborted) return pending;
        return { kind: 'stopped', status: 'error', message: `${name} was not called: could not learn the decision on request ${entry.request_id} from ackd: ${exposeMessage(e)}; call again with the same arguments to keep waiting`, request_id: entry.request_id, payload_sha256: sha };
      }
      if (check.status === 'pending') continue;
      this.d.memo.resolve(memoKey, entry.request_id);
      const stopped = (status: 'denied' | 'expired' | 'revoked' | 'error', why: string): FlowOutcome => ({ kind: 'stopped', status, message: `${name} was not called: ${why}`, request_id: entry.request_id, payload_sha256: sha });
      switch (check.status) {
        case 'denied':
        case 'expired':
          this.d.queue.push({ event: { ...this.base(c), outcome: check.status, request_id: entry.request_id, payload_sha256: sha } });
          return stopped(check.status, `request ${entry.request_id} was ${check.status === 'denied' ? 'denied by the approver' : 'expired: nobody decided in time'}`);
        case 'revoked':
          return stopped('revoked', `request ${entry.request_id} was revoked`);
        case 'approved':
          if (!check.svid) return stopped('error', `the approval of request ${entry.request_id} was already used by another identical call (one approval runs one call); call again to ask for a new approval`);
          approved = { ...check, svid: check.svid };
      }
      break;
    }
    return this.execute(c, payload, sha, entry.request_id, approved);
  }

  /** The approved call: verified, started (once), run once, recorded, the SVID revoked. */
  private async execute(c: GatewayCall, payload: Payload, sha: string, requestId: string, approved: Approved): Promise<FlowOutcome> {
    const name = qualified(c);
    const ids = { request_id: requestId, svid_id: approved.svid_id, payload_sha256: sha };
    const stopped = (status: 'error' | 'failed', message: string): FlowOutcome => ({ kind: 'stopped', status, message, request_id: requestId, payload_sha256: sha });
    try {
      try {
        await this.d.ackd.verifyApproval(approved, payload, sha);
      } catch (e) {
        const reason = `the approval does not hold: ${exposeMessage(e)}`;
        // a refused call has no request in ackd's record; the reason names it
        this.d.queue.push({ event: { ...this.base(c), outcome: 'refused', payload_sha256: sha, reason: `request ${requestId}: ${reason}`.slice(0, 500) } });
        return stopped('error', `${name} was not called: ${reason}`);
      }
      // The exactly-once guard: ackd records one start per request and refuses a second.
      let started;
      try {
        [started] = await this.d.recorder.record([{ ...this.base(c), outcome: 'started', ...ids }]);
      } catch (e) {
        return stopped('error', `${name} was not called: ackd could not record its start (${exposeMessage(e)}), and an approved call never runs unrecorded`);
      }
      if (!started?.ok) {
        return stopped('error', `${name} was not called: ackd refused to record its start (${started ? `${started.code}: ${started.message}` : 'no answer'}); an approval runs one call only`);
      }
      let result: ToolResult;
      try {
        // not the caller's signal: a started call runs to its end, so that its outcome is known
        result = await this.d.downstream.call(c.server, c.tool, c.arguments);
      } catch (e) {
        const reason = `downstream failed: ${exposeMessage(e)}`;
        await this.recordEnd({ ...this.base(c), outcome: 'failed', ...ids, reason: reason.slice(0, 500) });
        return stopped('failed', `the approved call to ${name} failed downstream: ${exposeMessage(e)}; it was not retried; a new call needs a new approval`);
      }
      await this.recordEnd({ ...this.base(c), outcome: 'executed', ...ids, result_sha256: digest(result) });
      return { kind: 'result', result };
    } finally {
      await this.d.ackd.revoke(requestId, approved.svid_id).catch((e: unknown) => this.d.warn(`could not revoke svid ${approved.svid_id} of request ${requestId}: ${exposeMessage(e)} (it stays valid until it expires)`));
    }
  }

  /** executed / failed: recorded now; if ackd cannot take it now, queued for retry. */
  private async recordEnd(event: CallEvent): Promise<void> {
    try {
      const [r] = await this.d.recorder.record([event]);
      if (r && !r.ok) this.d.warn(`ackd refused to record the ${event.outcome} call of ${event.server}__${event.tool} (request ${event.request_id}): ${r.code}: ${r.message}`);
    } catch (e) {
      this.d.warn(`could not record the ${event.outcome} call of ${event.server}__${event.tool} now (${exposeMessage(e)}); queued for retry`);
      this.d.queue.push({ event });
    }
  }
}
