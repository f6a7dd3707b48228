// Types of the readings bench/lib/probe.js (loaded into gateway processes by the scale benchmark)
// answers with over IPC.
/** What the probe reports. */
export interface ProbeReading {
  rssMiB: number;
  heapMiB: number;
  /** V8 heap committed (used or not), and memory outside it held by JS objects (Buffers, ArrayBuffers). */
  heapTotalMiB: number;
  externalMiB: number;
  cpuMs: number;
  /** Event-loop delay since the last reset, in ms. */
  eld: { p50: number; p99: number; max: number; count: number };
  /**
   * Synchronous calls since the last reset, in ms (issue 19 target 5: none above 5 ms at p99):
   * SQLite statements, SQLite transactions (BEGIN to COMMIT/ROLLBACK: one group commit), and
   * JSON.stringify / JSON.parse (rendering and reading bodies, the store's records).
   */
  sync: Record<'sqlite_statement' | 'sqlite_transaction' | 'json', SyncStats>;
  /** Garbage-collection pauses since the last reset, in ms. */
  gc: SyncStats;
  /** The same pauses by collector: scavenges, full mark-compacts, incremental marking steps, weak callbacks. */
  gcByKind: Record<'minor' | 'major' | 'incremental' | 'weakcb', SyncStats>;
}

/** Durations of one kind of synchronous call. */
export interface SyncStats {
  p50: number;
  p99: number;
  max: number;
  count: number;
  over_5ms: number;
}
