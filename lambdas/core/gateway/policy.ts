import type { Decision, GatewayConfig } from './config.ts';
import { classifyTool, type Effect, type EffectSource, type ToolAnnotations } from './effects.ts';

export interface ToolPolicy {
  readonly effect: Effect;
  readonly effectSource: EffectSource;
  readonly decision: Decision;
  /** Set when the configured decision was not applied (an admin tool configured "allow"). */
  readonly note?: string;
}

/**
 * The effect class and decision of one gateway tool (`<server>__<tool>`): the per-tool entry's
 * decision if it has one, else the default for the class. An admin tool is never allowed without
 * approval: a per-tool "allow" of a tool that turns out to be admin becomes "approve".
 */
export function resolveToolPolicy(policy: GatewayConfig['policy'], qualifiedName: string, toolName: string, annotations: ToolAnnotations | undefined): ToolPolicy {
  const rule = policy.tools.get(qualifiedName);
  const { effect, source } = classifyTool(toolName, annotations, rule?.effect);
  const configured = rule?.decision ?? policy.default[effect];
  if (effect === 'admin' && configured === 'allow') {
    return { effect, effectSource: source, decision: 'approve', note: `${qualifiedName} is an admin tool: "allow" is not honoured for admin tools, it needs approval` };
  }
  return { effect, effectSource: source, decision: configured };
}

/** The suffix the gateway adds to a tool's description. */
export function describePolicy(p: ToolPolicy): string {
  const what = p.decision === 'allow' ? 'allowed' : p.decision === 'approve' ? 'approval required' : 'refused by policy';
  return ` [ackd: ${p.effect}, ${what}]`;
}
