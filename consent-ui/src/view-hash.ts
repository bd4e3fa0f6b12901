/**
 * The page's side of the view binding (lambdas/core/view.ts is the server's): the SHA-256 of the
 * canonical JSON (RFC 8785) of exactly the fields the page rendered, computed in the browser with
 * WebCrypto. The server recomputes it from the stored record and refuses a decision made on any
 * other view.
 */
import canonicalizeModule from 'canonicalize';

const canonicalize = ((canonicalizeModule as unknown as { default?: unknown }).default ?? canonicalizeModule) as (v: unknown) => string | undefined;

/** The fields of core/view.ts `ApprovalView`, as the consent API returns them. */
export interface RenderedView {
  readonly request_id: string;
  readonly agent_id: string;
  readonly action: string;
  readonly permissions: readonly string[];
  readonly justification: string;
  readonly payload: Readonly<Record<string, unknown>> | null;
  readonly ttl_minutes: number;
  readonly expires_at: string;
}

/** Exactly the view's fields of `r` (anything else the API sent is left out). */
export function renderedView(r: RenderedView): RenderedView {
  return {
    request_id: r.request_id,
    agent_id: r.agent_id,
    action: r.action,
    permissions: [...r.permissions],
    justification: r.justification,
    payload: r.payload ?? null,
    ttl_minutes: r.ttl_minutes,
    expires_at: r.expires_at,
  };
}

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Lowercase hex SHA-256 over the canonical JSON of the rendered view. */
export async function viewSha256(r: RenderedView): Promise<string> {
  const json = canonicalize(renderedView(r));
  if (json === undefined) throw new Error('the view has no JSON form');
  return sha256Hex(json);
}

/** Lowercase hex SHA-256 over the payload's canonical JSON: core/payload.ts `payloadSha256`, in the browser (the page checks the server's digest with it). */
export async function payloadSha256Hex(payload: Readonly<Record<string, unknown>>): Promise<string> {
  const json = canonicalize(payload);
  if (json === undefined) throw new Error('the payload has no JSON form');
  return sha256Hex(json);
}
