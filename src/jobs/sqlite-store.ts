// The default JobStore: one SQLite file (node:sqlite, WAL) under DATA_DIR. A job row carries the
// columns we query by plus the whole record as JSON; schema changes go through numbered
// migrations keyed on PRAGMA user_version. WAL + synchronous=NORMAL survives a process kill
// (the case we design for); only an OS crash can lose the last few commits. Writes are group-
// committed: buffered for a turn of the event loop (until the second check phase, so requests
// queued in the same turn leave first) and written in one transaction; callers that need
// durability (a job id about to be returned) await `durable()`. Updates nobody waits for
// (state changes after the id was handed out, terminal states included) wait up to `lazyCommitMs`
// to ride along with the next durable commit: one commit per job instead of two when jobs run one
// at a time, and a kill inside that window is covered by recovery (the job re-attaches to its
// prompt on the instance, whose history has the result). A pending write keeps the
// record itself and serialises it at commit, so several updates of one job in a turn cost one
// JSON.stringify and the row gets the job's latest state.
// WAL checkpoints run on a thread of the store's own (started on first use), not inside a COMMIT on
// the event loop.
// When a commit fails (disk full, I/O error) the inserts in it are dropped and their submitters get
// StorageUnavailableError (nothing was queued: a job that is not durable never runs), the state
// updates stay pending, and the store reports unhealthy and retries (or probes with a small write)
// until a commit succeeds again. The file's identity (device, inode) is checked periodically: a
// database deleted or replaced under the running process is reported, and writes stop.
import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { Worker } from 'node:worker_threads';
import { IdempotencyKeyReuseError, StorageUnavailableError, StoreOpenError } from './errors.ts';
import { countByStatus, type JobRecord, type JobStatus, TERMINAL_STATUSES } from './job.ts';
import {
  decodeCursor,
  encodeCursor,
  FACADE_METADATA_KEY,
  IDEMPOTENCY_TTL_MS,
  type JobPage,
  type JobStore,
  type ListQuery,
  type StoreHealth,
} from './store.ts';

/** The job's workflow name inside the stored state; queries must spell it exactly so to use the index. */
const NAME_EXPR = "json_extract(data, '$.request.name')";
/** True for prompts of the native facade; spelt exactly as in the partial index so queries use it. */
const FACADE_EXPR = "json_extract(data, '$.request.metadata.comfy_facade') IS NOT NULL";

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE jobs (
     id TEXT PRIMARY KEY,
     status TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     data TEXT NOT NULL
   );
   CREATE INDEX jobs_by_created ON jobs (created_at DESC, id DESC);
   CREATE INDEX jobs_by_status ON jobs (status, created_at DESC, id DESC);
   CREATE INDEX jobs_by_expiry ON jobs (expires_at);
   CREATE TABLE idempotency_keys (
     key TEXT PRIMARY KEY,
     job_id TEXT NOT NULL,
     claimed_at INTEGER NOT NULL
   );
   CREATE INDEX idempotency_by_time ON idempotency_keys (claimed_at);`,
  // The workflow is written once at insert; state updates no longer rewrite it (big prompts).
  `ALTER TABLE jobs ADD COLUMN workflow TEXT;`,
  // Listing by workflow name (the dashboard's filter) walks this index, newest first.
  `CREATE INDEX jobs_by_name ON jobs (${NAME_EXPR}, created_at DESC, id DESC);`,
  // A scratch row the store writes and deletes to learn whether it can commit again after a failure.
  `CREATE TABLE store_probe (id INTEGER PRIMARY KEY, pad BLOB);`,
  // The webhook outbox: terminal jobs whose delivery is still pending. A partial index on the
  // record's flag, so the write path stays one statement and the index holds only pending jobs.
  `CREATE INDEX jobs_webhook_pending ON jobs (created_at)
     WHERE json_extract(data, '$.webhook_pending') = 1;`,
  // The native facade's prompts, newest first: what it reads back at start-up, without walking
  // every other job (100k stored jobs took its recovery 9-13 s).
  `CREATE INDEX jobs_facade ON jobs (created_at DESC, id DESC) WHERE ${FACADE_EXPR};`,
];

/** Bytes the recovery probe writes: a commit of this size must fit before the store calls itself healthy. */
const PROBE_BYTES = 64 * 1024;

/**
 * Most writes committed in one transaction. A commit runs on the event loop: 512 rows took 27.6 ms
 * at p99 in a burst of 10,000 submissions (bench scale, loaded box), 64 keep it to a few ms while a
 * busy gateway still shares each commit among many jobs (13 per commit at 1,400 jobs/s).
 */
export const MAX_BATCH_WRITES = 64;

/**
 * Commits between two WAL checkpoints. SQLite's own automatic checkpoint runs inside the COMMIT that
 * crosses 1,000 WAL pages, on the event loop, with two fsyncs: it made a group commit's p99 5-8 ms
 * where the writes themselves take under 0.5 ms. The store checkpoints from a thread of its own instead.
 */
export const CHECKPOINT_EVERY_COMMITS = 64;

/** How long closing the store waits for the checkpoint thread to close its connection. */
const CHECKPOINTER_CLOSE_WAIT_MS = 1000;

/**
 * The checkpoint thread: its own connection to the file, one PASSIVE checkpoint per message; on
 * 'close' it closes its connection and raises the shared flag the store's close waits on.
 */
const CHECKPOINTER = `const { parentPort, workerData } = require('node:worker_threads');
const { DatabaseSync } = require('node:sqlite');
const closed = new Int32Array(workerData.closed);
const db = new DatabaseSync(workerData.path);
db.exec('PRAGMA busy_timeout = 5000');
parentPort.on('message', (msg) => {
  if (msg === 'close') {
    db.close();
    Atomics.store(closed, 0, 1);
    Atomics.notify(closed, 0);
    parentPort.close();
    return;
  }
  let error = null;
  try { db.exec('PRAGMA wal_checkpoint(PASSIVE)'); } catch (err) { error = String(err && err.message || err); }
  parentPort.postMessage({ error });
});`;

/**
 * Runs WAL checkpoints off the event loop, started on first use (an idle gateway never starts it).
 * A PASSIVE checkpoint never blocks the writer; while one runs, further requests are dropped. When
 * the thread fails, SQLite's automatic checkpoint is switched back on.
 */
class Checkpointer {
  readonly #path: string;
  readonly #fallback: () => void;
  #worker: Worker | null = null;
  #busy = false;
  #failed = false;
  #closed = false;
  #runs = 0;
  /** Set to 1 by the thread once its connection is closed. */
  readonly #threadClosed = new Int32Array(new SharedArrayBuffer(4));

  constructor(path: string, fallback: () => void) {
    this.#path = path;
    this.#fallback = fallback;
  }

  /** Checkpoints completed by the thread (for tests and metrics). */
  get runs(): number {
    return this.#runs;
  }

  /** Asks for a checkpoint unless one is running. */
  request(): void {
    if (this.#busy || this.#failed || this.#closed) return;
    this.#busy = true;
    if (!this.#worker) {
      const worker = new Worker(CHECKPOINTER, {
        eval: true,
        workerData: { path: this.#path, closed: this.#threadClosed.buffer },
      });
      worker.on('message', (msg: { error: string | null }) => {
        this.#busy = false;
        if (msg.error === null) this.#runs++;
        else this.#fail();
      });
      worker.on('error', () => this.#fail());
      worker.on('exit', () => {
        if (!this.#closed) this.#fail();
      });
      // Never what keeps the process alive.
      worker.unref();
      this.#worker = worker;
    }
    this.#worker.postMessage('checkpoint');
  }

  #fail(): void {
    if (this.#failed || this.#closed) return;
    this.#failed = true;
    void this.#worker?.terminate();
    this.#worker = null;
    this.#fallback();
  }

  /**
   * Closes the thread's connection and waits for it (bounded, at shutdown only), so the store's own
   * close is the last one and removes the WAL.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const worker = this.#worker;
    this.#worker = null;
    if (!worker) return;
    worker.postMessage('close');
    Atomics.wait(this.#threadClosed, 0, 0, CHECKPOINTER_CLOSE_WAIT_MS);
  }
}

interface PendingWrite {
  insert: boolean;
  job: JobRecord;
  workflow: string | null;
  key: string | null;
}

// A type alias, not an interface: node:sqlite types rows as records of SQL values, and only an
// alias (with its implicit index signature) can be asserted from that without `unknown`.
type Row = {
  data: string;
  workflow: string | null;
};

/** The record without its workflow (stored once, in its own column). */
function stateJson(job: JobRecord): string {
  return JSON.stringify({ ...job, workflow: undefined });
}

function fromRow(row: Row): JobRecord {
  const job = JSON.parse(row.data) as JobRecord;
  // Rows written before migration 2 carry the workflow inside `data`.
  if (row.workflow !== null) job.workflow = JSON.parse(row.workflow) as JobRecord['workflow'];
  return job;
}

const TERMINAL_LIST = [...TERMINAL_STATUSES].map((s) => `'${s}'`).join(',');

/** Opens (creating if needed) the SQLite job database at `path`. */
export class SqliteJobStore implements JobStore {
  readonly path: string;
  #db: DatabaseSync;
  #writes = 0;
  #commits = 0;
  #closed = false;
  /** Writes not yet committed, by job id (latest state wins), in arrival order. */
  #pending = new Map<string, PendingWrite>();
  #pendingKeys = new Map<string, number>();
  #waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];
  #flushTimer: NodeJS.Immediate | null = null;
  #lazyTimer: NodeJS.Timeout | null = null;
  #lazyCommitMs: number;
  #onError: (err: unknown) => void;
  /** Why the store cannot write (last failed commit, or the file is gone); null when healthy. */
  #failure: StorageUnavailableError | null = null;
  #identityLost = false;
  #identity: { dev: number; ino: number } | null = null;
  #retryMs: number;
  #retryDelay = 0;
  readonly #checkpointer: Checkpointer | null = null;
  #sinceCheckpoint = 0;
  #onRecover: () => void;
  #retryTimer: NodeJS.Timeout | null = null;
  #identityTimer: NodeJS.Timeout | null = null;
  #stmt: {
    insert: StatementSync;
    update: StatementSync;
    get: StatementSync;
    unfinished: StatementSync;
    keyGet: StatementSync;
    keyUpsert: StatementSync;
    keyDelete: StatementSync;
    expireJobs: StatementSync;
    expireKeys: StatementSync;
    counts: StatementSync;
  };

  constructor(options: {
    path: string;
    onError?: (err: unknown) => void;
    /** Called when commits work again after a failure. */
    onRecover?: () => void;
    lazyCommitMs?: number;
    /** First delay before retrying after a failed commit (doubles up to 30 s). */
    retryMs?: number;
    /** How often the file's identity is checked (0 = never). */
    identityCheckMs?: number;
    /** Cap on the database size in pages (SQLite answers SQLITE_FULL past it, as on a full disk). */
    maxPageCount?: number;
  }) {
    this.path = options.path;
    this.#lazyCommitMs = options.lazyCommitMs ?? 10;
    this.#retryMs = options.retryMs ?? 1000;
    this.#onError = options.onError ?? (() => {});
    this.#onRecover = options.onRecover ?? (() => {});
    this.#db = openDatabase(options.path);
    const db = this.#db;
    if (options.maxPageCount) db.exec(`PRAGMA max_page_count = ${Math.floor(options.maxPageCount)}`);
    if (options.path !== ':memory:') {
      db.exec('PRAGMA wal_autocheckpoint = 0');
      this.#checkpointer = new Checkpointer(options.path, () => {
        if (!this.#closed) this.#db.exec('PRAGMA wal_autocheckpoint = 1000');
      });
    }
    this.#identity = identityOf(options.path);
    const checkMs = options.identityCheckMs ?? 5000;
    if (this.#identity && checkMs > 0) {
      this.#identityTimer = setInterval(() => this.#checkIdentity(), checkMs);
      this.#identityTimer.unref();
    }
    this.#stmt = {
      insert: db.prepare(
        'INSERT INTO jobs (id, status, created_at, expires_at, data, workflow) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      update: db.prepare('UPDATE jobs SET status = ?, expires_at = ?, data = ? WHERE id = ?'),
      get: db.prepare('SELECT data, workflow FROM jobs WHERE id = ?'),
      unfinished: db.prepare(
        `SELECT data, workflow FROM jobs WHERE status NOT IN (${TERMINAL_LIST}) ORDER BY created_at ASC, id ASC`,
      ),
      keyGet: db.prepare('SELECT claimed_at FROM idempotency_keys WHERE key = ?'),
      keyUpsert: db.prepare(
        'INSERT INTO idempotency_keys (key, job_id, claimed_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET job_id = excluded.job_id, claimed_at = excluded.claimed_at',
      ),
      keyDelete: db.prepare('DELETE FROM idempotency_keys WHERE key = ?'),
      expireJobs: db.prepare(`DELETE FROM jobs WHERE expires_at <= ? AND status IN (${TERMINAL_LIST})`),
      expireKeys: db.prepare('DELETE FROM idempotency_keys WHERE claimed_at <= ?'),
      counts: db.prepare('SELECT status, count(*) AS n FROM jobs GROUP BY status'),
    };
  }

  /** Whether the store can write now; not ok while commits fail or after the file was deleted or replaced. */
  health(): StoreHealth {
    return this.#failure ? { ok: false, reason: this.#failure.message } : { ok: true };
  }

  get writes(): number {
    return this.#writes;
  }

  /** WAL checkpoints the store's checkpoint thread completed so far. */
  get checkpoints(): number {
    return this.#checkpointer?.runs ?? 0;
  }

  /** Transactions committed so far (group commit puts many writes in one). */
  get commits(): number {
    return this.#commits;
  }

  insert(job: JobRecord, idempotencyKey?: string | null): void {
    this.#assertOpen();
    if (this.#identityLost && this.#failure) throw this.#failure;
    if (idempotencyKey && this.hasIdempotencyKey(idempotencyKey, job.created_at)) {
      throw new IdempotencyKeyReuseError();
    }
    // Claimed in memory at once (one process owns the file), written with the job.
    if (idempotencyKey) this.#pendingKeys.set(idempotencyKey, job.created_at);
    this.#pending.set(job.id, {
      insert: true,
      job,
      workflow: JSON.stringify(job.workflow),
      key: idempotencyKey ?? null,
    });
    this.#scheduleFlush(true);
  }

  update(job: JobRecord): void {
    this.#assertOpen();
    const pending = this.#pending.get(job.id);
    if (pending) pending.job = job;
    else this.#pending.set(job.id, { insert: false, job, workflow: null, key: null });
    this.#scheduleFlush(false);
  }

  durable(): Promise<void> {
    if (this.#pending.size === 0) return Promise.resolve();
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#waiters.push({ resolve, reject });
    this.#scheduleFlush(true);
    return promise;
  }

  /**
   * Commits every pending write in one transaction (group commit), then wakes `durable()` waiters.
   * Throws StorageUnavailableError (the cause is SQLite's own error) when the commit fails.
   */
  flush(): void {
    if (this.#flushTimer) clearImmediate(this.#flushTimer);
    this.#flushTimer = null;
    if (this.#lazyTimer) clearTimeout(this.#lazyTimer);
    this.#lazyTimer = null;
    if (this.#pending.size === 0 && this.#waiters.length === 0) return;
    const batch = [...this.#pending.values()];
    const waiters = this.#waiters.splice(0);
    this.#pending.clear();
    const keys = this.#pendingKeys;
    this.#pendingKeys = new Map();
    try {
      if (this.#identityLost && this.#failure) throw this.#failure;
      this.#commit(batch, keys);
    } catch (err) {
      const failure =
        err instanceof StorageUnavailableError
          ? err
          : new StorageUnavailableError(
              `The job store cannot commit (${sqliteProblem(err)}); nothing was recorded.`,
              err,
            );
      // Inserts are dropped (their submitters answer 503 and nothing runs); state updates of jobs
      // already stored stay pending for the next commit.
      for (const write of batch) if (!write.insert) this.#pending.set(write.job.id, write);
      const first = this.#failure === null;
      this.#failure = failure;
      if (first) this.#onError(err);
      this.#scheduleRetry();
      for (const w of waiters) w.reject(failure);
      throw failure;
    }
    this.#recovered();
    for (const w of waiters) w.resolve();
  }

  #commit(batch: PendingWrite[], keys: Map<string, number>): void {
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      for (const { insert, job, workflow, key } of batch) {
        if (insert) {
          if (key) this.#stmt.keyUpsert.run(key, job.id, keys.get(key) ?? job.created_at);
          this.#stmt.insert.run(job.id, job.status, job.created_at, job.expires_at, stateJson(job), workflow);
        } else {
          this.#stmt.update.run(job.status, job.expires_at, stateJson(job), job.id);
        }
        this.#writes++;
      }
      this.#db.exec('COMMIT');
      this.#commits++;
      if (++this.#sinceCheckpoint >= CHECKPOINT_EVERY_COMMITS) {
        this.#sinceCheckpoint = 0;
        this.#checkpointer?.request();
      }
    } catch (err) {
      this.#rollback();
      throw err;
    }
  }

  /**
   * Ends a transaction a failure left open. SQLite rolls back by itself on SQLITE_FULL and I/O
   * errors; a second ROLLBACK would fail and hide the real error behind "no transaction is active".
   */
  #rollback(): void {
    if (!this.#db.isTransaction) return;
    try {
      this.#db.exec('ROLLBACK');
    } catch {}
  }

  #recovered(): void {
    if (this.#failure === null || this.#identityLost) return;
    this.#failure = null;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#retryDelay = 0;
    this.#onRecover();
  }

  #scheduleRetry(): void {
    if (this.#retryTimer || this.#closed || this.#identityLost) return;
    this.#retryDelay = this.#retryDelay === 0 ? this.#retryMs : Math.min(30_000, this.#retryDelay * 2);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      if (this.#closed) return;
      try {
        if (this.#pending.size > 0) this.flush();
        else this.#probe();
      } catch {
        this.#scheduleRetry();
      }
    }, this.#retryDelay);
    this.#retryTimer.unref();
  }

  /** A small real commit: when it succeeds, there is room to write again. */
  #probe(): void {
    try {
      this.#db.exec('BEGIN IMMEDIATE');
      this.#db.exec(`INSERT OR REPLACE INTO store_probe (id, pad) VALUES (1, zeroblob(${PROBE_BYTES}))`);
      this.#db.exec('DELETE FROM store_probe');
      this.#db.exec('COMMIT');
    } catch (err) {
      this.#rollback();
      throw err;
    }
    this.#recovered();
  }

  #checkIdentity(): void {
    if (this.#closed || this.#identityLost || this.#identity === null) return;
    const now = identityOf(this.path);
    if (now !== null && now.dev === this.#identity.dev && now.ino === this.#identity.ino) return;
    this.#identityLost = true;
    this.#failure = new StorageUnavailableError(
      `The job store file ${this.path} was ${now === null ? 'deleted' : 'replaced'} while the gateway runs; writes stopped (restart the gateway).`,
    );
    this.#onError(this.#failure);
  }

  /** `urgent`: someone waits (or will) for durability; otherwise the write may wait lazyCommitMs. */
  #scheduleFlush(urgent: boolean): void {
    if (this.#pending.size >= MAX_BATCH_WRITES) {
      this.flush();
      return;
    }
    if (this.#flushTimer) return;
    if (urgent || this.#lazyCommitMs <= 0) {
      // Two check phases later: every write of this turn of the loop shares one commit, and the
      // requests this turn queued (undici sends from a setImmediate) are on the wire before the
      // synchronous commit holds the loop, so a prompt and its dispatch's commit overlap.
      this.#flushTimer = setImmediate(this.#flushSoon);
      return;
    }
    this.#lazyTimer ??= setTimeout(this.#flushLogged, this.#lazyCommitMs);
  }

  #flushSoon = (): void => {
    this.#flushTimer = setImmediate(this.#flushLogged);
  };

  /** Flushes; a failure is already recorded, logged once and retried by flush() itself. */
  #flushLogged = (): void => {
    try {
      this.flush();
    } catch {}
  };

  #assertOpen(): void {
    if (this.#closed) throw new Error('SqliteJobStore is closed');
  }

  get(id: string): JobRecord | undefined {
    const pending = this.#pending.get(id);
    if (pending) {
      // A copy, as from the database: callers must not share the live record.
      const job = JSON.parse(stateJson(pending.job)) as JobRecord;
      if (pending.workflow !== null) {
        job.workflow = JSON.parse(pending.workflow) as JobRecord['workflow'];
        return job;
      }
      const stored = this.#stmt.get.get(id) as Row | undefined;
      if (stored?.workflow) job.workflow = JSON.parse(stored.workflow) as JobRecord['workflow'];
      return job;
    }
    const row = this.#stmt.get.get(id) as Row | undefined;
    return row ? fromRow(row) : undefined;
  }

  list(query: ListQuery): JobPage {
    this.#flushLogged();
    const { sql, params } = listSql(query);
    const rows = this.#db.prepare(sql).all(...params) as Row[];
    const jobs = rows.slice(0, query.limit).map(fromRow);
    const last = jobs.at(-1);
    return { jobs, nextCursor: rows.length > query.limit && last ? encodeCursor(last) : null };
  }

  /** SQLite's plan for list(query), one step a line (tests check which index a listing uses). */
  queryPlan(query: ListQuery): string {
    const { sql, params } = listSql(query);
    const steps = this.#db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>;
    return steps.map((s) => s.detail).join('\n');
  }

  listUnfinished(): JobRecord[] {
    this.#flushLogged();
    return (this.#stmt.unfinished.all() as Row[]).map(fromRow);
  }

  listPendingWebhooks(): JobRecord[] {
    this.flush();
    const rows = this.#db
      .prepare(
        `SELECT data, workflow FROM jobs WHERE json_extract(data, '$.webhook_pending') = 1 AND status IN (${TERMINAL_LIST}) ORDER BY created_at ASC`,
      )
      .all() as Row[];
    return rows.map(fromRow);
  }

  hasIdempotencyKey(key: string, now: number): boolean {
    const pending = this.#pendingKeys.get(key);
    if (pending !== undefined) return pending + IDEMPOTENCY_TTL_MS > now;
    const row = this.#stmt.keyGet.get(key) as { claimed_at: number } | undefined;
    return row !== undefined && row.claimed_at + IDEMPOTENCY_TTL_MS > now;
  }

  releaseIdempotencyKey(key: string): void {
    this.flush();
    this.#stmt.keyDelete.run(key);
    this.#writes++;
  }

  deleteExpired(now: number): number {
    this.#flushLogged();
    const jobs = this.#stmt.expireJobs.run(now);
    const keys = this.#stmt.expireKeys.run(now - IDEMPOTENCY_TTL_MS);
    if (Number(jobs.changes) + Number(keys.changes) > 0) this.#writes++;
    return Number(jobs.changes);
  }

  counts(): Record<JobStatus, number> {
    this.#flushLogged();
    const out = countByStatus();
    for (const row of this.#stmt.counts.all() as Array<{ status: JobStatus; n: number }>)
      out[row.status] = row.n;
    return out;
  }

  close(): void {
    if (this.#closed) return;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    if (this.#identityTimer) clearInterval(this.#identityTimer);
    try {
      if (!this.#identityLost) this.flush();
    } finally {
      this.#closed = true;
      this.#checkpointer?.close();
      this.#db.close();
    }
  }
}

/** Opens (creating if needed) and migrates the database; StoreOpenError (one line) when it cannot. */
function openDatabase(path: string): DatabaseSync {
  let db: DatabaseSync | undefined;
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    db = new DatabaseSync(path);
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
    migrate(db);
    // Every table the store uses must be readable: a damaged file fails here, not on the first request.
    db.prepare('SELECT count(*) FROM jobs').get();
    return db;
  } catch (err) {
    try {
      db?.close();
    } catch {}
    throw new StoreOpenError(path, sqliteProblem(err));
  }
}

function migrate(db: DatabaseSync): void {
  const row = db.prepare('PRAGMA user_version').get() as { user_version: number };
  for (let v = row.user_version; v < MIGRATIONS.length; v++) {
    db.exec('BEGIN IMMEDIATE');
    try {
      db.exec(MIGRATIONS[v] as string);
      db.exec(`PRAGMA user_version = ${v + 1}`);
      db.exec('COMMIT');
    } catch (err) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw err;
    }
  }
}

/** SQLite's own words for a failure (`database or disk is full`, `file is not a database`…), with its code. */
function sqliteProblem(err: unknown): string {
  const e = err as { errstr?: string; errcode?: number; code?: string; message?: string };
  if (typeof e.errstr === 'string') return `${e.message ?? e.errstr} (SQLite code ${e.errcode})`;
  return e.code ? `${e.message} (${e.code})` : String(e.message ?? err);
}

function identityOf(path: string): { dev: number; ino: number } | null {
  if (path === ':memory:' || path === '') return null;
  try {
    const st = statSync(path);
    return { dev: st.dev, ino: st.ino };
  } catch {
    return null;
  }
}

/** The SELECT of a job listing (newest first, one row more than the page to know if more follow). */
function listSql(query: ListQuery): { sql: string; params: Array<string | number> } {
  const where: string[] = [];
  const params: Array<string | number> = [];
  if (query.statuses?.length) {
    where.push(`status IN (${query.statuses.map(() => '?').join(',')})`);
    params.push(...query.statuses);
  }
  if (query.name !== undefined) {
    where.push(`${NAME_EXPR} = ?`);
    params.push(query.name);
  }
  if (query.metadataKey === FACADE_METADATA_KEY) where.push(FACADE_EXPR);
  const after = query.cursor ? decodeCursor(query.cursor) : null;
  if (after) {
    where.push('(created_at < ? OR (created_at = ? AND id < ?))');
    params.push(after.createdAt, after.createdAt, after.id);
  }
  const sql = `SELECT data, workflow FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT ?`;
  params.push(query.limit + 1);
  return { sql, params };
}
