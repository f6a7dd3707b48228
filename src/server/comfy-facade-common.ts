// Types and helpers shared by the facade's files: its options, the pool/client slices it calls,
// the context its route plugins share, and the helper that registers a route with its /api alias.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AssetStore } from '../io/index.ts';
import type { ApiPrompt, JobManager, NodeDefs } from '../jobs/index.ts';
import type { FacadeRelay } from './comfy-facade-relay.ts';
import type { FacadePrompts } from './comfy-facade-state.ts';
import type { FacadeUploads } from './comfy-facade-uploads.ts';
import type { FacadeSockets } from './comfy-facade-ws.ts';

/** The ComfyClient calls the facade makes on an instance (the real ComfyClient has them). */
export interface FacadeInstanceClient {
  readonly baseUrl: string;
  view(
    file: { filename: string; subfolder?: string; type?: string },
    options?: { signal?: AbortSignal; range?: string },
  ): Promise<{
    status: number;
    headers: Record<string, string>;
    body: ReadableStream<Uint8Array> | NodeJS.ReadableStream;
    contentType: string;
    contentLength?: number;
  }>;
  getSystemStats?(options?: { signal?: AbortSignal }): Promise<unknown>;
  getFeatures?(options?: { signal?: AbortSignal }): Promise<Record<string, unknown>>;
}

/** The Pool methods the facade calls. */
export interface FacadePool {
  list(): Array<{ id: string; state: string; url?: string }>;
  client(id: string): FacadeInstanceClient | undefined;
  nodeDefsFor(instanceId?: string): Promise<NodeDefs>;
}

/** Options of the facade plugin. */
export interface ComfyFacadeOptions {
  manager: JobManager;
  pool: FacadePool;
  /** Where uploads are kept until a job runs (io's AssetStore, also given to the InputResolver). */
  assets: AssetStore;
  /** UI → API conversion (workflow's toApiPrompt); absent = editor-format prompts are refused. */
  convertUi?: (ui: unknown, defs: NodeDefs) => ApiPrompt;
  /** API keys (the HTTP routes are checked by the app's auth hook; sockets check them here). */
  apiKeys?: readonly string[];
  /** How long prompts and upload names are remembered (the job retention). */
  retentionMs: number;
  maxPrompts?: number;
  maxUploadNames?: number;
  maxSockets?: number;
  /** Biggest accepted upload (also announced as `max_upload_size`). */
  maxUploadBytes?: number;
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
