// Completion tracking of one prompt: races WebSocket events against history polling under one
// deadline, turns the outcome into a RunResult or a typed error, and releases every timer, poll
// and listener of the run whichever way it ends.
import { scopedSignal } from './deadline.ts';
import {
  ComfyAbortError,
  ComfyConnectionError,
  ComfyError,
  ComfyExecutionError,
  ComfyInterruptedError,
  ComfyTimeoutError,
} from './errors.ts';
import type { HeaderMap } from './headers.ts';
import { historyOutcome, historyTimes, resultFromOutputs } from './history.ts';
import { isBlockedExecution, type PromptMessage } from './messages.ts';
import type { ApiPrompt, ComfyLogger, HistoryEntry, PreviewFrame, RunEvent, RunResult } from './types.ts';

/** Where the prompt is according to `/queue`. */
export type QueuePosition = 'pending' | 'running' | 'absent';

/** What a run needs from its client. */
export interface PromptRunDeps {
  baseUrl: string;
  pollIntervalMs: number;
  logger?: ComfyLogger;
  // `headers` are the run's own (PromptRunOptions.headers): every call it makes carries them.
  getHistory(promptId: string, signal: AbortSignal, headers?: HeaderMap): Promise<HistoryEntry | undefined>;
  getQueuePosition(promptId: string, signal: AbortSignal, headers?: HeaderMap): Promise<QueuePosition>;
  cancel(promptId: string, signal: AbortSignal, headers?: HeaderMap): Promise<void>;
  /**
   * True when the server reports every output node (cached ones too) in `executed` messages, so a
   * run the socket saw whole can end without reading history. Absent = always read history.
   */
  eventOutputsComplete?(): boolean;
  /** Called once when the run ends, whatever the outcome (the client unregisters it). */
  release(run: PromptRun): void;
}

/** Per-run options. */
export interface PromptRunOptions {
  promptId: string;
  prompt?: ApiPrompt;
  signal?: AbortSignal;
  timeoutMs: number;
  onEvent?: (event: RunEvent) => void;
  cancelOnAbort: boolean;
  /** Validated per-call headers, sent on every HTTP call the run makes. */
  headers?: HeaderMap;
}

/** Consecutive failed polls (each already retried by the transport) before the run gives up. */
const MAX_POLL_FAILURES = 2;
/** After a terminal WS message, how soon history is read if `executing null` does not follow. */
const TERMINAL_GRACE_MS = 200;
/** Bound on the server-side cancel performed when a run is aborted or times out. */
const CANCEL_TIMEOUT_MS = 5_000;

/** One prompt being watched until it finishes. */
export class PromptRun {
  readonly promptId: string;
  /** Settles once; never rejects unhandled (a no-op catch is attached). */
  readonly result: Promise<RunResult>;
  #resolve!: (r: RunResult) => void;
  #reject!: (e: Error) => void;
  #settled = false;
  /** Set while a timed-out/aborted run cancels on the server: late events no longer count. */
  #aborting = false;
  #accepted = false;
  /**
   * How the prompt finished (outputs, plus the server's timestamps when they came from history),
   * kept until its POST /prompt is answered: that answer's node_errors belong in the result.
   */
  #held:
    | { outputs: ReturnType<typeof resultFromOutputs>; times: ReturnType<typeof historyTimes> | undefined }
    | undefined;
  #queuedAt = Date.now();
  #nodeErrors: Record<string, unknown> | undefined;
  readonly #deps: PromptRunDeps;
  readonly #options: PromptRunOptions;
  /** Aborts in-flight polls and the deadline when the run ends. */
  readonly #scope;
  /** The next poll: an Immediate when due now (setTimeout(0) waits at least 1 ms), else a Timeout. */
  #pollTimer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  #pollImmediate = false;
  #pollDueAt = 0;
  #polling = false;
  /** A history/queue request of a poll is in flight (the only listener of the scope's signal). */
  #pollRequest = false;
  #pollAgain = false;
  #pollFailures = 0;
  // What the socket told us.
  #startedAt: number | undefined;
  #finishedAt: number | undefined;
  #cachedNodes: string[] | undefined;
  #currentNode: string | undefined;
  /** `executed` outputs by node since `execution_start`; null once the socket may have missed some. */
  #eventOutputs: Record<string, Record<string, unknown>> | null = null;
  #succeeded = false;
  readonly #nodes: Record<string, { startedAt: number; finishedAt?: number }> = {};

  constructor(deps: PromptRunDeps, options: PromptRunOptions) {
    this.#deps = deps;
    this.#options = options;
    this.promptId = options.promptId;
    this.result = new Promise<RunResult>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.result.catch(() => undefined);
    this.#scope = scopedSignal([options.signal], options.timeoutMs);
    this.#scope.signal.addEventListener('abort', () => void this.#onAbort(), { once: true });
  }

  /** The server accepted the prompt: start the polling fallback. */
  accepted(info: { number: number; nodeErrors?: Record<string, unknown>; queuedAt?: number }): void {
    if (this.#settled) return;
    this.#accepted = true;
    if (info.queuedAt !== undefined) this.#queuedAt = info.queuedAt;
    if (info.nodeErrors && Object.keys(info.nodeErrors).length > 0) this.#nodeErrors = info.nodeErrors;
    this.#emit({ type: 'queued', promptId: this.promptId, number: info.number });
    if (this.#held) this.#succeed();
    else this.#schedulePoll(this.#deps.pollIntervalMs);
  }

  /** Attach to a prompt submitted elsewhere: look it up now, then poll. */
  attach(): void {
    this.#accepted = true;
    this.#schedulePoll(0);
  }

  /**
   * Ends the run with `error` unless it already ended (used when the submission itself fails). A
   * run already seen finished keeps its result: the prompt ran, whatever the answer to the POST.
   */
  fail(error: Error): void {
    if (this.#held) this.#succeed();
    else this.#settle(undefined, error);
  }

  /** The socket dropped or came back: reconcile through HTTP soon. */
  reconcile(): void {
    // Messages may have been lost meanwhile: only history can tell the outputs now.
    this.#eventOutputs = null;
    if (this.#accepted) this.#schedulePoll(0);
  }

  /** A socket message addressed to this prompt. */
  handleMessage(message: PromptMessage): void {
    if (this.#settled || this.#aborting) return;
    const now = Date.now();
    const id = this.promptId;
    switch (message.type) {
      case 'execution_start':
        this.#startedAt = now;
        this.#eventOutputs = {};
        this.#emit({ type: 'started', promptId: id });
        break;
      case 'execution_cached':
        this.#cachedNodes = [...message.data.nodes];
        if (message.data.nodes.length > 0)
          this.#emit({ type: 'cached', promptId: id, nodes: this.#cachedNodes });
        break;
      case 'executing': {
        const node = message.data.node;
        this.#closeNode(now);
        if (node === null) {
          this.#finishedAt ??= now;
          if (this.#succeeded && this.#eventOutputs && this.#deps.eventOutputsComplete?.()) {
            this.#complete(resultFromOutputs(this.#eventOutputs), undefined);
            break;
          }
          // ComfyUI writes the history entry before sending this: read it now.
          this.#schedulePoll(0);
          break;
        }
        this.#startedAt ??= now;
        this.#currentNode = node;
        this.#nodes[node] = { startedAt: now };
        const event: RunEvent = { type: 'executing', promptId: id, nodeId: node };
        if (message.data.display_node !== undefined) event.displayNodeId = message.data.display_node;
        const classType = this.#options.prompt?.[message.data.display_node ?? node]?.class_type;
        if (classType !== undefined) event.classType = classType;
        this.#emit(event);
        break;
      }
      case 'progress': {
        const nodeId = message.data.node ?? this.#currentNode;
        if (nodeId === undefined) break;
        this.#emit({
          type: 'progress',
          promptId: id,
          nodeId,
          value: message.data.value,
          max: message.data.max,
        });
        break;
      }
      case 'progress_state':
        for (const [nodeId, s] of Object.entries(message.data.nodes)) {
          const timing = this.#nodes[nodeId];
          if (s.state === 'finished' && timing && timing.finishedAt === undefined) timing.finishedAt = now;
        }
        break;
      case 'executed': {
        const timing = this.#nodes[message.data.node];
        if (timing && timing.finishedAt === undefined) timing.finishedAt = now;
        // History keeps a node's last UI output, and has none for a node that sent null.
        const output = message.data.output;
        if (this.#eventOutputs && typeof output === 'object' && output !== null && !Array.isArray(output))
          this.#eventOutputs[message.data.node] = output as Record<string, unknown>;
        this.#emit({
          type: 'executed',
          promptId: id,
          nodeId: message.data.node,
          output: message.data.output,
        });
        break;
      }
      case 'execution_success':
        this.#closeNode(now);
        this.#finishedAt = now;
        this.#succeeded = true;
        // History is written just after this; `executing null` normally follows at once.
        this.#schedulePoll(TERMINAL_GRACE_MS);
        break;
      case 'execution_error':
        if (isBlockedExecution(message.data)) break;
        this.#closeNode(now);
        this.#settle(undefined, new ComfyExecutionError(message.data, this.#context()));
        break;
      case 'execution_interrupted':
        this.#closeNode(now);
        this.#settle(undefined, this.#interrupted(message.data));
        break;
    }
  }

  /** A preview frame attributed to this prompt. */
  handlePreview(frame: PreviewFrame): void {
    if (this.#settled) return;
    const event: RunEvent = { type: 'preview', promptId: this.promptId, mime: frame.mime, data: frame.data };
    const nodeId = frame.nodeId ?? this.#currentNode;
    if (nodeId !== undefined) event.nodeId = nodeId;
    this.#emit(event);
  }

  #closeNode(now: number): void {
    if (this.#currentNode === undefined) return;
    const timing = this.#nodes[this.#currentNode];
    if (timing && timing.finishedAt === undefined) timing.finishedAt = now;
    this.#currentNode = undefined;
  }

  #emit(event: RunEvent): void {
    const onEvent = this.#options.onEvent;
    if (!onEvent) return;
    try {
      onEvent(event);
    } catch (err) {
      this.#deps.logger?.warn({ err: String(err), prompt_id: this.promptId }, 'comfy: onEvent handler threw');
    }
  }

  #context(): { promptId: string; baseUrl: string } {
    return { promptId: this.promptId, baseUrl: this.#deps.baseUrl };
  }

  #interrupted(data: Record<string, unknown>): ComfyInterruptedError {
    const ctx: { promptId: string; baseUrl: string; nodeId?: string; nodeType?: string } = this.#context();
    if (typeof data.node_id === 'string') ctx.nodeId = data.node_id;
    if (typeof data.node_type === 'string') ctx.nodeType = data.node_type;
    const where = ctx.nodeId ? ` before node ${ctx.nodeId} (${ctx.nodeType ?? '?'})` : '';
    return new ComfyInterruptedError(`prompt ${this.promptId} was interrupted${where}`, ctx);
  }

  #schedulePoll(ms: number): void {
    if (this.#settled || this.#aborting) return;
    if (this.#polling) {
      if (ms === 0) this.#pollAgain = true;
      return;
    }
    const dueAt = Date.now() + ms;
    // Never postpone a poll that is already due sooner (e.g. `executing null` seen before the POST answer).
    if (this.#pollTimer !== undefined) {
      if (this.#pollDueAt <= dueAt) return;
      this.#clearPollTimer();
    }
    this.#pollDueAt = dueAt;
    const poll = () => {
      this.#pollTimer = undefined;
      void this.#poll();
    };
    // `executing null` means history is written: read it in this turn of the loop, not 1 ms later.
    this.#pollImmediate = ms <= 0;
    this.#pollTimer = ms <= 0 ? setImmediate(poll) : setTimeout(poll, ms);
  }

  #clearPollTimer(): void {
    const timer = this.#pollTimer;
    this.#pollTimer = undefined;
    if (timer === undefined) return;
    // Each clear function must get its own kind: clearImmediate on a Timeout corrupts Node's counts.
    if (this.#pollImmediate) clearImmediate(timer as NodeJS.Immediate);
    else clearTimeout(timer as NodeJS.Timeout);
  }

  async #poll(): Promise<void> {
    if (this.#settled) return;
    this.#polling = true;
    const signal = this.#scope.signal;
    const headers = this.#options.headers;
    try {
      this.#pollRequest = true;
      let entry = await this.#deps.getHistory(this.promptId, signal, headers);
      if (!entry && this.#accepted) {
        const position = await this.#deps.getQueuePosition(this.promptId, signal, headers);
        // Queue first, then history: ComfyUI moves a prompt from queue to history atomically, so a
        // prompt in neither (read in this order) is gone: deleted, or the server restarted.
        if (position === 'absent') {
          entry = await this.#deps.getHistory(this.promptId, signal, headers);
          this.#pollRequest = false;
          if (!entry) {
            this.#settle(
              undefined,
              new ComfyConnectionError(
                `prompt ${this.promptId} vanished from the queue and history of ${this.#deps.baseUrl} (server restarted or prompt deleted)`,
                this.#context(),
              ),
            );
            return;
          }
        }
      }
      this.#pollRequest = false;
      this.#pollFailures = 0;
      if (entry) {
        this.#finish(entry);
        return;
      }
    } catch (err) {
      this.#pollRequest = false;
      if (this.#settled || signal.aborted) return;
      this.#pollFailures++;
      this.#deps.logger?.debug({ err: String(err), prompt_id: this.promptId }, 'comfy: history poll failed');
      if (this.#pollFailures >= MAX_POLL_FAILURES) {
        const error =
          err instanceof ComfyError && !(err instanceof ComfyConnectionError)
            ? err
            : new ComfyConnectionError(
                `lost contact with ${this.#deps.baseUrl} while prompt ${this.promptId} ran`,
                {
                  ...this.#context(),
                  cause: err,
                },
              );
        this.#settle(undefined, error);
        return;
      }
    } finally {
      this.#polling = false;
    }
    const again = this.#pollAgain;
    this.#pollAgain = false;
    this.#schedulePoll(again ? 0 : this.#deps.pollIntervalMs);
  }

  #finish(entry: HistoryEntry): void {
    const outcome = historyOutcome(entry);
    if (outcome.kind === 'error') {
      this.#settle(undefined, new ComfyExecutionError(outcome.data, this.#context()));
      return;
    }
    if (outcome.kind === 'interrupted') {
      this.#settle(undefined, this.#interrupted(outcome.data));
      return;
    }
    this.#complete(resultFromOutputs(entry.outputs), historyTimes(entry));
  }

  /** The prompt finished with these outputs: succeed now, or once its POST /prompt is answered. */
  #complete(
    outputs: ReturnType<typeof resultFromOutputs>,
    times: ReturnType<typeof historyTimes> | undefined,
  ): void {
    this.#held = { outputs, times };
    // ComfyUI can finish a cached prompt before its POST answer (with node_errors) is read here.
    if (this.#accepted) this.#succeed();
    else this.#clearPollTimer();
  }

  #succeed(): void {
    if (!this.#held) return;
    const { outputs } = this.#held;
    // Outputs from events come with our own clock's times; from history, with its timestamps too.
    const times: Partial<ReturnType<typeof historyTimes>> = this.#held.times ?? {};
    const now = Date.now();
    // Prefer our own clock (WS arrival); fall back to the server's timestamps from history.
    const sawSocket = this.#startedAt !== undefined;
    const startedAt = sawSocket ? this.#startedAt : times.startedAt;
    const finishedAt = sawSocket ? (this.#finishedAt ?? now) : (times.finishedAt ?? now);
    const queuedAt = sawSocket ? this.#queuedAt : (times.createdAt ?? this.#queuedAt);
    const stats: RunResult['stats'] = {
      queuedAt,
      finishedAt,
      nodes: this.#nodes,
      cachedNodes: this.#cachedNodes ?? times.cachedNodes ?? [],
    };
    if (startedAt !== undefined) {
      stats.startedAt = startedAt;
      stats.queueWaitMs = Math.max(0, startedAt - queuedAt);
      stats.executionMs = Math.max(0, finishedAt - startedAt);
    }
    const result: RunResult = { promptId: this.promptId, ...outputs, stats };
    if (this.#nodeErrors) result.nodeErrors = this.#nodeErrors;
    this.#settle(result, undefined);
  }

  async #onAbort(): Promise<void> {
    if (this.#settled) return;
    this.#aborting = true;
    this.#clearPollTimer();
    const timedOut = this.#scope.timedOut;
    const error = timedOut
      ? new ComfyTimeoutError(
          `prompt ${this.promptId} did not finish within ${this.#options.timeoutMs} ms`,
          this.#context(),
        )
      : callerAbortError(this.#options.signal, this.#context());
    if (this.#options.cancelOnAbort && this.#accepted) {
      const cancelScope = scopedSignal([], CANCEL_TIMEOUT_MS);
      try {
        await this.#deps.cancel(this.promptId, cancelScope.signal, this.#options.headers);
      } catch (err) {
        this.#deps.logger?.warn(
          { err: String(err), prompt_id: this.promptId },
          'comfy: cancel after abort failed',
        );
      } finally {
        cancelScope.dispose();
      }
    }
    this.#settle(undefined, error);
  }

  #settle(result: RunResult | undefined, error: Error | undefined): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#clearPollTimer();
    // Stops an in-flight poll; without one, releasing the deadline timer and the caller's signal
    // listener is enough (aborting would dispatch an abort event nobody needs, on every run).
    if (this.#pollRequest) this.#scope.abort(RUN_FINISHED);
    else this.#scope.dispose();
    this.#deps.release(this);
    if (error) this.#reject(error);
    else if (result) this.#resolve(result);
  }
}

/**
 * Abort reason of a settled run's leftover work (polls in flight). It never reaches a caller, so one
 * shared instance is enough: building an Error (and its stack) per run was ~4 % of the client's CPU.
 */
const RUN_FINISHED = Object.freeze(new ComfyAbortError('run finished'));

function callerAbortError(
  signal: AbortSignal | undefined,
  context: { promptId: string; baseUrl: string },
): Error {
  const reason: unknown = signal?.reason;
  if (reason instanceof ComfyError) return reason;
  return new ComfyAbortError(`prompt ${context.promptId} was aborted by the caller`, {
    ...context,
    cause: reason,
  });
}
