// `comfy-gateway run <file.pipeline.yaml> --gateway URL`: runs a pipeline definition on a gateway.
// `--input name=./file` streams the file to the gateway's asset store and passes `asset:<id>`;
// `--set name=value` sets an input (JSON when valid). One progress line per step and iteration from
// the run's SSE stream; file outputs are downloaded to `--out`; Ctrl-C or the deadline cancels it.
import { mkdir, readFile, stat } from 'node:fs/promises';
import { basename, extname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { contentTypeFor } from '../comfy/index.ts';
import { GatewayApi, GatewayApiError } from './gateway-api.ts';
import { parseValue, RunUsageError, safeOutputPath } from './run-plan.ts';
import type { Reporter, RunOutcome } from './run-reporter.ts';
import { readSseJson } from './run-sse.ts';

/** True for a file the `run` command treats as a pipeline: `*.pipeline.yaml|yml|json`, or any YAML file. */
export function isPipelineFile(file: string): boolean {
  return /\.pipeline\.(ya?ml|json)$/i.test(file) || /\.ya?ml$/i.test(file);
}

/** A parsed pipeline run request. */
export interface PipelinePlan {
  path: string;
  definition: Record<string, unknown>;
  sets: Record<string, unknown>;
  files: Record<string, string>;
  outDir: string;
  timeoutMs: number;
}

/** Reads the definition and the `--set` / `--input` assignments; throws RunUsageError. */
export async function parsePipelinePlan(
  file: string,
  options: { set: string[]; input: string[]; out: string; timeout: string },
): Promise<PipelinePlan> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new RunUsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc =
      extname(file).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new RunUsageError(`${file} is not valid YAML/JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc) || !('steps' in doc))
    throw new RunUsageError(`${file} is not a pipeline (expected an object with steps)`);
  const timeout = Number(options.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0 || timeout * 1000 > 2 ** 31 - 1)
    throw new RunUsageError('--timeout must be a positive number of seconds (at most 2147483)');
  const split = (s: string, flag: string): [string, string] => {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new RunUsageError(`${flag} ${s}: expected <input>=<value>, e.g. min_width=512`);
    return [s.slice(0, eq), s.slice(eq + 1)];
  };
  const sets: Record<string, unknown> = {};
  for (const s of options.set) {
    const [name, value] = split(s, '--set');
    sets[name] = parseValue(value);
  }
  const files: Record<string, string> = {};
  for (const s of options.input) {
    const [name, value] = split(s, '--input');
    const path = resolve(value);
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile()) throw new RunUsageError(`--input ${s}: ${value} is not a readable file`);
    files[name] = path;
  }
  return {
    path: file,
    definition: doc as Record<string, unknown>,
    sets,
    files,
    outDir: resolve(options.out),
    timeoutMs: timeout * 1000,
  };
}

interface RunBody {
  id: string;
  status: string;
  steps?: Array<{ id: string; status: string; iterations_run?: number; stopped?: string }>;
  outputs?: Record<string, unknown> | null;
  warnings?: Array<{ output: string; message: string }>;
  error?: { code: string; message: string; job_error?: { details?: unknown } } | null;
  urls?: { events?: string; cancel?: string; self?: string };
  duration_ms?: number | null;
}

/** The run ended without success. */
export class PipelineRunError extends Error {
  readonly code: string;
  readonly run: RunBody;
  override readonly name = 'PipelineRunError';
  constructor(run: RunBody) {
    super(run.error ? `${run.error.code}: ${run.error.message}` : `run ${run.id} ended ${run.status}`);
    this.code = run.error?.code ?? `run_${run.status}`;
    this.run = run;
  }
}

const TERMINAL = new Set(['succeeded', 'failed', 'canceled']);

/** Runs a pipeline plan on a gateway. */
export class PipelineTarget {
  readonly #api: GatewayApi;

  constructor(gateway: string, apiKey: string | undefined) {
    this.#api = new GatewayApi(gateway, apiKey);
  }

  describe(): string {
    return `gateway ${this.#api.base}`;
  }

  async execute(
    plan: PipelinePlan,
    { reporter, signal }: { reporter: Reporter; signal: AbortSignal },
  ): Promise<RunOutcome> {
    const inputs: Record<string, unknown> = { ...plan.sets };
    for (const [name, path] of Object.entries(plan.files)) {
      inputs[name] = `asset:${await this.#api.uploadAsset(path, contentTypeFor(basename(path)), signal)}`;
      reporter.line(`uploaded ${basename(path)} for input ${name}`);
    }
    const created = await this.#api.json<RunBody>(
      'POST /v1/pipeline-runs',
      `${this.#api.base}/v1/pipeline-runs`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ pipeline: plan.definition, inputs }),
        signal,
      },
    );
    reporter.line(`run ${created.id} ${created.status}`);
    let run: RunBody;
    try {
      run = await this.#follow(created, reporter, signal);
    } catch (err) {
      if (signal.aborted) {
        reporter.done();
        await this.#api
          .json('POST cancel', `${this.#api.base}/v1/pipeline-runs/${created.id}/cancel`, {
            method: 'POST',
            signal: AbortSignal.timeout(10_000),
          })
          .then(
            (r) => reporter.line(`run ${created.id} cancel requested: ${(r as RunBody).status}`),
            (e: unknown) => reporter.line(`run ${created.id}: cancel failed (${(e as Error).message})`),
          );
      }
      throw err;
    }
    reporter.done();
    if (run.status !== 'succeeded') throw new PipelineRunError(run);
    const saved = await this.#download(run, plan.outDir, signal);
    const details = (run.steps ?? []).map(
      (s) =>
        `step ${s.id}: ${s.status}${s.iterations_run ? `, ${s.iterations_run} iteration(s)` : ''}${s.stopped ? ` (stopped: ${s.stopped})` : ''}`,
    );
    for (const [name, value] of Object.entries(run.outputs ?? {}))
      if (!hasFile(value)) details.push(`output ${name}: ${JSON.stringify(value)}`);
    for (const w of run.warnings ?? []) details.push(`output ${w.output}: null (${w.message})`);
    return { heading: `run ${run.id} succeeded`, details, saved };
  }

  /** Follows the run's events to its end, one line per step and iteration. */
  async #follow(run: RunBody, reporter: Reporter, signal: AbortSignal): Promise<RunBody> {
    const res = await fetch(`${this.#api.base}/v1/pipeline-runs/${run.id}/events`, {
      headers: { ...this.#api.headers, accept: 'text/event-stream' },
      signal,
    });
    if (res.status !== 200 || !res.body)
      throw new GatewayApiError('GET run events', res.status, await res.text());
    try {
      for await (const frame of readSseJson(res.body as AsyncIterable<Uint8Array>)) {
        const data = frame.data;
        if (frame.event === 'step') reporter.line(`step ${data.step}: ${data.status}`);
        else if (frame.event === 'iteration')
          reporter.line(
            `step ${data.step}, iteration ${data.n}: ${data.status}${data.job_id ? ` (job ${data.job_id})` : ''}`,
          );
        else if (frame.event === 'progress') {
          const p = (data.progress ?? {}) as Record<string, unknown>;
          if (typeof p.nodes_total === 'number') reporter.setNodeCount(p.nodes_total);
          if (typeof p.current_node === 'string')
            reporter.nodeStarted(
              p.current_node,
              String(p.current_node_class ?? '?'),
              p.nodes_done as number | undefined,
            );
        } else if (frame.event === 'status' && typeof data.status === 'string' && TERMINAL.has(data.status)) {
          return (
            (data.run as RunBody | undefined) ??
            this.#api.json<RunBody>('GET run', `${this.#api.base}/v1/pipeline-runs/${run.id}`, { signal })
          );
        }
      }
    } finally {
      await res.body.cancel().catch(() => {});
    }
    return this.#api.json<RunBody>('GET run', `${this.#api.base}/v1/pipeline-runs/${run.id}`, { signal });
  }

  /** Downloads every file among the run's outputs, named `<output>[-<n>]<ext>`. */
  async #download(run: RunBody, outDir: string, signal: AbortSignal): Promise<string[]> {
    const files: Array<{ name: string; url: string; filename: string }> = [];
    for (const [name, value] of Object.entries(run.outputs ?? {})) {
      const found = collectFiles(value);
      for (const [i, f] of found.entries())
        files.push({ name: found.length > 1 ? `${name}-${i + 1}` : name, url: f.url, filename: f.filename });
    }
    const saved: string[] = [];
    if (files.length === 0) return saved;
    await mkdir(outDir, { recursive: true });
    for (const f of files) {
      const path = safeOutputPath(outDir, {
        filename: `${f.name}${extname(f.filename)}`,
        subfolder: '',
        type: 'output',
      });
      await this.#api.download(f.filename, f.url, path, signal);
      saved.push(path);
    }
    return saved;
  }
}

interface FileLike {
  url: string;
  filename: string;
}

function isFile(v: unknown): v is FileLike {
  return (
    typeof v === 'object' &&
    v !== null &&
    (v as { kind?: unknown }).kind === 'file' &&
    typeof (v as { url?: unknown }).url === 'string'
  );
}

function collectFiles(value: unknown, depth = 0): FileLike[] {
  if (isFile(value)) return [value];
  if (depth > 8 || value === null || typeof value !== 'object') return [];
  return Object.values(value).flatMap((v) => collectFiles(v, depth + 1));
}

function hasFile(value: unknown): boolean {
  return collectFiles(value).length > 0;
}
