// POST /prompt_sync: the serverless-handler shape. It creates an ordinary job (so it can also be
// polled, streamed and listed), waits for it, and answers `{prompt_id, status, execution_time,
// outputs, images?, node_errors}` or `{error, detail, prompt_id, node_errors, timestamp}`.
// `timeout` (body or `?timeout=`) bounds the whole call, queueing included; with no healthy instance
// able to run the workflow it answers 503 at once. A client that disconnects does not cancel the
// job; shutdown hands the job back by id.
import { Readable } from 'node:stream';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import {
  isTerminal,
  type JobManager,
  type JobRecord,
  type PoolLike,
  type PrepareOptions,
  prepareWorkflow,
  scopedSignal,
} from '../jobs/index.ts';
import { renderError } from './errors.ts';
import { jsonSource } from './json-source.ts';
import { replySignal } from './jobs.ts';
import { originOf } from './render.ts';
import { promptSyncBody, promptSyncQuery } from './schemas.ts';
import { zodRoute } from './zod.ts';

/** Options of the prompt_sync plugin. */
export interface PromptSyncRoutesOptions {
  manager: JobManager;
  pool: PoolLike;
  prepare: PrepareOptions;
  jobTimeoutMs: number;
  maxInlineBytes: number;
  publicUrl?: string;
  /** Aborted when the gateway starts shutting down: waiting requests are answered with their job. */
  shutdownSignal: AbortSignal;
}

interface SyncImage {
  node_id: string;
  filename: string;
  subfolder: string;
  type: string;
  content_type: string;
  data?: string;
  url?: string;
}

/** Fastify plugin: POST /prompt_sync. */
export const promptSyncRoutes: FastifyPluginAsync<PromptSyncRoutesOptions> = async (app, options) => {
  const { manager, pool, prepare, jobTimeoutMs, maxInlineBytes, publicUrl, shutdownSignal } = options;

  const fail = (
    reply: FastifyReply,
    status: number,
    error: string,
    detail: string,
    job?: JobRecord,
    nodeErrors = {},
  ) =>
    reply.code(status).send({
      error,
      detail,
      prompt_id: job?.id ?? null,
      node_errors: nodeErrors,
      timestamp: new Date().toISOString(),
      ...(job ? { status: job.status, job_url: `/api/v2/jobs/${job.id}`, ...failureContext(job) } : {}),
    });

  app.post(
    '/prompt_sync',
    {
      ...zodRoute({
        body: promptSyncBody,
        querystring: promptSyncQuery,
        summary: 'Run a prompt and wait for its result (serverless handler shape)',
        tags: ['compat'],
        operationId: 'promptSync',
      }),
      // This route keeps its historical error shape instead of the v2 envelope.
      errorHandler: (err, request, reply) => {
        const rendered = renderError(err);
        if (rendered.status >= 500) request.log.error({ err }, 'prompt_sync failed');
        if (rendered.retryAfter !== undefined) reply.header('retry-after', String(rendered.retryAfter));
        const nodeErrors = (rendered.details?.node_errors as Record<string, unknown> | undefined) ?? {};
        // ComfyUI's validation answer keeps this route's historical 400, as when an instance rejects it.
        const status =
          rendered.code === 'invalid_workflow' && rendered.details?.node_errors ? 400 : rendered.status;
        return fail(reply, status, rendered.code, rendered.message, undefined, nodeErrors);
      },
    },
    async (request, reply) => {
      const startedAt = Date.now();
      const body = request.body as import('zod').infer<typeof promptSyncBody>;
      const query = request.query as import('zod').infer<typeof promptSyncQuery>;
      const seconds = body.timeout ?? query.timeout;
      const timeoutMs = seconds !== undefined ? Math.max(1, Math.round(seconds * 1000)) : jobTimeoutMs;
      // The deadline counts from the request's arrival: preparation (UI conversion) is part of the call.
      const deadline = startedAt + timeoutMs;
      // The conversion's own deadline is the pool's; the call's deadline applies once the job exists.
      const workflow = await prepareWorkflow(body.prompt, body.overrides, prepare, {
        source: jsonSource(request, 'prompt'),
      });
      const created = await manager.create({
        workflow,
        sync: true,
        ...(body.priority !== undefined ? { priority: body.priority } : {}),
        request: {
          timeout_ms: timeoutMs,
          deadline_at: deadline,
          ...(body.inputs ? { inputs: body.inputs } : {}),
          ...(body.webhook_url ? { webhook_url: body.webhook_url } : {}),
          request_id: request.id,
          source: 'prompt_sync',
        },
      });
      // The job ends by its deadline (failed with timeout); the small margin lets that land first.
      const scope = scopedSignal(
        [replySignal(reply), shutdownSignal],
        Math.max(0, deadline - Date.now()) + SETTLE_MARGIN_MS,
      );
      let job: JobRecord;
      try {
        job = await manager.waitForTerminal(created.id, scope.signal);
      } finally {
        scope.dispose();
      }
      if (reply.raw.destroyed) return reply;
      if (!isTerminal(job.status) && !shutdownSignal.aborted) {
        reply.header('location', `/api/v2/jobs/${job.id}`);
        return fail(
          reply,
          504,
          'timeout',
          'The job did not end within its timeout; poll it by prompt_id.',
          job,
        );
      }
      if (!isTerminal(job.status)) {
        reply.header('location', `/api/v2/jobs/${job.id}`);
        return fail(
          reply,
          503,
          'not_finished',
          'The gateway is shutting down; the job continues, poll it by id.',
          job,
        );
      }
      if (job.status === 'succeeded') {
        const images = body.return_image_base64
          ? await inlineImages(job, pool, maxInlineBytes, AbortSignal.timeout(60_000))
          : undefined;
        const origin = originOf(request, publicUrl);
        return reply.code(200).send({
          prompt_id: job.id,
          status: 'success',
          execution_time: (job.execution_ms ?? 0) / 1000,
          outputs: historyOutputs(job),
          ...(images ? { images } : {}),
          output_urls: job.outputs.map((o) => (o.url.startsWith('/') ? origin + o.url : o.url)),
          node_errors: {},
        });
      }
      const error = job.error;
      if (job.status === 'canceled') return fail(reply, 409, 'canceled', 'The job was canceled.', job);
      if (error?.code === 'invalid_workflow') {
        return fail(reply, 400, 'invalid_workflow', error.message, job, error.details?.node_errors ?? {});
      }
      if (error?.code === 'timeout') return fail(reply, 504, 'timeout', error.message, job);
      const status = error?.code === 'node_execution_error' ? 500 : 502;
      return fail(reply, status, error?.code ?? 'failed', error?.message ?? 'The job failed.', job);
    },
  );
};

/** How long past its deadline the call waits for the job's timeout to land before answering 504. */
const SETTLE_MARGIN_MS = 2000;

/**
 * What a failed job knows, for the error answer: the failing node, its class, the exception, the
 * traceback, and the outputs other branches produced before it failed (partial results).
 */
function failureContext(job: JobRecord): Record<string, unknown> {
  const error = job.error;
  const exceptionType = error?.details?.exception_type;
  return {
    ...(error?.node_id ? { node_id: error.node_id } : {}),
    ...(error?.class_type ? { class_type: error.class_type } : {}),
    ...(typeof exceptionType === 'string' ? { exception_type: exceptionType } : {}),
    ...(error?.code === 'node_execution_error' ? { exception_message: error.message } : {}),
    ...(error?.traceback ? { traceback: error.traceback } : {}),
    ...(job.outputs.length > 0 ? { outputs: historyOutputs(job) } : {}),
  };
}

/** ComfyUI-history-like outputs `{node_id: {images: [{filename, subfolder, type}], text?: [...]}}`. */
function historyOutputs(job: JobRecord): Record<string, Record<string, unknown[]>> {
  const out: Record<string, Record<string, unknown[]>> = {};
  const add = (nodeId: string, key: string, item: unknown) => {
    const node = out[nodeId] ?? {};
    out[nodeId] = node;
    const list = node[key] ?? [];
    node[key] = list;
    list.push(item);
  };
  job.output_sources.forEach((source, index) => {
    const output = job.outputs[index];
    if (!output) return;
    const key = output.type === 'image' ? 'images' : output.type === 'video' ? 'gifs' : output.type;
    add(output.node_id, key, { filename: source.filename, subfolder: source.subfolder, type: source.type });
  });
  for (const text of job.texts) add(text.node_id, 'text', text.text);
  return out;
}

/** Reads image outputs into base64 until `budget` bytes; the rest get a URL instead. */
async function inlineImages(
  job: JobRecord,
  pool: PoolLike,
  budget: number,
  signal: AbortSignal,
): Promise<SyncImage[]> {
  const images: SyncImage[] = [];
  let remaining = budget;
  for (const [index, source] of job.output_sources.entries()) {
    const output = job.outputs[index];
    if (output?.type !== 'image') continue;
    const image: SyncImage = {
      node_id: output.node_id,
      filename: source.filename,
      subfolder: source.subfolder,
      type: source.type,
      content_type: output.content_type,
    };
    const client = pool.client(source.instanceId);
    if (client && remaining > 0) {
      const res = await client.view(source, { signal });
      const stream =
        res.body instanceof ReadableStream
          ? Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>)
          : (res.body as Readable);
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of stream) {
        size += (chunk as Buffer).length;
        if (size > remaining) break;
        chunks.push(chunk as Buffer);
      }
      if (size <= remaining && res.status === 200) {
        remaining -= size;
        image.data = Buffer.concat(chunks).toString('base64');
      } else {
        stream.destroy();
      }
    }
    if (image.data === undefined) image.url = output.url;
    images.push(image);
  }
  return images;
}
