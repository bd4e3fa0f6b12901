/**
 * Entry of the SPIRE bridge sidecar container (ECS task beside spire-server). Configuration:
 *   ACKD_BRIDGE_SECRET  HMAC key (injected from Secrets Manager), at least 32 characters
 *   SPIRE_SOCKET_PATH   spire-server admin socket (shared task volume)
 *   ACKD_BRIDGE_PORT    listen port (default 8080)
 *   ACKD_BRIDGE_HOST    listen address (default 0.0.0.0: the task's ENI; the security group admits only the MCP function)
 */
import { serve } from '@hono/node-server';
import { jsonLogger } from '../../lambdas/adapters/log.ts';
import { SpireClient } from '../bridge/client.ts';
import { createBridgeApp } from './app.ts';

const env = process.env;
const logger = jsonLogger({ level: 'info', base: { component: 'spire-bridge' } });
const secret = env.ACKD_BRIDGE_SECRET ?? '';
const socketPath = env.SPIRE_SOCKET_PATH ?? '/run/spire/sockets/api.sock';
const port = Number(env.ACKD_BRIDGE_PORT ?? '8080');
const hostname = env.ACKD_BRIDGE_HOST ?? '0.0.0.0';

const spire = new SpireClient({ socketPath, timeoutMs: 5000 });
const app = createBridgeApp({ spire, secret, logger });
const server = serve({ fetch: app.fetch, port, hostname }, (info) => logger.info('spire bridge listening', { port: info.port, socketPath }));

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    logger.info('spire bridge stopping', { signal: sig });
    server.close(() => {
      spire.close();
      process.exit(0);
    });
  });
}
