// The pipeline run record: a run, its steps and each step's iterations (one v2 job each). Runs
// and iterations are stored apart (an iteration is written on its own as it starts and ends) so a
// long pipeline costs one small write per change, not a rewrite of the whole run.
import type { JobError, OutputOptions } from '../jobs/index.ts';

/** Run statuses (the job statuses a run can have). */
export const RUN_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'canceling', 'canceled'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** A run that will not change again. */
export function isRunTerminal(status: RunStatus): boolean {
  return status === 'succeeded' || status === 'failed' || status === 'canceled';
}

/** Step statuses. */
export type StepStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'canceled';

/** One step's state within a run. */
export interface StepState {
  id: string;
  status: StepStatus;
  started_at: number | null;
  completed_at: number | null;
  /** Iterations started so far. */
  iterations: number;
  /** Why a loop stopped: its condition turned false, or it reached `max`. */
  stopped: 'condition' | 'max' | null;
  /** Items of a for_each step (known once it starts). */
  items: number | null;
}

/** Iteration statuses: the job's, while it runs and when it ended. */
export type IterationStatus = 'running' | 'succeeded' | 'failed' | 'canceled';

/** One iteration of one step = one v2 job. */
export interface IterationRecord {
  run_id: string;
  step: string;
  /** 1-based. */
  n: number;
  /** The for_each item, when the step fans out. */
  item?: unknown;
  /** Parameters as evaluated (file outputs of earlier steps stay references). */
  parameters: Record<string, unknown>;
  job_id: string | null;
  status: IterationStatus;
  outputs: Record<string, unknown> | null;
  error: JobError | null;
  started_at: number;
  completed_at: number | null;
}

/** A run's failure, with where it happened. */
export interface RunError {
  code: string;
  message: string;
  step?: string;
  iteration?: number;
  job_id?: string;
  /** The failed job's own error, when a job failed. */
  job_error?: JobError;
}

/** What the caller asked for besides the inputs. */
export interface RunRequest {
  webhook_url?: string;
  output?: OutputOptions;
  timeout_ms?: number;
  priority?: number;
  metadata?: unknown;
  request_id?: string;
}

/** The stored run (without its iterations). */
export interface PipelineRun {
  id: string;
  status: RunStatus;
  /** Name of a named pipeline, or null for an inline one. */
  pipeline: string | null;
  /** The definition document, so the run resumes as it started whatever happens to files. */
  definition: Record<string, unknown>;
  inputs: Record<string, unknown>;
  request: RunRequest;
  steps: StepState[];
  outputs: Record<string, unknown> | null;
  /** Declared outputs that could not be evaluated (e.g. they read a skipped step): null in `outputs`. */
  warnings: Array<{ output: string; message: string }>;
  error: RunError | null;
  /** Input references staged for later steps (freed when the run ends). */
  staged: string[];
  created_at: number;
  updated_at: number;
  started_at: number | null;
  completed_at: number | null;
  expires_at: number;
  idempotency_key: string | null;
}

/** ISO 8601 of an epoch-ms time, null for none. */
export const isoTime = (ms: number | null): string | null =>
  ms === null ? null : new Date(ms).toISOString();

/** The head of a run's public shape (the API's and the webhook's): identity, status and times. */
export function runHead(run: PipelineRun): Record<string, unknown> {
  return {
    id: run.id,
    object: 'pipeline_run',
    pipeline: run.pipeline,
    status: run.status,
    created_at: isoTime(run.created_at),
    started_at: isoTime(run.started_at),
    completed_at: isoTime(run.completed_at),
  };
}
