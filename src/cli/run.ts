// `comfy-gateway run <workflow.json>`: runs one workflow with a live progress line, saves every
// output under `--out` and prints the stats — straight against a ComfyUI server (`--server`,
// run-comfy.ts) or as a v2 job on a comfy-gateway (`--gateway`, run-gateway.ts). This file owns
// the command line, the exit codes and the wording of errors; run-plan.ts parses the arguments.
import { basename } from 'node:path';
import type { Command } from 'commander';
import { ComfyError, ComfyExecutionError, ComfyValidationError } from '../comfy/index.ts';
import { ComfyTarget } from './run-comfy.ts';
import { GatewayApiError } from './gateway-api.ts';
import { GatewayJobError, GatewayTarget } from './run-gateway.ts';
import { isPipelineFile, PipelineRunError, PipelineTarget, parsePipelinePlan } from './run-pipeline.ts';
import { parsePlan, type RunPlan, type RunTarget, RunTimeoutError, RunUsageError } from './run-plan.ts';
import { printSummary, Reporter } from './run-reporter.ts';

/** Options as commander hands them over. */
export interface RunCliOptions {
  server?: string;
  gateway?: string;
  apiKey?: string;
  set: string[];
  input: string[];
  out: string;
  timeout: string;
}

const DEFAULT_SERVER = 'http://127.0.0.1:8188';
/** Exit codes: 0 ok, 1 the run failed, 2 bad usage, 130 interrupted (Ctrl-C). */
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
const EXIT_INTERRUPTED = 130;

/** Adds the `run` subcommand. */
export function register(program: Command): void {
  program
    .command('run')
    .description(
      'run one workflow (API or UI format) on a ComfyUI server or a comfy-gateway and save its outputs',
    )
    .argument(
      '<workflow.json>',
      'API-format prompt, a UI workflow (converted with /object_info), or a pipeline (*.pipeline.yaml, with --gateway; --input/--set then name pipeline inputs)',
    )
    .option('--server <url>', `ComfyUI base URL (default: ${DEFAULT_SERVER})`)
    .option('--gateway <url>', 'comfy-gateway base URL: run as a v2 job there instead')
    .option('--api-key <key>', 'gateway API key (default: $COMFY_GATEWAY_API_KEY)')
    .option(
      '--set <node.input=value>',
      'override an input; value parsed as JSON when valid (repeatable)',
      collect,
      [],
    )
    .option('--input <node.input=file>', 'upload a file and use it for that input (repeatable)', collect, [])
    .option('--out <dir>', 'directory for the outputs', './out')
    .option(
      '--timeout <seconds>',
      'deadline of the whole run; the prompt/job is cancelled when it passes',
      '300',
    )
    // Usage errors found by commander exit 2 like ours (commander's default is 1).
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE))
    .action(async (file: string, options: RunCliOptions) => {
      process.exitCode = await runCommand(file, {
        ...options,
        apiKey: options.apiKey ?? process.env.COMFY_GATEWAY_API_KEY,
      });
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Runs the command; returns the exit code (0 ok, 1 run failed, 2 bad usage, 130 interrupted). */
export async function runCommand(file: string, options: RunCliOptions): Promise<number> {
  const reporter = new Reporter(process.stderr);
  let plan: RunPlan;
  let target: RunTarget;
  try {
    if (isPipelineFile(file)) [plan, target] = await pipelinePlan(file, options);
    else {
      plan = await parsePlan(file, options);
      target = makeTarget(options);
    }
  } catch (err) {
    reporter.fail(err instanceof Error ? err.message : String(err));
    return EXIT_USAGE;
  }
  const controller = new AbortController();
  const interrupted = new Error('interrupted by the user');
  const onSignal = (): void => controller.abort(interrupted);
  const deadline = Date.now() + plan.timeoutMs;
  const timer = setTimeout(
    () =>
      controller.abort(
        new RunTimeoutError(`the run did not finish within --timeout ${plan.timeoutMs / 1000} s`),
      ),
    plan.timeoutMs,
  );
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    reporter.line(`running ${basename(plan.workflowPath)} on ${target.describe()}`);
    const outcome = await target.execute(plan, { reporter, signal: controller.signal, deadline });
    reporter.done();
    printSummary(outcome, plan.outDir);
    return 0;
  } catch (err) {
    reporter.done();
    const reason: unknown = controller.signal.aborted ? controller.signal.reason : undefined;
    // An abort surfaces as whatever the target was doing; name the cause instead.
    if (reason instanceof RunTimeoutError && !(err instanceof ComfyError && err.code === 'comfy_timeout')) {
      reporter.fail(`${reason.code}: ${reason.message}`);
      return EXIT_FAILED;
    }
    if (reason === interrupted) {
      reporter.fail('interrupted');
      return EXIT_INTERRUPTED;
    }
    reporter.fail(describeError(err));
    return err instanceof RunUsageError ? EXIT_USAGE : EXIT_FAILED;
  } finally {
    clearTimeout(timer);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await target.close();
  }
}

/** A pipeline file runs as one pipeline run on a gateway (run-pipeline.ts). */
async function pipelinePlan(file: string, options: RunCliOptions): Promise<[RunPlan, RunTarget]> {
  if (options.gateway === undefined)
    throw new RunUsageError(`${file} is a pipeline: it runs on a gateway, add --gateway URL`);
  if (options.server !== undefined) throw new RunUsageError('a pipeline runs on --gateway, not --server');
  const pipeline = await parsePipelinePlan(file, options);
  const target = new PipelineTarget(checkUrl('--gateway', options.gateway), options.apiKey);
  const plan: RunPlan = {
    workflowPath: file,
    workflow: pipeline.definition,
    sets: [],
    inputs: [],
    outDir: pipeline.outDir,
    timeoutMs: pipeline.timeoutMs,
  };
  return [
    plan,
    {
      describe: () => target.describe(),
      execute: (_plan, context) => target.execute(pipeline, context),
      close: async () => {},
    },
  ];
}

/** The target the options ask for; throws RunUsageError on bad URLs or conflicting flags. */
function makeTarget(options: RunCliOptions): RunTarget {
  if (options.gateway !== undefined) {
    if (options.server !== undefined) throw new RunUsageError('use either --server or --gateway, not both');
    return new GatewayTarget(checkUrl('--gateway', options.gateway), options.apiKey);
  }
  if (options.apiKey !== undefined && options.apiKey !== process.env.COMFY_GATEWAY_API_KEY)
    throw new RunUsageError('--api-key is for --gateway (a ComfyUI server takes no key)');
  return new ComfyTarget(checkUrl('--server', options.server ?? DEFAULT_SERVER));
}

function checkUrl(flag: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new RunUsageError(`${flag} ${value}: not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new RunUsageError(`${flag} ${value}: expected an http(s) URL`);
  return value;
}

/** A human message for any failure, with node ids and messages from ComfyUI or the gateway. */
export function describeError(err: unknown): string {
  if (err instanceof ComfyValidationError) {
    const head = `${err.code}: ${err.error.message}${err.error.details ? ` (${err.error.details})` : ''}`;
    return [head, ...nodeErrorLines(err.nodeErrors)].join('\n');
  }
  if (err instanceof ComfyExecutionError) {
    return `${err.code}: node ${err.nodeId} (${err.nodeType}) raised ${err.exceptionType}: ${err.exceptionMessage}`;
  }
  if (err instanceof GatewayJobError) {
    const e = err.job.error;
    if (!e) return `job ${err.job.id} ended ${err.job.status}`;
    const exception = e.details?.exception_type;
    const head =
      e.node_id !== undefined
        ? `${e.code}: node ${e.node_id} (${e.class_type ?? '?'})${typeof exception === 'string' ? ` raised ${exception}` : ''}: ${e.message}`
        : `${e.code}: ${e.message}`;
    return [`job ${err.job.id} ${err.job.status}`, head, ...detailLines(e.details)].join('\n');
  }
  if (err instanceof PipelineRunError) {
    const e = err.run.error;
    return [
      `run ${err.run.id} ${err.run.status}`,
      ...(e ? [`${e.code}: ${e.message}`] : []),
      ...detailLines(e?.job_error?.details),
    ].join('\n');
  }
  if (err instanceof GatewayApiError)
    return [`${err.code}: ${err.message}`, ...detailLines(err.details)].join('\n');
  if (err instanceof ComfyError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

/** ComfyUI's node_errors as `node <id> (<class>): <message>: <details>` lines. */
function nodeErrorLines(nodeErrors: unknown): string[] {
  const lines: string[] = [];
  if (typeof nodeErrors !== 'object' || nodeErrors === null) return lines;
  for (const [nodeId, v] of Object.entries(nodeErrors)) {
    const entry = v as { class_type?: string; errors?: Array<{ message?: string; details?: string }> };
    for (const e of entry.errors ?? []) {
      lines.push(
        `  node ${nodeId} (${entry.class_type ?? '?'}): ${e.message}${e.details ? `: ${e.details}` : ''}`,
      );
    }
  }
  return lines;
}

/** The parts of an error's `details` a person needs: node errors, request issues, missing classes. */
function detailLines(details: unknown): string[] {
  if (typeof details !== 'object' || details === null) return [];
  const d = details as { node_errors?: unknown; issues?: unknown; missing_node_classes?: unknown };
  const lines = nodeErrorLines(d.node_errors);
  if (Array.isArray(d.issues)) {
    for (const issue of d.issues) {
      const i = issue as { path?: unknown; field?: unknown; message?: unknown; reason?: unknown };
      const where = Array.isArray(i.path) ? i.path.join('.') : (i.field ?? '');
      lines.push(
        `  ${where ? `${String(where)}: ` : ''}${String(i.message ?? i.reason ?? JSON.stringify(issue))}`,
      );
    }
  }
  if (Array.isArray(d.missing_node_classes))
    lines.push(`  missing node classes: ${d.missing_node_classes.join(', ')}`);
  return lines;
}
