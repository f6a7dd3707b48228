// The slices of the comfy/, pool/, io/ and webhooks/ contracts that the job layer uses: behaviour as
// structural types so jobs/ depends on behaviour, not on classes. The real ComfyClient, Pool,
// InputResolver, OutputDelivery and WebhookDispatcher satisfy them as they are.
import type { EventEmitter } from 'node:events';
import type { ApiPrompt, RunEvent, RunResult } from '../comfy/index.ts';
import type { Logger } from '../logger.ts';
import type { JobWebhookDelivery } from './job.ts';

// The data types are the client SDK's own (jobs/ may import comfy/); only behaviour is structural.
export type { ApiPrompt, OutputFile, RunEvent, RunResult } from '../comfy/index.ts';

/** Streamed file from /view (comfy contract). */
export interface ViewResponse {
  status: number;
  headers: Record<string, string>;
  body: ReadableStream<Uint8Array> | NodeJS.ReadableStream;
  contentType: string;
  contentLength?: number;
}

/** The ComfyClient methods the gateway calls. */
export interface ComfyClientLike {
  readonly baseUrl: string;
  run(
    prompt: ApiPrompt,
    options?: {
      promptId?: string;
      signal?: AbortSignal;
      timeoutMs?: number;
      extraData?: Record<string, unknown>;
      onEvent?: (event: RunEvent) => void;
      headers?: Record<string, string>;
    },
  ): Promise<RunResult>;
  waitForPrompt(
    promptId: string,
    options?: {
      signal?: AbortSignal;
      timeoutMs?: number;
      onEvent?: (event: RunEvent) => void;
      headers?: Record<string, string>;
    },
  ): Promise<RunResult>;
  getPromptState(
    promptId: string,
    options?: { signal?: AbortSignal },
  ): Promise<'pending' | 'running' | 'completed' | 'failed' | 'unknown'>;
  cancel(promptId: string, options?: { headers?: Record<string, string> }): Promise<void>;
  getQueue(options?: { signal?: AbortSignal }): Promise<{
    running: Array<{ promptId: string }>;
    pending: Array<{ promptId: string }>;
  }>;
  getHistories(options?: { signal?: AbortSignal; maxItems?: number }): Promise<Record<string, unknown>>;
  view(
    file: { filename: string; subfolder?: string; type?: string },
    options?: { signal?: AbortSignal; range?: string },
  ): Promise<ViewResponse>;
}

/** A slot on one instance (pool contract). */
export interface LeaseLike {
  readonly instanceId: string;
  readonly url: string;
  readonly client: ComfyClientLike;
  /** Aborted when the pool declares the instance down: the work on it will not complete. */
  readonly signal?: AbortSignal;
  markStarted(): void;
  release(outcome: { ok: true } | { ok: false; error: unknown; infrastructure: boolean }): void;
}

/** Node definitions from /object_info. */
export type NodeDefs = Record<string, unknown>;

/** The Pool methods the gateway calls. */
export interface PoolLike extends Pick<EventEmitter, 'on' | 'off'> {
  tryAcquire(req: {
    classTypes: string[];
    models?: string[];
    requiredModels?: string[];
    exclude?: string[];
  }): LeaseLike | null;
  canEverRun(classTypes: string[]): { ok: true } | { ok: false; missing: string[] };
  /** True when a healthy instance has every class now (busy or not). */
  canRunNow(classTypes: string[]): boolean;
  nodeDefsFor(instanceId?: string): Promise<NodeDefs>;
  list(): Array<{ id: string; state: string; maxJobs?: number }>;
  client(id: string): ComfyClientLike | undefined;
}

/** io InputResolver. */
export interface InputResolverLike {
  resolve(
    prompt: ApiPrompt,
    options: {
      inputs?: Record<string, string>;
      nodeDefs: NodeDefs;
      client: ComfyClientLike;
      signal?: AbortSignal;
      prefetched?: PrefetchedLike;
    },
  ): Promise<{ prompt: ApiPrompt; uploads: unknown[] }>;
  /** Fetches and checks a job's inputs before it takes an instance slot. */
  prefetch?(
    prompt: ApiPrompt,
    options: { inputs?: Record<string, string>; nodeDefs: NodeDefs; signal?: AbortSignal },
  ): Promise<PrefetchedLike>;
}

/** Inputs fetched ahead of an attempt (io's PrefetchedInputs); released when the job ends. */
export interface PrefetchedLike {
  release(): void;
}

/** io OutputDelivery. */
export interface OutputDeliveryLike {
  deliver(
    job: { id: string },
    result: RunResult,
    client: ComfyClientLike,
    options: {
      store: 'link' | 'inline' | 'storage';
      format?: 'png' | 'jpeg' | 'webp';
      quality?: number;
      includePreviews?: boolean;
      linkBaseUrl: string;
      signal?: AbortSignal;
    },
  ): Promise<
    Array<Record<string, unknown> & { source?: { filename: string; subfolder: string; type: string } }>
  >;
}

/** webhooks WebhookDispatcher. */
export interface WebhookDispatcherLike {
  send(
    jobId: string,
    url: string,
    eventType: 'job.succeeded' | 'job.failed' | 'job.canceled' | 'job.progress',
    payload: unknown,
    options?: {
      headers?: Record<string, string>;
      onUpdate?: (delivery: JobWebhookDelivery) => void;
      resume?: JobWebhookDelivery;
    },
  ): Promise<unknown>;
  /** Throws when delivery to `url` would be refused (shape, credentials, literal private address). */
  validateUrl?(url: string): void;
}

/** The jobs layer's logger: the one contract of src/logger.ts. */
export type LoggerLike = Logger;

/** Model downloads a job waits for before it is queued (the models feature provides it). */
export interface ModelProvisionLike {
  /** Resolves once every model is on the instances; rejects with `{code, message, details?}` otherwise. */
  readonly ready: Promise<void>;
  /** Subscribes to download progress (a line for people); returns the unsubscribe. */
  onProgress(listener: (message: string) => void): () => void;
}
