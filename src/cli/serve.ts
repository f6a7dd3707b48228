// `comfy-gateway serve`: loads the configuration (env, --config file, flags), starts the gateway,
// and shuts it down gracefully on SIGINT/SIGTERM (a second signal forces exit).
import type { Command } from 'commander';
import { ConfigError, loadConfig } from '../config.ts';
import { StoreOpenError } from '../jobs/index.ts';
import { startGateway } from '../server/index.ts';

/** Adds the `serve` subcommand. */
export function register(program: Command): void {
  program
    .command('serve')
    .description('Run the gateway (Comfy API v2 jobs over a pool of ComfyUI instances)')
    .option('-c, --config <file>', 'YAML or JSON settings file (environment variables override it)')
    .option('-p, --port <port>', 'port to listen on (PORT)')
    .option('-H, --host <host>', 'address to bind (HOST)')
    .action(async (opts: { config?: string; port?: string; host?: string }) => {
      let config: ReturnType<typeof loadConfig>;
      try {
        config = loadConfig(process.env, opts.config, {
          ...(opts.port !== undefined ? { PORT: opts.port } : {}),
          ...(opts.host !== undefined ? { HOST: opts.host } : {}),
        });
      } catch (err) {
        if (err instanceof ConfigError) {
          process.stderr.write(`${err.message}\n`);
          process.exit(2);
        }
        throw err;
      }
      let gateway: Awaited<ReturnType<typeof startGateway>>;
      try {
        gateway = await startGateway(config);
      } catch (err) {
        if (err instanceof StoreOpenError) {
          process.stderr.write(`${err.message}\n`);
          process.exit(1);
        }
        throw err;
      }
      let signals = 0;
      const onSignal = (signal: NodeJS.Signals) => {
        signals++;
        if (signals > 1) {
          gateway.logger.warn({ signal }, 'second signal: exiting now');
          process.exit(130);
        }
        gateway.logger.info({ signal }, 'shutting down');
        gateway.close().then(
          () => process.exit(0),
          (err) => {
            gateway.logger.error({ err }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
    });
}
