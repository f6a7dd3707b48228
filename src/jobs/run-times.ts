// Completion estimates: a moving average of recent run times per workflow shape (node ids and
// classes, not values: runs of one workflow or template share it) and over every workflow, and the
// estimated work queued ahead of a waiting job. Bounded: an LRU of shapes, one cached pass of the queue.
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { LiveJob } from './live-job.ts';

/** Recent run times of the jobs a JobManager ran. */
export class RunTimes {
  /** Moving average of execution time per workflow shape (bounded). */
  #byShape = new LRUCache<string, number>({ max: 2000 });
  /** Moving average over every workflow: the fallback for jobs ahead of unknown shape. */
  #all: number | null = null;
  /** Cumulative estimated work ahead of each waiting job, recomputed at most every ETA_CACHE_MS. */
  #aheadCache: { at: number; ahead: Map<string, number> | null } = { at: -Infinity, ahead: null };

  /** The average run time (ms) of the job's workflow shape, or null when none ran yet. */
  of(live: LiveJob): number | null {
    return this.#byShape.get(workflowKey(live)) ?? null;
  }

  /** Adds a finished run to the averages. */
  record(live: LiveJob, ms: number): void {
    const key = workflowKey(live);
    const prev = this.#byShape.get(key);
    this.#byShape.set(key, prev === undefined ? ms : prev + RUN_TIME_SMOOTHING * (ms - prev));
    const all = this.#all;
    this.#all = all === null ? ms : all + RUN_TIME_SMOOTHING * (ms - all);
  }

  /**
   * Estimated work (ms) ahead of the waiting job `id`: the remainder of the running jobs among `held`
   * plus the jobs queued before it (`waitingIds`, in dispatch order); undefined when unknown.
   */
  ahead(
    now: number,
    id: string,
    held: ReadonlyMap<string, LiveJob>,
    waitingIds: () => readonly string[],
  ): number | undefined {
    const cache = this.#aheadCache;
    if (cache.ahead?.has(id) && now - cache.at < ETA_CACHE_MS) return cache.ahead.get(id);
    const ahead = new Map<string, number>();
    const fallback = this.#all;
    let sum = 0;
    let known = fallback !== null;
    for (const live of held.values()) {
      if (!live.lease) continue;
      const avg = this.of(live) ?? fallback;
      const start = live.job.started_at ?? live.job.attempts.at(-1)?.started_at ?? now;
      if (avg === null) known = false;
      else sum += Math.max(0, start + avg - now);
    }
    for (const waiting of waitingIds()) {
      if (!known) break;
      ahead.set(waiting, sum);
      const live = held.get(waiting);
      const avg = live ? (this.of(live) ?? fallback) : fallback;
      if (avg === null) known = false;
      else sum += avg;
    }
    this.#aheadCache = { at: now, ahead };
    return ahead.get(id);
  }
}

/** Weight of the newest run in the moving average of run times. */
const RUN_TIME_SMOOTHING = 0.3;

/** How long the queue's work-ahead estimate is reused (listing many queued jobs costs one pass). */
const ETA_CACHE_MS = 250;

const workflowKeys = new WeakMap<LiveJob, string>();

/** The workflow's shape (node ids and classes, not values): runs of one workflow or template share it. */
function workflowKey(live: LiveJob): string {
  let key = workflowKeys.get(live);
  if (key === undefined) {
    const shape = Object.entries(live.job.workflow)
      .map(([id, node]) => `${id}:${node.class_type}`)
      .sort()
      .join('|');
    key = createHash('sha1').update(shape).digest('base64url');
    workflowKeys.set(live, key);
  }
  return key;
}
