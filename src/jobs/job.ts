// The job record and its state machine. Every status change goes through `transition()`, which
// consults one table, so an impossible transition (e.g. succeeded → running) cannot be written.
import type { JobOutput } from '../io/index.ts';
import { InvalidTransitionError } from './errors.ts';
import type { ApiPrompt } from './ports.ts';

// One output record for the whole gateway: io's, which every delivery builds.
export type { JobOutput } from '../io/index.ts';

/** v2 job statuses (comfy-api-v2.md §5). */
export const JOB_STATUSES = [
  'queued',
  'running',
  'succeeded',
  'canceling',
  'canceled',
  'failed',
  'expired',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Terminal statuses never change again. */
export const TERMINAL_STATUSES: ReadonlySet<JobStatus> = new Set([
  'succeeded',
  'canceled',
  'failed',
  'expired',
]);

/** Allowed transitions (v2 §6 plus the inferred ones it marks, plus running → queued for a retry). */
const TRANSITIONS: Readonly<Record<JobStatus, readonly JobStatus[]>> = {
  queued: ['running', 'canceling', 'canceled', 'failed', 'expired'],
  running: ['succeeded', 'failed', 'expired', 'canceling', 'queued'],
  canceling: ['canceled', 'succeeded', 'failed', 'expired'],
  succeeded: [],
  canceled: [],
  failed: [],
  expired: [],
};

/** True when `from → to` is allowed. */
export function canTransition(from: JobStatus, to: JobStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** Jobs per status, every status present (0 when none): the shape of JobStore.counts(). */
export function countByStatus(jobs: Iterable<{ status: JobStatus }> = []): Record<JobStatus, number> {
  const out = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
  for (const job of jobs) out[job.status]++;
  return out;
}

/** True for succeeded, canceled, failed and expired. */
export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.has(status);
}

/** v2 Progress snapshot. */
export interface Progress {
  value: number;
  nodes_done: number;
  nodes_total: number;
  current_node?: string | null;
  current_node_class?: string | null;
  step?: number | null;
  steps?: number | null;
  message?: string | null;
}

/** v2 JobError, plus ComfyUI's details where there are some. */
export interface JobError {
  code: string;
  message: string;
  node_id?: string | null;
  class_type?: string | null;
  traceback?: string | null;
  details?: Record<string, unknown> | null;
}

/** Where an output's bytes live, so the gateway can stream them (never sent to clients). */
export interface OutputSource {
  instanceId: string;
  filename: string;
  subfolder: string;
  type: string;
}

/** One attempt of a job on one instance (our extension, exposed as `attempts`). */
export interface Attempt {
  n: number;
  instance_id: string;
  started_at: number;
  finished_at: number | null;
  error: { code: string; message: string } | null;
  /** The instance went down while this attempt's prompt executed (the job may be what took it down). */
  suspect?: boolean;
}

/** One webhook delivery of a job's terminal event, kept on the job (its outbox entry while pending). */
export interface JobWebhookDelivery {
  id: string;
  event: string;
  url: string;
  status: 'pending' | 'delivered' | 'failed' | 'skipped';
  attempts: Array<{
    attempt: number;
    started_at: string;
    duration_ms: number;
    status_code: number | null;
    error: string | null;
  }>;
  created_at: string;
  completed_at: string | null;
  error: string | null;
}

/** How outputs are delivered (architecture.md `output`). */
export interface OutputOptions {
  store: 'link' | 'inline' | 'storage';
  format?: 'png' | 'jpeg' | 'webp';
  quality?: number;
}

/** What the caller asked for besides the workflow; persisted with the job (never `extra_data`). */
export interface JobRequest {
  inputs?: Record<string, string>;
  output?: OutputOptions;
  webhook_url?: string;
  timeout_ms?: number;
  metadata?: unknown;
  /** Extra webhook events asked for (terminal events are always sent), e.g. `job.progress`. */
  webhook_events?: string[];
  /** Epoch ms by which the whole job must end, queueing included (/prompt_sync timeouts). */
  deadline_at?: number;
  request_id?: string;
  source?: 'v2' | 'prompt_sync';
  /** Jobs with the same serial key run one at a time, in submission order (the native facade's client ids). */
  serial_key?: string;
  /** Model files the prompt loads: only an instance listing all of them runs it (models feature). */
  models?: string[];
  /** The named workflow (or pipeline) the job was made from; the dashboard lists and filters by it. */
  name?: string;
}

/** The stored job. Times are epoch milliseconds; the HTTP layer renders them as RFC 3339. */
export interface JobRecord {
  id: string;
  status: JobStatus;
  priority: number;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  completed_at: number | null;
  expires_at: number;
  /** The API prompt as submitted to ComfyUI (overrides applied, before input rewriting). */
  workflow: ApiPrompt;
  /** The node classes used, for routing and capability checks. */
  class_types: string[];
  request: JobRequest;
  progress: Progress | null;
  outputs: JobOutput[];
  output_sources: OutputSource[];
  error: JobError | null;
  attempts: Attempt[];
  /** Instance holding the current attempt's prompt, or null while waiting for one. */
  instance_id: string | null;
  /** ComfyUI prompt id of the current/last attempt (the job id). */
  prompt_id: string | null;
  idempotency_key: string | null;
  /** Set when the current attempt has started executing on its instance. */
  queue_ms: number | null;
  execution_ms: number | null;
  /** Texts that nodes reported (e.g. text outputs), keyed by node id. */
  texts: Array<{ node_id: string; text: string }>;
  /** Webhook deliveries of the terminal event (absent when none was sent). */
  webhooks?: JobWebhookDelivery[];
  /** True while a delivery is pending: the store's outbox (resumed after a restart). */
  webhook_pending?: boolean;
}

/**
 * Applies a status change in place, with the timestamps that go with it. Throws
 * InvalidTransitionError for a forbidden change; a same-status "change" is a no-op returning false.
 */
export function transition(job: JobRecord, to: JobStatus, now: number, retentionMs: number): boolean {
  if (job.status === to) return false;
  if (!canTransition(job.status, to)) throw new InvalidTransitionError(job.status, to);
  job.status = to;
  job.updated_at = now;
  if (to === 'running' && job.started_at === null) job.started_at = now;
  if (to === 'queued') {
    job.instance_id = null;
  }
  if (isTerminal(to)) {
    job.completed_at = now;
    // Retention counts from the end, so a long job does not vanish right after it finishes.
    job.expires_at = now + retentionMs;
  }
  return true;
}

/** A new job as submitted: queued, nothing run yet, expiring `retentionMs` after `now`. */
export function newJob(init: {
  id: string;
  now: number;
  retentionMs: number;
  workflow: ApiPrompt;
  priority?: number;
  request?: JobRequest;
  idempotencyKey?: string | null;
}): JobRecord {
  return {
    id: init.id,
    status: 'queued',
    priority: init.priority ?? 0,
    created_at: init.now,
    updated_at: init.now,
    started_at: null,
    completed_at: null,
    expires_at: init.now + init.retentionMs,
    workflow: init.workflow,
    class_types: [...new Set(Object.values(init.workflow).map((n) => n.class_type))],
    request: init.request ?? {},
    progress: null,
    outputs: [],
    output_sources: [],
    error: null,
    attempts: [],
    instance_id: null,
    prompt_id: null,
    idempotency_key: init.idempotencyKey ?? null,
    queue_ms: null,
    execution_ms: null,
    texts: [],
  };
}

/** Records a new attempt of `job` on `instanceId` (its prompt id is the job id). */
export function recordAttempt(job: JobRecord, instanceId: string, startedAt: number): void {
  job.attempts.push({
    n: job.attempts.length + 1,
    instance_id: instanceId,
    started_at: startedAt,
    finished_at: null,
    error: null,
  });
  job.instance_id = instanceId;
  job.prompt_id = job.id;
}
