// A disposable AbortSignal that follows parent signals and an optional deadline. Unlike
// AbortSignal.timeout/any, disposing clears the timer and the parent listeners at once, so a
// finished request leaves nothing behind for the rest of its deadline (thousands per second).

/** Raised as the abort reason when the deadline passes. */
export class DeadlineError extends Error {
  readonly code = 'deadline';
  constructor(ms: number) {
    super(`deadline of ${ms} ms passed`);
    this.name = 'DeadlineError';
  }
}

/** A signal plus the means to release it. */
export interface ScopedSignal {
  readonly signal: AbortSignal;
  /** True when the deadline (not a parent) aborted the signal. */
  readonly timedOut: boolean;
  /** Clears the timer and parent listeners; idempotent. */
  dispose(): void;
}

/** Creates a signal aborted by any parent or after `timeoutMs` (when given). */
export function scopedSignal(
  parents: ReadonlyArray<AbortSignal | undefined>,
  timeoutMs?: number,
): ScopedSignal {
  const controller = new AbortController();
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  const cleanups: Array<() => void> = [];
  const dispose = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    for (const cleanup of cleanups.splice(0)) cleanup();
  };
  for (const parent of parents) {
    if (!parent) continue;
    if (parent.aborted) {
      controller.abort(parent.reason);
      break;
    }
    const onAbort = () => {
      controller.abort(parent.reason);
      dispose();
    };
    parent.addEventListener('abort', onAbort, { once: true });
    cleanups.push(() => parent.removeEventListener('abort', onAbort));
  }
  if (!controller.signal.aborted && timeoutMs !== undefined && Number.isFinite(timeoutMs)) {
    timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new DeadlineError(timeoutMs));
      dispose();
    }, timeoutMs);
    timer.unref();
  }
  return {
    signal: controller.signal,
    get timedOut() {
      return timedOut;
    },
    dispose,
  };
}
