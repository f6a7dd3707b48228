// One instance in the pool: its ComfyClient, health, lease accounting, capabilities, model
// affinity, and stuck detection; it derives the state operators see.
import type { Logger } from 'pino';
import { ComfyClient, type ComfyClientOptions, type NodeDef, type SystemStats } from '../comfy/index.ts';
import { ModelAffinity } from './affinity.ts';
import { Capabilities } from './capabilities.ts';
import type { Limiter } from './limiter.ts';
import type { ResolvedInstanceConfig } from './config.ts';
import { InstanceDownError } from './errors.ts';
import { InstanceHealth } from './instance-health.ts';
import { type LeaseHost, PoolLease } from './lease.ts';
import type {
  BreakerPosition,
  InstanceMemory,
  InstanceSnapshot,
  InstanceState,
  LeaseOutcome,
} from './types.ts';

/** Callbacks from an instance to its pool. */
export interface InstanceHooks {
  changed(instance: PoolInstance): void;
  capacity(): void;
  breaker(instance: PoolInstance, position: BreakerPosition): void;
  reconnect(instance: PoolInstance): void;
  failover(instance: PoolInstance, error: unknown): void;
  /** True while work waits for an instance (a recent acquisition found no slot). */
  workWaiting(): boolean;
}

/** Health and timing settings an instance needs. */
export interface InstanceSettings {
  healthCheckIntervalMs: number;
  healthCheckTimeoutMs: number;
  healthFailureThreshold: number;
  recoveryProbeIntervalMs: number;
  breakerHalfOpenAfterMs: number;
  stuckTimeoutMs: number;
  capabilityTimeoutMs: number;
  clientOptions: Partial<ComfyClientOptions>;
  /** Shared by the pool's instances: how many /object_info loads run at once. */
  objectInfoLoads: Limiter;
  /** What an instance's own (unrequested) /object_info load waits for (PoolOptions.capabilityLoadsAfter). */
  capabilityLoadsAfter: Promise<unknown> | null;
}

const ACTIVITY_MESSAGES = new Set([
  'execution_start',
  'execution_cached',
  'executing',
  'executed',
  'progress',
  'progress_state',
  'execution_success',
  'execution_error',
  'execution_interrupted',
]);

/** An instance's client, state and accounting. */
export class PoolInstance implements LeaseHost {
  readonly id: string;
  readonly url: string;
  readonly config: ResolvedInstanceConfig;
  readonly client: ComfyClient;
  readonly health: InstanceHealth;
  /** Insertion order, used for round-robin tie breaks. */
  readonly order: number;
  readonly managed: boolean;

  draining = false;
  comfyQueueRemaining: number | null = null;
  readonly capabilities: Capabilities;
  /** RAM and VRAM from the last successful health check (its /system_stats answer). */
  #memory: InstanceMemory | null = null;
  /** Set while the instance waits for its managed process to (re)start. */
  processDown = false;

  readonly #settings: InstanceSettings;
  readonly #hooks: InstanceHooks;
  readonly #logger: Logger;
  readonly #leases = new Set<PoolLease>();
  readonly #models = new ModelAffinity();
  #running = 0;
  #queued = 0;
  #suspect: string | null = null;
  #stuck: string | null = null;
  readonly #idleWaiters = new Set<() => void>();
  #lastActivityAt = Date.now();
  #wasOpen = false;
  #stuckTimer: NodeJS.Timeout | null = null;
  #closed = false;
  #closing: Promise<void> | undefined;
  readonly #closeController = new AbortController();

  constructor(
    config: ResolvedInstanceConfig,
    order: number,
    settings: InstanceSettings,
    hooks: InstanceHooks,
    logger: Logger,
    managed = false,
  ) {
    this.id = config.id;
    this.url = config.url;
    this.config = config;
    this.order = order;
    this.#settings = settings;
    this.#hooks = hooks;
    this.managed = managed;
    this.#logger = logger.child({ instance: config.id });
    this.client = new ComfyClient({
      ...settings.clientOptions,
      baseUrl: config.url,
      headers: { ...settings.clientOptions.headers, ...config.headers },
      logger: this.#logger,
    });
    const load = (signal: AbortSignal) => this.client.getObjectInfo({ refresh: true, signal });
    this.capabilities = new Capabilities(
      (signal) => settings.objectInfoLoads.run(() => load(signal), signal),
      {
        timeoutMs: settings.capabilityTimeoutMs,
        closed: this.#closeController.signal,
      },
    );
    this.health = new InstanceHealth({
      failureThreshold: settings.healthFailureThreshold,
      intervalMs: settings.healthCheckIntervalMs,
      recoveryIntervalMs: settings.recoveryProbeIntervalMs,
      timeoutMs: settings.healthCheckTimeoutMs,
      halfOpenAfterMs: settings.breakerHalfOpenAfterMs,
      probe: (signal) => this.#probe(signal),
      wantsFastProbe: () => this.#suspect !== null || this.capabilities.stale,
      workWaiting: () => this.#hooks.workWaiting(),
      onChange: () => this.#changed(),
      onBreaker: (position) => this.#onBreaker(position),
      onProbed: (ok, error) => this.#afterProbe(ok, error),
    });
    this.client.on('state', (state) => this.#onClientState(state));
    this.client.on('status', (status) => {
      const remaining = status.queueRemaining;
      if (typeof remaining === 'number' && remaining !== this.comfyQueueRemaining) {
        this.comfyQueueRemaining = remaining;
        this.#activity();
        this.#changed();
      }
    });
    this.client.on('message', (message) => {
      if (ACTIVITY_MESSAGES.has(message.type)) this.#activity();
    });
    if (settings.stuckTimeoutMs > 0) {
      const every = Math.max(20, Math.min(settings.stuckTimeoutMs / 4, 5000));
      this.#stuckTimer = setInterval(() => this.#checkStuck(), every);
      this.#stuckTimer.unref();
    }
  }

  /** Connects the WebSocket and runs the first check (never throws). */
  async start(): Promise<void> {
    if (this.processDown) return;
    this.client.connect({ signal: this.#closeController.signal }).catch((error: unknown) => {
      this.#logger.debug({ err: error }, 'websocket connect failed');
    });
    await this.health.probeNow();
  }

  /** Current state, derived from draining, breaker, first check, and suspicion. */
  get state(): InstanceState {
    if (this.draining) return 'draining';
    if (this.health.position !== 'closed') return 'unhealthy';
    if (!this.health.everHealthy || this.processDown)
      return this.health.everHealthy ? 'unhealthy' : 'starting';
    if (this.#suspect !== null || this.#stuck !== null || this.health.lastCheckOk === false)
      return 'degraded';
    return 'healthy';
  }

  /** Why the instance is not healthy (null when it is). */
  get reason(): string | null {
    if (this.draining) return 'draining';
    if (this.processDown) return 'managed process is not running';
    if (this.health.position !== 'closed')
      return `circuit ${this.health.position}: ${this.health.lastError ?? ''}`;
    if (this.#suspect !== null) return this.#suspect;
    if (this.#stuck !== null) return this.#stuck;
    if (this.health.lastCheckOk === false) return `last check failed: ${this.health.lastError ?? ''}`;
    if (!this.health.everHealthy) return 'waiting for the first health check';
    return null;
  }

  get load(): number {
    return Math.max(this.#running + this.#queued, this.comfyQueueRemaining ?? 0);
  }

  get leaseCount(): number {
    return this.#running + this.#queued;
  }

  /** True when the instance may take one more lease needing these classes (and model files). */
  canTake(classTypes: readonly string[], models?: readonly string[]): boolean {
    if (this.#closed || this.state !== 'healthy') return false;
    if (this.#running + this.#queued >= this.config.maxJobs) return false;
    return this.hasClasses(classTypes) && this.capabilities.hasModels(models);
  }

  /** True when the instance's known /object_info has every class (unknown info: only for no classes). */
  hasClasses(classTypes: readonly string[]): boolean {
    return this.capabilities.has(classTypes);
  }

  /** Fraction of the models this instance ran recently. */
  affinity(models: readonly string[] | undefined): number {
    return this.#models.score(models);
  }

  /** Creates a lease (the caller checked `canTake`). */
  acquire(models: readonly string[] | undefined): PoolLease {
    const lease = new PoolLease(this, Date.now());
    this.#leases.add(lease);
    this.#queued++;
    this.#models.record(models);
    this.#changed();
    return lease;
  }

  /** @internal LeaseHost: queued → running. */
  leaseStarted(lease: PoolLease): void {
    if (!this.#leases.has(lease)) return;
    this.#queued--;
    this.#running++;
    this.#activity();
    this.#changed();
  }

  /** @internal LeaseHost: the lease ended. */
  leaseReleased(lease: PoolLease, outcome: LeaseOutcome): void {
    if (!this.#leases.delete(lease)) return;
    if (lease.started) this.#running--;
    else this.#queued--;
    if (this.#leases.size === 0) for (const wake of [...this.#idleWaiters]) wake();
    this.#activity();
    if (outcome.ok) {
      this.health.recordSuccess();
    } else if (outcome.infrastructure) {
      this.#logger.warn({ err: outcome.error }, 'lease failed on infrastructure');
      this.#hooks.failover(this, outcome.error);
      if (!this.#closed) this.health.recordFailure(outcome.error);
      // Nothing listens on its port: the server is gone, whether or not its socket has noticed yet.
      // No more leases until a check finds it answering with its socket open (under load the close
      // reached the pool late, and jobs kept being leased to a dead instance until they ran out of
      // attempts).
      if (isRefused(outcome.error) && this.#suspect === null && !this.#closed) {
        this.#suspect = 'connection refused';
        if (!this.processDown) void this.health.probeNow();
      }
    } else {
      this.#noteUnknownClass(outcome.error);
    }
    this.#changed();
    this.#hooks.capacity();
  }

  /** The instance's /object_info, loaded once and refreshed when marked stale. */
  async nodeDefs(signal?: AbortSignal): Promise<Record<string, NodeDef>> {
    const loads = this.capabilities.stale || this.capabilities.classes === null;
    const defs = await this.capabilities.get(signal);
    // Only a real (re)load changes what the instance can take; cached reads stay silent.
    if (loads) this.#capabilitiesLoaded();
    return defs;
  }

  /** Marks capabilities stale and re-checks soon (e.g. after a 400 for an unknown class). */
  refreshCapabilities(): void {
    this.capabilities.stale = true;
    if (!this.processDown) void this.health.probeNow();
  }

  /** Stops the process-health link while a managed process restarts. */
  setProcessDown(down: boolean): void {
    if (this.processDown === down) return;
    this.processDown = down;
    if (down) {
      this.health.pause();
      this.#abortLeases('managed process exited');
    } else {
      this.capabilities.stale = true;
      this.client.connect({ signal: this.#closeController.signal }).catch(() => undefined);
      void this.health.probeNow();
    }
    this.#changed();
  }

  /** Resolves once no lease is held (or the signal aborts). */
  async idle(signal: AbortSignal): Promise<void> {
    while (this.#leases.size > 0 && !signal.aborted && !this.#closed) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal.removeEventListener('abort', done);
          this.#idleWaiters.delete(done);
          resolve();
        };
        this.#idleWaiters.add(done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  /** A point-in-time view. */
  snapshot(): InstanceSnapshot {
    return {
      id: this.id,
      url: this.url,
      state: this.state,
      weight: this.config.weight,
      labels: { ...this.config.labels },
      maxJobs: this.config.maxJobs,
      running: this.#running,
      queued: this.#queued,
      comfyQueueRemaining: this.comfyQueueRemaining,
      lastError: this.health.lastError,
      lastCheckAt: this.health.lastCheckAt?.toISOString() ?? null,
      latencyMs: this.health.latencyMs === null ? null : Math.round(this.health.latencyMs * 10) / 10,
      breaker: this.health.position,
      reason: this.reason,
      managed: this.managed,
      memory: this.#memory,
    };
  }

  /** Closes the client and timers; leases still held are aborted. Idempotent: a later caller waits for the first close. */
  close(): Promise<void> {
    this.#closing ??= this.#runClose();
    return this.#closing;
  }

  async #runClose(): Promise<void> {
    this.#closed = true;
    this.#closeController.abort();
    // Each cleanup runs even when an earlier one throws; the first failure is reported after all ran.
    const cleanups = [
      () => this.health.close(),
      () => {
        if (this.#stuckTimer) clearInterval(this.#stuckTimer);
      },
      () => this.#abortLeases('instance removed'),
      () => {
        for (const wake of [...this.#idleWaiters]) wake();
      },
      () => this.client.close(),
    ];
    let failure: unknown;
    for (const cleanup of cleanups) {
      try {
        await cleanup();
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure !== undefined) throw failure;
  }

  async #probe(signal: AbortSignal): Promise<void> {
    this.#memory = memoryOf(await this.client.getSystemStats({ signal }));
    // 'idle' means never connected or reconnection gave up: connecting is part of the check.
    // While the client is (re)connecting on its own, HTTP health is enough for the breaker; the
    // instance stays suspect (no leases) until the socket is open again.
    if (this.client.state === 'idle') await this.client.connect({ signal });
  }

  #afterProbe(ok: boolean, error?: unknown): void {
    if (this.#closed) return;
    if (!ok) {
      // WebSocket gone and nothing listens on the port: the process died and took its queue
      // with it. Tell lease holders now instead of after the breaker opens.
      if (this.#suspect !== null && this.#leases.size > 0 && isRefused(error)) {
        this.#abortLeases('connection refused after the websocket closed');
      }
      return;
    }
    if (this.#suspect !== null && this.client.state === 'open') {
      this.#logger.info({ reason: this.#suspect }, 'instance answers again');
      this.#suspect = null;
    }
    if (this.capabilities.stale || this.capabilities.classes === null) {
      const after = this.#settings.capabilityLoadsAfter;
      (after
        ? after.then(() => {
            // A caller may have loaded them meanwhile.
            if (this.#closed || !(this.capabilities.stale || this.capabilities.classes === null)) return;
            return this.#loadCapabilities();
          })
        : this.#loadCapabilities()
      ).catch((error: unknown) => {
        this.#logger.warn({ err: error }, 'could not load /object_info');
      });
    }
    this.#hooks.capacity();
  }

  async #loadCapabilities(): Promise<void> {
    await this.capabilities.load();
    this.#capabilitiesLoaded();
  }

  #capabilitiesLoaded(): void {
    this.#changed();
    this.#hooks.capacity();
  }

  #onClientState(state: string): void {
    if (this.#closed) return;
    if (state === 'open') {
      if (this.#wasOpen) {
        this.capabilities.stale = true;
        this.#hooks.reconnect(this);
      }
      this.#wasOpen = true;
      // A reconnect is a sign of life: check now, even if the breaker would still wait.
      if ((this.#suspect !== null || this.health.position !== 'closed') && !this.processDown)
        void this.health.expedite();
      return;
    }
    if ((state === 'reconnecting' || state === 'closed') && this.#wasOpen && this.#suspect === null) {
      this.#suspect = 'websocket closed';
      this.#logger.warn('websocket closed: no new leases until the instance answers');
      this.#changed();
      if (!this.processDown) void this.health.probeNow();
    }
  }

  #onBreaker(position: BreakerPosition): void {
    this.#logger.warn({ breaker: position, lastError: this.health.lastError }, `circuit ${position}`);
    this.#hooks.breaker(this, position);
    if (position === 'open') this.#abortLeases(`circuit opened: ${this.health.lastError ?? 'failures'}`);
    if (position === 'closed') this.#hooks.capacity();
  }

  #abortLeases(reason: string): void {
    for (const lease of this.#leases) lease.abort(new InstanceDownError(this.id, reason));
  }

  #noteUnknownClass(error: unknown): void {
    const classType = this.capabilities.forgetUnknownClass(error);
    if (classType === null) return;
    this.#logger.warn({ classType }, 'instance rejected an unknown node class: refreshing /object_info');
    this.refreshCapabilities();
  }

  #activity(): void {
    this.#lastActivityAt = Date.now();
    if (this.#stuck !== null) {
      this.#logger.info('instance queue moves again');
      this.#stuck = null;
      this.#changed();
      this.#hooks.capacity();
    }
  }

  #checkStuck(): void {
    if (this.#stuck !== null || this.#queued === 0) return;
    let oldest = Number.POSITIVE_INFINITY;
    for (const lease of this.#leases) if (!lease.started) oldest = Math.min(oldest, lease.acquiredAt);
    const since = Math.max(oldest, this.#lastActivityAt);
    const idleMs = Date.now() - since;
    if (idleMs < this.#settings.stuckTimeoutMs) return;
    this.#stuck = `stuck: ${this.#queued} prompt(s) not started and no progress for ${Math.round(idleMs / 1000)} s`;
    this.#logger.warn({ queued: this.#queued, running: this.#running }, this.#stuck);
    this.#changed();
  }

  #changed(): void {
    if (this.#closed) return;
    this.#hooks.changed(this);
  }
}

// A connection the server provably never accepted (nothing listening), as opposed to a timeout.
function isRefused(error: unknown): boolean {
  const e = error as { code?: unknown; notSent?: unknown; message?: unknown } | null;
  return e?.code === 'comfy_connection' && e.notSent === true;
}

/** RAM and the first device's VRAM from a /system_stats answer (bytes; null when not reported). */
function memoryOf(stats: SystemStats): InstanceMemory {
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const device = Array.isArray(stats?.devices) ? stats.devices[0] : undefined;
  return {
    ramTotal: num(stats?.system?.ram_total),
    ramFree: num(stats?.system?.ram_free),
    vramTotal: num(device?.vram_total),
    vramFree: num(device?.vram_free),
  };
}
