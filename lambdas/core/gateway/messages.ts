import { AckdError } from '../errors.ts';

/** An error as one line for the agent or the operator: AckdError with its code, else the message. */
export function exposeMessage(e: unknown): string {
  if (e instanceof AckdError) return `${e.code}: ${e.message}`;
  const m = e instanceof Error ? e.message : String(e);
  return m.replace(/\s+/g, ' ').slice(0, 400);
}
