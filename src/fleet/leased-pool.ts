// The pool as one gateway of a fleet sees it: leases (slots) only on the instances it holds an
// instance lease for; everything else (node defs, clients, the instance list) as the whole pool.
// Reading an instance it does not drive (a prompt's state, an output's bytes) stays allowed.
import { EventEmitter } from 'node:events';
import type { LeaseLike, PoolLike } from '../jobs/index.ts';

/** Instance facts the fleet needs from the pool's snapshots. */
interface Snapshot {
  id: string;
  state: string;
  maxJobs?: number;
  running?: number;
  queued?: number;
}

/** A PoolLike that hands out slots only on leased instances. */
export class LeasedPool extends EventEmitter implements PoolLike {
  readonly #pool: PoolLike;
  #owned: ReadonlySet<string> = new Set();
  /** Instances not leased, recomputed on lease or membership changes (tryAcquire runs per job). */
  #others: string[] = [];
  /** Node classes of leased instances (null while loading), for the run-at-once check; bounded by the instances. */
  #classes = new Map<string, ReadonlySet<string> | null>();
  #forward = {
    capacity: () => this.emit('capacity'),
    instance: (snapshot: unknown) => {
      // An instance that went down may come back with other nodes: read them again then.
      const s = snapshot as Snapshot | undefined;
      if (s && s.state !== 'healthy') this.#classes.delete(s.id);
      this.emit('instance', snapshot);
    },
    added: () => this.#recompute(),
    removed: () => this.#recompute(),
  };

  constructor(pool: PoolLike) {
    super();
    this.setMaxListeners(0);
    this.#pool = pool;
    for (const [event, listener] of Object.entries(this.#forward)) pool.on(event, listener);
  }

  /** Sets the leased instances; new ones announce capacity to the scheduler. */
  setOwned(owned: ReadonlySet<string>): void {
    this.#owned = new Set(owned);
    this.#recompute();
    for (const id of this.#owned) this.#loadClasses(id);
    this.emit('capacity');
  }

  /** Leased instance ids. */
  get owned(): ReadonlySet<string> {
    return this.#owned;
  }

  #recompute(): void {
    this.#classes.clear();
    this.#others = this.#pool
      .list()
      .map((s) => s.id)
      .filter((id) => !this.#owned.has(id));
  }

  /** Slots on leased instances (the most jobs this gateway takes from the shared queue at once). */
  slots(): number {
    let n = 0;
    for (const s of this.#pool.list() as Snapshot[]) if (this.#owned.has(s.id)) n += s.maxJobs ?? 1;
    return n;
  }

  /**
   * True when a leased, healthy instance has a free slot and every one of `classTypes` now: a job
   * submitted here can then start at once here. An instance whose nodes are not known yet does not
   * count (they are read in the background).
   */
  hasFreeSlot(classTypes: readonly string[]): boolean {
    for (const s of this.#pool.list() as Snapshot[]) {
      if (!this.#owned.has(s.id) || s.state !== 'healthy') continue;
      if ((s.running ?? 0) + (s.queued ?? 0) >= (s.maxJobs ?? 1)) continue;
      const classes = this.#classes.get(s.id);
      if (classes === undefined) this.#loadClasses(s.id);
      else if (classes !== null && classTypes.every((c) => classes.has(c))) return true;
    }
    return false;
  }

  #loadClasses(id: string): void {
    this.#classes.set(id, null);
    this.#pool.nodeDefsFor(id).then(
      (defs) => {
        if (this.#classes.get(id) === null) this.#classes.set(id, new Set(Object.keys(defs)));
      },
      () => this.#classes.delete(id),
    );
  }

  /** Every instance with "idle" = nothing of this gateway runs on it. */
  candidates(): Array<{ id: string; idle: boolean }> {
    return (this.#pool.list() as Snapshot[]).map((s) => ({
      id: s.id,
      idle: (s.running ?? 0) + (s.queued ?? 0) === 0,
    }));
  }

  tryAcquire(req: {
    classTypes: string[];
    models?: string[];
    requiredModels?: string[];
    exclude?: string[];
  }): LeaseLike | null {
    if (this.#owned.size === 0) return null;
    const exclude = req.exclude?.length ? [...req.exclude, ...this.#others] : this.#others;
    return this.#pool.tryAcquire({ ...req, exclude });
  }

  canEverRun(classTypes: string[]): ReturnType<PoolLike['canEverRun']> {
    return this.#pool.canEverRun(classTypes);
  }

  /** Over the whole pool: the fleet's shared queue reaches every gateway's instances. */
  canRunNow(classTypes: string[]): boolean {
    return this.#pool.canRunNow(classTypes);
  }

  nodeDefsFor(instanceId?: string): ReturnType<PoolLike['nodeDefsFor']> {
    return this.#pool.nodeDefsFor(instanceId);
  }

  list(): ReturnType<PoolLike['list']> {
    return this.#pool.list();
  }

  client(id: string): ReturnType<PoolLike['client']> {
    return this.#pool.client(id);
  }

  /** Stops forwarding the pool's events. */
  close(): void {
    for (const [event, listener] of Object.entries(this.#forward)) this.#pool.off(event, listener);
    this.removeAllListeners();
  }
}
