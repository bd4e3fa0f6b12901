import type { Command } from 'commander';
import { receiptJwks } from '../core/receipt.ts';
import { cliDeps, output } from './context.ts';

/** `ackd receipt …`: the approval receipts' public keys. */
export function registerReceiptCommands(program: Command): void {
  const receipt = program.command('receipt').description('approval receipts (the JWS returned with an SVID): their public keys');
  receipt
    .command('keys')
    .description('print the JWKS that verifies approval receipts (also served at GET /.well-known/ackd-receipt-keys.json on the MCP server)')
    .option('--json', 'the JWKS is JSON either way (accepted for uniformity with every other command)')
    .action(async (opts: { json?: boolean }) => {
      const jwks = await receiptJwks(cliDeps().receipts);
      output(opts.json, jwks, () => JSON.stringify(jwks, null, 2));
    });
}
