// Moves files between pipeline steps: an output of one step is streamed from the instance that
// produced it (ComfyUI /view) into the gateway's asset store, and the next step's job names it as
// `asset:<id>`, which the runner's InputResolver streams to whichever instance runs that job.
// Nothing is held in memory or turned into base64; the staged copy lives until the run ends.
import { Readable } from 'node:stream';
import { GatewayError } from '../errors.ts';
import type { AssetStore } from '../io/index.ts';
import type { JobManager, PoolLike } from '../jobs/index.ts';
import type { FileRef, FileStager } from '../pipelines/index.ts';

/** A step's input file can no longer be read from the instance that produced it. */
class FileUnavailableError extends GatewayError {
  constructor(message: string) {
    super('file_unavailable', 502, message);
  }
}

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
      if (!source) throw new FileUnavailableError(`output ${file.index} of job ${file.job_id} is not known`);
      const client = pool.client(source.instanceId);
      if (!client) throw new FileUnavailableError(`the instance that produced ${source.filename} is gone`);
      const res = await client.view(
        { filename: source.filename, subfolder: source.subfolder, type: source.type },
        { signal: AbortSignal.any([signal, AbortSignal.timeout(120_000)]) },
      );
      if (res.status !== 200) {
        (res.body as { cancel?: () => void; destroy?: () => void }).cancel?.();
        (res.body as { destroy?: () => void }).destroy?.();
        throw new FileUnavailableError(
          `${source.filename} is no longer on its instance (HTTP ${res.status})`,
        );
      }
      const body = res.body instanceof Readable ? res.body : Readable.from(res.body);
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

const BASE64_DATA_URI = /^data:([\w.+-]+\/[\w.+-]+)?(?:;[\w.+-]+=[\w.+-]+)*;base64,/i;

/**
 * Image inputs given as base64 data URIs are stored once as assets when the run is created, so the
 * jobs of the run name `asset:<id>` instead of each carrying (and storing) a copy of the data URI.
 * Returns the inputs to run with and the asset references to free when the run ends.
 */
export async function stageDataUriInputs(
  assets: AssetStore,
  inputs: Record<string, unknown>,
  imageInputs: string[],
  ttlSeconds: number,
): Promise<{ inputs: Record<string, unknown>; staged: string[] }> {
  const out = { ...inputs };
  const staged: string[] = [];
  const ttl = Math.min(604_800, Math.max(60, Math.floor(ttlSeconds)));
  try {
    for (const name of imageInputs) {
      const value = out[name];
      if (typeof value !== 'string') continue;
      const match = BASE64_DATA_URI.exec(value);
      if (!match) continue;
      const bytes = Buffer.from(value.slice(match[0].length).replace(/\s+/g, ''), 'base64');
      if (bytes.length === 0) continue;
      const { asset } = await assets.put(Readable.from([bytes]), {
        ...(match[1] ? { contentType: match[1] } : {}),
        expiresIn: ttl,
        tags: ['pipeline', 'input'],
      });
      out[name] = `asset:${asset.id}`;
      staged.push(out[name] as string);
    }
  } catch (err) {
    for (const ref of staged) await assets.delete(ref.replace(/^asset:/, '')).catch(() => {});
    throw err;
  }
  return { inputs: out, staged };
}
