// Liveness and readiness routes: `GET /health` (200 while at least one ComfyUI instance takes
// work, 503 otherwise, with per-instance detail) and `GET /ready` (503 while starting or when the
// gateway says it cannot take more work). Without a valid API key /health answers only the overall
// status: instance URLs, counts and error texts are for operators.
import type {} from '@fastify/swagger';
import { createServer } from 'node:http';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Pool } from '../pool/index.ts';
import { instanceToJson } from './instances.ts';

/** Options of the health plugin. */
export interface HealthRoutesOptions {
  pool: Pool;
  /** The gateway's own readiness (e.g. its queue is over its limit). */
  isReady?: () => { ready: boolean; reason?: string };
}

/** Fastify plugin: `GET /health` and `GET /ready`. */
export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app, { pool, isReady }) => {
  const startedAt = performance.now();
  app.get(
    '/health',
    {
      schema: {
        tags: ['operations'],
        summary: 'Pool health: 200 when at least one ComfyUI instance is healthy, 503 otherwise',
      },
    },
    async (request, reply) => {
      const instances = pool.list();
      const healthy = instances.filter((s) => s.state === 'healthy').length;
      const status = healthy === 0 ? 'unavailable' : healthy === instances.length ? 'ok' : 'degraded';
      reply.code(healthy > 0 ? 200 : 503).header('cache-control', 'no-store');
      const when = {
        timestamp: new Date().toISOString(),
        uptime_s: Math.floor((performance.now() - startedAt) / 1000),
      };
      // `keyValid` is undefined when the app has no auth hook (plugin used alone): no keys, all shown.
      if (request.keyValid === false) return reply.send({ status });
      return reply.send({
        status,
        ...when,
        healthy,
        total: instances.length,
        running: instances.reduce((n, s) => n + s.running, 0),
        queued: instances.reduce((n, s) => n + s.queued, 0),
        instances: instances.map(instanceToJson),
      });
    },
  );

  app.get(
    '/ready',
    {
      schema: {
        tags: ['operations'],
        summary: 'Readiness: 503 while the gateway starts or cannot take more work',
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'no-store');
      if (!pool.isStarted()) return reply.code(503).send({ ready: false, reason: 'starting' });
      const gateway = isReady?.() ?? { ready: true };
      if (!gateway.ready) {
        return reply.code(503).send({ ready: false, reason: gateway.reason ?? 'not ready' });
      }
      const instances = pool.list();
      return reply.code(200).send({
        ready: true,
        instances: instances.length,
        healthy: instances.filter((s) => s.state === 'healthy').length,
      });
    },
  );
};

/** Paths the separate health listener (HEALTH_PORT) serves; everything else there is 404. */
const OPS_PATHS = new Set(['/health', '/ready', '/metrics']);

/**
 * Serves /health, /ready and /metrics of `app` on a second port of their own (HEALTH_PORT), through
 * the app's full request handling (hooks, auth). A probe there has its own accept queue: when
 * thousands of clients connect to the API port at once, it does not wait behind them. Resolves once
 * listening, with an idempotent close.
 */
export async function listenHealth(
  app: FastifyInstance,
  options: { host: string; port: number },
): Promise<{ port: number; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0] as string;
    if (OPS_PATHS.has(path)) {
      app.routing(req, res);
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({ error: { code: 'not_found', message: `${path} is not served on HEALTH_PORT` } }),
    );
  });
  // Probes are short: no keep-alive connection outlives a shutdown by more than this.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: options.host, port: options.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  let closing: Promise<void> | null = null;
  return {
    port: typeof address === 'object' && address ? address.port : options.port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
