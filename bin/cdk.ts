/**
 * The ackd CDK app (`npx cdk synth|deploy`, see cdk.json). Configuration: lib/config.ts and
 * README.md ("Deploy on AWS"). cdk-nag's AWS Solutions, HIPAA Security and NIST 800-53 rev 5 packs run
 * on every synth (NAG_PACKS, lib/nag.ts); every acknowledgment in lib/ names its finding and carries its reason.
 */
import { App, Validations } from 'aws-cdk-lib';
import { DeployConfigError, loadDeployConfig } from '../lib/config.ts';
import { AckdStack } from '../lib/stacks/ackd-stack.ts';
import { nagPacks } from '../lib/nag.ts';

export function buildApp(app: App = new App()): { app: App; stack: AckdStack } {
  const config = loadDeployConfig({ context: (k) => app.node.tryGetContext(k), env: process.env });
  const stack = new AckdStack(app, `Ackd-${config.stage}`, {
    config,
    description: `ackd (${config.stage}): human approval gate for AI agents — MCP, consent, SPIRE-issued SVIDs`,
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
    tags: { app: 'ackd', stage: config.stage },
  });
  Validations.of(app).addPlugins(...nagPacks(app));
  return { app, stack };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    buildApp().app.synth();
  } catch (e) {
    if (e instanceof DeployConfigError) {
      console.error(e.message);
      process.exit(1);
    }
    throw e;
  }
}
