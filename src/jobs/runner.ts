// One attempt of one job on one lease: resolve inputs, submit (or re-attach to) the prompt under
// the job id, stream events to the caller, collect outputs, and classify how it ended. It never
// changes job state itself; the manager applies the outcome, so every state change has one owner.
import { collectOutputs, scopedSignal } from '../comfy/index.ts';
import { isResolvableString } from '../io/index.ts';
import type { JobError, JobOutput, JobRecord, OutputSource } from './job.ts';
import { linkOutputs } from '../io/index.ts';
import type {
  ComfyClientLike,
  InputResolverLike,
  LoggerLike,
  NodeDefs,
  OutputDeliveryLike,
  PrefetchedLike,
  RunEvent,
  RunResult,
} from './ports.ts';

/** Why the manager aborted an attempt. */
export type AbortReason = { kind: 'cancel' } | { kind: 'shutdown' };

/** How an attempt ended. */
export type AttemptOutcome =
  | { kind: 'succeeded'; result: RunResult; outputs: JobOutput[]; sources: OutputSource[] }
  | { kind: 'failed'; error: JobError; partial?: { outputs: JobOutput[]; sources: OutputSource[] } }
  | { kind: 'retry'; error: JobError }
  | { kind: 'canceled' }
  | { kind: 'shutdown' };

/** Dependencies of a Runner. */
export interface RunnerOptions {
  nodeDefsFor?: (instanceId: string) => Promise<NodeDefs>;
  inputResolver?: InputResolverLike;
  outputDelivery?: OutputDeliveryLike;
  /** Base of output content links ('' = host-relative). */
  linkBaseUrl: string;
  /** How long a finished job is kept: its content links expire that long after its outputs are collected. */
  linkTtlMs: number;
  logger?: LoggerLike;
  /** Bound on best-effort cleanup calls to the instance (cancel). */
  cleanupTimeoutMs?: number;
}

/** What one attempt runs against. */
export interface AttemptContext {
  job: JobRecord;
  instanceId: string;
  client: ComfyClientLike;
  /** 'attach' re-attaches to a prompt already on the instance (restart recovery). */
  mode: 'submit' | 'attach';
  /** Aborted by the manager with an AbortReason (cancel or shutdown). */
  signal: AbortSignal;
  /** The lease's signal: aborted when the instance is declared down. */
  leaseSignal?: AbortSignal;
  timeoutMs: number;
  extraData?: Record<string, unknown>;
  /** Inputs fetched before the attempt took its slot. */
  prefetched?: PrefetchedLike;
  onEvent: (event: RunEvent) => void;
}

interface ComfyLikeError {
  code?: unknown;
  retryable?: unknown;
  message?: unknown;
  nodeErrors?: unknown;
  error?: unknown;
  nodeId?: unknown;
  nodeType?: unknown;
  exceptionType?: unknown;
  exceptionMessage?: unknown;
  traceback?: unknown;
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

/** Maps a ComfyUI/client error to the job's error, by its stable code. */
export function jobErrorFrom(err: unknown): { error: JobError; retryable: boolean } {
  const e = (typeof err === 'object' && err !== null ? err : {}) as ComfyLikeError;
  const message = str(e.message) ?? String(err);
  switch (e.code) {
    case 'comfy_validation': {
      const top = (typeof e.error === 'object' && e.error !== null ? e.error : {}) as Record<string, unknown>;
      return {
        error: {
          code: 'invalid_workflow',
          message: str(top.message) ?? message,
          details: { node_errors: (e.nodeErrors as Record<string, unknown>) ?? {}, error: top },
        },
        retryable: false,
      };
    }
    case 'comfy_execution':
      return {
        error: {
          code: 'node_execution_error',
          message: str(e.exceptionMessage) ?? message,
          node_id: str(e.nodeId),
          class_type: str(e.nodeType),
          traceback: Array.isArray(e.traceback) ? e.traceback.join('') : str(e.traceback),
          details: e.exceptionType ? { exception_type: e.exceptionType } : null,
        },
        retryable: false,
      };
    case 'comfy_interrupted':
      return {
        error: { code: 'interrupted', message: 'The prompt was interrupted on its instance.' },
        retryable: false,
      };
    default: {
      const code = typeof e.code === 'string' ? e.code : 'upstream_error';
      return { error: { code, message }, retryable: e.retryable === true };
    }
  }
}

/** `{ headers: { 'x-request-id' } }` for calls made on behalf of a job, so ComfyUI-side logs and
 * proxies can be matched to the gateway request that created it; `{}` when it has none. */
export function requestHeaders(job: JobRecord): { headers?: Record<string, string> } {
  const id = job.request.request_id;
  return id ? { headers: { 'x-request-id': id } } : {};
}

/**
 * True when the job has inputs to fetch or upload: an `inputs` map, a URL/data-URI string value, or
 * a `core/ASSET` reference. Most prompts have none, and skipping io then saves a pass per job.
 */
export function needsInputResolution(job: JobRecord): boolean {
  if (job.request.inputs && Object.keys(job.request.inputs).length > 0) return true;
  for (const node of Object.values(job.workflow)) {
    for (const value of Object.values(node.inputs)) {
      if (
        typeof value === 'string'
          ? isResolvableString(value)
          : typeof value === 'object' && value !== null && !Array.isArray(value)
      ) {
        return true;
      }
    }
  }
  return false;
}

/** Runs attempts; stateless apart from its dependencies. */
export class Runner {
  #options: RunnerOptions;

  constructor(options: RunnerOptions) {
    this.#options = options;
  }

  /** Runs one attempt to its outcome; never rejects. */
  async run(ctx: AttemptContext): Promise<AttemptOutcome> {
    const scope = scopedSignal([ctx.signal, ctx.leaseSignal], ctx.timeoutMs);
    const signal = scope.signal;
    // What output nodes reported before a failure: another branch's files are kept (partial results).
    const executed: Record<string, Record<string, unknown>> = {};
    const onEvent = ctx.onEvent;
    ctx = {
      ...ctx,
      onEvent: (event) => {
        if (event.type === 'executed') executed[event.nodeId] = event.output;
        onEvent(event);
      },
    };
    try {
      const result = await this.#execute(ctx, signal);
      const collected = await this.#collect(ctx, result, signal);
      return { kind: 'succeeded', result, ...collected };
    } catch (err) {
      if (ctx.signal.aborted) {
        const reason = ctx.signal.reason as AbortReason;
        if (reason?.kind === 'shutdown') return { kind: 'shutdown' };
        await this.#cancelOnInstance(ctx);
        return { kind: 'canceled' };
      }
      if (ctx.leaseSignal?.aborted) {
        return {
          kind: 'retry',
          error: { code: 'instance_down', message: 'The instance was declared down mid-run.' },
        };
      }
      if (scope.timedOut) {
        await this.#cancelOnInstance(ctx);
        return {
          kind: 'failed',
          error: { code: 'timeout', message: `The job did not finish within ${ctx.timeoutMs} ms.` },
        };
      }
      const { error, retryable } = jobErrorFrom(err);
      if (retryable) return { kind: 'retry', error };
      this.#options.logger?.debug({ job_id: ctx.job.id, err }, 'attempt failed');
      const partial = await this.#partial(ctx, executed, signal);
      return { kind: 'failed', error, ...(partial ? { partial } : {}) };
    } finally {
      scope.dispose();
    }
  }

  async #execute(ctx: AttemptContext, signal: AbortSignal): Promise<RunResult> {
    if (ctx.mode === 'attach') {
      return ctx.client.waitForPrompt(ctx.job.id, {
        signal,
        onEvent: ctx.onEvent,
        ...requestHeaders(ctx.job),
      });
    }
    let prompt = ctx.job.workflow;
    const resolver = this.#options.inputResolver;
    if (resolver && needsInputResolution(ctx.job)) {
      const nodeDefs = this.#options.nodeDefsFor ? await this.#options.nodeDefsFor(ctx.instanceId) : {};
      const resolved = await resolver.resolve(prompt, {
        ...(ctx.job.request.inputs ? { inputs: ctx.job.request.inputs } : {}),
        nodeDefs,
        client: ctx.client,
        signal,
        ...(ctx.prefetched ? { prefetched: ctx.prefetched } : {}),
      });
      prompt = resolved.prompt;
    }
    return ctx.client.run(prompt, {
      promptId: ctx.job.id,
      signal,
      ...(ctx.extraData ? { extraData: ctx.extraData } : {}),
      onEvent: ctx.onEvent,
      ...requestHeaders(ctx.job),
    });
  }

  async #collect(
    ctx: AttemptContext,
    result: RunResult,
    signal: AbortSignal,
  ): Promise<{ outputs: JobOutput[]; sources: OutputSource[] }> {
    const store = ctx.job.request.output?.store ?? 'link';
    const delivery = this.#options.outputDelivery;
    if (store === 'link' || !delivery) return this.#links(ctx, result);
    const delivered = await delivery.deliver({ id: ctx.job.id }, result, ctx.client, {
      store,
      ...(ctx.job.request.output?.format ? { format: ctx.job.request.output.format } : {}),
      ...(ctx.job.request.output?.quality ? { quality: ctx.job.request.output.quality } : {}),
      // v2: nothing is silently dropped, previews (temp files) included.
      includePreviews: true,
      linkBaseUrl: this.#options.linkBaseUrl,
      linkTtlMs: this.#options.linkTtlMs,
      signal,
    });
    // Content links index job.outputs, so sources follow the delivered order.
    const sources = delivered.map((o) => ({ instanceId: ctx.instanceId, ...o.source }));
    return { outputs: delivered, sources };
  }

  /** Link outputs of every file of a result (bytes left on the instance) and where each one lives. */
  #links(ctx: AttemptContext, result: RunResult): { outputs: JobOutput[]; sources: OutputSource[] } {
    const outputs = linkOutputs(ctx.job.id, result.outputs, {
      baseUrl: this.#options.linkBaseUrl,
      ttlMs: this.#options.linkTtlMs,
    });
    const sources = result.outputs.map((f) => ({
      instanceId: ctx.instanceId,
      filename: f.filename,
      subfolder: f.subfolder,
      type: f.type,
    }));
    return { outputs, sources };
  }

  /** The files output nodes produced before the failure, delivered like a success's (links on error). */
  async #partial(
    ctx: AttemptContext,
    executed: Record<string, Record<string, unknown>>,
    signal: AbortSignal,
  ): Promise<{ outputs: JobOutput[]; sources: OutputSource[] } | null> {
    if (Object.keys(executed).length === 0) return null;
    const { files, texts } = collectOutputs(executed);
    if (files.length === 0) return null;
    const now = Date.now();
    const result: RunResult = {
      promptId: ctx.job.id,
      outputs: files,
      texts,
      rawOutputs: executed,
      stats: { queuedAt: now, finishedAt: now, nodes: {}, cachedNodes: [] },
    };
    try {
      return await this.#collect(ctx, result, signal);
    } catch (err) {
      this.#options.logger?.warn(
        { job_id: ctx.job.id, err },
        'could not deliver partial outputs; linking them',
      );
      return this.#links(ctx, result);
    }
  }

  async #cancelOnInstance(ctx: AttemptContext): Promise<void> {
    const bound = this.#options.cleanupTimeoutMs ?? 5000;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        ctx.client.cancel(ctx.job.id, requestHeaders(ctx.job)),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, bound);
        }),
      ]);
    } catch (err) {
      this.#options.logger?.warn({ job_id: ctx.job.id, err }, 'could not cancel the prompt on its instance');
    } finally {
      clearTimeout(timer);
    }
  }
}
