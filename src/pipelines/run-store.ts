// Storage of pipeline runs: the seam for other backends. SQLite (one process, the job store's
// database file) and memory implement it here; a Redis implementation for scale-out implements
// the same interface (a hash per run, a hash of iterations per run, a sorted set by creation).
// Writes may be grouped (committed together at the end of the event-loop turn); a write marked
// `durable` commits everything pending at once, synchronously: a run records a step's job id that
// way before the job can be committed itself, so after a crash it never misses a job it started.
// Anything else a crash loses is rebuilt on resume (finished jobs are re-read, not re-run).
import type { IterationRecord, PipelineRun, RunStatus } from './run.ts';

/** A page of a newest-first listing. */
export interface RunPage {
  runs: PipelineRun[];
  nextCursor: string | null;
}

/** Filters and paging of `list()`. */
export interface RunListQuery {
  statuses?: readonly RunStatus[];
  limit: number;
  cursor?: string | null;
}

/** Durable pipeline runs. Every method is synchronous; `close()` is idempotent. */
export interface PipelineRunStore {
  /** Inserts a new run, claiming `run.idempotency_key` in the same write; throws IdempotencyKeyReuseError. */
  insert(run: PipelineRun): void;
  /** Replaces a run's stored state (iterations are written apart); `durable` commits before returning. */
  update(run: PipelineRun, durable?: boolean): void;
  /** Inserts or replaces one iteration; `durable` commits it (and all pending writes) before returning. */
  putIteration(iteration: IterationRecord, durable?: boolean): void;
  get(id: string): PipelineRun | undefined;
  /** Every iteration of a run, by step then n. */
  iterations(runId: string): IterationRecord[];
  list(query: RunListQuery): RunPage;
  /** Runs that are not terminal (for restart), oldest first. */
  listUnfinished(): PipelineRun[];
  /** True when an Idempotency-Key is claimed by a run (and not expired). */
  hasIdempotencyKey(key: string, now: number): boolean;
  /** Deletes terminal runs past `expires_at` (and their iterations); returns runs removed. */
  deleteExpired(now: number): number;
  close(): void;
}

/** Cursors of run listings are the job store's (base64url of `created_at:id` of a page's last row). */
export { decodeCursor as decodeRunCursor, encodeCursor as encodeRunCursor } from '../jobs/index.ts';

/** Idempotency keys of runs are single-use for 24 h, as for jobs. */
export const RUN_IDEMPOTENCY_TTL_MS = 24 * 3_600_000;
