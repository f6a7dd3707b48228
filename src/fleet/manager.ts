// The JobManager of one gateway in a fleet. Submissions are admitted in Redis (record, idempotency
// claim, fleet-wide queue bound) and queued on BullMQ; the gateway runs only what its worker takes
// from the shared queue, on the instances it leases, through the single-mode machinery (adopt():
// queue here, or re-attach to a prompt already on an instance). Reads, listings, event streams and
// cancels reach jobs any gateway runs: records come from Redis, events over pub/sub, cancels over
// a control channel plus a flag a gateway about to take the job reads.
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { GatewayError } from '../errors.ts';
import {
  countByStatus,
  IdempotencyKeyReuseError,
  isTerminal,
  JobManager,
  type JobManagerOptions,
  JobNotFoundError,
  type JobPage,
  type JobRecord,
  type JobStatus,
  type ListQuery,
  newJob,
  NoInstanceAvailableError,
  QueueFullError,
  recordAttempt,
  ShuttingDownError,
  type SubmitInput,
  transition,
} from '../jobs/index.ts';
import type { FleetEvents } from './events.ts';
import type { FleetKeys } from './keys.ts';
import type { LeasedPool } from './leased-pool.ts';
import type { InstanceLeases } from './leases.ts';
import type { FleetQueue, TakenEntry } from './queue.ts';
import type { RedisJobStore } from './redis-store.ts';

/** Redis cannot be reached: the submission was not recorded (503, retry). */
export class StoreUnavailableError extends GatewayError {
  constructor(cause?: unknown) {
    super('store_unavailable', 503, 'The job store (Redis) is unavailable; retry shortly.', {
      retryAfter: 2,
      cause,
    });
  }
}

/** The fleet parts a FleetJobManager drives (built by startFleet). */
export interface FleetParts {
  store: RedisJobStore;
  queue: FleetQueue;
  events: FleetEvents;
  leases: InstanceLeases;
  pool: LeasedPool;
  keys: FleetKeys;
  gatewayId: string;
  /** INSTANCE_LEASE_MS: a gateway silent this long is dead (its leases and webhooks move). */
  leaseMs: number;
  /** Subscriber connection (control channel). */
  subscriber: Redis;
}

/** How a held queue entry ends: its job ended ('done') or this gateway stops ('handback'). */
type Outcome = 'done' | 'handback';

/** JobManager over the fleet's shared store, queue, leases and events. */
export class FleetJobManager extends JobManager {
  readonly #f: FleetParts;
  readonly #maxQueue: number;
  readonly #retentionMs: number;
  readonly #newId: () => string;
  readonly #clock: () => number;
  readonly #log: JobManagerOptions['logger'];
  readonly #noInstanceRetryAfterS: number;
  #admissions = new Map<string, Promise<void>>();
  /**
   * Admissions to run here at once whose script is out: they count against this gateway's slots,
   * or a burst of submissions in one turn would all be admitted to run here, past its free slots,
   * and wait here while other gateways could run them.
   */
  #admittingHere = 0;
  #lastAdmission: Promise<void> | null = null;
  /**
   * Jobs admitted here: when this gateway takes their entry first, their record is in memory, and
   * their terminal event needs no record (their caller waits here).
   */
  #admitted = new WeakSet<JobRecord>();
  /**
   * Jobs whose admission transaction is out: the worker may take the entry before the reply is
   * handled (another connection), and the record is in memory already (it read it back then).
   */
  #sent = new Map<string, JobRecord>();
  /** Cancels heard over the control channel for jobs not held here (yet): a take checks them. */
  #cancels = new LRUCache<string, true>({ max: 10_000 });
  /** Queue entries this gateway holds, by job id (more than one when an entry came back to us). */
  #held = new Map<string, Array<(outcome: Outcome) => void>>();
  #waiting = 0;
  #waitingTimer: NodeJS.Timeout | null = null;
  #outboxTimer: NodeJS.Timeout | null = null;
  #runningTimer: NodeJS.Timeout | null = null;
  /**
   * Deadlines (/prompt_sync) of jobs admitted here, for while they wait in the fleet's queue; each
   * ends at its deadline or when this gateway sees the job end, so the map is bounded by them.
   */
  #deadlines = new Map<string, NodeJS.Timeout>();
  #closed = false;
  #closingFleet: Promise<void> | null = null;

  constructor(options: Omit<JobManagerOptions, 'store' | 'pool' | 'events'>, fleet: FleetParts) {
    // A job's start is saved at once, not a second later as in single mode: its `running` event
    // then goes out with the save (one script either way), so no gateway reads `queued` after it
    // heard `running` (a stream opened meanwhile would have lost the start).
    super({ ...options, lazyPersistMs: 0, store: fleet.store, pool: fleet.pool, events: fleet.events });
    this.#f = fleet;
    this.#maxQueue = options.maxQueue;
    this.#retentionMs = options.retentionMs;
    this.#newId = options.newId ?? randomUUID;
    this.#clock = options.clock ?? Date.now;
    this.#log = options.logger;
    this.#noInstanceRetryAfterS = options.noInstanceRetryAfterS ?? 5;
    this.on('terminal', (job: JobRecord) => {
      // A job run without an entry: its terminal write clears its running-hash field. It may
      // still have an entry held here (queued by a gateway that took this one for dead).
      if (fleet.store.forgetHere(job.id)) this.#setSlots();
      void this.#completeWhenStored(job.id);
    });
    fleet.leases.on('change', (owned: ReadonlySet<string>) => {
      fleet.pool.setOwned(owned);
      this.#setSlots();
      this.#log?.info({ instances: [...owned] }, 'instance leases changed');
    });
    fleet.subscriber.on('message', this.#onControl);
    fleet.queue.handle((entry) => this.take(entry));
    // The fleet's queue is empty as of now: jobs may run here at once again without waiting up
    // to a second for the next count (after a burst, c=1 jobs took the queue until then).
    fleet.queue.onDrained(() => {
      this.#waiting = 0;
    });
    fleet.events.setLocal((id) => this.holds(id));
    fleet.events.setFinalRecord((id) => {
      const job = fleet.store.get(id);
      return job && !this.#admitted.has(job) ? job : undefined;
    });
  }

  /** Gateway id in the fleet (leases and events carry it). */
  get gatewayId(): string {
    return this.#f.gatewayId;
  }

  /** Instances this gateway drives now. */
  get leasedInstances(): ReadonlySet<string> {
    return this.#f.pool.owned;
  }

  /** Jobs waiting fleet-wide (refreshed every second) plus those waiting here for a slot. */
  override get queued(): number {
    return this.#waiting + super.queued;
  }

  override async start(): Promise<void> {
    await super.start();
    await this.#f.subscriber.subscribe(this.#f.keys.control);
    await this.#f.events.ready();
    await this.#f.leases.start();
    this.#f.pool.setOwned(this.#f.leases.owned);
    this.#setSlots();
    await this.#refreshWaiting();
    await this.#resumeOutbox();
    await this.#takeOverRunning();
  }

  /**
   * The worker takes at most as many entries as this gateway has slots left beside the jobs it
   * runs without an entry (so it never holds entries it cannot start while another gateway could).
   */
  #setSlots(): void {
    this.#f.queue.setSlots(Math.max(0, this.#f.pool.slots() - this.#f.store.runningHere));
  }

  /**
   * Jobs run without a queue entry by gateways whose heartbeat stopped for a lock time (as long as
   * a dead gateway's queue entries stay locked) go onto the queue, marked so the gateway that takes
   * one re-attaches to its prompt or finds it on the instances (checked every quarter lease).
   */
  async #takeOverRunning(): Promise<void> {
    try {
      const ids = await this.#f.store.claimRunning(this.#clock() - Math.floor(this.#f.leaseMs * 0.75));
      if (ids.length > 0 && !this.#closed) {
        this.#log?.info({ jobs: ids.length }, 'fleet: queueing jobs a stopped gateway ran');
        for (const id of ids) await this.#handOver(id, (await this.#f.store.load(id)) ?? null);
      }
    } catch (err) {
      this.#log?.warn({ err }, 'fleet: could not take over the jobs of a stopped gateway');
    }
    if (this.#closed) return;
    this.#runningTimer = setTimeout(() => void this.#takeOverRunning(), Math.max(100, this.#f.leaseMs / 4));
    this.#runningTimer.unref();
  }

  /**
   * Puts a job run without an entry onto the shared queue (marked: its prompt may be on an
   * instance) and takes it out of the running hash, in one transaction; an ended or missing job
   * only leaves the hash.
   */
  async #handOver(id: string, job: JobRecord | null): Promise<void> {
    const { store, queue, keys } = this.#f;
    store.forgetHere(id);
    if (!job || isTerminal(job.status)) {
      await store.dropRunning(id);
      return;
    }
    const results = await queue.addAfter(id, job.priority, undefined, (tx) => tx.hdel(keys.running, id), {
      retaken: true,
    });
    const failed = results.find(([err]) => err);
    if (failed) throw failed[0];
  }

  /**
   * The fleet's webhook outbox: the pending deliveries of gateways that died or stopped are
   * claimed and resumed here (at start, then every half lease), as a restarted single gateway
   * resumes its own.
   */
  async #resumeOutbox(): Promise<void> {
    try {
      const jobs = await this.#f.store.claimPendingWebhooks(this.#clock() - this.#f.leaseMs);
      if (jobs.length > 0 && !this.#closed) {
        this.#log?.info({ jobs: jobs.length }, 'fleet: resuming webhook deliveries another gateway left');
        this.resumeWebhooks(jobs);
      }
    } catch (err) {
      this.#log?.warn({ err }, 'fleet: could not read the webhook outbox');
    }
    if (this.#closed) return;
    this.#outboxTimer = setTimeout(() => void this.#resumeOutbox(), Math.max(500, this.#f.leaseMs / 2));
    this.#outboxTimer.unref();
  }

  /** Where a job waits: here (for a slot) or in the fleet's queue; null when not waiting or Redis is away. */
  override async queuePositionOf(job: Pick<JobRecord, 'id' | 'status'>): Promise<number | null> {
    if (job.status !== 'queued') return null;
    const here = this.queuePosition(job.id);
    if (here !== null) return here;
    return this.#f.queue.position(job.id).catch(() => null);
  }

  async #refreshWaiting(): Promise<void> {
    try {
      this.#waiting = await this.#f.queue.waiting();
    } catch {
      // Redis away: keep the last figure.
    }
    // Streams here of jobs waiting in the fleet's queue hear their position once a second, as
    // those of jobs waiting here do (JobPublisher); one pipelined read per such job.
    const remote = this.#f.events.remoteWaiting();
    if (remote.length > 0) {
      const positions = await Promise.all(remote.map((id) => this.#f.queue.position(id).catch(() => null)));
      remote.forEach((id, i) => {
        const position = positions[i];
        if (position !== null && position !== undefined) this.#f.events.notePosition(id, position);
      });
    }
    if (this.#closed) return;
    this.#waitingTimer = setTimeout(() => void this.#refreshWaiting(), 1000);
    this.#waitingTimer.unref();
  }

  override submit(input: SubmitInput): JobRecord {
    if (this.#closed) throw new ShuttingDownError();
    const job = newJob({
      id: this.#newId(),
      now: this.#clock(),
      retentionMs: this.#retentionMs,
      workflow: input.workflow,
      ...(input.priority !== undefined ? { priority: input.priority } : {}),
      ...(input.request ? { request: input.request } : {}),
      idempotencyKey: input.idempotencyKey ?? null,
    });
    // A caller that waits gets 503 at once when no instance of the fleet can run it now.
    if (input.sync && !this.#f.pool.canRunNow(job.class_types)) {
      throw new NoInstanceAvailableError(this.#noInstanceRetryAfterS, { class_types: job.class_types });
    }
    const admission = this.#admit(job, input);
    this.#admissions.set(job.id, admission);
    this.#lastAdmission = admission;
    admission.then(
      () => this.#admissions.delete(job.id),
      () => this.#admissions.delete(job.id),
    );
    return job;
  }

  async #admit(job: JobRecord, input: SubmitInput): Promise<void> {
    const key = input.idempotencyKey ?? null;
    const { store, queue } = this.#f;
    const options = { maxQueue: this.#maxQueue, ...queue.waitKeys, entryKey: queue.entryKey(job.id) };
    if (this.#canRunHere(job, input)) {
      let admitted: Awaited<ReturnType<RedisJobStore['admitHere']>>;
      this.#admittingHere++;
      try {
        admitted = await store.admitHere(job, key, options);
      } catch (err) {
        throw new StoreUnavailableError(err);
      } finally {
        this.#admittingHere--;
      }
      if (admitted === 'duplicate') throw new IdempotencyKeyReuseError();
      if (admitted === 'full')
        throw new QueueFullError(Math.min(60, Math.max(1, Math.ceil(this.#waiting / 10))));
      this.#admitted.add(job);
      this.#runHere(job);
      return;
    }
    // One round trip, one transaction: the record first, the queue entry second, so a worker that
    // takes the entry always finds the record; a refused admission makes the add a no-op.
    let results: Array<[Error | null, unknown]>;
    let admitted: ReturnType<RedisJobStore['admitted']>;
    // A taken entry means the admission went through (a refusal makes the add a no-op).
    this.#admitted.add(job);
    this.#sent.set(job.id, job);
    try {
      results = await queue.addAfter(job.id, job.priority, input.extraData, (transaction) =>
        store.queueAdmission(transaction, job, key, options),
      );
      admitted = store.admitted(job, results[0]);
    } catch (err) {
      throw new StoreUnavailableError(err);
    } finally {
      this.#sent.delete(job.id);
    }
    if (admitted === 'duplicate') throw new IdempotencyKeyReuseError();
    if (admitted === 'full')
      throw new QueueFullError(Math.min(60, Math.max(1, Math.ceil(this.#waiting / 10))));
    const [addError] = results.at(-1) ?? [new Error('no reply')];
    if (addError) {
      // Recorded but not queued: nobody would run it, so it ends failed instead of waiting forever.
      job.error = { code: 'store_unavailable', message: 'The job could not be queued.' };
      transition(job, 'failed', this.#clock(), this.#retentionMs);
      this.#f.store.update(job);
      if (key) this.#f.store.releaseIdempotencyKey(key);
      throw new StoreUnavailableError(addError);
    }
    const deadline = job.request.deadline_at;
    if (deadline !== undefined) this.#armQueueDeadline(job, deadline);
  }

  /**
   * Whether a job submitted here runs here at once, without a queue entry: nothing waits in the
   * fleet's queue (as last counted, or since this gateway's worker found it empty) or here, a
   * leased instance has a free slot for it (beside the jobs being admitted to run here), and the
   * worker keeps a slot for entries. BullMQ's add, move to active and completion (three quarters
   * of a job's Redis commands) and the hop to another gateway are then skipped; a job with
   * ComfyUI extra_data keeps its entry (the entry is where that travels).
   */
  #canRunHere(job: JobRecord, input: SubmitInput): boolean {
    if (this.#closed || input.extraData || this.#waiting > 0 || super.queued > 0) return false;
    const { pool, store } = this.#f;
    return pool.slots() - store.runningHere - this.#admittingHere > 1 && pool.hasFreeSlot(job.class_types);
  }

  /** Runs a job admitted to run here (named in the running hash) from memory. */
  #runHere(job: JobRecord): void {
    this.#setSlots();
    this.adopt(job);
    if (this.#cancels.has(job.id) && this.holds(job.id)) this.cancel(job.id);
    // Not adopted: this gateway is stopping; the queue takes the job.
    if (!this.holds(job.id) && !isTerminal(job.status))
      this.#handOver(job.id, job).catch((err: unknown) =>
        this.#log?.warn({ err, job_id: job.id }, 'fleet: could not queue a job at shutdown'),
      );
  }

  /**
   * A job with a deadline (/prompt_sync) that no gateway took by then is taken off the fleet's
   * queue and adopted here, past its deadline, so it fails `timeout` as in single mode (webhook
   * included). A gateway that took it in time bounds it itself (adopt() arms the deadline).
   */
  #armQueueDeadline(job: JobRecord, deadline: number): void {
    const timer = setTimeout(
      () => {
        this.#deadlines.delete(job.id);
        if (this.#closed) return;
        this.#f.queue
          .remove(job.id)
          .then((removed) => {
            if (removed && !this.#closed) this.adopt(job);
          })
          .catch((err: unknown) => this.#log?.warn({ err, job_id: job.id }, 'fleet: deadline check failed'));
      },
      Math.max(0, deadline - this.#clock()),
    );
    timer.unref();
    this.#deadlines.set(job.id, timer);
  }

  #forgetDeadline(id: string): void {
    const timer = this.#deadlines.get(id);
    if (!timer) return;
    clearTimeout(timer);
    this.#deadlines.delete(id);
  }

  override async create(input: SubmitInput): Promise<JobRecord> {
    const job = this.submit(input);
    await this.#admissions.get(job.id);
    return job;
  }

  /** Resolves once the latest submission is recorded fleet-wide; rejects with why it was not. */
  override async durable(): Promise<void> {
    await this.#lastAdmission;
  }

  override hasIdempotencyKey(): boolean {
    // Checked atomically at admission (fleet-wide); durable()/create() report a reuse.
    return false;
  }

  override async fetch(id: string): Promise<JobRecord> {
    if (this.holds(id)) return this.require(id);
    let job: JobRecord | undefined;
    try {
      job = await this.#f.store.load(id);
    } catch (err) {
      const cached = this.get(id);
      if (cached) return cached;
      throw new StoreUnavailableError(err);
    }
    if (!job || job.expires_at <= this.#clock()) throw new JobNotFoundError(id);
    return job;
  }

  /**
   * As in single mode. A job another gateway runs ends here with the record its terminal event
   * carried; it is read back from Redis only when that did not arrive (the event came before
   * this gateway had a copy of the job).
   */
  override async waitForTerminal(id: string, signal: AbortSignal): Promise<JobRecord> {
    if (!this.holds(id) && !this.get(id)) await this.fetch(id);
    let job = await super.waitForTerminal(id, signal);
    if (!this.holds(id) && !isTerminal(job.status)) job = await this.fetch(id).catch(() => job);
    if (isTerminal(job.status)) this.#forgetDeadline(id);
    return job;
  }

  override async fetchPage(query: ListQuery): Promise<JobPage> {
    let page: JobPage;
    try {
      page = await this.#f.store.page(query);
    } catch (err) {
      throw new StoreUnavailableError(err);
    }
    return { ...page, jobs: page.jobs.map((j) => (this.holds(j.id) ? (this.get(j.id) ?? j) : j)) };
  }

  override async requestCancel(id: string): Promise<JobRecord> {
    if (this.holds(id)) return this.cancel(id);
    const job = await this.fetch(id);
    if (isTerminal(job.status)) return job;
    this.#cancels.set(id, true);
    try {
      await this.#f.store.flagCancel(id);
      this.#f.store.publish(this.#f.keys.control, JSON.stringify({ cancel: id, g: this.#f.gatewayId }));
      if (job.status === 'queued' && (await this.#f.queue.remove(id))) {
        // Nobody held it: it ends here.
        transition(job, 'canceled', this.#clock(), this.#retentionMs);
        this.#f.store.update(job);
        this.events.emit(id, {
          type: 'status',
          data: { status: 'canceled', queue_position: null, outputs: [] },
        });
        await this.#f.store.durable();
        return job;
      }
    } catch (err) {
      throw new StoreUnavailableError(err);
    }
    // The gateway holding it interrupts the prompt; the record follows.
    return { ...job, status: 'canceling' };
  }

  #onControl = (channel: string, message: string): void => {
    if (channel !== this.#f.keys.control) return;
    try {
      const command = JSON.parse(message) as { cancel?: unknown; leases?: unknown };
      if (typeof command.cancel === 'string') {
        if (this.holds(command.cancel)) this.cancel(command.cancel);
        else this.#cancels.set(command.cancel, true);
      }
      // Another gateway joined, left or gave instances back: rebalance now, not at the next beat.
      if (typeof command.leases === 'string' && command.leases !== this.#f.gatewayId && !this.#closed)
        void this.#f.leases.tick();
    } catch {
      // Not ours.
    }
  };

  /** Redis expires the records; this prunes their entries from the listing index. */
  override sweep(): number {
    this.#f.store
      .sweep(this.#clock(), this.#retentionMs)
      .catch((err: unknown) => this.#log?.warn({ err }, 'fleet: index sweep failed'));
    return 0;
  }

  override counts(): Record<JobStatus, number> {
    return { ...countByStatus(), queued: this.queued, running: this.inFlight };
  }

  /** BullMQ processor: runs one taken entry until its job is terminal (or hands it back). */
  async take(entry: TakenEntry): Promise<Outcome> {
    if (this.#closed) return 'handback';
    const { id } = entry;
    // The entry of a job running here came back (our lock lapsed during a stall): this delivery
    // is held too until the job ends; completing it now would drop the entry of a running job.
    if (this.#held.has(id) || this.holds(id)) return this.#hold(id);
    const taken = this.#takenHere(entry) ?? (await this.#read(id));
    if (!taken) return 'handback';
    const { job } = taken;
    const cancel = taken.cancel || this.#cancels.has(id);
    // No record: its admission failed (or it expired); nothing to run.
    if (!job || isTerminal(job.status)) return 'done';
    if (entry.retaken && !job.instance_id) await this.#locate(job);
    if (this.#held.has(id) || this.holds(id)) return this.#hold(id);
    if (this.#closed) return 'handback';
    const held = this.#hold(id);
    if (cancel && job.status === 'queued' && !job.instance_id) {
      transition(job, 'canceling', this.#clock(), this.#retentionMs);
    }
    this.adopt(job, entry.extraData);
    if (cancel && this.holds(id)) this.cancel(id);
    // Ended at once (canceled), or not adopted at all (this gateway is stopping).
    if (!this.holds(id)) {
      if (isTerminal(job.status)) void this.#completeWhenStored(id);
      else this.#release(id, 'handback');
    }
    return held;
  }

  /**
   * The record of an entry this gateway admitted and is the first to take, from memory: nobody
   * wrote it since (a cancel elsewhere sets only a flag, and its control message reaches this
   * gateway, before or after the take), so the read of the taken record, one round trip on every
   * job's path, is skipped. Null for an entry another gateway held before (always read).
   */
  #takenHere(entry: TakenEntry): { job: JobRecord; cancel: boolean } | null {
    if (entry.retaken) return null;
    const job = this.#sent.get(entry.id) ?? this.#f.store.get(entry.id);
    if (!job || !this.#admitted.has(job) || job.status !== 'queued') return null;
    return { job, cancel: false };
  }

  /** Holds a delivery of job `id` until the job ends here or this gateway stops. */
  #hold(id: string): Promise<Outcome> {
    const { promise, resolve } = Promise.withResolvers<Outcome>();
    const waiting = this.#held.get(id);
    if (waiting) waiting.push(resolve);
    else this.#held.set(id, [resolve]);
    return promise;
  }

  /**
   * Completes a finished job's entry once its terminal state is in Redis: completing it first, a
   * gateway killed in between left a record that never ends and no entry to finish it.
   */
  async #completeWhenStored(id: string): Promise<void> {
    for (let delay = 50; !this.#closed; delay = Math.min(delay * 2, 1000)) {
      try {
        await this.#f.store.durable();
        break;
      } catch {
        // Redis away: the write is kept and replayed; the entry waits for it.
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
    this.#release(id, 'done');
  }

  #release(id: string, outcome: Outcome): void {
    const waiting = this.#held.get(id);
    if (!waiting) return;
    this.#held.delete(id);
    for (const resolve of waiting) resolve(outcome);
  }

  /**
   * The record of a taken entry, retried while Redis is away: a processor that threw would have
   * BullMQ fail the entry, and the job would wait forever. Null when this gateway is closing.
   */
  async #read(id: string): Promise<Awaited<ReturnType<RedisJobStore['take']>> | null> {
    for (let delay = 50; ; delay = Math.min(delay * 2, 1000)) {
      if (this.#closed) return null;
      try {
        return await this.#f.store.take(id);
      } catch (err) {
        this.#log?.warn({ err, job_id: id }, 'fleet: could not read a taken job; retrying');
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /**
   * A job a dead gateway held without its dispatch reaching Redis: the prompt (id = job id) may be
   * on an instance already. Ask each instance, so it is re-attached instead of run a second time.
   */
  async #locate(job: JobRecord): Promise<void> {
    const pool = this.#f.pool;
    const found = await Promise.all(
      pool.list().map(async ({ id }) => {
        const client = pool.client(id);
        if (!client) return null;
        try {
          const state = await client.getPromptState(job.id, { signal: AbortSignal.timeout(5000) });
          return state === 'unknown' ? null : id;
        } catch {
          return null;
        }
      }),
    );
    const instanceId = found.find((id) => id !== null);
    if (instanceId) recordAttempt(job, instanceId, job.updated_at);
  }

  /**
   * Stops taking work, detaches from running prompts (they keep running), writes every state out,
   * hands held queue entries back so other gateways take them at once, gives the instance leases
   * back, then closes the store side. Idempotent.
   */
  override close(options: { graceMs?: number } = {}): Promise<void> {
    this.#closingFleet ??= (async () => {
      this.#closed = true;
      for (const timer of [
        this.#waitingTimer,
        this.#outboxTimer,
        this.#runningTimer,
        ...this.#deadlines.values(),
      ])
        if (timer) clearTimeout(timer);
      this.#deadlines.clear();
      const f = this.#f;
      await f.queue.pause().catch(() => {});
      await super.close(options);
      await f.store.drain(AbortSignal.timeout(options.graceMs ?? 5000));
      for (const id of [...this.#held.keys()]) this.#release(id, 'handback');
      // Jobs run here without an entry get one now, so other gateways take them at once.
      for (const id of f.store.runningHereIds()) {
        await this.#handOver(id, f.store.get(id) ?? null).catch((err: unknown) =>
          this.#log?.warn(
            { err, job_id: id },
            'fleet: could not hand a job over; the fleet takes it after the lease',
          ),
        );
      }
      await f.leases.close();
      await f.queue.close();
      f.subscriber.off('message', this.#onControl);
      f.events.close();
      f.pool.close();
      f.store.dispose();
    })();
    return this.#closingFleet;
  }
}
