// ComfyClient: the SDK's entry point for one ComfyUI server. Owns the lifecycle (HTTP transport,
// the shared WebSocket), runs (`run`/`waitForPrompt`, tracked by prompt id) and the routing of
// socket messages to them. Endpoint calls are grouped in queue-api.ts (queue/history),
// files-api.ts (uploads/view/downloads) and info-api.ts (object_info, stats, models, jobs); the
// class delegates to them so its public API stays one object.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { ApiCalls } from './api-calls.ts';
import { checkDuration } from './deadline.ts';
import type { OutputSink } from './downloads.ts';
import { ComfyArgumentError, ComfyClosedError, ComfyError } from './errors.ts';
import { type DownloadOptions, FilesApi, type ViewOptions } from './files-api.ts';
import { callHeaders, type HeaderMap } from './headers.ts';
import { HttpTransport } from './http.ts';
import { InfoApi } from './info-api.ts';
import { type BinaryFrame, type ComfyMessage, messagePromptId, type PromptMessage } from './messages.ts';
import { PromptRun, type PromptRunDeps, type PromptRunOptions } from './prompt-run.ts';
import { QueueApi, validatePrompt } from './queue-api.ts';
import { RunRegistry } from './run-registry.ts';
import { ComfySocket } from './socket.ts';
import type {
  ApiPrompt,
  CallOptions,
  ComfyClientOptions,
  ComfyClientState,
  ComfyJob,
  FileRef,
  HistoryEntry,
  JobsPage,
  JobsQuery,
  NodeDef,
  PreviewFrame,
  PromptState,
  QueuedPrompt,
  QueueItem,
  QueuePromptOptions,
  RunOptions,
  RunResult,
  SystemStats,
  TextFrame,
  UploadOptions,
  UploadResult,
  ViewResponse,
  WaitOptions,
} from './types.ts';
import type { UploadData } from './upload.ts';

/** Typed events of ComfyClient (node:events semantics). */
export interface ComfyClientEvents {
  state: [state: ComfyClientState];
  message: [message: ComfyMessage];
  preview: [preview: PreviewFrame];
  text: [text: TextFrame];
  status: [status: { queueRemaining: number }];
  reconnect: [info: { attempt: number }];
  disconnect: [info: { reason: string }];
  close: [];
}

const DEFAULT_RUN_TIMEOUT_MS = 10 * 60_000;
/** How long run() waits for the socket before relying on polling alone. */
const SOCKET_WAIT_MS = 5_000;

/**
 * The client's one contract: every public member of ComfyClient (methods and typed events). Other
 * modules name the slice they call as a `Pick<>` of it, so `tsc` checks each slice against the real
 * client, and a fake implements only its slice (the class itself is nominal through its #fields).
 */
export type ComfyClientContract = Pick<ComfyClient, keyof ComfyClient>;

/** A client for one ComfyUI server. */
export class ComfyClient extends EventEmitter<ComfyClientEvents> {
  readonly baseUrl: string;
  readonly clientId: string;
  readonly #http: HttpTransport;
  readonly #socket: ComfySocket;
  readonly #options: ComfyClientOptions;
  readonly #runs = new RunRegistry();
  readonly #calls: ApiCalls;
  readonly #queue: QueueApi;
  readonly #files: FilesApi;
  readonly #info: InfoApi;
  /** What every run needs from this client (one object for all runs; per-run state is the run's). */
  readonly #runDeps: PromptRunDeps;
  #closing: Promise<void> | undefined;

  constructor(options: ComfyClientOptions) {
    super();
    let url: URL;
    try {
      url = new URL(options.baseUrl);
    } catch {
      throw new ComfyArgumentError(`invalid ComfyUI base URL ${JSON.stringify(options.baseUrl)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ComfyArgumentError(`ComfyUI base URL must be http(s): ${options.baseUrl}`);
    }
    checkDuration('requestTimeoutMs', options.requestTimeoutMs);
    checkDuration('historyPollIntervalMs', options.historyPollIntervalMs);
    checkDuration('heartbeat.intervalMs', options.heartbeat?.intervalMs);
    checkDuration('heartbeat.timeoutMs', options.heartbeat?.timeoutMs);
    checkDuration('reconnect.initialDelayMs', options.reconnect?.initialDelayMs);
    checkDuration('reconnect.maxDelayMs', options.reconnect?.maxDelayMs);
    this.#options = options;
    this.clientId = options.clientId ?? randomUUID();
    const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.#http = new HttpTransport({
      baseUrl: options.baseUrl,
      headers: options.headers ?? {},
      requestTimeoutMs,
      connections: options.connections ?? 16,
      retry: {
        maxAttempts: options.retry?.maxAttempts ?? 3,
        initialDelayMs: options.retry?.initialDelayMs ?? 100,
        maxDelayMs: options.retry?.maxDelayMs ?? 2_000,
      },
    });
    this.baseUrl = this.#http.baseUrl;
    this.#calls = new ApiCalls(this.#http, () => this.#closing !== undefined);
    this.#queue = new QueueApi(this.#calls, this.clientId);
    this.#files = new FilesApi(this.#calls, {
      downloadConcurrency: options.downloadConcurrency ?? 8,
      ...(options.logger ? { logger: options.logger } : {}),
    });
    this.#info = new InfoApi(this.#calls, options.objectInfoCache);
    // Every call a run makes on its own (polls, the cancel on abort) carries the run's headers.
    this.#runDeps = {
      baseUrl: this.baseUrl,
      pollIntervalMs: options.historyPollIntervalMs ?? 1_000,
      ...(options.logger ? { logger: options.logger } : {}),
      eventOutputsComplete: () =>
        options.outputsFrom !== 'history' && Object.keys(this.#socket.serverFeatures).length > 0,
      getHistory: (id, signal, headers) => this.getHistory(id, runCallOptions(signal, headers)),
      getQueuePosition: (id, signal, headers) =>
        this.#queue.queuePosition(id, runCallOptions(signal, headers)),
      cancel: (id, signal, headers) => this.cancel(id, runCallOptions(signal, headers)),
      release: (run) => this.#runs.delete(run),
    };
    const wsUrl = new URL(this.#http.url('/ws', { clientId: this.clientId }), this.#http.origin);
    wsUrl.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    this.#socket = new ComfySocket({
      url: wsUrl.toString(),
      headers: this.#http.headers,
      openTimeoutMs: Math.min(requestTimeoutMs, 10_000),
      reconnect: {
        initialDelayMs: options.reconnect?.initialDelayMs ?? 250,
        maxDelayMs: options.reconnect?.maxDelayMs ?? 10_000,
        maxAttempts: options.reconnect?.maxAttempts ?? 10,
      },
      heartbeat: {
        intervalMs: options.heartbeat?.intervalMs ?? 15_000,
        timeoutMs: options.heartbeat?.timeoutMs ?? 10_000,
      },
      ...(options.logger ? { logger: options.logger } : {}),
      handlers: {
        state: (state) => this.emit('state', state),
        message: (message) => this.#onMessage(message),
        binary: (frame) => this.#onBinary(frame),
        drop: (reason) => {
          this.emit('disconnect', { reason });
          this.#runs.reconcile();
        },
        reconnect: (attempt) => {
          this.emit('reconnect', { attempt });
          this.#runs.reconcile();
        },
      },
    });
  }

  /** Lifecycle of the shared WebSocket. */
  get state(): ComfyClientState {
    return this.#socket.state;
  }

  /** Server feature flags received over the socket (empty before the first connection). */
  get serverFeatures(): Record<string, unknown> {
    return this.#socket.serverFeatures;
  }

  /** Number of runs currently being tracked (for leak checks and metrics). */
  get activeRuns(): number {
    return this.#runs.size;
  }

  /** Opens the shared WebSocket (idempotent; otherwise opened lazily by run()). */
  async connect(options: { signal?: AbortSignal } = {}): Promise<void> {
    this.#assertOpen();
    await this.#socket.connect(options.signal);
  }

  /** Queues a prompt (POST /prompt) with this client's id; 400 → ComfyValidationError. */
  queuePrompt(prompt: ApiPrompt, options: QueuePromptOptions = {}): Promise<QueuedPrompt> {
    return this.#queue.queuePrompt(prompt, options);
  }

  /** Queues `prompt` and resolves with its outputs and stats once it finished. */
  async run(prompt: ApiPrompt, options: RunOptions = {}): Promise<RunResult> {
    this.#assertOpen();
    validatePrompt(prompt);
    checkDuration('timeoutMs', options.timeoutMs);
    // Validated before anything is tracked or sent; the normalised copy is reused by every call.
    const headers = options.headers === undefined ? undefined : callHeaders(options.headers);
    const promptId = options.promptId ?? randomUUID();
    const run = this.#track(promptId, options, headers, true, prompt);
    try {
      // Subscribe before submitting: ComfyUI may send events before it answers the POST.
      if (this.#socket.state !== 'open') await this.#ensureSocket(options.signal);
      const submit: QueuePromptOptions = { promptId };
      if (options.front) submit.front = true;
      if (options.extraData) submit.extraData = options.extraData;
      if (options.signal) submit.signal = options.signal;
      if (headers) submit.headers = headers;
      const queuedAt = Date.now();
      const queued = await this.queuePrompt(prompt, submit);
      run.accepted({ number: queued.number, nodeErrors: queued.nodeErrors, queuedAt });
    } catch (err) {
      run.fail(err as Error);
    }
    return run.result;
  }

  /** Attaches to a prompt already queued, running or finished on the server. */
  async waitForPrompt(promptId: string, options: WaitOptions = {}): Promise<RunResult> {
    this.#assertOpen();
    if (typeof promptId !== 'string' || promptId === '')
      throw new ComfyArgumentError('promptId must be a non-empty string');
    checkDuration('timeoutMs', options.timeoutMs);
    const headers = options.headers === undefined ? undefined : callHeaders(options.headers);
    const run = this.#track(promptId, options, headers, options.cancelOnAbort ?? true);
    try {
      if (this.#socket.state !== 'open') await this.#ensureSocket(options.signal);
      run.attach();
    } catch (err) {
      run.fail(err as Error);
    }
    return run.result;
  }

  /** Where a prompt is: pending/running (queue), completed/failed (history) or unknown. */
  getPromptState(promptId: string, options: CallOptions = {}): Promise<PromptState> {
    return this.#queue.getPromptState(promptId, options);
  }

  /** One history entry, or undefined when the prompt is unknown or not finished. */
  getHistory(promptId: string, options: CallOptions = {}): Promise<HistoryEntry | undefined> {
    return this.#queue.getHistory(promptId, options);
  }

  /** The last `maxItems` history entries (default 100; ComfyUI returns all without a bound). */
  getHistories(
    options: CallOptions & { maxItems?: number; offset?: number } = {},
  ): Promise<Record<string, HistoryEntry>> {
    return this.#queue.getHistories(options);
  }

  /** Deletes history entries. */
  deleteHistory(ids: string[], options: CallOptions = {}): Promise<void> {
    return this.#queue.deleteHistory(ids, options);
  }

  /** Clears the whole history. */
  clearHistory(options: CallOptions = {}): Promise<void> {
    return this.#queue.clearHistory(options);
  }

  /** The running item and the pending items, sorted in execution order. */
  getQueue(options: CallOptions = {}): Promise<{ running: QueueItem[]; pending: QueueItem[] }> {
    return this.#queue.getQueue(options);
  }

  /** Removes pending prompts (does not touch the running one). */
  deleteFromQueue(ids: string[], options: CallOptions = {}): Promise<void> {
    return this.#queue.deleteFromQueue(ids, options);
  }

  /** Empties the pending queue. */
  clearQueue(options: CallOptions = {}): Promise<void> {
    return this.#queue.clearQueue(options);
  }

  /** Interrupts the running prompt; with `promptId`, only if that prompt is the one running. */
  interrupt(promptId?: string, options: CallOptions = {}): Promise<void> {
    return this.#queue.interrupt(promptId, options);
  }

  /** Cancels a prompt: removed from the queue if pending, interrupted (targeted) if running. */
  cancel(promptId: string, options: CallOptions = {}): Promise<void> {
    return this.#queue.cancel(promptId, options);
  }

  /** Uploads an image (POST /upload/image); reference it as `name` or `subfolder/name`. */
  uploadImage(data: UploadData, options: UploadOptions): Promise<UploadResult> {
    return this.#files.uploadImage(data, options);
  }

  /** Uploads a mask onto `options.mask.originalRef` (POST /upload/mask). */
  uploadMask(data: UploadData, options: UploadOptions): Promise<UploadResult> {
    return this.#files.uploadMask(data, options);
  }

  /** Opens a file (GET /view) as a stream; the caller must consume or destroy `body`. */
  view(file: FileRef, options: ViewOptions = {}): Promise<ViewResponse> {
    return this.#files.view(file, options);
  }

  /** Streams every output file of `result` through `sink`, a bounded number at a time. */
  downloadOutputs(
    result: Pick<RunResult, 'outputs'>,
    sink: OutputSink,
    options: DownloadOptions = {},
  ): Promise<void> {
    return this.#files.downloadOutputs(result, sink, options);
  }

  /** Every node definition (cached after the first call; `refresh` reloads). */
  getObjectInfo(options: CallOptions & { refresh?: boolean } = {}): Promise<Record<string, NodeDef>> {
    return this.#info.getObjectInfo(options);
  }

  /** One node definition, or undefined when the class is not installed. */
  getNodeInfo(classType: string, options: CallOptions = {}): Promise<NodeDef | undefined> {
    return this.#info.getNodeInfo(classType, options);
  }

  /** GET /system_stats: versions, RAM, devices (a cheap health probe). */
  getSystemStats(options: CallOptions = {}): Promise<SystemStats> {
    return this.#info.getSystemStats(options);
  }

  /** GET /features: server feature flags; `{}` on servers older than v0.3.45. */
  getFeatures(options: CallOptions = {}): Promise<Record<string, unknown>> {
    return this.#info.getFeatures(options);
  }

  /** Model folders, or the files in one folder (undefined for an unknown folder). */
  getModels(folder?: string, options: CallOptions = {}): Promise<string[] | undefined> {
    return this.#info.getModels(folder, options);
  }

  /** Embedding names. */
  getEmbeddings(options: CallOptions = {}): Promise<string[]> {
    return this.#info.getEmbeddings(options);
  }

  /** Asks the server to unload models and/or free memory (applied after the running prompt). */
  freeMemory(options: CallOptions & { unloadModels?: boolean; freeMemory?: boolean } = {}): Promise<void> {
    return this.#info.freeMemory(options);
  }

  /** GET /api/jobs (ComfyUI v0.6+); undefined when the server has no jobs API. */
  getJobs(query: JobsQuery = {}, options: CallOptions = {}): Promise<JobsPage | undefined> {
    return this.#info.getJobs(query, options);
  }

  /** GET /api/jobs/{id}; undefined when unknown (or the server has no jobs API). */
  getJob(id: string, options: CallOptions = {}): Promise<ComfyJob | undefined> {
    return this.#info.getJob(id, options);
  }

  /** Closes the socket and connections and ends every run. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const error = new ComfyClosedError('client closed', { baseUrl: this.baseUrl });
      this.#runs.failAll(error);
      await Promise.all([this.#socket.close(), this.#http.close()]);
      this.emit('close');
    })();
    return this.#closing;
  }

  #assertOpen(): void {
    this.#calls.assertOpen();
  }

  #track(
    promptId: string,
    options: { signal?: AbortSignal; timeoutMs?: number; onEvent?: RunOptions['onEvent'] },
    headers: HeaderMap | undefined,
    cancelOnAbort: boolean,
    prompt?: ApiPrompt,
  ): PromptRun {
    const runOptions: PromptRunOptions = {
      promptId,
      timeoutMs: options.timeoutMs ?? DEFAULT_RUN_TIMEOUT_MS,
      cancelOnAbort,
    };
    if (prompt) runOptions.prompt = prompt;
    if (options.signal) runOptions.signal = options.signal;
    if (options.onEvent) runOptions.onEvent = options.onEvent;
    if (headers) runOptions.headers = headers;
    const run = new PromptRun(this.#runDeps, runOptions);
    this.#runs.add(run);
    return run;
  }

  /** Waits (bounded) for the socket; a run without it still completes by polling. */
  async #ensureSocket(signal?: AbortSignal): Promise<void> {
    if (this.#socket.state === 'open') return;
    const bounded = signal
      ? AbortSignal.any([signal, AbortSignal.timeout(SOCKET_WAIT_MS)])
      : AbortSignal.timeout(SOCKET_WAIT_MS);
    try {
      await this.#socket.connect(bounded);
    } catch (err) {
      if (signal?.aborted) throw err;
      if (err instanceof ComfyClosedError) throw err;
      this.#options.logger?.debug(
        { err: String(err) },
        'comfy: WebSocket unavailable, relying on history polling',
      );
    }
  }

  #onMessage(message: ComfyMessage): void {
    this.emit('message', message);
    if (message.type === 'status') {
      this.emit('status', { queueRemaining: message.data.status.exec_info.queue_remaining });
      return;
    }
    const promptId = messagePromptId(message);
    if (promptId === undefined) return;
    this.#runs.routeMessage(promptId, message as PromptMessage);
  }

  #onBinary(frame: BinaryFrame): void {
    if (frame.kind === 'text') {
      this.emit('text', frame.frame);
      return;
    }
    if (frame.kind !== 'preview') return;
    // Type-1 frames carry no ids: they belong to the prompt the socket last reported activity for.
    const preview = frame.frame;
    this.#runs.attributePreview(preview);
    this.emit('preview', preview);
    this.#runs.routePreview(preview);
  }
}

/** The options of a call a run makes on its own: the run's signal and headers. */
function runCallOptions(signal: AbortSignal, headers: HeaderMap | undefined): CallOptions {
  return headers ? { signal, headers } : { signal };
}

/** True when `err` is a ComfyError of one of `codes`. */
export function isComfyError(err: unknown, ...codes: string[]): err is ComfyError {
  return err instanceof ComfyError && (codes.length === 0 || codes.includes(err.code));
}
