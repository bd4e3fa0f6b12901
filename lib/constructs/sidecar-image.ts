import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { REPO_ROOT } from '../paths.ts';

/** Base image of the bridge sidecar (Node 22 LTS on Alpine, from the ECR Public mirror of Docker Official Images). */
export const SIDECAR_BASE_IMAGE = 'public.ecr.aws/docker/library/node:22-alpine';

let built: string | undefined;

/**
 * The Docker build context of the SPIRE bridge sidecar, made at synth time with the local esbuild:
 * two bundled entry points (server.mjs, init.mjs), the .proto files the gRPC client loads at run
 * time (same relative place as in the repository), and a Dockerfile. The image itself is built by
 * `cdk deploy` (asset publishing), so synth needs no Docker. The result is content-addressed, so the
 * same sources give the same asset hash.
 */
export function buildSidecarContext(): string {
  if (built) return built;
  const dir = mkdtempSync(join(tmpdir(), 'ackd-sidecar-'));
  buildSync({
    absWorkingDir: REPO_ROOT,
    entryPoints: {
      'spire/sidecar/server': join(REPO_ROOT, 'spire/sidecar/server.ts'),
      'spire/sidecar/init': join(REPO_ROOT, 'spire/sidecar/init.ts'),
    },
    outdir: dir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    mainFields: ['module', 'main'],
    banner: { js: "import { createRequire as __ackdCreateRequire } from 'node:module'; const require = __ackdCreateRequire(import.meta.url);" },
    legalComments: 'none',
    logLevel: 'error',
  });
  mkdirSync(join(dir, 'spire'), { recursive: true });
  cpSync(join(REPO_ROOT, 'spire/proto'), join(dir, 'spire/proto'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'ackd-spire-bridge', private: true, type: 'module' }, null, 2) + '\n');
  writeFileSync(
    join(dir, 'Dockerfile'),
    [
      `FROM ${SIDECAR_BASE_IMAGE}`,
      'WORKDIR /app',
      'COPY package.json ./',
      'COPY spire ./spire',
      'ENV NODE_ENV=production',
      'USER node',
      'CMD ["node", "spire/sidecar/server.mjs"]',
      '',
    ].join('\n'),
  );
  built = dir;
  return dir;
}
