import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureMoto, provisionAwsDemo, startMoto, demoBrokerConfig, type AwsDemo, type MotoServer } from '../../lambdas/local/moto.ts';
import type { AwsBrokerConfig } from '../../lambdas/adapters/aws/config.ts';

/** A cold install (pip, about a minute or three on two busy cores); tests FAIL, not skip, when moto cannot be had. */
export const MOTO_INSTALL_TIMEOUT_MS = 15 * 60_000;

/** One request moto received (its recorder: MOTO_ENABLE_RECORDING). */
export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly body: string;
}

export interface TestMoto {
  readonly server: MotoServer;
  readonly demo: AwsDemo;
  /** The broker's configuration on this emulator (the local stack's `aws` option). */
  readonly config: AwsBrokerConfig;
  /** Every request moto received so far. */
  recorded(): Promise<RecordedRequest[]>;
  stop(): Promise<void>;
}

/** A real moto server on an ephemeral port with the demo provisioned and IAM enforcement on, recording what it receives. */
export async function startTestMoto(): Promise<TestMoto> {
  const binary = await ensureMoto({ timeoutMs: MOTO_INSTALL_TIMEOUT_MS });
  const dir = await mkdtemp(join(tmpdir(), 'ackd-moto-'));
  const recording = join(dir, 'recording.jsonl');
  const server = await startMoto({ binary, recordTo: recording });
  try {
    const demo = await provisionAwsDemo(server.endpoint);
    return {
      server,
      demo,
      config: demoBrokerConfig(demo),
      async recorded() {
        const text = await readFile(recording, 'utf8').catch(() => '');
        return text
          .split('\n')
          .filter((l) => l.trim())
          .map((l) => {
            const e = JSON.parse(l) as { method: string; url: string; body?: string; body_encoded?: boolean };
            const body = e.body ? (e.body_encoded ? Buffer.from(e.body, 'base64').toString('utf8') : e.body) : '';
            return { method: e.method, url: e.url, body };
          });
      },
      async stop() {
        await server.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
