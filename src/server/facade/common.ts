// Types and helpers shared by the facade's files: its options, the pool/client slices it calls,
// the context its route plugins share, and the helper that registers a route with its /api alias.
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError } from '../../errors.ts';
import type { ComfyClientContract } from '../../comfy/index.ts';
import type { AssetStore } from '../../io/index.ts';
import type { JobManager, PrepareOptions } from '../../jobs/index.ts';
import type { PoolContract } from '../../pool/index.ts';
import type { FacadeRelay } from './relay.ts';
import type { FacadePrompts } from './state.ts';
import type { FacadeUploads } from './uploads.ts';
import type { FacadeSockets } from './ws.ts';
import { exceedsDepth, JsonTooDeepError, MAX_JSON_DEPTH } from '../json-depth.ts';

/** The ComfyClient calls the facade makes on an instance, and the socket events it relays. */
export type FacadeInstanceClient = Pick<
  ComfyClientContract,
  | 'baseUrl'
  | 'view'
  | 'getSystemStats'
  | 'getModels'
  | 'getEmbeddings'
  | 'freeMemory'
  | 'getFeatures'
  | 'on'
  | 'off'
>;

/** The Pool calls the facade makes; it follows 'added' and 'removed' to relay each instance's socket. */
export interface FacadePool extends Pick<PoolContract, 'list' | 'nodeDefsFor' | 'on' | 'off'> {
  client(id: string): FacadeInstanceClient | undefined;
}

/** Options of the facade plugin. */
export interface ComfyFacadeOptions {
  manager: JobManager;
  pool: FacadePool;
  /** Where uploads are kept until a job runs (io's AssetStore, also given to the InputResolver). */
  assets: AssetStore;
  /** UI → API conversion (the gateway's ConvertPool); absent = editor-format prompts are refused. */
  convertUi?: PrepareOptions['convertUi'];
  /** API keys (the HTTP routes are checked by the app's auth hook; sockets check them here). */
  apiKeys?: readonly string[];
  /** How long prompts and upload names are remembered (the job retention). */
  retentionMs: number;
  maxPrompts?: number;
  maxUploadNames?: number;
  maxSockets?: number;
  /** Biggest accepted upload (also announced as `max_upload_size`). */
  maxUploadBytes?: number;
  /** Let prompts of one client_id run at once (default false: one at a time, in submission order). */
  parallelPerClient?: boolean;
  /** Most nodes a prompt may have (MAX_WORKFLOW_NODES; editor workflows: convertUi enforces it). */
  maxWorkflowNodes?: number;
}

/** What the facade's routes share. */
export interface FacadeContext {
  options: ComfyFacadeOptions;
  prompts: FacadePrompts;
  uploads: FacadeUploads;
  sockets: FacadeSockets;
  relay: FacadeRelay;
}

/** Registers `path` and `/api${path}` with the same handler. */
export function both(
  app: FastifyInstance,
  method: 'GET' | 'POST',
  path: string,
  handler: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>,
): void {
  for (const url of [path, `/api${path}`]) app.route({ method, url, schema: { hide: true }, handler });
}

/** A request body as the facade received it: raw bytes, whatever the Content-Type said. */
export class RawBody {
  readonly bytes: Buffer;
  #text: string | undefined;
  constructor(bytes: Buffer) {
    this.bytes = bytes;
  }

  /** The bytes as UTF-8 text (decoded once: the prompt route reads it twice, for parsing and conversion). */
  get text(): string {
    this.#text ??= this.bytes.toString('utf8');
    return this.#text;
  }
}

/** ComfyUI's answer to a body `request.json()` cannot read: aiohttp's own 500 page. */
export class MalformedBodyError extends GatewayError {
  constructor(message: string) {
    super('comfy_facade_malformed_body', 500, message);
  }
}

/**
 * Makes every non-multipart body of the facade's routes a RawBody. ComfyUI parses bodies as JSON
 * whatever the Content-Type says: Python's urllib sends application/x-www-form-urlencoded,
 * `curl -d` form or nothing, comfyui-node text/plain.
 */
export function acceptAnyBody(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => {
    done(null, new RawBody(body as Buffer));
  });
}

/**
 * The body as ComfyUI's `await request.json()` reads it. Throws MalformedBodyError for an empty or
 * non-JSON body unless `orEmpty` is true (ComfyUI's /interrupt reads those as `{}`).
 */
export function jsonBody(req: FastifyRequest, orEmpty = false): unknown {
  const text = req.body instanceof RawBody ? req.body.text : '';
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    if (orEmpty) return {};
    throw new MalformedBodyError('the body is not JSON');
  }
  // Parsed here, after the app's depth hook ran: the same bound, before any recursive work.
  if (exceedsDepth(value, MAX_JSON_DEPTH)) throw new JsonTooDeepError(MAX_JSON_DEPTH);
  return value;
}

/** Sends aiohttp's default 500 page, which is what ComfyUI answers to an unreadable body. */
export function sendAiohttp500(reply: FastifyReply): FastifyReply {
  return reply
    .code(500)
    .type('text/plain; charset=utf-8')
    .send('500 Internal Server Error\n\nServer got itself in trouble');
}

/**
 * Who is calling, for scoping interrupts and deletions over a shared pool: a short digest of the
 * bearer key when the gateway has keys (the auth hook already checked it), '' when it has none.
 */
export function ownerOf(req: FastifyRequest, apiKeys: readonly string[] | undefined): string {
  if (!apiKeys || apiKeys.length === 0) return '';
  const key = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim();
  return key ? ownerDigest(key) : '';
}

/** The owner digest of one API key (sockets compute it from their own credentials). */
export function ownerDigest(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}
