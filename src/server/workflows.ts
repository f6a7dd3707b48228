// /v1/workflows: every template of the WorkflowRegistry as a typed endpoint that creates a v2 job
// through the same path as /api/v2/jobs (createJob), plus listing with parameter JSON Schemas.
// Templates change at run time, so there is one parametric route; OpenAPI gets one concrete path
// per template (`POST /v1/workflows/invert`, its own request schema), kept current on every change.
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { GatewayError } from '../errors.ts';
import { type JobManager, type PrepareOptions, prepareWorkflow } from '../jobs/index.ts';
import {
  applyTemplate,
  type ConversionIssue,
  type NodeDefs,
  TemplateError,
  TemplateParamsError,
  type TemplateEntry,
  type TemplateLoadError,
  type WorkflowRegistry,
  type WorkflowTemplate,
} from '../workflow/index.ts';
import type { JobModelsLike } from './job-models.ts';
import { createJob, type PreparedJob } from './jobs.ts';
import { type DocsOut, LiveDocs } from './live-docs.ts';
import { originOf } from './render.ts';
import { errorSchema, jobSchema, submitJobBody, submitJobQuery } from './schemas.ts';
import { jsonSchemaOf, zodRoute } from './zod.ts';

/** Options of the workflows plugin. */
export interface WorkflowRoutesOptions {
  registry: WorkflowRegistry;
  manager: JobManager;
  prepare: PrepareOptions;
  publicUrl?: string;
  /** Ends `?wait` early at shutdown. */
  shutdownSignal?: AbortSignal;
  /** The models step of submission; absent = no model checks. */
  models?: JobModelsLike;
}

/** No template of that name is loaded (404, `not_found`). */
export class WorkflowNotFoundError extends GatewayError {
  constructor(name: string, broken?: TemplateLoadError) {
    super(
      'not_found',
      404,
      broken
        ? `Workflow template "${name}" failed to load: ${broken.message}`
        : `No workflow template named "${name}".`,
      { details: broken ? { template_error: broken } : null },
    );
  }
}

/** Request parameters fail the template's declaration (422, `invalid_parameters`); each issue names its parameter. */
export class InvalidParametersError extends GatewayError {
  constructor(template: string, issues: ConversionIssue[]) {
    const named = issues.map((i) => ({
      parameter: typeof i.parameter === 'string' ? i.parameter : null,
      code: i.code,
      message: i.message,
    }));
    super(
      'invalid_parameters',
      422,
      `Invalid parameters for "${template}": ${named.map((i) => i.message).join('; ')}`,
      { details: { template, issues: named } },
    );
  }
}

/** Body of POST /v1/workflows/{name}: the template's parameters plus the v2 job options. */
export const runWorkflowBody = submitJobBody
  .pick({ webhook_url: true, output: true, timeout_ms: true, priority: true, metadata: true, models: true })
  .extend({
    parameters: z
      .record(z.string(), z.unknown())
      .optional()
      .describe(
        "The template's parameters by name; each template's own schema is under its concrete path and in GET /v1/workflows.",
      ),
  })
  .strict();
type RunWorkflowBody = z.infer<typeof runWorkflowBody>;

const nameParams = z.object({ name: z.string().min(1).max(64) });

const loadError = z.object({
  file: z.string(),
  name: z.string(),
  code: z.string(),
  message: z.string(),
  issues: z.array(z.record(z.string(), z.unknown())),
});

/** One template as GET /v1/workflows describes it. */
const workflowSchema = z.object({
  name: z.string(),
  description: z.string(),
  url: z.string().describe('POST here to run it.'),
  file: z.string().describe('Declaration file in WORKFLOWS_DIR.'),
  format: z.enum(['api', 'ui']),
  parameters: z.record(z.string(), z.unknown()).describe('JSON Schema of the `parameters` object.'),
  loaded_at: z.string(),
  warnings: z.array(z.object({ code: z.string(), message: z.string() })),
});
const TAGS = ['workflows'];
const RESOLVABLE = /^(https?:\/\/|s3:\/\/|data:|asset:)/i;

/** Fastify plugin: the /v1/workflows resource. */
export const workflowRoutes: FastifyPluginAsync<WorkflowRoutesOptions> = async (app, options) => {
  const { registry, manager, prepare, publicUrl, shutdownSignal, models } = options;
  const docs = new LiveDocs(registry, (out) => writeTemplateDocs(registry, out));
  docs.follow(app);

  app.get(
    '/v1/workflows',
    zodRoute({
      response: { 200: z.object({ workflows: z.array(workflowSchema), errors: z.array(loadError) }) },
      summary: 'List the workflow templates and the files that failed to load',
      description:
        'Each template with the JSON Schema of its `parameters`. Templates are files in WORKFLOWS_DIR, reloaded on change.',
      tags: TAGS,
      operationId: 'listWorkflows',
    }),
    async (request) => {
      const origin = originOf(request, publicUrl);
      return {
        workflows: registry
          .list()
          .sort((a, b) => a.name.localeCompare(b.name))
          .map((e) => describeEntry(e, origin)),
        errors: registry.errors(),
      };
    },
  );

  app.get(
    '/v1/workflows/:name',
    zodRoute({
      params: nameParams,
      response: { 200: workflowSchema, 404: errorSchema },
      summary: 'One workflow template with its parameter schema',
      tags: TAGS,
      operationId: 'getWorkflow',
    }),
    async (request) => {
      const { name } = request.params as { name: string };
      return describeEntry(requireEntry(registry, name), originOf(request, publicUrl));
    },
  );

  app.post(
    '/v1/workflows/:name',
    {
      ...zodRoute({
        params: nameParams,
        // No body at all is fine when every parameter is optional.
        body: z.preprocess((v) => v ?? {}, runWorkflowBody),
        querystring: submitJobQuery,
        response: { 201: jobSchema, 400: errorSchema, 404: errorSchema, 422: errorSchema, 429: errorSchema },
        summary: 'Run a workflow template as a job',
        description:
          'Creates a v2 job (201) from the template and `parameters`, exactly like POST /api/v2/jobs (Idempotency-Key, ?wait=, webhook_url, output). Each template also has its own path with its parameter schema.',
        tags: TAGS,
        operationId: 'runWorkflow',
      }),
      config: docs.routeConfig(),
    },
    async (request, reply) => {
      const { name } = request.params as { name: string };
      const entry = requireEntry(registry, name);
      const body = (request.body ?? {}) as RunWorkflowBody;
      const query = request.query as { wait?: number };
      const { parameters, models: modelHints, ...jobOptions } = body;
      return createJob({ manager, publicUrl, shutdownSignal, models }, request, reply, {
        prepare: () => buildJob(request, registry, entry, parameters ?? {}, prepare),
        options: jobOptions,
        modelHints: modelHints ?? [],
        ...(query.wait !== undefined ? { wait: query.wait } : {}),
      });
    },
  );
};

function requireEntry(registry: WorkflowRegistry, name: string): TemplateEntry {
  const entry = registry.get(name);
  if (!entry) throw new WorkflowNotFoundError(name, registry.errorFor(name));
  return entry;
}

/** Applies the parameters, routes file parameters through the job's `inputs`, and runs the v2 checks. */
async function buildJob(
  request: FastifyRequest,
  registry: WorkflowRegistry,
  entry: TemplateEntry,
  parameters: Record<string, unknown>,
  prepare: PrepareOptions,
): Promise<PreparedJob> {
  let template = entry.template;
  if (!template.prompt) {
    if (!prepare.nodeDefs)
      throw new GatewayError(
        'unavailable',
        503,
        'This template is a UI workflow and needs node definitions.',
      );
    const defs = (await prepare.nodeDefs()) as NodeDefs;
    try {
      template = await registry.resolved(entry, defs);
    } catch (err) {
      request.log.error({ err, template: entry.name }, 'UI workflow template failed to convert');
      throw new GatewayError(
        'template_invalid',
        500,
        `Workflow template "${entry.name}" cannot be converted: ${(err as Error).message}`,
      );
    }
  }
  let prompt: ReturnType<typeof applyTemplate>;
  try {
    prompt = applyTemplate(template, parameters);
  } catch (err) {
    if (err instanceof TemplateParamsError) throw new InvalidParametersError(entry.name, err.issues);
    if (err instanceof TemplateError)
      throw new GatewayError('template_invalid', 500, `Workflow template "${entry.name}": ${err.message}`);
    throw err;
  }
  const inputs = fileInputs(template, parameters, prompt);
  const workflow = await prepareWorkflow(prompt, undefined, prepare);
  return { workflow, name: entry.name, ...(Object.keys(inputs).length ? { inputs } : {}) };
}

/**
 * Image parameters that are URLs, data URIs or asset references go through the job's `inputs`
 * map (the runner's InputResolver fetches and uploads them), and the stored workflow keeps the
 * template's own value instead of a copy of a possibly large data URI.
 */
function fileInputs(
  template: WorkflowTemplate,
  parameters: Record<string, unknown>,
  prompt: ReturnType<typeof applyTemplate>,
): Record<string, string> {
  const inputs: Record<string, string> = {};
  const issues: ConversionIssue[] = [];
  for (const [name, p] of Object.entries(template.parameters)) {
    if (p.type !== 'image') continue;
    const value = parameters[name] ?? p.default;
    if (typeof value !== 'string') continue;
    const bad = fileValueProblem(value);
    if (bad) {
      issues.push({
        severity: 'error',
        code: 'param_invalid',
        message: `parameter "${name}": ${bad}`,
        parameter: name,
      });
      continue;
    }
    if (!RESOLVABLE.test(value)) continue;
    for (const t of p.targets) {
      inputs[`${t.node}.${t.input}`] = value;
      const original = template.prompt?.[t.node]?.inputs[t.input];
      const node = prompt[t.node];
      if (node && typeof original === 'string') node.inputs[t.input] = original;
    }
  }
  if (issues.length) throw new InvalidParametersError(template.name, issues);
  return inputs;
}

function fileValueProblem(value: string): string | undefined {
  if (value.trim() === '') return 'expected a URL, data URI, asset:<id> or file name, got an empty string';
  if (/^data:/i.test(value)) {
    return /^data:[\w.+-]+\/[\w.+-]+(;[\w.+-]+=[\w.+-]+)*(;base64)?,/i.test(value)
      ? undefined
      : 'not a valid data URI (expected data:<type>/<subtype>[;base64],<data>)';
  }
  if (/^https?:\/\//i.test(value) && !URL.canParse(value)) return 'not a valid URL';
  if (/[\0\r\n]/.test(value)) return 'a file name cannot contain control characters';
  return undefined;
}

/** The public description of one template. */
function describeEntry(entry: TemplateEntry, origin: string): Record<string, unknown> {
  return {
    name: entry.name,
    description: entry.template.description,
    url: `${origin}/v1/workflows/${encodeURIComponent(entry.name)}`,
    file: entry.file,
    format: entry.format,
    parameters: entry.schema,
    loaded_at: new Date(entry.loadedAt).toISOString(),
    warnings: entry.template.warnings.map((w) => ({ code: w.code, message: w.message })),
  };
}

/** One concrete OpenAPI path per template (`POST /v1/workflows/invert`) with its parameters' schema. */
function writeTemplateDocs(registry: WorkflowRegistry, out: DocsOut): void {
  const entries = registry.list().sort((a, b) => a.name.localeCompare(b.name));
  if (entries.length === 0) return;
  out.schema('workflows.Job', JOB_JSON);
  out.schema('workflows.Error', ERROR_JSON);
  for (const entry of entries) {
    const schemaName = `workflows.${entry.name}.Request`;
    const request = structuredClone(BODY_JSON) as {
      properties: Record<string, unknown>;
      required?: string[];
    };
    request.properties.parameters = entry.schema;
    if (Array.isArray(entry.schema.required) && entry.schema.required.length > 0)
      request.required = ['parameters'];
    out.schema(schemaName, request);
    out.path(`/v1/workflows/${entry.name}`, { post: operation(entry, schemaName) });
  }
}

const JOB_JSON = jsonSchemaOf(jobSchema, 'output');
const ERROR_JSON = jsonSchemaOf(errorSchema, 'output');
const BODY_JSON = jsonSchemaOf(runWorkflowBody);
const WAIT_JSON = (jsonSchemaOf(submitJobQuery) as { properties: Record<string, unknown> }).properties.wait;

function operation(entry: TemplateEntry, schemaName: string): Record<string, unknown> {
  const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
  const error = (description: string) => ({
    description,
    content: { 'application/json': { schema: ref('workflows.Error') } },
  });
  return {
    tags: TAGS,
    operationId: `runWorkflow_${entry.name.replace(/[^A-Za-z0-9_]/g, '_')}`,
    summary: entry.template.description || `Run the "${entry.name}" workflow template`,
    description: `Template \`${entry.name}\` (${entry.file}, ${entry.format} format) as a v2 job: same semantics as POST /api/v2/jobs.`,
    parameters: [
      { in: 'query', name: 'wait', required: false, schema: WAIT_JSON },
      {
        in: 'header',
        name: 'Idempotency-Key',
        required: false,
        schema: { type: 'string', minLength: 1, maxLength: 255 },
      },
    ],
    requestBody: { required: true, content: { 'application/json': { schema: ref(schemaName) } } },
    responses: {
      201: { description: 'The job', content: { 'application/json': { schema: ref('workflows.Job') } } },
      400: error('Malformed body'),
      404: error('No such template (it was removed or failed to load)'),
      422: error('`invalid_parameters` naming each parameter, or `invalid_workflow`'),
      429: error('Queue full'),
    },
  };
}
