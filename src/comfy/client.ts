// ComfyClient: the SDK's entry point for one ComfyUI server. Owns the HTTP transport, the shared
// WebSocket, the routing of socket messages to in-flight runs, and every typed endpoint call.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import { downloadAll, type OutputSink } from './downloads.ts';
import {
  ComfyArgumentError,
  ComfyClosedError,
  ComfyConnectionError,
  ComfyError,
  ComfyServerError,
  ComfyValidationError,
  type ComfyValidationDetail,
} from './errors.ts';
import { isHistoryEntry, parseHistoryResponse, parseQueueItem } from './history.ts';
import { HttpTransport } from './http.ts';
import { type BinaryFrame, type ComfyMessage, messagePromptId, type PromptMessage } from './messages.ts';
import { PromptRun, type QueuePosition } from './prompt-run.ts';
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
  OutputFile,
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
import { contentTypeFor, multipartBody, type UploadData } from './upload.ts';

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

/** A client for one ComfyUI server. */
export class ComfyClient extends EventEmitter<ComfyClientEvents> {
  readonly baseUrl: string;
  readonly clientId: string;
  readonly #http: HttpTransport;
  readonly #socket: ComfySocket;
  readonly #options: ComfyClientOptions;
  /** In-flight runs by prompt id; bounded by the caller's concurrency, emptied as runs end. */
  readonly #runs = new Map<string, Set<PromptRun>>();
  #objectInfo: Promise<Record<string, NodeDef>> | undefined;
  /** The prompt the socket last reported activity for (type-1 previews carry no ids). */
  #activePromptId: string | undefined;
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
    const wsUrl = new URL(this.#http.url('/ws', { clientId: this.clientId }), this.#http.origin);
    wsUrl.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    this.#socket = new ComfySocket({
      url: wsUrl.toString(),
      headers: options.headers ?? {},
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
          this.#reconcileRuns();
        },
        reconnect: (attempt) => {
          this.emit('reconnect', { attempt });
          this.#reconcileRuns();
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
    let n = 0;
    for (const set of this.#runs.values()) n += set.size;
    return n;
  }

  /** Opens the shared WebSocket (idempotent; otherwise opened lazily by run()). */
  async connect(options: { signal?: AbortSignal } = {}): Promise<void> {
    this.#assertOpen();
    await this.#socket.connect(options.signal);
  }

  /** Queues a prompt (POST /prompt) with this client's id; 400 → ComfyValidationError. */
  async queuePrompt(prompt: ApiPrompt, options: QueuePromptOptions = {}): Promise<QueuedPrompt> {
    this.#assertOpen();
    validatePrompt(prompt);
    const promptId = options.promptId ?? randomUUID();
    if (typeof promptId !== 'string' || promptId === '')
      throw new ComfyArgumentError('promptId must be a non-empty string');
    const body: Record<string, unknown> = {
      prompt,
      client_id: this.clientId,
      prompt_id: promptId,
      extra_data: options.extraData ?? {},
    };
    if (options.front) body.front = true;
    if (options.number !== undefined) body.number = options.number;
    if (options.partialExecutionTargets) body.partial_execution_targets = options.partialExecutionTargets;
    let res: Awaited<ReturnType<HttpTransport['send']>>;
    try {
      res = await this.#http.send({
        method: 'POST',
        path: '/prompt',
        json: body,
        retryNotSent: true,
        promptId,
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (err) {
      // The request may have reached the server: find out by id instead of resubmitting.
      if (err instanceof ComfyConnectionError && !err.notSent) {
        const found = await this.#locate(promptId, options.signal).catch(() => undefined);
        if (found && found.where !== 'absent')
          return { promptId, number: found.number ?? Number.NaN, nodeErrors: {} };
      }
      throw err;
    }
    return parseQueueAnswer(res.status, res.text, promptId, this.baseUrl);
  }

  /** Queues `prompt` and resolves with its outputs and stats once it finished. */
  async run(prompt: ApiPrompt, options: RunOptions = {}): Promise<RunResult> {
    this.#assertOpen();
    validatePrompt(prompt);
    const promptId = options.promptId ?? randomUUID();
    const run = this.#track(promptId, { ...options, prompt, cancelOnAbort: true });
    try {
      // Subscribe before submitting: ComfyUI may send events before it answers the POST.
      await this.#ensureSocket(options.signal);
      const queuedAt = Date.now();
      const queued = await this.queuePrompt(prompt, {
        promptId,
        ...(options.front ? { front: true } : {}),
        ...(options.extraData ? { extraData: options.extraData } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      });
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
    const run = this.#track(promptId, { ...options, cancelOnAbort: options.cancelOnAbort ?? true });
    try {
      await this.#ensureSocket(options.signal);
      run.attach();
    } catch (err) {
      run.fail(err as Error);
    }
    return run.result;
  }

  /** Where a prompt is: pending/running (queue), completed/failed (history) or unknown. */
  async getPromptState(promptId: string, options: CallOptions = {}): Promise<PromptState> {
    const found = await this.#locate(promptId, options.signal);
    if (found.where === 'history')
      return found.entry?.status?.status_str === 'error' ? 'failed' : 'completed';
    if (found.where === 'absent') return 'unknown';
    return found.where;
  }

  /** One history entry, or undefined when the prompt is unknown or not finished. */
  async getHistory(promptId: string, options: CallOptions = {}): Promise<HistoryEntry | undefined> {
    const body = await this.#getJson<unknown>(`/history/${encodeURIComponent(promptId)}`, options);
    return parseHistoryResponse(body, promptId);
  }

  /** The last `maxItems` history entries (default 100; ComfyUI returns all without a bound). */
  async getHistories(
    options: CallOptions & { maxItems?: number; offset?: number } = {},
  ): Promise<Record<string, HistoryEntry>> {
    const body = await this.#getJson<Record<string, unknown>>('/history', options, {
      max_items: options.maxItems ?? 100,
      offset: options.offset,
    });
    const out: Record<string, HistoryEntry> = {};
    for (const [id, entry] of Object.entries(body ?? {})) if (isHistoryEntry(entry)) out[id] = entry;
    return out;
  }

  /** Deletes history entries. */
  async deleteHistory(ids: string[], options: CallOptions = {}): Promise<void> {
    await this.#post('/history', { delete: ids }, options);
  }

  /** Clears the whole history. */
  async clearHistory(options: CallOptions = {}): Promise<void> {
    await this.#post('/history', { clear: true }, options);
  }

  /** The running item and the pending items, sorted in execution order. */
  async getQueue(options: CallOptions = {}): Promise<{ running: QueueItem[]; pending: QueueItem[] }> {
    const body = await this.#getJson<{ queue_running?: unknown[]; queue_pending?: unknown[] }>(
      '/queue',
      options,
    );
    const decode = (items: unknown): QueueItem[] =>
      (Array.isArray(items) ? items : []).map(parseQueueItem).filter((i): i is QueueItem => i !== undefined);
    const pending = decode(body.queue_pending).sort(
      (a, b) => a.number - b.number || (a.promptId < b.promptId ? -1 : a.promptId > b.promptId ? 1 : 0),
    );
    return { running: decode(body.queue_running), pending };
  }

  /** Removes pending prompts (does not touch the running one). */
  async deleteFromQueue(ids: string[], options: CallOptions = {}): Promise<void> {
    await this.#post('/queue', { delete: ids }, options);
  }

  /** Empties the pending queue. */
  async clearQueue(options: CallOptions = {}): Promise<void> {
    await this.#post('/queue', { clear: true }, options);
  }

  /** Interrupts the running prompt; with `promptId`, only if that prompt is the one running. */
  async interrupt(promptId?: string, options: CallOptions = {}): Promise<void> {
    await this.#post('/interrupt', promptId === undefined ? {} : { prompt_id: promptId }, options);
  }

  /** Cancels a prompt: removed from the queue if pending, interrupted (targeted) if running. */
  async cancel(promptId: string, options: CallOptions = {}): Promise<void> {
    const position = await this.#queuePosition(promptId, options.signal);
    if (position === 'pending') {
      await this.deleteFromQueue([promptId], options);
      // It may have started between the two calls.
      if ((await this.#queuePosition(promptId, options.signal)) === 'running')
        await this.interrupt(promptId, options);
    } else if (position === 'running') {
      await this.interrupt(promptId, options);
    }
  }

  /** Uploads an image (POST /upload/image); reference it as `name` or `subfolder/name`. */
  uploadImage(data: UploadData, options: UploadOptions): Promise<UploadResult> {
    return this.#upload('/upload/image', data, options);
  }

  /** Uploads a mask onto `options.mask.originalRef` (POST /upload/mask). */
  uploadMask(data: UploadData, options: UploadOptions): Promise<UploadResult> {
    if (!options.mask) throw new ComfyArgumentError('uploadMask needs options.mask.originalRef');
    return this.#upload('/upload/mask', data, options);
  }

  /** Opens a file (GET /view) as a stream; the caller must consume or destroy `body`. */
  async view(
    file: FileRef,
    options: CallOptions & { range?: string; preview?: string; channel?: 'rgba' | 'rgb' | 'a' } = {},
  ): Promise<ViewResponse> {
    this.#assertOpen();
    if (!file.filename) throw new ComfyArgumentError('view needs a filename');
    const res = await this.#http.stream({
      method: 'GET',
      path: '/view',
      query: {
        filename: file.filename,
        subfolder: file.subfolder ?? '',
        type: file.type ?? 'output',
        preview: options.preview,
        channel: options.channel,
      },
      ...(options.range ? { headers: { range: options.range } } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    });
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers))
      if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    if (res.statusCode !== 200 && res.statusCode !== 206) {
      const text = await res.body.text().catch(() => '');
      throw new ComfyServerError(
        `GET /view ${file.filename} (${file.type ?? 'output'}) answered ${res.statusCode}`,
        res.statusCode,
        text,
        { baseUrl: this.baseUrl },
      );
    }
    // A caller that destroys the body early makes undici emit 'error'; never let that crash the process.
    res.body.on('error', (err) =>
      this.#options.logger?.debug({ err: String(err) }, 'comfy: /view body error'),
    );
    const out: ViewResponse = {
      status: res.statusCode,
      headers,
      body: res.body as unknown as ViewResponse['body'],
      contentType: headers['content-type'] ?? 'application/octet-stream',
    };
    const length = Number(headers['content-length']);
    if (Number.isFinite(length) && headers['content-length'] !== undefined) out.contentLength = length;
    return out;
  }

  /** Streams every output file of `result` through `sink`, a bounded number at a time. */
  async downloadOutputs(
    result: Pick<RunResult, 'outputs'>,
    sink: OutputSink,
    options: { concurrency?: number; signal?: AbortSignal; files?: OutputFile[] } = {},
  ): Promise<void> {
    this.#assertOpen();
    await downloadAll(
      options.files ?? result.outputs,
      (file, signal) => this.view(file, { signal }),
      sink as (file: OutputFile, stream: Readable) => Promise<void>,
      {
        concurrency: options.concurrency ?? this.#options.downloadConcurrency ?? 8,
        ...(options.signal ? { signal: options.signal } : {}),
      },
    );
  }

  /** Every node definition (cached after the first call; `refresh` reloads). */
  getObjectInfo(options: CallOptions & { refresh?: boolean } = {}): Promise<Record<string, NodeDef>> {
    if (options.refresh || !this.#objectInfo) {
      const loading = this.#getJson<Record<string, NodeDef>>('/object_info', options);
      this.#objectInfo = loading;
      loading.catch(() => {
        if (this.#objectInfo === loading) this.#objectInfo = undefined;
      });
    }
    return this.#objectInfo;
  }

  /** One node definition, or undefined when the class is not installed. */
  async getNodeInfo(classType: string, options: CallOptions = {}): Promise<NodeDef | undefined> {
    if (this.#objectInfo) {
      const all = await this.#objectInfo.catch(() => undefined);
      if (all) return all[classType];
    }
    const body = await this.#getJson<Record<string, NodeDef>>(
      `/object_info/${encodeURIComponent(classType)}`,
      options,
    );
    return body?.[classType];
  }

  /** GET /system_stats: versions, RAM, devices (a cheap health probe). */
  getSystemStats(options: CallOptions = {}): Promise<SystemStats> {
    return this.#getJson<SystemStats>('/system_stats', options);
  }

  /** GET /features: server feature flags; `{}` on servers older than v0.3.45. */
  async getFeatures(options: CallOptions = {}): Promise<Record<string, unknown>> {
    return (await this.#getOptionalJson<Record<string, unknown>>('/features', options)) ?? {};
  }

  /** Model folders, or the files in one folder (undefined for an unknown folder). */
  async getModels(folder?: string, options: CallOptions = {}): Promise<string[] | undefined> {
    const path = folder === undefined ? '/models' : `/models/${encodeURIComponent(folder)}`;
    return this.#getOptionalJson<string[]>(path, options);
  }

  /** Embedding names. */
  getEmbeddings(options: CallOptions = {}): Promise<string[]> {
    return this.#getJson<string[]>('/embeddings', options);
  }

  /** Asks the server to unload models and/or free memory (applied after the running prompt). */
  async freeMemory(
    options: CallOptions & { unloadModels?: boolean; freeMemory?: boolean } = {},
  ): Promise<void> {
    await this.#post(
      '/free',
      { unload_models: options.unloadModels ?? true, free_memory: options.freeMemory ?? true },
      options,
    );
  }

  /** GET /api/jobs (ComfyUI v0.6+); undefined when the server has no jobs API. */
  async getJobs(query: JobsQuery = {}, options: CallOptions = {}): Promise<JobsPage | undefined> {
    const status = Array.isArray(query.status) ? query.status.join(',') : query.status;
    return this.#getOptionalJson<JobsPage>('/api/jobs', options, {
      status,
      workflow_id: query.workflowId,
      sort_by: query.sortBy,
      sort_order: query.sortOrder,
      limit: query.limit,
      offset: query.offset,
    });
  }

  /** GET /api/jobs/{id}; undefined when unknown (or the server has no jobs API). */
  getJob(id: string, options: CallOptions = {}): Promise<ComfyJob | undefined> {
    return this.#getOptionalJson<ComfyJob>(`/api/jobs/${encodeURIComponent(id)}`, options);
  }

  /** Closes the socket and connections and ends every run. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const error = new ComfyClosedError('client closed', { baseUrl: this.baseUrl });
      for (const set of [...this.#runs.values()]) for (const run of [...set]) run.fail(error);
      await Promise.all([this.#socket.close(), this.#http.close()]);
      this.emit('close');
    })();
    return this.#closing;
  }

  #assertOpen(): void {
    if (this.#closing) throw new ComfyClosedError('client closed', { baseUrl: this.baseUrl });
  }

  #track(
    promptId: string,
    options: {
      signal?: AbortSignal;
      timeoutMs?: number;
      onEvent?: RunOptions['onEvent'];
      prompt?: ApiPrompt;
      cancelOnAbort: boolean;
    },
  ): PromptRun {
    const run = new PromptRun(
      {
        baseUrl: this.baseUrl,
        pollIntervalMs: this.#options.historyPollIntervalMs ?? 1_000,
        ...(this.#options.logger ? { logger: this.#options.logger } : {}),
        getHistory: (id, signal) => this.getHistory(id, { signal }),
        getQueuePosition: (id, signal) => this.#queuePosition(id, signal),
        cancel: (id, signal) => this.cancel(id, { signal }),
        release: (r) => {
          const set = this.#runs.get(r.promptId);
          set?.delete(r);
          if (set?.size === 0) this.#runs.delete(r.promptId);
        },
      },
      {
        promptId,
        timeoutMs: options.timeoutMs ?? DEFAULT_RUN_TIMEOUT_MS,
        cancelOnAbort: options.cancelOnAbort,
        ...(options.prompt ? { prompt: options.prompt } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.onEvent ? { onEvent: options.onEvent } : {}),
      },
    );
    let set = this.#runs.get(promptId);
    if (!set) {
      set = new Set();
      this.#runs.set(promptId, set);
    }
    set.add(run);
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
    if (message.type === 'executing' || message.type === 'progress' || message.type === 'execution_start') {
      this.#activePromptId =
        message.type === 'executing' && message.data.node === null ? undefined : promptId;
    }
    const runs = this.#runs.get(promptId);
    if (runs) for (const run of [...runs]) run.handleMessage(message as PromptMessage);
  }

  #onBinary(frame: BinaryFrame): void {
    if (frame.kind === 'text') {
      this.emit('text', frame.frame);
      return;
    }
    if (frame.kind !== 'preview') return;
    // Type-1 frames carry no ids: they belong to the prompt the socket last reported activity for.
    const preview = frame.frame;
    if (preview.promptId === undefined && this.#activePromptId !== undefined)
      preview.promptId = this.#activePromptId;
    this.emit('preview', preview);
    const runs = preview.promptId === undefined ? undefined : this.#runs.get(preview.promptId);
    if (runs) for (const run of [...runs]) run.handlePreview(preview);
  }

  #reconcileRuns(): void {
    this.#activePromptId = undefined;
    for (const set of this.#runs.values()) for (const run of set) run.reconcile();
  }

  async #getJson<T>(
    path: string,
    options: CallOptions,
    query?: Record<string, string | number | undefined>,
  ): Promise<T> {
    this.#assertOpen();
    return this.#http.json<T>({
      method: 'GET',
      path,
      idempotent: true,
      ...(query ? { query } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    });
  }

  /** GET returning undefined on 404 (routes that older servers or unknown ids do not have). */
  async #getOptionalJson<T>(
    path: string,
    options: CallOptions,
    query?: Record<string, string | number | undefined>,
  ): Promise<T | undefined> {
    try {
      return await this.#getJson<T>(path, options, query);
    } catch (err) {
      if (err instanceof ComfyServerError && err.status === 404) return undefined;
      throw err;
    }
  }

  async #post(path: string, json: unknown, options: CallOptions): Promise<void> {
    this.#assertOpen();
    await this.#http.empty({
      method: 'POST',
      path,
      json,
      idempotent: true,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    });
  }

  async #queuePosition(promptId: string, signal?: AbortSignal): Promise<QueuePosition> {
    const queue = await this.getQueue(signal ? { signal } : {});
    if (queue.running.some((i) => i.promptId === promptId)) return 'running';
    if (queue.pending.some((i) => i.promptId === promptId)) return 'pending';
    return 'absent';
  }

  /** Finds a prompt: queue first, then history (the order that makes "absent" trustworthy). */
  async #locate(
    promptId: string,
    signal?: AbortSignal,
  ): Promise<{ where: 'pending' | 'running' | 'history' | 'absent'; number?: number; entry?: HistoryEntry }> {
    const opts = signal ? { signal } : {};
    const queue = await this.getQueue(opts);
    const running = queue.running.find((i) => i.promptId === promptId);
    if (running) return { where: 'running', number: running.number };
    const pending = queue.pending.find((i) => i.promptId === promptId);
    if (pending) return { where: 'pending', number: pending.number };
    const entry = await this.getHistory(promptId, opts);
    if (entry) return { where: 'history', number: entry.prompt?.[0], entry };
    return { where: 'absent' };
  }

  async #upload(path: string, data: UploadData, options: UploadOptions): Promise<UploadResult> {
    this.#assertOpen();
    const fields: Record<string, string> = { type: options.type ?? 'input' };
    if (options.subfolder) fields.subfolder = options.subfolder;
    if (options.overwrite) fields.overwrite = 'true';
    if (options.mask) {
      const ref = options.mask.originalRef;
      fields.original_ref = JSON.stringify({
        filename: ref.filename,
        subfolder: ref.subfolder ?? '',
        type: ref.type ?? 'input',
      });
    }
    const form = multipartBody(fields, {
      field: 'image',
      filename: options.filename,
      contentType: options.contentType ?? contentTypeFor(options.filename),
      data,
    });
    const res = await this.#http.send({
      method: 'POST',
      path,
      makeBody: () => Readable.from(form.body()),
      headers: { 'content-type': form.contentType },
      idempotent: form.replayable,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (res.status !== 200) {
      throw new ComfyServerError(
        `POST ${path} ${options.filename} answered ${res.status}`,
        res.status,
        res.text,
        {
          baseUrl: this.baseUrl,
        },
      );
    }
    let body: Partial<UploadResult>;
    try {
      body = JSON.parse(res.text) as Partial<UploadResult>;
    } catch {
      throw new ComfyServerError(`POST ${path}: answer is not JSON`, res.status, res.text, {
        baseUrl: this.baseUrl,
      });
    }
    if (typeof body.name !== 'string') {
      throw new ComfyServerError(`POST ${path}: answer has no name`, res.status, res.text, {
        baseUrl: this.baseUrl,
      });
    }
    return {
      name: body.name,
      subfolder: body.subfolder ?? options.subfolder ?? '',
      type: body.type ?? fields.type ?? 'input',
    };
  }
}

/** Rejects prompts that are not objects of `{class_type, inputs}` nodes before any I/O. */
function validatePrompt(prompt: ApiPrompt): void {
  if (typeof prompt !== 'object' || prompt === null || Array.isArray(prompt)) {
    throw new ComfyArgumentError('prompt must be an object of nodes (API format)');
  }
  for (const [id, node] of Object.entries(prompt)) {
    if (typeof node !== 'object' || node === null || typeof node.class_type !== 'string') {
      throw new ComfyArgumentError(
        `prompt node ${id} has no class_type (is this a UI workflow rather than an API prompt?)`,
      );
    }
    if (typeof node.inputs !== 'object' || node.inputs === null) {
      throw new ComfyArgumentError(`prompt node ${id} (${node.class_type}) has no inputs object`);
    }
  }
}

/** Interprets the answer of POST /prompt. */
function parseQueueAnswer(status: number, text: string, promptId: string, baseUrl: string): QueuedPrompt {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ComfyServerError(`POST /prompt answered ${status} without JSON`, status, text.slice(0, 1000), {
      promptId,
      baseUrl,
    });
  }
  const obj = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  if (status === 400 && typeof obj.error === 'object' && obj.error !== null) {
    const e = obj.error as Partial<ComfyValidationDetail>;
    const error: ComfyValidationDetail = {
      type: String(e.type ?? 'invalid_prompt'),
      message: String(e.message ?? 'Prompt failed validation'),
      details: String(e.details ?? ''),
      extra_info: (e.extra_info as Record<string, unknown>) ?? {},
    };
    // Keep ComfyUI's objects unchanged for callers that relay them.
    const validation = new ComfyValidationError(error, (obj.node_errors as Record<string, unknown>) ?? {}, {
      promptId,
      baseUrl,
    });
    Object.assign(validation.error, obj.error);
    throw validation;
  }
  if (status !== 200 || typeof obj.prompt_id !== 'string') {
    throw new ComfyServerError(`POST /prompt answered ${status}: ${text.slice(0, 200)}`, status, text, {
      promptId,
      baseUrl,
    });
  }
  return {
    promptId: obj.prompt_id,
    number: typeof obj.number === 'number' ? obj.number : Number(obj.number),
    nodeErrors: (obj.node_errors as Record<string, unknown>) ?? {},
  };
}

/** True when `err` is a ComfyError of one of `codes`. */
export function isComfyError(err: unknown, ...codes: string[]): err is ComfyError {
  return err instanceof ComfyError && (codes.length === 0 || codes.includes(err.code));
}
