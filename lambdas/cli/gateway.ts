/**
 * `ackd gateway --config gateway.json [--port N] [--stdio]`: an MCP server in front of downstream
 * MCP servers that puts their tools behind human approval (docs/gateway.md).
 *
 *   exit 2: the configuration is refused (`ackd gateway: <field path>: <rule>`) · 1: it could not start
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { GatewayConfigError, parseGatewayConfig, type GatewayConfig } from '../core/gateway/config.ts';
import { ExitCode } from './audit.ts';

const say = (line: string) => process.stderr.write(`ackd gateway: ${line}\n`);

export interface GatewayCliOptions {
  readonly config: string;
  readonly port?: string;
  readonly host?: string;
  readonly stdio?: boolean;
}

/** Reads and checks the configuration file; throws GatewayConfigError naming the field. */
export async function loadGatewayConfig(path: string, env: NodeJS.ProcessEnv = process.env): Promise<GatewayConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new GatewayConfigError('--config', `cannot read ${path}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new GatewayConfigError('--config', `${path} is not JSON (${(e as Error).message})`);
  }
  return parseGatewayConfig(raw, env);
}

export function registerGatewayCommand(program: Command): void {
  program
    .command('gateway')
    .description("an MCP server in front of your MCP servers: their tools, each call allowed, refused or held for a human's approval of exactly that call (docs/gateway.md)")
    .requiredOption('--config <gateway.json>', 'the gateway configuration: ackd, mcpServers, policy, waitSeconds')
    .option('--port <n>', 'HTTP port of the MCP endpoint /mcp', '8788')
    .option('--host <address>', 'the address to listen on', '127.0.0.1')
    .option('--stdio', 'serve MCP over stdin/stdout instead (for clients that start servers as processes)')
    .action(async (opts: GatewayCliOptions) => {
      let config: GatewayConfig;
      try {
        config = await loadGatewayConfig(opts.config);
      } catch (e) {
        if (e instanceof GatewayConfigError) {
          say(e.message);
          throw new ExitCode(2);
        }
        throw e;
      }
      const port = Number(opts.port ?? '8788');
      if (!opts.stdio && (!/^\d+$/.test(opts.port ?? '8788') || port > 65535)) {
        say('--port: must be a port number from 0 to 65535');
        throw new ExitCode(2);
      }
      const { startGateway } = await import('../gateway/start.ts');
      let handle;
      try {
        handle = await startGateway(config, opts.stdio ? { mode: 'stdio' } : { mode: 'http', port, ...(opts.host ? { host: opts.host } : {}) });
      } catch (e) {
        say(e instanceof Error ? e.message : String(e));
        throw new ExitCode(1);
      }
      say(opts.stdio ? 'serving MCP on stdio' : `serving MCP at ${handle.url}`);
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (why: string) => {
          if (stopping) return;
          stopping = true;
          say(`${why}: recording what is queued, stopping the downstream servers`);
          void handle.close().finally(resolve);
        };
        for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => stop(sig));
        if (opts.stdio) process.stdin.once('end', () => stop('stdin closed'));
      });
      process.exit(0);
    });
}
