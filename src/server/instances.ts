// Routes for the instance registry: list, inspect, add at run time, and drain-then-remove
// (`/v1/instances`). Errors are thrown and rendered as the v2 envelope by the app's handler.
import type {} from '@fastify/swagger';
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { GatewayError } from '../errors.ts';
import { InvalidRequestError } from '../jobs/index.ts';
import type { InstanceSnapshot, Pool } from '../pool/index.ts';

/** Options of the instances plugin. */
export interface InstancesRoutesOptions {
  pool: Pool;
}

/** An instance as the HTTP API shows it (snake_case; auth headers are never shown). */
export function instanceToJson(s: InstanceSnapshot): Record<string, unknown> {
  return {
    id: s.id,
    url: s.url,
    state: s.state,
    reason: s.reason ?? null,
    managed: s.managed ?? false,
    weight: s.weight,
    labels: s.labels,
    max_jobs: s.maxJobs,
    running: s.running,
    queued: s.queued,
    comfy_queue_remaining: s.comfyQueueRemaining,
    breaker: s.breaker,
    last_error: s.lastError,
    last_check_at: s.lastCheckAt,
    latency_ms: s.latencyMs,
    memory: s.memory
      ? {
          ram_total: s.memory.ramTotal,
          ram_free: s.memory.ramFree,
          vram_total: s.memory.vramTotal,
          vram_free: s.memory.vramFree,
        }
      : null,
  };
}

const AddInstanceBody = z.strictObject({
  url: z.string().min(1).max(2048),
  id: z.string().min(1).max(128).optional(),
  headers: z.record(z.string().max(256), z.string().max(8192)).optional(),
  weight: z.number().positive().max(1000).optional(),
  labels: z.record(z.string().max(128), z.string().max(1024)).optional(),
  max_jobs: z.number().int().min(1).max(10_000).optional(),
});

const instanceSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    url: { type: 'string' },
    state: { type: 'string', enum: ['starting', 'healthy', 'degraded', 'unhealthy', 'draining'] },
    reason: { type: ['string', 'null'] },
    managed: { type: 'boolean' },
    weight: { type: 'number' },
    labels: { type: 'object', additionalProperties: { type: 'string' } },
    max_jobs: { type: 'integer' },
    running: { type: 'integer' },
    queued: { type: 'integer' },
    comfy_queue_remaining: { type: ['integer', 'null'] },
    breaker: { type: 'string', enum: ['closed', 'open', 'half-open'] },
    last_error: { type: ['string', 'null'] },
    last_check_at: { type: ['string', 'null'], format: 'date-time' },
    latency_ms: { type: ['number', 'null'] },
    memory: {
      type: ['object', 'null'],
      description: 'RAM and first-device VRAM in bytes, from the last health check (/system_stats)',
      properties: {
        ram_total: { type: ['number', 'null'] },
        ram_free: { type: ['number', 'null'] },
        vram_total: { type: ['number', 'null'] },
        vram_free: { type: ['number', 'null'] },
      },
    },
  },
} as const;

const errorSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        details: { type: ['object', 'null'], additionalProperties: true },
      },
    },
  },
} as const;

const unknownInstance = (id: string) => new GatewayError('not_found', 404, `unknown instance '${id}'`);

/** Fastify plugin: `GET/POST /v1/instances`, `GET/DELETE /v1/instances/{id}`. */
export const instancesRoutes: FastifyPluginAsync<InstancesRoutesOptions> = async (app, { pool }) => {
  const idParams = {
    type: 'object',
    required: ['id'],
    properties: { id: { type: 'string', maxLength: 256 } },
  } as const;

  app.get(
    '/v1/instances',
    {
      schema: {
        tags: ['instances'],
        summary: 'List the ComfyUI instances of the pool',
        response: {
          200: { type: 'object', properties: { instances: { type: 'array', items: instanceSchema } } },
        },
      },
    },
    async () => ({ instances: pool.list().map(instanceToJson) }),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/instances/:id',
    {
      schema: {
        tags: ['instances'],
        summary: 'One instance: state, load, breaker and last check',
        params: idParams,
        response: { 200: instanceSchema, 404: errorSchema },
      },
    },
    async (request) => {
      const snapshot = pool.get(request.params.id);
      if (!snapshot) throw unknownInstance(request.params.id);
      return instanceToJson(snapshot);
    },
  );

  app.post(
    '/v1/instances',
    {
      schema: {
        tags: ['instances'],
        summary: 'Add a ComfyUI instance at run time (answers after its first health check)',
        body: {
          type: 'object',
          required: ['url'],
          properties: {
            url: { type: 'string' },
            id: { type: 'string' },
            headers: { type: 'object', additionalProperties: { type: 'string' } },
            weight: { type: 'number' },
            labels: { type: 'object', additionalProperties: { type: 'string' } },
            max_jobs: { type: 'integer' },
          },
        },
        response: { 201: instanceSchema, 400: errorSchema, 409: errorSchema, 422: errorSchema },
      },
      // zod gives the precise messages; the JSON schema above is for OpenAPI only.
      validatorCompiler: () => (data) => ({ value: data }),
    },
    async (request, reply) => {
      const parsed = AddInstanceBody.safeParse(request.body);
      if (!parsed.success) {
        throw new InvalidRequestError('invalid instance', {
          issues: parsed.error.issues.map((issue) => ({
            path: issue.path.join('.'),
            message: issue.message,
          })),
        });
      }
      const body = parsed.data;
      // The pool's errors carry their status (404, 409, 422, 503); the app's handler renders them.
      const snapshot = await pool.add({
        url: body.url,
        ...(body.id !== undefined && { id: body.id }),
        ...(body.headers !== undefined && { headers: body.headers }),
        ...(body.weight !== undefined && { weight: body.weight }),
        ...(body.labels !== undefined && { labels: body.labels }),
        ...(body.max_jobs !== undefined && { maxJobs: body.max_jobs }),
      });
      return reply
        .code(201)
        .header('location', `/v1/instances/${encodeURIComponent(snapshot.id)}`)
        .send(instanceToJson(snapshot));
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/instances/:id',
    {
      schema: {
        tags: ['instances'],
        summary: 'Drain an instance (no new jobs, running ones finish) and then remove it',
        params: idParams,
        response: { 202: instanceSchema, 404: errorSchema },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const before = pool.get(id);
      if (!before) throw unknownInstance(id);
      pool.drain(id).catch((error: unknown) => {
        request.log.warn({ err: error, instance: id }, 'drain did not complete');
      });
      return reply.code(202).send(instanceToJson(pool.get(id) ?? { ...before, state: 'draining' }));
    },
  );
};
