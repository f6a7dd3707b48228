// Builds the models feature from the Config: the download service (with io's SSRF guard as its
// URL guard, tokens bound to their hosts), its store, the source map, and the inventory of
// GET /v1/models. The gateway calls this once and registers modelRoutes with the result.
import { join } from 'node:path';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Config } from '../config.ts';
import { createSsrfGuard, type LookupFunction } from '../io/index.ts';
import type { PoolContract } from '../pool/index.ts';
import {
  type DownloadGuard,
  type HostToken,
  listModelFiles,
  MemoryModelStore,
  ModelDownloads,
  type ModelSource,
  type ModelStore,
  modelsInDefs,
  SqliteModelStore,
} from '../models/index.ts';
import { JobModels, type JobModelsPool } from './job-models.ts';
import type { ModelInventory, ModelRoutesOptions } from './models.ts';

/** The slice of the pool the models feature reads. */
export type ModelsPool = Pick<PoolContract, 'list' | 'nodeDefsFor'> & JobModelsPool;

/** The built feature. */
export interface ModelsFeature {
  downloads: ModelDownloads;
  store: ModelStore;
  routes: Omit<ModelRoutesOptions, 'maxStreams' | 'shutdownSignal' | 'keepaliveMs'>;
  /** The models step of job submission. */
  jobs: JobModels;
  close(): Promise<void>;
}

/** Host tokens from HF_TOKEN / CIVITAI_TOKEN. */
export function hostTokens(config: Pick<Config, 'hfToken' | 'civitaiToken'>): HostToken[] {
  const tokens: HostToken[] = [];
  if (config.hfToken)
    tokens.push({
      hosts: ['huggingface.co', 'hf.co'],
      headers: { authorization: `Bearer ${config.hfToken}` },
    });
  if (config.civitaiToken)
    tokens.push({ hosts: ['civitai.com'], headers: { authorization: `Bearer ${config.civitaiToken}` } });
  return tokens;
}

/** io's SSRF guard (with the input allow-list) as the downloads' URL guard. */
export function ssrfDownloadGuard(allowPrivate: readonly string[], lookup?: LookupFunction): DownloadGuard {
  const guard = createSsrfGuard({ allowPrivate: [...allowPrivate], ...(lookup ? { lookup } : {}) });
  return {
    check: async (url) => {
      await guard.checkUrl(url);
    },
    dispatcher: guard.createAgent({ connectTimeoutMs: 30_000, connections: 8 }),
  };
}

/** Creates (and starts) the models feature. */
export function createModelsFeature(
  config: Config,
  pool: ModelsPool,
  logger: Logger,
  options: { lookup?: LookupFunction } = {},
): ModelsFeature {
  const store: ModelStore =
    config.jobStore === 'sqlite'
      ? new SqliteModelStore({ path: join(config.dataDir, 'jobs.sqlite') })
      : new MemoryModelStore();
  const guard = ssrfDownloadGuard(config.allowPrivateInputUrls, options.lookup);
  const downloads = new ModelDownloads({
    modelsDir: config.modelsDir,
    store,
    guard,
    tokens: hostTokens(config),
    concurrency: config.modelDownloadConcurrency,
    maxBytes: config.modelDownloadMaxBytes,
    ttlMs: config.modelDownloadTtlMs,
    idleTimeoutMs: config.modelDownloadIdleTimeoutMs,
    logger: logger.child({ component: 'models' }),
  });
  downloads.start();
  const shutdown = new AbortController();
  // A model that landed shows up in the instances' loader choices: reload them, so waiting jobs
  // (also ones recovered after a restart, routed by their models) find an instance.
  downloads.on('finished', (task) => {
    if (task.status === 'completed') void pool.refreshCapabilities(shutdown.signal).catch(() => {});
  });
  const jobs = new JobModels({ pool, downloads, store, signal: shutdown.signal });
  const sources = {
    get: (): Record<string, ModelSource> => store.getSources(),
    put: (next: Record<string, ModelSource>) => store.putSources(next),
  };
  let closing: Promise<void> | null = null;
  return {
    downloads,
    store,
    routes: { downloads, sources, inventory: () => inventory(pool, downloads) },
    jobs,
    close() {
      closing ??= (async () => {
        shutdown.abort();
        await downloads.close();
        await guard.dispatcher.close().catch(() => {});
        store.close();
      })();
      return closing;
    },
  };
}

/** Per folder, each model: the instances listing it, and size/hash where the gateway knows them. */
async function inventory(pool: ModelsPool, downloads: ModelDownloads): Promise<ModelInventory> {
  type Entry = { name: string; instances: string[]; size?: number; sha256?: string };
  const folders = new Map<string, Map<string, Entry>>();
  const entry = (folder: string, name: string): Entry => {
    let byName = folders.get(folder);
    if (!byName) {
      byName = new Map();
      folders.set(folder, byName);
    }
    let e = byName.get(name);
    if (!e) {
      e = { name, instances: [] };
      byName.set(name, e);
    }
    return e;
  };
  for (const { id } of pool.list()) {
    let defs: Record<string, unknown>;
    try {
      defs = await pool.nodeDefsFor(id);
    } catch {
      continue; // down or unreachable: it lists nothing now
    }
    for (const [folder, names] of modelsInDefs(defs))
      for (const name of names) entry(folder, name).instances.push(id);
  }
  if (downloads.modelsDir) {
    const hashes = new Map<string, string>();
    for (const task of downloads.list())
      if (task.status === 'completed' && task.computed_sha256)
        hashes.set(`${task.directory}/${task.filename}`, task.computed_sha256);
    for (const file of await listModelFiles(downloads.modelsDir)) {
      const e = entry(file.folder, file.name);
      e.size = file.size;
      const hash = hashes.get(`${file.folder}/${file.name}`);
      if (hash) e.sha256 = hash;
    }
  }
  const out: ModelInventory = { folders: {} };
  for (const [folder, byName] of [...folders].sort(([a], [b]) => a.localeCompare(b))) {
    out.folders[folder] = [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
  }
  return out;
}

/** Download metrics: finished downloads by status, bytes written, durations, tasks by status now. */
export function registerModelMetrics(registry: Registry, downloads: ModelDownloads): () => void {
  const prefix = 'comfy_gateway_';
  const finished = new Counter({
    name: `${prefix}model_downloads_total`,
    help: 'Model downloads that ended, by final status',
    labelNames: ['status'],
    registers: [registry],
  });
  const bytes = new Counter({
    name: `${prefix}model_download_bytes_total`,
    help: 'Bytes of model files written to disk',
    registers: [registry],
  });
  const duration = new Histogram({
    name: `${prefix}model_download_duration_seconds`,
    help: 'Time from a download starting to its end, by final status',
    labelNames: ['status'],
    buckets: [1, 5, 15, 60, 300, 900, 1800, 3600, 7200],
    registers: [registry],
  });
  new Gauge({
    name: `${prefix}model_download_tasks`,
    help: 'Known model download tasks by status (finished ones until their TTL)',
    labelNames: ['status'],
    registers: [registry],
    collect() {
      this.reset();
      for (const task of downloads.list()) this.inc({ status: task.status });
    },
  });
  const onFinished = (task: { status: string }, ms: number) => {
    finished.inc({ status: task.status });
    if (ms > 0) duration.observe({ status: task.status }, ms / 1000);
  };
  const onBytes = (n: number) => bytes.inc(n);
  downloads.on('finished', onFinished);
  downloads.on('bytes', onBytes);
  return () => {
    downloads.off('finished', onFinished);
    downloads.off('bytes', onBytes);
  };
}
