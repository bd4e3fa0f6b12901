import { AckdError } from '../../core/errors.ts';
import { parseRequestId, parseSvidId } from '../../core/ids.ts';
import { recordToolCallsInput, recordToolCallsOutput } from '../schemas.ts';
import { defineTool } from '../tool.ts';

/**
 * The audit record of an enforcement point (the ackd gateway, docs/gateway.md): what it let
 * through, refused, and ran after an approval. `started` claims the one call an approval allows.
 */
export const recordToolCalls = defineTool({
  name: 'record_tool_calls',
  title: 'Record tool calls made through a gateway',
  description:
    'For the ackd gateway: record tool calls in the audit log. outcome "started" claims the one call an approved request may run ' +
    '(refused with ERR_ALREADY_EXECUTED when it already ran one); "executed" or "failed" finishes it; "allowed", "refused", "denied" and ' +
    '"expired" record calls that ran without approval or did not run. Results come back per call, in order; isError when any failed.',
  input: recordToolCallsInput,
  output: recordToolCallsOutput,
  annotations: { title: 'Record tool calls made through a gateway', readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  failed: (out) => out.results.some((r) => !r.ok),
  async run(args, ctx) {
    if (!ctx.toolCalls) throw new AckdError('ERR_CONFIG', 'this ackd deployment does not record tool calls');
    const reports = args.calls.map((c) => ({
      ...c,
      request_id: c.request_id === undefined ? undefined : parseRequestId(c.request_id),
      svid_id: c.svid_id === undefined ? undefined : parseSvidId(c.svid_id),
    }));
    return { results: await ctx.toolCalls.record(ctx.agentId, reports) };
  },
});
