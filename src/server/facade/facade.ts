// The native ComfyUI facade: ComfyUI's own HTTP routes and WebSocket over the whole pool, so
// existing ComfyUI clients work unchanged. Every prompt becomes an ordinary gateway job (durable,
// visible at /api/v2/jobs/{id}); queue, history, interrupt and the socket messages are rendered in
// ComfyUI's formats from the job layer. Every route is also served under `/api/`.
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { ComfyError } from '../../comfy/index.ts';
import { GatewayError } from '../../errors.ts';
import { fileInputsOf, type NodeDef } from '../../io/index.ts';
import {
  type ApiPrompt,
  checkNodeCount,
  FACADE_METADATA_KEY,
  isTerminal,
  type JobRecord,
  type NodeDefs,
} from '../../jobs/index.ts';
import { comfyError, isUiWorkflow, validateComfyPrompt } from '../../workflow/index.ts';
import {
  acceptAnyBody,
  both,
  type ComfyFacadeOptions,
  type FacadeContext,
  type FacadePool,
  jsonBody,
  MalformedBodyError,
  ownerOf,
  RawBody,
  sendAiohttp500,
} from './common.ts';
import { fileRoutes } from './files.ts';
import { historyEntry, queueItem } from './format.ts';
import { jobsRoutes } from './jobs.ts';
import { poolRoutes } from './pool.ts';
import { FacadeRelay } from './relay.ts';
import { type FacadePrompt, FacadePrompts } from './state.ts';
import { FacadeUploads } from './uploads.ts';
import { FacadeSockets } from './ws.ts';

const ACTIVE = new Set(['queued', 'running', 'canceling']);

function isObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

/** Fastify plugin: the native ComfyUI routes and `/ws`. */
export const comfyFacadeRoutes: FastifyPluginAsync<ComfyFacadeOptions> = async (app, options) => {
  const { manager, pool } = options;
  const maxUploadBytes = options.maxUploadBytes ?? options.assets.maxBytes;
  const prompts = new FacadePrompts({ max: options.maxPrompts ?? 10_000, ttlMs: options.retentionMs });
  const uploads = new FacadeUploads({
    assets: options.assets,
    maxNames: options.maxUploadNames ?? 10_000,
    ttlMs: options.retentionMs,
  });
  let relay: FacadeRelay | undefined;
  const sockets = new FacadeSockets({
    maxClients: options.maxSockets ?? 1000,
    apiKeys: options.apiKeys ?? [],
    queueRemaining: () => relay?.active ?? 0,
    featureFlags: () => ({ supports_preview_metadata: true, max_upload_size: maxUploadBytes, extension: {} }),
    currentNode: (clientId) => relay?.currentNode(clientId) ?? null,
    logger: app.log,
  });
  relay = new FacadeRelay({ manager, pool, prompts, sockets });
  const ctx: FacadeContext = { options, prompts, uploads, sockets, relay };
  recover(ctx);

  const removeUpgrade = app.upgrades.add((req, socket, head) => sockets.handleUpgrade(req, socket, head));
  app.addHook('onClose', async () => {
    removeUpgrade();
    relay?.close();
    await sockets.close();
  });

  acceptAnyBody(app);
  // ComfyUI's shape for every failure on these routes, never the v2 envelope.
  app.setErrorHandler((err, request, reply) => sendComfyError(err, request, reply));

  const nodeDefs = async (): Promise<NodeDefs> => pool.nodeDefsFor();

  both(app, 'POST', '/prompt', async (req, reply) => {
    const body = jsonBody(req);
    if (!isObject(body) || !Object.hasOwn(body, 'prompt')) {
      return reply.code(400).send({
        error: comfyError('no_prompt', 'No prompt provided', 'No prompt provided'),
        node_errors: {},
      });
    }
    // ComfyUI iterates the prompt: a list is an empty prompt, anything else not a dict raises (500).
    if (body.prompt === null || typeof body.prompt !== 'object')
      throw new MalformedBodyError('the prompt is not an object');
    let prompt: unknown = Array.isArray(body.prompt) ? {} : body.prompt;
    // Too many nodes: 422 workflow_too_large before any per-node work (ComfyUI has no limit).
    if (!isUiWorkflow(prompt)) checkNodeCount(prompt, options.maxWorkflowNodes);
    const defs = await nodeDefs();
    if (isUiWorkflow(prompt)) {
      if (!options.convertUi) {
        return reply.code(400).send({
          error: comfyError('invalid_prompt', 'Editor-format workflows are not accepted here.'),
          node_errors: {},
        });
      }
      try {
        prompt = await options.convertUi(prompt, defs, {
          ...(req.body instanceof RawBody ? { source: { text: req.body.text, path: ['prompt'] } } : {}),
        });
      } catch (err) {
        if (err instanceof GatewayError && err.code === 'workflow_too_large') throw err;
        return reply.code(400).send({
          error: comfyError(
            'invalid_prompt',
            'The editor workflow could not be converted.',
            String((err as Error).message),
          ),
          node_errors: {},
        });
      }
    }
    const api = prompt as ApiPrompt;
    // What the facade knows about a file input's value: uploads it holds, files the instances list.
    const fileCheck = (classType: string, input: string, value: unknown) => {
      const spec = fileInputsOf(defs[classType] as NodeDef | undefined).get(input);
      if (spec === undefined) return 'not_a_file';
      const name =
        typeof value === 'string' && spec.folder !== 'input' && !/ \[(input|output|temp)\]$/.test(value)
          ? `${value} [${spec.folder}]`
          : value;
      if (uploads.lookupValue(name) !== undefined) return 'known';
      const listed = listedValues(defs[classType], input);
      return listed === undefined || listed.includes(value) ? 'known' : 'missing';
    };
    const targets = body.partial_execution_targets;
    const verdict = validateComfyPrompt(api, defs, {
      partialTargets: Array.isArray(targets) ? targets : null,
      comboChoices: (classType, input, value, listed) => {
        const file = fileCheck(classType, input, value);
        // A file the facade holds (or an instance lists) is a valid choice though no instance lists it yet;
        // an empty list is a model folder the answering instance has nothing in, others may.
        if (file === 'known' || (listed.length === 0 && file === 'not_a_file')) return null;
        return listed;
      },
      fileExists: (classType, input, name) => fileCheck(classType, input, name) !== 'missing',
      convertInPlace: true,
    });
    if (!verdict.ok) return reply.code(400).send({ error: verdict.error, node_errors: verdict.nodeErrors });

    const inputs = uploadInputs(api, defs, uploads);
    const front = body.front === true;
    const number =
      typeof body.number === 'number' && Number.isFinite(body.number)
        ? body.number
        : prompts.nextNumber(front);
    if (typeof body.number === 'number') prompts.observeNumber(body.number);
    const callerId =
      typeof body.prompt_id === 'string' && body.prompt_id !== '' && body.prompt_id.length <= 256
        ? body.prompt_id
        : null;
    const clientId = typeof body.client_id === 'string' && body.client_id !== '' ? body.client_id : null;
    const owner = ownerOf(req, options.apiKeys);
    const extra = isObject(body.extra_data) ? { ...body.extra_data } : {};
    delete extra.client_id;
    const job = await manager.create({
      workflow: api,
      priority: front ? 1 : 0,
      request: {
        ...(Object.keys(inputs).length > 0 ? { inputs } : {}),
        // One ComfyUI runs a client's prompts one after another, and clients rely on it (a
        // prompt of theirs that finishes is taken to mean the previous one is done).
        ...(clientId && !options.parallelPerClient
          ? { serial_key: `comfy-facade\u0000${owner}\u0000${clientId}` }
          : {}),
        metadata: { [FACADE_METADATA_KEY]: { prompt_id: callerId, number, client_id: clientId, owner } },
      },
      ...(Object.keys(extra).length > 0 ? { extraData: extra } : {}),
    });
    const entry: FacadePrompt = {
      jobId: job.id,
      promptId: callerId ?? job.id,
      number,
      clientId,
      owner,
      extraData: {
        ...boundedExtra(extra),
        ...(clientId ? { client_id: clientId } : {}),
        create_time: job.created_at,
      },
      outputsToExecute: verdict.outputs,
      hidden: false,
      outputs: {},
      messages: [],
      executed: [],
    };
    prompts.add(entry);
    relay?.watch(job, entry);
    return { prompt_id: entry.promptId, number, node_errors: verdict.nodeErrors };
  });

  both(app, 'GET', '/prompt', async () => ({ exec_info: { queue_remaining: relay?.active ?? 0 } }));

  both(app, 'GET', '/queue', async () => {
    const running: unknown[][] = [];
    const pending: unknown[][] = [];
    for (const jobId of relay?.activeJobIds() ?? []) {
      const job = manager.get(jobId);
      const p = prompts.byJobId(jobId);
      if (!job || !p || !ACTIVE.has(job.status)) continue;
      (job.status === 'queued' ? pending : running).push(queueItem(job, p));
    }
    const byNumber = (a: unknown[], b: unknown[]) => (a[0] as number) - (b[0] as number);
    return { queue_running: running.sort(byNumber), queue_pending: pending.sort(byNumber) };
  });

  both(app, 'POST', '/queue', async (req, reply) => {
    const raw = jsonBody(req);
    const body = isObject(raw) ? raw : {};
    // Over a pool with API keys, a caller only ever removes its own prompts.
    const owner = ownerOf(req, options.apiKeys);
    const pendingOwn = (jobId: string) =>
      manager.get(jobId)?.status === 'queued' && prompts.byJobId(jobId)?.owner === owner;
    if (body.clear === true)
      for (const jobId of relay?.activeJobIds() ?? []) if (pendingOwn(jobId)) manager.cancel(jobId);
    if (Array.isArray(body.delete)) {
      for (const id of body.delete.slice(0, 10_000)) {
        const p = typeof id === 'string' ? prompts.byPromptId(id) : undefined;
        if (p && pendingOwn(p.jobId)) manager.cancel(p.jobId);
      }
    }
    return reply.code(200).send();
  });

  both(app, 'POST', '/interrupt', async (req, reply) => {
    // ComfyUI reads an empty or non-JSON body as `{}` (a global interrupt) and fails on a scalar.
    const raw = jsonBody(req, true);
    if (raw !== null && typeof raw !== 'object') throw new MalformedBodyError('the body is not an object');
    const body = isObject(raw) ? raw : {};
    const owner = ownerOf(req, options.apiKeys);
    const running = (jobId: string) => manager.get(jobId)?.status === 'running';
    if (typeof body.prompt_id === 'string') {
      const p = prompts.byPromptId(body.prompt_id);
      if (p && p.owner === owner && running(p.jobId)) manager.cancel(p.jobId);
      return reply.code(200).send();
    }
    // One ComfyUI runs one prompt, so its global interrupt stops "the current run". Over a pool it
    // stops only the caller's own running prompts: those of its client id when it names one
    // (`client_id` in the body, or `?clientId=` as some clients add to every URL), else every
    // running prompt submitted with the same API key. Never v2 jobs, never pending prompts.
    const q = req.query as Record<string, unknown>;
    const named = [body.client_id, q.clientId, q.client_id].find((x) => typeof x === 'string' && x !== '');
    for (const jobId of relay?.activeJobIds() ?? []) {
      const p = prompts.byJobId(jobId);
      if (!p || p.owner !== owner || !running(jobId)) continue;
      if (named === undefined || p.clientId === named) manager.cancel(jobId);
    }
    return reply.code(200).send();
  });

  both(app, 'GET', '/history', async (req) => {
    const q = req.query as Record<string, string | undefined>;
    const max = q.max_items !== undefined ? Number.parseInt(q.max_items, 10) : Number.NaN;
    const offset = q.offset !== undefined ? Math.max(0, Number.parseInt(q.offset, 10) || 0) : 0;
    const done = finished(ctx);
    const end = Number.isFinite(max) && max >= 0 ? Math.max(0, done.length - offset) : done.length;
    const start = Number.isFinite(max) && max >= 0 ? Math.max(0, end - max) : offset;
    const out: Record<string, unknown> = {};
    for (const { job, prompt } of done.slice(start, end)) out[prompt.promptId] = historyEntry(job, prompt);
    return out;
  });

  app.get('/history/:id', { schema: { hide: true } }, historyOne);
  app.get('/api/history/:id', { schema: { hide: true } }, historyOne);
  async function historyOne(req: FastifyRequest) {
    const id = (req.params as { id: string }).id;
    const p = prompts.byPromptId(id);
    const job = p && !p.hidden ? manager.get(p.jobId) : undefined;
    if (!p || !job || !showInHistory(job)) return {};
    return { [p.promptId]: historyEntry(job, p) };
  }

  both(app, 'POST', '/history', async (req, reply) => {
    const raw = jsonBody(req);
    const body = isObject(raw) ? raw : {};
    const owner = ownerOf(req, options.apiKeys);
    if (body.clear === true) for (const p of prompts.all()) if (p.owner === owner) p.hidden = true;
    if (Array.isArray(body.delete)) {
      for (const id of body.delete.slice(0, 10_000)) {
        const p = typeof id === 'string' ? prompts.byPromptId(id) : undefined;
        if (p && p.owner === owner) p.hidden = true;
      }
    }
    return reply.code(200).send();
  });

  both(app, 'GET', '/object_info', async () => nodeDefs());
  app.get('/object_info/:cls', { schema: { hide: true } }, objectInfoOne);
  app.get('/api/object_info/:cls', { schema: { hide: true } }, objectInfoOne);
  async function objectInfoOne(req: FastifyRequest) {
    const cls = (req.params as { cls: string }).cls;
    const defs = await nodeDefs();
    return Object.hasOwn(defs, cls) ? { [cls]: defs[cls] } : {};
  }

  both(app, 'GET', '/system_stats', async () => systemStats(pool));
  both(app, 'GET', '/features', async () => ({
    supports_preview_metadata: true,
    max_upload_size: maxUploadBytes,
    extension: {},
  }));

  await app.register(fileRoutes, { ctx, maxUploadBytes });
  await app.register(poolRoutes, { ctx });
  await app.register(jobsRoutes, { ctx });
};

/** `request.inputs` entries that make io upload facade-held files to the job's instance. */
function uploadInputs(prompt: ApiPrompt, defs: NodeDefs, uploads: FacadeUploads): Record<string, string> {
  const inputs: Record<string, string> = {};
  for (const [nodeId, node] of Object.entries(prompt)) {
    if (!isObject(node) || !isObject(node.inputs)) continue;
    const files = fileInputsOf(defs[node.class_type] as NodeDef | undefined);
    for (const [input, spec] of files) {
      const value = node.inputs[input];
      const upload = uploads.lookupValue(
        typeof value === 'string' && spec.folder !== 'input' && !/ \[(input|output|temp)\]$/.test(value)
          ? `${value} [${spec.folder}]`
          : value,
      );
      if (upload) inputs[`${nodeId}.${input}`] = `asset:${upload.assetId}`;
    }
  }
  return inputs;
}

/** The COMBO choices of an input (old `[[...]]` and new `["COMBO", {options}]` forms). */
function listedValues(def: unknown, input: string): unknown[] | undefined {
  const d = def as { input?: Record<string, Record<string, unknown> | undefined> } | undefined;
  const spec = d?.input?.required?.[input] ?? d?.input?.optional?.[input];
  if (!Array.isArray(spec)) return undefined;
  if (Array.isArray(spec[0])) return spec[0];
  const options = (spec[1] as { options?: unknown } | undefined)?.options;
  return Array.isArray(options) ? options : undefined;
}

/** ComfyUI keeps extra_data verbatim; a huge one (embedded workflows) is not kept in memory here. */
function boundedExtra(extra: Record<string, unknown>): Record<string, unknown> {
  try {
    return JSON.stringify(extra).length <= 256 * 1024 ? extra : {};
  } catch {
    return {};
  }
}

function showInHistory(job: JobRecord): boolean {
  // A prompt deleted while pending never ran: ComfyUI has no history entry for it.
  return isTerminal(job.status) && !(job.status === 'canceled' && job.started_at === null);
}

function finished(ctx: FacadeContext): Array<{ job: JobRecord; prompt: FacadePrompt }> {
  const out: Array<{ job: JobRecord; prompt: FacadePrompt }> = [];
  for (const prompt of ctx.prompts.all()) {
    if (prompt.hidden) continue;
    const job = ctx.options.manager.get(prompt.jobId);
    if (job && showInHistory(job)) out.push({ job, prompt });
  }
  return out.sort((a, b) => (a.job.completed_at ?? 0) - (b.job.completed_at ?? 0));
}

/**
 * Rebuilds the facade's view of its prompts from the store after a restart: only the jobs it
 * submitted (the store's facade index), newest first, no more than it remembers.
 */
function recover(ctx: FacadeContext): void {
  const { manager } = ctx.options;
  let cursor: string | null = null;
  let seen = 0;
  const limit = ctx.options.maxPrompts ?? 10_000;
  do {
    const page = manager.list({
      limit: Math.min(200, limit - seen),
      cursor,
      metadataKey: FACADE_METADATA_KEY,
    });
    for (const job of page.jobs) {
      const meta = (job.request.metadata as { comfy_facade?: Record<string, unknown> } | undefined)
        ?.comfy_facade;
      if (!isObject(meta)) continue;
      const number = typeof meta.number === 'number' ? meta.number : 0;
      const clientId = typeof meta.client_id === 'string' ? meta.client_id : null;
      const prompt: FacadePrompt = {
        jobId: job.id,
        promptId: typeof meta.prompt_id === 'string' ? meta.prompt_id : job.id,
        number,
        clientId,
        owner: typeof meta.owner === 'string' ? meta.owner : '',
        extraData: { ...(clientId ? { client_id: clientId } : {}), create_time: job.created_at },
        outputsToExecute: [],
        hidden: false,
        outputs: {},
        messages: [],
        executed: [],
      };
      ctx.prompts.observeNumber(number);
      ctx.prompts.add(prompt);
      if (!isTerminal(job.status)) ctx.relay.watch(job, prompt);
      seen++;
    }
    cursor = page.nextCursor;
  } while (cursor && seen < limit);
}

/** One ComfyUI-shaped /system_stats for the whole pool: the gateway's system, every instance's devices. */
async function systemStats(pool: FacadePool): Promise<Record<string, unknown>> {
  const instances = pool.list();
  const answers = await Promise.all(
    instances.map(async (i) => {
      const client = pool.client(i.id);
      try {
        return {
          instance: i,
          stats: (await client?.getSystemStats({ signal: AbortSignal.timeout(5000) })) as
            | Record<string, unknown>
            | undefined,
        };
      } catch {
        return { instance: i, stats: undefined };
      }
    }),
  );
  const first = answers.find((a) => isObject(a.stats?.system))?.stats?.system as
    | Record<string, unknown>
    | undefined;
  let ramTotal = 0;
  let ramFree = 0;
  const devices: unknown[] = [];
  for (const { instance, stats } of answers) {
    const system = isObject(stats?.system) ? stats.system : {};
    ramTotal += typeof system.ram_total === 'number' ? system.ram_total : 0;
    ramFree += typeof system.ram_free === 'number' ? system.ram_free : 0;
    for (const d of Array.isArray(stats?.devices) ? stats.devices : []) {
      if (isObject(d))
        devices.push({
          ...d,
          name: `${instance.id}: ${String(d.name)}`,
          index: devices.length,
          instance_id: instance.id,
        });
    }
  }
  return {
    system: {
      os: first?.os ?? process.platform,
      ram_total: ramTotal,
      ram_free: ramFree,
      comfyui_version: first?.comfyui_version ?? 'unknown',
      required_frontend_version: first?.required_frontend_version ?? null,
      installed_templates_version: first?.installed_templates_version ?? null,
      required_templates_version: first?.required_templates_version ?? null,
      python_version: first?.python_version ?? 'unknown',
      pytorch_version: first?.pytorch_version ?? 'unknown',
      embedded_python: false,
      argv: ['comfy-gateway'],
      gateway: {
        name: 'comfy-gateway',
        instances: answers.map(({ instance, stats }) => ({
          id: instance.id,
          state: instance.state,
          reachable: stats !== undefined,
        })),
      },
    },
    devices,
  };
}

export type { ComfyFacadeOptions, FacadeInstanceClient, FacadePool } from './common.ts';

/**
 * The facade's one error renderer: ComfyUI's `{error: {type, message, details, extra_info}, node_errors}`.
 * Our own errors answer with their status, code (as `type`), message and details (as `extra_info`);
 * an instance's failure or an unexpected error is ComfyUI's plain 500, its message hidden (one
 * ComfyUI has no upstream to blame); Fastify's own errors keep their status (and, below 500, message).
 */
function sendComfyError(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err instanceof MalformedBodyError) return sendAiohttp500(reply);
  if (err instanceof GatewayError && !(err instanceof ComfyError) && err.statusCode !== 500) {
    if (err.statusCode > 500) request.log.error({ err }, 'comfy facade request failed');
    if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter));
    return reply.code(err.statusCode).send({
      error: { ...comfyError(err.code, err.message), extra_info: err.details ?? {} },
      node_errors: {},
    });
  }
  const e = err as Partial<FastifyError>;
  const status =
    !(err instanceof GatewayError) && typeof e.statusCode === 'number' && e.statusCode >= 400
      ? e.statusCode
      : 500;
  if (status >= 500) request.log.error({ err }, 'comfy facade request failed');
  const type =
    e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY'
      ? 'no_prompt'
      : 'server_error';
  return reply.code(status).send({
    error: comfyError(type, status >= 500 ? 'Internal server error' : String(e.message)),
    node_errors: {},
  });
}
