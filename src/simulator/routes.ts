// The HTTP routes of one simulated ComfyUI (and their /api aliases), answering with v0.8.0's status
// codes, bodies and headers; plus the simulator's own /simulator/* control routes.
import { statSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { PNG } from 'pngjs';
import { type SimulatorFaults, parseFaults } from './faults.ts';
import type { InstanceFiles } from './files.ts';
import { guessContentType } from './files.ts';
import { entryJson, getJob, itemTuple, listJobs, type PromptHistory } from './history.ts';
import {
  BodyTooLargeError,
  parseMultipart,
  type RequestUrl,
  sendAiohttpError,
  sendEmpty,
  sendFile,
  sendJson,
} from './http-util.ts';
import type { ModelsFolder } from './models-folder.ts';
import { nodeDef, nodeDefs, objectInfoText } from './object-info.ts';
import type { PromptQueue, QueueItem } from './prompt-queue.ts';
import { ordered, parsePyJson, PyFloat, pyDumps, pyKeys, pySet, toNumber } from './py-json.ts';
import { pyReprString, validateComfyPrompt } from '../workflow/index.ts';
import { PyStrHash } from './py-set.ts';
import { serverFeatureFlags } from './ws-hub.ts';

/** What the routes need from their instance. */
export interface RouteContext {
  readonly files: InstanceFiles;
  readonly queue: PromptQueue;
  readonly history: PromptHistory;
  readonly port: number;
  nextNumber(): number;
  enqueue(item: QueueItem): void;
  queueChanged(): void;
  interrupt(promptId: string | null): void;
  freeMemory(): void;
  faults(): SimulatorFaults;
  setFaults(f: Partial<SimulatorFaults>): void;
  clearFaults(): void;
  crash(): void;
  stats(): Record<string, unknown>;
  lenientEmptyCombos: boolean;
  /** The models folder (loader choices and /models/<folder>). */
  models: ModelsFolder;
  log(line: string): void;
}

/**
 * The string hashing of the simulated ComfyUI process: PYTHONHASHSEED=4471 is a seed under which
 * CPython 3.11 orders every recorded prompt's output set as the recorded server did.
 */
const OUTPUT_ORDER = new PyStrHash(4471);

const MODEL_FOLDERS = [
  'checkpoints',
  'configs',
  'loras',
  'vae',
  'text_encoders',
  'diffusion_models',
  'clip_vision',
  'style_models',
  'embeddings',
  'diffusers',
  'vae_approx',
  'controlnet',
  'gligen',
  'upscale_models',
  'latent_upscale_models',
  'custom_nodes',
  'hypernetworks',
  'photomaker',
  'classifiers',
  'model_patches',
  'audio_encoders',
];

const INDEX_HTML =
  '<!doctype html>\n<html><head><meta charset="utf-8"><title>ComfyUI (API only)</title></head>\n<body><p>ComfyUI API server for comfy-gateway tests; the web frontend package is not installed.</p></body></html>\n';

const STARTED = Date.now();

function systemStats(port: number): unknown {
  const ram = 25276502016;
  return ordered([
    [
      'system',
      ordered([
        ['os', 'linux'],
        ['ram_total', ram],
        ['ram_free', 24628948992],
        ['comfyui_version', '0.8.0'],
        ['required_frontend_version', '1.35.9'],
        ['installed_templates_version', null],
        ['required_templates_version', '0.7.67'],
        ['python_version', '3.11.2 (main, Apr 28 2025, 14:11:48) [GCC 12.2.0]'],
        ['pytorch_version', '1.13.0a0'],
        ['embedded_python', false],
        [
          'argv',
          [
            'main.py',
            '--cpu',
            '--listen',
            '127.0.0.1',
            '--port',
            String(port),
            '--disable-api-nodes',
            '--disable-auto-launch',
          ],
        ],
      ]),
    ],
    [
      'devices',
      [
        ordered([
          ['name', 'cpu'],
          ['type', 'cpu'],
          ['index', null],
          ['vram_total', ram],
          ['vram_free', 24628948992],
          ['torch_vram_total', ram],
          ['torch_vram_free', 24628948992],
        ]),
      ],
    ],
  ]);
}

/** Raised inside a handler to produce aiohttp's 500 page (what an uncaught Python exception gives). */
class HandlerCrash extends Error {
  readonly code = 'handler_crash';
}

function parseJsonBody(body: Buffer): unknown {
  try {
    return parsePyJson(body.toString('utf8'));
  } catch {
    throw new HandlerCrash('request body is not JSON');
  }
}

/** Python's `key in value` for a parsed JSON value. */
function pyIn(key: string, v: unknown): boolean {
  if (Array.isArray(v)) return v.includes(key);
  if (typeof v === 'string') return v.includes(key);
  if (v && typeof v === 'object' && !(v instanceof PyFloat)) return Object.hasOwn(v, key);
  throw new HandlerCrash('argument of type is not iterable');
}

function pyGet(v: unknown, key: string): unknown {
  if (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof PyFloat))
    return (v as Record<string, unknown>)[key];
  throw new HandlerCrash('not subscriptable');
}

function pyIter(v: unknown): unknown[] {
  if (Array.isArray(v)) return v;
  if (typeof v === 'string') return [...v];
  if (v && typeof v === 'object' && !(v instanceof PyFloat)) return pyKeys(v);
  throw new HandlerCrash('object is not iterable');
}

function pyInt(s: string): number {
  if (!/^\s*[-+]?\d+\s*$/.test(s))
    throw new HandlerCrash(`invalid literal for int() with base 10: ${pyReprString(s)}`);
  return Number.parseInt(s, 10);
}

function pyFloat(v: unknown): PyFloat {
  const n = toNumber(v);
  if (n !== undefined) return new PyFloat(n);
  if (typeof v === 'string' && /^\s*[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?\s*$/i.test(v))
    return new PyFloat(Number(v));
  if (typeof v === 'boolean') return new PyFloat(v ? 1 : 0);
  throw new HandlerCrash('could not convert to float');
}

function objectInfoBody(ctx: RouteContext): string {
  const text = objectInfoText();
  const files = pyDumps(ctx.files.inputImages());
  return ctx.models
    .patchObjectInfo(text)
    .replaceAll('"image": [[], {"image_upload": true}]', `"image": [${files}, {"image_upload": true}]`);
}

function dynamicCombo(ctx: RouteContext, classType: string, input: string): string[] | undefined {
  if ((classType === 'LoadImage' || classType === 'LoadImageMask') && input === 'image')
    return ctx.files.inputImages();
  return ctx.models.choices(classType, input);
}

async function postPrompt(ctx: RouteContext, body: Buffer, res: ServerResponse): Promise<void> {
  const json = parseJsonBody(body);
  let number: unknown;
  if (pyIn('number', json)) {
    number = pyFloat(pyGet(json, 'number'));
  } else {
    let n = ctx.nextNumber();
    if (pyIn('front', json) && pyGet(json, 'front')) n = -n;
    number = n;
  }
  if (!pyIn('prompt', json)) {
    sendJson(
      res,
      400,
      ordered([
        [
          'error',
          ordered([
            ['type', 'no_prompt'],
            ['message', 'No prompt provided'],
            ['details', 'No prompt provided'],
            ['extra_info', {}],
          ]),
        ],
        ['node_errors', {}],
      ]),
    );
    return;
  }
  const obj = json as Record<string, unknown>;
  const prompt = obj.prompt;
  if (!prompt || typeof prompt !== 'object' || Array.isArray(prompt) || prompt instanceof PyFloat) {
    throw new HandlerCrash('prompt must be an object');
  }
  for (const k of pyKeys(prompt)) {
    const n = (prompt as Record<string, unknown>)[k];
    if (!n || typeof n !== 'object' || Array.isArray(n)) throw new HandlerCrash('node must be an object');
  }
  const rawId = obj.prompt_id;
  const promptId = rawId === undefined ? randomUUID() : typeof rawId === 'string' ? rawId : pyDumps(rawId);
  let partial: string[] | null = null;
  if (Object.hasOwn(obj, 'partial_execution_targets')) {
    const p = obj.partial_execution_targets;
    partial = p === null ? null : pyIter(p).map(String);
  }
  const valid = validateComfyPrompt(prompt as Record<string, unknown>, nodeDefs(), {
    partialTargets: partial,
    comboChoices: (classType, input, _value, listed) => {
      const options = dynamicCombo(ctx, classType, input) ?? listed;
      return listed.length === 0 && options.length === 0 && ctx.lenientEmptyCombos ? null : options;
    },
    fileExists: (_classType, _input, name) => ctx.files.annotatedExists(name),
    convertInPlace: true,
    pyValues: true,
    orderOutputs: (ids) => OUTPUT_ORDER.setOrder(ids),
    executionPy: '/opt/comfyui-simulator/execution.py',
  });
  let extraData: Record<string, unknown> = ordered([]);
  if (Object.hasOwn(obj, 'extra_data')) {
    const e = obj.extra_data;
    if (!e || typeof e !== 'object' || Array.isArray(e))
      throw new HandlerCrash('extra_data must be an object');
    extraData = e as Record<string, unknown>;
  }
  if (Object.hasOwn(obj, 'client_id')) pySet(extraData, 'client_id', obj.client_id);
  if (!valid.ok) {
    ctx.log(`invalid prompt: ${valid.error.type}: ${valid.error.message}`);
    sendJson(
      res,
      400,
      ordered([
        ['error', ordered(Object.entries(valid.error))],
        ['node_errors', valid.nodeErrors],
      ]),
    );
    return;
  }
  const sensitive: Record<string, unknown> = {};
  for (const k of ['auth_token_comfy_org', 'api_key_comfy_org']) {
    if (Object.hasOwn(extraData, k)) {
      sensitive[k] = extraData[k];
      delete extraData[k];
    }
  }
  pySet(extraData, 'create_time', Date.now());
  const sim = extraData.simulator as Record<string, unknown> | undefined;
  const parked = ctx.faults().neverStart || (!!sim && typeof sim === 'object' && sim.never_start === true);
  ctx.enqueue({
    number,
    promptId,
    prompt: prompt as Record<string, unknown>,
    extraData,
    outputs: valid.outputs,
    sensitive,
    parked,
  });
  sendJson(
    res,
    200,
    ordered([
      ['prompt_id', promptId],
      ['number', number],
      ['node_errors', valid.nodeErrors],
    ]),
  );
}

function viewRoute(ctx: RouteContext, url: RequestUrl, res: ServerResponse): void {
  const r = ctx.files.viewPath(url.searchParams);
  if ('status' in r) {
    sendEmpty(res, r.status);
    return;
  }
  const st = statSync(r.path);
  let data: Buffer = readFileSync(r.path);
  let contentType = guessContentType(r.filename);
  const channel = url.searchParams.get('channel');
  if (channel !== null && channel !== 'rgba' && contentType === 'image/png') {
    try {
      const png = PNG.sync.read(data);
      const out = new PNG({ width: png.width, height: png.height });
      for (let i = 0; i < png.data.length; i += 4) {
        if (channel === 'a') {
          const a = png.data[i + 3]!;
          out.data[i] = out.data[i + 1] = out.data[i + 2] = 0;
          out.data[i + 3] = a;
        } else {
          out.data[i] = png.data[i]!;
          out.data[i + 1] = png.data[i + 1]!;
          out.data[i + 2] = png.data[i + 2]!;
          out.data[i + 3] = 255;
        }
      }
      data = PNG.sync.write(out, { colorType: channel === 'a' ? 6 : 2 });
      contentType = 'image/png';
    } catch {
      // Not decodable: serve as stored.
    }
  }
  if (
    ['text/html', 'text/html-sandboxed', 'application/xhtml+xml', 'text/javascript', 'text/css'].includes(
      contentType,
    )
  ) {
    contentType = 'application/octet-stream';
  }
  sendFile(res, data, { filename: r.filename, contentType, mtimeMs: st.mtimeMs });
}

async function uploadRoute(
  ctx: RouteContext,
  req: IncomingMessage,
  body: Buffer,
  res: ServerResponse,
  mask: boolean,
): Promise<void> {
  const ct = req.headers['content-type'] ?? '';
  if (!ct.toLowerCase().startsWith('multipart/')) throw new HandlerCrash('not multipart');
  let form: Awaited<ReturnType<typeof parseMultipart>>;
  try {
    form = await parseMultipart(ct, body);
  } catch {
    throw new HandlerCrash('bad multipart body');
  }
  const image = form.files.get('image');
  if (!image?.filename) {
    sendEmpty(res, 400);
    return;
  }
  const overwrite = form.fields.get('overwrite');
  const subfolder = form.fields.get('subfolder') ?? '';
  let data: Buffer = image.data;
  if (mask) {
    const refText = form.fields.get('original_ref');
    if (refText === undefined) throw new HandlerCrash('original_ref missing');
    const ref = parseJsonBody(Buffer.from(refText)) as Record<string, unknown>;
    const q = new URLSearchParams();
    q.set('filename', String(ref.filename ?? ''));
    q.set('type', String(ref.type ?? 'output'));
    q.set('subfolder', String(ref.subfolder ?? ''));
    const orig = ctx.files.viewPath(q);
    if ('status' in orig) {
      sendEmpty(res, 404);
      return;
    }
    try {
      const base = PNG.sync.read(readFileSync(orig.path));
      const m = PNG.sync.read(image.data);
      const out = new PNG({ width: base.width, height: base.height });
      base.data.copy(out.data);
      for (let y = 0; y < base.height; y++) {
        for (let x = 0; x < base.width; x++) {
          const mx = Math.min(m.width - 1, Math.floor((x * m.width) / base.width));
          const my = Math.min(m.height - 1, Math.floor((y * m.height) / base.height));
          out.data[(y * base.width + x) * 4 + 3] = m.data[(my * m.width + mx) * 4 + 3]!;
        }
      }
      data = PNG.sync.write(out, { colorType: 6 });
    } catch {
      throw new HandlerCrash('cannot decode images for mask upload');
    }
  }
  const r = ctx.files.saveUpload({
    type: form.fields.get('type'),
    subfolder,
    filename: image.filename,
    data,
    overwrite: overwrite === 'true' || overwrite === '1',
  });
  if ('status' in r) {
    if (r.status === 500) throw new HandlerCrash('unknown upload type');
    sendEmpty(res, r.status);
    return;
  }
  sendJson(
    res,
    200,
    ordered([
      ['name', r.name],
      ['subfolder', subfolder],
      ['type', r.type],
    ]),
  );
}

/** Dispatches one request; `body` is read lazily. Returns false when no route matched. */
export async function route(
  ctx: RouteContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: RequestUrl,
  getBody: () => Promise<Buffer>,
): Promise<void> {
  const method = req.method ?? 'GET';
  let path = url.pathname;
  try {
    if (path.startsWith('/simulator/')) {
      await simulatorRoute(ctx, method, path, getBody, res);
      return;
    }
    if (path === '/api/jobs' || path.startsWith('/api/jobs/')) {
      if (method !== 'GET') return sendAiohttpError(res, 405);
      if (path === '/api/jobs') {
        const [status, body] = listJobs(ctx.queue, ctx.history, url.searchParams);
        return sendJson(res, status, body);
      }
      const id = decodeURIComponent(path.slice('/api/jobs/'.length));
      if (!id || id.includes('/')) return sendAiohttpError(res, 404);
      const [status, body] = getJob(ctx.queue, ctx.history, id);
      return sendJson(res, status, body);
    }
    if (path.startsWith('/api/')) path = path.slice(4);
    const is = (m: string, p: string) => method === m && path === p;
    if (path === '/') {
      if (method !== 'GET') return sendAiohttpError(res, 405);
      return sendFile(res, Buffer.from(INDEX_HTML), {
        contentType: 'text/html',
        mtimeMs: STARTED,
        extra: [
          ['Cache-Control', 'no-cache'],
          ['Pragma', 'no-cache'],
          ['Expires', '0'],
        ],
      });
    }
    if (is('GET', '/embeddings') || is('GET', '/extensions')) return sendJson(res, 200, []);
    if (is('GET', '/models')) return sendJson(res, 200, MODEL_FOLDERS);
    if (method === 'GET' && path.startsWith('/models/')) {
      const folder = decodeURIComponent(path.slice('/models/'.length));
      return MODEL_FOLDERS.includes(folder)
        ? sendJson(res, 200, ctx.models.files(folder) ?? [])
        : sendEmpty(res, 404);
    }
    if (is('GET', '/features')) return sendJson(res, 200, serverFeatureFlags());
    if (is('GET', '/system_stats')) return sendJson(res, 200, systemStats(ctx.port));
    if (is('GET', '/prompt'))
      return sendJson(
        res,
        200,
        ordered([['exec_info', ordered([['queue_remaining', ctx.queue.remaining()]])]]),
      );
    if (is('POST', '/prompt')) return await postPrompt(ctx, await getBody(), res);
    if (is('GET', '/queue')) {
      const strip = (x: QueueItem) => itemTuple(x);
      return sendJson(
        res,
        200,
        ordered([
          ['queue_running', ctx.queue.running ? [strip(ctx.queue.running)] : []],
          ['queue_pending', ctx.queue.pending().map(strip)],
        ]),
      );
    }
    if (is('POST', '/queue')) {
      const json = parseJsonBody(await getBody());
      if (pyIn('clear', json) && pyGet(json, 'clear')) {
        ctx.queue.clear();
        ctx.queueChanged();
      }
      if (pyIn('delete', json)) {
        for (const id of pyIter(pyGet(json, 'delete')))
          if (typeof id === 'string' && ctx.queue.delete(id)) ctx.queueChanged();
      }
      return sendEmpty(res, 200);
    }
    if (is('POST', '/interrupt')) {
      let json: unknown = {};
      const body = await getBody();
      try {
        json = parsePyJson(body.toString('utf8'));
      } catch {
        json = {};
      }
      const pid =
        json && typeof json === 'object' && !Array.isArray(json)
          ? (json as Record<string, unknown>).prompt_id
          : undefined;
      if (json !== null && typeof json !== 'object') throw new HandlerCrash('body is not an object');
      ctx.interrupt(pid === undefined || pid === null ? null : String(pid));
      return sendEmpty(res, 200);
    }
    if (is('POST', '/free')) {
      const json = parseJsonBody(await getBody());
      if (json && typeof json === 'object' && (json as Record<string, unknown>).free_memory) ctx.freeMemory();
      return sendEmpty(res, 200);
    }
    if (is('GET', '/history')) {
      const mi = url.searchParams.get('max_items');
      const off = url.searchParams.get('offset');
      const maxItems = mi === null ? null : pyInt(mi);
      const offset = off === null ? -1 : pyInt(off);
      return sendJson(res, 200, ctx.history.list(maxItems, offset));
    }
    if (method === 'GET' && path.startsWith('/history/')) {
      const id = decodeURIComponent(path.slice('/history/'.length));
      const e = ctx.history.get(id);
      return sendJson(res, 200, e ? new Map([[id, entryJson(e)]]) : {});
    }
    if (is('POST', '/history')) {
      const json = parseJsonBody(await getBody());
      if (pyIn('clear', json) && pyGet(json, 'clear')) ctx.history.clear();
      if (pyIn('delete', json))
        for (const id of pyIter(pyGet(json, 'delete'))) ctx.history.delete(String(id));
      return sendEmpty(res, 200);
    }
    if (is('GET', '/view')) return viewRoute(ctx, url, res);
    if (is('POST', '/upload/image')) return await uploadRoute(ctx, req, await getBody(), res, false);
    if (is('POST', '/upload/mask')) return await uploadRoute(ctx, req, await getBody(), res, true);
    if (is('GET', '/object_info')) {
      const text = objectInfoBody(ctx);
      res.sendDate = false;
      return sendRawJson(res, text);
    }
    if (method === 'GET' && path.startsWith('/object_info/')) {
      const cls = decodeURIComponent(path.slice('/object_info/'.length));
      const def = nodeDef(cls);
      if (!def) return sendJson(res, 200, {});
      let out: unknown = ctx.models.patchedDef(cls) ?? def;
      if (cls === 'LoadImage' || cls === 'LoadImageMask') {
        out = parsePyJson(
          pyDumps(def).replace(
            '"image": [[], {"image_upload": true}]',
            `"image": [${pyDumps(ctx.files.inputImages())}, {"image_upload": true}]`,
          ),
        );
      }
      return sendJson(res, 200, new Map([[cls, out]]));
    }
    const known = [
      '/prompt',
      '/queue',
      '/interrupt',
      '/free',
      '/history',
      '/view',
      '/upload/image',
      '/upload/mask',
      '/object_info',
      '/embeddings',
      '/extensions',
      '/models',
      '/features',
      '/system_stats',
    ];
    if (known.includes(path)) return sendAiohttpError(res, 405);
    return sendAiohttpError(res, 404);
  } catch (err) {
    if (err instanceof BodyTooLargeError) return sendAiohttpError(res, 413);
    ctx.log(`handler error on ${method} ${url.pathname}: ${(err as Error).message}`);
    return sendAiohttpError(res, 500);
  }
}

function sendRawJson(res: ServerResponse, text: string): void {
  // Same header set as sendJson, for a body that is already serialised.
  const buf = Buffer.from(text);
  res.writeHead(200, 'OK', [
    'Content-Type',
    'application/json; charset=utf-8',
    'Content-Security-Policy',
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; frame-src 'self'; object-src 'self';",
    'Content-Length',
    String(buf.length),
    'Date',
    new Date().toUTCString(),
    'Server',
    'Python/3.11 aiohttp/3.8.4',
  ]);
  res.end(buf);
}

async function simulatorRoute(
  ctx: RouteContext,
  method: string,
  path: string,
  getBody: () => Promise<Buffer>,
  res: ServerResponse,
): Promise<void> {
  const sendPlain = (status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  };
  if (path === '/simulator/faults' && method === 'POST') {
    let parsed: Partial<SimulatorFaults>;
    try {
      parsed = parseFaults(JSON.parse((await getBody()).toString('utf8') || '{}'));
    } catch (err) {
      return sendPlain(400, { error: { code: 'invalid_faults', message: (err as Error).message } });
    }
    ctx.setFaults(parsed);
    return sendPlain(200, ctx.faults());
  }
  if (path === '/simulator/faults' && method === 'DELETE') {
    ctx.clearFaults();
    return sendPlain(200, ctx.faults());
  }
  if (path === '/simulator/faults' && method === 'GET') return sendPlain(200, ctx.faults());
  if (path === '/simulator/stats' && method === 'GET') return sendPlain(200, ctx.stats());
  if (path === '/simulator/crash' && method === 'POST') {
    sendPlain(200, { crashing: true });
    res.once('finish', () => ctx.crash());
    return;
  }
  return sendPlain(404, { error: { code: 'not_found', message: `no simulator route ${method} ${path}` } });
}
