/**
 * Imported first by `npm start` (main.ts), so the umask is 077 before any other module runs: every
 * file and directory this process and its children (spire-server) create is the owner's alone.
 */
import { usePrivateUmask } from './private-files.ts';

usePrivateUmask();
