#!/usr/bin/env node
// The `ackd` CLI. The sources are TypeScript, run through tsx.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../lambdas/cli/main.ts');
process.exitCode = await main(process.argv);
