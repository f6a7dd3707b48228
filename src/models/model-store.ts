// Where download tasks and the model source map are kept: a small interface (SQLite by default,
// memory for tests and JOB_STORE=memory; a Redis one can implement the same for scale-out).
import type { DownloadTask } from './download-task.ts';

/** A known source of a model name: where to fetch it and into which folder. */
export interface ModelSource {
  url: string;
  directory: string;
  sha256?: string;
}

/** Persistence of download tasks and model sources. Calls are synchronous and cheap. */
export interface ModelStore {
  /** Inserts or replaces a task. */
  saveTask(task: DownloadTask): void;
  deleteTask(id: string): void;
  /** Every stored task, oldest first. */
  listTasks(): DownloadTask[];
  /** The whole source map (model name → source). */
  getSources(): Record<string, ModelSource>;
  /** Replaces the whole source map. */
  putSources(sources: Record<string, ModelSource>): void;
  close(): void;
}

/** A ModelStore in memory (lost on restart). */
export class MemoryModelStore implements ModelStore {
  #tasks = new Map<string, DownloadTask>();
  #sources: Record<string, ModelSource> = {};

  saveTask(task: DownloadTask): void {
    this.#tasks.set(task.id, structuredClone(task));
  }
  deleteTask(id: string): void {
    this.#tasks.delete(id);
  }
  listTasks(): DownloadTask[] {
    return [...this.#tasks.values()].map((t) => structuredClone(t));
  }
  getSources(): Record<string, ModelSource> {
    return structuredClone(this.#sources);
  }
  putSources(sources: Record<string, ModelSource>): void {
    this.#sources = structuredClone(sources);
  }
  close(): void {}
}
