// Live job events for SSE subscribers: one emitter, one channel per job id. Only live jobs have
// listeners, and a channel is dropped when its job ends, so nothing here grows with history.
import { EventEmitter } from 'node:events';
import type { JobOutput, JobStatus, Progress } from './job.ts';

/** One event on a job's stream (v2 §7 catalog). */
export type JobEvent =
  | { type: 'status'; data: { status: JobStatus; queue_position?: number | null; outputs?: JobOutput[] } }
  | { type: 'progress'; data: Progress }
  | { type: 'preview'; data: { node_id: string; content_type: string; data_base64: string } }
  | { type: 'output'; data: JobOutput };

/** The channel that carries every job's events (the dashboard's one stream watches it). */
const ALL = Symbol('all jobs');

/** A job id no job has: listenerCount of it tells whether listeners are counted beyond this process. */
const UNWATCHED = '';

/** Per-job event channels with scoped subscriptions. */
export class JobEvents {
  #emitter = new EventEmitter();
  /**
   * Per job, how many of its subscribers wait only for its end (`?wait`, /prompt_sync): the queue
   * positions sent every second are not built for the thousands of jobs only waited for. An entry
   * goes with the job's last such subscriber.
   */
  #endOnly = new Map<string, number>();
  /** Per job, its subscribers here that hear everything (streams): the jobs queue positions go to. */
  #streamed = new Map<string, number>();

  constructor() {
    // Many SSE clients may watch one job; MAX_SSE_STREAMS bounds them at the HTTP layer.
    this.#emitter.setMaxListeners(0);
  }

  /** Delivers an event to the job's current subscribers. */
  emit(jobId: string, event: JobEvent): void {
    this.#emitter.emit(jobId, event);
    this.#emitter.emit(ALL, jobId, event);
  }

  /** Subscribes to every job's events until `signal` aborts; returns the unsubscribe function too. */
  subscribeAll(listener: (jobId: string, event: JobEvent) => void, signal?: AbortSignal): () => void {
    const off = () => this.#emitter.off(ALL, listener);
    if (signal?.aborted) return off;
    this.#emitter.on(ALL, listener);
    signal?.addEventListener('abort', off, { once: true });
    return off;
  }

  /**
   * Subscribes until `signal` aborts; returns the unsubscribe function too. `endOnly`: the listener
   * only waits for the job's terminal status (it is not sent the periodic queue positions).
   */
  subscribe(
    jobId: string,
    listener: (event: JobEvent) => void,
    signal?: AbortSignal,
    options: { endOnly?: boolean } = {},
  ): () => void {
    const counts = options.endOnly ? this.#endOnly : this.#streamed;
    let subscribed = false;
    const off = () => {
      if (!subscribed) return;
      subscribed = false;
      this.#emitter.off(jobId, listener);
      const left = (counts.get(jobId) ?? 1) - 1;
      if (left > 0) counts.set(jobId, left);
      else counts.delete(jobId);
    };
    if (signal?.aborted) return off;
    this.#emitter.on(jobId, listener);
    subscribed = true;
    counts.set(jobId, (counts.get(jobId) ?? 0) + 1);
    signal?.addEventListener('abort', off, { once: true });
    return off;
  }

  /** Number of subscribers of one job (tests and metrics). */
  listenerCount(jobId: string): number {
    return this.#emitter.listenerCount(jobId);
  }

  /**
   * Whether anyone hears the job's queue positions: a subscriber that does not only wait for its
   * end, or, while it is waited for, the all-jobs channel (the dashboard).
   */
  hearsPositions(jobId: string): boolean {
    const endOnly = this.#endOnly.get(jobId) ?? 0;
    return this.listenerCount(jobId) > endOnly || (endOnly > 0 && this.#emitter.listenerCount(ALL) > 0);
  }

  /**
   * The jobs whose queue positions someone here hears, when that is all who hear them: null while
   * the all-jobs channel listens, or when listeners are counted beyond this process (a subclass
   * whose listenerCount says a job nobody subscribed to has one: the fleet's), so the caller asks
   * hearsPositions() of every waiting job instead.
   */
  positionListeners(): Iterable<string> | null {
    if (this.#emitter.listenerCount(ALL) > 0 || this.listenerCount(UNWATCHED) > 0) return null;
    return this.#streamed.keys();
  }

  /** Drops every subscriber. */
  close(): void {
    this.#emitter.removeAllListeners();
    this.#endOnly.clear();
    this.#streamed.clear();
  }
}
