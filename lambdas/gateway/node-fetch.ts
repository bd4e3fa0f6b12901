/**
 * A `fetch` for the downstream servers' streamable HTTP transport (the MCP SDK's, given as its
 * `fetch` option): node:http(s) with keep-alive connections instead of the global fetch (undici).
 * On the gateway's hot path a call is one POST to a downstream server, and undici's request
 * machinery was the largest single cost of the gateway's hop (bench: test/bench/gateway.ts).
 *
 * What the SDK's transport needs of a fetch, and nothing more: a string or byte body (anything
 * else goes to the global fetch), the request's headers as given, an AbortSignal, the response
 * as it came (status, headers, body streamed). Redirects are never followed (as `redirect:
 * "manual"`: the transport itself decides, within the origin); no content encoding is asked for.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';

const NULL_BODY = new Set([101, 204, 205, 304]);

export interface NodeFetch {
  readonly fetch: typeof fetch;
  /** Ends the kept-alive connections. */
  readonly close: () => void;
  /** The keep-alive agent for a URL's protocol (for other requests on the same connections). */
  readonly agentFor: (url: URL) => HttpAgent | HttpsAgent;
  /** Whether any response was a redirect (which the SDK transport may follow, within the origin). */
  readonly redirected: () => boolean;
}

export function nodeFetch(): NodeFetch {
  const http = new HttpAgent({ keepAlive: true, noDelay: true });
  const https = new HttpsAgent({ keepAlive: true, noDelay: true });
  let redirected = false;
  const close = () => {
    http.destroy();
    https.destroy();
  };
  const f: typeof fetch = (input, init = {}) => {
    const body = init.body;
    if ((body !== undefined && body !== null && typeof body !== 'string' && !(body instanceof Uint8Array)) || input instanceof Request || init.redirect === 'follow') {
      return fetch(input, init);
    }
    const url = input instanceof URL ? input : new URL(String(input));
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return fetch(input, init);
    const method = (init.method ?? 'GET').toUpperCase();
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => (headers[k] = v));
    return new Promise<Response>((resolve, reject) => {
      const options = { method, headers, agent: url.protocol === 'https:' ? https : http, ...(init.signal ? { signal: init.signal } : {}) };
      const req = url.protocol === 'https:' ? httpsRequest(url, options) : httpRequest(url, options);
      req.on('error', reject);
      req.once('response', (res: IncomingMessage) => {
        const h = new Headers();
        const raw = res.rawHeaders;
        for (let i = 0; i + 1 < raw.length; i += 2) h.append(raw[i]!, raw[i + 1]!);
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400) redirected = true;
        const empty = NULL_BODY.has(status) || method === 'HEAD';
        if (empty) res.resume();
        try {
          resolve(new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), { status, statusText: res.statusMessage ?? '', headers: h }));
        } catch (e) {
          res.destroy();
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
      req.end(body ?? undefined);
    });
  };
  return { fetch: f, close, agentFor: (url) => (url.protocol === 'https:' ? https : http), redirected: () => redirected };
}
