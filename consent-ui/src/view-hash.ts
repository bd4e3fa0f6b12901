/**
 * The page's side of the view binding (lambdas/core/view.ts is the server's): the SHA-256 of the
 * canonical JSON (RFC 8785) of exactly the fields the page rendered, computed in the browser with
 * WebCrypto. The server recomputes it from the stored record and refuses a decision made on any
 * other view.
 */
import canonicalizeModule from 'canonicalize';
import { approvalView, type ApprovalView } from '../../lambdas/core/view-fields.ts';
import type { Payload } from '../../lambdas/core/payload.ts';

const canonicalize = ((canonicalizeModule as unknown as { default?: unknown }).default ?? canonicalizeModule) as (v: unknown) => string | undefined;

/** The fields of the view as the consent API returns them (lambdas/core/view-fields.ts: the one definition, shared with the server). */
export type RenderedView = Omit<ApprovalView, 'payload'> & { readonly payload: Readonly<Record<string, unknown>> | null };

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Lowercase hex SHA-256 over the canonical JSON of the rendered view. */
export async function viewSha256(r: RenderedView): Promise<string> {
  const json = canonicalize(approvalView({ ...r, payload: r.payload as Payload | null }));
  if (json === undefined) throw new Error('the view has no JSON form');
  return sha256Hex(json);
}

/** Lowercase hex SHA-256 over the payload's canonical JSON: core/payload.ts `payloadSha256`, in the browser (the page checks the server's digest with it). */
export async function payloadSha256Hex(payload: Readonly<Record<string, unknown>>): Promise<string> {
  const json = canonicalize(payload);
  if (json === undefined) throw new Error('the payload has no JSON form');
  return sha256Hex(json);
}
