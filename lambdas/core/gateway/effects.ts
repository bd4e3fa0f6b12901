/**
 * Effect classes of tools (read | mutating | destructive | admin) and the decision each gets.
 *
 * The class is decided in this order: the policy's per-tool entry; the tool's MCP annotations
 * (`readOnlyHint: true` → read, `destructiveHint: true` → destructive); keywords in the tool's name;
 * else mutating. When a name holds keywords of several classes, the most severe wins
 * (admin > destructive > mutating > read), so `list_and_delete` is destructive.
 */
import { EFFECTS, type Effect } from '../tool-call.ts';

/** The classes, as ackd's audit log records them (core/tool-call.ts). */
export { EFFECTS, type Effect };

/** Where a tool's effect class came from (shown in docs and logs). */
export type EffectSource = 'policy' | 'annotations' | 'name' | 'default';

/** Keywords by class, as words of the tool name (`transfer_ownership` is two words in a row). */
export const EFFECT_KEYWORDS: Readonly<Record<Effect, readonly string[]>> = {
  read: ['get', 'list', 'read', 'describe', 'search', 'view', 'fetch', 'query', 'head'],
  mutating: ['write', 'update', 'create', 'execute', 'invoke', 'modify', 'send', 'put', 'post', 'commit', 'push', 'deploy'],
  destructive: ['delete', 'drop', 'destroy', 'purge', 'terminate', 'remove', 'truncate'],
  admin: ['admin', 'transfer_ownership', 'revoke', 'escalate', 'grant', 'impersonate'],
};

const SEVERITY: readonly Effect[] = ['admin', 'destructive', 'mutating', 'read'];

/** The words of a tool name: split at `_ - . / :` spaces and camelCase humps, lower-cased. */
export function nameWords(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .split(/[\s_\-./:]+/)
    .filter((w) => w !== '')
    .map((w) => w.toLowerCase());
}

function hasKeyword(words: readonly string[], keyword: string): boolean {
  const parts = keyword.split('_');
  for (let i = 0; i + parts.length <= words.length; i++) {
    if (parts.every((p, j) => words[i + j] === p)) return true;
  }
  return false;
}

/** The class the tool's name suggests, or undefined when no keyword matches. */
export function effectFromName(toolName: string): Effect | undefined {
  const words = nameWords(toolName);
  return SEVERITY.find((e) => EFFECT_KEYWORDS[e].some((k) => hasKeyword(words, k)));
}

export interface ToolAnnotations {
  readonly readOnlyHint?: boolean;
  readonly destructiveHint?: boolean;
  readonly [k: string]: unknown;
}

export function classifyTool(toolName: string, annotations: ToolAnnotations | undefined, policyEffect: Effect | undefined): { effect: Effect; source: EffectSource } {
  if (policyEffect) return { effect: policyEffect, source: 'policy' };
  if (annotations?.readOnlyHint === true) return { effect: 'read', source: 'annotations' };
  if (annotations?.destructiveHint === true) return { effect: 'destructive', source: 'annotations' };
  const byName = effectFromName(toolName);
  if (byName) return { effect: byName, source: 'name' };
  return { effect: 'mutating', source: 'default' };
}
