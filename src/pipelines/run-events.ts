// Live events of pipeline runs for SSE subscribers: one channel per run id. Only runs in progress
// have listeners and channels end with their run, so nothing here grows with history.
import { EventEmitter } from 'node:events';
import type { Progress } from '../jobs/index.ts';
import type { IterationStatus, RunStatus, StepStatus } from './run.ts';

/** One event on a run's stream. */
export type RunEvent =
  | { type: 'status'; data: { status: RunStatus } }
  | { type: 'step'; data: { step: string; status: StepStatus; iterations: number } }
  | {
      type: 'iteration';
      data: { step: string; n: number; status: IterationStatus; job_id: string | null; error?: unknown };
    }
  | { type: 'progress'; data: { step: string; n: number; job_id: string; progress: Progress } };

/** Per-run event channels with scoped subscriptions. */
export class RunEvents {
  #emitter = new EventEmitter();

  constructor() {
    // MAX_SSE_STREAMS bounds subscribers at the HTTP layer.
    this.#emitter.setMaxListeners(0);
  }

  /** Delivers an event to the run's current subscribers. */
  emit(runId: string, event: RunEvent): void {
    this.#emitter.emit(runId, event);
  }

  /** Subscribes until `signal` aborts; returns the unsubscribe function too. */
  subscribe(runId: string, listener: (event: RunEvent) => void, signal?: AbortSignal): () => void {
    const off = () => this.#emitter.off(runId, listener);
    if (signal?.aborted) return off;
    this.#emitter.on(runId, listener);
    signal?.addEventListener('abort', off, { once: true });
    return off;
  }

  /** Subscribers of one run. */
  listenerCount(runId: string): number {
    return this.#emitter.listenerCount(runId);
  }

  /** Drops every subscriber. */
  close(): void {
    this.#emitter.removeAllListeners();
  }
}
