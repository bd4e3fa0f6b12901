import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { exposeError } from '../core/errors.ts';
import type { Logger } from '../core/ports.ts';

/** A tool result carried both as structuredContent and as JSON text. */
export function ok<T extends Record<string, unknown>>(value: T): CallToolResult & { structuredContent: T } {
  return { structuredContent: value, content: [{ type: 'text', text: JSON.stringify(value) }] };
}

/** A tool error: known errors show their code and message; anything else is "internal error". */
export function toolError(e: unknown, logger: Logger, tool: string): CallToolResult {
  const err = exposeError(e, (msg, detail) => logger.error(msg, { tool, ...detail }));
  return { isError: true, content: [{ type: 'text', text: `${err.code}: ${err.message}` }] };
}
