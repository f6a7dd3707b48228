// /v1/pipelines (named pipelines of WORKFLOWS_DIR) and /v1/pipeline-runs (runs: create inline,
// get, list, SSE events, cancel). Thin: validate, call the PipelineRunner, render. Runs are
// created like jobs: Idempotency-Key single-use, `?wait=` holds the answer, 201 with the run.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { GatewayError } from '../errors.ts';
import {
  ConversionBusyError,
  type ConvertCall,
  IdempotencyKeyReuseError,
  InvalidRequestError,
  scopedSignal,
} from '../jobs/index.ts';
import {
  decodeRunCursor,
  type IterationRecord,
  isFileRef,
  isoTime,
  isRunTerminal,
  type PipelineDefinition,
  type PipelineEntry,
  type PipelineLoadError,
  type PipelineRegistry,
  type PipelineRun,
  type PipelineRunner,
  RUN_STATUSES,
  type RunEvent,
  type RunStatus,
  type RunView,
  runHead,
} from '../pipelines/index.ts';
import { type ApiPrompt, isUiWorkflow } from '../workflow/index.ts';
import { idempotencyKey, replySignal } from './jobs.ts';
import { jsonSource } from './json-source.ts';
import { type DocsOut, LiveDocs } from './live-docs.ts';
import { originOf } from './render.ts';
import { errorSchema, statusList, submitJobBody, submitJobQuery } from './schemas.ts';
import { EventStreams } from './sse.ts';
import { jsonSchemaOf, zodRoute } from './zod.ts';

/** Options of the pipelines plugin. */
export interface PipelineRoutesOptions {
  runner: PipelineRunner;
  registry: PipelineRegistry;
  /**
   * Loads node definitions and returns a converter of inline UI workflows (the gateway's
   * ConvertPool: large ones off the event loop); absent, or failing, = API format only.
   */
  convertUi?: () => Promise<(ui: unknown, call?: ConvertCall) => Promise<ApiPrompt>>;
  publicUrl?: string;
  shutdownSignal?: AbortSignal;
  maxStreams: number;
  keepaliveMs?: number;
  /** Stores image inputs given as data URIs once per run (see stageDataUriInputs). */
  stageInputs?: (
    inputs: Record<string, unknown>,
    imageInputs: string[],
  ) => Promise<{ inputs: Record<string, unknown>; staged: string[] }>;
  /** Frees staged inputs of a run that was not created. */
  releaseInputs?: (refs: string[]) => Promise<void>;
}

/** No named pipeline of that name (404, `not_found`), with the load error if its file is broken. */
export class PipelineNotFoundError extends GatewayError {
  constructor(name: string, broken?: PipelineLoadError) {
    super(
      'not_found',
      404,
      broken ? `Pipeline "${name}" failed to load: ${broken.message}` : `No pipeline named "${name}".`,
      { details: broken ? { pipeline_error: broken } : null },
    );
  }
}

const runOptions = submitJobBody.pick({
  webhook_url: true,
  output: true,
  timeout_ms: true,
  priority: true,
  metadata: true,
});

/** Body of POST /v1/pipelines/{name}. */
export const runPipelineBody = runOptions
  .extend({
    inputs: z.record(z.string(), z.unknown()).optional().describe("The pipeline's inputs by name."),
  })
  .strict();

/** Body of POST /v1/pipeline-runs. */
export const inlineRunBody = runPipelineBody
  .extend({
    pipeline: z
      .record(z.string(), z.unknown())
      .describe('The pipeline definition (as in a *.pipeline.yaml file): inputs, steps, outputs.'),
  })
  .strict();

const nameParams = z.object({ name: z.string().min(1).max(64) });
const idParams = z.object({ id: z.string().min(1).max(200) });
const listQuery = z.object({
  status: statusList(RUN_STATUSES),
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().max(400).optional(),
});
const runSchema = z
  .object({
    id: z.string(),
    object: z.literal('pipeline_run'),
    pipeline: z.string().nullable(),
    status: z.enum(RUN_STATUSES),
    steps: z.array(z.record(z.string(), z.unknown())),
    outputs: z.record(z.string(), z.unknown()).nullable(),
    error: z.record(z.string(), z.unknown()).nullable(),
  })
  .passthrough();
const TAGS = ['pipelines'];

/** Fastify plugin: named pipelines and pipeline runs. */
export const pipelineRoutes: FastifyPluginAsync<PipelineRoutesOptions> = async (app, options) => {
  const { runner, registry, publicUrl, shutdownSignal, maxStreams, keepaliveMs } = options;

  app.get(
    '/v1/pipelines',
    zodRoute({
      summary: 'List the named pipelines (with their input schemas) and the files that failed to load',
      tags: TAGS,
      operationId: 'listPipelines',
    }),
    async (request) => {
      const origin = originOf(request, publicUrl);
      return {
        pipelines: registry.list().map((e) => describePipeline(e, origin)),
        errors: registry.errors(),
      };
    },
  );

  app.get(
    '/v1/pipelines/:name',
    zodRoute({
      params: nameParams,
      response: { 404: errorSchema },
      summary: 'One named pipeline with its input schema',
      tags: TAGS,
      operationId: 'getPipeline',
    }),
    async (request) => {
      const { name } = request.params as { name: string };
      return describePipeline(requirePipeline(registry, name), originOf(request, publicUrl));
    },
  );

  const docs = new LiveDocs(registry, (out) => writePipelineDocs(registry, out));
  docs.follow(app);

  app.post(
    '/v1/pipelines/:name',
    {
      ...zodRoute({
        params: nameParams,
        body: z.preprocess((v) => v ?? {}, runPipelineBody),
        querystring: submitJobQuery,
        response: { 201: runSchema, 400: errorSchema, 404: errorSchema, 422: errorSchema, 429: errorSchema },
        summary: 'Run a named pipeline',
        description:
          'Creates a durable pipeline run (201). Idempotency-Key is single-use; ?wait=<seconds> holds the answer until the run ends.',
        tags: TAGS,
        operationId: 'runPipeline',
      }),
      config: docs.routeConfig(),
    },
    async (request, reply) => {
      const { name } = request.params as { name: string };
      const entry = requirePipeline(registry, name);
      return createRun(
        request,
        reply,
        () => entry.definition,
        request.body as z.infer<typeof runPipelineBody>,
      );
    },
  );

  app.post(
    '/v1/pipeline-runs',
    zodRoute({
      body: inlineRunBody,
      querystring: submitJobQuery,
      response: { 201: runSchema, 400: errorSchema, 422: errorSchema, 429: errorSchema },
      summary: 'Run an inline pipeline definition',
      description:
        'Validates the definition (422 `invalid_pipeline` with `details.issues[]` = {path, code, message}) and creates a durable run (201).',
      tags: TAGS,
      operationId: 'createPipelineRun',
    }),
    async (request, reply) => {
      const body = request.body as z.infer<typeof inlineRunBody>;
      // Inline UI workflows are converted here, asynchronously (large ones on a worker thread, from
      // the request's own text); the definition's parser then only looks the results up.
      const found = uiWorkflowsIn(body.pipeline);
      const convert =
        found.length > 0 && options.convertUi ? await options.convertUi().catch(() => undefined) : undefined;
      const converted = new Map<unknown, ApiPrompt | Error>();
      for (const { value, path } of convert ? found : []) {
        const result = await (convert as NonNullable<typeof convert>)(value, {
          source: jsonSource(request, 'pipeline', ...path),
        }).catch((err: unknown) => err as Error);
        const code = (result as { code?: unknown }).code;
        if (code === 'conversion_busy' || code === 'conversion_timeout')
          throw new ConversionBusyError((result as Error).message);
        converted.set(value, result);
      }
      const convertUi = (ui: unknown): ApiPrompt => {
        const result = converted.get(ui);
        if (result === undefined) throw new Error('the UI workflow was not converted');
        if (result instanceof Error) throw result;
        return result;
      };
      return createRun(request, reply, () => runner.parse(body.pipeline, convert ? { convertUi } : {}), body);
    },
  );

  app.get(
    '/v1/pipeline-runs',
    zodRoute({
      querystring: listQuery,
      summary: 'List pipeline runs, newest first',
      tags: TAGS,
      operationId: 'listPipelineRuns',
    }),
    async (request) => {
      const q = request.query as { status?: RunStatus[]; limit: number; cursor?: string };
      if (q.cursor && !decodeRunCursor(q.cursor))
        throw new InvalidRequestError('query.cursor: not a cursor this server issued');
      const page = runner.list({
        limit: q.limit,
        ...(q.status ? { statuses: q.status } : {}),
        cursor: q.cursor ?? null,
      });
      const origin = originOf(request, publicUrl);
      return {
        runs: page.runs.map((run) => renderRun({ run, iterations: [] }, origin, false)),
        next_cursor: page.nextCursor,
        has_more: page.nextCursor !== null,
      };
    },
  );

  app.get(
    '/v1/pipeline-runs/:id',
    zodRoute({
      params: idParams,
      response: { 200: runSchema, 404: errorSchema },
      summary: 'A pipeline run: status, steps with their iterations (each a v2 job), outputs, error',
      tags: TAGS,
      operationId: 'getPipelineRun',
    }),
    async (request) => {
      const { id } = request.params as { id: string };
      return renderRun(runner.require(id), originOf(request, publicUrl));
    },
  );

  app.post(
    '/v1/pipeline-runs/:id/cancel',
    zodRoute({
      params: idParams,
      response: { 200: runSchema, 404: errorSchema },
      summary: 'Cancel a pipeline run (idempotent): its running jobs are cancelled, the rest skipped',
      tags: TAGS,
      operationId: 'cancelPipelineRun',
    }),
    async (request) => {
      const { id } = request.params as { id: string };
      const view = runner.cancel(id);
      request.log.info({ run_id: id, status: view.run.status }, 'pipeline run cancel requested');
      return renderRun(view, originOf(request, publicUrl));
    },
  );

  const streams = new EventStreams({ maxStreams, poll: 'run', keepaliveMs, shutdownSignal });
  app.get(
    '/v1/pipeline-runs/:id/events',
    zodRoute({
      params: idParams,
      response: {
        200: {
          description: 'text/event-stream of status, step, iteration and progress events',
          type: 'string',
        },
        404: errorSchema,
        429: errorSchema,
      },
      summary: 'Live events of a pipeline run (SSE)',
      tags: TAGS,
      operationId: 'getPipelineRunEvents',
    }),
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const view = runner.require(id);
      const stream = streams.open(request, reply);
      const origin = originOf(request, publicUrl);
      const finish = () => {
        const latest = runner.get(id);
        if (latest) stream.send('status', { status: latest.run.status, run: renderRun(latest, origin) });
        stream.end();
      };
      if (isRunTerminal(view.run.status)) {
        finish();
        return reply;
      }
      runner.events.subscribe(
        id,
        (event: RunEvent) => {
          if (event.type === 'status' && isRunTerminal(event.data.status)) finish();
          else stream.send(event.type, event.data);
        },
        stream.signal,
      );
      stream.send('status', { status: view.run.status });
      // The picture so far (steps that started, their iterations), then live events.
      for (const step of view.run.steps)
        if (step.status !== 'pending')
          stream.send('step', { step: step.id, status: step.status, iterations: step.iterations });
      for (const i of view.iterations)
        stream.send('iteration', {
          step: i.step,
          n: i.n,
          status: i.status,
          job_id: i.job_id,
          ...(i.error ? { error: i.error } : {}),
        });
      return reply;
    },
  );

  /** The one run-creation path: Idempotency-Key, validation, create, `?wait`, 201. */
  async function createRun(
    request: FastifyRequest,
    reply: FastifyReply,
    definition: () => PipelineDefinition,
    body: z.infer<typeof runPipelineBody>,
  ): Promise<FastifyReply> {
    const key = idempotencyKey(request.headers['idempotency-key']);
    if (key && runner.hasIdempotencyKey(key)) throw new IdempotencyKeyReuseError();
    const parsed = definition();
    let inputs: Record<string, unknown> = body.inputs ?? {};
    let staged: string[] = [];
    const images = Object.entries(parsed.inputs)
      .filter(([, p]) => p.type === 'image')
      .map(([name]) => name);
    if (options.stageInputs && images.length > 0)
      ({ inputs, staged } = await options.stageInputs(inputs, images));
    let run: PipelineRun;
    try {
      run = runner.create({
        definition: parsed,
        inputs,
        staged,
        request: {
          ...(body.webhook_url ? { webhook_url: body.webhook_url } : {}),
          ...(body.output ? { output: body.output } : {}),
          ...(body.timeout_ms ? { timeout_ms: body.timeout_ms } : {}),
          ...(body.priority !== undefined ? { priority: body.priority } : {}),
          ...(body.metadata !== undefined ? { metadata: body.metadata } : {}),
          request_id: request.id,
        },
        idempotencyKey: key,
      });
    } catch (err) {
      if (staged.length > 0) await options.releaseInputs?.(staged).catch(() => {});
      throw err;
    }
    request.log.info({ run_id: run.id, pipeline: run.pipeline }, 'pipeline run created');
    const origin = originOf(request, publicUrl);
    const wait = (request.query as { wait?: number }).wait;
    let view: RunView = { run, iterations: [] };
    if (wait && wait > 0) {
      const scope = scopedSignal([replySignal(reply), shutdownSignal], wait * 1000);
      try {
        view = await runner.waitForTerminal(run.id, scope.signal);
      } finally {
        scope.dispose();
      }
    } else view = runner.get(run.id) ?? view;
    return reply.code(201).header('location', `/v1/pipeline-runs/${run.id}`).send(renderRun(view, origin));
  }
};

/**
 * One concrete OpenAPI path per named pipeline (`POST /v1/pipelines/grow-until-wide`) whose body
 * has that pipeline's `inputs` schema.
 */
function writePipelineDocs(registry: PipelineRegistry, out: DocsOut): void {
  for (const entry of registry.list()) {
    const schemaName = `pipelines.${entry.name}.Request`;
    const body = structuredClone(BODY_JSON) as { properties: Record<string, unknown>; required?: string[] };
    body.properties.inputs = entry.definition.inputSchema;
    const required = entry.definition.inputSchema.required;
    if (Array.isArray(required) && required.length > 0) body.required = ['inputs'];
    out.schema(schemaName, body);
    out.path(`/v1/pipelines/${entry.name}`, {
      post: {
        tags: TAGS,
        operationId: `runPipeline_${entry.name.replace(/[^A-Za-z0-9_]/g, '_')}`,
        summary: entry.definition.description || `Run the "${entry.name}" pipeline`,
        description: `Pipeline \`${entry.name}\` (${entry.file}): ${entry.definition.steps.length} step(s). Creates a durable run (201); same semantics as POST /v1/pipeline-runs.`,
        parameters: [
          {
            in: 'query',
            name: 'wait',
            required: false,
            schema: { type: 'number', minimum: 0, maximum: 600 },
          },
          {
            in: 'header',
            name: 'Idempotency-Key',
            required: false,
            schema: { type: 'string', minLength: 1, maxLength: 255 },
          },
        ],
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { $ref: `#/components/schemas/${schemaName}` } } },
        },
        responses: {
          201: { description: 'The run' },
          404: { description: 'No such pipeline (removed, or its file failed to load)' },
          422: { description: '`invalid_inputs` naming each input' },
          429: { description: 'Too many active runs' },
        },
      },
    });
  }
}

const BODY_JSON = jsonSchemaOf(runPipelineBody);

function requirePipeline(registry: PipelineRegistry, name: string): PipelineEntry {
  const entry = registry.get(name);
  if (!entry) throw new PipelineNotFoundError(name, registry.errorFor(name));
  return entry;
}

function describePipeline(entry: PipelineEntry, origin: string): Record<string, unknown> {
  const d = entry.definition;
  return {
    name: entry.name,
    description: d.description,
    url: `${origin}/v1/pipelines/${encodeURIComponent(entry.name)}`,
    file: entry.file,
    inputs: d.inputSchema,
    steps: d.steps.map((s) => ({
      id: s.id,
      workflow: s.workflow.kind === 'template' ? s.workflow.name : 'inline',
      ...(s.repeat ? { repeat: { max: s.repeat.max } } : {}),
      ...(s.forEach ? { for_each: true, parallel: s.parallel } : {}),
      ...(s.when ? { when: s.when.source } : {}),
    })),
    outputs: Object.keys(d.outputs),
    loaded_at: new Date(entry.loadedAt).toISOString(),
  };
}

/** Makes file references' links absolute, deep in any value. */
function absolutise(value: unknown, origin: string, depth = 0): unknown {
  if (depth > 32 || value === null || typeof value !== 'object') return value;
  if (isFileRef(value)) return value.url.startsWith('/') ? { ...value, url: origin + value.url } : value;
  if (Array.isArray(value)) return value.map((v) => absolutise(v, origin, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = absolutise(v, origin, depth + 1);
  return out;
}

function renderIteration(i: IterationRecord, origin: string): Record<string, unknown> {
  return {
    n: i.n,
    ...(i.item !== undefined ? { item: i.item } : {}),
    status: i.status,
    job_id: i.job_id,
    job_url: i.job_id ? `${origin}/api/v2/jobs/${i.job_id}` : null,
    parameters: absolutise(i.parameters, origin),
    outputs: absolutise(i.outputs, origin),
    error: i.error,
    started_at: isoTime(i.started_at),
    completed_at: isoTime(i.completed_at),
    duration_ms: i.completed_at === null ? null : i.completed_at - i.started_at,
  };
}

/** The public shape of a run. */
export function renderRun(view: RunView, origin: string, withIterations = true): Record<string, unknown> {
  const run: PipelineRun = view.run;
  const self = `${origin}/v1/pipeline-runs/${run.id}`;
  return {
    ...runHead(run),
    expires_at: isoTime(run.expires_at),
    duration_ms:
      run.completed_at !== null && run.started_at !== null ? run.completed_at - run.started_at : null,
    inputs: run.inputs,
    steps: run.steps.map((s) => {
      const its = view.iterations.filter((i) => i.step === s.id);
      return {
        id: s.id,
        status: s.status,
        started_at: isoTime(s.started_at),
        completed_at: isoTime(s.completed_at),
        duration_ms: s.completed_at !== null && s.started_at !== null ? s.completed_at - s.started_at : null,
        iterations_run: s.iterations,
        ...(s.items !== null ? { items: s.items } : {}),
        ...(s.stopped ? { stopped: s.stopped } : {}),
        ...(withIterations ? { iterations: its.map((i) => renderIteration(i, origin)) } : {}),
      };
    }),
    outputs: run.outputs === null ? null : (absolutise(run.outputs, origin) as Record<string, unknown>),
    warnings: run.warnings,
    error: run.error,
    ...(run.request.metadata !== undefined ? { metadata: run.request.metadata } : {}),
    urls: { self, events: `${self}/events`, cancel: `${self}/cancel` },
  };
}

/**
 * Every UI workflow under a `workflow` key of a pipeline definition, with its path from the
 * definition's root. Iterative; never walks into a workflow's own nodes.
 */
function uiWorkflowsIn(definition: unknown): Array<{ value: unknown; path: string[] }> {
  const found: Array<{ value: unknown; path: string[] }> = [];
  const stack: Array<{ value: unknown; path: string[] }> = [{ value: definition, path: [] }];
  while (stack.length > 0) {
    const { value, path } = stack.pop() as { value: unknown; path: string[] };
    if (value === null || typeof value !== 'object') continue;
    for (const [key, child] of Object.entries(value)) {
      if (key === 'workflow') {
        if (isUiWorkflow(child)) found.push({ value: child, path: [...path, key] });
        continue;
      }
      stack.push({ value: child, path: [...path, key] });
    }
  }
  return found;
}
