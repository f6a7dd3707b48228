// The slices of the comfy/, pool/, io/ and webhooks/ contracts that the job layer uses, written as
// structural types so jobs/ depends on behaviour, not on classes. The real ComfyClient, Pool,
// InputResolver, OutputDelivery and WebhookDispatcher satisfy them as they are.
import type { EventEmitter } from 'node:events';

/** API-format prompt. */
export type ApiPrompt = Record<
  string,
  { class_type: string; inputs: Record<string, unknown>; _meta?: { title?: string } }
>;

/** A file a run produced (comfy contract). */
export interface OutputFile {
  nodeId: string;
  kind: 'image' | 'video' | 'audio' | 'text' | 'file';
  filename: string;
  subfolder: string;
  type: string;
}

/** Result of one prompt (comfy contract). */
export interface RunResult {
  promptId: string;
  outputs: OutputFile[];
  texts: Array<{ nodeId: string; text: string }>;
  rawOutputs: Record<string, Record<string, unknown>>;
  stats: {
    queuedAt: number;
    startedAt?: number;
    finishedAt: number;
    queueWaitMs?: number;
    executionMs?: number;
    nodes: Record<string, { startedAt: number; finishedAt?: number }>;
    cachedNodes: string[];
  };
}

/** Events a run reports (comfy contract). */
export type RunEvent =
  | { type: 'queued'; promptId: string; number: number }
  | { type: 'started'; promptId: string }
  | { type: 'cached'; promptId: string; nodes: string[] }
  | { type: 'executing'; promptId: string; nodeId: string; displayNodeId?: string; classType?: string }
  | { type: 'progress'; promptId: string; nodeId: string; value: number; max: number }
  | { type: 'executed'; promptId: string; nodeId: string; output: Record<string, unknown> }
  | { type: 'preview'; promptId: string; nodeId?: string; mime: string; data: Buffer };

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
  tryAcquire(req: { classTypes: string[]; models?: string[]; exclude?: string[] }): LeaseLike | null;
  canEverRun(classTypes: string[]): { ok: true } | { ok: false; missing: string[] };
  nodeDefsFor(instanceId?: string): Promise<NodeDefs>;
  list(): Array<{ id: string; state: string }>;
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
    },
  ): Promise<{ prompt: ApiPrompt; uploads: unknown[] }>;
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
    options?: { headers?: Record<string, string> },
  ): Promise<unknown>;
}

/** pino-compatible logger subset. */
export interface LoggerLike {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
  child?(bindings: object): LoggerLike;
}
