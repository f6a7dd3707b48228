// GET /api/v2/jobs/{id}/events: the v2 SSE stream. On connect: current status, latest progress and
// preview; then live events; `output` events before the terminal `status`, then the stream ends.
// No `id:` fields (v2 §7: no replay). Keepalive comments well under the SDK's 45 s dead-line.
import type { FastifyPluginAsync } from 'fastify';
import { isTerminal, type JobEvent, type JobManager } from '../jobs/index.ts';
import { TooManyStreamsError } from './errors.ts';
import { originOf, renderOutput } from './render.ts';
import { errorSchema, jobIdParams } from './schemas.ts';
import { zodRoute } from './zod.ts';

/** Options of the SSE plugin. */
export interface JobEventsRoutesOptions {
  manager: JobManager;
  publicUrl?: string;
  /** Concurrent streams over the whole gateway (429 too_many_streams beyond). */
  maxStreams: number;
  keepaliveMs?: number;
  /** Ends every stream when the gateway shuts down (clients reconnect elsewhere or poll). */
  shutdownSignal?: AbortSignal;
}

/** Fastify plugin: the job event stream. */
export const jobEventsRoutes: FastifyPluginAsync<JobEventsRoutesOptions> = async (
  app,
  { manager, publicUrl, maxStreams, keepaliveMs = 15_000, shutdownSignal },
) => {
  let open = 0;
  app.get(
    '/api/v2/jobs/:id/events',
    zodRoute({
      params: jobIdParams,
      response: {
        200: {
          description: 'text/event-stream of status, progress, preview and output events',
          type: 'string',
        },
        404: errorSchema,
        429: errorSchema,
      },
      summary: 'Live job events (SSE)',
      tags: ['jobs'],
      operationId: 'getJobEvents',
    }),
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const job = await manager.fetch(id);
      if (open >= maxStreams) {
        throw new TooManyStreamsError(
          `At most ${maxStreams} event streams may be open; poll the job instead.`,
        );
      }
      open++;
      const origin = originOf(request, publicUrl);
      const raw = reply.raw;
      reply.hijack();
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
        'x-request-id': request.id,
      });
      const scope = new AbortController();
      let keepalive: NodeJS.Timeout | undefined;
      const end = () => {
        if (scope.signal.aborted) return;
        scope.abort();
        clearInterval(keepalive);
        open--;
        if (!raw.writableEnded) raw.end();
      };
      raw.once('close', end);
      shutdownSignal?.addEventListener('abort', end, { once: true, signal: scope.signal });
      const write = (event: JobEvent) => {
        if (scope.signal.aborted) return;
        const data =
          event.type === 'output'
            ? renderOutput(event.data, origin)
            : event.type === 'status' && event.data.outputs
              ? { ...event.data, outputs: event.data.outputs.map((o) => renderOutput(o, origin)) }
              : event.data;
        raw.write(`event: ${event.type}\ndata: ${JSON.stringify(data)}\n\n`);
        if (event.type === 'status' && isTerminal(event.data.status)) end();
      };

      if (isTerminal(job.status)) {
        for (const output of job.outputs) write({ type: 'output', data: output });
        write({ type: 'status', data: { status: job.status, queue_position: null, outputs: job.outputs } });
        return reply;
      }
      // Subscribe before the snapshot: nothing can slip between them (one thread, no await).
      manager.events.subscribe(id, write, scope.signal);
      write({ type: 'status', data: { status: job.status, queue_position: manager.queuePosition(id) } });
      if (job.progress) write({ type: 'progress', data: job.progress });
      const preview = manager.latestPreview(id);
      if (preview) write({ type: 'preview', data: preview });
      keepalive = setInterval(() => {
        if (!raw.writableEnded) raw.write(': keepalive\n\n');
      }, keepaliveMs);
      keepalive.unref();
      // The job may have ended between require() and subscribe() only if its end was emitted
      // synchronously in between, which cannot happen; a job that is gone from the live set now
      // is already terminal in the store, so re-check once.
      const latest = manager.get(id);
      if (latest && isTerminal(latest.status)) {
        write({
          type: 'status',
          data: { status: latest.status, queue_position: null, outputs: latest.outputs },
        });
      }
      return reply;
    },
  );
};
