import { createServer } from 'node:net';

/**
 * What the gateway's tests and benchmark need to run the official MCP servers unmodified on
 * loopback.
 */

/**
 * A `--import` preload that makes a server listening on a bare port listen on 127.0.0.1 only
 * (`mcp-server-everything streamableHttp` has no host setting and would listen on every interface).
 */
export const LOOPBACK_ONLY = `data:text/javascript,${encodeURIComponent(
  "import net from 'node:net'; const listen = net.Server.prototype.listen; net.Server.prototype.listen = function (...a) { if (/^\\d+$/.test(String(a[0]))) return listen.call(this, Number(a[0]), '127.0.0.1', ...a.filter((x) => typeof x === 'function')); return listen.apply(this, a); };",
)}`;

/** A port free on 127.0.0.1 just now. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}
