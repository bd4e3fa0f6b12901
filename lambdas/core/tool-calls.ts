import { auditEvent, type Actor } from './audit/event.ts';
import type { AuditLog } from './audit/ports.ts';
import { AckdError, isAckdError } from './errors.ts';
import type { AgentId } from './ids.ts';
import { CALL_LIFECYCLE_OUTCOMES, reportProblem, type CallReport, type CallResult, type ToolCall } from './tool-call.ts';
import type { Clock, RequestStore } from './ports.ts';
import type { Limits } from './limits.ts';
import type { AuthorizationRecord } from './request.ts';

/**
 * Tool calls made through an enforcement point (the ackd gateway, issue 14) in the audit log.
 *
 * A gateway stands between agents and their MCP servers. Each call it lets through, refuses or
 * runs after an approval is recorded here, by the gateway's own agent key:
 * - a call of an approved request is part of that request's lifecycle: `started` (the one
 *   execution the approval allows, claimed by one conditional write before the call runs:
 *   the guard that no approval ever runs two calls), then `executed` or `failed` (with the
 *   SHA-256 of the downstream result). The request's `call` field holds it; its events
 *   (`call_started`, `call_finished`) carry it like every other field of the request.
 * - any other call (allowed by policy, refused by policy, or of a request that was denied or
 *   expired) is one `tool_call` event of no request lifecycle, in the same chain.
 */

export interface ToolCallDeps {
  readonly store: RequestStore;
  readonly log: Pick<AuditLog, 'enqueueAdmin'>;
  readonly clock: Clock;
  /** Tells the sequencer that events wait (it links them soon after). */
  readonly nudge?: () => unknown;
  /** Bounds the tool_call events one agent records per minute (a flood of reports would otherwise fill the log). */
  readonly limits?: Pick<Limits, 'takeToolCalls'>;
}

function toolCall(r: CallReport): ToolCall {
  return {
    server: r.server,
    tool: r.tool,
    effect: r.effect,
    outcome: r.outcome,
    payload_sha256: r.payload_sha256,
    caller: r.caller ?? null,
    request_id: r.request_id ?? null,
    result_sha256: r.result_sha256 ?? null,
    reason: r.reason ?? null,
  };
}

export class ToolCallRecorder {
  constructor(private readonly deps: ToolCallDeps) {}

  /**
   * Records each report in order; one that cannot be recorded is answered with its error and
   * changes nothing, the others are recorded regardless. `agentId`: the reporting key's agent,
   * the only one whose requests it may report on.
   */
  async record(agentId: AgentId, reports: readonly CallReport[]): Promise<CallResult[]> {
    // Calls of an approved request are bounded by its approvals; the others only by this.
    const unbounded = reports.filter((r) => !(CALL_LIFECYCLE_OUTCOMES as readonly string[]).includes(r.outcome)).length;
    if (unbounded > 0) await this.deps.limits?.takeToolCalls(agentId, unbounded);
    const out: CallResult[] = [];
    for (const r of reports) {
      try {
        out.push({ ok: true, event_id: await this.recordOne(agentId, r) });
      } catch (e) {
        if (!isAckdError(e) || e.code === 'ERR_STORE_UNAVAILABLE' || e.code === 'ERR_INTERNAL') throw e;
        out.push({ ok: false, code: e.code, message: e.message });
      }
    }
    if (out.some((r) => r.ok)) this.deps.nudge?.();
    return out;
  }

  private async recordOne(agentId: AgentId, r: CallReport): Promise<string> {
    const bad = reportProblem(r);
    if (bad) throw new AckdError('ERR_INVALID_INPUT', `${bad.field}: ${bad.rule}`, { field: bad.field });
    const actor: Actor = { type: 'agent', id: agentId };
    const now = this.deps.clock.now();
    if (r.request_id) {
      const record = await this.deps.store.get(r.request_id);
      // Another agent's request reads as absent: no probing of request ids.
      if (!record || record.agent_id !== agentId) throw new AckdError('ERR_NOT_FOUND', `request_id: no request ${r.request_id} of agent ${agentId}`, { field: 'request_id' });
      checkPayload(record, r);
      if (r.outcome === 'denied' || r.outcome === 'expired') checkClosed(record, r.outcome, now);
    }
    if (r.outcome === 'started' || r.outcome === 'executed' || r.outcome === 'failed') {
      const row = r.outcome === 'started' ? 'startCall' : 'finishCall';
      const type = r.outcome === 'started' ? 'call_started' : 'call_finished';
      const event = auditEvent(type, actor, now, r.reason ?? null);
      await this.deps.store.apply(row, r.request_id!, { now: now.toISOString(), svidId: r.svid_id!, payloadSha256: r.payload_sha256, call: toolCall(r) as never, status: r.outcome }, event);
      return event.event_id;
    }
    const event = { ...auditEvent('tool_call', actor, now, r.reason ?? null), type: 'tool_call' as const };
    await this.deps.log.enqueueAdmin(event, { call: toolCall(r) });
    return event.event_id;
  }
}

/** A report about a request states the request's own payload digest. */
function checkPayload(record: AuthorizationRecord, r: CallReport): void {
  if ((record.payload_sha256 ?? null) !== r.payload_sha256) {
    throw new AckdError('ERR_PAYLOAD_MISMATCH', `payload_sha256: ${r.payload_sha256} is not the payload digest of request ${record.request_id} (${record.payload_sha256 ?? 'none'})`, {
      field: 'payload_sha256',
    });
  }
}

/** A denied or expired call names a request that was denied, or expired. */
function checkClosed(record: AuthorizationRecord, outcome: 'denied' | 'expired', now: Date): void {
  const expired = record.decision === 'expired' || (record.decision === 'pending' && Date.parse(record.expires_at) <= now.getTime());
  const is = outcome === 'denied' ? record.decision === 'denied' : expired;
  if (!is) throw new AckdError('ERR_CONFLICT', `outcome: request ${record.request_id} is ${expired ? 'expired' : record.decision}, not ${outcome}`, { field: 'outcome' });
}
