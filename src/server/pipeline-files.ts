// Moves files between pipeline steps: an output of one step is streamed from the instance that
// produced it (ComfyUI /view) into the gateway's asset store, and the next step's job names it as
// `asset:<id>`, which the runner's InputResolver streams to whichever instance runs that job.
// Nothing is held in memory or turned into base64; the staged copy lives until the run ends.
import { Readable } from 'node:stream';
import type { AssetStore } from '../io/index.ts';
import type { JobManager, PoolLike } from '../jobs/index.ts';
import type { FileRef, FileStager } from '../pipelines/index.ts';

/** A FileStager over the asset store, the pool and the job manager. */
export function assetFileStager(options: {
  assets: AssetStore;
  pool: PoolLike;
  manager: JobManager;
  /** Lifetime of a staged copy if the run never ends (it is deleted when the run ends). */
  ttlSeconds: number;
}): FileStager {
  const { assets, pool, manager } = options;
  const ttl = Math.min(604_800, Math.max(60, Math.floor(options.ttlSeconds)));
  return {
    async stage(file: FileRef, { signal, runId }): Promise<string> {
      const job = await manager.fetch(file.job_id).catch(() => undefined);
      const source = job?.output_sources[file.index];
      if (!source)
        throw Object.assign(new Error(`output ${file.index} of job ${file.job_id} is not known`), {
          code: 'file_unavailable',
        });
      const client = pool.client(source.instanceId);
      if (!client)
        throw Object.assign(new Error(`the instance that produced ${source.filename} is gone`), {
          code: 'file_unavailable',
        });
      const res = await client.view(
        { filename: source.filename, subfolder: source.subfolder, type: source.type },
        { signal: AbortSignal.any([signal, AbortSignal.timeout(120_000)]) },
      );
      if (res.status !== 200) {
        (res.body as { cancel?: () => void; destroy?: () => void }).cancel?.();
        (res.body as { destroy?: () => void }).destroy?.();
        throw Object.assign(
          new Error(`${source.filename} is no longer on its instance (HTTP ${res.status})`),
          {
            code: 'file_unavailable',
          },
        );
      }
      const body =
        res.body instanceof Readable
          ? res.body
          : Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
      const { asset } = await assets.put(body, {
        contentType: res.contentType || file.content_type,
        expiresIn: ttl,
        tags: ['pipeline', `run:${runId}`],
        signal,
      });
      return `asset:${asset.id}`;
    },
    async release(refs: string[]): Promise<void> {
      for (const ref of refs) await assets.delete(ref.replace(/^asset:/, ''));
    },
  };
}
