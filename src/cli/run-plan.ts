// The `run` command's plan: the workflow file, `--set` / `--input` assignments, output folder and
// deadline parsed and checked up front (bad usage never reaches a server), plus the contract of a
// target that executes a plan and the helpers both targets share.
import { readFile, stat } from 'node:fs/promises';
import { basename, join, resolve, sep } from 'node:path';
import type { ApiPrompt } from '../comfy/index.ts';
import type { Reporter, RunOutcome } from './run-reporter.ts';

/** Bad usage (arguments, files, unknown nodes): the command exits 2. */
export class RunUsageError extends Error {
  readonly code = 'invalid_usage';
  override readonly name = 'RunUsageError';
}

/** The whole run ran past `--timeout`. */
export class RunTimeoutError extends Error {
  readonly code = 'timeout';
  override readonly name = 'RunTimeoutError';
}

/** Everything a run needs, independent of where it runs. */
export interface RunPlan {
  workflowPath: string;
  workflow: unknown;
  sets: Array<{ nodeId: string; input: string; value: unknown }>;
  inputs: Array<{ nodeId: string; input: string; path: string }>;
  outDir: string;
  timeoutMs: number;
}

/** How a target is asked to run: `signal` aborts on Ctrl-C or when `deadline` (epoch ms) passes. */
export interface RunContext {
  reporter: Reporter;
  signal: AbortSignal;
  deadline: number;
}

/** Where a plan runs (one ComfyUI server, or a gateway). */
export interface RunTarget {
  describe(): string;
  execute(plan: RunPlan, context: RunContext): Promise<RunOutcome>;
  close(): Promise<void>;
}

/** The options of `run` that make the plan. */
export interface PlanOptions {
  set: string[];
  input: string[];
  out: string;
  timeout: string;
}

/** Reads the workflow and parses --set / --input / --timeout; throws RunUsageError. */
export async function parsePlan(file: string, options: PlanOptions): Promise<RunPlan> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new RunUsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let workflow: unknown;
  try {
    workflow = JSON.parse(text);
  } catch (err) {
    throw new RunUsageError(`${file} is not JSON: ${(err as Error).message}`);
  }
  // Accept a bare prompt or a POST /prompt body.
  if (typeof workflow === 'object' && workflow !== null && 'prompt' in workflow) {
    workflow = (workflow as { prompt: unknown }).prompt;
  }
  if (typeof workflow !== 'object' || workflow === null || Array.isArray(workflow))
    throw new RunUsageError(`${file} is not a workflow (expected a JSON object)`);
  const timeout = Number(options.timeout);
  // setTimeout's ceiling (~24.8 days) is far beyond any sane run.
  if (!Number.isFinite(timeout) || timeout <= 0 || timeout * 1000 > 2 ** 31 - 1)
    throw new RunUsageError(`--timeout must be a positive number of seconds (at most 2147483)`);
  const sets = options.set.map((s) => {
    const { nodeId, input, value } = splitAssignment(s, '--set');
    return { nodeId, input, value: parseValue(value) };
  });
  const inputs = await Promise.all(
    options.input.map(async (s) => {
      const { nodeId, input, value } = splitAssignment(s, '--input');
      const path = resolve(value);
      const info = await stat(path).catch(() => undefined);
      if (!info?.isFile()) throw new RunUsageError(`--input ${s}: ${value} is not a readable file`);
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
    throw new RunUsageError(`${flag} ${s}: expected <node id>.<input>=<value>, e.g. 6.text="a cat"`);
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

/** Fails with RunUsageError when an assignment names a node the prompt does not have. */
export function checkNodes(prompt: ApiPrompt, assignments: Array<{ nodeId: string }>): void {
  for (const a of assignments) {
    if (!Object.hasOwn(prompt, a.nodeId))
      throw new RunUsageError(
        `node ${a.nodeId} is not in the prompt (nodes: ${Object.keys(prompt).join(', ')})`,
      );
  }
}

/** Applies --set values (and uploaded names) to a prompt copy; unknown nodes are a usage error. */
export function applyAssignments(
  prompt: ApiPrompt,
  assignments: Array<{ nodeId: string; input: string; value: unknown }>,
): ApiPrompt {
  checkNodes(prompt, assignments);
  const out = structuredClone(prompt);
  for (const a of assignments) {
    const node = out[a.nodeId];
    if (node) node.inputs[a.input] = a.value;
  }
  return out;
}

/** Where an output goes under `outDir`; names that try to escape it are flattened. */
export function safeOutputPath(
  outDir: string,
  file: { filename: string; subfolder: string; type: string },
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

/** Milliseconds left until `deadline` (never below 1, so callers still get a bounded wait). */
export function remaining(deadline: number): number {
  return Math.max(1, deadline - Date.now());
}
