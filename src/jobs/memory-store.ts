// In-memory JobStore for tests and for deployments that accept losing jobs on restart. Records are
// cloned on the way in and out so callers cannot mutate stored state behind the store's back.
import { IdempotencyKeyReuseError } from './errors.ts';
import { countByStatus, isTerminal, type JobRecord, type JobStatus } from './job.ts';
import { IDEMPOTENCY_TTL_MS, type JobPage, type JobStore, type ListQuery, pageOf } from './store.ts';

/** A JobStore kept in process memory; bounded by retention like the SQLite one. */
export class MemoryJobStore implements JobStore {
  #jobs = new Map<string, JobRecord>();
  #keys = new Map<string, number>();
  #writes = 0;
  #closed = false;

  get writes(): number {
    return this.#writes;
  }

  insert(job: JobRecord, idempotencyKey?: string | null): void {
    if (idempotencyKey) {
      const claimedAt = this.#keys.get(idempotencyKey);
      if (claimedAt !== undefined && claimedAt + IDEMPOTENCY_TTL_MS > job.created_at) {
        throw new IdempotencyKeyReuseError();
      }
      this.#keys.set(idempotencyKey, job.created_at);
    }
    this.#jobs.set(job.id, structuredClone(job));
    this.#writes++;
  }

  update(job: JobRecord): void {
    if (!this.#jobs.has(job.id)) return;
    this.#jobs.set(job.id, structuredClone(job));
    this.#writes++;
  }

  durable(): Promise<void> {
    return Promise.resolve();
  }

  get(id: string): JobRecord | undefined {
    const job = this.#jobs.get(id);
    return job ? structuredClone(job) : undefined;
  }

  list(query: ListQuery): JobPage {
    const page = pageOf(this.#jobs.values(), query);
    return { ...page, jobs: page.jobs.map((j) => structuredClone(j)) };
  }

  listUnfinished(): JobRecord[] {
    return [...this.#jobs.values()]
      .filter((j) => !isTerminal(j.status))
      .sort((a, b) => a.created_at - b.created_at)
      .map((j) => structuredClone(j));
  }

  listPendingWebhooks(): JobRecord[] {
    return [...this.#jobs.values()]
      .filter((j) => j.webhook_pending === true && isTerminal(j.status))
      .map((j) => structuredClone(j));
  }

  hasIdempotencyKey(key: string, now: number): boolean {
    const at = this.#keys.get(key);
    return at !== undefined && at + IDEMPOTENCY_TTL_MS > now;
  }

  releaseIdempotencyKey(key: string): void {
    this.#keys.delete(key);
  }

  deleteExpired(now: number): number {
    let removed = 0;
    for (const [id, job] of this.#jobs) {
      if (isTerminal(job.status) && job.expires_at <= now) {
        this.#jobs.delete(id);
        removed++;
      }
    }
    for (const [key, at] of this.#keys) if (at + IDEMPOTENCY_TTL_MS <= now) this.#keys.delete(key);
    return removed;
  }

  counts(): Record<JobStatus, number> {
    return countByStatus(this.#jobs.values());
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#jobs.clear();
    this.#keys.clear();
  }
}
