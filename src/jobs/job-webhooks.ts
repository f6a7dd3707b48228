// A job's webhooks: the terminal event (job.succeeded/failed/canceled) with its delivery kept on the
// job record (the outbox a restarted gateway resumes), job.progress for jobs that ask for it, and the
// in-flight deliveries shutdown waits for. The dispatcher (webhooks/) signs, retries and throttles.
import { isTerminal, type JobError, type JobRecord, type JobWebhookDelivery, type Progress } from './job.ts';
import type { LoggerLike, WebhookDispatcherLike } from './ports.ts';
import { requestHeaders } from './runner.ts';
import type { JobStore } from './store.ts';

/** Options of JobWebhooks. */
export interface JobWebhooksOptions {
  store: JobStore;
  dispatcher?: WebhookDispatcherLike | undefined;
  /** Default webhook for jobs that name none. */
  defaultUrl?: string | undefined;
  logger?: LoggerLike | undefined;
}

/** Sends and records the webhooks of the jobs a JobManager holds. */
export class JobWebhooks {
  readonly #o: JobWebhooksOptions;
  readonly #tasks = new Set<Promise<unknown>>();
  #storeClosed = false;

  constructor(options: JobWebhooksOptions) {
    this.#o = options;
  }

  /** Where the job's events go (its own URL, else the default); undefined when nothing is sent. */
  urlOf(job: JobRecord): string | undefined {
    if (!this.#o.dispatcher) return undefined;
    return job.request.webhook_url ?? this.#o.defaultUrl;
  }

  /** Throws when delivery to `url` would be refused (the dispatcher's SSRF guard). */
  validateUrl(url: string): void {
    this.#o.dispatcher?.validateUrl?.(url);
  }

  /** job.progress with the current snapshot, for a job that asked for it. */
  progress(job: JobRecord): void {
    const dispatcher = this.#o.dispatcher;
    const url = this.urlOf(job);
    if (!dispatcher || !url || !job.request.webhook_events?.includes('job.progress')) return;
    // The dispatcher throttles progress per job and URL and never retries it.
    this.#track(
      dispatcher
        .send(job.id, url, 'job.progress', webhookPayload(job), requestHeaders(job))
        .catch((err) => this.#o.logger?.warn({ err, job_id: job.id }, 'progress webhook failed')),
    );
  }

  /**
   * Sends the terminal event of `job` (as `view` shows it; default the job itself) and keeps its
   * delivery on the job: the pending record is the outbox entry a restarted gateway resumes;
   * attempts are shown on GET. Returns true when a delivery was started.
   */
  terminal(
    job: JobRecord,
    view: JobRecord = job,
    onUpdate?: (delivery: JobWebhookDelivery) => void,
  ): boolean {
    const url = this.urlOf(job);
    if (!url) return false;
    return this.#send(job, url, view, onUpdate);
  }

  /** Resumes the deliveries a previous run left pending (by default the store's whole outbox). */
  resume(jobs: JobRecord[] = this.#o.store.listPendingWebhooks?.() ?? []): void {
    if (jobs.length === 0) return;
    this.#o.logger?.info({ jobs: jobs.length }, 'resuming pending webhook deliveries');
    for (const job of jobs) {
      const url = job.request.webhook_url ?? this.#o.defaultUrl;
      for (const delivery of job.webhooks ?? []) {
        if (delivery.status !== 'pending') continue;
        if (!url) {
          this.#record(job, { ...delivery, status: 'skipped', error: 'no webhook URL is configured' });
          continue;
        }
        this.#send(job, url, job, undefined, delivery);
      }
    }
  }

  /** Waits up to `graceMs` for deliveries in flight; later updates are no longer written to the store. */
  async close(graceMs: number): Promise<void> {
    const tasks = [...this.#tasks];
    if (tasks.length > 0) {
      const grace = AbortSignal.timeout(graceMs);
      await new Promise<void>((resolve) => {
        grace.addEventListener('abort', () => resolve(), { once: true });
        void Promise.allSettled(tasks).then(() => resolve());
      });
    }
    this.#storeClosed = true;
  }

  #send(
    job: JobRecord,
    url: string,
    view: JobRecord,
    onUpdate?: (delivery: JobWebhookDelivery) => void,
    resume?: JobWebhookDelivery,
  ): boolean {
    const dispatcher = this.#o.dispatcher;
    if (!dispatcher) return false;
    const type = terminalEvent('job', view.status);
    // Tracked so shutdown waits for it; the dispatcher retries and never rejects.
    this.#track(
      dispatcher
        .send(job.id, url, resume ? (resume.event as typeof type) : type, webhookPayload(view), {
          ...requestHeaders(job),
          ...(resume ? { resume } : {}),
          onUpdate: (delivery) => {
            this.#record(job, delivery);
            onUpdate?.(delivery);
          },
        })
        .catch((err) => this.#o.logger?.error({ err, job_id: job.id }, 'webhook dispatch failed')),
    );
    return true;
  }

  #track(task: Promise<unknown>): void {
    this.#tasks.add(task);
    void task.finally(() => this.#tasks.delete(task));
  }

  /** Keeps a delivery's latest state on its job; a terminal job is written at once (outbox). */
  #record(job: JobRecord, update: JobWebhookDelivery): void {
    // The dispatcher's record also names the job; the job's own copy does not need to.
    const { job_id: _, ...delivery } = update as JobWebhookDelivery & { job_id?: string };
    const list = job.webhooks ?? [];
    job.webhooks = list;
    const index = list.findIndex((d) => d.id === delivery.id);
    if (index >= 0) list[index] = delivery;
    else list.push(delivery);
    if (list.length > MAX_JOB_DELIVERIES) list.splice(0, list.length - MAX_JOB_DELIVERIES);
    const pending = list.some((d) => d.status === 'pending');
    if (pending) job.webhook_pending = true;
    else delete job.webhook_pending;
    if (!isTerminal(job.status) || this.#storeClosed) return;
    try {
      this.#o.store.update(job);
    } catch (err) {
      this.#o.logger?.warn({ err, job_id: job.id }, 'could not record a webhook delivery');
    }
  }
}

/** The webhook event of a finished job or run: `<prefix>.succeeded`, `.canceled`, else `.failed`. */
export function terminalEvent<P extends string>(
  prefix: P,
  status: string,
): `${P}.succeeded` | `${P}.canceled` | `${P}.failed` {
  if (status === 'succeeded') return `${prefix}.succeeded`;
  if (status === 'canceled') return `${prefix}.canceled`;
  return `${prefix}.failed`;
}

/** Deliveries kept on one job (terminal events only; progress events are not recorded there). */
const MAX_JOB_DELIVERIES = 10;

/** The webhook body: the job's public fields (links are added by the HTTP layer's renderer elsewhere). */
function webhookPayload(job: JobRecord): Record<string, unknown> {
  return {
    id: job.id,
    status: job.status,
    created_at: new Date(job.created_at).toISOString(),
    started_at: job.started_at ? new Date(job.started_at).toISOString() : null,
    completed_at: job.completed_at ? new Date(job.completed_at).toISOString() : null,
    outputs: job.outputs,
    error: job.error as JobError | null,
    progress: job.progress as Progress | null,
    metadata: job.request.metadata ?? null,
  };
}
