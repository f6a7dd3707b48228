// The SQLite ModelStore: two tables (model_downloads, model_sources) in the gateway's SQLite
// database file, next to the jobs table but created and migrated on their own (the job store's
// migrations stay untouched). WAL mode lets this connection and the job store's share the file.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { DownloadTask } from './download-task.ts';
import type { ModelSource, ModelStore } from './model-store.ts';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS model_downloads (
    id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    data TEXT NOT NULL
  );
  CREATE TABLE IF NOT EXISTS model_sources (
    name TEXT PRIMARY KEY,
    data TEXT NOT NULL
  );`;

/** Opens (creating if needed) the model tables in the SQLite file at `path`. */
export class SqliteModelStore implements ModelStore {
  readonly path: string;
  #db: DatabaseSync;
  #closed = false;
  #stmt: {
    upsert: StatementSync;
    delete: StatementSync;
    list: StatementSync;
    sources: StatementSync;
    clearSources: StatementSync;
    putSource: StatementSync;
  };

  constructor(options: { path: string }) {
    this.path = options.path;
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    this.#db = new DatabaseSync(options.path);
    this.#db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
    this.#db.exec(SCHEMA);
    const db = this.#db;
    this.#stmt = {
      upsert: db.prepare(
        'INSERT INTO model_downloads (id, created_at, data) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET data = excluded.data',
      ),
      delete: db.prepare('DELETE FROM model_downloads WHERE id = ?'),
      list: db.prepare('SELECT data FROM model_downloads ORDER BY created_at, id'),
      sources: db.prepare('SELECT name, data FROM model_sources ORDER BY name'),
      clearSources: db.prepare('DELETE FROM model_sources'),
      putSource: db.prepare('INSERT INTO model_sources (name, data) VALUES (?, ?)'),
    };
  }

  saveTask(task: DownloadTask): void {
    if (this.#closed) return;
    this.#stmt.upsert.run(task.id, task.created_at, JSON.stringify(task));
  }

  deleteTask(id: string): void {
    if (this.#closed) return;
    this.#stmt.delete.run(id);
  }

  listTasks(): DownloadTask[] {
    return (this.#stmt.list.all() as Array<{ data: string }>).map((r) => JSON.parse(r.data) as DownloadTask);
  }

  getSources(): Record<string, ModelSource> {
    const out: Record<string, ModelSource> = {};
    for (const row of this.#stmt.sources.all() as Array<{ name: string; data: string }>) {
      out[row.name] = JSON.parse(row.data) as ModelSource;
    }
    return out;
  }

  putSources(sources: Record<string, ModelSource>): void {
    if (this.#closed) return;
    this.#db.exec('BEGIN');
    try {
      this.#stmt.clearSources.run();
      for (const [name, source] of Object.entries(sources))
        this.#stmt.putSource.run(name, JSON.stringify(source));
      this.#db.exec('COMMIT');
    } catch (err) {
      this.#db.exec('ROLLBACK');
      throw err;
    }
  }

  /** Closes the connection. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}
