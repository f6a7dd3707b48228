// The in-memory state of one job this process holds: the record, the attempt in progress, and the
// timers and throttles that go with it. Created on submit, adoption or recovery; dropped when the
// job ends. Shared by the manager (state machine), the publisher (events) and recovery.
import type { JobRecord } from './job.ts';
import type { LeaseLike, ModelProvisionLike, PrefetchedLike } from './ports.ts';
import type { ProgressTracker } from './progress.ts';

/** The latest preview image of a running job (SSE snapshot). */
export interface JobPreview {
  node_id: string;
  content_type: string;
  data_base64: string;
}

/** One job held by this process. */
export interface LiveJob {
  job: JobRecord;
  extraData: Record<string, unknown> | undefined;
  controller: AbortController | null;
  lease: LeaseLike | null;
  tracker: ProgressTracker | null;
  preview: JobPreview | null;
  lastProgressAt: number;
  progressTimer: NodeJS.Timeout | null;
  lastPreviewAt: number;
  persistTimer: NodeJS.Timeout | null;
  /** Aborts the input prefetch while it runs (cancel, shutdown). */
  prefetching: AbortController | null;
  /** Inputs fetched before the job took a slot; released when it ends. */
  prefetched: PrefetchedLike | null;
  /** Set while a retry waits out its backoff (the job is in no queue meanwhile). */
  retryTimer: NodeJS.Timeout | null;
  /** Fails a job still waiting at its `deadline_at`. */
  deadlineTimer: NodeJS.Timeout | null;
  /** Set while a failed job's report waits for its error webhook: ends the wait now (shutdown). */
  settle: (() => void) | null;
  /** Set while the job waits for its models to be downloaded. */
  provision: ModelProvisionLike | null;
}

/** A held job with nothing in progress yet. */
export function newLive(job: JobRecord, extraData?: Record<string, unknown>): LiveJob {
  return {
    job,
    extraData,
    controller: null,
    lease: null,
    tracker: null,
    preview: null,
    lastProgressAt: 0,
    progressTimer: null,
    lastPreviewAt: 0,
    persistTimer: null,
    prefetching: null,
    prefetched: null,
    retryTimer: null,
    deadlineTimer: null,
    settle: null,
    provision: null,
  };
}
