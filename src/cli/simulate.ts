// `comfy-gateway simulate`: runs N simulated ComfyUI instances until SIGINT/SIGTERM, one line per
// instance on stdout. POST /simulator/crash exits the process abruptly (code 137), like kill -9.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
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
    .option(
      '--extra-model-paths-config <file>',
      "ComfyUI's extra_model_paths.yaml: the base_path of its first section is the models folder",
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
        extraModelPathsConfig?: string;
        verbose: boolean;
      }) => {
        const modelsDir = opts.modelsDir ?? basePathOf(opts.extraModelPathsConfig);
        const sim = await startSimulator({
          host: opts.host,
          port: opts.port,
          instances: opts.instances,
          nodeDelayMs: opts.nodeDelayMs,
          dataDir: opts.dataDir,
          ...(modelsDir !== undefined ? { modelsDir } : {}),
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

/** The base_path of the first section of an extra_model_paths.yaml (what the gateway writes). */
function basePathOf(file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  const doc = parseYaml(readFileSync(file, 'utf8')) as Record<string, { base_path?: unknown }> | null;
  const first = doc ? Object.values(doc)[0] : undefined;
  return typeof first?.base_path === 'string' ? first.base_path : undefined;
}
