/**
 * The gateway's hop (issue 14): an allowed call through `ackd gateway` vs the same call made
 * directly, the same client transport on both sides, interleaved, p50 ratio (target ≤ 1.3×).
 *
 * - stdio: client → `ackd gateway --stdio` (the real CLI process) → `mcp-server-filesystem`
 *   (stdio), `fs__read_text_file` of a small file; vs client → `mcp-server-filesystem` (stdio),
 *   `read_text_file`.
 * - streamable HTTP: client → `ackd gateway --port` (the real CLI process) → `mcp-server-everything
 *   streamableHttp`, `remote__echo`; vs client → the same everything server, `echo` (the
 *   filesystem server speaks stdio only).
 *
 * The ackd side is a real local stack in a child process (this file, `--stack`), at the lowest CPU
 * priority: the gateway checks the caller's key there (GET /v1/whoami, kept 30 s) and records the
 * allowed calls there, off the call's path. Recording and sequencing cost the local stack 5-15 ms
 * of CPU per call; on the timing thread (as before) that work landed in whichever samples it
 * overlapped, and at normal priority it competes with the three processes timed. A deployed ackd
 * runs elsewhere. Both sides run while it works, interleaved, so what remains of it hits both.
 *
 * Alone: `npx tsx test/bench/gateway.ts` (BENCH_QUICK=1: few samples). In the suite: the `gateway`
 * group of test/bench/run.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createApiKey } from '../../lambdas/core/apikeys.ts';
import { parseAgentId } from '../../lambdas/core/ids.ts';
import { startTestStack } from '../helpers/local-stack.ts';
import { absentRow, latencyRow, type Row } from './report.ts';
import { interleaved, p50, percentile } from './stats.ts';
import { freePort, LOOPBACK_ONLY } from '../helpers/downstreams.ts';


/** Starts a child and waits until its stderr says `ready`. */
async function child(args: string[], env: NodeJS.ProcessEnv, ready: string, root: string): Promise<ChildProcess> {
  const proc = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  await new Promise<void>((ok, fail) => {
    const t = setTimeout(() => fail(new Error(`${args.join(' ')} did not start: ${err}`)), 60_000);
    proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes(ready)) {
        clearTimeout(t);
        ok();
      }
    });
    proc.once('exit', (code) => fail(new Error(`${args.join(' ')} exited ${code}: ${err}`)));
  });
  return proc;
}

/** What the ackd stack child tells the bench (one JSON line on its stdout). */
interface StackInfo {
  readonly mcpUrl: string;
  readonly agentApiKey: string;
  readonly callerKey: string;
}

/**
 * The ackd side in its own process (this file, `--stack`): the allowed calls the gateway records
 * are sequenced there, not on the thread that times both sides' calls.
 */
async function serveStack(): Promise<void> {
  const stack = await startTestStack({ consent: false });
  const { apiKey } = await createApiKey(stack.deps.apiKeys, parseAgentId('bench-caller'), stack.clock);
  const info: StackInfo = { mcpUrl: stack.mcpUrl, agentApiKey: stack.agentApiKey, callerKey: apiKey };
  process.stdout.write(`${JSON.stringify(info)}\n`);
  const stop = () => void stack.stop().finally(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.stdin.once('end', stop).resume();
}

async function startStackChild(): Promise<{ info: StackInfo; proc: ChildProcess }> {
  // the loader this process runs under (tsx), so that the child runs TypeScript too
  const proc = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--stack'], { stdio: ['pipe', 'pipe', 'inherit'] });
  // ackd stands in for a remote service here: its work (recording and sequencing the allowed
  // calls, ~10 ms of CPU per call on the local stack) yields the CPU to the processes timed
  try {
    setPriority(proc.pid!, 19);
  } catch {
    // not allowed here: the stack competes at the usual priority
  }
  const info = await new Promise<StackInfo>((ok, fail) => {
    let out = '';
    const t = setTimeout(() => fail(new Error('the ackd stack child did not start in 60 s')), 60_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(t);
        ok(JSON.parse(out.slice(0, nl)) as StackInfo);
      }
    });
    proc.once('exit', (code) => fail(new Error(`the ackd stack child exited ${code}`)));
  });
  return { info, proc };
}

export async function gatewayRows(root: string, opts: { n: number; warm: number }): Promise<Row[]> {
  const bin = (name: string) => join(root, 'node_modules', '.bin', name);
  const { info: stack, proc: stackProc } = await startStackChild();
  const work = await mkdtemp(join(tmpdir(), 'ackd-gw-bench-'));
  const procs: ChildProcess[] = [];
  const clients: Client[] = [];
  const rows: Row[] = [];
  try {
    const file = join(work, 'data', 'small.txt');
    await (await import('node:fs/promises')).mkdir(join(work, 'data'));
    await writeFile(file, 'a small file\n'.repeat(8));
    const port = await freePort();
    procs.push(await child([`--import=${LOOPBACK_ONLY}`, bin('mcp-server-everything'), 'streamableHttp'], { ...process.env, PORT: String(port) }, 'listening on port', root));
    const everything = `http://127.0.0.1:${port}/mcp`;
    const config = join(work, 'gateway.json');
    await writeFile(
      config,
      JSON.stringify({
        ackd: { url: stack.mcpUrl, apiKeyEnv: 'GW_ACKD_KEY' },
        mcpServers: { fs: { command: bin('mcp-server-filesystem'), args: [join(work, 'data')] }, remote: { url: everything } },
        policy: { tools: { remote__echo: 'allow' } },
      }),
    );
    const env = { ...process.env, GW_ACKD_KEY: stack.agentApiKey, NODE_NO_WARNINGS: '1' };
    const connect = async (transport: StdioClientTransport | StreamableHTTPClientTransport) => {
      const c = new Client({ name: 'bench', version: '1.0.0' });
      await c.connect(transport);
      clients.push(c);
      return c;
    };

    // stdio on both sides
    const direct = await connect(new StdioClientTransport({ command: bin('mcp-server-filesystem'), args: [join(work, 'data')], stderr: 'ignore' }));
    const viaStdio = await connect(new StdioClientTransport({ command: process.execPath, args: [join(root, 'bin', 'ackd.js'), 'gateway', '--config', config, '--stdio'], env: { ...getDefaultEnvironment(), ...env } as Record<string, string>, stderr: 'ignore' }));
    const s = await interleaved(
      opts.n,
      opts.warm,
      () => viaStdio.callTool({ name: 'fs__read_text_file', arguments: { path: file } }),
      () => direct.callTool({ name: 'read_text_file', arguments: { path: file } }),
    );
    rows.push(latencyRow('gateway.allowed.stdio.p50', 'gateway, allowed call over stdio (fs read_text_file), p50', p50(s.a), p50(s.b), `${s.a.length} + ${s.b.length}`, 1.3, `floor: the same call straight to mcp-server-filesystem over stdio; p95 ${percentile(s.a, 95).toFixed(2)} vs ${percentile(s.b, 95).toFixed(2)} ms; load average ${loadavg()[0]!.toFixed(1)}`));

    // streamable HTTP on both sides
    const gwPort = await freePort();
    procs.push(await child([join(root, 'bin', 'ackd.js'), 'gateway', '--config', config, '--port', String(gwPort)], env, 'serving MCP at', root));
    const apiKey = stack.callerKey;
    const directHttp = await connect(new StreamableHTTPClientTransport(new URL(everything)));
    const viaHttp = await connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${gwPort}/mcp`), { requestInit: { headers: { authorization: `Bearer ${apiKey}` } } }));
    const h = await interleaved(
      opts.n,
      opts.warm,
      () => viaHttp.callTool({ name: 'remote__echo', arguments: { message: 'hello' } }),
      () => directHttp.callTool({ name: 'echo', arguments: { message: 'hello' } }),
    );
    rows.push(latencyRow('gateway.allowed.http.p50', 'gateway, allowed call over streamable HTTP (everything echo), p50', p50(h.a), p50(h.b), `${h.a.length} + ${h.b.length}`, 1.3, `floor: the same call straight to mcp-server-everything over streamable HTTP; p95 ${percentile(h.a, 95).toFixed(2)} vs ${percentile(h.b, 95).toFixed(2)} ms; load average ${loadavg()[0]!.toFixed(1)}`));
  } catch (e) {
    rows.push(absentRow('gateway.failed', 'gateway, allowed call', `FAILED: ${e instanceof Error ? e.message : String(e)}`));
  } finally {
    for (const c of clients) await c.close().catch(() => undefined);
    for (const p of procs) p.kill('SIGTERM');
    stackProc.stdin!.end();
    await new Promise((r) => (stackProc.exitCode !== null ? r(null) : stackProc.once('exit', r)));
    await rm(work, { recursive: true, force: true });
  }
  return rows;
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === '--stack') {
  await serveStack();
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.env.BENCH_QUICK === '1';
  const { table } = await import('./report.ts');
  const rows = await gatewayRows(join(fileURLToPath(import.meta.url), '..', '..', '..'), quick ? { n: 100, warm: 20 } : { n: 1000, warm: 100 });
  process.stdout.write(`${table(rows)}\n`);
  process.exit(0);
}
