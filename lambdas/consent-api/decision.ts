import { AckdError } from '../core/errors.ts';
import type { DecisionEvidence } from '../core/evidence.ts';
import { isSha256Hex } from '../core/payload.ts';
import { parsePasskeyAssertion } from '../core/passkeys.ts';

/**
 * What a decision's body (POST /requests/:id/approve|deny) binds it to, checked before anything is
 * decided: `view_sha256`, the SHA-256 the page computed over the view it rendered
 * (consent-ui/src/view-hash.ts; core/view.ts on the server), required, 64 lowercase hex digits;
 * and `passkey`, the approver's assertion, when sent. The service then refuses it (ERR_STALE_VIEW)
 * unless the view is the hash of the request as stored, and checks the assertion.
 */
export function decisionEvidence(body: Readonly<Record<string, unknown>>): DecisionEvidence {
  return {
    view_sha256: parseViewSha256(body.view_sha256),
    // The approver's passkey assertion over this decision (consent-api/passkeys.ts gives the challenge), when sent.
    ...(body.passkey === undefined || body.passkey === null ? {} : { passkey: parsePasskeyAssertion(body.passkey) }),
  };
}

/** `view_sha256` of a decision or of a decision's passkey challenge: required, 64 lowercase hex digits. */
export function parseViewSha256(seen: unknown): string {
  if (seen === undefined || seen === null) throw new AckdError('ERR_INVALID_INPUT', 'view_sha256: required: the SHA-256 of the request as the page showed it (64 lowercase hex digits)', { field: 'view_sha256' });
  if (!isSha256Hex(seen)) throw new AckdError('ERR_INVALID_INPUT', 'view_sha256: must be 64 lowercase hex digits (a SHA-256)', { field: 'view_sha256' });
  return seen;
}
