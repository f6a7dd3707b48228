// Models for jobs: which model files a prompt loads (the loader inputs inspectPrompt finds), where
// each comes from (a UI workflow's `models` / node `properties.models`, the request's `models`,
// the stored source map), and what to do at submit: route to instances that list them all; when
// none lists one and its source is known and MODELS_DIR is set, download it while the job waits;
// otherwise refuse with 422 model_missing naming each missing model, its folder and any known URL.
import { z } from 'zod';
import { GatewayError } from '../errors.ts';
import type { ApiPrompt, ModelProvisionLike } from '../jobs/index.ts';
import type { PoolContract } from '../pool/index.ts';
import {
  folderOf,
  type ModelDownloads,
  ModelsError,
  type ModelSource,
  type ModelStore,
} from '../models/index.ts';
import { inspectPrompt, type NodeDefs } from '../workflow/index.ts';

/** Where one model comes from, as a workflow or request names it. */
export interface ModelHint {
  name: string;
  url?: string | undefined;
  directory?: string | undefined;
  sha256?: string | undefined;
}

/** A `models` entry of a job or template request. */
export const modelHintSchema = z
  .object({
    name: z.string().min(1).max(255),
    url: z
      .url({ protocol: /^https?$/, error: 'expected an http(s) URL' })
      .max(8192)
      .optional(),
    directory: z.string().min(1).max(64).optional(),
    sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'expected 64 hex digits')
      .optional(),
  })
  .strict();

/** The slice of the pool the check uses. */
export type JobModelsPool = Pick<PoolContract, 'nodeDefsFor' | 'missingModels' | 'refreshCapabilities'>;

/** What plan() decided for one job. */
export interface ModelPlan {
  /** Model files the job needs (routing: only instances listing all of them take it). */
  models: string[];
  /** Present when downloads must finish first. */
  provision?: ModelProvisionLike;
}

/** The models step of job submission. */
export interface JobModelsLike {
  plan(prompt: ApiPrompt, hints: readonly ModelHint[]): Promise<ModelPlan>;
}

const MAX_SOURCES = 10_000;

/** The `models` a UI workflow carries: top-level (templates) and each node's `properties.models`, subgraphs included. */
export function hintsFromWorkflow(workflow: unknown): ModelHint[] {
  const out: ModelHint[] = [];
  const take = (list: unknown) => {
    if (!Array.isArray(list)) return;
    for (const item of list.slice(0, 256)) {
      const parsed = modelHintSchema.safeParse(
        item && typeof item === 'object'
          ? {
              name: (item as Record<string, unknown>).name,
              url: (item as Record<string, unknown>).url,
              directory: (item as Record<string, unknown>).directory,
              ...(typeof (item as Record<string, unknown>).hash === 'string' &&
              (item as Record<string, unknown>).hash_type === 'sha256'
                ? { sha256: (item as Record<string, unknown>).hash }
                : {}),
            }
          : item,
      );
      if (parsed.success) out.push(parsed.data);
    }
  };
  const nodesOf = (graph: unknown) => {
    if (!graph || typeof graph !== 'object') return;
    const g = graph as { models?: unknown; nodes?: unknown };
    take(g.models);
    if (Array.isArray(g.nodes))
      for (const node of g.nodes)
        take((node as { properties?: { models?: unknown } } | null)?.properties?.models);
  };
  nodesOf(workflow);
  const subgraphs = (workflow as { definitions?: { subgraphs?: unknown } } | null)?.definitions?.subgraphs;
  if (Array.isArray(subgraphs)) for (const sg of subgraphs.slice(0, 256)) nodesOf(sg);
  return out;
}

/** Checks and provisions the models of submitted jobs. */
export class JobModels implements JobModelsLike {
  readonly #pool: JobModelsPool;
  readonly #downloads: ModelDownloads;
  readonly #store: ModelStore;
  readonly #signal: AbortSignal | undefined;

  constructor(options: {
    pool: JobModelsPool;
    downloads: ModelDownloads;
    store: ModelStore;
    signal?: AbortSignal;
  }) {
    this.#pool = options.pool;
    this.#downloads = options.downloads;
    this.#store = options.store;
    this.#signal = options.signal;
  }

  /** Records sources the request named, then decides: run, download first, or refuse (422). */
  async plan(prompt: ApiPrompt, hints: readonly ModelHint[]): Promise<ModelPlan> {
    if (hints.length > 0) this.#remember(hints);
    if (!namesModelFile(prompt)) return { models: [] };
    let defs: Record<string, unknown>;
    try {
      defs = await this.#pool.nodeDefsFor();
    } catch {
      return { models: [] }; // no instance answers: nothing to judge against now
    }
    const loads = inspectPrompt(prompt, defs as NodeDefs).models;
    const models = [...new Set(loads.map((m) => m.value))];
    if (models.length === 0) return { models };
    const missing = new Set(this.#pool.missingModels(models));
    if (missing.size === 0) return { models };

    const sources = this.#store.getSources();
    const needed = loads
      .filter((m) => missing.has(m.value))
      .filter((m, i, all) => all.findIndex((o) => o.value === m.value) === i)
      .map((m) => {
        const source: Partial<ModelSource> = sources[m.value] ?? {};
        return {
          name: m.value,
          folder: source.directory ?? folderOf(m.class_type, m.input) ?? null,
          url: source.url ?? null,
          sha256: source.sha256 ?? null,
          node_id: m.node_id,
          class_type: m.class_type,
          input: m.input,
        };
      });
    const unprovisionable = needed.filter((n) => !n.url || !n.folder);
    if (!this.#downloads.modelsDir || unprovisionable.length > 0) {
      const names = needed.map((n) => n.name).join(', ');
      throw new GatewayError(
        'model_missing',
        422,
        `No instance has ${names}${this.#downloads.modelsDir ? '' : ' (and MODELS_DIR is not set, so the gateway cannot download models)'}.`,
        {
          details: {
            missing: needed.map(({ name, folder, url, node_id, class_type, input }) => ({
              name,
              folder,
              url: url === null ? null : redact(url),
              node_id,
              class_type,
              input,
            })),
          },
        },
      );
    }
    const tasks = [];
    for (const n of needed) {
      try {
        const { task } = await this.#downloads.request({
          url: n.url as string,
          directory: n.folder as string,
          filename: n.name,
          ...(n.sha256 ? { sha256: n.sha256 } : {}),
        });
        tasks.push({ name: n.name, id: task.id });
      } catch (err) {
        if (err instanceof ModelsError)
          throw new GatewayError(err.code, err.statusCode, `Model ${n.name}: ${err.message}`, {
            details: { name: n.name, ...(err.details ?? {}) },
          });
        throw err;
      }
    }
    return { models, provision: this.#provision(tasks, models) };
  }

  /** Waits for the downloads, then for the instances to list the models. */
  #provision(tasks: Array<{ name: string; id: string }>, models: string[]): ModelProvisionLike {
    const downloads = this.#downloads;
    const signal = this.#signal ?? new AbortController().signal;
    const ready = (async () => {
      for (const t of tasks) {
        const task = await downloads.waitFor(t.id, signal);
        if (task.status !== 'completed') {
          throw new GatewayError(
            'model_download_failed',
            502,
            `Model ${t.name} could not be downloaded: ${task.error?.message ?? task.status}.`,
            { details: { name: t.name, task_id: t.id, error: task.error } },
          );
        }
      }
      await this.#pool.refreshCapabilities(signal);
      const still = this.#pool.missingModels(models);
      if (still.length > 0) {
        throw new GatewayError(
          'model_missing',
          502,
          `Downloaded, but no instance lists ${still.join(', ')}: do the instances read MODELS_DIR?`,
          { details: { missing: still } },
        );
      }
    })();
    ready.catch(() => {}); // the manager handles the outcome; this keeps an early failure handled
    return {
      ready,
      onProgress(listener) {
        const ids = new Set(tasks.map((t) => t.id));
        const onTask = (changed: { id: string }) => {
          if (!ids.has(changed.id)) return;
          let bytes = 0;
          let total = 0;
          let done = 0;
          for (const t of tasks) {
            const task = downloads.get(t.id);
            if (!task) continue;
            bytes += task.bytes;
            total += task.total ?? 0;
            if (task.status === 'completed') done++;
          }
          const pct = total > 0 ? Math.floor((bytes / total) * 100) : 0;
          listener(`provisioning models: ${pct}% (${done} of ${tasks.length} files)`);
        };
        downloads.on('task', onTask);
        return () => downloads.off('task', onTask);
      },
    };
  }

  /** Merges named sources into the stored map (bounded). */
  #remember(hints: readonly ModelHint[]): void {
    const sources = this.#store.getSources();
    let changed = false;
    for (const h of hints) {
      if (!h.url || !h.directory) continue;
      const next: ModelSource = {
        url: h.url,
        directory: h.directory,
        ...(h.sha256 ? { sha256: h.sha256.toLowerCase() } : {}),
      };
      const prev = sources[h.name];
      if (prev && prev.url === next.url && prev.directory === next.directory && prev.sha256 === next.sha256)
        continue;
      if (!prev && Object.keys(sources).length >= MAX_SOURCES) continue;
      sources[h.name] = next;
      changed = true;
    }
    if (changed) this.#store.putSources(sources);
  }
}

const MODEL_FILE = /\.(safetensors|sft|ckpt|pt|pth|bin|gguf|onnx|pkl|yaml)$/i;

/** Cheap pre-check: does any literal input look like a model file? (Most prompts: no.) */
function namesModelFile(prompt: ApiPrompt): boolean {
  for (const node of Object.values(prompt)) {
    for (const value of Object.values(node?.inputs ?? {})) {
      if (typeof value === 'string' && MODEL_FILE.test(value)) return true;
    }
  }
  return false;
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search === '' ? '' : '?…'}`;
  } catch {
    return '<invalid url>';
  }
}
