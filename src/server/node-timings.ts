// Per-node timings of jobs, recorded from the JobManager's raw run events while this gateway runs
// them (ComfyUI's history has no per-node times): when each node started and ended, per attempt,
// and which nodes were cached. Kept for the most recent jobs only (LRU), for the job detail view.
import { LRUCache } from 'lru-cache';
import type { JobManager, RunEvent } from '../jobs/index.ts';

/** One node's run inside one attempt. */
export interface NodeTiming {
  node_id: string;
  class_type: string | null;
  attempt: number;
  started_at: number;
  ended_at: number | null;
  cached: boolean;
}

/** Most nodes recorded per job (a prompt past this is cut, not grown without bound). */
const MAX_NODES = 1000;

/** Records node timings of the last `maxJobs` jobs. */
export class NodeTimings {
  #manager: JobManager;
  #clock: () => number;
  #jobs: LRUCache<string, NodeTiming[]>;
  #closed = false;

  constructor(options: { manager: JobManager; maxJobs?: number; clock?: () => number }) {
    this.#manager = options.manager;
    this.#clock = options.clock ?? Date.now;
    this.#jobs = new LRUCache({ max: options.maxJobs ?? 1000 });
    this.#manager.on('run-event', this.#onEvent);
    this.#manager.on('terminal', this.#onTerminal);
  }

  /** The timings of a job, oldest first (empty when this gateway did not watch it run). */
  get(jobId: string): NodeTiming[] {
    return (this.#jobs.get(jobId) ?? []).map((t) => ({ ...t }));
  }

  /** Stops listening. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#manager.off('run-event', this.#onEvent);
    this.#manager.off('terminal', this.#onTerminal);
  }

  #onEvent = (jobId: string, event: RunEvent): void => {
    if (event.type !== 'executing' && event.type !== 'executed' && event.type !== 'cached') return;
    const now = this.#clock();
    const list = this.#jobs.get(jobId) ?? [];
    if (!this.#jobs.has(jobId)) this.#jobs.set(jobId, list);
    const job = this.#manager.get(jobId);
    const attempt = job?.attempts.length ?? 1;
    const classOf = (nodeId: string) => job?.workflow[nodeId]?.class_type ?? null;
    const open = list.findLast((t) => t.ended_at === null);
    if (event.type === 'cached') {
      for (const nodeId of event.nodes) {
        if (list.length >= MAX_NODES) break;
        list.push({
          node_id: nodeId,
          class_type: classOf(nodeId),
          attempt,
          started_at: now,
          ended_at: now,
          cached: true,
        });
      }
      return;
    }
    if (event.type === 'executed') {
      if (open && open.node_id === event.nodeId) open.ended_at = now;
      return;
    }
    if (open && open.node_id === event.nodeId) return;
    if (open) open.ended_at = now;
    if (list.length >= MAX_NODES) return;
    list.push({
      node_id: event.nodeId,
      class_type: event.classType || classOf(event.nodeId),
      attempt,
      started_at: now,
      ended_at: null,
      cached: false,
    });
  };

  #onTerminal = (job: { id: string }): void => {
    const open = this.#jobs.get(job.id)?.findLast((t) => t.ended_at === null);
    if (open) open.ended_at = this.#clock();
  };
}
