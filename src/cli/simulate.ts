// `comfy-gateway simulate`: runs N simulated ComfyUI instances until SIGINT/SIGTERM, one line per
// instance on stdout. POST /simulator/crash exits the process abruptly (code 137), like kill -9.
import type { Command } from 'commander';
import { startSimulator } from '../simulator/index.ts';

function int(name: string, min: number, max: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new Error(`--${name} must be an integer ${min}-${max}, got "${v}"`);
    return n;
  };
}

/** Registers the `simulate` subcommand. */
export function register(program: Command): void {
  program
    .command('simulate')
    .description('Run simulated ComfyUI v0.8.0 servers (real HTTP/WS protocol, fault injection)')
    .option('--port <port>', 'first port (0 = ephemeral)', int('port', 0, 65535), 8188)
    .option('--instances <n>', 'number of instances on consecutive ports', int('instances', 1, 256), 1)
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option(
      '--node-delay-ms <ms>',
      'simulated time per executed node',
      int('node-delay-ms', 0, 3_600_000),
      50,
    )
    .option('--data-dir <dir>', 'where input/output/temp folders live (default: a temp dir removed on exit)')
    .option(
      '--models-dir <dir>',
      'ComfyUI models layout whose files the loaders list (checkpoints/, loras/…)',
    )
    .option('--verbose', 'log simulator events to stderr', false)
    .action(
      async (opts: {
        port: number;
        instances: number;
        host: string;
        nodeDelayMs: number;
        dataDir?: string;
        modelsDir?: string;
        verbose: boolean;
      }) => {
        const sim = await startSimulator({
          host: opts.host,
          port: opts.port,
          instances: opts.instances,
          nodeDelayMs: opts.nodeDelayMs,
          dataDir: opts.dataDir,
          ...(opts.modelsDir !== undefined ? { modelsDir: opts.modelsDir } : {}),
          logger: opts.verbose ? (line) => process.stderr.write(`${line}\n`) : undefined,
          onCrashRequest: () => process.exit(137),
        });
        for (const inst of sim.instances)
          process.stdout.write(`ComfyUI simulator listening on ${inst.url}\n`);
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        await sim.close();
      },
    );
}
