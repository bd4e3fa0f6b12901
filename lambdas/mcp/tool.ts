import type { CallToolResult, Tool, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import * as z from 'zod';
import { AckdError } from '../core/errors.ts';
import { ok, toolError } from './result.ts';
import type { ToolContext } from './server.ts';

/**
 * One MCP tool: its public description, the zod schemas of its input and output (schemas.ts),
 * and what it does with a validated input. The server advertises `input`/`output` as JSON Schema
 * and validates every call with them itself, so that every invalid call gets the same documented
 * tool error.
 */
export interface ToolDefinition<I extends z.ZodObject = z.ZodObject, O extends z.ZodObject = z.ZodObject> {
  readonly name: string;
  readonly title: string;
  readonly description: string;
  readonly input: I;
  readonly output: O;
  readonly annotations: ToolAnnotations;
  /** Whether a result that matches the output schema still reports a failure (isError: true), e.g. some of a batch refused. */
  readonly failed?: (output: z.output<O>) => boolean;
  run(args: z.output<I>, ctx: ToolContext): Promise<z.input<O>>;
}

/** Type-checks a tool's handler against its own schemas. */
export function defineTool<I extends z.ZodObject, O extends z.ZodObject>(tool: ToolDefinition<I, O>): ToolDefinition<I, O> {
  return tool;
}

/** The `tools/list` entry of a tool. Computed once per process, not per request. */
export function describeTool(tool: ToolDefinition): Tool {
  return {
    name: tool.name,
    title: tool.title,
    description: tool.description,
    inputSchema: z.toJSONSchema(tool.input, { target: 'draft-7', io: 'input' }) as Tool['inputSchema'],
    outputSchema: z.toJSONSchema(tool.output, { target: 'draft-7', io: 'output' }) as Tool['outputSchema'],
    annotations: tool.annotations,
    execution: { taskSupport: 'forbidden' },
  };
}

/**
 * A caller-supplied name, echoed safely: a JSON string of at most 64 characters with everything
 * outside printable ASCII escaped, so no control, invisible or direction-changing character of
 * the caller's reaches whoever reads the error.
 */
export function quoted(name: string): string {
  const cut = name.length > 64 ? `${name.slice(0, 64)}...` : name;
  return JSON.stringify(cut).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A JSON path for an argument: `ttl_minutes`, `permissions[3]`, `["odd key"]`. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const key = String(seg);
      if (/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(key)) out += out === '' ? key : `.${key}`;
      else out += `[${quoted(key)}]`;
    }
  }
  return out === '' ? 'arguments' : out;
}

/** ERR_INVALID_INPUT for the first problem zod found: `<field>: <rule>`. */
export function invalidInput(tool: ToolDefinition, error: z.ZodError): AckdError {
  const issue = error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    const [first, ...more] = issue.keys;
    const field = fieldPath([...issue.path, first!]);
    const also = more.length === 0 ? '' : ` (and ${more.length} more unknown argument${more.length === 1 ? '' : 's'})`;
    const known = Object.keys(tool.input.shape).join(', ');
    return new AckdError('ERR_INVALID_INPUT', `${field}: is not an argument of ${tool.name}${also}; it takes only ${known}`, { field });
  }
  const field = fieldPath(issue.path);
  if (issue.path.length === 0 && issue.code === 'invalid_type') {
    return new AckdError('ERR_INVALID_INPUT', 'arguments: must be an object of named arguments', { field });
  }
  return new AckdError('ERR_INVALID_INPUT', `${field}: ${issue.message}`, { field });
}

/**
 * Runs one tools/call: validates the arguments (a failure changes nothing), runs the tool, and
 * checks its result against the tool's outputSchema. Every failure is a tool error
 * (`isError: true`, `CODE: message`); a result that breaks the output schema is a bug, logged
 * and shown as ERR_INTERNAL.
 */
export async function callTool(tool: ToolDefinition, args: unknown, ctx: ToolContext): Promise<CallToolResult> {
  try {
    const parsed = tool.input.safeParse(args === undefined ? {} : args);
    if (!parsed.success) throw invalidInput(tool, parsed.error);
    const result = tool.output.safeParse(await tool.run(parsed.data, ctx));
    if (!result.success) {
      // The issue's path and code only: the value may hold an SVID's private key.
      const issue = result.error.issues[0];
      throw new Error(`output of ${tool.name} does not match its outputSchema at ${fieldPath(issue?.path ?? [])} (${issue?.code})`);
    }
    const answer: CallToolResult = ok(result.data as Record<string, unknown>);
    if (tool.failed?.(result.data)) answer.isError = true;
    return answer;
  } catch (e) {
    return toolError(e, ctx.logger, tool.name);
  }
}
