import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { REPO_ROOT } from '../paths.ts';

import { DEFAULT_SIDECAR_BASE_IMAGE } from '../config.ts';

/** Base image of the bridge sidecar by default (Node 22 LTS on Alpine, ECR Public mirror of the Docker Official Image, by digest). */
export const SIDECAR_BASE_IMAGE = DEFAULT_SIDECAR_BASE_IMAGE;

const built = new Map<string, string>();

/**
 * The Docker build context of the SPIRE bridge sidecar, made at synth time with the local esbuild:
 * two bundled entry points (server.mjs, init.mjs), the .proto files the gRPC client loads at run
 * time (same relative place as in the repository), and a Dockerfile. The image itself is built by
 * `cdk deploy` (asset publishing), so synth needs no Docker. The result is content-addressed, so the
 * same sources give the same asset hash. `baseImage` is the FROM line (setting sidecarBaseImage,
 * pinned by digest in prod).
 */
export function buildSidecarContext(baseImage: string = SIDECAR_BASE_IMAGE): string {
  const cached = built.get(baseImage);
  if (cached) return cached;
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
      `FROM ${baseImage}`,
      'WORKDIR /app',
      'COPY package.json ./',
      'COPY spire ./spire',
      'ENV NODE_ENV=production',
      'USER node',
      'CMD ["node", "spire/sidecar/server.mjs"]',
      '',
    ].join('\n'),
  );
  built.set(baseImage, dir);
  return dir;
}
