// The web dashboard: its static page under /dashboard/ (public: it holds no fleet data, and asks for
// an API key when the gateway has some), and its API under /v1/dashboard/ behind the usual auth —
// the one live stream (SSE), the job table's paged listing with filters, and a job's detail (node
// timings, webhook deliveries). See docs/dashboard.md.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { decodeCursor, InvalidRequestError, type JobManager } from '../jobs/index.ts';
import type { Pool } from '../pool/index.ts';
import { sendError, TooManyStreamsError } from './errors.ts';
import { DashboardFeed, jobSummary } from './dashboard-feed.ts';
import { DASHBOARD_CSP, loadDashboardFiles, type StaticFile } from './dashboard-static.ts';
import type { NodeTimings } from './node-timings.ts';
import { originOf, renderJob } from './render.ts';
import { errorSchema, jobIdParams, listJobsQuery } from './schemas.ts';
import { hijackForEvents } from './sse.ts';
import type { StatsCollector } from './stats.ts';
import { zodRoute } from './zod.ts';

/** Options of the dashboard plugin. */
export interface DashboardRoutesOptions {
  manager: JobManager;
  pool: Pool;
  stats: StatsCollector;
  timings: NodeTimings;
  /** The webhook delivery log of a job, when webhooks are configured. */
  deliveries?: (jobId: string) => unknown[];
  /** Whether the gateway asks for API keys (the page then asks for one first). */
  authRequired: boolean;
  publicUrl?: string;
  maxStreams: number;
  keepaliveMs?: number;
  shutdownSignal?: AbortSignal;
}

const TAGS = ['dashboard'];

const dashboardJobsQuery = listJobsQuery.extend({
  name: z.string().min(1).max(256).optional().describe('Only jobs made from this named workflow.'),
});

function sendFile(request: FastifyRequest, reply: FastifyReply, file: StaticFile): FastifyReply {
  reply
    .header('content-type', file.contentType)
    .header('content-security-policy', DASHBOARD_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-cache')
    .header('etag', file.etag)
    .header('vary', 'accept-encoding');
  if (request.headers['if-none-match'] === file.etag) return reply.code(304).send();
  if (/\bgzip\b/.test(request.headers['accept-encoding'] ?? '')) {
    return reply.header('content-encoding', 'gzip').send(file.gzip);
  }
  return reply.send(file.body);
}

/** Inputs as shown: data URIs and other long values cut (the page needs to know what, not the bytes). */
function shortInputs(inputs: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(inputs))
    out[k] = v.length > 200 ? `${v.slice(0, 120)}… (${v.length} chars)` : v;
  return out;
}

/** A URL without its query string, which may hold tokens (as the webhook delivery log shows it). */
function withoutQuery(url: string): string {
  const cut = url.search(/[?#]/);
  return cut < 0 ? url : url.slice(0, cut);
}

/** Fastify plugin: the dashboard page and its API. */
export const dashboardRoutes: FastifyPluginAsync<DashboardRoutesOptions> = async (app, options) => {
  const { manager, pool, stats, timings, publicUrl } = options;
  // Read and gzipped on the first page request, not at every start-up (~25 ms of CPU there).
  let files: Map<string, StaticFile> | undefined;
  const feed = new DashboardFeed({
    manager,
    pool,
    stats,
    maxClients: options.maxStreams,
    ...(options.keepaliveMs ? { keepaliveMs: options.keepaliveMs } : {}),
  });
  app.addHook('onClose', async () => feed.close());
  options.shutdownSignal?.addEventListener('abort', () => feed.close(), { once: true });

  app.get('/dashboard', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/dashboard/'));
  app.get<{ Params: { '*': string } }>('/dashboard/*', { schema: { hide: true } }, async (request, reply) => {
    const path = request.params['*'] || 'index.html';
    files ??= loadDashboardFiles();
    const file = files.get(path);
    if (!file) {
      return sendError(reply, { status: 404, code: 'not_found', message: 'No such file.', details: null });
    }
    return sendFile(request, reply, file);
  });

  // The page's configuration: whether to ask for a key. Public on purpose (see auth.ts).
  app.get('/dashboard/config.json', { schema: { hide: true } }, async (_request, reply) => {
    reply.header('cache-control', 'no-store');
    return { auth_required: options.authRequired };
  });

  app.get(
    '/v1/dashboard/events',
    {
      schema: {
        tags: TAGS,
        summary: 'The dashboard live stream (SSE)',
        description:
          'One text/event-stream for the dashboard: `snapshot` on connect (instances, live jobs, stats), then `jobs` (changed jobs, coalesced every 250 ms), `instances` (changed and removed instances) and `fleet` (every instance and the stats, every 5 s).',
      },
    },
    async (request, reply) => {
      if (!feed.hasRoom()) {
        throw new TooManyStreamsError('Too many dashboards are connected.');
      }
      feed.attach(hijackForEvents(request, reply));
      return reply;
    },
  );

  app.get(
    '/v1/dashboard/jobs',
    zodRoute({
      querystring: dashboardJobsQuery,
      response: { 400: errorSchema },
      summary: 'Jobs for the dashboard table (newest first, paged, filtered by status and name)',
      tags: TAGS,
      operationId: 'listDashboardJobs',
    }),
    async (request) => {
      const q = request.query as z.infer<typeof dashboardJobsQuery>;
      if (q.cursor && !decodeCursor(q.cursor)) {
        throw new InvalidRequestError('query.cursor: not a cursor this server issued');
      }
      const page = manager.list({
        limit: q.limit,
        ...(q.status ? { statuses: q.status } : {}),
        ...(q.name !== undefined ? { name: q.name } : {}),
        cursor: q.cursor ?? null,
      });
      return { jobs: page.jobs.map(jobSummary), next_cursor: page.nextCursor };
    },
  );

  app.get(
    '/v1/dashboard/jobs/:id',
    zodRoute({
      params: jobIdParams,
      response: { 404: errorSchema },
      summary: 'A job with what only the dashboard shows: node timings and webhook deliveries',
      tags: TAGS,
      operationId: 'getDashboardJob',
    }),
    async (request) => {
      const { id } = request.params as { id: string };
      const job = manager.require(id);
      return {
        job: {
          ...renderJob(job, originOf(request, publicUrl), manager.queuePosition(id)),
          name: job.request.name ?? null,
          request: {
            inputs: job.request.inputs ? shortInputs(job.request.inputs) : null,
            output: job.request.output ?? null,
            webhook_url: job.request.webhook_url ? withoutQuery(job.request.webhook_url) : null,
            timeout_ms: job.request.timeout_ms ?? null,
            source: job.request.source ?? null,
          },
          error: job.error,
        },
        node_timings: timings.get(id),
        webhook_deliveries: options.deliveries?.(id) ?? [],
      };
    },
  );
};
