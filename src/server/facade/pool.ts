// ComfyUI's informational and settings routes over the pool: lists that differ per instance are
// merged (`/embeddings`, `/extensions`, `/models`, `/models/{folder}` — the union, and with
// `?instances=true` which instances have each model), `/free` goes to every instance, the log
// subscription is acknowledged, and per-server state that cannot be merged (`/settings`, `/users`,
// `/userdata`, `/experiment/models`, `/internal/logs`, …) is forwarded to one instance: the first
// reachable one in the pool's order, so every caller sees the same store while it is up.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { request } from 'undici';
import { both, type FacadeContext, type FacadeInstanceClient, jsonBody, RawBody } from './common.ts';

const ANSWER_TIMEOUT_MS = 10_000;
/** Response headers a forwarded answer keeps. */
const PASS_HEADERS = [
  'content-type',
  'content-length',
  'etag',
  'last-modified',
  'cache-control',
  'content-disposition',
];
/** Request headers a forwarded request keeps (ComfyUI reads the user from `comfy-user`). */
const FORWARD_HEADERS = [
  'content-type',
  'accept',
  'comfy-user',
  'if-none-match',
  'if-modified-since',
  'range',
];

/** Route prefixes answered by one instance (each also under `/api`). */
const FORWARDED = [
  '/settings',
  '/users',
  '/userdata',
  '/v2/userdata',
  '/experiment/models',
  '/internal/logs',
  '/internal/folder_paths',
  '/internal/files',
  '/view_metadata',
  '/i18n',
  '/workflow_templates',
  '/global_subgraphs',
  '/manager',
  '/customnode',
];

/** FORWARDED grouped by parent path ('' for top-level prefixes): parent → a regex of the last segments. */
const FORWARDED_BY_PARENT = (() => {
  const groups = new Map<string, string[]>();
  for (const prefix of FORWARDED) {
    const cut = prefix.lastIndexOf('/');
    const parent = prefix.slice(0, cut);
    groups.set(parent, [...(groups.get(parent) ?? []), prefix.slice(cut + 1)]);
  }
  return [...groups].map(([parent, leaves]) => [parent, `^(?:${leaves.join('|')})$`] as const);
})();

/** Fastify plugin: merged and forwarded ComfyUI routes. */
export const poolRoutes: FastifyPluginAsync<{ ctx: FacadeContext }> = async (app, { ctx }) => {
  const pool = ctx.options.pool;

  /** Every instance's answer (undefined where it failed), in the pool's order. */
  async function fromEach<T>(ask: (client: FacadeInstanceClient, signal: AbortSignal) => Promise<T>) {
    return Promise.all(
      pool.list().map(async (instance) => {
        const client = pool.client(instance.id);
        if (!client) return { instance, value: undefined };
        try {
          return { instance, value: await ask(client, AbortSignal.timeout(ANSWER_TIMEOUT_MS)) };
        } catch {
          return { instance, value: undefined };
        }
      }),
    );
  }

  /** Union of string lists, in first-seen order. */
  function union(lists: Array<unknown>): string[] {
    const seen = new Set<string>();
    for (const list of lists)
      if (Array.isArray(list)) for (const x of list) if (typeof x === 'string') seen.add(x);
    return [...seen];
  }

  both(app, 'GET', '/embeddings', async () =>
    union((await fromEach((c, signal) => c.getEmbeddings({ signal }))).map((a) => a.value)),
  );

  both(app, 'GET', '/extensions', async () =>
    union((await fromEach((c, signal) => getJson(c.baseUrl, '/extensions', signal))).map((a) => a.value)),
  );

  both(app, 'GET', '/models', async () =>
    union((await fromEach((c, signal) => c.getModels(undefined, { signal }))).map((a) => a.value)),
  );

  app.get('/models/:folder', { schema: { hide: true } }, modelsIn);
  app.get('/api/models/:folder', { schema: { hide: true } }, modelsIn);
  async function modelsIn(req: FastifyRequest, reply: FastifyReply) {
    const folder = (req.params as { folder: string }).folder;
    const answers = await fromEach((c, signal) => c.getModels(folder, { signal }));
    const known = answers.filter((a) => Array.isArray(a.value));
    // No instance knows the folder: ComfyUI's 404 with an empty body.
    if (known.length === 0) return reply.code(404).send();
    const names = union(known.map((a) => a.value));
    if ((req.query as { instances?: string }).instances !== 'true') return names;
    // Extension: which instances have each model (a file missing on some runs only on the others).
    return names.map((name) => ({
      name,
      instances: known.filter((a) => (a.value as string[]).includes(name)).map((a) => a.instance.id),
    }));
  }

  both(app, 'POST', '/free', async (req, reply) => {
    const raw = jsonBody(req);
    const body = (raw !== null && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
    const unloadModels = body.unload_models === true;
    const freeMemory = body.free_memory === true;
    if (unloadModels || freeMemory)
      await fromEach((c, signal) => c.freeMemory({ unloadModels, freeMemory, signal }));
    return reply.code(200).send();
  });

  // The gateway does not relay the instances' terminal logs; the subscription is acknowledged.
  for (const url of ['/internal/logs/subscribe', '/api/internal/logs/subscribe'])
    app.route({
      method: 'PATCH',
      url,
      schema: { hide: true },
      handler: async (_req, reply) => reply.code(200).send(),
    });

  // One parametric route per parent path and form instead of one per prefix, method and form (280 of
  // them cost ~15 ms of every start-up and their share of the router's memory): the parameter's
  // regular expression names the prefixes' last segments, so exactly the same paths match.
  for (const [parent, leaves] of FORWARDED_BY_PARENT) {
    for (const base of [parent, `/api${parent}`]) {
      for (const url of [`${base}/:leaf(${leaves})`, `${base}/:leaf(${leaves})/*`]) {
        app.route({
          method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
          url,
          schema: { hide: true },
          handler: (req, reply) => forward(req, reply),
        });
      }
    }
  }

  async function forward(req: FastifyRequest, reply: FastifyReply) {
    const list = pool.list();
    const target =
      list.find((i) => i.state === 'healthy' && pool.client(i.id)) ?? list.find((i) => pool.client(i.id));
    const client = target ? pool.client(target.id) : undefined;
    if (!client) return reply.code(503).send();
    const headers: Record<string, string> = {};
    for (const name of FORWARD_HEADERS) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    try {
      const res = await request(client.baseUrl.replace(/\/+$/, '') + req.url, {
        method: req.method as 'GET',
        headers,
        ...(req.body instanceof RawBody ? { body: req.body.bytes } : {}),
        signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS * 3),
      });
      for (const name of PASS_HEADERS) {
        const value = res.headers[name];
        if (typeof value === 'string') reply.header(name, value);
      }
      return reply.code(res.statusCode).send(res.body);
    } catch (err) {
      req.log.warn({ err: String(err), instance: client.baseUrl }, 'facade: forwarding failed');
      return reply.code(502).send();
    }
  }
};

async function getJson(baseUrl: string, path: string, signal: AbortSignal): Promise<unknown> {
  const res = await request(baseUrl.replace(/\/+$/, '') + path, { signal });
  if (res.statusCode !== 200) {
    await res.body.dump();
    return undefined;
  }
  return res.body.json();
}
