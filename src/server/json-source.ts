// Keeps the JSON text of each request body next to the parsed value, so a large UI workflow reaches
// a conversion worker as the text it arrived as: serializing the parsed object again (JSON.stringify
// or a structured clone) would cost the event loop about as much as converting it there.
import type { FastifyInstance, FastifyRequest } from 'fastify';

/** The body text per request; entries go with their request. */
const texts = new WeakMap<FastifyRequest, string>();

/**
 * Bodies shorter than this are not kept: a workflow in them is small enough to serialize again at
 * no cost (and most convert in place), so holding their text for the request's life buys nothing.
 */
const KEEP_FROM_BYTES = 64 * 1024;

/** Replaces the application/json parser with Fastify's own, keeping the text of large bodies (bounded by bodyLimit). */
export function installJsonSource(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    parse(request, body as string, (err: Error | null, value?: unknown) => {
      if (err === null && (body as string).length >= KEEP_FROM_BYTES) texts.set(request, body as string);
      done(err, value);
    });
  });
}

/** The request's JSON text and the place of a value in it (`["workflow"]`), when the body was JSON. */
export function jsonSource(
  request: FastifyRequest,
  ...path: string[]
): { text: string; path: readonly string[] } | undefined {
  const text = texts.get(request);
  return text === undefined ? undefined : { text, path };
}
