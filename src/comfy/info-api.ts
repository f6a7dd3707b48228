// ComfyClient's server-information endpoints: node definitions (/object_info, cached), system
// stats, feature flags, models, embeddings, /free, and the v0.6+ /api/jobs listing.
import type { ApiCalls } from './api-calls.ts';
import type { ObjectInfoCache } from './object-info-cache.ts';
import type { CallOptions, ComfyJob, JobsPage, JobsQuery, NodeDef, SystemStats } from './types.ts';

/** Read-mostly information about one ComfyUI server. */
export class InfoApi {
  readonly #calls: ApiCalls;
  readonly #objectInfoCache: ObjectInfoCache | undefined;
  #objectInfo: Promise<Record<string, NodeDef>> | undefined;

  constructor(calls: ApiCalls, objectInfoCache?: ObjectInfoCache) {
    this.#calls = calls;
    this.#objectInfoCache = objectInfoCache;
  }

  /** Every node definition (cached after the first call; `refresh` reloads; shared through the options' objectInfoCache). */
  getObjectInfo(options: CallOptions & { refresh?: boolean } = {}): Promise<Record<string, NodeDef>> {
    if (options.refresh || !this.#objectInfo) {
      const cache = this.#objectInfoCache;
      const loading = this.#calls.getJson<Record<string, NodeDef>>(
        '/object_info',
        options,
        undefined,
        cache ? (text) => cache.parse(text) : undefined,
      );
      this.#objectInfo = loading;
      // A failed load is forgotten so the next call retries instead of replaying the failure.
      loading.catch(() => {
        if (this.#objectInfo === loading) this.#objectInfo = undefined;
      });
    }
    return this.#objectInfo;
  }

  /** One node definition, or undefined when the class is not installed. */
  async getNodeInfo(classType: string, options: CallOptions = {}): Promise<NodeDef | undefined> {
    if (this.#objectInfo) {
      const all = await this.#objectInfo.catch(() => undefined);
      if (all) return all[classType];
    }
    const body = await this.#calls.getJson<Record<string, NodeDef>>(
      `/object_info/${encodeURIComponent(classType)}`,
      options,
    );
    return body?.[classType];
  }

  /** GET /system_stats: versions, RAM, devices (a cheap health probe). */
  getSystemStats(options: CallOptions = {}): Promise<SystemStats> {
    return this.#calls.getJson<SystemStats>('/system_stats', options);
  }

  /** GET /features: server feature flags; `{}` on servers older than v0.3.45. */
  async getFeatures(options: CallOptions = {}): Promise<Record<string, unknown>> {
    return (await this.#calls.getOptionalJson<Record<string, unknown>>('/features', options)) ?? {};
  }

  /** Model folders, or the files in one folder (undefined for an unknown folder). */
  async getModels(folder?: string, options: CallOptions = {}): Promise<string[] | undefined> {
    const path = folder === undefined ? '/models' : `/models/${encodeURIComponent(folder)}`;
    return this.#calls.getOptionalJson<string[]>(path, options);
  }

  /** Embedding names. */
  getEmbeddings(options: CallOptions = {}): Promise<string[]> {
    return this.#calls.getJson<string[]>('/embeddings', options);
  }

  /** Asks the server to unload models and/or free memory (applied after the running prompt). */
  async freeMemory(
    options: CallOptions & { unloadModels?: boolean; freeMemory?: boolean } = {},
  ): Promise<void> {
    await this.#calls.post(
      '/free',
      { unload_models: options.unloadModels ?? true, free_memory: options.freeMemory ?? true },
      options,
    );
  }

  /** GET /api/jobs (ComfyUI v0.6+); undefined when the server has no jobs API. */
  async getJobs(query: JobsQuery = {}, options: CallOptions = {}): Promise<JobsPage | undefined> {
    const status = Array.isArray(query.status) ? query.status.join(',') : query.status;
    return this.#calls.getOptionalJson<JobsPage>('/api/jobs', options, {
      status,
      workflow_id: query.workflowId,
      sort_by: query.sortBy,
      sort_order: query.sortOrder,
      limit: query.limit,
      offset: query.offset,
    });
  }

  /** GET /api/jobs/{id}; undefined when unknown (or the server has no jobs API). */
  getJob(id: string, options: CallOptions = {}): Promise<ComfyJob | undefined> {
    return this.#calls.getOptionalJson<ComfyJob>(`/api/jobs/${encodeURIComponent(id)}`, options);
  }
}
