import { canonicalJson, sha256Hex } from './jcs.ts';
import type { ApprovalView } from './view-fields.ts';

export { approvalView, type ApprovalView } from './view-fields.ts';

/** Lowercase hex SHA-256 over the view's canonical JSON (core/view-fields.ts); the page computes the same in consent-ui/src/view-hash.ts. */
export function viewSha256(view: ApprovalView): string {
  return sha256Hex(canonicalJson(view));
}
