// Small helpers for bounded waits: a signal that aborts at a deadline or when a parent aborts,
// with explicit cleanup so no timer or listener outlives the operation it guards, and the check
// every caller-given duration passes.
import { ComfyArgumentError } from './errors.ts';

/**
 * Refuses a duration that is given but not a finite number (Infinity, NaN, a string): such a value
 * would silently mean "no deadline" or break a timer. 0 or less means "already expired".
 */
export function checkDuration(name: string, value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw new ComfyArgumentError(`${name} must be a finite number of milliseconds, got ${String(value)}`);
}

/** A linked AbortController; `dispose()` clears its timer and parent listeners. */
export interface ScopedSignal {
  readonly signal: AbortSignal;
  /** True when the deadline (not a parent) caused the abort. */
  readonly timedOut: boolean;
  abort(reason?: unknown): void;
  dispose(): void;
}

/**
 * The scopes linked to each parent signal, behind one abort listener per parent. Node's EventTarget
 * walks a signal's whole listener list on every add and remove, so a listener per scope made 10,000
 * `?wait` requests on one shutdown signal cost quadratic time (2.3 s of a 37 s load run).
 */
const linked = new WeakMap<AbortSignal, Set<Scope>>();

function abortLinked(event: Event): void {
  const parent = event.target as AbortSignal;
  const scopes = linked.get(parent);
  linked.delete(parent);
  if (scopes) for (const scope of [...scopes]) scope.abort(parent.reason);
}

function link(parent: AbortSignal, scope: Scope): void {
  let scopes = linked.get(parent);
  if (!scopes) {
    scopes = new Set();
    linked.set(parent, scopes);
    parent.addEventListener('abort', abortLinked, { once: true });
  }
  scopes.add(scope);
}

function unlink(parent: AbortSignal, scope: Scope): void {
  const scopes = linked.get(parent);
  if (!scopes?.delete(scope) || scopes.size > 0) return;
  // The last one: no listener is left to keep the parent (e.g. an AbortSignal.timeout) alive.
  linked.delete(parent);
  parent.removeEventListener('abort', abortLinked);
}

/**
 * One controller, at most one timer and one shared listener per parent signal: this runs
 * for every HTTP attempt and every prompt run, so it allocates as little as it can (no
 * AbortSignal.any, no per-parent closures).
 */
class Scope implements ScopedSignal {
  readonly #controller = new AbortController();
  readonly #parents: AbortSignal[] = [];
  #timer: NodeJS.Timeout | undefined;
  #timedOut = false;

  constructor(parents: Array<AbortSignal | undefined>, timeoutMs: number | undefined) {
    for (const parent of parents) {
      if (parent === undefined) continue;
      if (parent.aborted) {
        this.abort(parent.reason);
        return;
      }
      link(parent, this);
      this.#parents.push(parent);
    }
    if (timeoutMs !== undefined && Number.isFinite(timeoutMs)) {
      this.#timer = setTimeout(
        () => {
          this.#timedOut = true;
          this.abort(new DOMException(`deadline of ${timeoutMs} ms passed`, 'TimeoutError'));
        },
        Math.max(0, timeoutMs),
      );
    }
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get timedOut(): boolean {
    return this.#timedOut;
  }

  abort(reason?: unknown): void {
    this.dispose();
    if (!this.#controller.signal.aborted) this.#controller.abort(reason);
  }

  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const parents = this.#parents;
    for (let i = 0; i < parents.length; i++) unlink(parents[i] as AbortSignal, this);
    parents.length = 0;
  }
}

/** Links `parents` and an optional timeout into one signal, released by `dispose()`. */
export function scopedSignal(parents: Array<AbortSignal | undefined>, timeoutMs?: number): ScopedSignal {
  return new Scope(parents, timeoutMs);
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Exponential backoff with full jitter: a random delay in [base/2, base], base doubling per attempt. */
export function backoffDelay(
  attempt: number,
  initialMs: number,
  maxMs: number,
  random = Math.random,
): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(base / 2 + (random() * base) / 2);
}
