#!/usr/bin/env node
// The `ackd` CLI. The sources are TypeScript, run through tsx.
import { register } from 'tsx/esm/api';

// The AWS SDK warns on every run under Node 20 that its releases after January 2027 need Node 22
// (NodeVersionSupportWarning). Nothing an operator can act on per command: its documented opt-out
// turns off exactly that warning (aws/aws-sdk-js-v3#7983); other warnings are printed as ever.
// Read when an SDK client is made, so it is set before any is; a value the user set is kept.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// A reader that stops early (`ackd … | head`) closes the pipe: the output is no longer wanted,
// which is not an error. Quietly done, exit 0, no stack trace; any other stream error is thrown.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

register();
const { main } = await import('../lambdas/cli/main.ts');
process.exitCode = await main(process.argv);
