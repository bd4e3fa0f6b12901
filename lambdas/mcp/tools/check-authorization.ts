import { parseRequestId } from '../../core/ids.ts';
import { checkAuthorizationInput, checkAuthorizationOutput } from '../schemas.ts';
import { defineTool } from '../tool.ts';

export const checkAuthorization = defineTool({
  name: 'check_authorization',
  title: 'Check an authorization request',
  description:
    'Status of a request: pending, approved (with the SVID), denied, expired or revoked. The first check after approval ' +
    'delivers the SVID (PEM chain + private key) exactly once. Pass wait_seconds (0-25) to wait for a decision instead of polling fast.',
  input: checkAuthorizationInput,
  output: checkAuthorizationOutput,
  annotations: { title: 'Check an authorization request', readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  async run(args, ctx) {
    const requestId = parseRequestId(args.request_id);
    // The caller's disconnect ends a long-poll; the API key is checked again before an SVID is minted and handed out.
    const opts = { signal: ctx.signal, reauthorize: ctx.reauthorize };
    return args.wait_seconds
      ? ctx.service.checkWaiting(ctx.agentId, requestId, args.wait_seconds, ctx.sleep, opts)
      : ctx.service.check(ctx.agentId, requestId, opts);
  },
});
