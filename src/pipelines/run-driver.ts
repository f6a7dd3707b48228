// Drives one run from its stored state to its end: steps in order, `when` conditions, loops,
// fan-outs, one job per iteration, outputs handed forward. Everything it decides is written
// before it acts on it (an iteration's job id right after submit, in the same turn), so a driver
// started on the same records after a crash replays finished iterations from the store instead
// of running them again, and re-attaches to jobs still running.
import {
  type JobError,
  type JobRecord,
  type LoggerLike,
  type PrepareOptions,
  QueueFullError,
  ShuttingDownError,
} from '../jobs/index.ts';
import type { PipelineDefinition, StepDefinition } from './definition.ts';
import { IterationError } from './errors.ts';
import { ExpressionError } from './expressions.ts';
import { cancelJob, type DriverAbort, findJob, waitForJob } from './job-step.ts';
import { extractOutputs, type FileRef, OutputExtractionError } from './outputs.ts';
import type { FileStager, JobsPort, TemplateLookup } from './ports.ts';
import type { IterationRecord, PipelineRun, RunError, RunStatus, StepState } from './run.ts';
import type { RunEvents } from './run-events.ts';
import type { PipelineRunStore } from './run-store.ts';
import { prepareIteration } from './step-prepare.ts';
import { evaluateCondition, evaluateParameters, evaluateValue, RunContext } from './values.ts';

/** What a driver needs. */
export interface DriverDeps {
  jobs: JobsPort;
  store: PipelineRunStore;
  events: RunEvents;
  templates: TemplateLookup;
  prepare: PrepareOptions;
  files?: FileStager | undefined;
  maxFanOut: number;
  retentionMs: number;
  clock: () => number;
  logger?: LoggerLike | undefined;
  /** Called once when the run reached a terminal status. */
  onEnd: (run: PipelineRun) => void;
}

/** The run stops here because it was cancelled. */
class Canceled extends Error {}
/** The gateway is shutting down: leave the stored state as it is. */
class Shutdown extends Error {}
/** A step failed; `error` is the run's error with its context. */
class StepFailed extends Error {
  readonly error: RunError;
  constructor(error: RunError) {
    super(error.message);
    this.error = error;
  }
}

/** One live run. */
export class RunDriver {
  readonly run: PipelineRun;
  readonly definition: PipelineDefinition;
  readonly #d: DriverDeps;
  readonly #controller = new AbortController();
  readonly #iterations = new Map<string, Map<number, IterationRecord>>();
  readonly #staged = new Map<string, Promise<string>>();
  readonly #ctx: RunContext;
  #done: Promise<void> | null = null;

  constructor(
    run: PipelineRun,
    definition: PipelineDefinition,
    iterations: IterationRecord[],
    deps: DriverDeps,
  ) {
    this.run = run;
    this.definition = definition;
    this.#d = deps;
    for (const rec of iterations) this.#byStep(rec.step).set(rec.n, rec);
    this.#ctx = new RunContext(run.id, run.inputs);
  }

  /** Every iteration so far, in step order (live view for GET). */
  iterations(): IterationRecord[] {
    return this.run.steps.flatMap((s) =>
      [...(this.#iterations.get(s.id)?.values() ?? [])].sort((a, b) => a.n - b.n),
    );
  }

  /** Runs the run to its end (or until shutdown). Idempotent. */
  drive(): Promise<void> {
    this.#done ??= this.#drive();
    return this.#done;
  }

  /** Requests cancellation: running jobs are cancelled, the remaining steps skipped. */
  cancel(): void {
    if (this.run.status === 'queued' || this.run.status === 'running') {
      this.run.status = 'canceling';
      this.#save();
      this.#emitStatus();
    }
    if (this.run.status === 'canceling' && !this.#controller.signal.aborted)
      this.#controller.abort({ kind: 'cancel' } satisfies DriverAbort);
  }

  /** Stops driving without changing the stored run (the next start resumes it). */
  detach(): void {
    if (!this.#controller.signal.aborted) this.#controller.abort({ kind: 'shutdown' } satisfies DriverAbort);
  }

  #byStep(step: string): Map<number, IterationRecord> {
    let m = this.#iterations.get(step);
    if (!m) {
      m = new Map();
      this.#iterations.set(step, m);
    }
    return m;
  }

  async #drive(): Promise<void> {
    const run = this.run;
    try {
      if (run.status === 'canceling') this.cancel();
      if (run.status === 'queued') {
        run.status = 'running';
        run.started_at = this.#d.clock();
        this.#save();
        this.#emitStatus();
      }
      for (const step of this.definition.steps) await this.#step(step);
      this.#evaluateOutputs();
    } catch (err) {
      if (err instanceof Shutdown || this.#abortKind() === 'shutdown') return;
      if (err instanceof Canceled || this.#abortKind() === 'cancel') {
        await this.#cleanUp();
        this.#end('canceled');
        return;
      }
      if (err instanceof StepFailed) {
        run.error = err.error;
      } else {
        this.#d.logger?.error({ err, run_id: run.id }, 'pipeline run failed unexpectedly');
        run.error = { code: 'internal_error', message: (err as Error).message ?? String(err) };
      }
      await this.#cleanUp();
      this.#end('failed');
      return;
    }
    await this.#cleanUp();
    this.#end('succeeded');
  }

  /** Frees the files staged for the run before it is reported ended ("clean up"). */
  async #cleanUp(): Promise<void> {
    if (this.run.staged.length === 0 || !this.#d.files) return;
    try {
      await this.#d.files.release(this.run.staged);
    } catch (err) {
      this.#d.logger?.warn({ err, run_id: this.run.id }, 'could not free staged files');
    }
  }

  #abortKind(): DriverAbort['kind'] | null {
    const signal = this.#controller.signal;
    return signal.aborted ? (signal.reason as DriverAbort).kind : null;
  }

  #checkAbort(): void {
    const kind = this.#abortKind();
    if (kind === 'shutdown') throw new Shutdown();
    if (kind === 'cancel') throw new Canceled();
  }

  async #step(step: StepDefinition): Promise<void> {
    const state = this.run.steps[step.index] as StepState;
    if (state.status === 'succeeded' || state.status === 'skipped') {
      this.#ctx.setStep(step.id, this.#storedView(step, state));
      return;
    }
    if (state.status === 'failed' || state.status === 'canceled') {
      // Ended before a crash, without the run: end the run the same way.
      const failed = [...this.#byStep(step.id).values()].find((i) => i.status === 'failed');
      if (state.status === 'canceled' || !failed) throw new Canceled();
      throw new StepFailed(this.#failure(step, failed.n, failed.job_id, failed.error as JobError));
    }
    if (state.status === 'pending') {
      this.#checkAbort();
      if (step.when && !this.#condition(step, step.when, this.#ctx.variables({ iteration: 1 }), null)) {
        state.status = 'skipped';
        state.completed_at = this.#d.clock();
        this.#ctx.setStep(step.id, { status: 'skipped', outputs: {}, iterations: 0 });
        this.#save();
        this.#emitStep(state);
        return;
      }
      state.status = 'running';
      state.started_at = this.#d.clock();
      this.#save();
      this.#emitStep(state);
    }
    if (step.forEach) await this.#fanOut(step, state);
    else if (step.repeat) await this.#loop(step, state);
    else {
      const params = this.#parameters(step, step.parameters, { iteration: 1 }, 1);
      const outputs = await this.#iteration(step, state, 1, params);
      this.#ctx.setStep(step.id, { status: 'succeeded', outputs, iterations: 1 });
    }
    state.status = 'succeeded';
    state.completed_at = this.#d.clock();
    this.#save();
    this.#emitStep(state);
  }

  /** What a finished step shows to expressions, rebuilt from its stored iterations. */
  #storedView(
    step: StepDefinition,
    state: StepState,
  ): { status: string; outputs: unknown; iterations: number } {
    if (state.status === 'skipped') return { status: 'skipped', outputs: {}, iterations: 0 };
    const iterations = [...this.#byStep(step.id).values()].sort((a, b) => a.n - b.n);
    const outputs = step.forEach ? iterations.map((i) => i.outputs) : (iterations.at(-1)?.outputs ?? {});
    return { status: state.status, outputs, iterations: iterations.length };
  }

  async #loop(step: StepDefinition, state: StepState): Promise<void> {
    const repeat = step.repeat as NonNullable<StepDefinition['repeat']>;
    let params = this.#parameters(step, step.parameters, { iteration: 1 }, 1);
    let n = 1;
    let outputs: Record<string, unknown>;
    for (;;) {
      outputs = await this.#iteration(step, state, n, params);
      this.#ctx.setStep(step.id, { status: 'running', outputs, iterations: n });
      const vars = this.#ctx.variables({ iteration: n });
      if (!this.#condition(step, repeat.while, vars, n)) {
        state.stopped = 'condition';
        break;
      }
      if (n >= repeat.max) {
        state.stopped = 'max';
        break;
      }
      params = { ...params, ...this.#parameters(step, repeat.next, { iteration: n }, n) };
      n++;
    }
    this.#ctx.setStep(step.id, { status: 'succeeded', outputs, iterations: n });
  }

  async #fanOut(step: StepDefinition, state: StepState): Promise<void> {
    let items: unknown;
    try {
      items = evaluateValue(step.forEach as NonNullable<StepDefinition['forEach']>, this.#ctx.variables());
    } catch (err) {
      throw new StepFailed(this.#failure(step, null, null, expressionError(err)));
    }
    if (!Array.isArray(items))
      throw new StepFailed(
        this.#failure(step, null, null, {
          code: 'for_each_not_list',
          message: `for_each gave ${JSON.stringify(items)?.slice(0, 80)}, not a list`,
        }),
      );
    if (items.length > this.#d.maxFanOut)
      throw new StepFailed(
        this.#failure(step, null, null, {
          code: 'limit_fan_out',
          message: `for_each gave ${items.length} items (at most ${this.#d.maxFanOut}, PIPELINE_MAX_FAN_OUT)`,
        }),
      );
    const list = items;
    if (state.items !== list.length) {
      state.items = list.length;
      this.#save();
    }
    const results: Array<Record<string, unknown>> = new Array(list.length);
    let next = 0;
    let failure: unknown = null;
    // `parallel` workers take the next item; jobs submitted at once spread over the pool.
    const worker = async () => {
      while (failure === null && next < list.length) {
        const i = next++;
        try {
          const bound = { iteration: i + 1, item: list[i], index: i };
          const params = this.#parameters(step, step.parameters, bound, i + 1);
          results[i] = await this.#iteration(step, state, i + 1, params, list[i]);
        } catch (err) {
          failure ??= err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(step.parallel, list.length) }, worker));
    if (failure !== null) throw failure;
    this.#ctx.setStep(step.id, { status: 'succeeded', outputs: results, iterations: list.length });
  }

  #parameters(
    step: StepDefinition,
    parameters: StepDefinition['parameters'],
    bound: { iteration: number; item?: unknown; index?: number },
    n: number,
  ): Record<string, unknown> {
    try {
      return evaluateParameters(parameters, this.#ctx.variables(bound));
    } catch (err) {
      throw new StepFailed(this.#failure(step, n, null, expressionError(err)));
    }
  }

  #condition(
    step: StepDefinition,
    expr: NonNullable<StepDefinition['when']>,
    vars: Record<string, unknown>,
    n: number | null,
  ): boolean {
    try {
      return evaluateCondition(expr, vars);
    } catch (err) {
      throw new StepFailed(this.#failure(step, n, null, expressionError(err)));
    }
  }

  /** One iteration: replayed from the store when it finished, re-attached when its job runs, else submitted. */
  async #iteration(
    step: StepDefinition,
    state: StepState,
    n: number,
    params: Record<string, unknown>,
    item?: unknown,
  ): Promise<Record<string, unknown>> {
    const byStep = this.#byStep(step.id);
    let rec = byStep.get(n);
    if (rec?.status === 'succeeded') return rec.outputs ?? {};
    if (rec && rec.status !== 'running') {
      if (rec.status === 'canceled') throw new Canceled();
      throw new StepFailed(
        this.#failure(step, n, rec.job_id, rec.error ?? { code: 'failed', message: 'failed' }),
      );
    }
    let job: JobRecord | undefined = rec?.job_id ? await findJob(this.#d.jobs, rec.job_id) : undefined;
    if (!job) {
      this.#checkAbort();
      const now = this.#d.clock();
      rec = {
        run_id: this.run.id,
        step: step.id,
        n,
        ...(item !== undefined ? { item } : {}),
        parameters: params,
        job_id: null,
        status: 'running',
        outputs: null,
        error: null,
        started_at: now,
        completed_at: null,
      };
      let prepared: Awaited<ReturnType<typeof prepareIteration>>;
      try {
        prepared = await prepareIteration(step, params, {
          templates: this.#d.templates,
          prepare: this.#d.prepare,
          stage: (file) => this.#stage(file),
        });
        this.#checkAbort();
        job = this.#d.jobs.submit({
          workflow: prepared.workflow,
          ...(this.run.request.priority !== undefined ? { priority: this.run.request.priority } : {}),
          request: {
            ...(Object.keys(prepared.inputs).length ? { inputs: prepared.inputs } : {}),
            ...(this.run.request.output ? { output: this.run.request.output } : {}),
            ...((step.timeoutMs ?? this.run.request.timeout_ms)
              ? { timeout_ms: (step.timeoutMs ?? this.run.request.timeout_ms) as number }
              : {}),
            metadata: { pipeline_run_id: this.run.id, pipeline_step: step.id, pipeline_iteration: n },
            // The dashboard lists and filters jobs by the named workflow they ran.
            ...(step.workflow.kind === 'template' ? { name: step.workflow.name } : {}),
            ...(this.run.request.request_id ? { request_id: this.run.request.request_id } : {}),
            source: 'v2',
          },
        });
      } catch (err) {
        if (err instanceof Canceled || err instanceof Shutdown || err instanceof ShuttingDownError) {
          if (err instanceof ShuttingDownError) throw new Shutdown();
          throw err;
        }
        const error = iterationError(err);
        rec.status = 'failed';
        rec.error = error;
        rec.completed_at = this.#d.clock();
        byStep.set(n, rec);
        this.#putIteration(rec);
        this.#emitIteration(rec);
        throw new StepFailed(this.#failure(step, n, null, error));
      }
      // Committed in the turn of the submit, before the job's own commit: the run never loses a job.
      rec.job_id = job.id;
      byStep.set(n, rec);
      this.#putIteration(rec, true);
      if (n > state.iterations) state.iterations = n;
      this.#emitIteration(rec);
    }
    const current = rec as IterationRecord;
    const ended = await this.#await(job.id, step.id, n);
    current.completed_at = this.#d.clock();
    if (ended.status === 'succeeded') {
      try {
        current.outputs = extractOutputs(ended, step.outputs);
        current.status = 'succeeded';
      } catch (err) {
        if (!(err instanceof OutputExtractionError)) throw err;
        current.status = 'failed';
        current.error = { code: err.code, message: err.message };
      }
    } else {
      current.status = ended.status === 'canceled' ? 'canceled' : 'failed';
      current.error = ended.error ?? {
        code: `job_${ended.status}`,
        message: `The job ended ${ended.status}.`,
      };
    }
    if (n > state.iterations) state.iterations = n;
    this.#putIteration(current);
    this.#emitIteration(current);
    if (current.status === 'succeeded') return current.outputs ?? {};
    if (current.status === 'canceled' && this.#abortKind() === 'cancel') throw new Canceled();
    throw new StepFailed(this.#failure(step, n, job.id, current.error as JobError));
  }

  async #await(jobId: string, step: string, n: number): Promise<JobRecord> {
    const waited = await waitForJob(this.#d.jobs, jobId, this.#controller.signal, (progress) => {
      if (this.#d.events.listenerCount(this.run.id) > 0)
        this.#d.events.emit(this.run.id, { type: 'progress', data: { step, n, job_id: jobId, progress } });
    });
    if ('ended' in waited) return waited.ended;
    if ('gone' in waited)
      throw new StepFailed({
        code: 'job_lost',
        message: `step ${step}, iteration ${n}: job ${jobId} is gone`,
        step,
        iteration: n,
        job_id: jobId,
      });
    if (this.#abortKind() === 'shutdown') throw new Shutdown();
    const ended = await cancelJob(this.#d.jobs, jobId);
    if (ended && (ended.status === 'succeeded' || ended.status === 'failed' || ended.status === 'canceled'))
      return ended;
    throw new Canceled();
  }

  async #stage(file: FileRef): Promise<string> {
    const stager = this.#d.files;
    if (!stager)
      throw new IterationError('files_unsupported', 'this gateway cannot pass files between steps');
    const key = `${file.job_id}/${file.index}`;
    let ref = this.#staged.get(key);
    if (!ref) {
      ref = stager.stage(file, { signal: this.#controller.signal, runId: this.run.id }).then((r) => {
        this.run.staged.push(r);
        this.#save();
        return r;
      });
      ref.catch(() => this.#staged.delete(key));
      this.#staged.set(key, ref);
    }
    return ref;
  }

  /** The run's error for a failure at `step` (iteration `n`), with the job's own error. */
  #failure(step: StepDefinition, n: number | null, jobId: string | null, error: JobError): RunError {
    const where = `step ${step.id}${n !== null ? `, iteration ${n}` : ''}`;
    const node = error.node_id
      ? `node ${error.node_id}${error.class_type ? ` (${error.class_type})` : ''}: `
      : '';
    return {
      code: error.code === 'node_execution_error' || jobId ? 'step_failed' : error.code,
      message: `${where}: ${node}${error.message}`,
      step: step.id,
      ...(n !== null ? { iteration: n } : {}),
      ...(jobId ? { job_id: jobId } : {}),
      job_error: error,
    };
  }

  #evaluateOutputs(): void {
    const vars = this.#ctx.variables();
    const outputs: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(this.definition.outputs)) {
      try {
        outputs[name] = evaluateValue(value, vars);
      } catch (err) {
        // An output that reads a skipped step is null, not a failed run.
        outputs[name] = null;
        this.run.warnings.push({ output: name, message: (err as Error).message });
      }
    }
    this.run.outputs = outputs;
  }

  #end(status: Extract<RunStatus, 'succeeded' | 'failed' | 'canceled'>): void {
    const run = this.run;
    const now = this.#d.clock();
    for (const s of run.steps) {
      if (s.status === 'running')
        s.status =
          status === 'canceled'
            ? 'canceled'
            : status === 'failed' && run.error?.step === s.id
              ? 'failed'
              : 'canceled';
      else if (s.status === 'pending') s.status = 'skipped';
      else continue;
      s.completed_at = now;
    }
    run.status = status;
    run.completed_at = now;
    run.expires_at = now + this.#d.retentionMs;
    this.#save(true);
    this.#emitStatus();
    this.#d.onEnd(run);
  }

  #save(durable = false): void {
    this.run.updated_at = this.#d.clock();
    try {
      this.#d.store.update(this.run, durable);
    } catch (err) {
      this.#d.logger?.error({ err, run_id: this.run.id }, 'could not persist a pipeline run');
    }
  }

  #putIteration(rec: IterationRecord, durable = false): void {
    try {
      this.#d.store.putIteration(rec, durable);
    } catch (err) {
      this.#d.logger?.error({ err, run_id: this.run.id, step: rec.step }, 'could not persist an iteration');
    }
  }

  #emitStatus(): void {
    if (this.#d.events.listenerCount(this.run.id) > 0)
      this.#d.events.emit(this.run.id, { type: 'status', data: { status: this.run.status } });
  }

  #emitStep(state: StepState): void {
    if (this.#d.events.listenerCount(this.run.id) > 0)
      this.#d.events.emit(this.run.id, {
        type: 'step',
        data: { step: state.id, status: state.status, iterations: state.iterations },
      });
  }

  #emitIteration(rec: IterationRecord): void {
    if (this.#d.events.listenerCount(this.run.id) > 0)
      this.#d.events.emit(this.run.id, {
        type: 'iteration',
        data: {
          step: rec.step,
          n: rec.n,
          status: rec.status,
          job_id: rec.job_id,
          ...(rec.error ? { error: rec.error } : {}),
        },
      });
  }
}

function expressionError(err: unknown): JobError {
  if (err instanceof ExpressionError) return { code: err.code, message: err.message };
  return { code: 'expression_failed', message: (err as Error).message ?? String(err) };
}

function iterationError(err: unknown): JobError {
  if (err instanceof IterationError) return { code: err.code, message: err.message, details: err.details };
  if (err instanceof QueueFullError) return { code: 'queue_full', message: err.message };
  const e = err as { code?: unknown; message?: unknown; details?: unknown };
  return {
    code: typeof e.code === 'string' ? e.code : 'step_unavailable',
    message: typeof e.message === 'string' ? e.message : String(err),
    ...(e.details && typeof e.details === 'object' ? { details: e.details as Record<string, unknown> } : {}),
  };
}
