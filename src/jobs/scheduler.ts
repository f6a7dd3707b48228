// The queue of jobs waiting for an instance, ordered by priority (high first) then age, and the
// loop that hands them to the pool. Dispatch is pull-based: a pump runs when a job arrives, when
// the pool reports capacity, and on a slow safety tick, and it never blocks on the network.
// Jobs that share a serial key run one at a time, in queue order: while one of them is queued or
// running, the others wait aside and join the queue one by one as each predecessor ends.
import type { LeaseLike, PoolLike } from './ports.ts';

/** What the scheduler needs to know about a waiting job. */
export interface QueueEntry {
  id: string;
  priority: number;
  createdAt: number;
  classTypes: string[];
  /** Instances to avoid (they failed this job before), when others exist. */
  exclude: string[];
  /** Routing key (class set), filled in by the scheduler. */
  key?: string;
  /** Jobs with the same serial key run one at a time, in queue order (e.g. one ComfyUI client id). */
  serial?: string;
  /** Model files an instance must list to take the job. */
  models?: string[];
  /** Arrival order, set by the scheduler: first come, first served among jobs of the same millisecond. */
  seq?: number;
}

/** Options of a Scheduler. */
export interface SchedulerOptions {
  pool: PoolLike;
  /** Called with a job and the lease it got; must not throw. */
  dispatch: (entry: QueueEntry, lease: LeaseLike) => void;
  /** How many waiting jobs one pump looks at past the head when the head cannot be placed. */
  scanLimit?: number;
  /** Safety re-pump interval while jobs wait (capacity events are the fast path). */
  tickMs?: number;
}

/**
 * False only for a snapshot that shows a full instance (running + queued ≥ maxJobs): its event
 * cannot give a waiting job a slot. Anything else (other shapes included) may, so it pumps.
 */
function mayHaveFreeSlot(snapshot: unknown): boolean {
  if (typeof snapshot !== 'object' || snapshot === null) return true;
  const s = snapshot as { running?: unknown; queued?: unknown; maxJobs?: unknown };
  if (typeof s.running !== 'number' || typeof s.queued !== 'number' || typeof s.maxJobs !== 'number')
    return true;
  return s.running + s.queued < s.maxJobs;
}

function before(a: QueueEntry, b: QueueEntry): boolean {
  if (a.priority !== b.priority) return a.priority > b.priority;
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt;
  return (a.seq ?? 0) < (b.seq ?? 0);
}

/** Where `entry` goes in a list sorted by before(). */
function insertionIndex(list: QueueEntry[], entry: QueueEntry): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (before(list[mid] as QueueEntry, entry)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Priority queue of waiting jobs plus the dispatch loop. */
export class Scheduler {
  #pool: PoolLike;
  #dispatch: SchedulerOptions['dispatch'];
  #scanLimit: number;
  #tickMs: number;
  /** Arrivals so far: each entry's seq (ids are random, so they cannot break ties fairly). */
  #arrivals = 0;
  /** Sorted: index 0 runs next. Bounded by MAX_QUEUE at submission. */
  #queue: QueueEntry[] = [];
  /** The entries of #queue by job id: a job's place is found by binary search, not a scan (10,000 waiting). */
  #queued = new Map<string, QueueEntry>();
  /** Serial key → the job that holds it (queued here or running) until release(). */
  #serialOwner = new Map<string, string>();
  /** Serial key → jobs waiting behind its owner, sorted like the queue. Counted in `size`. */
  #held = new Map<string, QueueEntry[]>();
  #heldCount = 0;
  #pumpScheduled = false;
  /** True while #pump runs: the pool events its own acquisitions raise need no second pump. */
  #pumping = false;
  #paused = true;
  #closed = false;
  #timer: NodeJS.Timeout | null = null;
  /** Routing keys the last pump found no slot for; valid until the pool reports a change. */
  #noSlot: Set<string> | null = null;
  #onCapacity = () => {
    this.#noSlot = null;
    this.schedulePump();
  };
  /** Instance changes (start, acquire, status) fire several times per job; only a free slot matters. */
  #onInstance = (snapshot: unknown) => {
    if (this.#queue.length === 0 || !mayHaveFreeSlot(snapshot)) return;
    this.#noSlot = null;
    this.schedulePump();
  };

  constructor(options: SchedulerOptions) {
    this.#pool = options.pool;
    this.#dispatch = options.dispatch;
    this.#scanLimit = options.scanLimit ?? 32;
    this.#tickMs = options.tickMs ?? 1000;
    this.#pool.on('capacity', this.#onCapacity);
    this.#pool.on('instance', this.#onInstance);
  }

  /** Number of waiting jobs (including those held behind a job with the same serial key). */
  get size(): number {
    return this.#queue.length + this.#heldCount;
  }

  /** Starts dispatching (jobs may be enqueued before, e.g. during recovery). */
  start(): void {
    if (this.#closed) return;
    this.#paused = false;
    this.schedulePump();
  }

  /** Adds a job (or re-adds it for a retry). */
  enqueue(entry: QueueEntry): void {
    if (this.#closed) return;
    entry.seq ??= this.#arrivals++;
    if (entry.serial !== undefined) {
      const owner = this.#serialOwner.get(entry.serial);
      if (owner !== undefined && owner !== entry.id) {
        const held = this.#held.get(entry.serial) ?? [];
        held.splice(insertionIndex(held, entry), 0, entry);
        this.#held.set(entry.serial, held);
        this.#heldCount++;
        return;
      }
      this.#serialOwner.set(entry.serial, entry.id);
    }
    entry.key = entry.models?.length
      ? `${entry.classTypes.join('\u0000')}\u0001${entry.models.join('\u0000')}`
      : entry.classTypes.join('\u0000');
    this.#queue.splice(insertionIndex(this.#queue, entry), 0, entry);
    this.#queued.set(entry.id, entry);
    // At saturation every arrival would pump in vain: nothing freed a slot for its kind since.
    if (entry.exclude.length === 0 && this.#noSlot?.has(entry.key)) return;
    this.schedulePump();
  }

  /** Marks a job that runs without passing through the queue (re-attached) as its key's holder. */
  claim(id: string, serial: string | undefined): void {
    if (serial !== undefined && !this.#serialOwner.has(serial)) this.#serialOwner.set(serial, id);
  }

  /** A job ended: the next job waiting behind it on its serial key joins the queue. */
  release(id: string, serial: string | undefined): void {
    if (serial === undefined || this.#serialOwner.get(serial) !== id) return;
    this.#serialOwner.delete(serial);
    const held = this.#held.get(serial);
    const next = held?.shift();
    if (held?.length === 0) this.#held.delete(serial);
    if (next) {
      this.#heldCount--;
      this.enqueue(next);
    }
  }

  /** Removes a waiting job; returns false when it was not waiting. */
  remove(id: string): boolean {
    const index = this.#indexOf(id);
    if (index >= 0) {
      const [entry] = this.#queue.splice(index, 1);
      this.#queued.delete(id);
      this.release(id, entry?.serial);
      return true;
    }
    for (const [serial, held] of this.#held) {
      const i = held.findIndex((e) => e.id === id);
      if (i < 0) continue;
      held.splice(i, 1);
      this.#heldCount--;
      if (held.length === 0) this.#held.delete(serial);
      return true;
    }
    return false;
  }

  /** Waiting job ids in dispatch order (a snapshot; held jobs after the queue). */
  waitingIds(): string[] {
    const ids = this.#queue.map((e) => e.id);
    for (const held of this.#held.values()) for (const e of held) ids.push(e.id);
    return ids;
  }

  /** 1-based position of a waiting job, or null. */
  position(id: string): number | null {
    const index = this.#indexOf(id);
    if (index >= 0) return index + 1;
    // Held jobs come after the queue, in waitingIds() order (usually there are none).
    let ahead = this.#queue.length;
    for (const held of this.#held.values()) {
      const i = held.findIndex((e) => e.id === id);
      if (i >= 0) return ahead + i + 1;
      ahead += held.length;
    }
    return null;
  }

  /** Index of a job in #queue (-1 when not there): entries are totally ordered (seq breaks ties). */
  #indexOf(id: string): number {
    const entry = this.#queued.get(id);
    if (entry === undefined) return -1;
    const index = insertionIndex(this.#queue, entry);
    return this.#queue[index] === entry ? index : this.#queue.indexOf(entry);
  }

  /** Coalesces pump requests into one run per microtask. */
  schedulePump(): void {
    if (this.#pumpScheduled || this.#pumping || this.#paused || this.#closed) return;
    this.#pumpScheduled = true;
    queueMicrotask(() => {
      this.#pumpScheduled = false;
      this.#pumping = true;
      try {
        this.#pump();
      } finally {
        this.#pumping = false;
      }
    });
  }

  #pump(): void {
    if (this.#paused || this.#closed) return;
    let scanned = 0;
    let index = 0;
    let knownIds: string[] | null = null;
    // Requests that found no slot in this pump; identical ones behind them cannot do better.
    const noSlot = new Set<string>();
    while (index < this.#queue.length && scanned < this.#scanLimit) {
      const entry = this.#queue[index] as QueueEntry;
      const key = entry.exclude.length === 0 ? (entry.key ?? null) : null;
      if (key !== null && noSlot.has(key)) {
        index++;
        scanned++;
        continue;
      }
      let exclude = entry.exclude;
      if (exclude.length > 0) {
        knownIds ??= this.#pool.list().map((s) => s.id);
        // Avoiding instances only helps when another one could take the job.
        if (knownIds.every((id) => exclude.includes(id))) exclude = [];
      }
      const lease = this.#pool.tryAcquire({
        classTypes: entry.classTypes,
        exclude,
        ...(entry.models ? { models: entry.models, requiredModels: entry.models } : {}),
      });
      if (lease) {
        this.#queue.splice(index, 1);
        this.#queued.delete(entry.id);
        this.#dispatch(entry, lease);
        scanned = 0;
        continue;
      }
      if (key !== null) noSlot.add(key);
      index++;
      scanned++;
    }
    this.#noSlot = noSlot.size > 0 ? noSlot : null;
    this.#armTimer();
  }

  #armTimer(): void {
    if (this.#queue.length === 0 || this.#timer || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#noSlot = null;
      this.schedulePump();
    }, this.#tickMs);
    this.#timer.unref();
  }

  /** Stops dispatching; waiting jobs stay in the store for the next start. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pool.off('capacity', this.#onCapacity);
    this.#pool.off('instance', this.#onInstance);
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#queue = [];
    this.#queued.clear();
    this.#held.clear();
    this.#heldCount = 0;
    this.#serialOwner.clear();
  }
}
