// Gives memory back once the gateway goes idle after a burst of work (its own start-up included).
// V8 grows the young generation while a process allocates fast (start-up grows it to its 32 MiB
// ceiling) and only shrinks it in a memory-reducing GC, which Node never asks for: an idle gateway
// kept ~16 MiB of empty young generation resident for good. When the event loop has been nearly idle
// for a whole interval and the young generation holds more than `youngBytes`, one memory-reducing
// full GC runs (V8's "last resort" collection: the young generation shrinks, old pages compact).
// It runs only on an idle loop, so it delays no work in progress; under load it never runs.
import { channel } from 'node:diagnostics_channel';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Told just before a compaction: bin/bundle.js writes the command line's code cache then, while the
 * functions start-up compiled are still there (a memory-reducing GC drops compiled code).
 */
const idleChannel = channel('comfy-gateway:idle');

/** Node's gc() as `--expose-gc` defines it (the options this module passes). */
type Gc = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

let exposedGc: Gc | undefined;

/**
 * Node's gc() without `--expose-gc` on the command line: the flag is set just long enough for a new
 * context to get the function (Node's documented recipe), then restored, so V8's flag hash (which
 * its code caches are checked against) is the same as before.
 */
function gcFunction(): Gc {
  if (exposedGc) return exposedGc;
  const global = (globalThis as { gc?: Gc }).gc;
  if (global) {
    exposedGc = global;
    return global;
  }
  setFlagsFromString('--expose-gc');
  try {
    exposedGc = runInNewContext('gc') as Gc;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
  return exposedGc;
}

/** Bytes the young generation holds (resident pages of V8's new space). */
function youngBytes(): number {
  for (const space of getHeapSpaceStatistics())
    if (space.space_name === 'new_space') return space.physical_space_size;
  return 0;
}

/** Settings of an IdleCompaction. */
export interface IdleCompactionOptions {
  /** How often the loop's utilisation is read (default 1 s). */
  intervalMs?: number;
  /** Event-loop utilisation over one interval below which the gateway counts as idle (default 0.05). */
  idleUtilization?: number;
  /** Young-generation size above which an idle gateway compacts (default 4 MiB). */
  youngBytes?: number;
  /** Least time between two compactions, so light steady traffic cannot make them frequent (default 30 s). */
  minSpacingMs?: number;
  /** Called after each compaction (logging, tests). */
  onCompact?: (info: { youngBytesBefore: number; youngBytesAfter: number; ms: number }) => void;
}

/** Watches the event loop; compacts the heap once per idle period that follows growth. */
export class IdleCompaction {
  readonly #timer: NodeJS.Timeout;
  #last = performance.eventLoopUtilization();
  #lastCompaction = Number.NEGATIVE_INFINITY;
  #closed = false;

  constructor(options: IdleCompactionOptions = {}) {
    const idle = options.idleUtilization ?? 0.05;
    const threshold = options.youngBytes ?? 4 * 1024 * 1024;
    const spacing = options.minSpacingMs ?? 30_000;
    this.#timer = setInterval(() => {
      const now = performance.eventLoopUtilization();
      const busy = performance.eventLoopUtilization(now, this.#last).utilization;
      this.#last = now;
      if (busy >= idle) return;
      const started = performance.now();
      if (started - this.#lastCompaction < spacing) return;
      const before = youngBytes();
      if (before <= threshold) return;
      this.#lastCompaction = started;
      if (idleChannel.hasSubscribers) idleChannel.publish({ youngBytes: before });
      gcFunction()({ type: 'major', execution: 'sync', flavor: 'last-resort' });
      // The GC itself is loop time: the next interval starts after it.
      this.#last = performance.eventLoopUtilization();
      options.onCompact?.({
        youngBytesBefore: before,
        youngBytesAfter: youngBytes(),
        ms: performance.now() - started,
      });
    }, options.intervalMs ?? 1000);
    // Never what keeps the process alive.
    this.#timer.unref();
  }

  /** Stops watching; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
  }
}
