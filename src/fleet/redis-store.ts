// The Redis JobStore of fleet mode: one hash per job (status, state JSON, workflow JSON written
// once, cancel flag), a created_at index for listing, idempotency claims with SET NX semantics inside the
// admission script, and Redis TTLs for retention (terminal records expire JOB_RETENTION_MS after
// they end). The JobManager's synchronous calls (update, get) work on a bounded local cache and a
// write-behind queue flushed once per turn of the event loop in one pipeline; job events go out
// through the same pipeline, published by the script that saves the state they describe (or, with
// no state to save, by one of their own) to the inboxes of the gateways listed as watching the job
// (field g: the gateway that admitted it and any that subscribed since), so a gateway that registers
// and then reads never misses the end of a job, and no gateway receives the events of jobs it
// does not watch. A terminal record never changes status again (the
// save script checks; its webhook deliveries are still written), a pending webhook is listed in
// the fleet's outbox under the gateway delivering it, and writes that fail while Redis is down are kept (latest state per job) and
// replayed when it is back; a record Redis lost (restart without persistence) is written whole again.
import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import {
  countByStatus,
  isTerminal,
  type JobPage,
  type JobRecord,
  type JobStatus,
  type JobStore,
  type ListQuery,
  pageOf,
} from '../jobs/index.ts';
import { decodeCursor, encodeCursor, IDEMPOTENCY_TTL_MS } from '../jobs/store.ts';
import type { FleetKeys } from './keys.ts';

/** Answer of the admission script. */
export type Admission = 'ok' | 'duplicate' | 'full';

// KEYS: job, index, idempotency (or the job key when there is none), BullMQ wait, BullMQ prioritized,
// the job's BullMQ entry, the fleet's running hash. ARGV: id, status, state, workflow, created_at,
// max queue, idempotency TTL, has-key flag, runner id ('' unless the admitting gateway runs the
// job at once, without a queue entry: it is then named in the running hash, atomically with the
// record, so the fleet takes the job over if that gateway dies), admitting gateway id (its first
// watcher: a caller waiting there hears the job's events). Otherwise it runs just before
// BullMQ's add of the entry, in the same transaction: a refusal leaves a short-lived placeholder
// under the entry's id, so that add is a no-op (BullMQ ignores a job id it already has) and a
// refused job never reaches the queue.
const ADMIT = `
local refused = nil
if ARGV[8] == '1' and redis.call('EXISTS', KEYS[3]) == 1 then refused = 'duplicate'
elseif redis.call('LLEN', KEYS[4]) + redis.call('ZCARD', KEYS[5]) >= tonumber(ARGV[6]) then refused = 'full' end
if refused then
  redis.call('HSET', KEYS[6], 'refused', refused)
  redis.call('PEXPIRE', KEYS[6], 60000)
  return refused
end
if ARGV[8] == '1' then redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[7]) end
redis.call('HSET', KEYS[1], 's', ARGV[2], 'd', ARGV[3], 'w', ARGV[4], 'g', ARGV[10])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
if ARGV[9] ~= '' then redis.call('HSET', KEYS[7], ARGV[1], ARGV[9]) end
return 'ok'`;

/**
 * Lua that publishes a job's events (message `MESSAGE`) to the inbox (`INBOX` .. id) of every
 * gateway its hash (KEYS[1]) lists as watching it, except the publisher (`SELF`).
 */
const emitLua = (self: string, inbox: string, message: string) => `
local watchers = redis.call('HGET', KEYS[1], 'g')
if watchers then
  for id in string.gmatch(watchers, '[^,]+') do
    if id ~= ${self} then redis.call('PUBLISH', ${inbox} .. id, ${message}) end
  end
end`;

// KEYS: job. ARGV: gateway id (the publisher), message, inbox channel prefix.
const EMIT = `${emitLua('ARGV[1]', 'ARGV[3]', 'ARGV[2]')}
return 1`;

// KEYS: job. ARGV: gateway id, TTL ms of a hash this creates (the record is not there: Redis lost
// it and its runner has not written it again yet, or it never was). Lists the gateway as watching
// the job (once) and answers the job's status (nil without a record).
const WATCH = `
local watchers = redis.call('HGET', KEYS[1], 'g')
local listed = false
if watchers then
  for id in string.gmatch(watchers, '[^,]+') do
    if id == ARGV[1] then listed = true break end
  end
end
if not listed then
  redis.call('HSET', KEYS[1], 'g', watchers and (watchers .. ',' .. ARGV[1]) or ARGV[1])
  if redis.call('HEXISTS', KEYS[1], 's') == 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
end
return redis.call('HGET', KEYS[1], 's')`;

// KEYS: job. Sets the cancel flag of an existing record only.
const FLAG = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HSET', KEYS[1], 'c', '1')`;

// KEYS: job, webhook outbox, running hash. ARGV: status, state, TTL ms (0 = none: a terminal
// state has one), webhook ('1' pending, '0' none pending any more, '' never had one), gateway id,
// job id, the job's events to publish after the state ('' none), inbox channel prefix. -1: the
// record is gone; 0: it ended with another status (the events are not published: whoever ended it
// published its end). A terminal record takes writes of its own status only (the deliveries of
// its webhook); the outbox names the gateway delivering a pending webhook. A job's terminal state
// takes it out of the running hash in the same step.
const SAVE = `
local cur = redis.call('HGET', KEYS[1], 's')
if not cur then return -1 end
if cur ~= ARGV[1] and (cur == 'succeeded' or cur == 'failed' or cur == 'canceled' or cur == 'expired') then return 0 end
redis.call('HSET', KEYS[1], 's', ARGV[1], 'd', ARGV[2])
if ARGV[3] ~= '0' then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('HDEL', KEYS[3], ARGV[6])
end
if ARGV[4] == '1' then redis.call('HSET', KEYS[2], ARGV[6], ARGV[5])
elseif ARGV[4] == '0' then redis.call('HDEL', KEYS[2], ARGV[6]) end
if ARGV[7] ~= '' then${emitLua('ARGV[5]', 'ARGV[8]', 'ARGV[7]')}
end
return 1`;

// KEYS: a hash of job id → gateway (the webhook outbox, or the running hash), gateways. ARGV:
// gateway id, heartbeat cutoff (ms), most to claim. Claims the entries of gateways without a
// heartbeat since the cutoff (dead or gone): they name the claimer from then on.
const CLAIM = `
local entries = redis.call('HGETALL', KEYS[1])
local alive = {}
local out = {}
for i = 1, #entries, 2 do
  local owner = entries[i + 1]
  if owner ~= ARGV[1] then
    if alive[owner] == nil then
      local beat = redis.call('ZSCORE', KEYS[2], owner)
      alive[owner] = beat ~= false and tonumber(beat) >= tonumber(ARGV[2])
    end
    if not alive[owner] then
      redis.call('HSET', KEYS[1], entries[i], ARGV[1])
      out[#out + 1] = entries[i]
      if #out >= tonumber(ARGV[3]) then break end
    end
  end
end
return out`;

// KEYS: job, index, running hash. ARGV: id, status, state, workflow, created_at, TTL ms (0 =
// none), gateway id ('' unless it runs the job without a queue entry). The hash may hold only
// the gateways that watched the job since Redis lost it (WATCH): they are kept.
const RESTORE = `
if redis.call('HEXISTS', KEYS[1], 's') == 1 then return 0 end
redis.call('HSET', KEYS[1], 's', ARGV[2], 'd', ARGV[3], 'w', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
if ARGV[6] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[6])
else
  redis.call('PERSIST', KEYS[1])
  if ARGV[7] ~= '' then redis.call('HSET', KEYS[3], ARGV[1], ARGV[7]) end
end
return 1`;

/** A transaction (MULTI) that commands can be queued on. */
type Transaction = ReturnType<Redis['multi']>;

/** What an admission checks besides the record: the fleet-wide bound and BullMQ's keys. */
export interface AdmitOptions {
  maxQueue: number;
  waitKey: string;
  prioritizedKey: string;
  entryKey: string;
}

type FleetRedis = Redis & {
  cgwAdmit(...args: Array<string | number>): Promise<Admission>;
  cgwSave(...args: Array<string | number>): Promise<number>;
  cgwClaim(...args: Array<string | number>): Promise<string[]>;
  cgwRestore(...args: Array<string | number>): Promise<number>;
  cgwFlag(key: string): Promise<number>;
  cgwWatch(...args: Array<string | number>): Promise<string | null>;
};

/** How long a watch of a job whose record is not in Redis is kept (its runner writes it again sooner). */
const ORPHAN_WATCH_TTL_MS = 60 * 60 * 1000;

/** The record without its workflow (stored once, in its own field). */
function stateJson(job: JobRecord): string {
  return JSON.stringify({ ...job, workflow: undefined });
}

function ttlOf(job: JobRecord, now: number): number {
  return isTerminal(job.status) ? Math.max(1, job.expires_at - now) : 0;
}

/** A job record from its hash fields, or undefined for a missing or unreadable one. */
function fromFields(state: string | null, workflow: string | null): JobRecord | undefined {
  if (state === null) return undefined;
  try {
    const job = JSON.parse(state) as JobRecord;
    job.workflow = workflow === null ? {} : (JSON.parse(workflow) as JobRecord['workflow']);
    return job;
  } catch {
    return undefined;
  }
}

/** The events of one job gathered in one flush, as one message: its id, a newline, the JSON. */
function eventMessage(jobId: string, messages: string[]): string {
  return `${jobId}\n${messages.length === 1 ? (messages[0] as string) : `[${messages.join(',')}]`}`;
}

/** Options of a RedisJobStore. */
export interface RedisJobStoreOptions {
  /** Command connection (enableOfflineQueue off: calls fail fast while Redis is down). */
  redis: Redis;
  keys: FleetKeys;
  /** This gateway's id in the fleet (the outbox names who delivers a pending webhook). */
  gatewayId: string;
  onError?: (err: unknown) => void;
  clock?: () => number;
  /**
   * Records kept locally for the synchronous get() (default 1,000: enough for the jobs in flight
   * here; a record that fell out is read back once. 10,000 records with their workflows kept each
   * gateway's heap large enough that garbage collection cost three gateways ~15 % more CPU per job).
   */
  cacheSize?: number;
}

/** Events: 'restored' (id) when a record Redis had lost was written again. */
export class RedisJobStore extends EventEmitter implements JobStore {
  readonly #redis: FleetRedis;
  readonly #keys: FleetKeys;
  readonly #gatewayId: string;
  readonly #onError: (err: unknown) => void;
  readonly #clock: () => number;
  readonly #cache: LRUCache<string, JobRecord>;
  /** Writes not yet sent, by job id (latest state wins), in arrival order. */
  #pending = new Map<string, JobRecord>();
  /** Jobs whose record must be written whole (Redis lost it). */
  #restore = new Set<string>();
  /** Jobs this gateway admitted and runs without a queue entry (named in the running hash). */
  #here = new Set<string>();
  /** Control-channel publishes of the next flush. */
  #publishes: Array<[string, string]> = [];
  /** Job events of the next flush, by job id, in emission order (one message per job and flush). */
  #events = new Map<string, string[]>();
  #waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];
  #timer: NodeJS.Immediate | null = null;
  #flushing: Promise<void> | null = null;
  #writes = 0;
  #closed = false;

  constructor(options: RedisJobStoreOptions) {
    super();
    this.#redis = options.redis as FleetRedis;
    this.#keys = options.keys;
    this.#gatewayId = options.gatewayId;
    this.#onError = options.onError ?? (() => {});
    this.#clock = options.clock ?? Date.now;
    this.#cache = new LRUCache({ max: options.cacheSize ?? 1_000 });
    const r = this.#redis;
    if (typeof r.cgwSave !== 'function') {
      r.defineCommand('cgwAdmit', { numberOfKeys: 7, lua: ADMIT });
      r.defineCommand('cgwSave', { numberOfKeys: 3, lua: SAVE });
      r.defineCommand('cgwClaim', { numberOfKeys: 2, lua: CLAIM });
      r.defineCommand('cgwRestore', { numberOfKeys: 3, lua: RESTORE });
      r.defineCommand('cgwFlag', { numberOfKeys: 1, lua: FLAG });
      r.defineCommand('cgwWatch', { numberOfKeys: 1, lua: WATCH });
      r.defineCommand('cgwEmit', { numberOfKeys: 1, lua: EMIT });
    }
    // Writes that failed while Redis was away go out as soon as it is back.
    r.on('ready', this.#onReady);
  }

  #onReady = (): void => {
    if (this.#pending.size > 0 || this.#waiters.length > 0) this.#schedule();
  };

  get writes(): number {
    return this.#writes;
  }

  /**
   * Queues a job's admission on `transaction`, to run just before its BullMQ add there: the
   * idempotency claim (SET NX semantics), the fleet-wide queue bound (BullMQ's waiting jobs) and
   * the record with its index entry, atomically. Sent as EVAL with the script's text (a few
   * hundred bytes beside the workflow): EVALSHA's NOSCRIPT retry would run it outside the
   * transaction, after the add. `admitted()` reads its answer from the transaction's results.
   */
  queueAdmission(
    transaction: Transaction,
    job: JobRecord,
    idempotencyKey: string | null,
    options: AdmitOptions,
  ): void {
    transaction.eval(ADMIT, 7, ...this.#admitArgs(job, idempotencyKey, options, ''));
  }

  /** The answer of an admission queued with queueAdmission(); throws its error. */
  admitted(job: JobRecord, reply: [Error | null, unknown] | undefined): Admission {
    const [err, result] = reply ?? [new Error('no reply')];
    if (err) throw err;
    this.#writes++;
    if (result === 'ok') this.#cache.set(job.id, job);
    return result as Admission;
  }

  /**
   * Admits a job this gateway runs at once, without a queue entry: the same checks and record as
   * queueAdmission(), and this gateway named in the fleet's running hash (one script, one round
   * trip). Rejects when Redis cannot be reached.
   */
  async admitHere(job: JobRecord, idempotencyKey: string | null, options: AdmitOptions): Promise<Admission> {
    const result = await this.#redis.cgwAdmit(
      ...this.#admitArgs(job, idempotencyKey, options, this.#gatewayId),
    );
    this.#writes++;
    if (result === 'ok') {
      this.#cache.set(job.id, job);
      this.#here.add(job.id);
    }
    return result;
  }

  #admitArgs(
    job: JobRecord,
    idempotencyKey: string | null,
    options: AdmitOptions,
    runner: string,
  ): Array<string | number> {
    const k = this.#keys;
    return [
      k.job(job.id),
      k.index,
      idempotencyKey ? k.idempotency(idempotencyKey) : k.job(job.id),
      options.waitKey,
      options.prioritizedKey,
      options.entryKey,
      k.running,
      job.id,
      job.status,
      stateJson(job),
      JSON.stringify(job.workflow),
      job.created_at,
      options.maxQueue,
      IDEMPOTENCY_TTL_MS,
      idempotencyKey ? '1' : '0',
      runner,
      this.#gatewayId,
    ];
  }

  /** Jobs this gateway runs without a queue entry (admitted here at once, not yet ended or handed over). */
  get runningHere(): number {
    return this.#here.size;
  }

  /** Ids of the jobs this gateway runs without a queue entry. */
  runningHereIds(): string[] {
    return [...this.#here];
  }

  /** A job run without a queue entry ended here (its terminal write clears the running hash) or was handed over. */
  forgetHere(id: string): boolean {
    return this.#here.delete(id);
  }

  /** Takes a job out of the running hash (it ended, or its record is gone). */
  async dropRunning(id: string): Promise<void> {
    await this.#redis.hdel(this.#keys.running, id);
  }

  /**
   * Claims (at most `max`) jobs that gateways without a heartbeat since `cutoff` ran without a
   * queue entry; they name this gateway in the running hash until handed to the queue.
   */
  async claimRunning(cutoff: number, max = 100): Promise<string[]> {
    const k = this.#keys;
    return this.#redis.cgwClaim(k.running, k.gateways, this.#gatewayId, cutoff, max);
  }

  /** Reads a job from Redis (and refreshes the local copy); undefined when unknown. */
  async load(id: string): Promise<JobRecord | undefined> {
    const [state, workflow] = await this.#redis.hmget(this.#keys.job(id), 'd', 'w');
    const job = fromFields(state ?? null, workflow ?? null);
    if (job && !this.#pending.has(id)) this.#cache.set(id, job);
    return job;
  }

  /**
   * Lists this gateway as watching a job (its runner then publishes the job's events to this
   * gateway's inbox) and answers the job's record if it ended, else undefined: one script, which
   * reads the status field only; the whole record is read only for a job that ended.
   */
  async watch(id: string): Promise<JobRecord | undefined> {
    const status = await this.#redis.cgwWatch(this.#keys.job(id), this.#gatewayId, ORPHAN_WATCH_TTL_MS);
    if (status === null || !isTerminal(status as JobStatus)) return undefined;
    return this.load(id);
  }

  /**
   * Takes the final record another gateway published with a job's terminal event, for a job this
   * gateway has a copy of (its workflow is kept): a watcher here then has the end state without
   * reading it back. A job with a write of ours pending is left alone (ours goes to Redis).
   */
  absorb(record: JobRecord): void {
    if (this.#pending.has(record.id)) return;
    const cached = this.#cache.get(record.id);
    if (!cached || isTerminal(cached.status)) return;
    this.#cache.set(record.id, { ...record, workflow: cached.workflow });
  }

  /** Reads a job and whether a cancel was requested for it, in one command. */
  async take(id: string): Promise<{ job: JobRecord | undefined; cancel: boolean }> {
    const [state, workflow, cancel] = await this.#redis.hmget(this.#keys.job(id), 'd', 'w', 'c');
    return { job: fromFields(state ?? null, workflow ?? null), cancel: cancel === '1' };
  }

  /** Marks a job as cancel-requested (a gateway about to take it reads the flag with the record). */
  async flagCancel(id: string): Promise<void> {
    await this.#redis.cgwFlag(this.#keys.job(id));
  }

  /** Newest-first listing of the fleet's jobs straight from Redis. */
  async page(query: ListQuery): Promise<JobPage> {
    const after = query.cursor ? decodeCursor(query.cursor) : null;
    const statuses = query.statuses?.length ? new Set(query.statuses) : null;
    const now = this.#clock();
    const jobs: JobRecord[] = [];
    let max: string = after ? String(after.createdAt) : '+inf';
    let skipTies = after;
    const batch = Math.max(16, (query.limit + 1) * 2);
    // Bounded scan: a status filter over a long history stops after this many index entries.
    let budget = 20_000;
    let more = false;
    while (budget > 0) {
      const raw = await this.#redis.zrange(
        this.#keys.index,
        max,
        '-inf',
        'BYSCORE',
        'REV',
        'LIMIT',
        0,
        batch,
        'WITHSCORES',
      );
      if (raw.length === 0) break;
      const entries: Array<{ id: string; score: number }> = [];
      for (let i = 0; i < raw.length; i += 2)
        entries.push({ id: raw[i] as string, score: Number(raw[i + 1]) });
      budget -= entries.length;
      const candidates = entries.filter(
        (e) => !skipTies || e.score < skipTies.createdAt || e.id < skipTies.id,
      );
      const pipeline = this.#redis.pipeline();
      for (const e of candidates) pipeline.hmget(this.#keys.job(e.id), 'd', 'w');
      const results = candidates.length > 0 ? ((await pipeline.exec()) ?? []) : [];
      candidates.forEach((e, i) => {
        const fields = (results[i]?.[1] ?? [null, null]) as Array<string | null>;
        const job = this.#pending.get(e.id) ?? fromFields(fields[0] ?? null, fields[1] ?? null);
        if (!job || job.expires_at <= now) return;
        if (statuses && !statuses.has(job.status)) return;
        jobs.push(job);
      });
      if (jobs.length > query.limit) {
        more = true;
        break;
      }
      const last = entries.at(-1) as { id: string; score: number };
      if (entries.length < batch) break;
      // Continue from the last score, skipping what this batch already saw at that score.
      max = String(last.score);
      skipTies = { createdAt: last.score, id: last.id };
    }
    const page = jobs.slice(0, query.limit);
    const tail = page.at(-1);
    return { jobs: page, nextCursor: more && tail ? encodeCursor(tail) : null };
  }

  /** Removes index entries whose records expired (Redis TTLs delete the records themselves). */
  async sweep(now: number, retentionMs: number): Promise<number> {
    const old = await this.#redis.zrange(
      this.#keys.index,
      '-inf',
      String(now - retentionMs),
      'BYSCORE',
      'LIMIT',
      0,
      1000,
    );
    if (old.length === 0) return 0;
    const pipeline = this.#redis.pipeline();
    for (const id of old) pipeline.exists(this.#keys.job(id));
    const results = (await pipeline.exec()) ?? [];
    const gone = old.filter((_, i) => results[i]?.[1] === 0);
    if (gone.length > 0) await this.#redis.zrem(this.#keys.index, ...gone);
    return gone.length;
  }

  /** Queues a publish after the writes queued so far (same pipeline, same order). */
  publish(channel: string, message: string): void {
    if (this.#closed) return;
    this.#publishes.push([channel, message]);
    this.#schedule();
  }

  /**
   * Queues a job event (JSON) for the gateways watching the job, after the job's state queued so
   * far: the script saving that state publishes it.
   */
  publishEvent(jobId: string, message: string): void {
    if (this.#closed) return;
    const messages = this.#events.get(jobId);
    if (messages) messages.push(message);
    else this.#events.set(jobId, [message]);
    this.#schedule();
  }

  // --- the synchronous JobStore the JobManager drives ---

  insert(job: JobRecord): void {
    this.#cache.set(job.id, job);
    this.#restore.add(job.id);
    this.update(job);
  }

  update(job: JobRecord): void {
    if (this.#closed) return;
    this.#cache.set(job.id, job);
    // Re-insert so arrival order is kept across updates of different jobs.
    this.#pending.delete(job.id);
    this.#pending.set(job.id, job);
    this.#schedule();
  }

  durable(): Promise<void> {
    if (this.#pending.size === 0 && !this.#flushing) return Promise.resolve();
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#waiters.push({ resolve, reject });
    this.#schedule();
    return promise;
  }

  get(id: string): JobRecord | undefined {
    return this.#pending.get(id) ?? this.#cache.get(id);
  }

  list(query: ListQuery): JobPage {
    // Only what this process has seen; routes use page() for the fleet-wide listing.
    return pageOf(this.#cache.values(), query);
  }

  /**
   * The fleet's webhook outbox: claims (at most `max`) the pending deliveries of gateways without a
   * heartbeat since `cutoff`, and returns their jobs for this gateway to resume. Entries whose
   * job ended its delivery or expired are dropped.
   */
  async claimPendingWebhooks(cutoff: number, max = 100): Promise<JobRecord[]> {
    const k = this.#keys;
    const ids = await this.#redis.cgwClaim(k.webhooks, k.gateways, this.#gatewayId, cutoff, max);
    if (ids.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    for (const id of ids) pipeline.hmget(k.job(id), 'd', 'w');
    const results = (await pipeline.exec()) ?? [];
    const jobs: JobRecord[] = [];
    const stale: string[] = [];
    ids.forEach((id, i) => {
      const [err, fields] = results[i] ?? [new Error('no reply')];
      if (err) return;
      const [state, workflow] = fields as Array<string | null>;
      const job = fromFields(state ?? null, workflow ?? null);
      if (job && isTerminal(job.status) && job.webhook_pending) {
        this.#cache.set(id, job);
        jobs.push(job);
      } else stale.push(id);
    });
    if (stale.length > 0) await this.#redis.hdel(k.webhooks, ...stale);
    return jobs;
  }

  /** Nothing: in fleet mode unfinished jobs come back through the shared queue, not a restart scan. */
  listUnfinished(): JobRecord[] {
    return [];
  }

  /** Always false here: the claim is checked atomically at admission. */
  hasIdempotencyKey(): boolean {
    return false;
  }

  releaseIdempotencyKey(key: string): void {
    this.#redis.del(this.#keys.idempotency(key)).catch(this.#onError);
  }

  /** Redis expires the records; this only prunes the index (asynchronously) and returns 0. */
  deleteExpired(now: number): number {
    return 0 * now;
  }

  counts(): Record<JobStatus, number> {
    return countByStatus(this.#pending.values());
  }

  /** Stops taking writes; what is queued still goes out with flush(). */
  close(): void {
    if (this.#closed) return;
    this.#schedule();
    this.#closed = true;
  }

  /** Sends every queued write now; resolves when Redis has them (rejects when it is down). */
  flush(): Promise<void> {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#waiters.push({ resolve, reject });
    if (this.#timer) clearImmediate(this.#timer);
    this.#timer = null;
    void this.#run();
    return promise;
  }

  #schedule(): void {
    if (this.#timer || this.#flushing) return;
    this.#timer = setImmediate(() => {
      this.#timer = null;
      void this.#run();
    });
  }

  async #run(): Promise<void> {
    if (this.#flushing) return;
    const batch = [...this.#pending.values()];
    const restore = this.#restore;
    const publishes = this.#publishes;
    const events = this.#events;
    const waiters = this.#waiters;
    this.#pending = new Map();
    this.#restore = new Set();
    this.#publishes = [];
    this.#events = new Map();
    this.#waiters = [];
    if (batch.length === 0 && publishes.length === 0 && events.size === 0) {
      for (const w of waiters) w.resolve();
      return;
    }
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#flushing = promise;
    const now = this.#clock();
    const k = this.#keys;
    try {
      const pipeline = this.#redis.pipeline() as ReturnType<Redis['pipeline']> & {
        cgwSave(...args: Array<string | number>): unknown;
        cgwRestore(...args: Array<string | number>): unknown;
        cgwEmit(...args: Array<string | number>): unknown;
      };
      const inbox = k.inbox('');
      // A job's events ride on the script saving its state; those left get a script of their own.
      const carried = new Map<string, string[]>();
      for (const job of batch) {
        if (restore.has(job.id)) {
          pipeline.cgwRestore(
            k.job(job.id),
            k.index,
            k.running,
            job.id,
            job.status,
            stateJson(job),
            JSON.stringify(job.workflow),
            job.created_at,
            ttlOf(job, now),
            this.#here.has(job.id) ? this.#gatewayId : '',
          );
        }
        const messages = events.get(job.id);
        if (messages) {
          carried.set(job.id, messages);
          events.delete(job.id);
        }
        pipeline.cgwSave(
          k.job(job.id),
          k.webhooks,
          k.running,
          job.status,
          stateJson(job),
          ttlOf(job, now),
          job.webhook_pending ? '1' : job.webhooks?.length ? '0' : '',
          this.#gatewayId,
          job.id,
          messages ? eventMessage(job.id, messages) : '',
          inbox,
        );
      }
      for (const [id, messages] of events)
        pipeline.cgwEmit(k.job(id), this.#gatewayId, eventMessage(id, messages), inbox);
      for (const [channel, message] of publishes) pipeline.publish(channel, message);
      const results = (await pipeline.exec()) ?? [];
      let index = 0;
      let failure: unknown = null;
      for (const job of batch) {
        if (restore.has(job.id)) index++;
        const [err, saved] = results[index++] ?? [new Error('no reply')];
        if (err) {
          failure ??= err;
          this.#requeue(job, restore.has(job.id));
        } else if (saved === -1) {
          // Redis lost the record (restarted without persistence): write it whole again, and its
          // events after it.
          this.#requeue(job, true);
          const messages = carried.get(job.id);
          if (messages) this.#events.set(job.id, [...messages, ...(this.#events.get(job.id) ?? [])]);
          this.emit('restored', job.id);
        } else {
          this.#writes++;
        }
      }
      if (failure) throw failure;
      for (const w of waiters) w.resolve();
    } catch (err) {
      // Keep the writes (latest state wins) for the reconnect; publishes are dropped.
      for (const job of batch) if (!this.#pending.has(job.id)) this.#requeue(job, restore.has(job.id));
      for (const w of waiters) w.reject(err);
      this.#onError(err);
    } finally {
      this.#flushing = null;
      resolve();
      if ((this.#pending.size > 0 || this.#waiters.length > 0) && this.#redis.status === 'ready')
        this.#schedule();
    }
  }

  #requeue(job: JobRecord, restore: boolean): void {
    if (!this.#pending.has(job.id)) this.#pending.set(job.id, job);
    if (restore) this.#restore.add(job.id);
  }

  /** Resolves when no write is queued or in flight (shutdown). */
  async drain(signal?: AbortSignal): Promise<void> {
    while ((this.#pending.size > 0 || this.#flushing) && !signal?.aborted) {
      if (this.#flushing) await this.#flushing;
      else await this.flush().catch(() => new Promise((r) => setTimeout(r, 100)));
    }
  }

  /** Detaches from the connection (the caller owns and closes it). */
  dispose(): void {
    this.#closed = true;
    if (this.#timer) clearImmediate(this.#timer);
    this.#timer = null;
    this.#redis.off('ready', this.#onReady);
  }
}
