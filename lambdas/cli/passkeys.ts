import type { Command } from 'commander';
import { invalid } from '../core/errors.ts';
import { parseOperator } from '../core/policy.ts';
import { shownText } from '../core/payload-fields.ts';
import { cliDeps, output } from './context.ts';

/** A Cognito sub as the passkey store keys it (a UUID in Cognito; any id of these characters locally). */
const SUB = /^[A-Za-z0-9._:@-]{1,128}$/;

/**
 * `ackd passkeys reset <approver_sub> --as <operator>`: the recovery of an approver who lost every
 * authenticator. In the consent UI, adding or removing a passkey must be confirmed with one of the
 * approver's passkeys (so a stolen session alone cannot); an approver with none left can only be
 * let start again by an operator: this removes all their passkeys, and they register a first one
 * with their session alone. The reset is an audit event (`passkeys_reset`: the approver, the
 * credentials, who), recorded before anything is removed; what it removed is also printed and
 * logged (at warn level).
 */
export function registerPasskeyCommands(program: Command): void {
  const passkeys = program.command('passkeys').description("approvers' passkeys (which sign decisions in the consent UI)");
  passkeys
    .command('reset <approver_sub>')
    .description("remove every passkey of an approver who lost all their authenticators (their Cognito sub: `ackd approvers list --json`); they then register a first one with their session alone. decisions they signed before still verify (`audit verify --passkeys`: removed public keys are kept as retired)")
    .requiredOption('--as <operator>', 'who is resetting them (in the audit log)')
    .option('--json', 'print JSON')
    .action(async (sub: string, opts: { as: string; json?: boolean }) => {
      if (!SUB.test(sub)) throw invalid('approver_sub', "must be the approver's Cognito sub (1-128 letters, digits, '.', '_', ':', '@', '-')");
      const actor = parseOperator(opts.as, '--as');
      const d = cliDeps();
      const removed = (await d.passkeys.reset(sub, actor)).map((p) => ({ credential_id: p.credential_id, label: p.label, created_at: p.created_at }));
      d.logger.warn('passkeys_reset', { event: 'passkeys_reset', actor_type: actor.type, actor_id: actor.id, approver: sub, removed });
      output(opts.json, { approver: sub, reset_by: actor.id, removed }, () =>
        removed.length === 0
          ? `${sub} has no passkeys: nothing removed`
          : [`removed ${removed.length} passkey(s) of ${sub} (reset by ${shownText(actor.id)}):`, ...removed.map((p) => `  ${p.credential_id}  ${shownText(p.label)}  added ${p.created_at}`), 'They can now register a first passkey in the consent UI with their session alone.'].join('\n'),
      );
    });
  passkeys
    .command('list')
    .description("approvers' passkeys (credential ids, labels, when added; never keys): current and retired, and UNSEALED for one without a valid seal, which ackd does not use")
    .option('--approver <sub>', 'only this approver (their Cognito sub)')
    .option('--json', 'print JSON')
    .action(async (opts: { approver?: string; json?: boolean }) => {
      if (opts.approver !== undefined && !SUB.test(opts.approver)) throw invalid('--approver', "must be the approver's Cognito sub (1-128 letters, digits, '.', '_', ':', '@', '-')");
      const d = cliDeps();
      const shown = (await d.passkeyStore.all())
        .filter((p) => opts.approver === undefined || p.approver === opts.approver)
        .map((p) => ({ approver: p.approver, credential_id: p.credential_id, label: p.label, created_at: p.created_at, retired: p.retired, sealed: p.sealed }));
      output(opts.json, shown, () =>
        shown.length === 0
          ? 'no passkeys'
          : shown
              .map((p) => `${shownText(p.approver)}  ${shownText(p.credential_id)}  ${shownText(p.label)}  added ${shownText(String(p.created_at))}${p.retired ? '  RETIRED' : ''}${p.sealed === true ? '' : p.sealed === null ? '  (seal not checked: no ACKD_OUTBOX_SEAL_KEY here)' : '  UNSEALED (not used: see ackd passkeys seal)'}`)
              .join('\n'),
      );
    });
  passkeys
    .command('seal [credential_id...]')
    .description('seal the passkeys stored before passkeys were sealed, so that they sign again (once, after upgrading; check `ackd passkeys list` first: what this seals, you vouch for). With credential ids, only those; without, every passkey that has no seal at all')
    .option('--json', 'print JSON')
    .action(async (credentialIds: string[], opts: { json?: boolean }) => {
      const d = cliDeps();
      const sealed = (await d.passkeyStore.sealUnsealed(credentialIds.length > 0 ? credentialIds : undefined)).map((p) => ({ approver: p.approver, credential_id: p.credential_id, label: p.label, created_at: p.created_at, retired: p.retired }));
      output(opts.json, { sealed }, () =>
        sealed.length === 0 ? 'no unsealed passkeys' : [`sealed ${sealed.length} passkey(s):`, ...sealed.map((p) => `  ${shownText(p.approver)}  ${shownText(p.credential_id)}  ${shownText(p.label)}  added ${shownText(String(p.created_at))}${p.retired ? '  RETIRED' : ''}`)].join('\n'),
      );
    });
}
