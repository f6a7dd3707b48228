// Loaded into a gateway process by the scale benchmark (`node --import ./bench/lib/probe.ts …`):
// answers IPC requests with the process's own event-loop delay, memory and CPU, so the benchmark measures
// the real `serve` command without a special build of it. With an IPC channel it also times every
// synchronous SQLite statement and transaction and every JSON.parse/stringify (a wrapper each; for
// benchmarks only). Inert when the process has no IPC channel.
import {
  createHistogram,
  monitorEventLoopDelay,
  performance,
  type RecordableHistogram,
} from 'node:perf_hooks';
import { DatabaseSync, StatementSync } from 'node:sqlite';

/** What the probe reports. */
export interface ProbeReading {
  rssMiB: number;
  heapMiB: number;
  cpuMs: number;
  /** Event-loop delay since the last reset, in ms. */
  eld: { p50: number; p99: number; max: number; count: number };
  /**
   * Synchronous calls since the last reset, in ms (issue 19 target 5: none above 5 ms at p99):
   * SQLite statements, SQLite transactions (BEGIN to COMMIT/ROLLBACK: one group commit), and
   * JSON.stringify / JSON.parse (rendering and reading bodies, the store's records).
   */
  sync: Record<'sqlite_statement' | 'sqlite_transaction' | 'json', SyncStats>;
}

/** Durations of one kind of synchronous call. */
export interface SyncStats {
  p50: number;
  p99: number;
  max: number;
  count: number;
  over_5ms: number;
}

/** Histograms in microseconds (createHistogram records integers ≥ 1). */
const timings = {
  sqlite_statement: createHistogram(),
  sqlite_transaction: createHistogram(),
  json: createHistogram(),
};
const over5 = { sqlite_statement: 0, sqlite_transaction: 0, json: 0 };

function record(kind: keyof typeof timings, ms: number): void {
  timings[kind].record(Math.max(1, Math.round(ms * 1000)));
  if (ms > 5) over5[kind]++;
}

/** Wraps `owner[name]` so each call's duration is recorded under `kind`. */
function time(owner: object, name: string, kind: keyof typeof timings): void {
  const target = owner as Record<string, (...args: unknown[]) => unknown>;
  const original = target[name] as (...args: unknown[]) => unknown;
  target[name] = function (this: unknown, ...args: unknown[]) {
    const t = performance.now();
    try {
      return original.apply(this, args);
    } finally {
      record(kind, performance.now() - t);
    }
  };
}

function stats(h: RecordableHistogram, over: number): SyncStats {
  const ms = (us: number) => Math.round(us) / 1000;
  return {
    p50: ms(h.percentile(50)),
    p99: ms(h.percentile(99)),
    max: ms(h.max),
    count: h.count,
    over_5ms: over,
  };
}

if (process.send !== undefined) {
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  for (const name of ['run', 'get', 'all', 'iterate'])
    time(StatementSync.prototype, name, 'sqlite_statement');
  // A transaction is timed from its BEGIN to its COMMIT or ROLLBACK (all on one synchronous stretch).
  const exec = DatabaseSync.prototype.exec;
  const begun = new WeakMap<object, number>();
  DatabaseSync.prototype.exec = function (this: DatabaseSync, sql: string) {
    const verb = sql.trimStart().slice(0, 8).toUpperCase();
    if (verb.startsWith('BEGIN')) begun.set(this, performance.now());
    try {
      return exec.call(this, sql);
    } finally {
      const since = begun.get(this);
      if (since !== undefined && (verb.startsWith('COMMIT') || verb.startsWith('ROLLBACK'))) {
        begun.delete(this);
        record('sqlite_transaction', performance.now() - since);
      }
    }
  };
  time(JSON, 'stringify', 'json');
  time(JSON, 'parse', 'json');
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  process.on('message', (msg: { type?: string; gc?: boolean; reset?: boolean }) => {
    if (msg.type !== 'probe') return;
    if (msg.gc) (globalThis as { gc?: () => void }).gc?.();
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    const reading: ProbeReading = {
      rssMiB: Math.round(mem.rss / 2 ** 20),
      heapMiB: Math.round(mem.heapUsed / 2 ** 20),
      cpuMs: Math.round((cpu.user + cpu.system) / 1000),
      eld: {
        p50: ms(delay.percentile(50)),
        p99: ms(delay.percentile(99)),
        max: ms(delay.max),
        count: delay.count,
      },
      sync: {
        sqlite_statement: stats(timings.sqlite_statement, over5.sqlite_statement),
        sqlite_transaction: stats(timings.sqlite_transaction, over5.sqlite_transaction),
        json: stats(timings.json, over5.json),
      },
    };
    if (msg.reset) {
      delay.reset();
      for (const kind of Object.keys(timings) as Array<keyof typeof timings>) {
        timings[kind].reset();
        over5[kind] = 0;
      }
    }
    process.send?.({ type: 'probe', reading });
  });
  // The IPC channel must not keep a gateway alive that is otherwise shutting down.
  process.channel?.unref();
}
