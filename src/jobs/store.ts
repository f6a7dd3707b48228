// The JobStore interface: durable job records, idempotency claims and retention. Synchronous on
// purpose: both implementations (node:sqlite, memory) are in-process, and a sync API lets the
// manager make "insert, then return the id" atomic without interleaving.
import type { JobRecord, JobStatus } from './job.ts';

/** One page of a newest-first listing. */
export interface JobPage {
  jobs: JobRecord[];
  /** Opaque cursor for the next page, or null at the end. */
  nextCursor: string | null;
}

/** A store's ability to write: `ok: false` with the reason while commits fail or the file is gone. */
export interface StoreHealth {
  ok: boolean;
  reason?: string;
}

/** Filters and paging for `list()`. */
/** The `request.metadata` key of prompts submitted through the native ComfyUI facade. */
export const FACADE_METADATA_KEY = 'comfy_facade';

export interface ListQuery {
  statuses?: readonly JobStatus[];
  /** Only jobs made from this named workflow (`request.name`). */
  name?: string;
  /**
   * Only jobs whose `request.metadata` carries this key: the native facade marks its prompts
   * `comfy_facade` and reads back only those (an index in SQLite, not a scan of every job).
   */
  metadataKey?: typeof FACADE_METADATA_KEY;
  limit: number;
  cursor?: string | null;
}

/** Storage of jobs. Every method is synchronous; `close()` is idempotent. */
export interface JobStore {
  /** Inserts a new job; when `idempotencyKey` is given it is claimed in the same transaction. */
  insert(job: JobRecord, idempotencyKey?: string | null): void;
  /** Replaces a job's stored state. */
  update(job: JobRecord): void;
  /** Resolves when every write made so far is committed (stores may group-commit). */
  durable(): Promise<void>;
  get(id: string): JobRecord | undefined;
  list(query: ListQuery): JobPage;
  /** Jobs that are not terminal (for restart recovery), oldest first. */
  listUnfinished(): JobRecord[];
  /** True when the key is already claimed (and not expired). */
  hasIdempotencyKey(key: string, now: number): boolean;
  /** Frees a claimed key (the submission definitely failed). */
  releaseIdempotencyKey(key: string): void;
  /** Deletes terminal jobs past `expires_at` and idempotency keys past their TTL; returns jobs removed. */
  deleteExpired(now: number): number;
  /**
   * Terminal jobs with a webhook delivery still pending (`webhook_pending`): the outbox a restarted
   * gateway resumes. Optional: a store without it loses pending deliveries on restart.
   */
  listPendingWebhooks?(): JobRecord[];
  /** Count of jobs per status. */
  counts(): Record<JobStatus, number>;
  /** Whether the store can write now (absent = always); /ready reports not-ready while it cannot. */
  health?(): StoreHealth;
  /** Number of write statements executed so far (benchmarks count them). */
  readonly writes: number;
  close(): void;
}

/** True when the job's `request.metadata` has a non-null `key` (the ListQuery.metadataKey filter). */
export function hasMetadataKey(job: JobRecord, key: string): boolean {
  const metadata = job.request.metadata;
  return (
    typeof metadata === 'object' && metadata !== null && (metadata as Record<string, unknown>)[key] != null
  );
}

/** One newest-first page of `jobs` for `query`: the listing of stores that hold their jobs in memory. */
export function pageOf(jobs: Iterable<JobRecord>, query: ListQuery): JobPage {
  const after = query.cursor ? decodeCursor(query.cursor) : null;
  const statuses = query.statuses?.length ? new Set(query.statuses) : null;
  const all = [...jobs]
    .filter((j) => !statuses || statuses.has(j.status))
    .filter((j) => query.name === undefined || j.request.name === query.name)
    .filter((j) => query.metadataKey === undefined || hasMetadataKey(j, query.metadataKey))
    .filter(
      (j) =>
        !after || j.created_at < after.createdAt || (j.created_at === after.createdAt && j.id < after.id),
    )
    .sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  const page = all.slice(0, query.limit);
  const last = page.at(-1);
  return { jobs: page, nextCursor: all.length > query.limit && last ? encodeCursor(last) : null };
}

/** Cursor = base64url of `createdAt:id` of the last row of a page. */
export function encodeCursor(job: { created_at: number; id: string }): string {
  return Buffer.from(`${job.created_at}:${job.id}`).toString('base64url');
}

/** Parses a cursor; returns null for garbage so callers can answer 400. */
export function decodeCursor(cursor: string): { createdAt: number; id: string } | null {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const colon = text.indexOf(':');
  if (colon <= 0) return null;
  const createdAt = Number(text.slice(0, colon));
  const id = text.slice(colon + 1);
  if (!Number.isSafeInteger(createdAt) || id === '') return null;
  return { createdAt, id };
}

/** Idempotency keys are single-use for 24 h (v2 §11). */
export const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;
