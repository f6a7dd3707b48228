// PipelineRunStore in memory: for JOB_STORE=memory and tests. Records are copied in and out so
// callers never share state with the store, as with a database.
import { IdempotencyKeyReuseError } from '../jobs/index.ts';
import { isRunTerminal, type IterationRecord, type PipelineRun } from './run.ts';
import {
  decodeRunCursor,
  encodeRunCursor,
  type PipelineRunStore,
  RUN_IDEMPOTENCY_TTL_MS,
  type RunListQuery,
  type RunPage,
} from './run-store.ts';

/** Runs in a Map; bounded by retention like the stored kind. */
export class MemoryPipelineRunStore implements PipelineRunStore {
  #runs = new Map<string, PipelineRun>();
  #iterations = new Map<string, Map<string, IterationRecord>>();
  #keys = new Map<string, number>();

  insert(run: PipelineRun): void {
    const key = run.idempotency_key;
    if (key && this.hasIdempotencyKey(key, run.created_at)) throw new IdempotencyKeyReuseError();
    if (key) this.#keys.set(key, run.created_at);
    this.#runs.set(run.id, structuredClone(run));
  }

  update(run: PipelineRun, _durable?: boolean): void {
    if (this.#runs.has(run.id)) this.#runs.set(run.id, structuredClone(run));
  }

  putIteration(iteration: IterationRecord, _durable?: boolean): void {
    let byRun = this.#iterations.get(iteration.run_id);
    if (!byRun) {
      byRun = new Map();
      this.#iterations.set(iteration.run_id, byRun);
    }
    byRun.set(`${iteration.step}\0${iteration.n}`, structuredClone(iteration));
  }

  get(id: string): PipelineRun | undefined {
    const run = this.#runs.get(id);
    return run ? structuredClone(run) : undefined;
  }

  iterations(runId: string): IterationRecord[] {
    const run = this.#runs.get(runId);
    const order = new Map(run?.steps.map((s, i) => [s.id, i]) ?? []);
    return [...(this.#iterations.get(runId)?.values() ?? [])]
      .sort((a, b) => (order.get(a.step) ?? 0) - (order.get(b.step) ?? 0) || a.n - b.n)
      .map((i) => structuredClone(i));
  }

  list(query: RunListQuery): RunPage {
    const after = query.cursor ? decodeRunCursor(query.cursor) : null;
    const all = [...this.#runs.values()]
      .filter((r) => !query.statuses?.length || query.statuses.includes(r.status))
      .filter(
        (r) =>
          !after || r.created_at < after.createdAt || (r.created_at === after.createdAt && r.id < after.id),
      )
      .sort((a, b) => b.created_at - a.created_at || (b.id < a.id ? -1 : b.id > a.id ? 1 : 0));
    const runs = all.slice(0, query.limit).map((r) => structuredClone(r));
    const last = runs.at(-1);
    return { runs, nextCursor: all.length > query.limit && last ? encodeRunCursor(last) : null };
  }

  listUnfinished(): PipelineRun[] {
    return [...this.#runs.values()]
      .filter((r) => !isRunTerminal(r.status))
      .sort((a, b) => a.created_at - b.created_at)
      .map((r) => structuredClone(r));
  }

  hasIdempotencyKey(key: string, now: number): boolean {
    const at = this.#keys.get(key);
    return at !== undefined && at + RUN_IDEMPOTENCY_TTL_MS > now;
  }

  deleteExpired(now: number): number {
    let removed = 0;
    for (const [id, run] of this.#runs) {
      if (isRunTerminal(run.status) && run.expires_at <= now) {
        this.#runs.delete(id);
        this.#iterations.delete(id);
        removed++;
      }
    }
    for (const [key, at] of this.#keys) if (at + RUN_IDEMPOTENCY_TTL_MS <= now) this.#keys.delete(key);
    return removed;
  }

  close(): void {}
}
