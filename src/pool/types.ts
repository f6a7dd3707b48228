// The pool's public types: instance configuration and snapshots, leases, and the Pool's options.
import type { Logger } from 'pino';
import type { ComfyClient, ComfyClientOptions } from '../comfy/index.ts';

/** One ComfyUI server the pool may send work to. */
export interface InstanceConfig {
  /** Stable id used in routes, logs and metrics; defaults to the URL's `host:port`. */
  id?: string;
  url: string;
  /** Sent with every HTTP request and the WebSocket upgrade (e.g. auth for a proxy). */
  headers?: Record<string, string>;
  /** Relative capacity: an instance with weight 2 takes twice the work of weight 1 (default 1). */
  weight?: number;
  labels?: Record<string, string>;
  /** Concurrent leases on this instance (default: the pool's `maxJobsPerInstance`). */
  maxJobs?: number;
}

/** Live health of one instance. Only `healthy` instances get new leases. */
export type InstanceState = 'starting' | 'healthy' | 'degraded' | 'unhealthy' | 'draining';

/** Circuit breaker position, as shown to operators. */
export type BreakerPosition = 'closed' | 'open' | 'half-open';

/** A point-in-time view of one instance. */
export interface InstanceSnapshot {
  id: string;
  url: string;
  state: InstanceState;
  weight: number;
  labels: Record<string, string>;
  maxJobs: number;
  /** Leases whose prompt is executing (`markStarted` was called). */
  running: number;
  /** Leases held but not started yet (uploading inputs, or queued inside ComfyUI). */
  queued: number;
  /** ComfyUI's own `queue_remaining` from its last `status` message (includes other clients' work). */
  comfyQueueRemaining: number | null;
  lastError: string | null;
  lastCheckAt: string | null;
  /** Rolling average of health check round trips. */
  latencyMs: number | null;
  breaker: BreakerPosition;
  /** Why the instance is not healthy, when it is not (e.g. `websocket closed`, `stuck`). */
  reason?: string | null;
  /** True when the gateway spawned and supervises this ComfyUI process. */
  managed?: boolean;
  /** RAM/VRAM from the last successful health check's /system_stats. */
  memory?: InstanceMemory | null;
}

/** Memory figures of one instance, in bytes (VRAM of its first device). */
export interface InstanceMemory {
  ramTotal: number | null;
  ramFree: number | null;
  vramTotal: number | null;
  vramFree: number | null;
}

/** What a lease request needs from an instance. */
export interface AcquireRequest {
  /** Every node class the prompt uses; only instances whose /object_info has all of them qualify. */
  classTypes: string[];
  /** Model files (checkpoints, LoRAs) the prompt loads: used for affinity. */
  models?: string[];
  /** Model files an instance must list in its /object_info choices to qualify (the models feature). */
  requiredModels?: string[];
  /** Instance ids to avoid (e.g. the one where the previous attempt failed). */
  exclude?: string[];
}

/** The outcome reported when a lease ends. */
export type LeaseOutcome = { ok: true } | { ok: false; error: unknown; infrastructure: boolean };

/** The right to run one prompt on one instance; must be released exactly once (extra calls are no-ops). */
export interface Lease {
  readonly instanceId: string;
  readonly url: string;
  readonly client: ComfyClient;
  /** Aborted when the instance is declared down or removed: the work on it will not complete. */
  readonly signal: AbortSignal;
  /** The prompt left "queued on instance" and runs (for running/queued accounting). */
  markStarted(): void;
  /** Idempotent; infrastructure failures count towards the instance's circuit breaker. */
  release(outcome: LeaseOutcome): void;
}

/** ComfyUI processes the pool spawns and supervises itself. */
export interface ManagedProcessesOptions {
  /** Command with a `{port}` placeholder, as one string (split like a shell would, without a shell) or argv. */
  command: string | string[];
  /** Appended to every process's arguments (e.g. `--extra-model-paths-config <file>`). */
  extraArgs?: string[];
  ports: number[];
  /** Host the processes listen on (default 127.0.0.1). */
  host?: string;
  cwd?: string;
  env?: Record<string, string>;
  /** How long a start may take until /system_stats answers (default 120 s). */
  startTimeoutMs?: number;
  /** SIGTERM → SIGKILL grace period on stop (default 10 s). */
  stopGraceMs?: number;
  /** First restart delay after an unexpected exit; doubles up to `maxRestartDelayMs` (default 1 s). */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
  weight?: number;
  maxJobs?: number;
  labels?: Record<string, string>;
}

/** Settings of a Pool. */
export interface PoolOptions {
  instances: InstanceConfig[];
  maxJobsPerInstance: number;
  /** Interval of active health checks while an instance is healthy (default 30 s). */
  healthCheckIntervalMs: number;
  /** Timeout of one health check (default 5 s). */
  healthCheckTimeoutMs?: number;
  /** Consecutive failures (checks, connection errors, infrastructure lease failures) that open the breaker. */
  healthFailureThreshold: number;
  /** Probe interval while an instance is not healthy (default min(1 s, interval)). */
  recoveryProbeIntervalMs?: number;
  /** First open → half-open delay; doubles while probes keep failing, up to the health check interval (default 1 s). */
  breakerHalfOpenAfterMs?: number;
  /** Leases not started while the instance shows no activity for this long degrade it (default 120 s; 0 disables). */
  stuckTimeoutMs?: number;
  /** Prefer the instance that last ran the same models (default true). */
  affinity?: boolean;
  logger?: Logger;
  clientOptions?: Partial<ComfyClientOptions>;
  managed?: ManagedProcessesOptions;
  /**
   * The /object_info load an instance starts by itself after a check waits for this (the gateway
   * passes its listening): start-up does not fetch and parse every instance's node definitions
   * before it serves. A load a caller asks for (nodeDefsFor) never waits. Default: no wait.
   */
  capabilityLoadsAfter?: Promise<unknown>;
}
