// Bearer API keys: every route except the public ones needs `Authorization: Bearer <key>` when
// API_KEYS is set. Keys are compared by SHA-256 digest with timingSafeEqual.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { sendError } from './errors.ts';

// The dashboard's static page holds no data (its API lives under /v1/dashboard/); it asks for a key.
const PUBLIC = [
  /^\/health$/,
  /^\/ready$/,
  /^\/api\/v2\/health$/,
  /^\/docs(\/|$)/,
  /^\/openapi\.json$/,
  /^\/dashboard(\/|$)/,
];

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Adds the API-key check; a no-op when `keys` is empty. */
export function installAuth(app: FastifyInstance, keys: readonly string[]): void {
  if (keys.length === 0) return;
  const digests = keys.map(digest);
  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    if (PUBLIC.some((re) => re.test(path))) return;
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    const given = match?.[1] ? digest(match[1].trim()) : null;
    if (given && digests.some((d) => timingSafeEqual(d, given))) return;
    reply.header('www-authenticate', 'Bearer');
    return sendError(reply, {
      status: 401,
      code: 'unauthorized',
      message: given ? 'The API key is not valid.' : 'Missing `Authorization: Bearer <api key>` header.',
      details: null,
    });
  });
}
