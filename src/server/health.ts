// Liveness and readiness routes: `GET /health` (200 while at least one ComfyUI instance takes
// work, 503 otherwise, with per-instance detail) and `GET /ready` (503 while starting or when the
// gateway says it cannot take more work). Without a valid API key /health answers only the overall
// status: instance URLs, counts and error texts are for operators.
import type {} from '@fastify/swagger';
import type { FastifyPluginAsync } from 'fastify';
import type { Pool } from '../pool/index.ts';
import { instanceToJson } from './instances.ts';

/** Options of the health plugin. */
export interface HealthRoutesOptions {
  pool: Pool;
  /** The gateway's own readiness (e.g. its queue is over its limit). */
  isReady?: () => { ready: boolean; reason?: string };
}

/** What /health answers, but its time fields: the code, the overall status, and the operators' detail. */
export interface HealthAnswer {
  code: 200 | 503;
  status: 'ok' | 'degraded' | 'unavailable';
  detail: {
    healthy: number;
    total: number;
    running: number;
    queued: number;
    instances: Array<Record<string, unknown>>;
  };
}

/** What /ready answers. */
export interface ReadyAnswer {
  code: 200 | 503;
  body: { ready: true; instances: number; healthy: number } | { ready: false; reason: string };
}

/** /health's answer now (HEALTH_PORT's thread is sent the same, a few times a second). */
export function healthAnswer(pool: Pool): HealthAnswer {
  const instances = pool.list();
  const healthy = instances.filter((s) => s.state === 'healthy').length;
  return {
    code: healthy > 0 ? 200 : 503,
    status: healthy === 0 ? 'unavailable' : healthy === instances.length ? 'ok' : 'degraded',
    detail: {
      healthy,
      total: instances.length,
      running: instances.reduce((n, s) => n + s.running, 0),
      queued: instances.reduce((n, s) => n + s.queued, 0),
      instances: instances.map(instanceToJson),
    },
  };
}

/** /ready's answer now. */
export function readyAnswer(pool: Pool, isReady?: HealthRoutesOptions['isReady']): ReadyAnswer {
  if (!pool.isStarted()) return { code: 503, body: { ready: false, reason: 'starting' } };
  const gateway = isReady?.() ?? { ready: true };
  if (!gateway.ready) return { code: 503, body: { ready: false, reason: gateway.reason ?? 'not ready' } };
  const instances = pool.list();
  return {
    code: 200,
    body: {
      ready: true,
      instances: instances.length,
      healthy: instances.filter((s) => s.state === 'healthy').length,
    },
  };
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
      const { code, status, detail } = healthAnswer(pool);
      reply.code(code).header('cache-control', 'no-store');
      // `keyValid` is undefined when the app has no auth hook (plugin used alone): no keys, all shown.
      if (request.keyValid === false) return reply.send({ status });
      return reply.send({
        status,
        timestamp: new Date().toISOString(),
        uptime_s: Math.floor((performance.now() - startedAt) / 1000),
        ...detail,
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
      const { code, body } = readyAnswer(pool, isReady);
      return reply.code(code).header('cache-control', 'no-store').send(body);
    },
  );
};
