// GET /api/v2/jobs/{id}/events: the v2 SSE stream. On connect: current status, latest progress and
// preview; then live events; `output` events before the terminal `status`, then the stream ends.
// No `id:` fields (v2 §7: no replay); the stream plumbing (bound, keepalive, end) is sse.ts.
import type { FastifyPluginAsync } from 'fastify';
import { isTerminal, type JobEvent, type JobManager, type JobRecord } from '../jobs/index.ts';
import { originOf, renderOutput } from './render.ts';
import { errorSchema, jobIdParams } from './schemas.ts';
import { EventStreams } from './sse.ts';
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
  { manager, publicUrl, maxStreams, keepaliveMs, shutdownSignal },
) => {
  const streams = new EventStreams({ maxStreams, poll: 'job', keepaliveMs, shutdownSignal });
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
      let job = await manager.fetch(id);
      const stream = streams.open(request, reply);
      const origin = originOf(request, publicUrl);
      const write = (event: JobEvent) => {
        const data =
          event.type === 'output'
            ? renderOutput(event.data, origin)
            : event.type === 'status' && event.data.outputs
              ? { ...event.data, outputs: event.data.outputs.map((o) => renderOutput(o, origin)) }
              : event.data;
        stream.send(event.type, data);
        if (event.type === 'status' && isTerminal(event.data.status)) stream.end();
      };
      const sendEnd = (ended: JobRecord) => {
        for (const output of ended.outputs) write({ type: 'output', data: output });
        write({
          type: 'status',
          data: { status: ended.status, queue_position: null, outputs: ended.outputs },
        });
      };

      if (isTerminal(job.status)) {
        sendEnd(job);
        return reply;
      }
      // Subscribe before the snapshot; what arrives until it is sent is held and sent after it.
      const held: JobEvent[] = [];
      let snapshotSent = false;
      manager.events.subscribe(
        id,
        (event) => (snapshotSent ? write(event) : held.push(event)),
        stream.signal,
      );
      // A job another gateway runs: its events come on another connection than the read's reply,
      // so one published just after the read could be handled before it, while nobody here
      // listened yet, and be lost. Read again now that the stream listens.
      if (!manager.holds(id)) {
        job = await manager.fetch(id);
        if (isTerminal(job.status)) {
          sendEnd(job);
          return reply;
        }
      }
      // The record may be the live one, which changes while the position is read (in a fleet, from
      // Redis): the snapshot is the state as of now, and what changes meanwhile arrives held.
      const snapshot = { status: job.status, progress: job.progress };
      const position = await manager.queuePositionOf({ id, status: snapshot.status });
      write({ type: 'status', data: { status: snapshot.status, queue_position: position } });
      if (snapshot.progress) write({ type: 'progress', data: snapshot.progress });
      const preview = manager.latestPreview(id);
      if (preview) write({ type: 'preview', data: preview });
      snapshotSent = true;
      for (const event of held.splice(0)) if (!olderThan(event, snapshot)) write(event);
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

/** Order of the statuses a job passes through before its end. */
const STATUS_ORDER: Partial<Record<JobRecord['status'], number>> = { queued: 0, running: 1, canceling: 2 };

/**
 * A held event the snapshot already covers (it was published before the state the snapshot read):
 * sending it after the snapshot would take the stream back to an earlier status or progress. A
 * queued status with a new position is news; a repeated running or canceling is not.
 */
function olderThan(event: JobEvent, snapshot: Pick<JobRecord, 'status' | 'progress'>): boolean {
  if (event.type === 'status') {
    const held = STATUS_ORDER[event.data.status];
    const read = STATUS_ORDER[snapshot.status];
    if (held === undefined || read === undefined) return false;
    return held < read || (held === read && event.data.status !== 'queued');
  }
  if (event.type === 'progress')
    return snapshot.progress !== null && event.data.value < snapshot.progress.value;
  return false;
}
