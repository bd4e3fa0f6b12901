import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export const consentUiDir = dirname(fileURLToPath(import.meta.url));
export const defaultDistDir = join(consentUiDir, 'dist');

/**
 * Builds the consent UI into `outDir` (default consent-ui/dist): one minified ES module, the
 * page and the stylesheet. `config.json` is not part of the build: it is served beside it at
 * runtime (local server) or written at deploy time (S3).
 */
export async function buildConsentUi(outDir = defaultDistDir): Promise<string> {
  const out = resolve(outDir);
  await mkdir(out, { recursive: true });
  await build({
    entryPoints: [join(consentUiDir, 'src/main.ts')],
    outfile: join(out, 'app.js'),
    bundle: true,
    format: 'esm',
    target: ['es2022', 'safari15'],
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    logLevel: 'warning',
  });
  // Written anew rather than copied: a copy keeps the source's mode, a new file follows the
  // process umask (owner-only under npm start).
  for (const name of ['index.html', 'styles.css']) await writeFile(join(out, name), await readFile(join(consentUiDir, 'src', name)));
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = await buildConsentUi(process.argv[2]);
  console.log(`consent UI built into ${out}`);
}
