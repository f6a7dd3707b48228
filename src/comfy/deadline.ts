// Small helpers for bounded waits: a signal that aborts at a deadline or when a parent aborts,
// with explicit cleanup so no timer or listener outlives the operation it guards.

/** A linked AbortController; `dispose()` clears its timer and parent listeners. */
export interface ScopedSignal {
  readonly signal: AbortSignal;
  /** True when the deadline (not a parent) caused the abort. */
  readonly timedOut: boolean;
  abort(reason?: unknown): void;
  dispose(): void;
}

/** Links `parents` and an optional timeout into one signal, released by `dispose()`. */
export function scopedSignal(parents: Array<AbortSignal | undefined>, timeoutMs?: number): ScopedSignal {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  const cleanups: Array<() => void> = [];
  const dispose = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    for (const c of cleanups.splice(0)) c();
  };
  const abort = (reason?: unknown): void => {
    dispose();
    if (!controller.signal.aborted) controller.abort(reason);
  };
  for (const parent of parents) {
    if (parent === undefined) continue;
    if (parent.aborted) {
      abort(parent.reason);
      break;
    }
    const onAbort = (): void => abort(parent.reason);
    parent.addEventListener('abort', onAbort, { once: true });
    cleanups.push(() => parent.removeEventListener('abort', onAbort));
  }
  if (!controller.signal.aborted && timeoutMs !== undefined && Number.isFinite(timeoutMs)) {
    timer = setTimeout(
      () => {
        timedOut = true;
        abort(new DOMException(`deadline of ${timeoutMs} ms passed`, 'TimeoutError'));
      },
      Math.max(0, timeoutMs),
    );
  }
  return {
    signal: controller.signal,
    get timedOut() {
      return timedOut;
    },
    abort,
    dispose,
  };
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
