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
  /** Estimated work ahead of each waiting job, recomputed at most every ETA_CACHE_MS. */
  #pass: AheadPass | null = null;

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
   * One pass over the queue serves every job for ETA_CACHE_MS; a job that arrived since is placed by
   * its `position` (10,000 submissions in a burst would otherwise cost a pass each).
   */
  ahead(
    now: number,
    id: string,
    held: ReadonlyMap<string, LiveJob>,
    waitingIds: () => readonly string[],
    position: () => number | null,
  ): number | undefined {
    let pass = this.#pass;
    if (pass === null || now - pass.at >= ETA_CACHE_MS) {
      pass = this.#measure(now, held, waitingIds());
      this.#pass = pass;
    }
    const cached = pass.byId.get(id);
    if (cached !== undefined) return cached;
    const p = position();
    if (p === null) return undefined;
    const before = pass.cumulative[p - 1];
    if (before !== undefined) return before;
    // Behind every job of the pass: its total plus the average run of each job between.
    const fallback = this.#all;
    if (!pass.complete || fallback === null) return undefined;
    return pass.total + (p - 1 - pass.cumulative.length) * fallback;
  }

  /** One pass: the work ahead of each waiting job, in dispatch order, as far as it is known. */
  #measure(now: number, held: ReadonlyMap<string, LiveJob>, waiting: readonly string[]): AheadPass {
    const fallback = this.#all;
    // Per pass, each shape is looked up once and without refreshing its place in the LRU.
    const avgs = new Map<string, number | null>();
    const avgOf = (live: LiveJob | undefined): number | null => {
      if (!live) return fallback;
      const key = workflowKey(live);
      let avg = avgs.get(key);
      if (avg === undefined) {
        avg = this.#byShape.peek(key) ?? fallback;
        avgs.set(key, avg);
      }
      return avg;
    };
    let sum = 0;
    let known = fallback !== null;
    for (const live of held.values()) {
      if (!live.lease) continue;
      const avg = avgOf(live);
      const start = live.job.started_at ?? live.job.attempts.at(-1)?.started_at ?? now;
      if (avg === null) known = false;
      else sum += Math.max(0, start + avg - now);
    }
    const byId = new Map<string, number>();
    const cumulative: number[] = [];
    for (const waitingId of waiting) {
      if (!known) break;
      byId.set(waitingId, sum);
      cumulative.push(sum);
      const avg = avgOf(held.get(waitingId));
      if (avg === null) known = false;
      else sum += avg;
    }
    return { at: now, byId, cumulative, total: sum, complete: known };
  }
}

/** The work ahead of each waiting job as one pass over the queue found it. */
interface AheadPass {
  at: number;
  byId: Map<string, number>;
  /** By 0-based place in the queue at the time of the pass. */
  cumulative: number[];
  /** Work ahead of a job behind all of them (meaningful when `complete`). */
  total: number;
  /** True when every waiting job's run time was known. */
  complete: boolean;
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
