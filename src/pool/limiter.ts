// A bound on how many of one kind of task run at once across the pool (e.g. /object_info loads,
// ~400 KB each: half of 256 instances reconnecting at once would otherwise fetch and hold 128 copies).

/** Runs at most `max` tasks at once; the rest wait in arrival order, or until their signal aborts. */
export class Limiter {
  readonly #max: number;
  #active = 0;
  /** Waiting tasks' wake-ups; bounded by the callers (one load in flight per instance). */
  readonly #waiting = new Set<() => void>();

  constructor(max: number) {
    this.#max = max;
  }

  /** Runs `task` once a slot is free; rejects with the signal's reason if it aborts while waiting. */
  async run<T>(task: () => Promise<T>, signal: AbortSignal): Promise<T> {
    signal.throwIfAborted();
    if (this.#active < this.#max) this.#active++;
    else await this.#slot(signal);
    try {
      return await task();
    } finally {
      this.#release();
    }
  }

  /** Resolves when a finishing task hands over its slot (the count stays with the new holder). */
  #slot(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const wake = () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        this.#waiting.delete(wake);
        reject(signal.reason);
      };
      this.#waiting.add(wake);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  #release(): void {
    const next = this.#waiting.values().next();
    if (next.done) {
      this.#active--;
      return;
    }
    this.#waiting.delete(next.value);
    next.value();
  }
}
