// The default JobStore: one SQLite file (node:sqlite, WAL) under DATA_DIR. A job row carries the
// columns we query by plus the whole record as JSON; schema changes go through numbered
// migrations keyed on PRAGMA user_version. WAL + synchronous=NORMAL survives a process kill
// (the case we design for); only an OS crash can lose the last few commits.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { IdempotencyKeyReuseError } from './errors.ts';
import { JOB_STATUSES, type JobRecord, type JobStatus, TERMINAL_STATUSES } from './job.ts';
import {
  decodeCursor,
  encodeCursor,
  IDEMPOTENCY_TTL_MS,
  type JobPage,
  type JobStore,
  type ListQuery,
} from './store.ts';

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
];

interface Row {
  data: string;
  workflow: string | null;
}

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
  #closed = false;
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

  constructor(options: { path: string }) {
    this.path = options.path;
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    this.#db = new DatabaseSync(options.path);
    this.#db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
    this.#migrate();
    const db = this.#db;
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

  #migrate(): void {
    const row = this.#db.prepare('PRAGMA user_version').get() as { user_version: number };
    for (let v = row.user_version; v < MIGRATIONS.length; v++) {
      this.#db.exec('BEGIN IMMEDIATE');
      try {
        this.#db.exec(MIGRATIONS[v] as string);
        this.#db.exec(`PRAGMA user_version = ${v + 1}`);
        this.#db.exec('COMMIT');
      } catch (err) {
        this.#db.exec('ROLLBACK');
        throw err;
      }
    }
  }

  get writes(): number {
    return this.#writes;
  }

  insert(job: JobRecord, idempotencyKey?: string | null): void {
    const data = stateJson(job);
    const workflow = JSON.stringify(job.workflow);
    if (!idempotencyKey) {
      this.#stmt.insert.run(job.id, job.status, job.created_at, job.expires_at, data, workflow);
      this.#writes++;
      return;
    }
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const claimed = this.#stmt.keyGet.get(idempotencyKey) as { claimed_at: number } | undefined;
      if (claimed && claimed.claimed_at + IDEMPOTENCY_TTL_MS > job.created_at)
        throw new IdempotencyKeyReuseError();
      this.#stmt.keyUpsert.run(idempotencyKey, job.id, job.created_at);
      this.#stmt.insert.run(job.id, job.status, job.created_at, job.expires_at, data, workflow);
      this.#db.exec('COMMIT');
      this.#writes++;
    } catch (err) {
      this.#db.exec('ROLLBACK');
      throw err;
    }
  }

  update(job: JobRecord): void {
    this.#stmt.update.run(job.status, job.expires_at, stateJson(job), job.id);
    this.#writes++;
  }

  get(id: string): JobRecord | undefined {
    const row = this.#stmt.get.get(id) as Row | undefined;
    return row ? fromRow(row) : undefined;
  }

  list(query: ListQuery): JobPage {
    const where: string[] = [];
    const params: Array<string | number> = [];
    if (query.statuses?.length) {
      where.push(`status IN (${query.statuses.map(() => '?').join(',')})`);
      params.push(...query.statuses);
    }
    const after = query.cursor ? decodeCursor(query.cursor) : null;
    if (after) {
      where.push('(created_at < ? OR (created_at = ? AND id < ?))');
      params.push(after.createdAt, after.createdAt, after.id);
    }
    const sql = `SELECT data, workflow FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT ?`;
    const rows = this.#db.prepare(sql).all(...params, query.limit + 1) as unknown as Row[];
    const jobs = rows.slice(0, query.limit).map(fromRow);
    const last = jobs.at(-1);
    return { jobs, nextCursor: rows.length > query.limit && last ? encodeCursor(last) : null };
  }

  listUnfinished(): JobRecord[] {
    return (this.#stmt.unfinished.all() as unknown as Row[]).map(fromRow);
  }

  hasIdempotencyKey(key: string, now: number): boolean {
    const row = this.#stmt.keyGet.get(key) as { claimed_at: number } | undefined;
    return row !== undefined && row.claimed_at + IDEMPOTENCY_TTL_MS > now;
  }

  releaseIdempotencyKey(key: string): void {
    this.#stmt.keyDelete.run(key);
    this.#writes++;
  }

  deleteExpired(now: number): number {
    const jobs = this.#stmt.expireJobs.run(now);
    const keys = this.#stmt.expireKeys.run(now - IDEMPOTENCY_TTL_MS);
    if (Number(jobs.changes) + Number(keys.changes) > 0) this.#writes++;
    return Number(jobs.changes);
  }

  counts(): Record<JobStatus, number> {
    const out = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
    for (const row of this.#stmt.counts.all() as Array<{ status: JobStatus; n: number }>)
      out[row.status] = row.n;
    return out;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}
