import { execFile } from 'node:child_process';
import { resolve } from 'node:path';

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
