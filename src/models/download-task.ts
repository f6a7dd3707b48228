// The download task record: what is stored, what clients see, and the status rules.

/** Lifecycle of a download. */
export const DOWNLOAD_STATUSES = [
  'queued',
  'downloading',
  'verifying',
  'completed',
  'failed',
  'canceled',
] as const;
export type DownloadStatus = (typeof DOWNLOAD_STATUSES)[number];

/** Statuses a task never leaves. */
export const FINISHED_STATUSES: ReadonlySet<DownloadStatus> = new Set(['completed', 'failed', 'canceled']);

/** True for completed, failed and canceled. */
export function isFinished(status: DownloadStatus): boolean {
  return FINISHED_STATUSES.has(status);
}

/** A stored task (times in epoch ms). `url` is kept whole for resuming; clients see it redacted. */
export interface DownloadTask {
  id: string;
  status: DownloadStatus;
  url: string;
  directory: string;
  filename: string;
  /** Expected SHA-256 (lowercase hex), when the caller gave one. */
  sha256: string | null;
  /** SHA-256 of the finished file. */
  computed_sha256: string | null;
  bytes: number;
  total: number | null;
  /** Bytes per second over the last few seconds while downloading. */
  speed: number | null;
  /** How many times the transfer resumed with Range after a dropped connection. */
  resumes: number;
  error: { code: string; message: string } | null;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  finished_at: number | null;
}

/** The task as the API shows it: ISO times, the URL without query or credentials. */
export function renderTask(task: DownloadTask): Record<string, unknown> {
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
  return {
    id: task.id,
    status: task.status,
    url: redactModelUrl(task.url),
    directory: task.directory,
    filename: task.filename,
    sha256: task.sha256,
    computed_sha256: task.computed_sha256,
    bytes: task.bytes,
    total: task.total,
    progress: task.total ? Math.min(1, task.bytes / task.total) : null,
    speed: task.speed,
    resumes: task.resumes,
    error: task.error,
    created_at: iso(task.created_at),
    updated_at: iso(task.updated_at),
    started_at: iso(task.started_at),
    finished_at: iso(task.finished_at),
  };
}

/** A URL without credentials, query or fragment (queries often carry tokens). */
export function redactModelUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search === '' ? '' : '?…'}`;
  } catch {
    return '<invalid url>';
  }
}
