import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import type { LocalStack } from '../../lambdas/local/stack.ts';

export interface CliResult {
  readonly stdout: string;
  readonly stderr: string;
  /** Process exit code (0 on success). */
  readonly code: number;
}

/** Runs the real `ackd` bin in a child process with exactly `env`, as an operator would. */
export function runAckd(env: NodeJS.ProcessEnv, ...args: string[]): Promise<CliResult> {
  return new Promise((done) => {
    execFile(process.execPath, [resolve('bin/ackd.js'), ...args], { env }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      done({ stdout, stderr, code });
    });
  });
}

/** The ACKD_* settings that point a process at a running local stack. */
export function stackEnv(stack: Pick<LocalStack, 'dynamodbEndpoint' | 'tableName' | 'trustDomain' | 'appUrl'> & Partial<Pick<LocalStack, 'decisionKeyPath' | 'receiptKeyPath' | 'outboxSealKeyPath'>>): Record<string, string> {
  return {
    ACKD_STAGE: 'local',
    ACKD_DYNAMODB_ENDPOINT: stack.dynamodbEndpoint,
    ACKD_TABLE_NAME: stack.tableName,
    ACKD_TRUST_DOMAIN: stack.trustDomain,
    ACKD_CONSENT_URL: stack.appUrl,
    // Decisions are signed, and SVIDs leave with a receipt, with the stack's own keys (issue 13).
    ...(stack.decisionKeyPath ? { ACKD_DECISION_KEY: stack.decisionKeyPath } : {}),
    ...(stack.receiptKeyPath ? { ACKD_RECEIPT_KEY: stack.receiptKeyPath } : {}),
    // Audit events are sealed with the stack's outbox seal key (an operator's CLI writes events too).
    ...(stack.outboxSealKeyPath ? { ACKD_OUTBOX_SEAL_KEY: stack.outboxSealKeyPath } : {}),
  };
}

/** A clean environment for the `ackd` bin against `stack`: PATH and HOME, the stack's settings, and `extra`. */
export function cliEnv(stack: Parameters<typeof stackEnv>[0], extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, ...stackEnv(stack), NODE_NO_WARNINGS: '1', ...extra };
}
