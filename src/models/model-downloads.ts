// The download service: validates requests, joins identical ones (one task per target file),
// runs transfers with bounded concurrency, verifies, fsyncs and renames into place, persists
// every task, resumes unfinished tasks after a restart, and forgets finished tasks after a TTL.
// Every task failure is caught and recorded on the task: nothing here rejects unhandled.
import { randomUUID } from 'node:crypto';
import { EventEmitter, on } from 'node:events';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import pLimit, { type LimitFunction } from 'p-limit';
import type { Logger } from '../logger.ts';
import { type DownloadTask, isFinished, redactModelUrl } from './download-task.ts';
import {
  DownloadConflictError,
  DownloadFailedError,
  DownloadNotFoundError,
  InvalidDownloadError,
  ModelsDirUnsetError,
  ModelsError,
  ModelUrlForbiddenError,
  TooManyDownloadsError,
} from './errors.ts';
import { type DownloadGuard, type HostToken, transferFile } from './file-transfer.ts';
import { checkFilename, checkFolder, filenameFromUrl } from './folders.ts';
import type { ModelStore } from './model-store.ts';

/** The logger calls the download service makes. */
export type ModelsLogger = Pick<Logger, 'info' | 'warn' | 'error'>;

/** Settings of the download service. */
export interface ModelDownloadsOptions {
  /** Root of the models layout; downloads are refused without it. */
  modelsDir: string | undefined;
  store: ModelStore;
  guard: DownloadGuard;
  /** Credentials per host (HF_TOKEN, CIVITAI_TOKEN), never sent elsewhere. */
  tokens?: readonly HostToken[];
  concurrency: number;
  maxBytes: number;
  /** Finished tasks are forgotten this long after they end. */
  ttlMs: number;
  idleTimeoutMs: number;
  headersTimeoutMs?: number;
  maxResumes?: number;
  retryDelayMs?: number;
  /** Free disk kept beyond each file (default 256 MiB). */
  reserveBytes?: number;
  /** Most tasks known at once, finished ones included (default 1000). */
  maxTasks?: number;
  freeBytes?: (dir: string) => Promise<number>;
  logger?: ModelsLogger;
  clock?: () => number;
  newId?: () => string;
}

/** A download request (the POST body). */
export interface DownloadRequest {
  url: string;
  directory: string;
  filename?: string | undefined;
  sha256?: string | undefined;
}

/** Events of the download service. */
export interface ModelDownloadsEvents {
  /** A task changed (status, or progress at most a few times a second). */
  task: [DownloadTask];
  /** Bytes written since the last event (for metrics). */
  bytes: [number];
  /** A task ended; `durationMs` from its start (0 when it never started). */
  finished: [DownloadTask, number];
}

const PROGRESS_EVERY_MS = 250;
const SPEED_WINDOW_MS = 2000;

interface Running {
  controller: AbortController;
  lastEmit: number;
  sample: { at: number; bytes: number };
}

/** Why a running transfer was stopped. */
type StopReason = { kind: 'cancel' } | { kind: 'shutdown' };

/** The model download service. */
export class ModelDownloads extends EventEmitter<ModelDownloadsEvents> {
  readonly modelsDir: string | undefined;
  readonly #o: ModelDownloadsOptions;
  readonly #store: ModelStore;
  readonly #limit: LimitFunction;
  readonly #clock: () => number;
  readonly #newId: () => string;
  readonly #tasks = new Map<string, DownloadTask>();
  /** Unfinished task id by target path (`directory/filename`). */
  readonly #byTarget = new Map<string, string>();
  readonly #running = new Map<string, Running>();
  readonly #work = new Set<Promise<void>>();
  #sweepTimer: NodeJS.Timeout | null = null;
  #started = false;
  #closing: Promise<void> | null = null;

  constructor(options: ModelDownloadsOptions) {
    super();
    this.#o = options;
    this.modelsDir = options.modelsDir;
    this.#store = options.store;
    this.#limit = pLimit(options.concurrency);
    this.#clock = options.clock ?? Date.now;
    this.#newId = options.newId ?? randomUUID;
  }

  /** Loads stored tasks, resumes unfinished ones, and starts the TTL sweep. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    for (const task of this.#store.listTasks()) {
      this.#tasks.set(task.id, task);
      if (isFinished(task.status)) continue;
      if (!this.modelsDir) {
        this.#finish(task, 'failed', { code: 'models_dir_unset', message: 'MODELS_DIR is no longer set.' });
        continue;
      }
      this.#o.logger?.info({ task_id: task.id, url: redactModelUrl(task.url) }, 'resuming model download');
      task.status = 'queued';
      task.speed = null;
      this.#byTarget.set(targetKey(task), task.id);
      this.#save(task);
      this.#schedule(task);
    }
    this.sweep();
    const every = Math.max(50, Math.min(60_000, Math.floor(this.#o.ttlMs / 4)));
    this.#sweepTimer = setInterval(() => this.sweep(), every);
    this.#sweepTimer.unref();
  }

  /**
   * Starts a download, or joins the unfinished task for the same target and URL.
   * Throws ModelsError for requests that cannot be used.
   */
  async request(input: DownloadRequest): Promise<{ task: DownloadTask; joined: boolean }> {
    if (this.#closing) throw new ModelsError('shutting_down', 503, 'The gateway is shutting down.');
    if (!this.modelsDir) throw new ModelsDirUnsetError();
    const directory = checkFolder(input.directory);
    let url: URL;
    try {
      url = new URL(input.url);
    } catch {
      throw new InvalidDownloadError('invalid_url', 'url is not a valid URL.');
    }
    const filename = input.filename !== undefined ? checkFilename(input.filename) : filenameFromUrl(url);
    const sha256 = input.sha256?.toLowerCase() ?? null;
    if (sha256 !== null && !/^[0-9a-f]{64}$/.test(sha256))
      throw new InvalidDownloadError('invalid_sha256', 'sha256 must be 64 hex digits.');
    try {
      await this.#o.guard.check(url);
    } catch (err) {
      throw err instanceof ModelsError ? err : new ModelUrlForbiddenError((err as Error).message, err);
    }
    const key = `${directory}/${filename}`;
    const existing = this.#byTarget.get(key);
    const running = existing === undefined ? undefined : this.#tasks.get(existing);
    if (running && !isFinished(running.status)) {
      if (running.url !== url.href) throw new DownloadConflictError(key, running.id);
      if (sha256 !== null && running.sha256 !== null && running.sha256 !== sha256)
        throw new DownloadConflictError(key, running.id);
      return { task: running, joined: true };
    }
    const max = this.#o.maxTasks ?? 1000;
    if (this.#tasks.size >= max) {
      this.sweep();
      if (this.#tasks.size >= max) throw new TooManyDownloadsError(max);
    }
    const now = this.#clock();
    const task: DownloadTask = {
      id: this.#newId(),
      status: 'queued',
      url: url.href,
      directory,
      filename,
      sha256,
      computed_sha256: null,
      bytes: 0,
      total: null,
      speed: null,
      resumes: 0,
      error: null,
      created_at: now,
      updated_at: now,
      started_at: null,
      finished_at: null,
    };
    this.#tasks.set(task.id, task);
    this.#byTarget.set(key, task.id);
    this.#save(task);
    this.#emitTask(task);
    this.#schedule(task);
    return { task, joined: false };
  }

  /** The task, or undefined when unknown or past its TTL. */
  get(id: string): DownloadTask | undefined {
    return this.#tasks.get(id);
  }

  /** Like get() but throws DownloadNotFoundError. */
  require(id: string): DownloadTask {
    const task = this.#tasks.get(id);
    if (!task) throw new DownloadNotFoundError(id);
    return task;
  }

  /** Every known task, newest first. */
  list(): DownloadTask[] {
    return [...this.#tasks.values()].sort((a, b) => b.created_at - a.created_at);
  }

  /** Cancels a queued or running task (idempotent); its partial file is removed. */
  cancel(id: string): DownloadTask {
    const task = this.require(id);
    if (isFinished(task.status)) return task;
    const running = this.#running.get(id);
    if (running) {
      running.controller.abort({ kind: 'cancel' } satisfies StopReason);
    } else {
      // Still waiting for a slot: its turn will see the status and do nothing.
      this.#finish(task, 'canceled', null);
    }
    return task;
  }

  /** Resolves with the task once it has finished, or as it is when `signal` aborts. */
  async waitFor(id: string, signal: AbortSignal): Promise<DownloadTask> {
    const task = this.require(id);
    if (isFinished(task.status) || signal.aborted) return task;
    try {
      for await (const [t] of on(this, 'task', { signal })) {
        if ((t as DownloadTask).id === id && isFinished((t as DownloadTask).status)) break;
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    }
    return task;
  }

  /** Forgets finished tasks older than the TTL; returns how many went. */
  sweep(): number {
    const cutoff = this.#clock() - this.#o.ttlMs;
    let removed = 0;
    for (const task of [...this.#tasks.values()]) {
      if (!isFinished(task.status) || (task.finished_at ?? 0) > cutoff) continue;
      this.#tasks.delete(task.id);
      try {
        this.#store.deleteTask(task.id);
      } catch (err) {
        this.#o.logger?.error({ err, task_id: task.id }, 'could not delete a model download record');
      }
      removed++;
    }
    return removed;
  }

  /**
   * Stops the sweep and running transfers without finishing them: their records and `.part` files
   * stay, and the next start resumes them. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#sweepTimer) clearInterval(this.#sweepTimer);
      this.#limit.clearQueue();
      for (const running of this.#running.values())
        running.controller.abort({ kind: 'shutdown' } satisfies StopReason);
      await Promise.allSettled([...this.#work]);
      this.removeAllListeners();
    })();
    return this.#closing;
  }

  #schedule(task: DownloadTask): void {
    const work = this.#limit(() => this.#run(task)).catch((err: unknown) => {
      // #run records its own failures; this only guards against a bug escaping it.
      this.#o.logger?.error({ err, task_id: task.id }, 'model download crashed');
    });
    this.#work.add(work);
    void work.finally(() => this.#work.delete(work));
  }

  async #run(task: DownloadTask): Promise<void> {
    if (this.#closing || task.status !== 'queued') return;
    const controller = new AbortController();
    const running: Running = { controller, lastEmit: 0, sample: { at: this.#clock(), bytes: task.bytes } };
    this.#running.set(task.id, running);
    const target = join(this.modelsDir as string, task.directory, task.filename);
    const part = `${target}.${task.id}.part`;
    const startedAt = this.#clock();
    task.status = 'downloading';
    task.started_at ??= startedAt;
    this.#touch(task);
    this.#save(task);
    this.#emitTask(task);
    try {
      await mkdir(dirname(target), { recursive: true });
      if (await exists(target)) {
        await this.#adoptExisting(task, target, controller.signal);
        return;
      }
      const result = await transferFile({
        url: task.url,
        partPath: part,
        guard: this.#o.guard,
        tokens: this.#o.tokens ?? [],
        maxBytes: this.#o.maxBytes,
        headersTimeoutMs: this.#o.headersTimeoutMs ?? 30_000,
        idleTimeoutMs: this.#o.idleTimeoutMs,
        maxRedirects: 10,
        maxResumes: this.#o.maxResumes ?? 5,
        retryDelayMs: this.#o.retryDelayMs ?? 1000,
        reserveBytes: this.#o.reserveBytes ?? 256 * 1024 * 1024,
        signal: controller.signal,
        onProgress: (bytes, total) => this.#progress(task, running, bytes, total),
        onResume: (offset) => {
          task.resumes++;
          this.#o.logger?.warn({ task_id: task.id, offset }, 'model download connection dropped; resuming');
        },
        ...(this.#o.freeBytes ? { freeBytes: this.#o.freeBytes } : {}),
      });
      this.#progress(task, running, result.bytes, result.total, true);
      task.status = 'verifying';
      task.speed = null;
      task.computed_sha256 = result.sha256;
      this.#touch(task);
      this.#emitTask(task);
      if (task.sha256 !== null && task.sha256 !== result.sha256) {
        await unlink(part).catch(() => {});
        this.#finish(task, 'failed', {
          code: 'hash_mismatch',
          message: `SHA-256 mismatch: expected ${task.sha256}, got ${result.sha256}; the file was deleted.`,
        });
        return;
      }
      await rename(part, target);
      await syncDir(dirname(target));
      this.#finish(task, 'completed', null);
      this.#o.logger?.info(
        {
          task_id: task.id,
          file: `${task.directory}/${task.filename}`,
          bytes: task.bytes,
          resumes: task.resumes,
        },
        'model downloaded',
      );
    } catch (err) {
      const reason = controller.signal.aborted
        ? (controller.signal.reason as StopReason | undefined)
        : undefined;
      if (reason?.kind === 'shutdown') return; // record and .part stay: the next start resumes
      await unlink(part).catch(() => {});
      if (reason?.kind === 'cancel') {
        this.#finish(task, 'canceled', null);
        return;
      }
      const failure =
        err instanceof ModelsError
          ? err
          : new DownloadFailedError('internal', String((err as Error)?.message ?? err));
      this.#o.logger?.warn(
        { task_id: task.id, url: redactModelUrl(task.url), code: failure.code, message: failure.message },
        'model download failed',
      );
      this.#finish(task, 'failed', { code: failure.code, message: failure.message });
    } finally {
      this.#running.delete(task.id);
    }
  }

  /** The target exists already: verify it against the expected hash (if any) and complete. */
  async #adoptExisting(task: DownloadTask, target: string, signal: AbortSignal): Promise<void> {
    task.bytes = task.total = (await stat(target)).size;
    task.status = 'verifying';
    this.#touch(task);
    this.#emitTask(task);
    if (task.sha256 !== null) {
      const hash = createHash('sha256');
      await pipeline(createReadStream(target), hash, { signal });
      task.computed_sha256 = hash.digest('hex');
      if (task.computed_sha256 !== task.sha256) {
        this.#finish(task, 'failed', {
          code: 'hash_mismatch_existing',
          message: `${task.directory}/${task.filename} exists with another SHA-256 (${task.computed_sha256}); it was left as it is.`,
        });
        return;
      }
    }
    this.#finish(task, 'completed', null);
  }

  #progress(task: DownloadTask, running: Running, bytes: number, total: number | null, force = false): void {
    const delta = bytes - task.bytes;
    task.bytes = bytes;
    task.total = total;
    const now = this.#clock();
    if (now - running.sample.at >= SPEED_WINDOW_MS) {
      task.speed = Math.round(((bytes - running.sample.bytes) * 1000) / (now - running.sample.at));
      running.sample = { at: now, bytes };
    }
    if (delta > 0) this.emit('bytes', delta);
    if (!force && now - running.lastEmit < PROGRESS_EVERY_MS) return;
    running.lastEmit = now;
    this.#touch(task);
    this.#emitTask(task);
  }

  #finish(
    task: DownloadTask,
    status: 'completed' | 'failed' | 'canceled',
    error: DownloadTask['error'],
  ): void {
    if (isFinished(task.status)) return;
    const now = this.#clock();
    task.status = status;
    task.error = error;
    task.speed = null;
    task.finished_at = now;
    this.#touch(task);
    if (this.#byTarget.get(targetKey(task)) === task.id) this.#byTarget.delete(targetKey(task));
    this.#save(task);
    this.#emitTask(task);
    this.emit('finished', task, task.started_at === null ? 0 : now - task.started_at);
  }

  #touch(task: DownloadTask): void {
    task.updated_at = this.#clock();
  }

  #save(task: DownloadTask): void {
    try {
      this.#store.saveTask(task);
    } catch (err) {
      this.#o.logger?.error({ err, task_id: task.id }, 'could not persist a model download');
    }
  }

  #emitTask(task: DownloadTask): void {
    this.emit('task', task);
  }
}

function targetKey(task: DownloadTask): string {
  return `${task.directory}/${task.filename}`;
}

/** True when something is at `path`. */
function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** fsync a directory so a rename in it survives a crash (best effort where unsupported). */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => null);
  if (!fh) return;
  try {
    await fh.sync();
  } catch {
    // Some file systems refuse fsync on directories; the rename itself is still atomic.
  } finally {
    await fh.close();
  }
}
