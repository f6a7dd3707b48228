// GET /api/v2/jobs/{id}/outputs/{n}/content: streams a `link` output's bytes from the instance that
// produced it (ComfyUI /view), passing Range through so clients can resume or seek.
import { Readable } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import { GatewayError } from '../errors.ts';
import type { JobManager, PoolLike } from '../jobs/index.ts';
import { parseRange, sliceStream } from './byte-range.ts';
import { errorSchema, outputParams } from './schemas.ts';
import { zodRoute } from './zod.ts';

/** Options of the output content plugin. */
export interface JobOutputsRoutesOptions {
  manager: JobManager;
  pool: PoolLike;
}

class OutputUnavailableError extends GatewayError {
  constructor(message: string) {
    super('output_unavailable', 404, message);
  }
}

const PASS_HEADERS = ['content-length', 'content-range', 'accept-ranges', 'last-modified', 'etag'];

/** Fastify plugin: output content. */
export const jobOutputsRoutes: FastifyPluginAsync<JobOutputsRoutesOptions> = async (
  app,
  { manager, pool },
) => {
  app.get(
    '/api/v2/jobs/:id/outputs/:index/content',
    zodRoute({
      params: outputParams,
      response: {
        200: { description: 'The file', type: 'string', format: 'binary' },
        206: { description: 'Part of the file (Range)', type: 'string', format: 'binary' },
        404: errorSchema,
        416: errorSchema,
      },
      summary: 'Bytes of one job output (Range supported)',
      tags: ['jobs'],
      operationId: 'getJobOutputContent',
    }),
    async (request, reply) => {
      const { id, index } = request.params as { id: string; index: number };
      const job = await manager.fetch(id);
      const source = job.output_sources[index];
      const output = job.outputs[index];
      if (!source || !output) throw new OutputUnavailableError(`Job ${id} has no output ${index}.`);
      const client = pool.client(source.instanceId);
      if (!client) throw new OutputUnavailableError(`The instance that produced output ${index} is gone.`);
      const controller = new AbortController();
      reply.raw.once('close', () => controller.abort());
      const range = request.headers.range;
      let res: Awaited<ReturnType<typeof client.view>>;
      try {
        res = await client.view(
          { filename: source.filename, subfolder: source.subfolder, type: source.type },
          { signal: controller.signal, ...(range ? { range } : {}) },
        );
      } catch (err) {
        const status = (err as { status?: unknown }).status;
        if (status === 404 || status === 400 || status === 403) {
          throw new OutputUnavailableError(`Output ${index} of job ${id} is no longer on its instance.`);
        }
        if (status === 416)
          throw new GatewayError('range_not_satisfiable', 416, `Range ${range} is outside the file.`);
        throw err;
      }
      if (res.status === 404 || res.status === 400 || res.status === 403) {
        destroy(res.body);
        throw new OutputUnavailableError(`Output ${index} of job ${id} is no longer on its instance.`);
      }
      if (res.status === 416) {
        destroy(res.body);
        if (res.headers['content-range']) reply.header('content-range', res.headers['content-range']);
        throw new GatewayError('range_not_satisfiable', 416, `Range ${range} is outside the file.`);
      }
      if (res.status !== 200 && res.status !== 206) {
        destroy(res.body);
        throw new GatewayError('upstream_error', 502, 'The instance failed to serve the file.');
      }
      const body = res.body;
      let stream: Readable =
        body instanceof ReadableStream
          ? Readable.fromWeb(body as import('node:stream/web').ReadableStream<Uint8Array>)
          : (body as Readable);
      let status = res.status;
      const size = res.contentLength ?? Number(res.headers['content-length'] ?? Number.NaN);
      // The instance ignored Range (ComfyUI may): slice the full body here.
      const sliced = status === 200 && range && Number.isFinite(size) ? parseRange(range, size) : null;
      if (sliced === 'unsatisfiable') {
        stream.destroy();
        reply.header('content-range', `bytes */${size}`);
        throw new GatewayError(
          'range_not_satisfiable',
          416,
          `Range ${range} is outside the ${size}-byte file.`,
        );
      }
      if (sliced) {
        status = 206;
        stream = stream.pipe(sliceStream(sliced));
        reply.header('content-range', `bytes ${sliced.start}-${sliced.end}/${size}`);
        reply.header('content-length', String(sliced.end - sliced.start + 1));
        reply.header('accept-ranges', 'bytes');
      } else {
        for (const name of PASS_HEADERS) {
          const value = res.headers[name];
          if (value) reply.header(name, value);
        }
        if (Number.isFinite(size)) reply.header('accept-ranges', 'bytes');
      }
      reply.code(status).type(output.content_type || res.contentType);
      reply.header('content-disposition', `inline; filename="${output.name.replace(/["\\\r\n]/g, '_')}"`);
      return reply.send(stream);
    },
  );
};

function destroy(body: unknown): void {
  if (body instanceof ReadableStream) void body.cancel().catch(() => {});
  else (body as Readable | undefined)?.destroy?.();
}
