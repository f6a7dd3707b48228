// The job service: creates durable jobs and owns every live job's state machine (submit, admit,
// dispatch, attempt outcome, retry, cancel, finish) and expires old jobs. Beside it: publisher.ts
// (events to watchers), job-webhooks.ts (webhooks and their outbox), recovery.ts (what becomes of
// unfinished jobs after a restart), run-times.ts (completion estimates). The HTTP layer talks only to this class.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { GatewayError } from '../errors.ts';
import { JobNotFoundError, NoInstanceAvailableError, QueueFullError, ShuttingDownError } from './errors.ts';
import { JobEvents } from './events.ts';
import {
  isTerminal,
  type JobError,
  type JobRecord,
  type JobRequest,
  type JobStatus,
  newJob,
  recordAttempt,
  transition,
} from './job.ts';
import { JobWebhooks } from './job-webhooks.ts';
import { type JobPreview, type LiveJob, newLive } from './live-job.ts';
import type {
  ApiPrompt,
  InputResolverLike,
  LeaseLike,
  ModelProvisionLike,
  LoggerLike,
  OutputDeliveryLike,
  PoolLike,
  RunEvent,
  WebhookDispatcherLike,
} from './ports.ts';
import { ProgressTracker } from './progress.ts';
import { JobPublisher } from './publisher.ts';
import { locatePrompts, promptLost, reattachLease, recoveryStep } from './recovery.ts';
import { type AbortReason, type AttemptOutcome, needsInputResolution, Runner } from './runner.ts';
import { RunTimes } from './run-times.ts';
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

/**
 * What a JobManager tells the gateway's own listeners (metrics, stats, node timings, the native
 * facade), with their payloads. Watchers of one job (SSE, the dashboard) use `events` instead.
 */
export interface JobManagerEvents {
  /** A job began executing on its instance (queued → running). */
  started: [job: JobRecord];
  /** A job reached its terminal status (succeeded, failed, canceled or expired) and was stored. */
  terminal: [job: JobRecord];
  /** Every event of a job's attempt as the runner saw it, for relaying ComfyUI's own protocol. */
  'run-event': [jobId: string, event: RunEvent];
}

/** The job service (see the file header); its lifecycle events are typed by JobManagerEvents. */
export class JobManager extends EventEmitter<JobManagerEvents> {
  readonly events: JobEvents;
  #o: Required<Pick<JobManagerOptions, 'maxQueue' | 'maxAttempts' | 'jobTimeoutMs' | 'retentionMs'>> &
    JobManagerOptions;
  #store: JobStore;
  #pool: PoolLike;
  #clock: () => number;
  #newId: () => string;
  #lazyMs: number;
  #live = new Map<string, LiveJob>();
  /** Recently finished jobs, newest last: sync waiters and early polls read them without the store. */
  #recent = new Map<string, JobRecord>();
  #scheduler: Scheduler;
  #runner: Runner;
  #publisher: JobPublisher;
  #webhooks: JobWebhooks;
  #retentionTimer: NodeJS.Timeout | null = null;
  #started = false;
  #closing: Promise<void> | null = null;
  #retryBackoffMs: number;
  #retryBackoffMaxMs: number;
  #webhookHoldMs: number;
  #random: () => number;
  #runTimes = new RunTimes();

  constructor(options: JobManagerOptions) {
    super();
    this.events = options.events ?? new JobEvents();
    this.#o = options;
    this.#store = options.store;
    this.#pool = options.pool;
    this.#clock = options.clock ?? Date.now;
    this.#newId = options.newId ?? randomUUID;
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
      linkTtlMs: options.retentionMs,
      ...(options.logger ? { logger: options.logger } : {}),
    });
    this.#webhooks = new JobWebhooks({
      store: this.#store,
      dispatcher: options.webhooks,
      defaultUrl: options.webhookUrl,
      logger: options.logger,
    });
    this.#publisher = new JobPublisher({
      events: this.events,
      scheduler: this.#scheduler,
      webhooks: this.#webhooks,
      clock: this.#clock,
      throttleMs: options.eventThrottleMs ?? 500,
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
    this.#webhooks.resume();
    this.#scheduler.start();
    const sweepMs = Math.min(60_000, Math.max(1000, Math.floor(this.#o.retentionMs / 10)));
    this.#retentionTimer = setInterval(() => this.sweep(), sweepMs);
    this.#retentionTimer.unref();
    this.#publisher.start();
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
    const live = newLive(job, input.extraData);
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
    this.#publisher.status(live);
    return job;
  }

  /** Refuses (422 webhook_url_forbidden) a webhook URL the SSRF guard would refuse at delivery. */
  checkWebhookUrl(url: string): void {
    try {
      this.#webhooks.validateUrl(url);
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
   * one waiting is queued here (or fails `timeout` when past its deadline). No-op for a job already held.
   */
  adopt(job: JobRecord, extraData?: Record<string, unknown>): void {
    if (this.#live.has(job.id) || this.#closing || isTerminal(job.status)) return;
    const live = newLive(job, extraData);
    this.#live.set(job.id, live);
    this.#armDeadline(live);
    if (job.instance_id) void this.#reattach(live);
    else if (job.status === 'canceling') this.#finish(live, 'canceled');
    // Past its deadline already (it waited in the fleet's queue): the timer just armed fails it.
    else if ((job.request.deadline_at ?? Number.POSITIVE_INFINITY) > this.#clock()) this.#enqueue(job);
  }

  /** Resumes the pending webhook deliveries of stored terminal jobs (fleet mode: a dead gateway's). */
  resumeWebhooks(jobs: JobRecord[]): void {
    this.#webhooks.resume(jobs);
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
   * A job's position while it is queued (null otherwise), where jobs may also wait beyond this
   * process (the fleet's shared queue): then a read there.
   */
  async queuePositionOf(job: Pick<JobRecord, 'id' | 'status'>): Promise<number | null> {
    return job.status === 'queued' ? this.queuePosition(job.id) : null;
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
    const own = this.#runTimes.of(live);
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
    const ahead =
      own === null
        ? undefined
        : this.#runTimes.ahead(
            now,
            job.id,
            this.#live,
            () => this.#scheduler.waitingIds(),
            () => this.#scheduler.position(job.id),
          );
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

  /** Latest preview of a live job (SSE snapshot). */
  latestPreview(id: string): JobPreview | null {
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
      this.#publisher.status(live);
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
    const off = this.events.subscribe(
      id,
      (event) => {
        if (event.type === 'status' && isTerminal(event.data.status)) resolve();
      },
      undefined,
      { endOnly: true },
    );
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
        job.error = errorOf(err, 'input_fetch_failed');
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
      this.#publisher.progress(live);
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
        job.error = errorOf(err, 'model_provisioning_failed');
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
          this.#publisher.status(live);
          this.emit('started', job);
        }
        return;
      }
      case 'preview':
        this.#publisher.preview(live, event);
        return;
      default:
        if (live.tracker?.apply(event)) {
          job.progress = live.tracker.snapshot();
          this.#publisher.progress(live);
        }
    }
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
        this.#publisher.outputs(job);
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
        this.#publisher.status(live);
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
    if (status !== 'failed' || !this.#webhooks.urlOf(job) || this.#webhookHoldMs <= 0 || this.#closing) {
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
    const sent = this.#webhooks.terminal(job, terminal, (delivery) => {
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
    if (status === 'succeeded' && job.execution_ms !== null) this.#runTimes.record(live, job.execution_ms);
    // The delivery record (the outbox entry) is written with the terminal state, in one commit.
    if (!webhookSent) this.#webhooks.terminal(job);
    this.#persist(live);
    this.#live.delete(job.id);
    this.#scheduler.release(job.id, job.request.serial_key);
    this.#recent.set(job.id, job);
    if (this.#recent.size > RECENT_JOBS) this.#recent.delete(this.#recent.keys().next().value as string);
    this.#publisher.status(live, job.outputs);
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

  /** Re-holds the jobs a previous process left unfinished; recovery.ts decides what becomes of each. */
  async #recover(): Promise<void> {
    const unfinished = this.#store.listUnfinished();
    if (unfinished.length === 0) return;
    const logger = this.#o.logger;
    logger?.info({ jobs: unfinished.length }, 'recovering unfinished jobs');
    const located = unfinished.some((job) => !job.instance_id)
      ? await locatePrompts(this.#pool, logger)
      : new Map<string, string>();
    const pending: Array<Promise<void>> = [];
    for (const job of unfinished) {
      const step = recoveryStep(job, located);
      const live = newLive(job);
      this.#live.set(job.id, live);
      this.#armDeadline(live);
      if (step === 'fail') this.#finish(live, 'failed');
      else if (step === 'cancel') this.#finish(live, 'canceled');
      else if (step === 'admit') this.#admit(live);
      else {
        pending.push(this.#reattach(live));
        // Bound the number of instances probed at once.
        if (pending.length >= 16) await Promise.all(pending.splice(0));
      }
    }
    await Promise.all(pending);
  }

  /** Re-attaches a dispatched job to its prompt, or moves it on when its instance lost the prompt. */
  async #reattach(live: LiveJob): Promise<void> {
    const job = live.job;
    const lease = await reattachLease(this.#pool, job, this.#o.logger);
    if (lease) {
      this.#startAttempt(live, lease, 'attach');
      if (job.status === 'canceling') live.controller?.abort({ kind: 'cancel' } satisfies AbortReason);
      return;
    }
    const next = promptLost(job, this.#clock(), this.#o.maxAttempts);
    if (next !== 'requeue') {
      this.#finish(live, next);
      return;
    }
    if (job.status === 'running') transition(job, 'queued', this.#clock(), this.#o.retentionMs);
    job.instance_id = null;
    this.#persist(live);
    this.#enqueue(job);
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
      this.#publisher.close();
      // Failed jobs waiting for their webhook's first attempt are reported (and stored) now.
      for (const live of [...this.#live.values()]) live.settle?.();
      for (const live of this.#live.values()) {
        live.prefetching?.abort();
        live.prefetched?.release();
        for (const timer of [live.progressTimer, live.retryTimer, live.deadlineTimer])
          if (timer) clearTimeout(timer);
        if (live.persistTimer) this.#persist(live);
      }
      await this.#webhooks.close(options.graceMs ?? 5000);
      this.events.close();
      this.#live.clear();
      this.#recent.clear();
      this.#store.close();
    })();
    return this.#closing;
  }
}

/** Attempts during which the instance went down mid-execution before a job is failed as suspect. */
const DEFAULT_SUSPECT_ATTEMPTS = 2;

/** How many finished jobs stay in memory for cheap reads (bounded; the store has them all). */
const RECENT_JOBS = 1024;

/** The job error for a failure with a `{code, message, details?}` shape (input fetch, model downloads). */
function errorOf(err: unknown, fallbackCode: string): JobError {
  const e = err as { code?: unknown; message?: unknown; details?: unknown };
  return {
    code: typeof e.code === 'string' ? e.code : fallbackCode,
    message: typeof e.message === 'string' ? e.message : String(err),
    ...(e.details && typeof e.details === 'object' ? { details: e.details as Record<string, unknown> } : {}),
  };
}
