// The Pool: many ComfyUI instances behind one lease API. It owns the instance registry, routing
// (least loaded, capability-aware, affinity), drain/removal, and the managed processes' lifecycle.
import { EventEmitter } from 'node:events';
import pino, { type Logger } from 'pino';
import { type ComfyClient, type NodeDef, ObjectInfoCache } from '../comfy/index.ts';
import { type ResolvedInstanceConfig, resolveInstanceConfig } from './config.ts';
import {
  InstanceExistsError,
  InstanceNotFoundError,
  InvalidInstanceConfigError,
  PoolClosedError,
  PoolError,
} from './errors.ts';
import { type InstanceHooks, type InstanceSettings, PoolInstance } from './instance.ts';
import { Limiter } from './limiter.ts';
import { ManagedProcess } from './managed-process.ts';
import { pickCandidate } from './router.ts';
import type {
  AcquireRequest,
  BreakerPosition,
  InstanceConfig,
  InstanceSnapshot,
  Lease,
  PoolOptions,
} from './types.ts';

/**
 * How long after an acquisition found no slot work counts as waiting. The scheduler retries at
 * least every second while jobs wait, so this stays true for as long as they do.
 */
const WORK_WAITING_MS = 3000;

/**
 * /object_info loads (~400 KB each) running at once across the pool. When half of 256 instances
 * reconnect together, each would otherwise fetch and hold its copy at the same time (RSS 389 → 486 MiB
 * after two rounds of flapping); identical answers are parsed once anyway (ObjectInfoCache).
 */
const OBJECT_INFO_LOADS = 4;

/** Upper bound on instances added at run time (each holds a client, a socket and timers). */
const MAX_INSTANCES = 1024;

/** Events a Pool emits, with their payloads. */
export interface PoolEvents {
  /** A slot may be free: the scheduler should try to acquire again. */
  capacity: [];
  /** An instance's snapshot changed (state, counts, breaker...). */
  instance: [InstanceSnapshot];
  /** A lease ended with an infrastructure failure: its work will run elsewhere. */
  failover: [{ instanceId: string; error: unknown }];
  breaker: [{ instanceId: string; position: BreakerPosition }];
  reconnect: [{ instanceId: string }];
  added: [InstanceSnapshot];
  removed: [{ instanceId: string }];
}

/**
 * The pool's one contract: every public member of Pool. Other modules take a `Pick<>` of it, so
 * `tsc` checks their slice against the real pool.
 */
export type PoolContract = Pick<Pool, keyof Pool>;

/** Many ComfyUI instances as one: hands out leases on healthy instances with free slots. */
export class Pool extends EventEmitter<PoolEvents> {
  readonly #options: PoolOptions;
  readonly #settings: InstanceSettings;
  readonly #logger: Logger;
  readonly #instances = new Map<string, PoolInstance>();
  readonly #processes = new Map<string, ManagedProcess>();
  readonly #drains = new Map<string, Promise<void>>();
  readonly #closeController = new AbortController();
  #nextOrder = 0;
  #lastPicked = -1;
  #started: Promise<void> | null = null;
  #startDone = false;
  #closing: Promise<void> | null = null;
  #capacityQueued = false;
  /** When an acquisition last found no slot: work is waiting (the scheduler retries every second). */
  #unmetAt = Number.NEGATIVE_INFINITY;

  constructor(options: PoolOptions) {
    super();
    if (!Number.isInteger(options.maxJobsPerInstance) || options.maxJobsPerInstance < 1) {
      throw new PoolError(`maxJobsPerInstance must be a positive integer, got ${options.maxJobsPerInstance}`);
    }
    if (!Number.isInteger(options.healthFailureThreshold) || options.healthFailureThreshold < 1) {
      throw new PoolError(
        `healthFailureThreshold must be a positive integer, got ${options.healthFailureThreshold}`,
      );
    }
    if (!(options.healthCheckIntervalMs > 0)) {
      throw new PoolError(`healthCheckIntervalMs must be positive, got ${options.healthCheckIntervalMs}`);
    }
    this.#options = options;
    this.#logger = (options.logger ?? pino({ enabled: false })).child({ component: 'pool' });
    const interval = options.healthCheckIntervalMs;
    this.#settings = {
      healthCheckIntervalMs: interval,
      healthCheckTimeoutMs: options.healthCheckTimeoutMs ?? Math.min(5000, interval),
      healthFailureThreshold: options.healthFailureThreshold,
      recoveryProbeIntervalMs: options.recoveryProbeIntervalMs ?? Math.min(1000, interval),
      breakerHalfOpenAfterMs: options.breakerHalfOpenAfterMs ?? Math.min(1000, interval),
      stuckTimeoutMs: options.stuckTimeoutMs ?? 120_000,
      capabilityTimeoutMs: Math.max(30_000, options.healthCheckTimeoutMs ?? 0),
      objectInfoLoads: new Limiter(OBJECT_INFO_LOADS),
      capabilityLoadsAfter: options.capabilityLoadsAfter ?? null,
      // A short reconnect ceiling: while the socket is down the instance gets no work, so a
      // restarted ComfyUI should be noticed within ~2 s, not the client's general 10 s.
      // One parsed /object_info per distinct answer for the whole pool: identical instances share
      // it (256 of them held ~200 MiB of copies) instead of each keeping its own.
      clientOptions: {
        objectInfoCache: new ObjectInfoCache(),
        ...options.clientOptions,
        reconnect: { maxDelayMs: 2000, ...options.clientOptions?.reconnect },
      },
    };
    // Validate everything up front so a bad list fails at construction, naming the entry.
    const ids = new Set<string>();
    const urls = new Set<string>();
    options.instances.forEach((config, i) => {
      const resolved = resolveInstanceConfig(
        config,
        { maxJobs: options.maxJobsPerInstance },
        `instances[${i}]`,
      );
      if (ids.has(resolved.id) || urls.has(resolved.url)) throw new InstanceExistsError(resolved.id);
      ids.add(resolved.id);
      urls.add(resolved.url);
      this.#register(resolved, false);
    });
    const managed = options.managed;
    if (managed) {
      if (managed.ports.length === 0) throw new InvalidInstanceConfigError('managed.ports', 'no port given');
      for (const port of managed.ports) {
        if (!Number.isInteger(port) || port < 1 || port > 65535) {
          throw new InvalidInstanceConfigError('managed.ports', `${port} is not a TCP port`);
        }
      }
      const host = managed.host ?? '127.0.0.1';
      for (const port of managed.ports) {
        const resolved = resolveInstanceConfig(
          {
            id: `managed-${port}`,
            url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
            weight: managed.weight,
            maxJobs: managed.maxJobs,
            labels: { ...managed.labels, managed: 'true' },
          },
          { maxJobs: options.maxJobsPerInstance },
          `managed[${port}]`,
        );
        if (ids.has(resolved.id) || urls.has(resolved.url)) throw new InstanceExistsError(resolved.id);
        ids.add(resolved.id);
        urls.add(resolved.url);
        const instance = this.#register(resolved, true);
        instance.processDown = true;
        this.#processes.set(resolved.id, this.#createProcess(instance, port));
      }
    }
  }

  /** Connects clients, spawns managed processes and runs the first check; never throws for a down instance. */
  start(): Promise<void> {
    if (this.#closing) return Promise.reject(new PoolClosedError());
    this.#started ??= (async () => {
      for (const process of this.#processes.values()) {
        process.start().catch((error: unknown) => {
          this.#logger.error({ err: error, instance: process.id }, 'managed ComfyUI failed to start');
        });
      }
      await Promise.all([...this.#instances.values()].map((instance) => instance.start()));
      this.#startDone = true;
      this.#logger.info(
        { instances: this.list().map((s) => ({ id: s.id, state: s.state })) },
        'instance pool started',
      );
    })();
    return this.#started;
  }

  /** True once `start()` finished its first round of checks (and the pool is not closed). */
  isStarted(): boolean {
    return this.#startDone && !this.#closing;
  }

  /** Non-blocking: a lease on the least-loaded healthy instance with a free slot and every class, or null. */
  tryAcquire(request: AcquireRequest): Lease | null {
    if (this.#closing) return null;
    const classTypes = request.classTypes ?? [];
    const exclude = request.exclude ?? [];
    const candidates: Array<{
      instance: PoolInstance;
      order: number;
      load: number;
      weight: number;
      affinity: number;
    }> = [];
    const useAffinity = this.#options.affinity !== false;
    for (const instance of this.#instances.values()) {
      if (exclude.includes(instance.id) || !instance.canTake(classTypes, request.requiredModels)) continue;
      candidates.push({
        instance,
        order: instance.order,
        load: instance.load,
        weight: instance.config.weight,
        affinity: useAffinity ? instance.affinity(request.models) : 0,
      });
    }
    const chosen = pickCandidate(candidates, this.#lastPicked, this.#nextOrder);
    if (!chosen) {
      this.#unmetAt = Date.now();
      return null;
    }
    this.#lastPicked = chosen.order;
    return chosen.instance.acquire(request.models);
  }

  /** Whether any known instance could run a prompt with these classes (instances without info are skipped). */
  canEverRun(classTypes: string[]): { ok: true } | { ok: false; missing: string[] } {
    const wanted = [...new Set(classTypes)];
    let best: string[] | null = null;
    for (const instance of this.#instances.values()) {
      const classes = instance.capabilities.classes;
      if (instance.draining || classes === null) continue;
      const missing = wanted.filter((c) => !classes.has(c));
      if (missing.length === 0) return { ok: true };
      if (best === null || missing.length < best.length) best = missing;
    }
    // Nothing known yet (all instances starting or down): do not reject work we cannot judge.
    if (best === null) return { ok: true };
    return { ok: false, missing: best.sort() };
  }

  /**
   * True when an instance that is up may run these classes now, busy or not: healthy, or degraded
   * (it answers; a socket reconnecting or a slow queue passes), with the classes or with its
   * /object_info not loaded yet (just started: do not refuse work we cannot judge). Starting,
   * unhealthy (breaker open) and draining instances do not count.
   */
  canRunNow(classTypes: string[]): boolean {
    if (this.#closing) return false;
    for (const instance of this.#instances.values()) {
      if (instance.state !== 'healthy' && instance.state !== 'degraded') continue;
      if (instance.capabilities.classes === null || instance.hasClasses(classTypes)) return true;
    }
    return false;
  }

  /**
   * The model files no instance lists in its /object_info choices (instances not loaded yet and
   * draining ones are skipped; with none known, nothing counts as missing).
   */
  missingModels(models: readonly string[]): string[] {
    const wanted = [...new Set(models)];
    let known = false;
    const found = new Set<string>();
    for (const instance of this.#instances.values()) {
      const choices = instance.capabilities.choices;
      if (instance.draining || choices === null) continue;
      known = true;
      for (const m of wanted) if (choices.has(m)) found.add(m);
    }
    return known ? wanted.filter((m) => !found.has(m)) : [];
  }

  /** Reloads every instance's /object_info now (e.g. after a model was added); resolves when done. */
  async refreshCapabilities(signal?: AbortSignal): Promise<void> {
    await Promise.allSettled(
      [...this.#instances.values()].map(async (instance) => {
        await instance.capabilities.settled();
        instance.capabilities.stale = true;
        return instance.nodeDefs(signal);
      }),
    );
    this.#signalCapacity();
  }

  /** The /object_info of one instance (cached), or of any healthy instance when no id is given. */
  async nodeDefsFor(instanceId?: string): Promise<Record<string, NodeDef>> {
    if (this.#closing) throw new PoolClosedError();
    const signal = this.#closeController.signal;
    if (instanceId !== undefined) return this.#instance(instanceId).nodeDefs(signal);
    // Every submission asks: the best-ranked instance (the first of the sorted order) answers from its
    // cache without sorting the pool, which cost a sort of every instance per job.
    let best: PoolInstance | undefined;
    for (const instance of this.#instances.values()) {
      if (!instance.draining && (best === undefined || rank(instance) < rank(best))) best = instance;
    }
    if (best === undefined) throw new PoolError('no instance is configured');
    let lastError: unknown;
    try {
      return await best.nodeDefs(signal);
    } catch (error) {
      lastError = error;
    }
    const rest = [...this.#instances.values()]
      .filter((i) => !i.draining && i !== best)
      .sort((a, b) => rank(a) - rank(b));
    for (const instance of rest) {
      try {
        return await instance.nodeDefs(signal);
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  }

  /** Snapshots of every instance, in the order they were added. */
  list(): InstanceSnapshot[] {
    return [...this.#instances.values()].map((instance) => instance.snapshot());
  }

  /** Snapshot of one instance. */
  get(id: string): InstanceSnapshot | undefined {
    return this.#instances.get(id)?.snapshot();
  }

  /** The shared client of one instance. */
  client(id: string): ComfyClient | undefined {
    return this.#instances.get(id)?.client;
  }

  /** Adds an instance at run time; resolves after its first check (whatever the outcome). */
  async add(config: InstanceConfig): Promise<InstanceSnapshot> {
    if (this.#closing) throw new PoolClosedError();
    const resolved = resolveInstanceConfig(config, { maxJobs: this.#options.maxJobsPerInstance });
    if (this.#instances.size >= MAX_INSTANCES) {
      throw new InvalidInstanceConfigError('instances', `the pool already has ${MAX_INSTANCES} instances`);
    }
    if (this.#instances.has(resolved.id)) throw new InstanceExistsError(resolved.id);
    for (const other of this.#instances.values()) {
      if (other.url === resolved.url) {
        throw new InstanceExistsError(
          other.id,
          `an instance with URL ${resolved.url} already exists (${other.id})`,
        );
      }
    }
    const instance = this.#register(resolved, false);
    this.#logger.info({ instance: instance.id, url: instance.url }, 'instance added');
    if (this.#started) await instance.start();
    const snapshot = instance.snapshot();
    this.emit('added', snapshot);
    return snapshot;
  }

  /** Stops new leases on an instance, waits for its leases to end, then removes it. */
  drain(id: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    const instance = this.#instance(id);
    const existing = this.#drains.get(id);
    if (existing) return existing;
    instance.draining = true;
    this.emit('instance', instance.snapshot());
    this.#logger.info({ instance: id, leases: instance.leaseCount }, 'draining instance');
    const signals = [this.#closeController.signal, ...(options.signal ? [options.signal] : [])];
    const drained = (async () => {
      await instance.idle(AbortSignal.any(signals));
      if (options.signal?.aborted && !this.#closing) {
        instance.draining = false;
        this.emit('instance', instance.snapshot());
        this.emit('capacity');
        throw options.signal.reason;
      }
      await this.#remove(instance);
    })().finally(() => this.#drains.delete(id));
    this.#drains.set(id, drained);
    return drained;
  }

  /** Closes every client, timer and managed process; idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closeController.abort(new PoolClosedError());
      const instances = [...this.#instances.values()];
      this.#instances.clear();
      await Promise.allSettled(instances.map((instance) => instance.close()));
      await Promise.allSettled([...this.#processes.values()].map((process) => process.close()));
      this.#processes.clear();
      this.removeAllListeners();
    })();
    return this.#closing;
  }

  /** The managed process behind an instance, if the pool spawned it. */
  managedProcess(id: string): ManagedProcess | undefined {
    return this.#processes.get(id);
  }

  #instance(id: string): PoolInstance {
    const instance = this.#instances.get(id);
    if (!instance) throw new InstanceNotFoundError(id);
    return instance;
  }

  #register(config: ResolvedInstanceConfig, managed: boolean): PoolInstance {
    const instance = new PoolInstance(
      config,
      this.#nextOrder++,
      this.#settings,
      this.#hooks,
      this.#logger,
      managed,
    );
    this.#instances.set(config.id, instance);
    return instance;
  }

  async #remove(instance: PoolInstance): Promise<void> {
    if (this.#instances.get(instance.id) !== instance) return;
    this.#instances.delete(instance.id);
    await instance.close();
    const process = this.#processes.get(instance.id);
    if (process) {
      this.#processes.delete(instance.id);
      await process.close();
    }
    this.#logger.info({ instance: instance.id }, 'instance removed');
    this.emit('removed', { instanceId: instance.id });
  }

  #createProcess(instance: PoolInstance, port: number): ManagedProcess {
    const managed = this.#options.managed!;
    const process = new ManagedProcess({
      id: instance.id,
      command: managed.command,
      extraArgs: managed.extraArgs,
      port,
      host: managed.host ?? '127.0.0.1',
      cwd: managed.cwd,
      env: managed.env,
      startTimeoutMs: managed.startTimeoutMs,
      stopGraceMs: managed.stopGraceMs,
      restartDelayMs: managed.restartDelayMs,
      maxRestartDelayMs: managed.maxRestartDelayMs,
      logger: this.#logger,
    });
    process.on('ready', () => instance.setProcessDown(false));
    process.on('exit', () => instance.setProcessDown(true));
    return process;
  }

  readonly #hooks: InstanceHooks = {
    changed: (instance) => {
      if (this.#instances.get(instance.id) === instance) this.emit('instance', instance.snapshot());
    },
    capacity: () => this.#signalCapacity(),
    breaker: (instance, position) => this.emit('breaker', { instanceId: instance.id, position }),
    reconnect: (instance) => this.emit('reconnect', { instanceId: instance.id }),
    failover: (instance, error) => this.emit('failover', { instanceId: instance.id, error }),
    workWaiting: () => Date.now() - this.#unmetAt < WORK_WAITING_MS,
  };

  // Coalesce bursts (many releases in one tick) into one 'capacity' event.
  #signalCapacity(): void {
    if (this.#capacityQueued || this.#closing) return;
    this.#capacityQueued = true;
    queueMicrotask(() => {
      this.#capacityQueued = false;
      if (!this.#closing) this.emit('capacity');
    });
  }
}

const RANKS: Readonly<Record<string, number>> = {
  healthy: 0,
  degraded: 1,
  starting: 2,
  unhealthy: 3,
  draining: 4,
};

function rank(instance: PoolInstance): number {
  return RANKS[instance.state] ?? 5;
}
