/**
 * In-memory adapters of the gateway's ports, for the flow's unit tests and for trying the gateway
 * without a stack. InMemoryAckd keeps ackd's rules the flow relies on: one SVID per approval,
 * handed out once; `started` recorded once per request, for its payload and its SVID only;
 * `executed`/`failed` only after `started`. Time is a number the test moves (a long-poll that sees
 * no decision moves it by its wait).
 */
import { payloadSha256, type Payload } from '../core/payload.ts';
import { reportProblem } from '../core/tool-call.ts';
import type { AckdPort, Approved, CallEvent, CallRecorder, Check, DownstreamPort, RecordResult, ToolResult } from '../core/gateway/ports.ts';

interface Req {
  readonly id: string;
  readonly payload: Payload;
  readonly sha: string;
  readonly action: string;
  readonly permissions: readonly string[];
  readonly justification: string;
  status: 'pending' | 'approved' | 'denied' | 'expired' | 'revoked';
  svidId?: string;
  delivered: boolean;
  started: boolean;
}

export class InMemoryAckd implements AckdPort, CallRecorder {
  readonly requests = new Map<string, Req>();
  readonly events: CallEvent[] = [];
  readonly revoked: string[] = [];
  /** Called at every check, before it answers: a test decides here ("the human approves during the wait"). */
  onCheck: (requestId: string) => void = () => undefined;
  /** Set to make record() fail as an unreachable ackd does. */
  down = false;
  private n = 0;

  constructor(readonly clock: { t: number }) {}

  async requestAuthorization(input: { action: string; permissions: string[]; justification: string; payload: Payload }): Promise<{ request_id: string; consent_url: string; expires_at: number }> {
    const id = `req_${++this.n}`;
    this.requests.set(id, { id, payload: input.payload, sha: payloadSha256(input.payload), action: input.action, permissions: input.permissions, justification: input.justification, status: 'pending', delivered: false, started: false });
    return { request_id: id, consent_url: `https://ackd.test/consent/${id}`, expires_at: this.clock.t + 15 * 60_000 };
  }

  decide(id: string, status: 'approved' | 'denied' | 'expired'): void {
    const r = this.requests.get(id);
    if (!r || r.status !== 'pending') throw new Error(`${id} is not pending`);
    r.status = status;
    if (status === 'approved') r.svidId = `5v1d${this.n}`;
  }

  async checkAuthorization(id: string, waitSeconds: number): Promise<Check> {
    this.onCheck(id);
    const r = this.requests.get(id);
    if (!r) throw new Error(`ERR_NOT_FOUND: ${id}`);
    switch (r.status) {
      case 'pending':
        this.clock.t += Math.max(1, waitSeconds) * 1000;
        return { status: 'pending' };
      case 'approved': {
        const first = !r.delivered;
        r.delivered = true;
        return { status: 'approved', svid_id: r.svidId!, spiffe_id: `spiffe://ackd.test/agent/gw/${id}`, expires_at: new Date(this.clock.t + 60_000).toISOString(), payload_sha256: r.sha, ...(first ? { svid: `svid of ${id}`, receipt: `receipt of ${id}` } : {}) };
      }
      default:
        return { status: r.status };
    }
  }

  async verifyApproval(a: Approved, _payload: Payload, sha: string): Promise<void> {
    if (a.payload_sha256 !== sha) throw new Error(`ERR_PAYLOAD_MISMATCH: approved ${a.payload_sha256 ?? 'none'}, not ${sha}`);
  }

  async revoke(id: string): Promise<void> {
    this.revoked.push(id);
    const r = this.requests.get(id);
    if (r) r.status = 'revoked';
  }

  async record(calls: readonly CallEvent[]): Promise<readonly RecordResult[]> {
    if (this.down) throw new Error('connect ECONNREFUSED');
    return calls.map((c) => {
      const bad = reportProblem(c as Parameters<typeof reportProblem>[0]);
      if (bad) return { ok: false, code: 'ERR_INVALID_INPUT', message: `${bad.field}: ${bad.rule}` };
      if (c.outcome === 'started' || c.outcome === 'executed' || c.outcome === 'failed') {
        const r = c.request_id ? this.requests.get(c.request_id) : undefined;
        if (!r || !r.svidId) return { ok: false, code: 'ERR_NOT_ISSUED', message: 'no SVID issued for this request' };
        if (c.svid_id !== r.svidId) return { ok: false, code: 'ERR_SVID_MISMATCH', message: 'not the SVID issued' };
        if (c.payload_sha256 !== r.sha) return { ok: false, code: 'ERR_PAYLOAD_MISMATCH', message: 'not the approved payload' };
        if (c.outcome === 'started') {
          if (r.started) return { ok: false, code: 'ERR_ALREADY_EXECUTED', message: 'this request already started a call' };
          r.started = true;
        } else if (!r.started) return { ok: false, code: 'ERR_NOT_STARTED', message: 'no call was started for this request' };
      }
      this.events.push(c);
      return { ok: true, event_id: `ev_${this.events.length}` };
    });
  }
}

/** Downstream tools as functions; every call is counted. */
export class InMemoryDownstream implements DownstreamPort {
  readonly calls: { server: string; tool: string; args: Record<string, unknown> }[] = [];
  constructor(private readonly tools: Record<string, (args: Record<string, unknown>) => Promise<ToolResult> | ToolResult>) {}

  async call(server: string, tool: string, args: Record<string, unknown>): Promise<ToolResult> {
    this.calls.push({ server, tool, args });
    const f = this.tools[`${server}__${tool}`];
    if (!f) throw new Error(`no tool ${server}__${tool}`);
    return f(args);
  }
}
