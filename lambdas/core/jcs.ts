import { createHash } from 'node:crypto';
import canonicalizeModule from 'canonicalize';

// RFC 8785 (JCS) by its author's package. It is CommonJS with an ESM-style type declaration;
// take the function whichever way the loader hands it over.
const canonicalize = ((canonicalizeModule as unknown as { default?: unknown }).default ?? canonicalizeModule) as (v: unknown) => string | undefined;

/** RFC 8785 canonical JSON. */
export function canonicalJson(value: unknown): string {
  const s = canonicalize(value);
  if (s === undefined) throw new Error('value has no JSON form');
  return s;
}

/** Lowercase hex SHA-256 of the UTF-8 text. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
