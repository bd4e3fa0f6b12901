import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Hono } from 'hono';
import type { UiConfig as ConsentUiConfig } from '../../consent-ui/src/auth.ts';

/** The consent UI's runtime configuration (`config.json` beside the page); the UI defines it. */
export type { UiConfig as ConsentUiConfig } from '../../consent-ui/src/auth.ts';

const FILES: Record<string, string> = {
  '/': 'index.html',
  '/index.html': 'index.html',
  '/app.js': 'app.js',
  '/styles.css': 'styles.css',
};
const TYPES: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };

/** The Content-Security-Policy of the page: nothing but its own files, the API, and the token endpoint. */
export function consentUiCsp(cognitoDomain: string): string {
  const idp = new URL(cognitoDomain).origin;
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    `connect-src 'self' ${idp}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/**
 * Serves the built consent UI (consent-ui/dist) and its config.json, for mounting at `/` on the
 * local server so the UI and `/api` share an origin (as CloudFront does on AWS).
 */
export function consentUiRoutes(distDir: string, runtimeConfig: ConsentUiConfig): Hono {
  const app = new Hono();
  const csp = consentUiCsp(runtimeConfig.cognitoDomain);
  const security = {
    'content-security-policy': csp,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
  };
  app.get('/config.json', (c) => c.json(runtimeConfig, 200, { 'cache-control': 'no-store', ...security }));
  for (const [path, file] of Object.entries(FILES)) {
    app.get(path, async (c) => {
      let body: Buffer;
      try {
        body = await readFile(join(distDir, file));
      } catch {
        return c.text('consent UI is not built (npm run build:ui)', 503);
      }
      const type = TYPES[file.split('.').pop()!]!;
      return c.body(new Uint8Array(body), 200, { 'content-type': type, 'cache-control': 'no-cache', ...security });
    });
  }
  return app;
}
