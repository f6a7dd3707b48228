// `comfy-gateway run <prompt.json>`: runs one workflow straight against a ComfyUI server with a live
// progress line, uploads `--input` files, saves every output under `--out` and prints the stats.
// The work is split into parse (args → RunPlan), a Target that executes the plan (today: one
// ComfyUI URL; a gateway target can be added beside it) and the reporter (progress and summary).
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { basename, join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import {
  type ApiPrompt,
  ComfyClient,
  ComfyError,
  ComfyExecutionError,
  ComfyValidationError,
  type OutputFile,
  type RunEvent,
  type RunResult,
} from '../comfy/index.ts';
import { detectFormat, toApiPrompt } from '../workflow/index.ts';

/** Everything a run needs, independent of where it runs. */
export interface RunPlan {
  workflowPath: string;
  workflow: unknown;
  sets: Array<{ nodeId: string; input: string; value: unknown }>;
  inputs: Array<{ nodeId: string; input: string; path: string }>;
  outDir: string;
  timeoutMs: number;
}

/** Where a plan runs. */
export interface RunTarget {
  describe(): string;
  execute(
    plan: RunPlan,
    reporter: Reporter,
    signal: AbortSignal,
  ): Promise<{ result: RunResult; saved: string[] }>;
  close(): Promise<void>;
}

/** Options as commander hands them over. */
interface RunCliOptions {
  server: string;
  set: string[];
  input: string[];
  out: string;
  timeout: string;
}

/** Adds the `run` subcommand. */
export function register(program: Command): void {
  program
    .command('run')
    .description('run one workflow (API or UI format) against a ComfyUI server and save its outputs')
    .argument(
      '<prompt.json>',
      'API-format prompt (or a UI workflow, converted with the server’s /object_info)',
    )
    .option('--server <url>', 'ComfyUI base URL', 'http://127.0.0.1:8188')
    .option(
      '--set <node.input=value>',
      'override an input; value parsed as JSON when valid (repeatable)',
      collect,
      [],
    )
    .option('--input <node.input=file>', 'upload a file and use it for that input (repeatable)', collect, [])
    .option('--out <dir>', 'directory for the outputs', './out')
    .option('--timeout <seconds>', 'deadline of the whole run', '300')
    .action(async (file: string, options: RunCliOptions) => {
      process.exitCode = await runCommand(file, options);
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Runs the command; returns the exit code (0 ok, 1 run failed, 2 bad usage). */
export async function runCommand(file: string, options: RunCliOptions): Promise<number> {
  const reporter = new Reporter(process.stderr);
  let plan: RunPlan;
  try {
    plan = await parsePlan(file, options);
  } catch (err) {
    reporter.fail(err instanceof Error ? err.message : String(err));
    return 2;
  }
  const target: RunTarget = new ComfyTarget(options.server);
  const controller = new AbortController();
  const onSignal = (): void => controller.abort(new Error('interrupted by the user'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    reporter.line(`running ${basename(plan.workflowPath)} on ${target.describe()}`);
    const { result, saved } = await target.execute(plan, reporter, controller.signal);
    reporter.done();
    printSummary(result, saved, plan.outDir);
    return 0;
  } catch (err) {
    reporter.done();
    reporter.fail(describeError(err));
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await target.close();
  }
}

/** Reads the workflow and parses --set / --input / --timeout. */
export async function parsePlan(file: string, options: RunCliOptions): Promise<RunPlan> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
  let workflow: unknown;
  try {
    workflow = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not JSON: ${(err as Error).message}`);
  }
  // Accept a bare prompt or a POST /prompt body.
  if (typeof workflow === 'object' && workflow !== null && 'prompt' in workflow) {
    workflow = (workflow as { prompt: unknown }).prompt;
  }
  const timeout = Number(options.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0)
    throw new Error(`--timeout must be a positive number of seconds`);
  const sets = options.set.map((s) => {
    const { nodeId, input, value } = splitAssignment(s, '--set');
    return { nodeId, input, value: parseValue(value) };
  });
  const inputs = await Promise.all(
    options.input.map(async (s) => {
      const { nodeId, input, value } = splitAssignment(s, '--input');
      const path = resolve(value);
      const info = await stat(path).catch(() => undefined);
      if (!info?.isFile()) throw new Error(`--input ${s}: ${value} is not a readable file`);
      return { nodeId, input, path };
    }),
  );
  return {
    workflowPath: file,
    workflow,
    sets,
    inputs,
    outDir: resolve(options.out),
    timeoutMs: timeout * 1000,
  };
}

/** Splits `6.text=a cat` into node id, input name and raw value. */
export function splitAssignment(s: string, flag: string): { nodeId: string; input: string; value: string } {
  const eq = s.indexOf('=');
  const dot = s.indexOf('.');
  if (eq < 0 || dot < 0 || dot > eq || dot === 0 || dot === eq - 1) {
    throw new Error(`${flag} ${s}: expected <node id>.<input>=<value>, e.g. 6.text="a cat"`);
  }
  return { nodeId: s.slice(0, dot), input: s.slice(dot + 1, eq), value: s.slice(eq + 1) };
}

/** `--set` values: JSON when valid (numbers, booleans, arrays, quoted strings), else the raw string. */
export function parseValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/** Applies --set values (and uploaded names) to a prompt copy; unknown nodes are an error. */
export function applyAssignments(
  prompt: ApiPrompt,
  assignments: Array<{ nodeId: string; input: string; value: unknown }>,
): ApiPrompt {
  const out = structuredClone(prompt);
  for (const a of assignments) {
    const node = out[a.nodeId];
    if (!node)
      throw new Error(`node ${a.nodeId} is not in the prompt (nodes: ${Object.keys(out).join(', ')})`);
    node.inputs[a.input] = a.value;
  }
  return out;
}

/** Runs the plan straight against one ComfyUI server. */
class ComfyTarget implements RunTarget {
  readonly #client: ComfyClient;

  constructor(server: string) {
    this.#client = new ComfyClient({ baseUrl: server, historyPollIntervalMs: 1000 });
  }

  describe(): string {
    return this.#client.baseUrl;
  }

  async execute(
    plan: RunPlan,
    reporter: Reporter,
    signal: AbortSignal,
  ): Promise<{ result: RunResult; saved: string[] }> {
    const client = this.#client;
    let prompt: ApiPrompt;
    const format = detectFormat(plan.workflow);
    if (format === 'ui') {
      reporter.line('UI workflow: converting with the server’s /object_info');
      const defs = await client.getObjectInfo({ signal });
      const converted = toApiPrompt(plan.workflow, defs as Parameters<typeof toApiPrompt>[1]);
      for (const w of converted.warnings) reporter.line(`  warning ${w.code}: ${w.message}`);
      prompt = converted.prompt as ApiPrompt;
    } else if (format === 'api') {
      prompt = plan.workflow as ApiPrompt;
    } else {
      throw new Error(`${plan.workflowPath} is neither an API prompt nor a UI workflow`);
    }
    const uploads: Array<{ nodeId: string; input: string; value: unknown }> = [];
    for (const input of plan.inputs) {
      const data = await readFile(input.path);
      const uploaded = await client.uploadImage(data, { filename: basename(input.path), signal });
      const name = uploaded.subfolder ? `${uploaded.subfolder}/${uploaded.name}` : uploaded.name;
      reporter.line(`uploaded ${basename(input.path)} → ${name}`);
      uploads.push({ nodeId: input.nodeId, input: input.input, value: name });
    }
    prompt = applyAssignments(prompt, [...plan.sets, ...uploads]);
    reporter.setNodeCount(Object.keys(prompt).length);
    const result = await client.run(prompt, {
      signal,
      timeoutMs: plan.timeoutMs,
      onEvent: (event) => reporter.event(event, prompt),
    });
    reporter.done();
    const saved: string[] = [];
    await mkdir(plan.outDir, { recursive: true });
    await client.downloadOutputs(
      result,
      async (file: OutputFile, stream: Readable) => {
        const path = safeOutputPath(plan.outDir, file);
        await mkdir(resolve(path, '..'), { recursive: true });
        await pipeline(stream, createWriteStream(path));
        saved.push(path);
      },
      { signal },
    );
    return { result, saved };
  }

  close(): Promise<void> {
    return this.#client.close();
  }
}

/** Where an output goes under `outDir`; names that try to escape it are flattened. */
export function safeOutputPath(
  outDir: string,
  file: Pick<OutputFile, 'filename' | 'subfolder' | 'type'>,
): string {
  const parts = [
    file.type === 'output' ? '' : file.type,
    ...file.subfolder.split(/[\\/]/),
    basename(file.filename),
  ].filter((p) => p !== '' && p !== '.' && p !== '..');
  const path = join(outDir, ...parts);
  if (!path.startsWith(outDir + sep)) throw new Error(`refusing to write ${file.filename} outside ${outDir}`);
  return path;
}

/** Progress on stderr: one redrawn line on a TTY, plain lines otherwise. */
export class Reporter {
  readonly #out: NodeJS.WriteStream;
  readonly #tty: boolean;
  readonly #started = Date.now();
  #nodeCount = 0;
  #nodesDone = 0;
  #current = '';
  #step = '';
  #drawn = false;
  #ticker: NodeJS.Timeout | undefined;

  constructor(out: NodeJS.WriteStream) {
    this.#out = out;
    this.#tty = out.isTTY === true;
  }

  setNodeCount(n: number): void {
    this.#nodeCount = n;
    if (this.#tty && !this.#ticker) {
      this.#ticker = setInterval(() => this.#draw(), 250);
      this.#ticker.unref();
    }
  }

  line(text: string): void {
    this.#clear();
    this.#out.write(`${text}\n`);
    this.#draw();
  }

  fail(text: string): void {
    this.#clear();
    this.#out.write(`error: ${text}\n`);
  }

  event(event: RunEvent, prompt: ApiPrompt): void {
    switch (event.type) {
      case 'queued':
        if (!this.#tty) this.line(`queued as #${event.number} (${event.promptId})`);
        break;
      case 'cached':
        this.#nodesDone += event.nodes.length;
        if (!this.#tty) this.line(`cached: ${event.nodes.join(', ')}`);
        break;
      case 'executing': {
        if (this.#current !== '') this.#nodesDone++;
        const cls = event.classType ?? prompt[event.nodeId]?.class_type ?? '?';
        this.#current = `node ${event.nodeId} ${cls}`;
        this.#step = '';
        if (!this.#tty) this.line(`${this.#elapsed()} executing ${this.#current}`);
        break;
      }
      case 'progress':
        this.#step = `${event.value}/${event.max}`;
        if (!this.#tty && event.value === event.max) this.line(`${this.#elapsed()}   step ${this.#step}`);
        break;
      default:
        break;
    }
    this.#draw();
  }

  done(): void {
    if (this.#ticker) clearInterval(this.#ticker);
    this.#ticker = undefined;
    this.#clear();
    this.#current = '';
  }

  #elapsed(): string {
    return `[${((Date.now() - this.#started) / 1000).toFixed(1)}s]`;
  }

  #draw(): void {
    if (!this.#tty || this.#current === '') return;
    const width = 20;
    const frac = this.#nodeCount > 0 ? Math.min(1, this.#nodesDone / this.#nodeCount) : 0;
    const bar = '█'.repeat(Math.round(frac * width)).padEnd(width, '░');
    const step = this.#step ? ` step ${this.#step}` : '';
    const text = `${bar} ${this.#nodesDone}/${this.#nodeCount} ${this.#current}${step} ${this.#elapsed()}`;
    this.#out.write(`\r\x1b[2K${text.slice(0, (this.#out.columns ?? 100) - 1)}`);
    this.#drawn = true;
  }

  #clear(): void {
    if (this.#tty && this.#drawn) this.#out.write('\r\x1b[2K');
    this.#drawn = false;
  }
}

function printSummary(result: RunResult, saved: string[], outDir: string): void {
  const s = result.stats;
  const lines = [
    `prompt ${result.promptId} finished`,
    `  queue wait ${fmt(s.queueWaitMs)}, execution ${fmt(s.executionMs)}`,
  ];
  if (s.cachedNodes.length > 0) lines.push(`  cached nodes: ${s.cachedNodes.join(', ')}`);
  for (const [id, t] of Object.entries(s.nodes)) {
    lines.push(`  node ${id}: ${fmt(t.finishedAt === undefined ? undefined : t.finishedAt - t.startedAt)}`);
  }
  for (const t of result.texts) lines.push(`  text from node ${t.nodeId}: ${t.text}`);
  if (result.nodeErrors)
    lines.push(`  warning: some outputs were dropped at validation: ${JSON.stringify(result.nodeErrors)}`);
  lines.push(`  ${saved.length} file(s) saved under ${outDir}`);
  process.stderr.write(`${lines.join('\n')}\n`);
  for (const path of saved) process.stdout.write(`${path}\n`);
}

function fmt(ms: number | undefined): string {
  return ms === undefined ? '—' : ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** A human message for any failure, with ComfyUI's node ids and messages. */
export function describeError(err: unknown): string {
  if (err instanceof ComfyValidationError) {
    const lines = [`${err.code}: ${err.error.message}${err.error.details ? ` (${err.error.details})` : ''}`];
    for (const [nodeId, v] of Object.entries(err.nodeErrors)) {
      const entry = v as { class_type?: string; errors?: Array<{ message?: string; details?: string }> };
      for (const e of entry.errors ?? []) {
        lines.push(
          `  node ${nodeId} (${entry.class_type ?? '?'}): ${e.message}${e.details ? `: ${e.details}` : ''}`,
        );
      }
    }
    return lines.join('\n');
  }
  if (err instanceof ComfyExecutionError) {
    return `${err.code}: node ${err.nodeId} (${err.nodeType}) raised ${err.exceptionType}: ${err.exceptionMessage}`;
  }
  if (err instanceof ComfyError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}
