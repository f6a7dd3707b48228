// The /v1/models resource: model downloads (start/join, list, get, cancel, SSE progress), the
// models each instance has, and the stored source map. Thin: parses, calls ModelDownloads, renders.
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import {
  isFinished,
  MODEL_FOLDERS,
  type ModelDownloads,
  ModelsError,
  type ModelSource,
  renderTask,
} from '../models/index.ts';
import { errorSchema } from './schemas.ts';
import { EventStreams } from './sse.ts';
import { zodRoute } from './zod.ts';

/** What GET /v1/models lists: per folder, each model and where it is. */
export interface ModelInventory {
  folders: Record<string, Array<{ name: string; instances: string[]; size?: number; sha256?: string }>>;
}

/** Options of the models plugin. */
export interface ModelRoutesOptions {
  downloads: ModelDownloads;
  /** The source map (name → url, folder, hash), persisted by the caller. */
  sources: { get(): Record<string, ModelSource>; put(sources: Record<string, ModelSource>): void };
  /** Builds the inventory of GET /v1/models. */
  inventory: () => Promise<ModelInventory>;
  /** Concurrent SSE streams of this plugin (429 beyond). */
  maxStreams: number;
  keepaliveMs?: number;
  shutdownSignal?: AbortSignal;
}

const TAGS = ['models'];
const sha256 = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/, 'expected 64 hex digits')
  .transform((s) => s.toLowerCase());

const downloadBody = z
  .object({
    url: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }).max(8192),
    directory: z
      .string()
      .min(1)
      .max(64)
      .describe(`A model folder: ${MODEL_FOLDERS.join(', ')}.`),
    filename: z.string().min(1).max(255).optional().describe('Defaults to the last segment of the URL path.'),
    sha256: sha256.optional().describe('Expected SHA-256; a mismatch fails the task and leaves no file.'),
  })
  .strict();

const idParams = z.object({ id: z.string().min(1).max(200) });

const sourceSchema = z
  .object({
    url: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }).max(8192),
    directory: z.string().min(1).max(64),
    sha256: sha256.optional(),
  })
  .strict();

const sourcesBody = z.object({ sources: z.record(z.string().min(1).max(255), sourceSchema) }).strict();

/** Fastify plugin: /v1/models. */
export const modelRoutes: FastifyPluginAsync<ModelRoutesOptions> = async (
  app,
  { downloads, sources, inventory, maxStreams, keepaliveMs, shutdownSignal },
) => {
  app.post(
    '/v1/models/downloads',
    zodRoute({
      body: downloadBody,
      response: { 202: { type: 'object' }, 400: errorSchema, 409: errorSchema, 422: errorSchema },
      summary: 'Download a model into the models folder (extension)',
      description:
        'Returns 202 with the task. A request for a file already being downloaded from the same URL joins that task.',
      tags: TAGS,
      operationId: 'postModelDownload',
    }),
    async (request, reply) => {
      const body = request.body as z.infer<typeof downloadBody>;
      const { task, joined } = await downloads.request(body);
      request.log.info({ task_id: task.id, joined }, 'model download requested');
      return reply
        .code(202)
        .header('location', `/v1/models/downloads/${task.id}`)
        .send({ ...renderTask(task), joined });
    },
  );

  app.get(
    '/v1/models/downloads',
    zodRoute({
      summary: 'Model downloads, newest first (extension)',
      tags: TAGS,
      operationId: 'listModelDownloads',
    }),
    async () => ({ downloads: downloads.list().map(renderTask) }),
  );

  app.get(
    '/v1/models/downloads/:id',
    zodRoute({
      params: idParams,
      response: { 404: errorSchema },
      summary: 'One model download (extension)',
      tags: TAGS,
      operationId: 'getModelDownload',
    }),
    async (request) => renderTask(downloads.require((request.params as { id: string }).id)),
  );

  app.delete(
    '/v1/models/downloads/:id',
    zodRoute({
      params: idParams,
      response: { 404: errorSchema },
      summary: 'Cancel a model download (idempotent; extension)',
      tags: TAGS,
      operationId: 'cancelModelDownload',
    }),
    async (request) => {
      const { id } = request.params as { id: string };
      const task = downloads.cancel(id);
      request.log.info({ task_id: id, status: task.status }, 'model download cancel requested');
      return renderTask(task);
    },
  );

  const streams = new EventStreams({ maxStreams, poll: 'download', keepaliveMs, shutdownSignal });
  app.get(
    '/v1/models/downloads/:id/events',
    zodRoute({
      params: idParams,
      response: { 404: errorSchema, 429: errorSchema },
      summary: 'Live progress of a model download (SSE; extension)',
      description: '`event: download` frames with the task, the last one when it has finished.',
      tags: TAGS,
      operationId: 'getModelDownloadEvents',
    }),
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const task = downloads.require(id);
      const stream = streams.open(request, reply);
      const write = (t: typeof task) => {
        stream.send('download', renderTask(t));
        if (isFinished(t.status)) stream.end();
      };
      const onTask = (t: typeof task) => {
        if (t.id === id) write(t);
      };
      downloads.on('task', onTask);
      stream.signal.addEventListener('abort', () => downloads.off('task', onTask), { once: true });
      write(task);
      return reply;
    },
  );

  app.get(
    '/v1/models',
    zodRoute({
      summary: 'Models per folder and the instances that have them (extension)',
      tags: TAGS,
      operationId: 'listModels',
    }),
    async () => inventory(),
  );

  app.get(
    '/v1/models/sources',
    zodRoute({
      summary: 'The model source map: name → url, folder, sha256 (extension)',
      tags: TAGS,
      operationId: 'getModelSources',
    }),
    async () => ({ sources: sources.get() }),
  );

  app.put(
    '/v1/models/sources',
    zodRoute({
      body: sourcesBody,
      response: { 400: errorSchema, 422: errorSchema },
      summary: 'Replace the model source map (extension)',
      tags: TAGS,
      operationId: 'putModelSources',
    }),
    async (request) => {
      const body = request.body as z.infer<typeof sourcesBody>;
      for (const [name, source] of Object.entries(body.sources)) {
        if (!MODEL_FOLDERS.includes(source.directory)) {
          throw new ModelsError(
            'unknown_model_folder',
            422,
            `sources.${name}: "${source.directory}" is not a model folder.`,
            {
              details: { name, directory: source.directory, folders: [...MODEL_FOLDERS] },
            },
          );
        }
      }
      sources.put(body.sources);
      return { sources: sources.get() };
    },
  );
};
