// PipelineRunStore on SQLite: tables of their own in the job store's database file (a second
// connection; WAL lets both write, and node:sqlite is synchronous, so their transactions never
// interleave). The definition is written once with the run; state updates rewrite only the small
// run row or one iteration row. Writes are grouped per turn of the event loop (one transaction,
// the latest state of each row); a `durable` write commits everything pending at once before it
// returns (WAL, synchronous=NORMAL: a process kill loses nothing committed; only an OS crash can
// lose the last commits, as for jobs).
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { IdempotencyKeyReuseError } from '../jobs/index.ts';
import type { IterationRecord, PipelineRun } from './run.ts';
import {
  decodeRunCursor,
  encodeRunCursor,
  type PipelineRunStore,
  RUN_IDEMPOTENCY_TTL_MS,
  type RunListQuery,
  type RunPage,
} from './run-store.ts';

/** Numbered migrations, tracked in `pipeline_schema` (the job store owns PRAGMA user_version). */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE pipeline_runs (
     id TEXT PRIMARY KEY,
     status TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     definition TEXT NOT NULL,
     data TEXT NOT NULL
   );
   CREATE INDEX pipeline_runs_by_created ON pipeline_runs (created_at DESC, id DESC);
   CREATE INDEX pipeline_runs_by_status ON pipeline_runs (status, created_at DESC, id DESC);
   CREATE INDEX pipeline_runs_by_expiry ON pipeline_runs (expires_at);
   CREATE TABLE pipeline_iterations (
     run_id TEXT NOT NULL,
     step_index INTEGER NOT NULL,
     n INTEGER NOT NULL,
     data TEXT NOT NULL,
     PRIMARY KEY (run_id, step_index, n)
   );
   CREATE TABLE pipeline_idempotency_keys (
     key TEXT PRIMARY KEY,
     run_id TEXT NOT NULL,
     claimed_at INTEGER NOT NULL
   );`,
];

const TERMINAL = "('succeeded','failed','canceled')";

// A type alias, not an interface: node:sqlite types rows as records of SQL values, and only an
// alias (with its implicit index signature) can be asserted from that without `unknown`.
type Row = {
  data: string;
  definition: string;
};

/** Opens (creating if needed) the run tables in the SQLite file at `path`. */
export class SqlitePipelineRunStore implements PipelineRunStore {
  readonly path: string;
  #db: DatabaseSync;
  #closed = false;
  /** Writes not yet committed: latest run state by id, latest iteration by run/step/n. */
  #pendingRuns = new Map<string, PipelineRun>();
  #pendingIterations = new Map<string, { index: number; iteration: IterationRecord }>();
  #flushTimer: NodeJS.Immediate | null = null;
  /** Step index by run and step id (iterations are keyed by index so they sort in step order). */
  #stepIndex = new Map<string, Map<string, number>>();
  #stmt: Record<
    | 'insert'
    | 'update'
    | 'get'
    | 'putIteration'
    | 'iterations'
    | 'unfinished'
    | 'keyGet'
    | 'keyPut'
    | 'expireRuns'
    | 'expireIterations'
    | 'expireKeys',
    StatementSync
  >;

  constructor(options: { path: string }) {
    this.path = options.path;
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    this.#db = new DatabaseSync(options.path);
    this.#db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
    this.#migrate();
    const db = this.#db;
    this.#stmt = {
      insert: db.prepare(
        'INSERT INTO pipeline_runs (id, status, created_at, expires_at, definition, data) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      update: db.prepare('UPDATE pipeline_runs SET status = ?, expires_at = ?, data = ? WHERE id = ?'),
      get: db.prepare('SELECT data, definition FROM pipeline_runs WHERE id = ?'),
      putIteration: db.prepare(
        'INSERT INTO pipeline_iterations (run_id, step_index, n, data) VALUES (?, ?, ?, ?) ON CONFLICT (run_id, step_index, n) DO UPDATE SET data = excluded.data',
      ),
      iterations: db.prepare('SELECT data FROM pipeline_iterations WHERE run_id = ? ORDER BY step_index, n'),
      unfinished: db.prepare(
        `SELECT data, definition FROM pipeline_runs WHERE status NOT IN ${TERMINAL} ORDER BY created_at ASC, id ASC`,
      ),
      keyGet: db.prepare('SELECT claimed_at FROM pipeline_idempotency_keys WHERE key = ?'),
      keyPut: db.prepare(
        'INSERT INTO pipeline_idempotency_keys (key, run_id, claimed_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET run_id = excluded.run_id, claimed_at = excluded.claimed_at',
      ),
      expireRuns: db.prepare(
        `DELETE FROM pipeline_runs WHERE expires_at <= ? AND status IN ${TERMINAL} RETURNING id`,
      ),
      expireIterations: db.prepare('DELETE FROM pipeline_iterations WHERE run_id = ?'),
      expireKeys: db.prepare('DELETE FROM pipeline_idempotency_keys WHERE claimed_at <= ?'),
    };
  }

  #migrate(): void {
    this.#db.exec('CREATE TABLE IF NOT EXISTS pipeline_schema (version INTEGER NOT NULL)');
    const row = this.#db.prepare('SELECT max(version) AS v FROM pipeline_schema').get() as {
      v: number | null;
    };
    for (let v = row.v ?? 0; v < MIGRATIONS.length; v++) {
      this.#db.exec('BEGIN IMMEDIATE');
      try {
        this.#db.exec(MIGRATIONS[v] as string);
        this.#db.prepare('INSERT INTO pipeline_schema (version) VALUES (?)').run(v + 1);
        this.#db.exec('COMMIT');
      } catch (err) {
        this.#db.exec('ROLLBACK');
        throw err;
      }
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('SqlitePipelineRunStore is closed');
  }

  insert(run: PipelineRun): void {
    this.#assertOpen();
    const key = run.idempotency_key;
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      if (key) {
        if (this.hasIdempotencyKey(key, run.created_at)) throw new IdempotencyKeyReuseError();
        this.#stmt.keyPut.run(key, run.id, run.created_at);
      }
      this.#stmt.insert.run(
        run.id,
        run.status,
        run.created_at,
        run.expires_at,
        JSON.stringify(run.definition),
        stateJson(run),
      );
      this.#db.exec('COMMIT');
    } catch (err) {
      this.#db.exec('ROLLBACK');
      throw err;
    }
    this.#remember(run);
  }

  update(run: PipelineRun, durable = false): void {
    this.#assertOpen();
    this.#remember(run);
    this.#pendingRuns.set(run.id, run);
    if (durable) this.flush();
    else this.#scheduleFlush();
  }

  putIteration(iteration: IterationRecord, durable = false): void {
    this.#assertOpen();
    const index = this.#stepIndex.get(iteration.run_id)?.get(iteration.step) ?? this.#lookupIndex(iteration);
    this.#pendingIterations.set(`${iteration.run_id}\0${index}\0${iteration.n}`, { index, iteration });
    if (durable) this.flush();
    else this.#scheduleFlush();
  }

  /** Commits every pending write in one transaction. */
  flush(): void {
    if (this.#flushTimer) clearImmediate(this.#flushTimer);
    this.#flushTimer = null;
    if (this.#pendingRuns.size === 0 && this.#pendingIterations.size === 0) return;
    const runs = [...this.#pendingRuns.values()];
    const iterations = [...this.#pendingIterations.values()];
    this.#pendingRuns.clear();
    this.#pendingIterations.clear();
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      // Serialised here, once per row, with the latest state.
      for (const run of runs) this.#stmt.update.run(run.status, run.expires_at, stateJson(run), run.id);
      for (const { index, iteration } of iterations)
        this.#stmt.putIteration.run(iteration.run_id, index, iteration.n, JSON.stringify(iteration));
      this.#db.exec('COMMIT');
    } catch (err) {
      this.#db.exec('ROLLBACK');
      throw err;
    }
  }

  #scheduleFlush(): void {
    this.#flushTimer ??= setImmediate(() => {
      this.#flushTimer = null;
      try {
        this.flush();
      } catch {
        // The next durable write or read flushes again and reports the failure to its caller.
      }
    });
  }

  #remember(run: PipelineRun): void {
    if (this.#stepIndex.has(run.id)) return;
    this.#stepIndex.set(run.id, new Map(run.steps.map((s, i) => [s.id, i])));
    // Bounded: only runs written recently need the shortcut; others read it back from the row.
    if (this.#stepIndex.size > 4096) this.#stepIndex.delete(this.#stepIndex.keys().next().value as string);
  }

  #lookupIndex(iteration: IterationRecord): number {
    const run = this.get(iteration.run_id);
    if (!run) return 0;
    this.#remember(run);
    return run.steps.findIndex((s) => s.id === iteration.step);
  }

  get(id: string): PipelineRun | undefined {
    this.#assertOpen();
    this.flush();
    const row = this.#stmt.get.get(id) as Row | undefined;
    return row ? fromRow(row) : undefined;
  }

  iterations(runId: string): IterationRecord[] {
    this.#assertOpen();
    this.flush();
    return (this.#stmt.iterations.all(runId) as Array<{ data: string }>).map(
      (r) => JSON.parse(r.data) as IterationRecord,
    );
  }

  list(query: RunListQuery): RunPage {
    this.#assertOpen();
    this.flush();
    const where: string[] = [];
    const params: Array<string | number> = [];
    if (query.statuses?.length) {
      where.push(`status IN (${query.statuses.map(() => '?').join(',')})`);
      params.push(...query.statuses);
    }
    const after = query.cursor ? decodeRunCursor(query.cursor) : null;
    if (after) {
      where.push('(created_at < ? OR (created_at = ? AND id < ?))');
      params.push(after.createdAt, after.createdAt, after.id);
    }
    const sql = `SELECT data, definition FROM pipeline_runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT ?`;
    const rows = this.#db.prepare(sql).all(...params, query.limit + 1) as Row[];
    const runs = rows.slice(0, query.limit).map(fromRow);
    const last = runs.at(-1);
    return { runs, nextCursor: rows.length > query.limit && last ? encodeRunCursor(last) : null };
  }

  listUnfinished(): PipelineRun[] {
    this.#assertOpen();
    this.flush();
    return (this.#stmt.unfinished.all() as Row[]).map(fromRow);
  }

  hasIdempotencyKey(key: string, now: number): boolean {
    this.#assertOpen();
    const row = this.#stmt.keyGet.get(key) as { claimed_at: number } | undefined;
    return row !== undefined && row.claimed_at + RUN_IDEMPOTENCY_TTL_MS > now;
  }

  deleteExpired(now: number): number {
    this.#assertOpen();
    this.flush();
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const ids = this.#stmt.expireRuns.all(now) as Array<{ id: string }>;
      for (const { id } of ids) {
        this.#stmt.expireIterations.run(id);
        this.#stepIndex.delete(id);
      }
      this.#stmt.expireKeys.run(now - RUN_IDEMPOTENCY_TTL_MS);
      this.#db.exec('COMMIT');
      return ids.length;
    } catch (err) {
      this.#db.exec('ROLLBACK');
      throw err;
    }
  }

  close(): void {
    if (this.#closed) return;
    try {
      this.flush();
    } finally {
      this.#closed = true;
      this.#db.close();
    }
  }
}

/** The run without its definition (stored once, in its own column). */
function stateJson(run: PipelineRun): string {
  return JSON.stringify({ ...run, definition: undefined });
}

function fromRow(row: Row): PipelineRun {
  const run = JSON.parse(row.data) as PipelineRun;
  run.definition = JSON.parse(row.definition) as PipelineRun['definition'];
  return run;
}
