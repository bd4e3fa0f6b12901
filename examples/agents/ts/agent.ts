/**
 * An agent that asks ackd before it acts (TypeScript, @modelcontextprotocol/sdk + node:https):
 *
 *   request_authorization → check_authorization (wait_seconds) until decided → save the SVID
 *   (svid.pem: certificate chain, svid.key: private key, both mode 0600) → call the protected
 *   resource over mutual TLS → revoke_authorization.
 *
 *   npx tsx examples/agents/ts/agent.ts
 *
 * Next to `npm start` it needs nothing else (it reads .ackd/local.json). Settings (environment):
 *   ACKD_MCP_URL       the MCP endpoint                       (local.json mcpUrl)
 *   ACKD_API_KEY       the agent's API key                    (local.json agentApiKey)
 *   ACKD_AGENT_ID      the agent the key belongs to           (local.json agentId)
 *   ACKD_RESOURCE_URL  the protected resource to call         (https://127.0.0.1:8443/rotate)
 *   ACKD_RESOURCE_CA   the resource's server certificate      (.ackd/protected-resource.crt)
 *   ACKD_SVID_DIR      where svid.pem and svid.key are saved  (the current directory)
 *   ACKD_HOME          where local.json is                    (.ackd)
 * Start the resource first: npm run example:resource -- --permission db:write
 */
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join, resolve } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

const home = process.env.ACKD_HOME ?? join(process.cwd(), '.ackd');
const local = await readFile(join(home, 'local.json'), 'utf8')
  .then((t) => JSON.parse(t) as Record<string, string>)
  .catch(() => ({}) as Record<string, string>);
const setting = (env: string, fallback: string | undefined): string => {
  const v = process.env[env] ?? fallback;
  if (!v) throw new Error(`set ${env} (or run \`npm start\`, which writes ${join(home, 'local.json')})`);
  return v;
};
const mcpUrl = setting('ACKD_MCP_URL', local.mcpUrl);
const apiKey = setting('ACKD_API_KEY', local.agentApiKey);
const agentId = setting('ACKD_AGENT_ID', local.agentId);
const resourceUrl = setting('ACKD_RESOURCE_URL', 'https://127.0.0.1:8443/rotate');
const resourceCa = setting('ACKD_RESOURCE_CA', join(home, 'protected-resource.crt'));
const svidDir = resolve(process.env.ACKD_SVID_DIR ?? '.');

/** A tool's structured result; a tool error (isError) becomes an exception with its text. */
async function call<T>(client: Client, name: string, args: Record<string, unknown>): Promise<T> {
  const r = (await client.callTool({ name, arguments: args }, undefined, { timeout: 60_000 })) as CallToolResult;
  if (r.isError) throw new Error(`${name}: ${r.content.map((c) => (c.type === 'text' ? c.text : '')).join(' ')}`);
  return r.structuredContent as T;
}

type Check = { status: 'pending'; approvals?: { have: number; need: number } } | { status: 'approved'; svid?: string; svid_id: string; spiffe_id: string; expires_at: string } | { status: 'denied' | 'expired' | 'revoked' };

/** GET over mutual TLS: the SVID is the client certificate, the resource's own certificate the only trusted CA. */
function callResource(url: URL, tls: { cert: string; key: string; ca: string }): Promise<{ status: number; body: string }> {
  return new Promise((done, fail) => {
    const req = request(url, { method: 'GET', ...tls, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => done({ status: res.statusCode ?? 0, body: body.trim() }));
    });
    req.on('error', fail);
    req.end();
  });
}

const client = new Client({ name: 'ackd-example-agent-ts', version: '1.0.0' });
await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { requestInit: { headers: { authorization: `Bearer ${apiKey}` } } }));
try {
  // 1. Ask. The approver sees exactly these fields.
  const { request_id, consent_url } = await call<{ request_id: string; consent_url: string }>(client, 'request_authorization', {
    agent_id: agentId,
    action: 'rotate the db password',
    permissions: ['db:write'],
    justification: 'Quarterly rotation of the orders database password.',
    ttl_minutes: 10,
  });
  console.log(`requested ${request_id}`);
  console.log(`waiting for a human: ${consent_url}`);

  // 2. Wait for the decision: each check holds up to 25 s while the request is pending.
  let result: Check;
  for (;;) {
    result = await call<Check>(client, 'check_authorization', { request_id, wait_seconds: 25 });
    if (result.status !== 'pending') break;
    if (result.approvals) console.log(`still pending (${result.approvals.have} of ${result.approvals.need} approvals)`);
  }
  if (result.status !== 'approved') {
    console.log(`not authorized: ${result.status}; doing nothing`);
    process.exitCode = 1;
  } else if (!result.svid) {
    // The SVID is sent once, to the first check after approval; it is never stored by ackd.
    throw new Error('approved, but the SVID was already delivered to an earlier check');
  } else {
    console.log(`approved: ${result.spiffe_id} (svid_id ${result.svid_id}, until ${result.expires_at})`);

    // 3. Keep the SVID: the chain (leaf first) and the private key, readable by this user only.
    const at = result.svid.indexOf('-----BEGIN PRIVATE KEY-----');
    const cert = result.svid.slice(0, at);
    const key = result.svid.slice(at);
    const certPath = join(svidDir, 'svid.pem');
    const keyPath = join(svidDir, 'svid.key');
    for (const [path, data] of [
      [certPath, cert],
      [keyPath, key],
    ] as const) {
      await writeFile(path, data, { mode: 0o600 });
      await chmod(path, 0o600); // also when the file was there before
    }
    console.log(`saved ${certPath} and ${keyPath} (mode 600)`);

    // 4. Act: the resource verifies the SVID (chain, trust domain, revocation, permissions).
    const url = new URL(resourceUrl);
    url.searchParams.set('request_id', request_id);
    const tls = { cert, key, ca: await readFile(resourceCa, 'utf8') };
    const acted = await callResource(url, tls);
    console.log(`resource answered ${acted.status}: ${acted.body}`);
    if (acted.status !== 200) process.exitCode = 1;

    // 5. Done: give the identity back. The resource refuses it from now on.
    const revoked = await call<{ revoked: boolean; revoked_at: string }>(client, 'revoke_authorization', { request_id, svid_id: result.svid_id });
    console.log(`revoked at ${revoked.revoked_at}`);
    const after = await callResource(url, tls);
    console.log(`after revocation the resource answered ${after.status}: ${after.body}`);
  }
} finally {
  await client.close();
}
