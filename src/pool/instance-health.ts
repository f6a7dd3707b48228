// Health of one instance: the circuit breaker (cockatiel), active probes on a timer, passive
// failure/success signals, and the check history shown to operators (last error, latency). The
// breaker's half-open wait grows after each failed probe, except while work waits for an instance
// (capped at the recovery interval) and after a WebSocket reconnect (a check at once).
import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  ExponentialBackoff,
  circuitBreaker,
  handleAll,
  type CircuitBreakerPolicy,
  type IBackoff,
  type IBackoffFactory,
  type IHalfOpenAfterBackoffContext,
} from 'cockatiel';
import type { BreakerPosition } from './types.ts';

/** Settings and callbacks of one InstanceHealth. */
export interface InstanceHealthOptions {
  failureThreshold: number;
  intervalMs: number;
  recoveryIntervalMs: number;
  timeoutMs: number;
  halfOpenAfterMs: number;
  /** The active check; throws when the instance is not usable. */
  probe: (signal: AbortSignal) => Promise<void>;
  /** True when the owner wants the fast (recovery) interval even though the breaker is closed. */
  wantsFastProbe: () => boolean;
  /** True while work waits for an instance: the open breaker's wait is capped at `recoveryIntervalMs`. */
  workWaiting?: () => boolean;
  onChange: () => void;
  onBreaker: (position: BreakerPosition) => void;
  /** Called after every probe, whatever its outcome. */
  onProbed?: (ok: boolean, error?: unknown) => void;
}

const LATENCY_SMOOTHING = 0.3;
const OPEN_POLL_MS = 100;

/** Breaker + probe loop for one instance. */
export class InstanceHealth {
  readonly breaker: CircuitBreakerPolicy;
  lastError: string | null = null;
  lastCheckAt: Date | null = null;
  /** Outcome of the most recent active check (null before the first). */
  lastCheckOk: boolean | null = null;
  /** True once any check succeeded. */
  everHealthy = false;
  latencyMs: number | null = null;
  consecutiveFailures = 0;

  readonly #options: InstanceHealthOptions;
  #timer: NodeJS.Timeout | null = null;
  #inFlight: Promise<boolean> | null = null;
  readonly #closeController = new AbortController();
  #closed = false;
  #paused = false;
  /** Set by `expedite()`: the open breaker may half-open at once (cleared on its next change). */
  #expedited = false;

  constructor(options: InstanceHealthOptions) {
    this.#options = options;
    this.breaker = circuitBreaker(handleAll, {
      breaker: new ConsecutiveBreaker(options.failureThreshold),
      halfOpenAfter: new AdjustableBackoff(
        new ExponentialBackoff({
          initialDelay: options.halfOpenAfterMs,
          maxDelay: Math.max(options.halfOpenAfterMs, options.intervalMs),
        }),
        (duration) => {
          if (this.#expedited) return 0;
          if (this.#options.workWaiting?.()) return Math.min(duration, this.#options.recoveryIntervalMs);
          return duration;
        },
      ),
    });
    this.breaker.onStateChange((state) => {
      this.#expedited = false;
      if (this.#closed) return;
      options.onBreaker(positionOf(state));
      options.onChange();
    });
  }

  /** The breaker as operators see it. */
  get position(): BreakerPosition {
    return positionOf(this.breaker.state);
  }

  /** Starts the probe loop with an immediate check. */
  start(): void {
    this.#paused = false;
    void this.probeNow();
  }

  /** Stops probing (e.g. while a managed process restarts) until `start()` or `probeNow()`. */
  pause(): void {
    this.#paused = true;
    this.#clearTimer();
  }

  /** Runs a check now (joining one in flight); resolves true when the instance answered. */
  probeNow(): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    this.#paused = false;
    if (this.#inFlight) return this.#inFlight;
    this.#clearTimer();
    this.#inFlight = this.#runProbe().finally(() => {
      this.#inFlight = null;
      this.#schedule();
    });
    return this.#inFlight;
  }

  /**
   * Checks now, even while the breaker would still wait before half-opening: the instance gave a
   * sign of life (its WebSocket reconnected), so a returning instance is not left idle for the rest
   * of a backoff that grew during the outage.
   */
  expedite(): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    if (this.breaker.state === CircuitState.Open) this.#expedited = true;
    return this.probeNow();
  }

  /** A passive failure (connection error, 5xx, job timeout on infrastructure). */
  recordFailure(error: unknown): void {
    if (this.#closed) return;
    this.lastError = describe(error);
    this.consecutiveFailures++;
    if (this.breaker.state !== CircuitState.Closed) return;
    this.breaker
      .execute(() => {
        throw error;
      })
      .catch(() => undefined);
    this.#options.onChange();
  }

  /** A passive success (a prompt completed): resets the consecutive-failure count. */
  recordSuccess(): void {
    if (this.#closed || this.breaker.state !== CircuitState.Closed) return;
    this.consecutiveFailures = 0;
    this.breaker.execute(() => undefined).catch(() => undefined);
  }

  /** Stops the loop and any check in flight; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#clearTimer();
    this.#closeController.abort();
  }

  async #runProbe(): Promise<boolean> {
    const signal = AbortSignal.any([
      this.#closeController.signal,
      AbortSignal.timeout(this.#options.timeoutMs),
    ]);
    const started = performance.now();
    let ok = false;
    let failure: unknown;
    try {
      await this.breaker.execute(() => this.#options.probe(signal), signal);
      ok = true;
    } catch (error) {
      if (this.#closed) return false;
      // The breaker refused without probing: nothing was checked, keep the last result.
      if (error instanceof BrokenCircuitError) return false;
      failure = error;
      this.lastError = signal.aborted
        ? `health check timed out after ${this.#options.timeoutMs} ms`
        : describe(error);
      this.consecutiveFailures++;
    }
    if (this.#closed) return false;
    this.lastCheckAt = new Date();
    this.lastCheckOk = ok;
    if (ok) {
      const elapsed = performance.now() - started;
      this.latencyMs =
        this.latencyMs === null ? elapsed : this.latencyMs + LATENCY_SMOOTHING * (elapsed - this.latencyMs);
      this.everHealthy = true;
      this.consecutiveFailures = 0;
    }
    this.#options.onProbed?.(ok, failure);
    this.#options.onChange();
    return ok;
  }

  #schedule(): void {
    if (this.#closed || this.#paused) return;
    this.#clearTimer();
    const healthy =
      this.breaker.state === CircuitState.Closed &&
      this.lastCheckOk === true &&
      !this.#options.wantsFastProbe();
    // While open, a refused probe costs nothing (no request is made), so check often: the
    // half-open probe then runs within a moment of the breaker allowing it.
    const open = this.breaker.state === CircuitState.Open;
    const delay = healthy
      ? this.#options.intervalMs
      : open
        ? Math.min(this.#options.recoveryIntervalMs, OPEN_POLL_MS)
        : this.#options.recoveryIntervalMs;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.probeNow();
    }, delay);
    this.#timer.unref();
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }
}

/**
 * A backoff whose durations pass through `adjust` each time they are read. cockatiel reads the
 * open breaker's `duration` on every call, so the wait follows conditions that change while it
 * is open (work arriving, a reconnect) instead of the value fixed when it opened.
 */
class AdjustableBackoff implements IBackoffFactory<IHalfOpenAfterBackoffContext> {
  readonly #inner: IBackoffFactory<IHalfOpenAfterBackoffContext>;
  readonly #adjust: (duration: number) => number;

  constructor(inner: IBackoffFactory<IHalfOpenAfterBackoffContext>, adjust: (duration: number) => number) {
    this.#inner = inner;
    this.#adjust = adjust;
  }

  next(context: IHalfOpenAfterBackoffContext): IBackoff<IHalfOpenAfterBackoffContext> {
    return this.#wrap(this.#inner.next(context));
  }

  #wrap(backoff: IBackoff<IHalfOpenAfterBackoffContext>): IBackoff<IHalfOpenAfterBackoffContext> {
    const adjust = this.#adjust;
    return {
      get duration() {
        return adjust(backoff.duration);
      },
      next: (context) => this.#wrap(backoff.next(context)),
    };
  }
}

function positionOf(state: CircuitState): BreakerPosition {
  if (state === CircuitState.Closed) return 'closed';
  if (state === CircuitState.HalfOpen) return 'half-open';
  return 'open';
}

/** A short, log-safe description of an error. */
export function describe(error: unknown): string {
  // Errors, and the plain `{code, message}` job errors the gateway reports when it releases a lease.
  if (error !== null && typeof error === 'object' && typeof (error as Error).message === 'string') {
    const { code, message } = error as { code?: unknown; message: string };
    return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
  }
  return String(error);
}
