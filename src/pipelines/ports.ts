// What the pipeline module needs from the rest of the gateway, as structural types: the job
// manager (every step iteration is an ordinary job), the template folder, moving files between
// steps, and webhooks. The composition root (server/gateway.ts) plugs the real ones in.
import type { JobEvent, JobRecord, LoggerLike, SubmitInput } from '../jobs/index.ts';
import type { WorkflowTemplate } from '../workflow/index.ts';
import type { FileRef, OutputSpec } from './outputs.ts';

/**
 * The JobManager methods a pipeline run uses: the async ones, which a fleet manager answers for
 * jobs another gateway runs as well (fetch and waitForTerminal reject with JobNotFoundError).
 */
export interface JobsPort {
  submit(input: SubmitInput): JobRecord;
  fetch(id: string): Promise<JobRecord>;
  requestCancel(id: string): Promise<JobRecord>;
  waitForTerminal(id: string, signal: AbortSignal): Promise<JobRecord>;
  readonly events: {
    subscribe(jobId: string, listener: (event: JobEvent) => void, signal?: AbortSignal): () => void;
  };
}

/** One template as a step sees it. */
export interface StepTemplate {
  template: WorkflowTemplate;
  /** Outputs the template declares (`outputs:` in its declaration). */
  outputs: Record<string, OutputSpec>;
}

/** The named templates of WORKFLOWS_DIR. */
export interface TemplateLookup {
  get(name: string): StepTemplate | undefined;
  /** The template ready to apply (a UI-format template is converted with node definitions). */
  resolve(name: string): Promise<WorkflowTemplate>;
}

/** Moves output files of one step to the instance that runs the next. */
export interface FileStager {
  /**
   * Streams a step's output file from the instance that produced it into gateway storage and
   * returns an input reference (`asset:<id>`) that the runner uploads, streamed, to whichever
   * instance runs the next job.
   */
  stage(file: FileRef, options: { signal: AbortSignal; runId: string }): Promise<string>;
  /** Frees what stage() created (called when the run ends). */
  release(refs: string[]): Promise<void>;
}

/** Webhook event types of runs. */
export type RunWebhookEvent = 'pipeline.succeeded' | 'pipeline.failed' | 'pipeline.canceled';

/** The webhook dispatcher, as runs use it (signed, retried, never rejects). */
export interface RunWebhooks {
  send(id: string, url: string, eventType: RunWebhookEvent, payload: unknown): Promise<unknown>;
}

export type { LoggerLike };
