import type { Hono } from 'hono';
import type { Logger } from '../core/ports.ts';

/**
 * What every ackd HTTP app answers outside its routes, in the one error shape: 404
 * `{error: {code: ERR_NOT_FOUND}}` naming the method and path, and 500 "internal error" for an
 * unhandled error (logged, never shown). Returns `app`.
 */
export function withFallbacks(app: Hono, logger: Logger): Hono {
  app.notFound((c) => c.json({ error: { code: 'ERR_NOT_FOUND', message: `no route for ${c.req.method} ${c.req.path}` } }, 404));
  app.onError((err, c) => {
    logger.error('unhandled error', { path: c.req.path, error: err.message });
    return c.json({ error: { code: 'ERR_INTERNAL', message: 'internal error' } }, 500);
  });
  return app;
}
