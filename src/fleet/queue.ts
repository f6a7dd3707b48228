// The fleet's shared job queue on BullMQ. A queue entry stands for a job no gateway has finished:
// a gateway's worker takes entries while it has free slots on its leased instances, holds each one
// (BullMQ renews the lock) until the job is terminal, then completes it. A gateway that dies stops
// renewing, BullMQ's stalled check puts its entries back, and another gateway takes them over
// (re-attaching to prompts already on an instance). Priorities map onto BullMQ's (lower = first).
import { type Job as BullJob, createIORedisClient, Job, Queue, WaitingError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { FleetKeys } from './keys.ts';

/** What travels with a queue entry (never stored with the job: ComfyUI extra_data). */
export interface EntryData {
  x?: Record<string, unknown>;
  /** Set on the entry of a job a gateway ran without one and handed over: its prompt may be on an instance. */
  r?: 1;
}

/** One entry a gateway took. */
export interface TakenEntry {
  id: string;
  extraData: Record<string, unknown> | undefined;
  /** True when another gateway held it before (it stalled): its prompt may be on an instance. */
  retaken: boolean;
}

/** Options of a FleetQueue. */
export interface FleetQueueOptions {
  /** The queue's own connection: BullMQ defines dozens of scripts on it, which every ioredis
   * pipeline on that connection then copies, so the job store keeps a connection of its own. */
  connection: Redis;
  /**
   * The connection admissions' transactions go on (the job store's): ioredis copies every script
   * defined on a connection onto each new transaction, and on the queue's that is BullMQ's 65 per
   * admission (~3 % of a gateway's CPU when jobs queue one at a time), so only BullMQ's add
   * scripts are defined here too.
   */
  transactionConnection: Redis;
  /** A connection the worker owns (it duplicates it for blocking reads). */
  workerConnection: Redis;
  keys: FleetKeys;
  /** Lock TTL: a dead gateway's entries are back in the queue within lock + stalled interval. */
  lockMs: number;
  stalledIntervalMs: number;
  onError?: (err: unknown) => void;
}

/** Highest BullMQ priority value; ours (−1e6…1e6, higher first) maps onto 1…2e6+1. */
const PRIORITY_BASE = 1_000_001;

/** An entry is gone once its job ended (the job's record is what stays). */
const ENTRY_OPTIONS = { removeOnComplete: true, removeOnFail: true } as const;

/** An entry to add with the next transaction, and what the caller waits on. */
interface Addition {
  id: string;
  priority: number;
  extraData: Record<string, unknown> | undefined;
  before: (transaction: ReturnType<Redis['multi']>) => void;
  retaken: boolean;
  resolve: (results: Array<[Error | null, unknown]>) => void;
  reject: (err: unknown) => void;
}

/** The shared BullMQ queue plus this gateway's worker. */
export class FleetQueue {
  readonly queue: Queue<EntryData>;
  readonly #worker: Worker<EntryData>;
  readonly #o: FleetQueueOptions;
  #process: ((entry: TakenEntry) => Promise<'done' | 'handback'>) | null = null;
  /** Additions of this turn of the event loop (sent together by #addBatch). */
  #additions: Addition[] = [];
  #running = false;
  #addScriptsDefined = false;
  #paused = false;
  #closing: Promise<void> | null = null;

  constructor(options: FleetQueueOptions) {
    this.#o = options;
    const prefix = options.keys.bullPrefix;
    this.queue = new Queue<EntryData>(options.keys.queueName, { connection: options.connection, prefix });
    this.queue.on('error', (err) => options.onError?.(err));
    this.#worker = new Worker<EntryData>(options.keys.queueName, (job, token) => this.#run(job, token), {
      connection: options.workerConnection,
      prefix,
      autorun: false,
      concurrency: 1,
      lockDuration: options.lockMs,
      stalledInterval: options.stalledIntervalMs,
      // An entry stalls once per dead gateway it outlived; it must never be failed for that.
      maxStalledCount: 1_000_000,
      removeOnComplete: { count: 0 },
      removeOnFail: { count: 0 },
      drainDelay: 5,
    });
    this.#worker.on('error', (err) => options.onError?.(err));
  }

  /** BullMQ keys the admission script counts (fleet-wide MAX_QUEUE). */
  get waitKeys(): { waitKey: string; prioritizedKey: string } {
    return { waitKey: this.queue.keys.wait as string, prioritizedKey: this.queue.keys.prioritized as string };
  }

  /** The key of a job's BullMQ entry (an admission refusal marks it, so the add that follows is a no-op). */
  entryKey(id: string): string {
    return this.queue.toKey(id);
  }

  /**
   * Adds a job's entry after whatever `before` queues on the same transaction (the job's
   * admission), in one round trip on the transaction connection; resolves with every command's
   * [error, result], the add's last. Rejects when Redis cannot be reached. The additions of one
   * turn of the event loop share one transaction (MULTI): one write and one reply for all, and one
   * transaction object (ioredis copies every script defined on the connection onto each), instead
   * of one per job. A refused admission still makes its own add a no-op.
   */
  addAfter(
    id: string,
    priority: number,
    extraData: Record<string, unknown> | undefined,
    before: (transaction: ReturnType<Redis['multi']>) => void,
    options: { retaken?: boolean } = {},
  ): Promise<Array<[Error | null, unknown]>> {
    const { promise, resolve, reject } = Promise.withResolvers<Array<[Error | null, unknown]>>();
    this.#additions.push({
      id,
      priority,
      extraData,
      before,
      retaken: options.retaken === true,
      resolve,
      reject,
    });
    if (this.#additions.length === 1) setImmediate(() => void this.#addBatch());
    return promise;
  }

  /** Sends the additions gathered so far in one transaction and hands each its own replies. */
  async #addBatch(): Promise<void> {
    const additions = this.#additions;
    this.#additions = [];
    try {
      // BullMQ's scripts are on the queue connection once the queue is ready; its view of a
      // connection (the one BullMQ uses for its own) gives a transaction its add script can run on.
      await this.queue.waitUntilReady();
      this.#defineAddScripts();
      const transaction = createIORedisClient(this.#o.transactionConnection).multi() as unknown as ReturnType<
        Redis['multi']
      > & { length: number };
      // Each addition's replies end where its commands did (the length counts the MULTI too).
      const first = transaction.length;
      const ends: number[] = [];
      for (const a of additions) {
        a.before(transaction);
        const entry = new Job<EntryData>(
          this.queue,
          'job',
          { ...(a.extraData ? { x: a.extraData } : {}), ...(a.retaken ? { r: 1 as const } : {}) },
          {
            ...ENTRY_OPTIONS,
            jobId: a.id,
            priority: Math.max(1, Math.min(2_097_152, PRIORITY_BASE - a.priority)),
          },
          a.id,
        );
        // Queues BullMQ's add script on the transaction synchronously (its promise only echoes it).
        void entry.addJob(transaction as never).catch(() => {});
        ends.push(transaction.length - first);
      }
      const results = (await transaction.exec()) as Array<[Error | null, unknown]> | null;
      if (!results) throw new Error('the transaction was aborted');
      let start = 0;
      additions.forEach((a, i) => {
        const end = ends[i] as number;
        a.resolve(results.slice(start, end));
        start = end;
      });
    } catch (err) {
      for (const a of additions) a.reject(err);
    }
  }

  /**
   * Defines BullMQ's add scripts (named with its version, e.g. `addPrioritizedJob:6.7.0`) on the
   * transaction connection, as BullMQ defined them on the queue's; once. Throws when there are none
   * (a BullMQ that names them otherwise): its add would be missing from the transaction, and each
   * job recorded but never queued.
   */
  #defineAddScripts(): void {
    if (this.#addScriptsDefined) return;
    const target = this.#o.transactionConnection as Redis & { scriptsSet: Record<string, unknown> };
    const source = this.#o.connection as Redis & {
      scriptsSet: Record<string, { lua: string; numberOfKeys: number | null }>;
    };
    const adds = Object.entries(source.scriptsSet).filter(([name]) => /^add\w*Job:/.test(name));
    if (adds.length === 0) throw new Error("BullMQ's add scripts are not on the queue connection");
    for (const [name, script] of adds) {
      if (name in target.scriptsSet) continue;
      target.defineCommand(name, {
        lua: script.lua,
        ...(script.numberOfKeys === null ? {} : { numberOfKeys: script.numberOfKeys }),
      });
    }
    this.#addScriptsDefined = true;
  }

  /** Removes a waiting entry; false when some gateway holds it (or it is gone). */
  async remove(id: string): Promise<boolean> {
    return (await this.queue.remove(id)) === 1;
  }

  /**
   * 1-based place of a job's entry among those waiting, fleet-wide, in the order gateways take
   * them (entries without a priority, then by priority and age); null when it is not waiting.
   */
  async position(id: string): Promise<number | null> {
    const redis = this.#o.transactionConnection;
    const { waitKey, prioritizedKey } = this.waitKeys;
    const [rank, plain] = await Promise.all([redis.zrank(prioritizedKey, id), redis.llen(waitKey)]);
    return rank === null ? null : plain + rank + 1;
  }

  /** Entries waiting for a gateway, fleet-wide. */
  async waiting(): Promise<number> {
    return this.queue.getJobCountByTypes('wait', 'prioritized');
  }

  /**
   * How many entries this gateway holds at most (its slots less those its jobs without an entry
   * use); 0 pauses taking.
   */
  setSlots(slots: number): void {
    if (this.#closing) return;
    if (slots > this.#worker.concurrency && this.#running && !this.#paused) {
      this.#worker.concurrency = slots;
      // BullMQ's loop re-reads its concurrency only when a held entry ends: wake it as its own
      // resume() does, or entries would wait while this gateway has free slots. The public
      // pause(true) + resume() would do it too, but resume() restarts the stalled checker, whose
      // first scan runs at once: one more script for every slot freed (per job at c=1). The field
      // is BullMQ's (6.x); test/fleet/fleet-slots fails if this stops waking the loop.
      (this.#worker as unknown as { mainLoopQueue?: { add(p: Promise<unknown>): void } }).mainLoopQueue?.add(
        Promise.resolve(),
      );
      return;
    }
    if (slots > 0) this.#worker.concurrency = slots;
    if (slots > 0 && !this.#running) {
      this.#running = true;
      this.#worker.run().catch((err: unknown) => this.#o.onError?.(err));
    } else if (slots > 0 && this.#paused) {
      this.#paused = false;
      this.#worker.resume();
    } else if (slots === 0 && this.#running && !this.#paused) {
      this.#paused = true;
      void this.#worker.pause(true);
    }
  }

  /**
   * Calls `listener` whenever this gateway's worker found the fleet's queue empty (BullMQ's
   * 'drained': a fetch for a free slot came back without an entry).
   */
  onDrained(listener: () => void): void {
    this.#worker.on('drained', listener);
  }

  /** Sets what runs a taken entry to the end of its job ('done') or gives it back ('handback'). */
  handle(process: (entry: TakenEntry) => Promise<'done' | 'handback'>): void {
    this.#process = process;
  }

  async #run(job: BullJob<EntryData>, token: string | undefined): Promise<void> {
    const process = this.#process;
    const outcome = process
      ? await process({
          id: job.id as string,
          extraData: job.data?.x,
          retaken: job.attemptsStarted > 1 || job.stalledCounter > 0 || job.data?.r === 1,
        })
      : 'handback';
    if (outcome === 'handback' && token) {
      // Shutdown: back to the queue now (priority kept) instead of after the lock lapses.
      await job.moveToWait(token);
      throw new WaitingError();
    }
  }

  /** Stops taking entries (the held ones stay held until close). */
  async pause(): Promise<void> {
    if (this.#running && !this.#paused) {
      this.#paused = true;
      await this.#worker.pause(true);
    }
  }

  /** Closes the worker (after held entries were handed back or finished) and the queue. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      // Held entries were handed back just before: let their moves to the queue land (bounded),
      // or they would sit locked until the lock lapses.
      const graceful = this.#worker.close().catch((err: unknown) => this.#o.onError?.(err));
      const bound = new Promise<void>((resolve) => setTimeout(resolve, 5000).unref());
      await Promise.race([graceful, bound]);
      await this.#worker.close(true).catch((err: unknown) => this.#o.onError?.(err));
      await this.queue.close().catch((err: unknown) => this.#o.onError?.(err));
    })();
    return this.#closing;
  }
}
