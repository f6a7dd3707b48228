// The `comfy-gateway` command line: one subcommand per file in this folder, each exporting a
// `register(program)` that adds itself. Keep this file a list of those registrations.
import { Command } from 'commander';
import { register as registerConvert } from './convert.ts';
import { register as registerRun } from './run.ts';
import { register as registerServe } from './serve.ts';
import { register as registerSimulate } from './simulate.ts';

const program = new Command()
  .name('comfy-gateway')
  .description('A production API gateway for ComfyUI')
  .showHelpAfterError();

const registrations: Array<(program: Command) => void> = [
  registerConvert,
  registerRun,
  registerServe,
  registerSimulate,
];

for (const register of registrations) register(program);

await program.parseAsync(process.argv);
