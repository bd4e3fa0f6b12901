import type { Command } from 'commander';
import { invalid } from '../core/errors.ts';
import { parseAgentId } from '../core/ids.ts';
import { LIMITS } from '../core/request.ts';
import { visible } from '../core/visible.ts';
import { permissionProblem } from '../core/permission.ts';
import { parseOperator, specificity, toEffective, type EffectivePolicy, type Policy, type PolicyInput, type Resolution } from '../core/policy.ts';
import { cliDeps, output } from './context.ts';

/**
 * `ackd policy set|show|list|remove|explain`: approval policies, managed at runtime. Values are
 * handed to the core as given (numbers converted only when they are plain digits), so every rule
 * and its message lives in core/policy.ts.
 */
export function registerPolicyCommands(program: Command): void {
  const policy = program
    .command('policy')
    .description("approval policies: how many humans must approve an agent's requests, who may vote, how denials count, who is notified")
    .addHelpText(
      'after',
      '\nA policy applies to an agent (or --agent "*") and a permission pattern ("*" matches anything; no --permission: any permission).\n' +
        'Per permission the most specific policy wins; a request takes the strictest of its permissions\' policies,\n' +
        'asks every route they name and escalates as early as the earliest of them. See `ackd policy explain`.',
    );

  policy
    .command('set')
    .description('create or replace the policy for an agent and permission pattern (options not given take their defaults)')
    .requiredOption('--agent <agent_id>', 'the agent, or "*" for every agent')
    .option('--permission <pattern>', 'permission pattern, "*" = any characters (default: any permission)')
    .requiredOption('--approvals <n>', 'distinct humans who must approve (1-5)')
    .option('--approvers <groups>', 'Cognito groups whose members may vote, comma-separated (default: any approver)')
    .option('--deny <rule>', '"any": one denial decides; "majority": denied once as many deny as must approve', 'any')
    .option('--separation-of-duties', "the agent's owner may not vote on its requests")
    .option('--no-operator-decisions', 'CLI decisions (requests approve|deny --as) do not count')
    .option('--route <name>', 'the route of ACKD_ROUTES asked when a request is made (default: the default route)')
    .option('--escalate-to <name>', 'the route asked if nobody has decided by --escalate-after (default: no escalation)')
    .option('--escalate-after <percent>', "percent of the request's wait before escalating, 10-90 (default: 50; needs --escalate-to)")
    .option('--passkey <rule>', '"required": every decision must be signed with the approver\'s passkey in the consent UI (CLI decisions are then refused)')
    .requiredOption('--as <operator>', 'who is changing the policy (recorded)')
    .option('--json', 'print JSON')
    .action(async (opts: SetOptions) => {
      const input = {
        agent: opts.agent,
        ...(opts.permission === undefined ? {} : { permission: opts.permission }),
        approvals: number(opts.approvals),
        ...(opts.approvers === undefined ? {} : { approvers: opts.approvers.split(',').map((g) => g.trim()) }),
        deny: opts.deny,
        separation_of_duties: opts.separationOfDuties ?? false,
        operator_decisions: opts.operatorDecisions,
        ...(opts.route === undefined ? {} : { route: opts.route }),
        ...(opts.escalateTo === undefined ? {} : { escalate_to: opts.escalateTo }),
        ...(opts.escalateAfter === undefined ? {} : { escalate_after: number(opts.escalateAfter) }),
        ...(opts.passkey === undefined ? {} : { passkey: opts.passkey }),
      };
      const actor = parseOperator(opts.as);
      const { policy: set, previous } = await cliDeps().policies.set(input, actor);
      output(opts.json, { policy: set, previous }, () => [`policy ${title(set)} set by ${set.updated_by}`, ...describePolicy(set), ...(previous ? ['', 'replaced:', ...describePolicy(previous)] : [])].join('\n'));
    });

  policy
    .command('show')
    .description('show one policy')
    .requiredOption('--agent <agent_id>', 'the agent, or "*"')
    .option('--permission <pattern>', 'the permission pattern (default: the any-permission policy)')
    .option('--json', 'print JSON')
    .action(async (opts: { agent: string; permission?: string; json?: boolean }) => {
      const p = await cliDeps().policies.show(opts.agent, opts.permission ?? null);
      output(opts.json, p, () => [`policy ${title(p)}`, ...describePolicy(p), `  updated ${p.updated_at} by ${p.updated_by}`].join('\n'));
    });

  policy
    .command('list')
    .description('list every policy')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const all = await cliDeps().policies.list();
      output(opts.json, all, () => (all.length === 0 ? 'no policies: every request needs 1 approval from any approver, one denial decides' : all.map(oneLine).join('\n')));
    });

  policy
    .command('remove')
    .description('remove one policy (requests then fall back to the next most specific policy, or the default)')
    .requiredOption('--agent <agent_id>', 'the agent, or "*"')
    .option('--permission <pattern>', 'the permission pattern (default: the any-permission policy)')
    .requiredOption('--as <operator>', 'who is removing it (recorded)')
    .option('--json', 'print JSON')
    .action(async (opts: { agent: string; permission?: string; as: string; json?: boolean }) => {
      const actor = parseOperator(opts.as);
      const removed = await cliDeps().policies.remove(opts.agent, opts.permission ?? null, actor);
      output(opts.json, { removed }, () => `policy ${title(removed)} removed by operator:${actor.id}`);
    });

  policy
    .command('explain')
    .description('which policy a request of this agent for these permissions would be decided under, and why')
    .requiredOption('--agent <agent_id>', 'the agent making the request')
    .requiredOption('--permission <permission>', 'a permission of the request (repeat for several)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--json', 'print JSON')
    .action(async (opts: { agent: string; permission: string[]; json?: boolean }) => {
      const agentId = parseAgentId(opts.agent, 'agent');
      const permissions = parseRequestPermissions(opts.permission);
      const d = cliDeps();
      const [resolution, agent] = await Promise.all([d.policies.resolve(agentId, permissions), d.agents.get(agentId)]);
      const owner = agent?.owner ?? null;
      const warnings = explainWarnings(resolution.policy, owner);
      output(opts.json, { agent_id: agentId, ...resolution, owner, warnings }, () => explainText(agentId, resolution, owner, warnings));
    });
}

interface SetOptions {
  agent: string;
  permission?: string;
  approvals: string;
  approvers?: string;
  deny: string;
  separationOfDuties?: boolean;
  operatorDecisions: boolean;
  route?: string;
  escalateTo?: string;
  escalateAfter?: string;
  passkey?: string;
  as: string;
  json?: boolean;
}

/** A number when the value is plain digits; anything else goes to the core as given, to be refused there with its rule. */
function number(v: string): number | string {
  return /^\d{1,3}$/.test(v) ? Number(v) : v;
}

/** Permissions as a request would carry them: the MCP tool's rule (there, `*` is a literal character). */
function parseRequestPermissions(values: readonly string[]): string[] {
  if (values.length > LIMITS.permissionsMax) throw invalid('permission', `a request has at most ${LIMITS.permissionsMax} permissions`);
  return values.map((v) => {
    const problem = permissionProblem(v);
    if (problem !== undefined) throw invalid('permission', problem);
    return v;
  });
}

function title(p: Pick<Policy, 'agent' | 'permission'>): string {
  return `agent ${p.agent}, ${p.permission === null ? 'any permission' : `permission ${p.permission}`}`;
}

function oneLine(p: Policy): string {
  const approvers = p.approvers.length === 0 ? 'any approver' : `groups ${p.approvers.join(',')}`;
  const notify = `${p.route === null ? '' : `, route ${p.route}`}${p.escalate_to === null ? '' : `, escalate to ${p.escalate_to} after ${p.escalate_after}%`}`;
  return `${p.agent.padEnd(16)} ${(p.permission ?? '(any)').padEnd(24)} ${p.approvals} approval${p.approvals === 1 ? '' : 's'}, ${approvers}, deny ${p.deny}${p.separation_of_duties ? ', separation of duties' : ''}${p.operator_decisions ? '' : ', no operator decisions'}${notify}${p.passkey === 'required' ? ', passkey required' : ''}`;
}

function describePolicy(p: PolicyInput): string[] {
  // The groups as given (one list), not sorted as toEffective does.
  return describeRule({ ...toEffective(p), approver_groups: p.approvers.length === 0 ? [] : [p.approvers] });
}

function describeRule(r: EffectivePolicy): string[] {
  return [
    `  approvals             ${r.approvals} distinct human${r.approvals === 1 ? '' : 's'}`,
    `  approvers             ${r.approver_groups.length === 0 ? 'any approver' : r.approver_groups.map((gs) => `in ${gs.join(' or ')}`).join(', and ')}`,
    `  deny                  ${r.deny === 'any' ? 'any: one denial decides' : `majority: denied once ${r.approvals} deny (as many as must approve)`}`,
    `  separation of duties  ${r.separation_of_duties ? "on: the agent's owner may not vote" : 'off'}`,
    `  operator decisions    ${r.operator_decisions ? 'count as votes' : 'do not count (decide in the consent UI)'}`,
    `  route${r.routes.length > 1 ? 's ' : '  '}               ${r.routes.length === 0 ? 'the default route' : r.routes.join(', ')}`,
    `  escalation            ${r.escalation === null ? 'none' : `to ${r.escalation.routes.join(', ')} if nobody has decided after ${r.escalation.after_percent}% of the wait`}`,
    ...(r.passkey === 'required' ? ['  passkey               required: each decision is signed with the approver\'s passkey in the consent UI'] : []),
  ];
}

/** What a team lead should know before an agent hits this rule. */
export function explainWarnings(r: EffectivePolicy, owner: string | null): string[] {
  const w: string[] = [];
  if (r.approver_groups.length > 1) w.push(`permissions with different approver groups: each voter must be in a group of every list (${r.approver_groups.map((g) => g.join('|')).join(' and ')}); split the request if no one is`);
  if (r.separation_of_duties && owner === null) w.push('separation of duties is on but the agent has no owner recorded (ackd agents create <id> --owner <email>): no one is excluded');
  if (r.separation_of_duties && r.operator_decisions) w.push('operator decisions count and an operator name (--as) is not verified: separation of duties can only refuse an operator who names the owner');
  const again = r.escalation?.routes.filter((route) => r.routes.includes(route)) ?? [];
  if (again.length > 0) w.push(`route${again.length === 1 ? '' : 's'} ${again.join(', ')} ${again.length === 1 ? 'is' : 'are'} asked first and asked again on escalation (policies of different permissions name ${again.length === 1 ? 'it' : 'them'} both ways)`);
  return w;
}

function explainText(agentId: string, r: Resolution, owner: string | null, warnings: readonly string[]): string {
  const width = Math.max(...r.per_permission.map((p) => p.permission.length));
  return [
    `a request of ${agentId} for ${r.per_permission.map((p) => p.permission).join(', ')}`,
    ...r.per_permission.map((p) => `  ${p.permission.padEnd(width)}  ← ${p.policies.length === 0 ? 'built-in default (no policy matches)' : p.policies.map(describeKey).join(' + ')}`),
    r.per_permission.length > 1 ? 'is decided under the strictest of these:' : 'is decided under:',
    ...describeRule(r.policy),
    `  agent owner           ${owner === null ? 'none recorded' : visible(owner)}`,
    ...warnings.map((w) => `warning: ${w}`),
  ].join('\n');
}

/** A winning policy and why it is the most specific: `policy agent x, permission deploy:* (exact agent, pattern with 7 literal characters)`. */
function describeKey(key: string): string {
  const i = key.indexOf('#');
  const p = { agent: key.slice(0, i), permission: key.slice(i + 1) || null };
  const [exactAgent, kind, literals] = specificity(p);
  const why = [exactAgent ? 'exact agent' : 'every agent', kind === 2 ? 'exact permission' : kind === 1 ? `pattern with ${literals} literal character${literals === 1 ? '' : 's'}` : 'any permission'];
  return `policy ${title(p)} (${why.join(', ')})`;
}
