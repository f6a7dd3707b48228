// The `run` target that submits the workflow to a comfy-gateway as a v2 job: `--set` become
// `overrides`, `--input` files travel as data URIs in `inputs`, progress comes from the job's SSE
// stream (falling back to polling when the stream cannot be used or ends early), outputs are
// downloaded from their `url`s, and the deadline or Ctrl-C cancels the job on the gateway.
import { mkdir, readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { type ApiPrompt, contentTypeFor } from '../comfy/index.ts';
import { detectFormat } from '../workflow/index.ts';
import { GatewayApi, GatewayApiError } from './gateway-api.ts';
import { checkNodes, type RunContext, type RunPlan, type RunTarget, safeOutputPath } from './run-plan.ts';
import { fmtMs, type Reporter, type RunOutcome } from './run-reporter.ts';
import { readSseJson } from './run-sse.ts';

/** The fields of a v2 Job this command reads. */
export interface GatewayJob {
  id: string;
  status: string;
  queue_position?: number | null;
  outputs?: GatewayOutput[];
  error?: GatewayJobErrorBody | null;
  metrics?: { queue_ms?: number | null; execution_ms?: number | null };
  instance_id?: string | null;
  attempts?: Array<{ n: number; instance_id?: string; error?: GatewayJobErrorBody | null }>;
  texts?: unknown[];
  urls?: { events?: string; cancel?: string; self?: string };
}

/** One output of a job. */
export interface GatewayOutput {
  node_id: string;
  name: string;
  url?: string | null;
  subfolder?: string;
  comfy_type?: string;
  content_type?: string;
}

/** The job's `error` object. */
export interface GatewayJobErrorBody {
  code: string;
  message: string;
  node_id?: string;
  class_type?: string;
  details?: Record<string, unknown> | null;
}

/** The job ended without success (failed, canceled, expired). */
export class GatewayJobError extends Error {
  readonly code: string;
  readonly job: GatewayJob;
  override readonly name = 'GatewayJobError';

  constructor(job: GatewayJob) {
    super(job.error?.message ?? `job ${job.id} ended ${job.status}`);
    this.code = job.error?.code ?? `job_${job.status}`;
    this.job = job;
  }
}

const TERMINAL = new Set(['succeeded', 'failed', 'canceled', 'expired']);
const POLL_INTERVAL_MS = 1_000;
/** Bound of the cancel request sent after the deadline has already passed. */
const CANCEL_TIMEOUT_MS = 10_000;
/**
 * Inputs up to this size travel inside the job request as data URIs (one request, base64 adds a
 * third); larger ones are streamed to the asset store first and referenced as `asset:<id>`, so
 * the job body stays far below the gateway's MAX_BODY_BYTES.
 */
const INLINE_INPUT_MAX_BYTES = 1024 * 1024;
/** Outputs downloaded at once. */
const DOWNLOAD_CONCURRENCY = 4;
/** The job's own time limit trails ours, so it only matters if this process dies first. */
const SERVER_TIMEOUT_GRACE_MS = 30_000;
/** The API's ceiling for `timeout_ms` (7 days). */
const MAX_JOB_TIMEOUT_MS = 7 * 24 * 3_600_000;
/** Consecutive failed polls tolerated (a gateway restart or a network blip) before giving up. */
const MAX_POLL_FAILURES = 5;

/** Runs the plan as a v2 job on a comfy-gateway. */
export class GatewayTarget implements RunTarget {
  readonly #api: GatewayApi;

  constructor(gateway: string, apiKey: string | undefined) {
    this.#api = new GatewayApi(gateway, apiKey);
  }

  describe(): string {
    return `gateway ${this.#api.base}`;
  }

  async execute(plan: RunPlan, { reporter, signal, deadline }: RunContext): Promise<RunOutcome> {
    // API prompts are checked here like with --server; UI workflows' node ids exist only after the
    // gateway converted them, so it checks those.
    if (detectFormat(plan.workflow) === 'api')
      checkNodes(plan.workflow as ApiPrompt, [...plan.sets, ...plan.inputs]);
    const body = await this.#jobBody(plan, deadline, reporter, signal);
    const submitted = await this.#api.json<GatewayJob>('POST /api/v2/jobs', `${this.#api.base}/api/v2/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal,
    });
    reporter.line(`job ${submitted.id} ${describeStatus(submitted)}`);
    let job: GatewayJob;
    try {
      job = await this.#follow(submitted, reporter, signal);
    } catch (err) {
      if (signal.aborted) await this.#cancel(submitted, reporter);
      throw err;
    }
    reporter.done();
    if (job.status !== 'succeeded') throw new GatewayJobError(job);
    const saved = await this.#download(job, plan.outDir, signal);
    return { heading: `job ${job.id} succeeded`, details: jobDetails(job), saved };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  async #jobBody(
    plan: RunPlan,
    deadline: number,
    reporter: Reporter,
    signal: AbortSignal,
  ): Promise<Record<string, unknown>> {
    const body: Record<string, unknown> = {
      workflow: plan.workflow,
      timeout_ms: Math.min(
        MAX_JOB_TIMEOUT_MS,
        Math.max(100, deadline - Date.now() + SERVER_TIMEOUT_GRACE_MS),
      ),
    };
    if (plan.sets.length > 0) {
      const overrides: Record<string, Record<string, unknown>> = {};
      for (const s of plan.sets) overrides[s.nodeId] = { ...overrides[s.nodeId], [s.input]: s.value };
      body.overrides = overrides;
    }
    if (plan.inputs.length > 0) {
      const inputs: Record<string, string> = {};
      for (const input of plan.inputs) {
        const type = contentTypeFor(basename(input.path));
        const { size } = await stat(input.path);
        const asset =
          size > INLINE_INPUT_MAX_BYTES ? await this.#uploadAsset(input.path, type, signal) : undefined;
        if (asset !== undefined) {
          reporter.line(`uploaded ${basename(input.path)} (${size} bytes) as asset:${asset}`);
          inputs[`${input.nodeId}.${input.input}`] = `asset:${asset}`;
        } else {
          if (size > INLINE_INPUT_MAX_BYTES)
            reporter.line(
              `gateway has no asset store; sending ${basename(input.path)} (${size} bytes) inline`,
            );
          const data = await readFile(input.path, { signal });
          inputs[`${input.nodeId}.${input.input}`] = `data:${type};base64,${data.toString('base64')}`;
        }
      }
      body.inputs = inputs;
    }
    return body;
  }

  /** Streams a file to POST /api/v2/assets; returns the asset id, or undefined without asset routes. */
  async #uploadAsset(path: string, type: string, signal: AbortSignal): Promise<string | undefined> {
    try {
      return await this.#api.uploadAsset(path, type, signal);
    } catch (err) {
      if (err instanceof GatewayApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** Follows the job to a terminal status: SSE first, polling when the stream is unusable. */
  async #follow(job: GatewayJob, reporter: Reporter, signal: AbortSignal): Promise<GatewayJob> {
    const streamed = await this.#stream(job, reporter, signal);
    if (streamed === 'terminal') return this.#get(job.id, signal);
    reporter.line(`event stream ${streamed}; polling the job instead`);
    let last = job.status;
    let failures = 0;
    for (;;) {
      let now: GatewayJob;
      try {
        now = await this.#get(job.id, signal);
        failures = 0;
      } catch (err) {
        // 4xx (unknown job, auth) will not heal; connection errors and 5xx may.
        const permanent = err instanceof GatewayApiError && err.status < 500;
        if (signal.aborted || permanent || ++failures >= MAX_POLL_FAILURES) throw err;
        reporter.line(`polling job ${job.id} failed (${(err as Error).message}); retrying`);
        await delay(POLL_INTERVAL_MS * failures, undefined, { signal });
        continue;
      }
      if (now.status !== last && !TERMINAL.has(now.status))
        reporter.line(`job ${now.id} ${describeStatus(now)}`);
      last = now.status;
      if (TERMINAL.has(now.status)) return now;
      await delay(POLL_INTERVAL_MS, undefined, { signal });
    }
  }

  /** Reads the events stream; returns 'terminal' or why it gave up. Aborts propagate. */
  async #stream(job: GatewayJob, reporter: Reporter, signal: AbortSignal): Promise<string> {
    const url = job.urls?.events ?? `${this.#api.base}/api/v2/jobs/${encodeURIComponent(job.id)}/events`;
    let res: Response;
    try {
      res = await fetch(url, { headers: { ...this.#api.headers, accept: 'text/event-stream' }, signal });
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      return `unavailable (${(err as Error).message})`;
    }
    if (res.status !== 200 || !res.body) {
      const text = await res.text().catch(() => '');
      return `refused (${new GatewayApiError('GET events', res.status, text).message})`;
    }
    let lastStatus = job.status;
    try {
      for await (const frame of readSseJson(res.body as AsyncIterable<Uint8Array>)) {
        const data = frame.data;
        if (frame.event === 'status' && typeof data.status === 'string') {
          // The terminal status is reported by the summary or the error.
          if (data.status !== lastStatus && !TERMINAL.has(data.status)) {
            // The gateway's own status event; every field describeStatus reads beyond `status` is optional.
            reporter.line(`job ${job.id} ${describeStatus(data as unknown as GatewayJob)}`);
            lastStatus = data.status;
          }
          if (TERMINAL.has(data.status)) return 'terminal';
        } else if (frame.event === 'progress') {
          showProgress(reporter, data);
        }
      }
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      return `broke (${(err as Error).message})`;
    } finally {
      // Leaving the loop early (terminal status) must release the connection.
      await res.body.cancel().catch(() => {});
    }
    return 'ended before the job finished';
  }

  async #get(id: string, signal: AbortSignal): Promise<GatewayJob> {
    return this.#api.json<GatewayJob>('GET job', `${this.#api.base}/api/v2/jobs/${encodeURIComponent(id)}`, {
      signal,
    });
  }

  /** Cancels after a deadline or Ctrl-C (own bound: the run's signal has already fired). */
  async #cancel(job: GatewayJob, reporter: Reporter): Promise<void> {
    reporter.done();
    const url = job.urls?.cancel ?? `${this.#api.base}/api/v2/jobs/${encodeURIComponent(job.id)}/cancel`;
    try {
      const after = await this.#api.json<GatewayJob>('POST cancel', url, {
        method: 'POST',
        signal: AbortSignal.timeout(CANCEL_TIMEOUT_MS),
      });
      reporter.line(`job ${job.id} cancel requested: ${after.status}`);
    } catch (err) {
      reporter.line(`job ${job.id}: cancel failed (${(err as Error).message}); it may still run`);
    }
  }

  /** Streams every output to disk, a few at a time; the first failure stops the rest. */
  async #download(job: GatewayJob, outDir: string, signal: AbortSignal): Promise<string[]> {
    const outputs = job.outputs ?? [];
    const saved: string[] = [];
    if (outputs.length === 0) return saved;
    await mkdir(outDir, { recursive: true });
    const failure = new AbortController();
    const both = AbortSignal.any([signal, failure.signal]);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < outputs.length && !both.aborted) {
        const output = outputs[next++];
        if (!output) continue;
        if (!output.url) throw new Error(`output ${output.name} of node ${output.node_id} has no url`);
        const path = safeOutputPath(outDir, {
          filename: output.name,
          subfolder: output.subfolder ?? '',
          type: output.comfy_type ?? 'output',
        });
        await this.#api.download(output.name, output.url, path, both);
        saved.push(path);
      }
    };
    const workers = Array.from({ length: Math.min(DOWNLOAD_CONCURRENCY, outputs.length) }, () =>
      worker().catch((err: unknown) => {
        failure.abort(err);
        throw err;
      }),
    );
    const settled = await Promise.allSettled(workers);
    const rejected = settled.find((s) => s.status === 'rejected');
    if (rejected) throw failure.signal.aborted ? failure.signal.reason : rejected.reason;
    return saved;
  }
}

/** `queued (position 2)`, `running on gpu-1:8188`, … */
function describeStatus(job: Pick<GatewayJob, 'status' | 'queue_position' | 'instance_id'>): string {
  if (job.status === 'queued' && typeof job.queue_position === 'number')
    return `queued (position ${job.queue_position})`;
  if (job.status === 'running' && job.instance_id) return `running on ${job.instance_id}`;
  return job.status;
}

/** Feeds a v2 progress snapshot to the reporter. */
function showProgress(reporter: Reporter, p: Record<string, unknown>): void {
  if (typeof p.nodes_total === 'number') reporter.setNodeCount(p.nodes_total);
  const done = typeof p.nodes_done === 'number' ? p.nodes_done : undefined;
  if (typeof p.current_node === 'string') {
    const cls = typeof p.current_node_class === 'string' ? p.current_node_class : '?';
    reporter.nodeStarted(p.current_node, cls, done);
  }
  if (typeof p.step === 'number' && typeof p.steps === 'number' && p.steps > 0)
    reporter.step(p.step, p.steps);
}

/** Summary lines of a finished job: metrics, where it ran, texts. */
function jobDetails(job: GatewayJob): string[] {
  const details = [
    `queue wait ${fmtMs(job.metrics?.queue_ms)}, execution ${fmtMs(job.metrics?.execution_ms)}`,
  ];
  const attempts = job.attempts?.length ?? 0;
  if (job.instance_id)
    details.push(`ran on ${job.instance_id}${attempts > 1 ? ` (after ${attempts} attempts)` : ''}`);
  for (const a of job.attempts ?? []) {
    if (a.error)
      details.push(`attempt ${a.n} on ${a.instance_id ?? '?'} failed: ${a.error.code}: ${a.error.message}`);
  }
  for (const t of job.texts ?? []) details.push(`text: ${typeof t === 'string' ? t : JSON.stringify(t)}`);
  return details;
}
