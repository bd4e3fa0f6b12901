import { Command } from 'commander';
import { INVISIBLE, visible } from '../core/visible.ts';
import { shownText } from '../core/payload-fields.ts';
import { createApiKey, revokeApiKey } from '../core/apikeys.ts';
import { userInfo } from 'node:os';
import { AckdError, invalid } from '../core/errors.ts';
import { recordOwner } from '../core/agents.ts';
import { parseOperator } from '../core/policy.ts';
import { parseEmail } from '../adapters/ses/notifier.ts';
import { readFileSync } from 'node:fs';
import { parseAgentId } from '../core/ids.ts';
import { ExitCode, registerAuditCommands } from './audit.ts';
import { cliDeps, output, UsageError } from './context.ts';
import { registerRequestCommands } from './requests.ts';
import { periodicWork } from '../deps.ts';
import { registerSvidCommands } from './svid.ts';
import { registerApproverCommands } from './approvers.ts';
import { registerPolicyCommands } from './policy.ts';
import { registerAwsCommands } from './aws.ts';
import { registerGateCommand } from './gate.ts';
import { registerGatewayCommand } from './gateway.ts';
import { registerReceiptCommands } from './receipt.ts';
import { registerPasskeyCommands } from './passkeys.ts';

export function buildProgram(): Command {
  const program = new Command('ackd')
    .description('ackd operator CLI: agent keys, requests, approvers, approval policies, audit log, SVIDs')
    .version(packageVersion(), '-v, --version', 'print the version of ackd')
    .showHelpAfterError()
    .exitOverride();

  const agents = program.command('agents').description('agents: API keys and owners');
  agents
    .command('create <agent_id>')
    .description('create an API key for an agent (the key is shown once; only its hash is stored)')
    .option('--owner <email>', "record the human who owns the agent (separation of duties keeps the owner from voting on its requests)")
    .option('--as <name>', 'who creates the key and records the owner (in the audit log); required with --owner, else the user running the CLI')
    .option('--json', 'print JSON')
    .action(async (agentIdArg: string, opts: { owner?: string; as?: string; json?: boolean }) => {
      const agentId = parseAgentId(agentIdArg, 'agent_id');
      const owner = opts.owner === undefined ? undefined : parseOwner(opts.owner);
      if (owner !== undefined && opts.as === undefined) throw new AckdError('ERR_INVALID_INPUT', '--as: required with --owner (the owner is recorded in the audit log with who set it)', { field: '--as' });
      const actor = operatorOf(opts.as);
      const d = cliDeps();
      // The owner first: a key is never handed out for an agent whose owner could not be recorded.
      if (owner !== undefined) await recordOwner(d.agents, agentId, owner, d.clock, { log: d.ownerAudit, actor });
      const { apiKey, entry } = await createApiKey(d.apiKeys, agentId, d.clock, { log: d.apiKeyAudit, actor });
      output(opts.json, { agent_id: agentId, key_id: entry.key_id, api_key: apiKey, created_at: entry.created_at, ...(owner === undefined ? {} : { owner }) }, () =>
        [`agent:   ${agentId}`, ...(owner === undefined ? [] : [`owner:   ${owner}`]), `key id:  ${entry.key_id}`, `api key: ${apiKey}`, '', 'Store this key now: ackd keeps only its hash and cannot show it again.'].join('\n'),
      );
    });
  agents
    .command('show <agent_id>')
    .description("an agent's owner and how many API keys it has")
    .option('--json', 'print JSON')
    .action(async (agentIdArg: string, opts: { json?: boolean }) => {
      const agentId = parseAgentId(agentIdArg, 'agent_id');
      const d = cliDeps();
      const [record, keys] = await Promise.all([d.agents.get(agentId), d.apiKeys.listByAgent(agentId)]);
      if (!record && keys.length === 0) throw new AckdError('ERR_NOT_FOUND', `agent_id: no agent ${agentId} (no owner recorded, no API keys)`, { field: 'agent_id' });
      const active = keys.filter((k) => k.revoked_at === null).length;
      const shown = { agent_id: agentId, owner: record?.owner ?? null, owner_updated_at: record?.updated_at ?? null, keys: keys.length, active_keys: active };
      output(opts.json, shown, () =>
        [`agent:  ${agentId}`, `owner:  ${shown.owner === null ? 'none recorded' : visible(shown.owner)}`, `keys:   ${keys.length} (${active} active, ${keys.length - active} revoked)`].join('\n'),
      );
    });
  agents
    .command('list')
    .description('list API keys (ids and agents, never the keys)')
    .option('--agent <agent_id>', 'only this agent')
    .option('--json', 'print JSON')
    .action(async (opts: { agent?: string; json?: boolean }) => {
      const d = cliDeps();
      const keys = opts.agent ? await d.apiKeys.listByAgent(parseAgentId(opts.agent, '--agent')) : await d.apiKeys.listAll();
      const shown = keys.map(({ key_hash: _hash, seal: _seal, ...k }) => k);
      output(opts.json, shown, () =>
        shown.length === 0
          ? 'no API keys'
          : shown
              .map((k) => `${shownText(String(k.key_id))}  ${shownText(String(k.agent_id))}  created ${shownText(String(k.created_at))}${k.revoked_at ? `  REVOKED ${shownText(String(k.revoked_at))}` : k.sealed === true ? '' : k.sealed === null ? '  (seal not checked: no ACKD_OUTBOX_SEAL_KEY here)' : '  UNSEALED (does not authenticate: see ackd agents seal-keys)'}`)
              .join('\n'),
      );
    });
  agents
    .command('seal-keys [key_id...]')
    .description('seal the API keys stored before keys were sealed, so that they authenticate again (once, after upgrading; check `ackd agents list` first: what this seals, you vouch for). With key ids, only those; without, every entry that has no seal at all')
    .option('--json', 'print JSON')
    .action(async (keyIds: string[], opts: { json?: boolean }) => {
      const d = cliDeps();
      const sealed = (await d.apiKeys.sealUnsealed(keyIds.length > 0 ? keyIds : undefined)).map((k) => ({ key_id: k.key_id, agent_id: k.agent_id, created_at: k.created_at }));
      output(opts.json, { sealed }, () =>
        sealed.length === 0 ? 'no unsealed API keys' : [`sealed ${sealed.length} API key(s):`, ...sealed.map((k) => `  ${shownText(String(k.key_id))}  ${shownText(String(k.agent_id))}  created ${shownText(String(k.created_at))}`)].join('\n'),
      );
    });
  agents
    .command('revoke-key <key_id>')
    .description('revoke an API key; the agent can no longer call ackd with it (recorded in the audit log)')
    .option('--as <name>', 'who revokes it (in the audit log; default: the user running the CLI)')
    .option('--json', 'print JSON')
    .action(async (keyId: string, opts: { as?: string; json?: boolean }) => {
      const actor = operatorOf(opts.as);
      const d = cliDeps();
      const revoked = await revokeApiKey(d.apiKeys, keyId, d.clock, { log: d.apiKeyAudit, actor });
      const agents = [...new Set(revoked.map((e) => String(e.agent_id)))];
      output(opts.json, { key_id: keyId, revoked: true, entries: revoked.length, agents }, () =>
        revoked.length === 1 ? `revoked ${keyId}` : `revoked ${keyId}: ${revoked.length} entries carried this id (agents ${agents.map(shownText).join(', ')}); all are revoked`,
      );
    });

  registerRequestCommands(program);
  registerAuditCommands(program);

  program
    .command('sweep')
    .description('what the scheduled sweeper does: sequence waiting audit events, record expiry of overdue requests, re-send failed consent emails, sign an audit checkpoint')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const result = await periodicWork(cliDeps(), 1000);
      output(opts.json, result, () =>
        [
          `expired ${result.expired} request(s); re-sent ${result.renotified} email(s); sequenced ${result.sequenced} audit event(s)`,
          result.checkpoint_error
            ? `audit checkpoint NOT signed: ${result.checkpoint_error}`
            : result.checkpoint_seq === null
              ? 'no checkpoint signed (no ACKD_AUDIT_KEY, or an empty log)'
              : `audit checkpoint at seq ${result.checkpoint_seq}`,
        ].join('\n'),
      );
      if (result.checkpoint_error) throw new ExitCode(1);
    });

  registerSvidCommands(program);
  registerApproverCommands(program);
  registerPolicyCommands(program);
  registerAwsCommands(program);
  registerGateCommand(program);
  registerGatewayCommand(program);
  registerReceiptCommands(program);
  registerPasskeyCommands(program);
  return program;
}

/** `--owner`: an email address (the rule of the consent mail's recipients), refused as input, not as configuration. */
function parseOwner(raw: string): string {
  let email: string;
  try {
    email = parseEmail(raw, 'owner');
  } catch {
    throw invalid('owner', 'must be an email address');
  }
  if (/[\u0000-\u001f\u007f-\u009f]/.test(email) || new RegExp(INVISIBLE.source, 'u').test(email)) throw invalid('owner', 'must not contain control or invisible characters');
  return email;
}

/** The version of the ackd package (package.json). */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** Who an operator's command records as its actor: `--as`, else the user running the CLI. */
function operatorOf(as: string | undefined): { type: 'operator'; id: string } {
  if (as !== undefined) return parseOperator(as, '--as');
  let user = 'cli';
  try {
    user = userInfo().username || user;
  } catch {
    // no user name (a container without a passwd entry): 'cli'
  }
  return parseOperator(user, '--as');
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof ExitCode) return e.code;
    if (e instanceof UsageError) {
      process.stderr.write(`error: ${e.message}\n`);
      return 2;
    }
    const err = e as { code?: string; exitCode?: number };
    if (typeof err.code === 'string' && err.code.startsWith('commander.')) return err.exitCode ?? 1;
    if (e instanceof AckdError) {
      process.stderr.write(`error: ${e.code}: ${e.message}\n`);
      return e.code === 'ERR_INVALID_INPUT' ? 2 : 1;
    }
    process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}
