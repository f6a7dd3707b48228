// The `comfy-gateway` command line: one subcommand per file in this folder, each exporting a
// `register(program)` that adds itself. Only the invoked subcommand's module is loaded (the gateway
// pulls in far more than `simulate` needs, and the simulator must start in well under a second);
// help and unknown commands load them all.
import { enableCompileCache } from 'node:module';
import { Command } from 'commander';

// V8's code cache for our sources and dependencies, kept between runs in the OS temp dir (Node's default;
// NODE_DISABLE_COMPILE_CACHE=1 turns it off): a warm `serve` compiles almost nothing at start-up.
enableCompileCache();

type CommandModule = { register(program: Command): void };

const commands: Record<string, () => Promise<CommandModule>> = {
  convert: () => import('./convert.ts'),
  models: () => import('./models.ts'),
  run: () => import('./run.ts'),
  serve: () => import('./serve.ts'),
  simulate: () => import('./simulate.ts'),
};

const program = new Command()
  .name('comfy-gateway')
  .description('A production API gateway for ComfyUI')
  .showHelpAfterError();

/** Registers the invoked subcommand (all of them for help and unknown commands) and runs it. */
async function main(): Promise<void> {
  const invoked = process.argv[2];
  const load =
    invoked !== undefined && Object.hasOwn(commands, invoked)
      ? [commands[invoked]!]
      : Object.values(commands);
  for (const module of await Promise.all(load.map((importModule) => importModule())))
    module.register(program);
  await program.parseAsync(process.argv);
}

// Not a top-level await: the command line is also bundled as a CommonJS script (dist/main.cjs, run
// with a code cache of its own by bin/bundle.js), which cannot have one. A failure is an unhandled
// rejection: Node prints it and exits 1, as it did for the awaited form.
void main();
