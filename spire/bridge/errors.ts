/**
 * What the SPIRE adapters may show to callers, and what they keep for the logs.
 *
 * An AckdError's message reaches the agent (MCP tool error text) and the bridge's HTTP client. It is
 * always one of the fixed sentences below: never a gRPC status or details, a socket path or
 * `remote_addr`, a bridge URL, host or port, or an AWS error. Those go into the error's `cause`, an
 * IssuerCallError whose message carries the whole detail, because the logging of errors
 * (`exposeError`) writes `cause.name: cause.message` and nothing deeper.
 */
import { AckdError, type ErrorCode } from '../../lambdas/core/errors.ts';

export const ISSUER_MESSAGES = {
  ERR_ISSUER_UNAVAILABLE: 'the SVID issuer is unavailable; try again later',
  ERR_ISSUER_REFUSED: 'the SVID issuer refused to issue this SVID',
  ERR_INVALID_INPUT: 'the SVID issuer rejected the certificate signing request',
} as const satisfies Partial<Record<ErrorCode, string>>;

export type IssuerErrorCode = keyof typeof ISSUER_MESSAGES;

/** The detail of a failed call to SPIRE or the bridge, for logs only. */
export class IssuerCallError extends Error {
  override readonly name = 'IssuerCallError';
  constructor(detail: string, options?: { cause?: unknown }) {
    super(detail, options?.cause === undefined ? undefined : { cause: options.cause });
  }
}

/** An AckdError with the fixed caller-safe message of `code`; `detail` (logged only) becomes its cause. */
export function issuerError(code: IssuerErrorCode, detail: string, options: { cause?: unknown; field?: string } = {}): AckdError {
  return new AckdError(code, ISSUER_MESSAGES[code], {
    ...(options.field === undefined ? {} : { field: options.field }),
    cause: new IssuerCallError(detail, options.cause === undefined ? {} : { cause: options.cause }),
  });
}

/** One line describing an error and its causes (for logs, never for callers). */
export function describeError(e: unknown): string {
  const parts: string[] = [];
  let c: unknown = e;
  for (let depth = 0; c !== undefined && c !== null && depth < 5; depth++) {
    if (c instanceof Error) {
      const extra = errnoDetail(c);
      parts.push(`${c.name}: ${c.message}${extra}`);
      c = (c as { cause?: unknown }).cause;
    } else {
      parts.push(String(c));
      break;
    }
  }
  return parts.join(' <- ');
}

function errnoDetail(e: Error): string {
  const x = e as NodeJS.ErrnoException & { address?: string; port?: number };
  const bits = [x.code, x.address, x.port].filter((v) => v !== undefined && v !== '');
  return bits.length > 0 && !e.message.includes(String(bits[0])) ? ` (${bits.join(' ')})` : '';
}
