// v2 job routes: submit (with Idempotency-Key and ?wait), get, list, cancel and workflow.
// Thin: validate, call the JobManager, render.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import {
  type ApiPrompt,
  decodeCursor,
  IdempotencyKeyReuseError,
  InvalidRequestError,
  type JobManager,
  type JobStatus,
  type PrepareOptions,
  prepareWorkflow,
  scopedSignal,
} from '../jobs/index.ts';
import { hintsFromWorkflow, type JobModelsLike, type ModelHint } from './job-models.ts';
import { jsonSource } from './json-source.ts';
import { originOf, renderJob } from './render.ts';
import {
  errorSchema,
  jobIdParams,
  jobSchema,
  listJobsQuery,
  type SubmitJobBody,
  submitJobBody,
  submitJobQuery,
} from './schemas.ts';
import { zodRoute } from './zod.ts';

/** Options of the jobs plugin. */
export interface JobRoutesOptions {
  manager: JobManager;
  prepare: PrepareOptions;
  /** The models step of submission (model-aware routing, provisioning, 422 model_missing). */
  models?: JobModelsLike;
  publicUrl?: string;
  /** Ends `?wait` early at shutdown. */
  shutdownSignal?: AbortSignal;
}

const TAGS = ['jobs'];

const CLIENT_GONE = Object.freeze(new Error('the client closed the connection'));

/** Aborts when the client goes away before the reply is sent (scoped wait for ?wait and sync). */
export function replySignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  const raw = reply.raw;
  // Only a response that did not finish means the client left; a preallocated reason avoids
  // building a DOMException (with its stack) on every request.
  raw.once('close', () => {
    if (!raw.writableFinished) controller.abort(CLIENT_GONE);
  });
  return controller.signal;
}

/** Fastify plugin: the /api/v2/jobs resource. */
export const jobRoutes: FastifyPluginAsync<JobRoutesOptions> = async (
  app,
  { manager, prepare, publicUrl, shutdownSignal, models },
) => {
  app.post(
    '/api/v2/jobs',
    zodRoute({
      body: submitJobBody,
      querystring: submitJobQuery,
      response: { 201: jobSchema, 400: errorSchema, 422: errorSchema, 429: errorSchema },
      summary: 'Submit a workflow as a job',
      description:
        'Creates a durable job (201). Idempotency-Key is single-use (v2 §11). Extensions: UI-format workflows, webhook_url, overrides, inputs, output, timeout_ms, priority, metadata, ?wait=.',
      tags: TAGS,
      operationId: 'postJobs',
    }),
    async (request, reply) => {
      const body = request.body as SubmitJobBody;
      const query = request.query as { wait?: number };
      return createJob({ manager, publicUrl, shutdownSignal, models }, request, reply, {
        prepare: async () => ({
          // No signal: the pool's own deadline bounds the conversion, and its close() at shutdown
          // answers shutting_down (an aborted signal would surface as a bare abort error).
          workflow: await prepareWorkflow(body.workflow, body.overrides, prepare, {
            source: jsonSource(request, 'workflow'),
          }),
        }),
        options: body,
        modelHints: [...hintsFromWorkflow(body.workflow), ...(body.models ?? [])],
        ...(query.wait !== undefined ? { wait: query.wait } : {}),
      });
    },
  );

  app.get(
    '/api/v2/jobs',
    zodRoute({
      querystring: listJobsQuery,
      summary: 'List jobs, newest first (extension)',
      description: 'Cursor pagination: pass `next_cursor` as `cursor` for the next page.',
      tags: TAGS,
      operationId: 'listJobs',
    }),
    async (request) => {
      const q = request.query as { status?: JobStatus[]; limit: number; cursor?: string };
      if (q.cursor && !decodeCursor(q.cursor)) {
        throw new InvalidRequestError('query.cursor: not a cursor this server issued');
      }
      const page = await manager.fetchPage({
        limit: q.limit,
        ...(q.status ? { statuses: q.status } : {}),
        cursor: q.cursor ?? null,
      });
      const origin = originOf(request, publicUrl);
      const positions = await Promise.all(page.jobs.map((j) => manager.queuePositionOf(j)));
      return {
        jobs: page.jobs.map((j, i) => renderJob(j, origin, positions[i] ?? null, manager.liveInfo(j))),
        next_cursor: page.nextCursor,
        has_more: page.nextCursor !== null,
      };
    },
  );

  app.get(
    '/api/v2/jobs/:id',
    zodRoute({
      params: jobIdParams,
      response: { 200: jobSchema, 404: errorSchema },
      summary: 'Get a job (the authoritative poll)',
      tags: TAGS,
      operationId: 'getJob',
    }),
    async (request) => {
      const { id } = request.params as { id: string };
      const job = await manager.fetch(id);
      const position = await manager.queuePositionOf(job);
      return renderJob(job, originOf(request, publicUrl), position, manager.liveInfo(job));
    },
  );

  app.post(
    '/api/v2/jobs/:id/cancel',
    zodRoute({
      params: jobIdParams,
      response: { 200: jobSchema, 404: errorSchema },
      summary: 'Cancel a job (idempotent)',
      description: 'Returns the job: `canceling` until the interrupt lands, or its terminal state.',
      tags: TAGS,
      operationId: 'cancelJob',
    }),
    async (request) => {
      const { id } = request.params as { id: string };
      const job = await manager.requestCancel(id);
      request.log.info({ job_id: id, status: job.status }, 'job cancel requested');
      return renderJob(job, originOf(request, publicUrl), manager.queuePosition(id), manager.liveInfo(job));
    },
  );

  app.get(
    '/api/v2/jobs/:id/workflow',
    zodRoute({
      params: jobIdParams,
      summary: 'The executed API-format workflow of a job',
      tags: TAGS,
      operationId: 'getJobWorkflow',
    }),
    async (request) => {
      const { id } = request.params as { id: string };
      return { workflow: (await manager.fetch(id)).workflow, format: 'api' };
    },
  );
};

/** What a route needs to create jobs the v2 way. */
export interface JobCreateContext {
  manager: JobManager;
  publicUrl?: string | undefined;
  /** Ends `?wait` early at shutdown. */
  shutdownSignal?: AbortSignal | undefined;
  /** The models step of submission; absent = no model checks. */
  models?: JobModelsLike | undefined;
}

/** The job options of a submit body (everything but the workflow itself). */
export type JobSubmitOptions = Omit<SubmitJobBody, 'workflow' | 'overrides'>;

/** A prepared workflow, with file inputs the preparation derived (merged over the body's `inputs`). */
export interface PreparedJob {
  workflow: ApiPrompt;
  inputs?: Record<string, string>;
  /** The named workflow it came from (recorded as the job's `request.name`). */
  name?: string;
}

/**
 * The one job-creation path of every route that runs something (/api/v2/jobs, /v1/workflows):
 * Idempotency-Key (checked before `prepare`, v2 §11), submit, `?wait`, 201 with the v2 Job.
 */
export async function createJob(
  ctx: JobCreateContext,
  request: FastifyRequest,
  reply: FastifyReply,
  input: {
    prepare: () => Promise<PreparedJob>;
    options: JobSubmitOptions;
    wait?: number;
    /** Where the workflow's models come from (UI workflow `models`, the request's `models`). */
    modelHints?: ModelHint[];
  },
): Promise<FastifyReply> {
  const { manager, publicUrl, shutdownSignal } = ctx;
  const body = input.options;
  const key = idempotencyKey(request.headers['idempotency-key']);
  if (key && manager.hasIdempotencyKey(key)) throw new IdempotencyKeyReuseError();
  if (body.webhook_url) manager.checkWebhookUrl(body.webhook_url);
  const { workflow, inputs: derived, name } = await input.prepare();
  const inputs = derived ? { ...body.inputs, ...derived } : body.inputs;
  const wait = input.wait !== undefined && input.wait > 0 ? input.wait : 0;
  // The models it loads: routed to instances listing them, downloaded first, or 422 model_missing.
  const models = ctx.models ? await ctx.models.plan(workflow, input.modelHints ?? []) : null;
  let job = manager.submit({
    workflow,
    // A caller that waits gets 503 at once when no healthy instance can run it (async ones queue).
    ...(wait > 0 ? { sync: true } : {}),
    ...(body.priority !== undefined ? { priority: body.priority } : {}),
    idempotencyKey: key,
    request: {
      ...(inputs && Object.keys(inputs).length ? { inputs } : {}),
      ...(body.output ? { output: body.output } : {}),
      ...(body.webhook_url ? { webhook_url: body.webhook_url } : {}),
      ...(body.webhook_events?.length ? { webhook_events: [...new Set(body.webhook_events)] } : {}),
      ...(body.timeout_ms ? { timeout_ms: body.timeout_ms } : {}),
      ...(body.metadata !== undefined ? { metadata: body.metadata } : {}),
      request_id: request.id,
      source: 'v2',
      ...(name !== undefined ? { name } : {}),
      ...(models?.models.length ? { models: models.models } : {}),
    },
    ...(body.extra_data ? { extraData: body.extra_data } : {}),
    ...(models?.provision ? { provision: models.provision } : {}),
  });
  const origin = originOf(request, publicUrl);
  // v2: a 201 means the job is recorded and queued. The body is the Job as created: the prompt may
  // already be running by the time the commit lands. A waiting caller gets it as the wait left it
  // (rendered then only: a body held for the whole wait would only add to every GC's work).
  const created =
    wait > 0 ? null : renderJob(job, origin, manager.queuePosition(job.id), manager.liveInfo(job));
  await manager.durable();
  // In a fleet a job that does not wait here waits in the shared queue once recorded: its place there.
  if (created?.status === 'queued' && created.queue_position === null)
    created.queue_position = await manager.queuePositionOf(job);
  request.log.info({ job_id: job.id, idempotency_key: key }, 'job created');
  if (wait > 0) {
    const scope = scopedSignal([replySignal(reply), shutdownSignal], wait * 1000);
    try {
      job = await manager.waitForTerminal(job.id, scope.signal);
    } finally {
      scope.dispose();
    }
  }
  const rendered =
    created ?? renderJob(job, origin, await manager.queuePositionOf(job), manager.liveInfo(job));
  return reply.code(201).header('location', `/api/v2/jobs/${job.id}`).send(rendered);
}

/** Validates the Idempotency-Key header (1–255 visible characters). */
export function idempotencyKey(raw: string | string[] | undefined): string | null {
  if (raw === undefined) return null;
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (value === undefined || value.trim() === '' || value.length > 255) {
    throw new InvalidRequestError('Idempotency-Key must be 1 to 255 characters.');
  }
  return value.trim();
}
