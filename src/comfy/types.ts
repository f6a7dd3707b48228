// Public data types of the ComfyUI client: prompts, results, run events, history/queue records and
// the options of every call. Shapes follow ComfyUI v0.8.0 (see docs/comfyui-protocol.md).
import type { Logger } from '../logger.ts';
import type { ObjectInfoCache } from './object-info-cache.ts';

/** An API-format prompt: node id → node. */
export type ApiPrompt = Record<
  string,
  { class_type: string; inputs: Record<string, unknown>; _meta?: { title?: string } }
>;

/** Lifecycle of the client's shared WebSocket. */
export type ComfyClientState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** One file a prompt produced, as referenced by the history / `executed` output. */
export interface OutputFile {
  nodeId: string;
  kind: 'image' | 'video' | 'audio' | 'text' | 'file';
  filename: string;
  subfolder: string;
  type: 'output' | 'temp' | 'input' | string;
  /** The output key the file was listed under (`images`, `gifs`, `audio`, …). */
  key?: string;
}

/** Per-node timing of one run, from the client's clock. */
export interface NodeTiming {
  startedAt: number;
  finishedAt?: number;
}

/** Execution statistics of one run (ms since epoch / durations in ms). */
export interface RunStats {
  queuedAt: number;
  startedAt?: number;
  finishedAt: number;
  queueWaitMs?: number;
  executionMs?: number;
  nodes: Record<string, NodeTiming>;
  cachedNodes: string[];
}

/** What a finished prompt produced. */
export interface RunResult {
  promptId: string;
  /** Every file from every output node, in node order. */
  outputs: OutputFile[];
  /** Text outputs where a node reports them. */
  texts: Array<{ nodeId: string; text: string }>;
  /** History outputs unchanged. */
  rawOutputs: Record<string, Record<string, unknown>>;
  stats: RunStats;
  /** Non-empty when ComfyUI queued the prompt with only some of its outputs (200 with node_errors). */
  nodeErrors?: Record<string, unknown>;
}

/** Events of one run, delivered only to that run's caller. */
export type RunEvent =
  | { type: 'queued'; promptId: string; number: number }
  | { type: 'started'; promptId: string }
  | { type: 'cached'; promptId: string; nodes: string[] }
  | { type: 'executing'; promptId: string; nodeId: string; displayNodeId?: string; classType?: string }
  | { type: 'progress'; promptId: string; nodeId: string; value: number; max: number }
  | { type: 'executed'; promptId: string; nodeId: string; output: Record<string, unknown> }
  | { type: 'preview'; promptId: string; nodeId?: string; mime: string; data: Buffer };

/** A decoded binary preview frame (types 1 and 4). */
export interface PreviewFrame {
  promptId?: string;
  nodeId?: string;
  displayNodeId?: string;
  mime: string;
  data: Buffer;
}

/** A decoded binary TEXT frame (type 3). */
export interface TextFrame {
  promptId?: string;
  nodeId: string;
  text: string;
}

/** One `status.messages` element of a history entry. */
export type HistoryStatusMessage = [string, Record<string, unknown>];

/** A `GET /history` entry. */
export interface HistoryEntry {
  prompt: [number, string, ApiPrompt, Record<string, unknown>, string[]];
  outputs: Record<string, Record<string, unknown>>;
  status?: { status_str: 'success' | 'error' | string; completed: boolean; messages: HistoryStatusMessage[] };
  meta?: Record<
    string,
    { node_id?: string; display_node?: string; parent_node?: string | null; real_node_id?: string }
  >;
}

/** A `GET /queue` item, decoded from ComfyUI's 5-tuple. */
export interface QueueItem {
  number: number;
  promptId: string;
  prompt: ApiPrompt;
  extraData: Record<string, unknown>;
  outputsToExecute: string[];
}

/** A node definition from `/object_info` (fields beyond these are kept as-is). */
export interface NodeDef {
  input: {
    required?: Record<string, unknown>;
    optional?: Record<string, unknown>;
    hidden?: Record<string, unknown>;
  };
  input_order?: { required?: string[]; optional?: string[]; hidden?: string[] };
  output: unknown[];
  output_is_list?: boolean[];
  output_name?: string[];
  name: string;
  display_name?: string | null;
  description?: string;
  python_module?: string;
  category?: string;
  output_node: boolean;
  deprecated?: boolean;
  experimental?: boolean;
  api_node?: boolean;
  [key: string]: unknown;
}

/** `GET /system_stats`. */
export interface SystemStats {
  system: {
    os?: string;
    ram_total?: number;
    ram_free?: number;
    comfyui_version?: string;
    required_frontend_version?: string;
    python_version?: string;
    pytorch_version?: string;
    embedded_python?: boolean;
    argv?: string[];
    [key: string]: unknown;
  };
  devices: Array<{
    name: string;
    type: string;
    index?: number | null;
    vram_total?: number;
    vram_free?: number;
    torch_vram_total?: number;
    torch_vram_free?: number;
    [key: string]: unknown;
  }>;
}

/** A job of ComfyUI's `/api/jobs` (v0.6+). */
export interface ComfyJob {
  id: string;
  status: 'pending' | 'in_progress' | 'completed' | 'failed' | 'cancelled' | string;
  priority?: number;
  create_time?: number;
  execution_start_time?: number;
  execution_end_time?: number;
  execution_error?: Record<string, unknown>;
  outputs_count?: number;
  preview_output?: Record<string, unknown>;
  workflow_id?: string;
  outputs?: Record<string, Record<string, unknown>>;
  execution_status?: Record<string, unknown>;
  workflow?: { prompt: ApiPrompt; extra_data: Record<string, unknown> };
  [key: string]: unknown;
}

/** Query of `GET /api/jobs`. */
export interface JobsQuery {
  status?: Array<'pending' | 'in_progress' | 'completed' | 'failed'> | string;
  workflowId?: string;
  sortBy?: 'created_at' | 'execution_duration';
  sortOrder?: 'asc' | 'desc';
  limit?: number;
  offset?: number;
}

/** Answer of `GET /api/jobs`. */
export interface JobsPage {
  jobs: ComfyJob[];
  pagination: { offset: number; limit: number | null; total: number; has_more: boolean };
}

/** Where a prompt is, from `/queue` + `/history`. */
export type PromptState = 'pending' | 'running' | 'completed' | 'failed' | 'unknown';

/** Options every call accepts. */
export interface CallOptions {
  signal?: AbortSignal;
  /** Overrides the client's requestTimeoutMs for this call. */
  timeoutMs?: number;
  /**
   * Extra headers for this call only, merged over the client's `headers` (names are
   * case-insensitive), e.g. `{ 'x-request-id': id }` to trace a gateway request into ComfyUI's logs.
   */
  headers?: Record<string, string>;
}

/** What the client logs with: the debug and warn methods of a pino-compatible logger. */
export type ComfyLogger = Pick<Logger, 'debug' | 'warn'>;

/** Constructor options of ComfyClient. */
export interface ComfyClientOptions {
  /** e.g. 'http://127.0.0.1:8188' (a path prefix is kept: 'https://host/comfy'). */
  baseUrl: string;
  /** Default: a random UUID; used for the one shared WebSocket and every prompt's client_id. */
  clientId?: string;
  /** Sent with every HTTP request and the WebSocket upgrade (e.g. auth behind a proxy). */
  headers?: Record<string, string>;
  /** Per HTTP call (default 30 000). */
  requestTimeoutMs?: number;
  /** Parallel output downloads (default 8). */
  downloadConcurrency?: number;
  /** Fallback history polling while a run is in flight (default 1000). */
  historyPollIntervalMs?: number;
  /**
   * Where a finished run's outputs come from. 'events' (default): the `executed` messages, when the
   * socket saw the whole run (from `execution_start`, no drop) of a server that announces
   * `feature_flags` (ComfyUI ≥ 0.3.4x, which also reports cached nodes' outputs); otherwise, and
   * always with 'history', the prompt's `/history` entry.
   */
  outputsFrom?: 'events' | 'history';
  /** WebSocket reconnect backoff (defaults 250 ms → 10 s, 10 attempts). */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number; maxAttempts?: number };
  /** Dead-socket detection: ping after `intervalMs` of silence, give up `timeoutMs` later. */
  heartbeat?: { intervalMs?: number; timeoutMs?: number };
  /** Retries of idempotent HTTP calls on transient failures (default 3 attempts, 100 ms → 2 s). */
  retry?: { maxAttempts?: number; initialDelayMs?: number; maxDelayMs?: number };
  /** Keep-alive connections to the server (default 16). */
  connections?: number;
  /**
   * Shared by clients of servers with the same nodes (a pool): identical /object_info answers are
   * parsed once and the clients get the same read-only object.
   */
  objectInfoCache?: ObjectInfoCache;
  logger?: ComfyLogger;
}

/** Options of `run()`. */
export interface RunOptions {
  promptId?: string;
  signal?: AbortSignal;
  /** Deadline of the whole run, queue wait included (default 10 minutes). */
  timeoutMs?: number;
  extraData?: Record<string, unknown>;
  front?: boolean;
  onEvent?: (event: RunEvent) => void;
  /** Extra headers on every HTTP call the run makes (POST /prompt, polls, the cancel on abort). */
  headers?: Record<string, string>;
}

/** Options of `waitForPrompt()`. */
export interface WaitOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  onEvent?: (event: RunEvent) => void;
  /** Cancel the prompt on the server when the deadline passes or the signal aborts (default true). */
  cancelOnAbort?: boolean;
  /** Extra headers on every HTTP call the wait makes (polls, the cancel on abort). */
  headers?: Record<string, string>;
}

/** Options of `queuePrompt()`. */
export interface QueuePromptOptions {
  promptId?: string;
  front?: boolean;
  number?: number;
  extraData?: Record<string, unknown>;
  partialExecutionTargets?: string[];
  signal?: AbortSignal;
  /** Extra headers for this call only (also on the look-up after an ambiguous failure). */
  headers?: Record<string, string>;
}

/** Answer of `queuePrompt()`. */
export interface QueuedPrompt {
  promptId: string;
  number: number;
  nodeErrors: Record<string, unknown>;
}

/** A file reference for `/view` and upload results. */
export interface FileRef {
  filename: string;
  subfolder?: string;
  type?: string;
}

/** Options of `uploadImage()` / `uploadMask()`. */
export interface UploadOptions {
  filename: string;
  subfolder?: string;
  type?: 'input' | 'temp' | 'output';
  overwrite?: boolean;
  /** Required by uploadMask: the image whose alpha channel is replaced. */
  mask?: { originalRef: FileRef };
  /** Content type of the file part (default from the file name). */
  contentType?: string;
  signal?: AbortSignal;
  /** Extra headers for this upload only. */
  headers?: Record<string, string>;
}

/** Answer of an upload. */
export interface UploadResult {
  name: string;
  subfolder: string;
  type: string;
}

/** A streamed `/view` answer; the caller must consume or destroy `body`. */
export interface ViewResponse {
  status: number;
  headers: Record<string, string>;
  body: NodeJS.ReadableStream & AsyncIterable<Uint8Array>;
  contentType: string;
  contentLength?: number;
}
