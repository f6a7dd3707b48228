// Swagger UI at /docs, loaded by the first request for it. @fastify/swagger-ui loads @fastify/static
// and registers a route per file of swagger-ui-dist (a glob of its folder): ~55 ms of CPU, a twentieth
// of the gateway's start-up, for a page most gateways never serve. Here it lives in a private Fastify
// instance created on first use; /docs requests are injected into it and its answers sent back as is.
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';

/** Answer headers that belong to the inner exchange, not to the client's connection. */
const HOP_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'date']);

/** Registers `prefix` and `prefix/*` (hidden from OpenAPI), serving Swagger UI for `app.swagger()`. */
export function lazyDocsUi(app: FastifyInstance, prefix: string): void {
  let ui: Promise<FastifyInstance> | undefined;
  const load = async (): Promise<FastifyInstance> => {
    const [{ default: Fastify }, { default: swagger }, { default: swaggerUi }] = await Promise.all([
      import('fastify'),
      import('@fastify/swagger'),
      import('@fastify/swagger-ui'),
    ]);
    const inner = Fastify();
    // Static mode over the gateway's own document object: the same (live) spec /openapi.json serves.
    await inner.register(swagger, { mode: 'static', specification: { document: app.swagger() as never } });
    await inner.register(swaggerUi, { routePrefix: prefix });
    await inner.ready();
    return inner;
  };
  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    ui ??= load().catch((err: unknown) => {
      ui = undefined; // a later request tries again
      throw err;
    });
    const inner = await ui;
    const res = await inner.inject({
      method: request.method as HTTPMethods,
      url: request.url,
      headers: request.headers,
    });
    // A path Swagger UI does not serve gets the gateway's own 404, as when its routes were ours.
    if (res.statusCode === 404) return reply.callNotFound();
    for (const [name, value] of Object.entries(res.headers)) {
      if (value !== undefined && !HOP_HEADERS.has(name)) reply.header(name, value);
    }
    return reply.code(res.statusCode).send(res.rawPayload.length > 0 ? res.rawPayload : undefined);
  };
  app.addHook('onClose', async () => {
    await (await ui?.catch(() => undefined))?.close();
  });
  for (const url of [prefix, `${prefix}/*`]) {
    app.route({ method: ['GET', 'HEAD'], url, schema: { hide: true }, handler });
  }
}
