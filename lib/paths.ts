import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is lib/paths.ts). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
