// The job service: creates durable jobs, owns every live job's state, applies attempt outcomes,
// re-attaches or re-queues unfinished jobs after a restart, expires old jobs, and publishes events.
// The HTTP layer talks only to this class.
import { createHash, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { LRUCache } from 'lru-cache';
import {
  GatewayError,
  JobNotFoundError,
  NoInstanceAvailableError,
  QueueFullError,
  ShuttingDownError,
} from './errors.ts';
import { JobEvents } from './events.ts';
import {
  isTerminal,
  type JobError,
  type JobOutput,
  type JobRecord,
  type JobRequest,
  type JobStatus,
  type JobWebhookDelivery,
  newJob,
  type Progress,
  recordAttempt,
  transition,
} from './job.ts';
import type {
  ApiPrompt,
  InputResolverLike,
  LeaseLike,
  ModelProvisionLike,
  LoggerLike,
  OutputDeliveryLike,
  PrefetchedLike,
  PoolLike,
  RunEvent,
  WebhookDispatcherLike,
} from './ports.ts';
import { ProgressTracker } from './progress.ts';
import {
  type AbortReason,
  type AttemptOutcome,
  needsInputResolution,
  Runner,
  requestHeaders,
} from './runner.ts';
import { type QueueEntry, Scheduler } from './scheduler.ts';
import type { JobPage, JobStore, ListQuery } from './store.ts';

/** Options of a JobManager. */
export interface JobManagerOptions {
  store: JobStore;
  pool: PoolLike;
  maxQueue: number;
  maxAttempts: number;
  /** Attempts whose instance went down mid-execution before the job fails job_suspected_poison (default 2). */
  maxSuspectAttempts?: number;
  jobTimeoutMs: number;
  retentionMs: number;
  inputResolver?: InputResolverLike;
  outputDelivery?: OutputDeliveryLike;
  webhooks?: WebhookDispatcherLike;
  /** Default webhook for jobs that name none. */
  webhookUrl?: string;
  /** Base for links handed to OutputDelivery ('' = host-relative). */
  linkBaseUrl?: string;
  logger?: LoggerLike;
  /** Injectable for tests. */
  clock?: () => number;
  newId?: () => string;
  /** Minimum gap between progress/preview events of one job (v2: about 2 per second). */
  eventThrottleMs?: number;
  /** Delay before a non-essential state (running, progress) is persisted; a terminal write supersedes it. */
  lazyPersistMs?: number;
  /** Event channels (fleet mode passes one that fans out over Redis). */
  events?: JobEvents;
  /**
   * First delay before a job whose attempt failed on its instance is queued again (default 1000 ms);
   * it doubles per attempt up to `retryBackoffMaxMs` (default 30 s), with jitter (half to all of it).
   */
  retryBackoffMs?: number;
  retryBackoffMaxMs?: number;
  /**
   * How long a failed job's report waits for the first attempt of its error webhook (default 5000 ms;
   * 0 = report at once): GET, ?wait and SSE show it failed once the receiver had its chance.
   */
  webhookHoldMs?: number;
  /** Retry-After seconds of a sync call refused with no_instance_available (default 5). */
  noInstanceRetryAfterS?: number;
  /** Injectable for tests (jitter). */
  random?: () => number;
}

/** Why a queued job waits (null when it does not). */
export type WaitingReason =
  | 'no_instance_available'
  | 'instances_busy'
  | 'retry_backoff'
  | 'queued_on_instance'
  | 'provisioning_models';

/** Time-dependent fields of a job, derived when it is read. */
export interface LiveInfo {
  waiting_reason: WaitingReason | null;
  /** Estimate (epoch ms) from recent run times of the same workflow and the work ahead; null when unknown. */
  estimated_completion_at: number | null;
  /** Execution time so far while running, else the recorded one. */
  execution_ms: number | null;
}

/** What a caller submits (already validated and converted to API format). */
export interface SubmitInput {
  workflow: ApiPrompt;
  priority?: number;
  idempotencyKey?: string | null;
  request?: JobRequest;
  /** ComfyUI extra_data for this prompt; never persisted. */
  extraData?: Record<string, unknown>;
  /** A caller waits for the result: refuse at once (503) when no healthy instance can run it now. */
  sync?: boolean;
  /** Models to download first: the job waits queued (provisioning models) until they are there. */
  provision?: ModelProvisionLike;
}

interface LiveJob {
  job: JobRecord;
  extraData: Record<string, unknown> | undefined;
  controller: AbortController | null;
  lease: LeaseLike | null;
  tracker: ProgressTracker | null;
  preview: { node_id: string; content_type: string; data_base64: string } | null;
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

/** Events: 'started' (job) and 'terminal' (job) for metrics; 'run-event' (jobId, RunEvent) raw run events. */
export class JobManager extends EventEmitter {
  readonly events: JobEvents;
  #o: Required<Pick<JobManagerOptions, 'maxQueue' | 'maxAttempts' | 'jobTimeoutMs' | 'retentionMs'>> &
    JobManagerOptions;
  #store: JobStore;
  #pool: PoolLike;
  #clock: () => number;
  #newId: () => string;
  #throttleMs: number;
  #lazyMs: number;
  #live = new Map<string, LiveJob>();
  /** Recently finished jobs, newest last: sync waiters and early polls read them without the store. */
  #recent = new Map<string, JobRecord>();
  #scheduler: Scheduler;
  #runner: Runner;
  #webhookTasks = new Set<Promise<unknown>>();
  #retentionTimer: NodeJS.Timeout | null = null;
  #positionTimer: NodeJS.Timeout | null = null;
  /** Last queue_position sent to a watched waiting job (only jobs with SSE listeners). */
  #sentPositions = new Map<string, number>();
  #started = false;
  #closing: Promise<void> | null = null;
  #storeClosed = false;
  #retryBackoffMs: number;
  #retryBackoffMaxMs: number;
  #webhookHoldMs: number;
  #random: () => number;
  /** Moving average of execution time per workflow shape (bounded). */
  #runTimes = new LRUCache<string, number>({ max: 2000 });
  /** Moving average over every workflow: the fallback for jobs ahead of unknown shape. */
  #runTimeAll: number | null = null;
  /** Cumulative estimated work ahead of each waiting job, recomputed at most every ETA_CACHE_MS. */
  #aheadCache: { at: number; ahead: Map<string, number> | null } = { at: -Infinity, ahead: null };

  constructor(options: JobManagerOptions) {
    super();
    this.events = options.events ?? new JobEvents();
    this.#o = options;
    this.#store = options.store;
    this.#pool = options.pool;
    this.#clock = options.clock ?? Date.now;
    this.#newId = options.newId ?? randomUUID;
    this.#throttleMs = options.eventThrottleMs ?? 500;
    this.#lazyMs = options.lazyPersistMs ?? 1000;
    this.#retryBackoffMs = options.retryBackoffMs ?? 1000;
    this.#retryBackoffMaxMs = options.retryBackoffMaxMs ?? 30_000;
    this.#webhookHoldMs = options.webhookHoldMs ?? 5000;
    this.#random = options.random ?? Math.random;
    this.#scheduler = new Scheduler({ pool: this.#pool, dispatch: (e, l) => this.#dispatch(e, l) });
    this.#runner = new Runner({
      nodeDefsFor: (id) => this.#pool.nodeDefsFor(id),
      ...(options.inputResolver ? { inputResolver: options.inputResolver } : {}),
      ...(options.outputDelivery ? { outputDelivery: options.outputDelivery } : {}),
      linkBaseUrl: options.linkBaseUrl ?? '',
      ...(options.logger ? { logger: options.logger } : {}),
    });
  }

  /** Jobs waiting for an instance. */
  get queued(): number {
    return this.#scheduler.size;
  }

  /** Jobs holding an instance slot. */
  get inFlight(): number {
    let n = 0;
    for (const live of this.#live.values()) if (live.lease) n++;
    return n;
  }

  /** Store write count (benchmarks). */
  get storeWrites(): number {
    return this.#store.writes;
  }

  /** Store transactions (group commits) so far, where the store reports them. */
  get storeCommits(): number | null {
    return (this.#store as { commits?: number }).commits ?? null;
  }

  /** Recovers unfinished jobs, then starts dispatching and the retention sweep. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await this.#recover();
    this.#resumeWebhooks();
    this.#scheduler.start();
    const sweepMs = Math.min(60_000, Math.max(1000, Math.floor(this.#o.retentionMs / 10)));
    this.#retentionTimer = setInterval(() => this.sweep(), sweepMs);
    this.#retentionTimer.unref();
    this.#positionTimer = setInterval(() => this.#publishPositions(), POSITION_INTERVAL_MS);
    this.#positionTimer.unref();
  }

  /** Deletes jobs past retention; returns how many went. */
  sweep(): number {
    try {
      return this.#store.deleteExpired(this.#clock());
    } catch (err) {
      this.#o.logger?.error({ err }, 'retention sweep failed');
      return 0;
    }
  }

  /** Creates and queues a job, committed by the next group commit (create() waits for it). Throws QueueFullError / IdempotencyKeyReuseError. */
  submit(input: SubmitInput): JobRecord {
    if (this.#closing) throw new ShuttingDownError();
    if (this.#scheduler.size >= this.#o.maxQueue) {
      throw new QueueFullError(this.#retryAfterSeconds());
    }
    const now = this.#clock();
    const id = this.#newId();
    const job = newJob({
      id,
      now,
      retentionMs: this.#o.retentionMs,
      workflow: input.workflow,
      ...(input.priority !== undefined ? { priority: input.priority } : {}),
      ...(input.request ? { request: input.request } : {}),
      idempotencyKey: input.idempotencyKey ?? null,
    });
    if (input.sync && !this.#pool.canRunNow(job.class_types)) {
      throw new NoInstanceAvailableError(this.#o.noInstanceRetryAfterS ?? 5, {
        class_types: job.class_types,
      });
    }
    this.#store.insert(job, input.idempotencyKey);
    const live = this.#newLive(job, input.extraData);
    live.provision = input.provision ?? null;
    this.#live.set(id, live);
    this.#armDeadline(live);
    // Queued only once its insert is committed: a job whose commit failed was never handed out
    // (its submitter answers 503) and must never reach an instance.
    this.#store.durable().then(
      () => {
        if (this.#live.get(id) === live && live.job.status === 'queued') this.#admit(live);
      },
      (err: unknown) => {
        if (this.#live.get(id) !== live) return;
        this.#live.delete(id);
        this.#o.logger?.warn({ err, job_id: id }, 'job dropped: its insert could not be committed');
      },
    );
    this.#emitStatus(live);
    return job;
  }

  /** Refuses (422 webhook_url_forbidden) a webhook URL the SSRF guard would refuse at delivery. */
  checkWebhookUrl(url: string): void {
    try {
      this.#o.webhooks?.validateUrl?.(url);
    } catch (err) {
      throw new GatewayError(
        'webhook_url_forbidden',
        422,
        `webhook_url is refused: ${(err as Error).message}`,
      );
    }
  }

  /** True when an Idempotency-Key is already claimed (checked before validation, v2 §11). */
  hasIdempotencyKey(key: string): boolean {
    return this.#store.hasIdempotencyKey(key, this.#clock());
  }

  /** submit(), then waits until the job is committed: use this before handing out its id. */
  async create(input: SubmitInput): Promise<JobRecord> {
    const job = this.submit(input);
    await this.#store.durable();
    return job;
  }

  /** Resolves once every job submitted so far is committed (submit() + durable() = create()). */
  durable(): Promise<void> {
    return this.#store.durable();
  }

  /** The job (live or stored), or undefined when unknown or past retention. */
  get(id: string): JobRecord | undefined {
    const live = this.#live.get(id);
    if (live) return live.job;
    const job = this.#recent.get(id) ?? this.#store.get(id);
    if (!job || job.expires_at <= this.#clock()) return undefined;
    return job;
  }

  /** Like get() but throws JobNotFoundError. */
  require(id: string): JobRecord {
    const job = this.get(id);
    if (!job) throw new JobNotFoundError(id);
    return job;
  }

  /** require() for routes: a fleet manager (src/fleet) reads jobs other gateways run from Redis. */
  async fetch(id: string): Promise<JobRecord> {
    return this.require(id);
  }

  /** list() for routes: a fleet manager lists the fleet's jobs from Redis. */
  async fetchPage(query: ListQuery): Promise<JobPage> {
    return this.list(query);
  }

  /** cancel() for routes: a fleet manager also cancels jobs another gateway runs. */
  async requestCancel(id: string): Promise<JobRecord> {
    return this.cancel(id);
  }

  /**
   * Takes over a stored, unfinished job this process does not hold (fleet mode: a job from the
   * shared queue, or one a dead gateway held): one on an instance re-attaches to its prompt by id,
   * one waiting is queued here. No-op for a job already held.
   */
  adopt(job: JobRecord, extraData?: Record<string, unknown>): void {
    if (this.#live.has(job.id) || this.#closing || isTerminal(job.status)) return;
    const live = this.#newLive(job, extraData);
    this.#live.set(job.id, live);
    if (job.instance_id) void this.#reattach(live);
    else if (job.status === 'canceling') this.#finish(live, 'canceled');
    else this.#enqueue(job);
  }

  /** True while this process holds the job (queued here, dispatched or re-attached). */
  holds(id: string): boolean {
    return this.#live.has(id);
  }

  /** 1-based position among waiting jobs, or null. */
  queuePosition(id: string): number | null {
    return this.#scheduler.position(id);
  }

  /**
   * Why a job waits, when it should end (an estimate: a moving average of recent run times of the same
   * workflow shape, plus the work queued ahead of it spread over the healthy slots), and its execution
   * time so far.
   */
  liveInfo(job: JobRecord): LiveInfo {
    const live = this.#live.get(job.id);
    if (!live || isTerminal(job.status) || live.job !== job) {
      return { waiting_reason: null, estimated_completion_at: null, execution_ms: job.execution_ms };
    }
    const now = this.#clock();
    const own = this.#runTimes.get(workflowKey(live)) ?? null;
    if (live.lease) {
      const runStart = Math.max(job.started_at ?? 0, job.attempts.at(-1)?.started_at ?? 0);
      const running = job.status === 'running' && job.started_at !== null;
      const end = own === null ? null : runStart + own;
      return {
        waiting_reason: running ? null : 'queued_on_instance',
        estimated_completion_at: end !== null && end >= now ? end : null,
        execution_ms: running ? now - (job.started_at as number) : job.execution_ms,
      };
    }
    const reason: WaitingReason = live.provision
      ? 'provisioning_models'
      : live.retryTimer
        ? 'retry_backoff'
        : this.#pool.canRunNow(job.class_types)
          ? 'instances_busy'
          : 'no_instance_available';
    const ahead = own === null ? undefined : this.#workAhead(now, job.id).get(job.id);
    const slots = this.#healthySlots();
    return {
      waiting_reason: reason,
      estimated_completion_at:
        own === null || ahead === undefined || slots === 0 ? null : Math.round(now + ahead / slots + own),
      execution_ms: job.execution_ms,
    };
  }

  #healthySlots(): number {
    let slots = 0;
    for (const s of this.#pool.list()) if (s.state === 'healthy') slots += s.maxJobs ?? 1;
    return slots;
  }

  /** Estimated work (ms) ahead of each waiting job: running jobs' remainder plus the queue before it. */
  #workAhead(now: number, id: string): Map<string, number> {
    const cache = this.#aheadCache;
    if (cache.ahead?.has(id) && now - cache.at < ETA_CACHE_MS) return cache.ahead;
    const ahead = new Map<string, number>();
    const fallback = this.#runTimeAll;
    let sum = 0;
    let known = fallback !== null;
    for (const live of this.#live.values()) {
      if (!live.lease) continue;
      const avg = this.#runTimes.get(workflowKey(live)) ?? fallback;
      const start = live.job.started_at ?? live.job.attempts.at(-1)?.started_at ?? now;
      if (avg === null) known = false;
      else sum += Math.max(0, start + avg - now);
    }
    for (const id of this.#scheduler.waitingIds()) {
      if (!known) break;
      ahead.set(id, sum);
      const live = this.#live.get(id);
      const avg = live ? (this.#runTimes.get(workflowKey(live)) ?? fallback) : fallback;
      if (avg === null) known = false;
      else sum += avg;
    }
    this.#aheadCache = { at: now, ahead };
    return ahead;
  }

  /** Latest preview of a live job (SSE snapshot). */
  latestPreview(id: string): LiveJob['preview'] {
    return this.#live.get(id)?.preview ?? null;
  }

  /** Newest-first listing. Live jobs are returned in their current state. */
  list(query: ListQuery): JobPage {
    const page = this.#store.list(query);
    const now = this.#clock();
    return {
      jobs: page.jobs.filter((j) => j.expires_at > now).map((j) => this.#live.get(j.id)?.job ?? j),
      nextCursor: page.nextCursor,
    };
  }

  /** Count of jobs per status (store view). */
  counts(): Record<JobStatus, number> {
    return this.#store.counts();
  }

  /** Requests cancellation (idempotent); returns the job as it is now. */
  cancel(id: string): JobRecord {
    const live = this.#live.get(id);
    if (!live) return this.require(id);
    const job = live.job;
    // A failed job waiting for its error webhook is already over.
    if (live.settle) return job;
    if (job.status === 'queued' && !live.lease) {
      this.#scheduler.remove(id);
      live.prefetching?.abort();
      this.#finish(live, 'canceled');
      return job;
    }
    if (job.status === 'queued' || job.status === 'running') {
      transition(job, 'canceling', this.#clock(), this.#o.retentionMs);
      this.#persist(live);
      this.#emitStatus(live);
      live.controller?.abort({ kind: 'cancel' } satisfies AbortReason);
    }
    return job;
  }

  /** Resolves with the job once it is terminal, or with its current state when `signal` aborts. */
  async waitForTerminal(id: string, signal: AbortSignal): Promise<JobRecord> {
    const job = this.require(id);
    if (isTerminal(job.status) || signal.aborted) return job;
    const { promise, resolve } = Promise.withResolvers<void>();
    const onAbort = () => resolve();
    signal.addEventListener('abort', onAbort, { once: true });
    const off = this.events.subscribe(id, (event) => {
      if (event.type === 'status' && isTerminal(event.data.status)) resolve();
    });
    try {
      await promise;
    } finally {
      // Whichever side won, the other listener goes too.
      off();
      signal.removeEventListener('abort', onAbort);
    }
    return this.get(id) ?? job;
  }

  /**
   * v2: `status` events carry queue_position changes while queued. Positions move with every
   * dispatch, so watchers get them at most once per interval instead of on every change.
   */
  #publishPositions(): void {
    const seen = new Set<string>();
    this.#scheduler.waitingIds().forEach((id, index) => {
      if (this.events.listenerCount(id) === 0) return;
      seen.add(id);
      const position = index + 1;
      if (this.#sentPositions.get(id) === position) return;
      this.#sentPositions.set(id, position);
      this.events.emit(id, { type: 'status', data: { status: 'queued', queue_position: position } });
    });
    for (const id of this.#sentPositions.keys()) if (!seen.has(id)) this.#sentPositions.delete(id);
  }

  #newLive(job: JobRecord, extraData?: Record<string, unknown>): LiveJob {
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

  /**
   * Queues a committed job. Its input URLs are fetched and checked first, outside any instance
   * slot (the resolver bounds how many at once): a slow or hostile URL delays only its own job.
   */
  #admit(live: LiveJob): void {
    if (live.provision) {
      this.#awaitModels(live, live.provision);
      return;
    }
    const resolver = this.#o.inputResolver;
    if (!resolver?.prefetch || !needsInputResolution(live.job)) {
      this.#enqueue(live.job);
      return;
    }
    const job = live.job;
    const controller = new AbortController();
    live.prefetching = controller;
    const prefetch = resolver.prefetch;
    void (async () => {
      try {
        const nodeDefs = await this.#pool.nodeDefsFor();
        const prefetched = await prefetch.call(resolver, job.workflow, {
          ...(job.request.inputs ? { inputs: job.request.inputs } : {}),
          nodeDefs,
          signal: controller.signal,
        });
        live.prefetching = null;
        if (this.#live.get(job.id) !== live || job.status !== 'queued' || this.#closing) {
          prefetched.release();
          return;
        }
        live.prefetched = prefetched;
        this.#enqueue(job);
      } catch (err) {
        live.prefetching = null;
        if (this.#live.get(job.id) !== live || job.status !== 'queued' || this.#closing) return;
        const e = err as { code?: unknown; message?: unknown; details?: unknown };
        job.error = {
          code: typeof e.code === 'string' ? e.code : 'input_fetch_failed',
          message: typeof e.message === 'string' ? e.message : String(err),
          ...(e.details && typeof e.details === 'object'
            ? { details: e.details as Record<string, unknown> }
            : {}),
        };
        this.#settle(live, 'failed');
      }
    })();
  }

  /** Arms the timer that fails a job still waiting for an instance at its `deadline_at`. */
  #armDeadline(live: LiveJob): void {
    const deadline = live.job.request.deadline_at;
    if (deadline === undefined) return;
    live.deadlineTimer = setTimeout(
      () => {
        live.deadlineTimer = null;
        const job = live.job;
        // A running attempt ends by its own timeout (the deadline bounds it at dispatch).
        if (this.#live.get(job.id) !== live || live.lease || live.settle || isTerminal(job.status)) return;
        this.#scheduler.remove(job.id);
        job.error = {
          code: 'timeout',
          message: `The job did not finish within its deadline (${deadline - job.created_at} ms); it never got an instance.`,
        };
        this.#settle(live, job.status === 'canceling' ? 'canceled' : 'failed');
      },
      Math.max(0, deadline - this.#clock()),
    );
    live.deadlineTimer.unref();
  }

  /** Queues a job again after an exponential backoff with jitter (its attempt failed on an instance). */
  #enqueueAfterBackoff(live: LiveJob): void {
    const failures = Math.max(1, live.job.attempts.length);
    const full = Math.min(this.#retryBackoffMaxMs, this.#retryBackoffMs * 2 ** (failures - 1));
    const delay = full / 2 + this.#random() * (full / 2);
    if (!(delay > 0)) {
      this.#enqueue(live.job);
      return;
    }
    live.retryTimer = setTimeout(() => {
      live.retryTimer = null;
      if (this.#live.get(live.job.id) === live && live.job.status === 'queued') this.#enqueue(live.job);
    }, delay);
    live.retryTimer.unref();
  }

  /** Holds a committed job (queued) until its models are on the instances, then admits it. */
  #awaitModels(live: LiveJob, provision: ModelProvisionLike): void {
    const job = live.job;
    const current = () => this.#live.get(job.id) === live && job.status === 'queued' && !this.#closing;
    const off = provision.onProgress((message) => {
      if (!current()) return;
      job.progress = { value: 0, nodes_done: 0, nodes_total: 0, message };
      this.#emitProgressThrottled(live);
    });
    provision.ready.then(
      () => {
        off();
        live.provision = null;
        if (!current()) return;
        job.progress = null;
        this.#admit(live);
      },
      (err: unknown) => {
        off();
        live.provision = null;
        if (!current()) return;
        const e = err as { code?: unknown; message?: unknown; details?: unknown };
        job.error = {
          code: typeof e.code === 'string' ? e.code : 'model_provisioning_failed',
          message: typeof e.message === 'string' ? e.message : String(err),
          ...(e.details && typeof e.details === 'object'
            ? { details: e.details as Record<string, unknown> }
            : {}),
        };
        this.#finish(live, 'failed');
      },
    );
  }

  #enqueue(job: JobRecord): void {
    const failed = job.attempts.filter((a) => a.error).map((a) => a.instance_id);
    const entry: QueueEntry = {
      id: job.id,
      priority: job.priority,
      createdAt: job.created_at,
      classTypes: job.class_types,
      exclude: [...new Set(failed)],
      ...(job.request.serial_key !== undefined ? { serial: job.request.serial_key } : {}),
      ...(job.request.models?.length ? { models: job.request.models } : {}),
    };
    this.#scheduler.enqueue(entry);
  }

  #retryAfterSeconds(): number {
    // A rough drain estimate: the queue empties at about one job per slot per second or faster.
    const slots = Math.max(1, this.inFlight);
    return Math.min(60, Math.max(1, Math.ceil(this.#scheduler.size / slots / 10)));
  }

  #dispatch(entry: QueueEntry, lease: LeaseLike): void {
    const live = this.#live.get(entry.id);
    if (live?.job.status !== 'queued') {
      lease.release({ ok: true });
      return;
    }
    const job = live.job;
    const now = this.#clock();
    recordAttempt(job, lease.instanceId, now);
    job.updated_at = now;
    // Committed in this turn of the loop, while the prompt is on its way: waiting for the commit
    // first would add it to every job's latency. A kill in between leaves a prompt the store has
    // no instance for; recovery finds it by its id (= the job id) on the instances (#locate).
    this.#persist(live);
    this.#store
      .durable()
      .catch((err: unknown) =>
        this.#o.logger?.error({ err, job_id: job.id }, 'could not persist a dispatch'),
      );
    this.#startAttempt(live, lease, 'submit');
  }

  #startAttempt(live: LiveJob, lease: LeaseLike, mode: 'submit' | 'attach'): void {
    // A re-attached job skipped the queue: it still holds its serial key against later ones.
    if (mode === 'attach') this.#scheduler.claim(live.job.id, live.job.request.serial_key);
    live.lease = lease;
    live.controller = new AbortController();
    live.tracker = new ProgressTracker(live.job.workflow);
    const deadline = live.job.request.deadline_at;
    const timeoutMs = Math.min(
      live.job.request.timeout_ms ?? this.#o.jobTimeoutMs,
      deadline === undefined ? Number.POSITIVE_INFINITY : Math.max(1, deadline - this.#clock()),
    );
    const controller = live.controller;
    const task = this.#runner
      .run({
        job: live.job,
        instanceId: lease.instanceId,
        client: lease.client,
        mode,
        signal: controller.signal,
        ...(lease.signal ? { leaseSignal: lease.signal } : {}),
        timeoutMs,
        ...(live.extraData ? { extraData: live.extraData } : {}),
        ...(live.prefetched ? { prefetched: live.prefetched } : {}),
        onEvent: (event) => this.#onRunEvent(live, event),
      })
      .then((outcome) => this.#applyOutcome(live, lease, outcome))
      .catch((err) =>
        this.#o.logger?.error({ err, job_id: live.job.id }, 'applying an attempt outcome failed'),
      );
    void task;
  }

  #trackWebhook(task: Promise<unknown>): void {
    this.#webhookTasks.add(task);
    void task.finally(() => this.#webhookTasks.delete(task));
  }

  #onRunEvent(live: LiveJob, event: RunEvent): void {
    const job = live.job;
    if (isTerminal(job.status)) return;
    // Raw events for listeners that relay ComfyUI's own protocol (the native facade).
    this.emit('run-event', job.id, event);
    switch (event.type) {
      case 'started': {
        live.lease?.markStarted();
        if (job.status === 'queued') {
          const now = this.#clock();
          transition(job, 'running', now, this.#o.retentionMs);
          job.queue_ms = now - job.created_at;
          this.#persistLazily(live);
          this.#emitStatus(live);
          this.emit('started', job);
        }
        return;
      }
      case 'preview': {
        const now = this.#clock();
        live.preview = {
          node_id: event.nodeId ?? '',
          content_type: event.mime,
          data_base64: event.data.toString('base64'),
        };
        if (now - live.lastPreviewAt >= this.#throttleMs) {
          live.lastPreviewAt = now;
          this.events.emit(job.id, { type: 'preview', data: live.preview });
        }
        return;
      }
      default:
        if (live.tracker?.apply(event)) {
          job.progress = live.tracker.snapshot();
          this.#emitProgressThrottled(live);
        }
    }
  }

  #emitProgressThrottled(live: LiveJob): void {
    const now = this.#clock();
    const wait = live.lastProgressAt + this.#throttleMs - now;
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
      live.lastProgressAt = this.#clock();
      this.#publishProgress(live);
    }, wait);
    live.progressTimer.unref();
  }

  /** One progress snapshot to SSE watchers, and to the webhook when the job asked for job.progress. */
  #publishProgress(live: LiveJob): void {
    const job = live.job;
    if (!job.progress) return;
    this.events.emit(job.id, { type: 'progress', data: job.progress });
    const webhooks = this.#o.webhooks;
    const url = job.request.webhook_url ?? this.#o.webhookUrl;
    if (!webhooks || !url || !job.request.webhook_events?.includes('job.progress')) return;
    // The dispatcher throttles progress per job and URL and never retries it.
    this.#trackWebhook(
      webhooks
        .send(job.id, url, 'job.progress', webhookPayload(job), requestHeaders(job))
        .catch((err) => this.#o.logger?.warn({ err, job_id: job.id }, 'progress webhook failed')),
    );
  }

  #applyOutcome(live: LiveJob, lease: LeaseLike, outcome: AttemptOutcome): void {
    if (this.#closing) {
      // Detached at shutdown: whatever the attempt saw (closed sockets), the stored state stays.
      lease.release({ ok: true });
      return;
    }
    const job = live.job;
    const now = this.#clock();
    const attempt = job.attempts.at(-1);
    if (attempt) attempt.finished_at = now;
    live.lease = null;
    live.controller = null;
    switch (outcome.kind) {
      case 'shutdown':
        // Leave the stored state as it is: the next start re-attaches to the prompt.
        lease.release({ ok: true });
        return;
      case 'succeeded': {
        lease.release({ ok: true });
        const result = outcome.result;
        job.outputs = outcome.outputs;
        job.output_sources = outcome.sources;
        job.texts = result.texts.map((t) => ({ node_id: t.nodeId, text: t.text }));
        job.execution_ms = result.stats.executionMs ?? (job.started_at ? now - job.started_at : null);
        job.progress = live.tracker?.complete() ?? { value: 1, nodes_done: 0, nodes_total: 0 };
        if (job.status === 'queued') {
          transition(job, 'running', now, this.#o.retentionMs);
          job.queue_ms ??= now - job.created_at;
        }
        if (this.events.listenerCount(job.id) > 0)
          for (const output of job.outputs) this.events.emit(job.id, { type: 'output', data: output });
        this.#finish(live, 'succeeded');
        return;
      }
      case 'canceled':
        lease.release({ ok: true });
        this.#finish(live, 'canceled');
        return;
      case 'failed':
        lease.release({ ok: false, error: outcome.error, infrastructure: false });
        if (attempt) attempt.error = { code: outcome.error.code, message: outcome.error.message };
        job.error = outcome.error;
        if (outcome.partial) {
          // Files other branches produced before the failure stay part of the job.
          job.outputs = outcome.partial.outputs;
          job.output_sources = outcome.partial.sources;
        }
        this.#settle(
          live,
          job.status === 'canceling' && outcome.error.code === 'interrupted' ? 'canceled' : 'failed',
        );
        return;
      case 'retry': {
        lease.release({ ok: false, error: outcome.error, infrastructure: true });
        if (attempt) attempt.error = { code: outcome.error.code, message: outcome.error.message };
        this.#o.logger?.warn(
          { job_id: job.id, instance: attempt?.instance_id, err: outcome.error },
          'attempt failed on its instance',
        );
        if (job.status === 'canceling') {
          this.#finish(live, 'canceled');
          return;
        }
        // The instance went down while this job's prompt executed: the job itself may have taken it
        // down (a decompression bomb, a poison workflow). One more attempt at most, never a tour of
        // the whole pool.
        if (job.status === 'running' && attempt) attempt.suspect = true;
        const suspects = job.attempts.filter((a) => a.suspect).length;
        if (suspects >= (this.#o.maxSuspectAttempts ?? DEFAULT_SUSPECT_ATTEMPTS)) {
          job.error = {
            code: 'job_suspected_poison',
            message: `The instance went down while this job ran, ${suspects} times; it is not retried again. Last error: ${outcome.error.message}`,
          };
          this.#settle(live, 'failed');
          return;
        }
        if (job.attempts.length >= this.#o.maxAttempts) {
          job.error = {
            code: 'upstream_unavailable',
            message: `The job failed on ${job.attempts.length} attempt(s); last error: ${outcome.error.message}`,
          };
          this.#settle(live, 'failed');
          return;
        }
        if (job.status === 'running') transition(job, 'queued', now, this.#o.retentionMs);
        job.instance_id = null;
        job.progress = null;
        this.#persist(live);
        this.#emitStatus(live);
        this.#enqueueAfterBackoff(live);
        return;
      }
    }
  }

  /**
   * Ends a job as failed (or canceled) once its error webhook had its chance: the delivery starts now
   * with the terminal state, and the job is reported terminal when the first attempt ended or
   * `webhookHoldMs` passed (docs/io.md: error webhooks are awaited before the job is reported).
   */
  #settle(live: LiveJob, status: 'failed' | 'canceled'): void {
    const job = live.job;
    const url = job.request.webhook_url ?? this.#o.webhookUrl;
    if (status !== 'failed' || !this.#o.webhooks || !url || this.#webhookHoldMs <= 0 || this.#closing) {
      this.#finish(live, status);
      return;
    }
    const now = this.#clock();
    const terminal = structuredClone(job);
    transition(terminal, status, now, this.#o.retentionMs);
    if (terminal.started_at && terminal.execution_ms === null)
      terminal.execution_ms = now - terminal.started_at;
    let firstAttempt: (() => void) | null = null;
    const settled = new Promise<void>((resolve) => {
      firstAttempt = resolve;
    });
    const sent = this.#sendWebhook(job, url, terminal, (delivery) => {
      if (delivery.attempts.length > 0 || delivery.status !== 'pending') firstAttempt?.();
    });
    let done = false;
    const release = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      live.settle = null;
      this.#finish(live, status, sent);
    };
    const timer = setTimeout(release, this.#webhookHoldMs);
    timer.unref();
    live.settle = release;
    void settled.then(release);
  }

  /** Moves a live job to a terminal status, persists, notifies, and forgets it. */
  #finish(
    live: LiveJob,
    status: Extract<JobStatus, 'succeeded' | 'failed' | 'canceled' | 'expired'>,
    webhookSent = false,
  ): void {
    const job = live.job;
    const now = this.#clock();
    if (status === 'canceled' && job.status === 'running')
      transition(job, 'canceling', now, this.#o.retentionMs);
    transition(job, status, now, this.#o.retentionMs);
    if (status !== 'succeeded' && job.started_at && job.execution_ms === null)
      job.execution_ms = now - job.started_at;
    for (const timer of [live.progressTimer, live.retryTimer, live.deadlineTimer])
      if (timer) clearTimeout(timer);
    live.progressTimer = null;
    live.prefetched?.release();
    live.prefetched = null;
    live.retryTimer = null;
    live.deadlineTimer = null;
    if (status === 'succeeded' && job.execution_ms !== null) this.#recordRunTime(live, job.execution_ms);
    // The delivery record (the outbox entry) is written with the terminal state, in one commit.
    if (!webhookSent) this.#notifyWebhook(job);
    this.#persist(live);
    this.#live.delete(job.id);
    this.#scheduler.release(job.id, job.request.serial_key);
    this.#recent.set(job.id, job);
    if (this.#recent.size > RECENT_JOBS) this.#recent.delete(this.#recent.keys().next().value as string);
    this.#emitStatus(live, job.outputs);
    this.emit('terminal', job);
    this.#logOutcome(job);
  }

  /** One line per finished job, at the level a person on call wants (warn for failed/expired). */
  #logOutcome(job: JobRecord): void {
    const logger = this.#o.logger;
    if (!logger) return;
    const line = {
      job_id: job.id,
      request_id: job.request.request_id ?? null,
      status: job.status,
      instance: job.attempts.at(-1)?.instance_id ?? null,
      attempts: job.attempts.length,
      queue_ms: job.queue_ms,
      execution_ms: job.execution_ms,
      total_ms: job.completed_at !== null ? job.completed_at - job.created_at : null,
    };
    if (job.status === 'failed' || job.status === 'expired') {
      logger.warn({ ...line, error_code: job.error?.code ?? null }, `job ${job.status}`);
    } else {
      logger.info(line, `job ${job.status}`);
    }
  }

  #recordRunTime(live: LiveJob, ms: number): void {
    const key = workflowKey(live);
    const prev = this.#runTimes.get(key);
    this.#runTimes.set(key, prev === undefined ? ms : prev + RUN_TIME_SMOOTHING * (ms - prev));
    const all = this.#runTimeAll;
    this.#runTimeAll = all === null ? ms : all + RUN_TIME_SMOOTHING * (ms - all);
  }

  #notifyWebhook(job: JobRecord): void {
    const url = job.request.webhook_url ?? this.#o.webhookUrl;
    if (!this.#o.webhooks || !url) return;
    this.#sendWebhook(job, url, job);
  }

  /**
   * Sends the terminal event of `job` (as `view` shows it) and keeps its delivery on the job: the
   * pending record is the outbox entry a restarted gateway resumes; attempts are shown on GET.
   * Returns true when a delivery was started.
   */
  #sendWebhook(
    job: JobRecord,
    url: string,
    view: JobRecord,
    onUpdate?: (delivery: JobWebhookDelivery) => void,
    resume?: JobWebhookDelivery,
  ): boolean {
    const webhooks = this.#o.webhooks;
    if (!webhooks) return false;
    const type =
      view.status === 'succeeded'
        ? 'job.succeeded'
        : view.status === 'canceled'
          ? 'job.canceled'
          : 'job.failed';
    // Tracked so shutdown waits for it; the dispatcher retries and never rejects.
    this.#trackWebhook(
      webhooks
        .send(job.id, url, resume ? (resume.event as typeof type) : type, webhookPayload(view), {
          ...requestHeaders(job),
          ...(resume ? { resume } : {}),
          onUpdate: (delivery) => {
            this.#recordDelivery(job, delivery);
            onUpdate?.(delivery);
          },
        })
        .catch((err) => this.#o.logger?.error({ err, job_id: job.id }, 'webhook dispatch failed')),
    );
    return true;
  }

  /** Keeps a delivery's latest state on its job; a terminal job is written at once (outbox). */
  #recordDelivery(job: JobRecord, update: JobWebhookDelivery): void {
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
      this.#store.update(job);
    } catch (err) {
      this.#o.logger?.warn({ err, job_id: job.id }, 'could not record a webhook delivery');
    }
  }

  /** Resumes the deliveries a previous run left pending (the store's outbox). */
  #resumeWebhooks(): void {
    const jobs = this.#store.listPendingWebhooks?.() ?? [];
    if (jobs.length === 0) return;
    this.#o.logger?.info({ jobs: jobs.length }, 'resuming pending webhook deliveries');
    for (const job of jobs) {
      const url = job.request.webhook_url ?? this.#o.webhookUrl;
      for (const delivery of job.webhooks ?? []) {
        if (delivery.status !== 'pending') continue;
        if (!url) {
          this.#recordDelivery(job, {
            ...delivery,
            status: 'skipped',
            error: 'no webhook URL is configured',
          });
          continue;
        }
        this.#sendWebhook(job, url, job, undefined, delivery);
      }
    }
  }

  #emitStatus(live: LiveJob, outputs?: JobOutput[]): void {
    const job = live.job;
    // Most jobs have no stream watching them; queue_position is a scan of the queue.
    if (this.events.listenerCount(job.id) === 0) return;
    this.events.emit(job.id, {
      type: 'status',
      data: {
        status: job.status,
        queue_position: job.status === 'queued' ? this.#scheduler.position(job.id) : null,
        ...(outputs ? { outputs } : {}),
      },
    });
  }

  #persist(live: LiveJob): void {
    if (live.persistTimer) clearTimeout(live.persistTimer);
    live.persistTimer = null;
    try {
      this.#store.update(live.job);
    } catch (err) {
      this.#o.logger?.error({ err, job_id: live.job.id }, 'could not persist job state');
    }
  }

  #persistLazily(live: LiveJob): void {
    if (live.persistTimer || this.#lazyMs <= 0) {
      if (this.#lazyMs <= 0) this.#persist(live);
      return;
    }
    live.persistTimer = setTimeout(() => {
      live.persistTimer = null;
      if (this.#live.has(live.job.id)) this.#persist(live);
    }, this.#lazyMs);
    live.persistTimer.unref();
  }

  async #recover(): Promise<void> {
    const unfinished = this.#store.listUnfinished();
    if (unfinished.length === 0) return;
    this.#o.logger?.info({ jobs: unfinished.length }, 'recovering unfinished jobs');
    const located = unfinished.some((job) => !job.instance_id) ? await this.#locate() : new Map();
    const pending: Array<Promise<void>> = [];
    for (const job of unfinished) {
      const foundOn = job.instance_id ? undefined : located.get(job.id);
      if (foundOn) {
        // Dispatched just before the stop, without the dispatch reaching the store.
        recordAttempt(job, foundOn, job.updated_at);
      }
      const live = this.#newLive(job);
      this.#live.set(job.id, live);
      this.#armDeadline(live);
      if (typeof job.workflow !== 'object' || job.workflow === null) {
        // A record we cannot run again must not stop the gateway from starting.
        job.error = {
          code: 'unrecoverable',
          message: 'The stored job has no workflow; it cannot be resumed.',
        };
        this.#finish(live, 'failed');
        continue;
      }
      if (!job.instance_id) {
        if (job.status === 'canceling') this.#finish(live, 'canceled');
        else this.#admit(live);
        continue;
      }
      pending.push(this.#reattach(live));
      // Bound the number of instances probed at once.
      if (pending.length >= 16) await Promise.all(pending.splice(0));
    }
    await Promise.all(pending);
  }

  /**
   * Prompt id → instance for the prompts each instance has queued, running or among its latest
   * history entries. Only a dispatch in the last turn of the loop before a kill can be missing
   * from the store, so its prompt is among the newest an instance has seen.
   */
  async #locate(): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    const instances = this.#pool.list();
    await Promise.all(
      instances.map(async ({ id }) => {
        const client = this.#pool.client(id);
        if (!client) return;
        const signal = AbortSignal.timeout(10_000);
        try {
          const [queue, history] = await Promise.all([
            client.getQueue({ signal }),
            client.getHistories({ signal, maxItems: LOCATE_HISTORY_ITEMS }),
          ]);
          for (const item of [...queue.running, ...queue.pending]) found.set(item.promptId, id);
          for (const promptId of Object.keys(history)) if (!found.has(promptId)) found.set(promptId, id);
        } catch (err) {
          this.#o.logger?.warn({ err, instance: id }, 'could not list the prompts of an instance');
        }
      }),
    );
    return found;
  }

  async #reattach(live: LiveJob): Promise<void> {
    const job = live.job;
    const instanceId = job.instance_id as string;
    const client = this.#pool.client(instanceId);
    let state: Awaited<ReturnType<NonNullable<typeof client>['getPromptState']>> = 'unknown';
    if (client) {
      try {
        state = await client.getPromptState(job.id, { signal: AbortSignal.timeout(10_000) });
      } catch (err) {
        this.#o.logger?.warn(
          { err, job_id: job.id, instance: instanceId },
          'could not ask the instance about a job',
        );
      }
    }
    if (client && state !== 'unknown') {
      const others = this.#pool
        .list()
        .map((s) => s.id)
        .filter((id) => id !== instanceId);
      const lease =
        this.#pool.tryAcquire({ classTypes: job.class_types, exclude: others }) ??
        detachedLease(instanceId, client);
      if (lease.instanceId !== instanceId) {
        lease.release({ ok: true });
        this.#startAttempt(live, detachedLease(instanceId, client), 'attach');
      } else {
        this.#startAttempt(live, lease, 'attach');
      }
      this.#o.logger?.info(
        { job_id: job.id, instance: instanceId, state },
        're-attached to a prompt after restart',
      );
      if (job.status === 'canceling') live.controller?.abort({ kind: 'cancel' } satisfies AbortReason);
      return;
    }
    const attempt = job.attempts.at(-1);
    if (attempt) {
      attempt.finished_at = this.#clock();
      attempt.error = {
        code: 'prompt_lost',
        message: 'The prompt was lost (instance or gateway restarted).',
      };
    }
    if (job.status === 'canceling') {
      this.#finish(live, 'canceled');
    } else if (job.attempts.length >= this.#o.maxAttempts) {
      job.error = {
        code: 'prompt_lost',
        message: 'The job was lost on its instance and has no attempts left.',
      };
      this.#finish(live, 'expired');
    } else {
      if (job.status === 'running') transition(job, 'queued', this.#clock(), this.#o.retentionMs);
      job.instance_id = null;
      this.#persist(live);
      this.#enqueue(job);
    }
  }

  /**
   * Stops taking work and dispatching, and detaches from running attempts without cancelling
   * them: their prompts keep running on the instances and the next start re-attaches (with a
   * durable store). Waits up to `graceMs` for pending webhook deliveries, then closes the store.
   * Close the pool after this. Idempotent.
   */
  close(options: { graceMs?: number } = {}): Promise<void> {
    this.#closing ??= (async () => {
      this.#scheduler.close();
      if (this.#retentionTimer) clearInterval(this.#retentionTimer);
      if (this.#positionTimer) clearInterval(this.#positionTimer);
      // Failed jobs waiting for their webhook's first attempt are reported (and stored) now.
      for (const live of [...this.#live.values()]) live.settle?.();
      for (const live of this.#live.values()) {
        live.prefetching?.abort();
        live.prefetched?.release();
        for (const timer of [live.progressTimer, live.retryTimer, live.deadlineTimer])
          if (timer) clearTimeout(timer);
        if (live.persistTimer) this.#persist(live);
      }
      const webhookTasks = [...this.#webhookTasks];
      if (webhookTasks.length > 0) {
        const grace = AbortSignal.timeout(options.graceMs ?? 5000);
        await new Promise<void>((resolve) => {
          grace.addEventListener('abort', () => resolve(), { once: true });
          void Promise.allSettled(webhookTasks).then(() => resolve());
        });
      }
      this.events.close();
      this.#live.clear();
      this.#recent.clear();
      this.#storeClosed = true;
      this.#store.close();
    })();
    return this.#closing;
  }
}

/** Attempts during which the instance went down mid-execution before a job is failed as suspect. */
const DEFAULT_SUSPECT_ATTEMPTS = 2;

/** How often watchers of waiting jobs hear about their new queue_position. */
const POSITION_INTERVAL_MS = 1000;

/** History entries per instance searched for prompts whose dispatch the store missed. */
const LOCATE_HISTORY_ITEMS = 256;

/** How many finished jobs stay in memory for cheap reads (bounded; the store has them all). */
const RECENT_JOBS = 1024;

/** Weight of the newest run in the moving average of run times. */
const RUN_TIME_SMOOTHING = 0.3;

/** How long the queue's work-ahead estimate is reused (listing many queued jobs costs one pass). */
const ETA_CACHE_MS = 250;

/** Deliveries kept on one job (terminal events only; progress events are not recorded there). */
const MAX_JOB_DELIVERIES = 10;

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

function detachedLease(instanceId: string, client: NonNullable<ReturnType<PoolLike['client']>>): LeaseLike {
  return { instanceId, url: client.baseUrl, client, markStarted() {}, release() {} };
}

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
