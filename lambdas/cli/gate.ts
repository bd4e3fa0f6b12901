/**
 * `ackd gate --action … --payload deploy.json --permission deploy:prod -- ./deploy.sh`: a CI/CD step
 * that runs a command only after a human approved exactly this operation.
 *
 * As an agent (its API key in ACKD_API_KEY), over MCP: request_authorization with the payload →
 * prints the consent URL and the payload's SHA-256 → check_authorization (long-poll, 25 s at a time)
 * until decided or --wait passes → on approval runs the command (no shell, stdio inherited) with the
 * SVID, the receipt and the payload digest in files / the environment → revoke_authorization when
 * it ends → exits with the command's status. Without approval the command never runs:
 *
 *   2 usage · 3 denied · 4 expired · 5 --wait passed with no decision · 6 any other error
 *   (ackd unreachable, input refused, revoked, the approval does not match what was asked …)
 *
 * The SVID (chain + private key) lives in a private temporary directory (0700, file 0600) that is
 * removed when the command ends, also on SIGINT/SIGTERM (which are forwarded to the command).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { parseAgentId } from '../core/ids.ts';
import { groupedHex, parsePayload, payloadSha256, type Payload } from '../core/payload.ts';
import { receiptKeysUrl } from '../verify/index.ts';
import { ApprovalMismatch, checkApproval as checkApproved, connectAckd, message, POLL_SECONDS, ToolFailure, toolCaller, type Approved, type Check, type ToolCaller } from './ackd-client.ts';
import { ExitCode } from './audit.ts';
import { readLocalInfo } from './context.ts';

/** Exit statuses of `ackd gate` when the command was not run (or its status when it was). */
export const GATE_EXIT = { usage: 2, denied: 3, expired: 4, timedOut: 5, error: 6 } as const;

/** Signals forwarded to the command (and that end the wait before it runs). */
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export interface GateOptions {
  readonly action: string;
  readonly payload: string;
  readonly permission: string[];
  readonly ttl: string;
  readonly wait: string;
  readonly justification?: string;
  readonly agent?: string;
}

export function registerGateCommand(program: Command): void {
  program
    .command('gate')
    .description('run a command only after a human approved exactly this operation (a CI/CD gate): exit 3 denied, 4 expired, 5 no decision within --wait, 6 error, else the command\'s status')
    .requiredOption('--action <text>', 'what will be done, as the approver reads it')
    .requiredOption('--payload <file.json>', 'the exact parameters of the operation (a JSON object; the approver sees every field, its SHA-256 is bound to the approval)')
    .requiredOption('--permission <permission>', 'a permission asked for (repeat for more)', (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    .option('--ttl <minutes>', 'minutes the request waits for a decision, and the SVID lives after approval (1-60)', '30')
    .option('--wait <seconds>', 'give up (exit 5) when no decision came within this many seconds', '900')
    .option('--justification <text>', 'why (default: the command line, and the CI run when known)')
    .option('--agent <agent_id>', 'the agent the API key belongs to (default: ACKD_AGENT_ID, else agentId of .ackd/local.json)')
    .argument('<command...>', 'the command to run on approval, after --')
    .usage('--action <text> --payload <file.json> --permission <p> [--permission <p>…] [options] -- <command…>')
    .exitOverride((err) => {
      // commander has printed its message; a mistake in how gate was called is status 2
      throw err.exitCode === 0 ? err : new ExitCode(GATE_EXIT.usage);
    })
    .action(async (command: string[], opts: GateOptions) => {
      const status = await gate(command, opts);
      if (status !== 0) throw new ExitCode(status);
    });
}

class GateExit extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}
const usage = (m: string) => new GateExit(GATE_EXIT.usage, m);
const failure = (m: string) => new GateExit(GATE_EXIT.error, m);

const say = (line: string) => process.stderr.write(`ackd gate: ${line}\n`);

/** Runs the gate; resolves to the exit status. Never throws for an expected failure (prints it). */
export async function gate(command: string[], opts: GateOptions, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const stop = new AbortController();
  let child: ReturnType<typeof spawn> | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill(sig); // the command decides what a signal means; gate waits for it, then cleans up
      return;
    }
    stop.abort(new GateExit(128 + (osConstants.signals[sig] ?? 0), `stopped by ${sig}`));
  };
  for (const sig of SIGNALS) process.on(sig, onSignal);
  let client: Client | undefined;
  let issued: { requestId: string; svidId: string } | undefined;
  let dir: string | undefined;
  const removeDir = () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', removeDir); // last resort; the normal path removes it below
  try {
    const input = await prepare(command, opts, env);
    say(`asking ${new URL(input.mcpUrl).origin} for approval as agent ${input.agentId} to run: ${input.commandLine}`);
    say(`payload ${opts.payload}: sha256 ${groupedHex(input.payloadSha256)}`);

    // the MCP client is loaded here, not when the CLI starts: other commands do not pay for it
    try {
      client = await connectAckd(input.mcpUrl, input.apiKey, { name: 'ackd-gate', signal: stop.signal });
    } catch (e) {
      throw stop.signal.aborted ? (stop.signal.reason as GateExit) : failure(`cannot reach ackd at ${input.mcpUrl}: ${message(e)}`);
    }
    const call = toolCaller(client, stop.signal);

    const requested = await call<{ request_id: string; consent_url: string; payload_sha256?: string | null }>('request_authorization', {
      agent_id: input.agentId,
      action: opts.action,
      permissions: opts.permission,
      justification: input.justification,
      ttl_minutes: input.ttl,
      payload: input.payload,
    });
    if (requested.payload_sha256 !== undefined && requested.payload_sha256 !== input.payloadSha256) {
      throw failure(`ackd recorded payload sha256 ${requested.payload_sha256}, not ${input.payloadSha256}: not waiting for an approval of something else`);
    }
    say(`request ${requested.request_id}`);
    say(`approve or deny at: ${requested.consent_url}`);
    say(`the approver must see payload sha256 ${groupedHex(input.payloadSha256)}`);
    if (env.GITHUB_ACTIONS === 'true') process.stderr.write(`::notice title=ackd approval needed::${workflowData(`${requested.consent_url} (payload sha256 ${groupedHex(input.payloadSha256)})`)}\n`);

    const approved = await waitForDecision(call, requested.request_id, input.waitMs, stop.signal);
    issued = { requestId: requested.request_id, svidId: approved.svid_id };
    await checkApproval(approved, input, env);
    say(`approved: ${approved.spiffe_id} (svid ${approved.svid_id}, until ${approved.expires_at})`);

    // The SVID and receipt, readable by this user only, where the command finds them.
    dir = mkdtempSync(join(tmpdir(), 'ackd-gate-'));
    const svidFile = join(dir, 'svid.pem');
    writeFileSync(svidFile, approved.svid, { mode: 0o600, flag: 'wx' });
    const receiptFile = approved.receipt ? join(dir, 'receipt.jws') : undefined;
    if (receiptFile) writeFileSync(receiptFile, approved.receipt + '\n', { mode: 0o600, flag: 'wx' });
    else say('ackd returned no receipt (an ackd without receipts): ACKD_RECEIPT_FILE is not set');

    if (stop.signal.aborted) throw stop.signal.reason as GateExit;
    const childEnv: NodeJS.ProcessEnv = {
      ...env,
      ACKD_REQUEST_ID: requested.request_id,
      ACKD_SVID_FILE: svidFile,
      ACKD_SVID_ID: approved.svid_id,
      ACKD_SPIFFE_ID: approved.spiffe_id,
      ACKD_PAYLOAD_SHA256: input.payloadSha256,
      ...(receiptFile ? { ACKD_RECEIPT_FILE: receiptFile } : {}),
    };
    delete childEnv.ACKD_API_KEY; // the command acts with its SVID; it cannot ask for more approvals as the agent
    if (!receiptFile) delete childEnv.ACKD_RECEIPT_FILE;

    say(`running: ${input.commandLine}`);
    const status = await new Promise<number>((resolve) => {
      child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env: childEnv, shell: false });
      child.once('error', (e) => {
        say(`cannot run ${command[0]}: ${message(e)}`);
        resolve(GATE_EXIT.error);
      });
      child.once('exit', (code, sig) => resolve(sig ? 128 + (osConstants.signals[sig] ?? 0) : (code ?? GATE_EXIT.error)));
    });
    say(`${command[0]} ended with status ${status}`);
    return status;
  } catch (e) {
    const exit = e instanceof GateExit ? e : stop.signal.aborted ? (stop.signal.reason as GateExit) : failure(message(e));
    say(exit.message);
    return exit.status;
  } finally {
    removeDir();
    process.off('exit', removeDir);
    if (issued && client) await revoke(client, issued);
    await client?.close().catch(() => undefined);
    for (const sig of SIGNALS) process.off(sig, onSignal);
  }
}

interface Prepared {
  readonly mcpUrl: string;
  readonly apiKey: string;
  readonly agentId: string;
  readonly payload: Payload;
  readonly payloadSha256: string;
  readonly ttl: number;
  readonly waitMs: number;
  readonly justification: string;
  readonly commandLine: string;
}

/** Everything checked before ackd is asked: a mistake here is exit 2 and nothing is sent. */
async function prepare(command: string[], opts: GateOptions, env: NodeJS.ProcessEnv): Promise<Prepared> {
  if (command.length === 0 || !command[0]) throw usage('give the command to run after --');
  const local = readLocalInfo();
  const mcpUrl = env.ACKD_MCP_URL ?? local?.mcpUrl;
  if (!mcpUrl) throw usage('set ACKD_MCP_URL to ackd\'s MCP endpoint (https://…/mcp), or run `npm start` here');
  try {
    new URL(mcpUrl);
  } catch {
    throw usage(`ACKD_MCP_URL is not a URL: ${mcpUrl}`);
  }
  const apiKey = env.ACKD_API_KEY ?? local?.agentApiKey;
  if (!apiKey) throw usage("set ACKD_API_KEY to the agent's API key (in CI: from the repository's secrets)");
  const agent = opts.agent ?? env.ACKD_AGENT_ID ?? local?.agentId;
  if (!agent) throw usage('say which agent the API key belongs to: --agent or ACKD_AGENT_ID');
  try {
    parseAgentId(agent, '--agent');
  } catch (e) {
    throw usage(message(e));
  }
  const ttl = Number(opts.ttl);
  if (!/^\d+$/.test(opts.ttl) || ttl < 1 || ttl > 60) throw usage('--ttl must be a whole number of minutes from 1 to 60');
  const wait = Number(opts.wait);
  if (!/^\d+$/.test(opts.wait) || wait < 1) throw usage('--wait must be a whole number of seconds, at least 1');
  let raw: string;
  try {
    raw = await readFile(opts.payload, 'utf8');
  } catch (e) {
    throw usage(`--payload: cannot read ${opts.payload}: ${message(e)}`);
  }
  let payload: Payload;
  try {
    payload = parsePayload(JSON.parse(raw) as unknown, 'payload');
  } catch (e) {
    throw usage(`--payload ${opts.payload}: ${e instanceof SyntaxError ? `not JSON (${e.message})` : message(e)}`);
  }
  const commandLine = command.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
  const ci = env.GITHUB_ACTIONS === 'true' && env.GITHUB_SERVER_URL && env.GITHUB_REPOSITORY && env.GITHUB_RUN_ID ? ` (CI run ${env.GITHUB_SERVER_URL}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID})` : '';
  const justification = opts.justification ?? `ackd gate will run: ${commandLine}${ci}`.slice(0, 4000);
  return { mcpUrl, apiKey, agentId: agent, payload, payloadSha256: payloadSha256(payload), ttl, waitMs: wait * 1000, justification, commandLine };
}

/** Polls until decided; an approval with its SVID, or a GateExit. */
async function waitForDecision(call: ToolCaller, requestId: string, waitMs: number, signal: AbortSignal): Promise<Approved> {
  const deadline = Date.now() + waitMs;
  let failures = 0;
  let lastProgress = '';
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new GateExit(GATE_EXIT.timedOut, `no decision within --wait (${Math.round(waitMs / 1000)} s); request ${requestId} stays pending until its ttl — nothing was run`);
    let r: Check;
    try {
      r = await call<Check>('check_authorization', { request_id: requestId, wait_seconds: Math.min(POLL_SECONDS, Math.ceil(left / 1000)) });
      failures = 0;
    } catch (e) {
      // a blip on a long wait is retried a few times; a refusal is not
      if (signal.aborted || !(e instanceof ToolFailure) || !e.retryable || ++failures > 5) throw e;
      say(`${e.message}; checking again`);
      // (aborted: the abort's reason, e.g. the GateExit of a signal, is what propagates)
      await sleep(Math.min(1000 * 2 ** failures, Math.max(0, deadline - Date.now())), undefined, { signal }).catch(() => Promise.reject(signal.reason as Error));
      continue;
    }
    switch (r.status) {
      case 'pending': {
        const progress = r.approvals && r.approvals.need > 1 ? `${r.approvals.have} of ${r.approvals.need} approvals` : 'pending';
        if (progress !== lastProgress) say(`waiting for a decision (${progress})`);
        lastProgress = progress;
        continue;
      }
      case 'approved':
        if (!r.svid) throw failure(`approved, but the SVID of ${requestId} was already delivered to an earlier check (its key is not kept): ask again`);
        return r as Approved;
      case 'denied':
        throw new GateExit(GATE_EXIT.denied, `denied: request ${requestId} — nothing was run`);
      case 'expired':
        throw new GateExit(GATE_EXIT.expired, `expired: no decision on request ${requestId} within its ttl — nothing was run`);
      case 'revoked':
        throw failure(`request ${requestId} was revoked — nothing was run`);
      default:
        throw failure(`unexpected status from ackd: ${JSON.stringify((r as { status: unknown }).status)}`);
    }
  }
}

/** What was approved must be what was asked: the payload digest, the SVID, the receipt (when ackd sends one). */
async function checkApproval(a: Approved, input: Prepared, env: NodeJS.ProcessEnv): Promise<void> {
  try {
    await checkApproved(a, { payload: input.payload, payloadSha256: input.payloadSha256, keys: env.ACKD_RECEIPT_KEYS_URL ? new URL(env.ACKD_RECEIPT_KEYS_URL) : receiptKeysUrl(input.mcpUrl) });
  } catch (e) {
    if (e instanceof ApprovalMismatch) throw failure(`${e.message} — nothing was run`);
    throw e;
  }
}

async function revoke(client: Client, issued: { requestId: string; svidId: string }): Promise<void> {
  try {
    const r = await toolCaller(client, AbortSignal.timeout(30_000))<{ revoked_at: string }>('revoke_authorization', { request_id: issued.requestId, svid_id: issued.svidId });
    say(`revoked svid ${issued.svidId} at ${r.revoked_at}`);
  } catch (e) {
    say(`WARNING: could not revoke svid ${issued.svidId} of request ${issued.requestId}: ${message(e)} (it stays valid until it expires; revoke it with revoke_authorization)`);
  }
}

/** A GitHub Actions workflow command's data, escaped as the runner expects. */
function workflowData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}
