// What watchers of a job hear: status changes (with queue_position while it waits), progress and
// preview at most every `throttleMs` per job (progress with a trailing edge, so the last snapshot
// before a pause is not lost), outputs, and queue positions refreshed once a second for jobs someone
// watches. Progress also goes to the job's webhook when it asked for job.progress.
import type { JobEvents } from './events.ts';
import { isTerminal, type JobOutput, type JobRecord } from './job.ts';
import type { JobWebhooks } from './job-webhooks.ts';
import type { LiveJob } from './live-job.ts';
import type { RunEvent } from './ports.ts';
import type { Scheduler } from './scheduler.ts';

/** Options of a JobPublisher. */
export interface JobPublisherOptions {
  events: JobEvents;
  scheduler: Pick<Scheduler, 'position' | 'waitingIds'>;
  webhooks: Pick<JobWebhooks, 'progress'>;
  clock: () => number;
  /** Minimum gap between progress/preview events of one job. */
  throttleMs: number;
}

/** Publishes the events of the jobs a JobManager holds on their channels. */
export class JobPublisher {
  readonly #o: JobPublisherOptions;
  readonly #events: JobEvents;
  #positionTimer: NodeJS.Timeout | null = null;
  /** Last queue_position sent to a watched waiting job (only jobs with SSE listeners). */
  #sentPositions = new Map<string, number>();

  constructor(options: JobPublisherOptions) {
    this.#o = options;
    this.#events = options.events;
  }

  /** Starts the periodic queue_position updates. */
  start(): void {
    this.#positionTimer ??= setInterval(() => this.#publishPositions(), POSITION_INTERVAL_MS);
    this.#positionTimer.unref();
  }

  /** Stops the periodic updates. */
  close(): void {
    if (this.#positionTimer) clearInterval(this.#positionTimer);
  }

  /** The job's status (and, when it ended, its outputs) to its watchers. */
  status(live: LiveJob, outputs?: JobOutput[]): void {
    const job = live.job;
    // Most jobs have no stream watching them; queue_position is a scan of the queue.
    if (this.#events.listenerCount(job.id) === 0) return;
    this.#events.emit(job.id, {
      type: 'status',
      data: {
        status: job.status,
        queue_position: job.status === 'queued' ? this.#o.scheduler.position(job.id) : null,
        ...(outputs ? { outputs } : {}),
      },
    });
  }

  /** Each output of a job that succeeded, to its watchers. */
  outputs(job: JobRecord): void {
    if (this.#events.listenerCount(job.id) === 0) return;
    for (const output of job.outputs) this.#events.emit(job.id, { type: 'output', data: output });
  }

  /** Keeps the latest preview (the SSE snapshot) and sends it unless one went out within the throttle. */
  preview(live: LiveJob, event: Extract<RunEvent, { type: 'preview' }>): void {
    const now = this.#o.clock();
    live.preview = {
      node_id: event.nodeId ?? '',
      content_type: event.mime,
      data_base64: event.data.toString('base64'),
    };
    if (now - live.lastPreviewAt >= this.#o.throttleMs) {
      live.lastPreviewAt = now;
      this.#events.emit(live.job.id, { type: 'preview', data: live.preview });
    }
  }

  /** The job's progress snapshot, now or at the end of the throttle gap. */
  progress(live: LiveJob): void {
    const now = this.#o.clock();
    const wait = live.lastProgressAt + this.#o.throttleMs - now;
    if (wait <= 0) {
      live.lastProgressAt = now;
      this.#publishProgress(live);
      return;
    }
    if (live.progressTimer) return;
    // Trailing edge, so the last snapshot before a pause is not lost.
    live.progressTimer = setTimeout(() => {
      live.progressTimer = null;
      if (isTerminal(live.job.status)) return;
      live.lastProgressAt = this.#o.clock();
      this.#publishProgress(live);
    }, wait);
    live.progressTimer.unref();
  }

  /** One progress snapshot to SSE watchers, and to the webhook when the job asked for job.progress. */
  #publishProgress(live: LiveJob): void {
    const job = live.job;
    if (!job.progress) return;
    this.#events.emit(job.id, { type: 'progress', data: job.progress });
    this.#o.webhooks.progress(job);
  }

  /**
   * v2: `status` events carry queue_position changes while queued. Positions move with every
   * dispatch, so watchers get them at most once per interval instead of on every change.
   */
  #publishPositions(): void {
    const seen = new Set<string>();
    const send = (id: string, position: number) => {
      seen.add(id);
      if (this.#sentPositions.get(id) === position) return;
      this.#sentPositions.set(id, position);
      this.#events.emit(id, { type: 'status', data: { status: 'queued', queue_position: position } });
    };
    // Usually the few streamed jobs, each placed by a binary search: a pass over 10,000 waiting jobs
    // (most of them only waited for) took ~20 ms of the event loop every second.
    const listened = this.#events.positionListeners();
    if (listened !== null) {
      for (const id of listened) {
        const position = this.#o.scheduler.position(id);
        if (position !== null) send(id, position);
      }
    } else {
      this.#o.scheduler.waitingIds().forEach((id, index) => {
        if (this.#events.hearsPositions(id)) send(id, index + 1);
      });
    }
    for (const id of this.#sentPositions.keys()) if (!seen.has(id)) this.#sentPositions.delete(id);
  }
}

/** How often watchers of waiting jobs hear about their new queue_position. */
const POSITION_INTERVAL_MS = 1000;
