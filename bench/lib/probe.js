// Loaded into a gateway process by the scale benchmark (`node --import ./bench/lib/probe.js …`): plain
// JavaScript, so it does not load Node's TypeScript support into a process that runs the bundled build
// (that cost ~50 ms of start-up and ~15 MiB of RSS). Its readings' types are in probe.ts.
// It answers IPC requests with the process's own event-loop delay, memory and CPU, so the benchmark measures
// the real `serve` command without a special build of it. With an IPC channel it also times every
// synchronous SQLite statement and transaction and every JSON.parse/stringify (a wrapper each; for
// benchmarks only). Inert when the process has no IPC channel.
import { createHistogram, monitorEventLoopDelay, PerformanceObserver, performance } from 'node:perf_hooks';
import { DatabaseSync, StatementSync } from 'node:sqlite';

/** Histograms in microseconds (createHistogram records integers ≥ 1). */
const timings = {
  sqlite_statement: createHistogram(),
  sqlite_transaction: createHistogram(),
  json: createHistogram(),
  gc: createHistogram(),
  gc_minor: createHistogram(),
  gc_major: createHistogram(),
  gc_incremental: createHistogram(),
  gc_weakcb: createHistogram(),
};
const over5 = {
  sqlite_statement: 0,
  sqlite_transaction: 0,
  json: 0,
  gc: 0,
  gc_minor: 0,
  gc_major: 0,
  gc_incremental: 0,
  gc_weakcb: 0,
};
/** perf_hooks' GC kinds (entry.detail.kind, a bit each): which collector made a pause. */
const GC_KINDS = { 1: 'gc_minor', 4: 'gc_major', 8: 'gc_incremental', 16: 'gc_weakcb' };

function record(kind, ms) {
  timings[kind].record(Math.max(1, Math.round(ms * 1000)));
  if (ms > 5) over5[kind]++;
}

/** Wraps `owner[name]` so each call's duration is recorded under `kind`. */
function time(owner, name, kind) {
  const original = owner[name];
  owner[name] = function (...args) {
    const t = performance.now();
    try {
      return original.apply(this, args);
    } finally {
      record(kind, performance.now() - t);
    }
  };
}

function stats(h, over) {
  const ms = (us) => Math.round(us) / 1000;
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
  const begun = new WeakMap();
  DatabaseSync.prototype.exec = function (sql) {
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
  // Garbage-collection pauses: what of the loop delay is the collector's.
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      record('gc', entry.duration);
      const kind = GC_KINDS[entry.detail?.kind];
      if (kind) record(kind, entry.duration);
    }
  }).observe({ entryTypes: ['gc'] });
  time(JSON, 'stringify', 'json');
  time(JSON, 'parse', 'json');
  const ms = (ns) => Math.round(ns / 1e4) / 100;
  process.on('message', (msg) => {
    if (msg.type !== 'probe') return;
    if (msg.gc) globalThis.gc?.();
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    const reading = {
      rssMiB: Math.round(mem.rss / 2 ** 20),
      heapMiB: Math.round(mem.heapUsed / 2 ** 20),
      heapTotalMiB: Math.round(mem.heapTotal / 2 ** 20),
      externalMiB: Math.round(mem.external / 2 ** 20),
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
      gc: stats(timings.gc, over5.gc),
      gcByKind: {
        minor: stats(timings.gc_minor, over5.gc_minor),
        major: stats(timings.gc_major, over5.gc_major),
        incremental: stats(timings.gc_incremental, over5.gc_incremental),
        weakcb: stats(timings.gc_weakcb, over5.gc_weakcb),
      },
    };
    if (msg.reset) {
      delay.reset();
      for (const kind of Object.keys(timings)) {
        timings[kind].reset();
        over5[kind] = 0;
      }
    }
    process.send?.({ type: 'probe', reading });
  });
  // The IPC channel must not keep a gateway alive that is otherwise shutting down.
  process.channel?.unref();
}
