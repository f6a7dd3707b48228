// Builds the Fastify app: error envelope, auth, request ids, CORS, JSON limits, upgrades, OpenAPI
// (+ /docs), then the route plugins it is given, in order (gateway.ts lists them all, in one place).
// No I/O besides what the plugins do per request.
import { randomUUID } from 'node:crypto';
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import { installAuth } from './auth.ts';
import { lazyDocsUi } from './docs-ui.ts';
import { installErrorHandling } from './errors.ts';
import { installJsonDepthLimit } from './json-depth.ts';
import { installJsonSource } from './json-source.ts';
import { lazySchemaController } from './lazy-compilers.ts';
import { UpgradeRoutes } from './upgrades.ts';
import { openApiSchema } from './zod.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** Upgrade (WebSocket) handlers; requests no handler claims are answered 404 and closed. */
    upgrades: UpgradeRoutes;
  }
}

/** A route plugin and its options, registered as given. */
export interface RoutePlugin {
  // biome-ignore lint/suspicious/noExplicitAny: plugins carry their own option types
  plugin: FastifyPluginAsync<any>;
  options: Record<string, unknown>;
}

/** Everything the app needs. */
export interface AppOptions {
  logger: FastifyBaseLogger;
  apiKeys: readonly string[];
  maxBodyBytes: number;
  docs?: boolean;
  /** CORS_ORIGINS: origins browsers may call the API from (`*` = any); empty = no CORS headers. */
  corsOrigins?: readonly string[];
  /** The route plugins, registered in this order. */
  routes: RoutePlugin[];
  /** Deepest nesting accepted in a JSON body (default 64). */
  maxJsonDepth?: number;
  /** Deadline for an HTTP upgrade to complete (default 10 s). */
  upgradeHandshakeMs?: number;
}

/** Fastify's per-request log lines at debug instead of info; errors keep Fastify's levels. */
class DebugRequestLog extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    request.log.debug({ req: request }, 'incoming request');
  }

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    if (error) super.requestCompleted(error, request, reply);
    else reply.log.debug({ res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
}

/** Creates the app (not listening). */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger,
    bodyLimit: options.maxBodyBytes,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // Fastify's two info lines per request were the largest per-job cost of the gateway at the
    // default LOG_LEVEL (info): they go at debug; failures keep their levels.
    logController: new DebugRequestLog(),
    // The few plain JSON Schemas (the rest validate with zod) are ours and fixed: checking them against
    // the JSON Schema meta-schema meant compiling that meta-schema, ~30 ms of every start-up.
    ajv: { customOptions: { validateSchema: false } },
    // Each route's Ajv validator and response serialiser are compiled on first use (lazy-compilers.ts).
    schemaController: lazySchemaController,
  });
  // Callback style: an async hook costs a promise per response.
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-request-id', request.id);
    done(null, payload);
  });
  // JSON only: a text body would otherwise reach the schemas as a string and get a vaguer error.
  app.removeContentTypeParser('text/plain');
  installJsonSource(app);
  installErrorHandling(app);
  const origins = options.corsOrigins ?? [];
  if (origins.length > 0) {
    // Before auth: a preflight carries no credentials and must be answered as such.
    await app.register(cors, {
      origin: origins.includes('*') ? '*' : [...origins],
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS'],
      allowedHeaders: [
        'authorization',
        'content-type',
        'idempotency-key',
        'x-request-id',
        'x-api-key',
        'last-event-id',
      ],
      exposedHeaders: ['location', 'retry-after', 'x-request-id'],
      maxAge: 600,
    });
  }
  installAuth(app, options.apiKeys);
  installJsonDepthLimit(app, options.maxJsonDepth);
  const upgrades = new UpgradeRoutes(
    options.upgradeHandshakeMs ? { handshakeMs: options.upgradeHandshakeMs } : {},
  );
  upgrades.attach(app.server);
  app.decorate('upgrades', upgrades);
  app.addHook('onClose', async () => upgrades.detach());

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'comfy-gateway',
        version: '2.0.0',
        description:
          'Comfy API v2 job contract over a pool of ComfyUI instances, plus documented extensions (marked "Extension").',
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearerAuth: [] }, {}],
    },
    // zodRoute's JSON Schemas are derived when the document is first generated, not at start-up.
    transform: ({ schema, url }) => ({ schema: openApiSchema(schema), url }),
  });
  // Swagger UI loads on its first request (docs-ui.ts): start-up skips @fastify/static and its glob.
  if (options.docs !== false) lazyDocsUi(app, '/docs');
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  for (const route of options.routes) await app.register(route.plugin, route.options);
  return app;
}
