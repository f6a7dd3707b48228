// Bearer API keys: every route except the public ones needs `Authorization: Bearer <key>` when
// API_KEYS is set. Keys are compared by SHA-256 digest with timingSafeEqual. Public routes still
// learn whether the caller presented a valid key (`request.keyValid`): /health shows details only then.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { sendError } from './errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** True when the request carries a valid API key, or when the gateway has no keys. */
    keyValid: boolean;
  }
}

// The dashboard's static page holds no data (its API lives under /v1/dashboard/); it asks for a key.
const PUBLIC = [
  /^\/health$/,
  /^\/ready$/,
  /^\/api\/v2\/health$/,
  /^\/docs(\/|$)/,
  /^\/openapi\.json$/,
  /^\/dashboard(\/|$)/,
];

/** The SHA-256 digest an API key is compared by (HEALTH_PORT's thread compares the same digests). */
export function keyDigest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Adds the API-key check; without keys every request counts as authorised. */
export function installAuth(app: FastifyInstance, keys: readonly string[]): void {
  app.decorateRequest('keyValid', keys.length === 0);
  if (keys.length === 0) return;
  const digests = keys.map(keyDigest);
  const presented = (request: FastifyRequest): Buffer | null => {
    const match = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '');
    return match?.[1] ? keyDigest(match[1].trim()) : null;
  };
  app.addHook('onRequest', async (request, reply) => {
    const given = presented(request);
    request.keyValid = given !== null && digests.some((d) => timingSafeEqual(d, given));
    if (request.keyValid) return;
    const path = request.url.split('?')[0] ?? '';
    if (PUBLIC.some((re) => re.test(path))) return;
    reply.header('www-authenticate', 'Bearer');
    return sendError(reply, {
      status: 401,
      code: 'unauthorized',
      message: given ? 'The API key is not valid.' : 'Missing `Authorization: Bearer <api key>` header.',
      details: null,
    });
  });
}
