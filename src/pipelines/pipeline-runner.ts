// The pipeline service: validates definitions, creates durable runs, drives each live run (one
// RunDriver per run), resumes unfinished runs at start, cancels, lists, expires old runs, and
// fires the run's webhook at its end. The HTTP layer talks only to this class.
import { randomUUID } from 'node:crypto';
import { type LoggerLike, type PrepareOptions, ShuttingDownError, terminalEvent } from '../jobs/index.ts';
import type { ApiPrompt } from '../workflow/index.ts';
import {
  DEFAULT_PIPELINE_LIMITS,
  type PipelineDefinition,
  PipelineDefinitionError,
  PipelineInputsError,
  type PipelineLimits,
  parsePipeline,
} from './definition.ts';
import { InvalidInputsError, InvalidPipelineError, RunNotFoundError, TooManyRunsError } from './errors.ts';
import { ExpressionCompiler, type ExpressionLimits } from './expressions.ts';
import type { FileStager, JobsPort, RunWebhooks, TemplateLookup } from './ports.ts';
import { isRunTerminal, type IterationRecord, type PipelineRun, type RunRequest, runHead } from './run.ts';
import { RunDriver } from './run-driver.ts';
import { RunEvents } from './run-events.ts';
import type { PipelineRunStore, RunListQuery, RunPage } from './run-store.ts';

/** Options of the service. */
export interface PipelineRunnerOptions {
  jobs: JobsPort;
  store: PipelineRunStore;
  templates: TemplateLookup;
  prepare: PrepareOptions;
  files?: FileStager;
  webhooks?: RunWebhooks;
  /** Default webhook of runs that name none. */
  webhookUrl?: string;
  limits?: Partial<PipelineLimits>;
  expressionLimits?: Partial<ExpressionLimits>;
  /** Runs in progress at once (PIPELINE_MAX_ACTIVE_RUNS). */
  maxActiveRuns?: number;
  retentionMs: number;
  logger?: LoggerLike;
  clock?: () => number;
  newId?: () => string;
}

/** What a caller asks to run. */
export interface CreateRunInput {
  definition: PipelineDefinition;
  inputs?: unknown;
  request?: RunRequest;
  idempotencyKey?: string | null;
  /** Input references already staged for this run (freed when it ends). */
  staged?: string[];
}

/** A run with its iterations. */
export interface RunView {
  run: PipelineRun;
  iterations: IterationRecord[];
}

/** Creates and drives pipeline runs over the job manager. */
export class PipelineRunner {
  readonly events = new RunEvents();
  readonly compiler: ExpressionCompiler;
  readonly limits: PipelineLimits;
  readonly #o: PipelineRunnerOptions;
  readonly #clock: () => number;
  readonly #newId: () => string;
  readonly #live = new Map<string, RunDriver>();
  readonly #webhookTasks = new Set<Promise<unknown>>();
  #sweepTimer: NodeJS.Timeout | null = null;
  #started = false;
  #closing: Promise<void> | null = null;

  constructor(options: PipelineRunnerOptions) {
    this.#o = options;
    this.#clock = options.clock ?? Date.now;
    this.#newId = options.newId ?? randomUUID;
    this.limits = { ...DEFAULT_PIPELINE_LIMITS, ...options.limits };
    this.compiler = new ExpressionCompiler(options.expressionLimits);
  }

  /** Runs in progress. */
  get active(): number {
    return this.#live.size;
  }

  /** Validates a definition document; throws InvalidPipelineError (422) naming where each problem is. */
  parse(
    doc: unknown,
    options: { name?: string | null; convertUi?: (ui: unknown) => ApiPrompt } = {},
  ): PipelineDefinition {
    try {
      return parsePipeline(
        doc,
        {
          templates: this.#o.templates,
          compiler: this.compiler,
          limits: this.limits,
          ...(options.convertUi ? { convertUi: options.convertUi } : {}),
        },
        options.name ?? null,
      );
    } catch (err) {
      if (err instanceof PipelineDefinitionError)
        throw new InvalidPipelineError(err.issues, options.name ?? null);
      throw err;
    }
  }

  /** Resumes unfinished runs (after the job manager recovered its jobs), then starts the retention sweep. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    for (const run of this.#o.store.listUnfinished()) {
      let definition: PipelineDefinition;
      try {
        definition = this.parse(run.definition, { name: run.pipeline });
      } catch (err) {
        run.status = 'failed';
        run.error = { code: 'invalid_pipeline', message: `The run cannot resume: ${(err as Error).message}` };
        run.completed_at = this.#clock();
        run.expires_at = run.completed_at + this.#o.retentionMs;
        this.#o.store.update(run);
        continue;
      }
      this.#o.logger?.info({ run_id: run.id, status: run.status }, 'resuming a pipeline run');
      this.#drive(new RunDriver(run, definition, this.#o.store.iterations(run.id), this.#deps()));
    }
    const sweepMs = Math.min(60_000, Math.max(1000, Math.floor(this.#o.retentionMs / 10)));
    this.#sweepTimer = setInterval(() => this.sweep(), sweepMs);
    this.#sweepTimer.unref();
  }

  /** True when an Idempotency-Key is already claimed by a run. */
  hasIdempotencyKey(key: string): boolean {
    return this.#o.store.hasIdempotencyKey(key, this.#clock());
  }

  /** Creates a durable run and starts it. Throws InvalidInputsError, TooManyRunsError, IdempotencyKeyReuseError. */
  create(input: CreateRunInput): PipelineRun {
    if (this.#closing) throw new ShuttingDownError();
    const max = this.#o.maxActiveRuns ?? 1000;
    if (this.#live.size >= max) throw new TooManyRunsError(max);
    let inputs: Record<string, unknown>;
    try {
      inputs = input.definition.resolveInputs(input.inputs ?? {});
    } catch (err) {
      if (err instanceof PipelineInputsError) throw new InvalidInputsError(err.issues);
      throw err;
    }
    const now = this.#clock();
    const run: PipelineRun = {
      id: this.#newId(),
      status: 'queued',
      pipeline: input.definition.name,
      definition: input.definition.source,
      inputs,
      request: input.request ?? {},
      steps: input.definition.steps.map((s) => ({
        id: s.id,
        status: 'pending',
        started_at: null,
        completed_at: null,
        iterations: 0,
        stopped: null,
        items: null,
      })),
      outputs: null,
      warnings: [],
      error: null,
      staged: [...(input.staged ?? [])],
      created_at: now,
      updated_at: now,
      started_at: null,
      completed_at: null,
      expires_at: now + this.#o.retentionMs,
      idempotency_key: input.idempotencyKey ?? null,
    };
    this.#o.store.insert(run);
    this.#drive(new RunDriver(run, input.definition, [], this.#deps()));
    return run;
  }

  /** A run with its iterations (live state for runs in progress), or undefined. */
  get(id: string): RunView | undefined {
    const live = this.#live.get(id);
    if (live) return { run: live.run, iterations: live.iterations() };
    const run = this.#o.store.get(id);
    if (!run || (isRunTerminal(run.status) && run.expires_at <= this.#clock())) return undefined;
    return { run, iterations: this.#o.store.iterations(id) };
  }

  /** Like get() but throws RunNotFoundError. */
  require(id: string): RunView {
    const view = this.get(id);
    if (!view) throw new RunNotFoundError(id);
    return view;
  }

  /** Newest-first listing (runs in their current state, without iterations). */
  list(query: RunListQuery): RunPage {
    const page = this.#o.store.list(query);
    return { runs: page.runs.map((r) => this.#live.get(r.id)?.run ?? r), nextCursor: page.nextCursor };
  }

  /** Requests cancellation (idempotent); returns the run as it is now. */
  cancel(id: string): RunView {
    const live = this.#live.get(id);
    if (live) live.cancel();
    return this.require(id);
  }

  /** Resolves with the run once it is terminal, or with its current state when `signal` aborts. */
  async waitForTerminal(id: string, signal: AbortSignal): Promise<RunView> {
    const view = this.require(id);
    if (isRunTerminal(view.run.status) || signal.aborted) return view;
    const { promise, resolve } = Promise.withResolvers<void>();
    const scope = new AbortController();
    signal.addEventListener('abort', () => resolve(), { once: true, signal: scope.signal });
    this.events.subscribe(
      id,
      (event) => {
        if (event.type === 'status' && isRunTerminal(event.data.status)) resolve();
      },
      scope.signal,
    );
    try {
      await promise;
    } finally {
      scope.abort();
    }
    return this.get(id) ?? view;
  }

  /** Deletes runs past retention; returns how many went. */
  sweep(): number {
    try {
      return this.#o.store.deleteExpired(this.#clock());
    } catch (err) {
      this.#o.logger?.error({ err }, 'pipeline retention sweep failed');
      return 0;
    }
  }

  /**
   * Stops driving runs without cancelling their jobs (the next start resumes them), waits up to
   * `graceMs` for run webhooks, then closes the store. Close it before the job manager. Idempotent.
   */
  close(options: { graceMs?: number } = {}): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#sweepTimer) clearInterval(this.#sweepTimer);
      const drivers = [...this.#live.values()];
      for (const driver of drivers) driver.detach();
      // Drivers stop at their next await; a cancel in progress may wait for its job, so bounded.
      const grace = AbortSignal.timeout(options.graceMs ?? 5000);
      const within = (tasks: Array<Promise<unknown>>) =>
        new Promise<void>((resolve) => {
          if (tasks.length === 0 || grace.aborted) return resolve();
          grace.addEventListener('abort', () => resolve(), { once: true });
          void Promise.allSettled(tasks).then(() => resolve());
        });
      await within(drivers.map((d) => d.drive()));
      await within([...this.#webhookTasks]);
      this.events.close();
      this.#live.clear();
      this.#o.store.close();
    })();
    return this.#closing;
  }

  #deps(): ConstructorParameters<typeof RunDriver>[3] {
    return {
      jobs: this.#o.jobs,
      store: this.#o.store,
      events: this.events,
      templates: this.#o.templates,
      prepare: this.#o.prepare,
      files: this.#o.files,
      maxFanOut: this.limits.maxFanOut,
      retentionMs: this.#o.retentionMs,
      clock: this.#clock,
      logger: this.#o.logger,
      onEnd: (run) => this.#onEnd(run),
    };
  }

  #drive(driver: RunDriver): void {
    this.#live.set(driver.run.id, driver);
    driver
      .drive()
      .catch((err) => this.#o.logger?.error({ err, run_id: driver.run.id }, 'pipeline driver crashed'))
      .finally(() => {
        if (this.#live.get(driver.run.id) === driver) this.#live.delete(driver.run.id);
      });
  }

  #onEnd(run: PipelineRun): void {
    this.#live.delete(run.id);
    this.#o.logger?.info(
      { run_id: run.id, status: run.status, pipeline: run.pipeline },
      'pipeline run ended',
    );
    const url = run.request.webhook_url ?? this.#o.webhookUrl;
    if (this.#o.webhooks && url) {
      this.#track(
        this.#o.webhooks
          .send(run.id, url, terminalEvent('pipeline', run.status), webhookPayload(run))
          .catch((err) => this.#o.logger?.error({ err, run_id: run.id }, 'run webhook dispatch failed')),
      );
    }
  }

  #track(task: Promise<unknown>): void {
    this.#webhookTasks.add(task);
    void task.finally(() => this.#webhookTasks.delete(task));
  }
}

/** The webhook body of a finished run. */
function webhookPayload(run: PipelineRun): Record<string, unknown> {
  return { ...runHead(run), outputs: run.outputs, error: run.error, metadata: run.request.metadata ?? null };
}
