// ComfyClient's queue and history endpoints: POST /prompt (with the look-up that replaces a
// resubmission after an ambiguous failure), /queue, /history, /interrupt, and the cancel and
// locate logic built on them. Prompt shape checks and the POST /prompt answer parser live here too.
import { randomUUID } from 'node:crypto';
import { type ApiCalls, callScope } from './api-calls.ts';
import {
  ComfyArgumentError,
  ComfyConnectionError,
  ComfyServerError,
  type ComfyValidationDetail,
  ComfyValidationError,
} from './errors.ts';
import { isHistoryEntry, parseHistoryResponse, parseQueueItem } from './history.ts';
import type { HttpTransport } from './http.ts';
import type { QueuePosition } from './prompt-run.ts';
import type {
  ApiPrompt,
  CallOptions,
  HistoryEntry,
  PromptState,
  QueuedPrompt,
  QueueItem,
  QueuePromptOptions,
} from './types.ts';

/** Where a prompt was found: queue first, then history. */
export interface PromptLocation {
  where: 'pending' | 'running' | 'history' | 'absent';
  number?: number;
  entry?: HistoryEntry;
}

/** Queue and history calls of one ComfyUI server. */
export class QueueApi {
  readonly #calls: ApiCalls;
  readonly #clientId: string;

  constructor(calls: ApiCalls, clientId: string) {
    this.#calls = calls;
    this.#clientId = clientId;
  }

  /** Queues a prompt (POST /prompt) with this client's id; 400 → ComfyValidationError. */
  async queuePrompt(prompt: ApiPrompt, options: QueuePromptOptions = {}): Promise<QueuedPrompt> {
    this.#calls.assertOpen();
    validatePrompt(prompt);
    const promptId = options.promptId ?? randomUUID();
    if (typeof promptId !== 'string' || promptId === '')
      throw new ComfyArgumentError('promptId must be a non-empty string');
    const body: Record<string, unknown> = {
      prompt,
      client_id: this.#clientId,
      prompt_id: promptId,
      extra_data: options.extraData ?? {},
    };
    if (options.front) body.front = true;
    if (options.number !== undefined) body.number = options.number;
    if (options.partialExecutionTargets) body.partial_execution_targets = options.partialExecutionTargets;
    const scope = callScope({
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.headers !== undefined ? { headers: options.headers } : {}),
    });
    let res: Awaited<ReturnType<HttpTransport['send']>>;
    try {
      res = await this.#calls.http.send({
        method: 'POST',
        path: '/prompt',
        json: body,
        retryNotSent: true,
        promptId,
        ...scope,
      });
    } catch (err) {
      // The request may have reached the server: find out by id instead of resubmitting.
      if (err instanceof ComfyConnectionError && !err.notSent) {
        const found = await this.locate(promptId, lookupOptions(options)).catch(() => undefined);
        if (found && found.where !== 'absent')
          return { promptId, number: found.number ?? Number.NaN, nodeErrors: {} };
      }
      throw err;
    }
    return parseQueueAnswer(res.status, res.text, promptId, this.#calls.baseUrl);
  }

  /** Where a prompt is: pending/running (queue), completed/failed (history) or unknown. */
  async getPromptState(promptId: string, options: CallOptions = {}): Promise<PromptState> {
    const found = await this.locate(promptId, lookupOptions(options));
    if (found.where === 'history')
      return found.entry?.status?.status_str === 'error' ? 'failed' : 'completed';
    if (found.where === 'absent') return 'unknown';
    return found.where;
  }

  /** One history entry, or undefined when the prompt is unknown or not finished. */
  async getHistory(promptId: string, options: CallOptions = {}): Promise<HistoryEntry | undefined> {
    const body = await this.#calls.getJson<unknown>(`/history/${encodeURIComponent(promptId)}`, options);
    return parseHistoryResponse(body, promptId);
  }

  /** The last `maxItems` history entries (default 100; ComfyUI returns all without a bound). */
  async getHistories(
    options: CallOptions & { maxItems?: number; offset?: number } = {},
  ): Promise<Record<string, HistoryEntry>> {
    const body = await this.#calls.getJson<Record<string, unknown>>('/history', options, {
      max_items: options.maxItems ?? 100,
      offset: options.offset,
    });
    const out: Record<string, HistoryEntry> = {};
    for (const [id, entry] of Object.entries(body ?? {})) if (isHistoryEntry(entry)) out[id] = entry;
    return out;
  }

  /** Deletes history entries. */
  async deleteHistory(ids: string[], options: CallOptions = {}): Promise<void> {
    await this.#calls.post('/history', { delete: ids }, options);
  }

  /** Clears the whole history. */
  async clearHistory(options: CallOptions = {}): Promise<void> {
    await this.#calls.post('/history', { clear: true }, options);
  }

  /** The running item and the pending items, sorted in execution order. */
  async getQueue(options: CallOptions = {}): Promise<{ running: QueueItem[]; pending: QueueItem[] }> {
    const body = await this.#calls.getJson<{ queue_running?: unknown[]; queue_pending?: unknown[] }>(
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
    await this.#calls.post('/queue', { delete: ids }, options);
  }

  /** Empties the pending queue. */
  async clearQueue(options: CallOptions = {}): Promise<void> {
    await this.#calls.post('/queue', { clear: true }, options);
  }

  /** Interrupts the running prompt; with `promptId`, only if that prompt is the one running. */
  async interrupt(promptId?: string, options: CallOptions = {}): Promise<void> {
    await this.#calls.post('/interrupt', promptId === undefined ? {} : { prompt_id: promptId }, options);
  }

  /** Cancels a prompt: removed from the queue if pending, interrupted (targeted) if running. */
  async cancel(promptId: string, options: CallOptions = {}): Promise<void> {
    const lookup = lookupOptions(options);
    const position = await this.queuePosition(promptId, lookup);
    if (position === 'pending') {
      await this.deleteFromQueue([promptId], options);
      // It may have started between the two calls.
      if ((await this.queuePosition(promptId, lookup)) === 'running') await this.interrupt(promptId, options);
    } else if (position === 'running') {
      await this.interrupt(promptId, options);
    }
  }

  /** Whether a prompt is running, pending, or in neither list. */
  async queuePosition(promptId: string, options: CallOptions = {}): Promise<QueuePosition> {
    const queue = await this.getQueue(options);
    if (queue.running.some((i) => i.promptId === promptId)) return 'running';
    if (queue.pending.some((i) => i.promptId === promptId)) return 'pending';
    return 'absent';
  }

  /** Finds a prompt: queue first, then history (the order that makes "absent" trustworthy). */
  async locate(promptId: string, options: CallOptions = {}): Promise<PromptLocation> {
    const queue = await this.getQueue(options);
    const running = queue.running.find((i) => i.promptId === promptId);
    if (running) return { where: 'running', number: running.number };
    const pending = queue.pending.find((i) => i.promptId === promptId);
    if (pending) return { where: 'pending', number: pending.number };
    const entry = await this.getHistory(promptId, options);
    if (entry) return { where: 'history', number: entry.prompt?.[0], entry };
    return { where: 'absent' };
  }
}

/** The signal and headers of a call, for the look-ups it makes (their own timeouts stay the default). */
function lookupOptions(options: { signal?: AbortSignal; headers?: Record<string, string> }): CallOptions {
  const out: CallOptions = {};
  if (options.signal) out.signal = options.signal;
  if (options.headers !== undefined) out.headers = options.headers;
  return out;
}

/** Rejects prompts that are not objects of `{class_type, inputs}` nodes before any I/O. */
export function validatePrompt(prompt: ApiPrompt): void {
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
