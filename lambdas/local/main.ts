// First: the umask of 077 holds before anything below creates a file (see umask.ts).
import './umask.ts';
import './quiet.ts';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { intIn } from '../config.ts';
import { LOCAL_DIR, LOCAL_JSON, readLocalInfo } from '../cli/context.ts';
import { startLocalStack } from './stack.ts';
import { startIssuer } from '../../spire/issuer.ts';
import { parseRoutes } from '../adapters/channels/config.ts';
import { awsLocalInfo } from './moto.ts';

/**
 * `npm start`: runs all of ackd on this machine and prints where everything is.
 * Ports: ACKD_PORT (app: MCP, consent UI/API; 8787), ACKD_DYNALITE_PORT (8788), ACKD_SES_PORT (8789), ACKD_COGNITO_PORT (8790).
 */
const env = process.env;
const ports = {
  app: intIn(env, 'ACKD_PORT', 8787, 0, 65535),
  dynalite: intIn(env, 'ACKD_DYNALITE_PORT', 8788, 0, 65535),
  ses: intIn(env, 'ACKD_SES_PORT', 8789, 0, 65535),
  cognito: intIn(env, 'ACKD_COGNITO_PORT', 8790, 0, 65535),
};

function issuerMode(v: string | undefined): 'auto' | 'spire' | 'local-ca' {
  if (v === undefined || v === '' || v === 'auto') return 'auto';
  if (v === 'spire' || v === 'local-ca') return v;
  throw new Error(`ACKD_ISSUER: must be auto, spire or local-ca (got "${v}")`);
}

await mkdir(LOCAL_DIR, { recursive: true, mode: 0o700 });
const previous = readLocalInfo();
const stack = await startLocalStack({
  dir: LOCAL_DIR,
  persist: true,
  ports,
  trustDomain: env.ACKD_TRUST_DOMAIN ?? 'ackd.local',
  ...(previous?.agentApiKey ? { demoAgentApiKey: previous.agentApiKey } : {}),
  ...(previous?.tableName ? { tableName: previous.tableName } : {}),
  ...(env.ACKD_APPROVERS ? { approvers: env.ACKD_APPROVERS } : {}),
  // A real spire-server when it is cached or can be built with Go; else the in-process CA, loudly.
  issuer: ({ dir, trustDomain }) => startIssuer({ trustDomain, stateDir: dir, issuer: issuerMode(env.ACKD_ISSUER) }),
  // AWS STS, IAM and S3 (moto, installed on first run) with demo-role and a demo bucket; ACKD_AWS_EMULATOR=off: none.
  ...(env.ACKD_AWS_EMULATOR === 'off' ? {} : { aws: 'emulator' as const }),
});

const info = {
  mcpUrl: stack.mcpUrl,
  agentId: stack.agentId,
  agentApiKey: stack.agentApiKey,
  trustDomain: stack.trustDomain,
  trustBundlePath: stack.trustBundlePath,
  issuer: stack.issuerKind,
  mailUrl: stack.mailUrl,
  consentUiUrl: stack.consentUiUrl,
  approverUsername: stack.approverUsername,
  approverPassword: stack.approverPassword,
  cognitoEndpoint: stack.cognito?.url,
  userPoolId: stack.cognito?.userPoolId,
  cognitoClientId: stack.cognito?.clientId,
  dynamodbEndpoint: stack.dynamodbEndpoint,
  tableName: stack.tableName,
  auditKeyPath: stack.auditKeyPath,
  decisionKeyPath: stack.decisionKeyPath,
  receiptKeyPath: stack.receiptKeyPath,
  outboxSealKeyPath: stack.outboxSealKeyPath,
  auditExportUrl: `${stack.appUrl}/api/audit/export`,
  ...(stack.awsDemo ? awsLocalInfo(stack.awsDemo, stack.appUrl) : {}),
};
await writeFile(LOCAL_JSON, JSON.stringify(info, null, 2) + '\n', { mode: 0o600 });
await chmod(LOCAL_JSON, 0o600); // the mode above applies only when the file is created

const line = (k: string, v: string) => `  ${k.padEnd(14)} ${v}`;
const routeNames = [...parseRoutes(process.env.ACKD_ROUTES, { local: true }).keys()];
process.stdout.write(
  [
    '',
    'ackd is running locally.',
    '',
    line('MCP server', info.mcpUrl),
    line('agent', info.agentId),
    line('agent API key', info.agentApiKey),
    line('mail inbox', info.mailUrl),
    line('consent UI', `${info.consentUiUrl}   (localhost, not 127.0.0.1: passkeys need a host name)`),
    line('passkeys', `register under Passkeys on the consent page; required for decisions: ${env.ACKD_PASSKEY_REQUIRED ?? 'none'} (ACKD_PASSKEY_REQUIRED=all|payload|none, or per policy: --passkey required)`),
    line('approver', `${info.approverUsername ?? '-'}  password: ${info.approverPassword ?? '-'}`),
    line('SVID issuer', info.issuer),
    line('health', `${stack.appUrl}/healthz   (503 while the issuer is down; a spire-server that dies is restarted, and said so here)`),
    line('trust domain', info.trustDomain),
    line('trust bundle', info.trustBundlePath),
    line('DynamoDB', `${info.dynamodbEndpoint} (table ${info.tableName})`),
    line('audit log', `npx ackd audit verify --live   (export: npx ackd audit export --out audit.jsonl, or GET ${info.auditExportUrl})`),
    line('audit key', `${info.auditKeyPath} (signs checkpoints; auditors verify with: npx ackd audit public-key)`),
    line('routes', routeNames.length > 0 ? `${routeNames.join(', ')} (ACKD_ROUTES)` : 'consent email to the approver (set ACKD_ROUTES for webhooks and Slack)'),
    line('AWS', stack.awsDemo ? `${stack.awsDemo.endpoint} (moto: STS, IAM, S3; role demo-role may write bucket ${stack.awsDemo.bucket}; docs/aws.md)` : 'no AWS emulator: aws:role/ permissions are refused'),
    line('policies', `npx ackd policy list   (two approvers: npx ackd policy set --agent ${info.agentId} --approvals 2 --as you)`),
    '',
    'Connect an MCP client (Claude Code):',
    `  claude mcp add --transport http ackd ${info.mcpUrl} --header "Authorization: Bearer ${info.agentApiKey}"`,
    '',
    'Approve as a human: open the mail inbox, click the link in the consent email, sign in as the approver above.',
    'Decide a request as an operator:  npx ackd requests approve <request_id> --as you',
    `These values are also in ${LOCAL_JSON}. Ctrl-C stops everything.`,
    '',
  ].join('\n'),
);

let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  process.stdout.write(`\n${signal}: stopping ackd...\n`);
  await stack.stop();
  process.exit(0);
};
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
// spire-server runs in its own process group (it must not take a terminal's Ctrl-C for a crash), so a
// closed terminal no longer reaches it: stop it ourselves.
process.on('SIGHUP', () => void shutdown('SIGHUP'));
