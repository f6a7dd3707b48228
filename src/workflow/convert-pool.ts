// Converts UI workflows without blocking the event loop: a small one (few expanded nodes) converts
// in place in well under a millisecond or two; a large one goes to a bounded pool of worker threads,
// created on first use. The workflow crosses as JSON text (the request's own, when the caller has it):
// a structured clone of a 5,000-node workflow costs the main thread about as much as converting it.
// The result comes back as JSON text too. Every call has a deadline and an optional AbortSignal;
// past `maxQueue` waiting calls it refuses at once (ConvertBusyError) rather than queueing without end.
import { availableParallelism } from 'node:os';
import { serialize } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { DEFAULT_MAX_NODES, toApiPrompt } from './convert.ts';
import { DEFS_KEPT, type FromWorker, type ToWorker } from './convert-worker.ts';
import {
  requireNodeDefs,
  WorkflowConversionError,
  WorkflowError,
  WorkflowFormatError,
  WorkflowTooLargeError,
} from './errors.ts';
import { expandedSizeOfRaw } from './flatten.ts';
import type { ConversionIssue, ConversionResult, ConvertOptions, NodeDefs } from './types.ts';

/** The workflow's JSON text as received, and where in it the workflow is (`["workflow"]`; `[]` = all). */
export interface JsonSource {
  text: string;
  path: readonly string[];
}

/** Options of one convert() call: toApiPrompt's, plus the source text, a signal and a deadline. */
export interface PoolConvertOptions extends ConvertOptions {
  /** The JSON text the workflow was parsed from; without it a large workflow is stringified here. */
  source?: JsonSource;
  signal?: AbortSignal;
  /** Deadline of this call, queueing included (default: the pool's). */
  timeoutMs?: number;
}

/** Options of a ConvertPool. */
export interface ConvertPoolOptions {
  /** Worker threads at most (0 = always convert on the calling thread). Default: min(2, cores). */
  workers?: number;
  /** Calls waiting for a worker at most; more are refused with ConvertBusyError. Default 64. */
  maxQueue?: number;
  /** Workflows expanding to at most this many nodes convert in place. Default 250. */
  inlineMaxNodes?: number;
  /** Default deadline of a call. Default 10 s. */
  timeoutMs?: number;
}

/** Every worker is busy and the queue is full: try again shortly (503). */
export class ConvertBusyError extends WorkflowError {
  constructor(queued: number) {
    super('conversion_busy', `${queued} workflow conversions are already waiting; try again shortly`);
  }
}

/** A conversion did not finish within its deadline (its worker was stopped). */
export class ConvertTimeoutError extends WorkflowError {
  constructor(ms: number) {
    super('conversion_timeout', `the workflow conversion did not finish within ${ms} ms`);
  }
}

/** One call waiting for, or running on, a worker. */
interface Task {
  id: number;
  message: Extract<ToWorker, { type: 'convert' }>;
  defs: NodeDefs;
  resolve(result: ConversionResult): void;
  reject(err: unknown): void;
  worker?: Slot;
  done: boolean;
}

/** One worker thread, the definition sets it holds (oldest first) and its task. */
interface Slot {
  worker: Worker;
  defsIds: number[];
  task: Task | undefined;
}

/** Runs toApiPrompt in place or on worker threads (see the file header). close() is idempotent. */
export class ConvertPool {
  readonly #workers: number;
  readonly #maxQueue: number;
  readonly #inlineMaxNodes: number;
  readonly #timeoutMs: number;
  readonly #slots: Slot[] = [];
  readonly #queue: Task[] = [];
  /** Serialized definitions per definitions object, so each set is serialized once. */
  readonly #defs = new WeakMap<NodeDefs, { id: number; bytes: Uint8Array }>();
  #nextDefsId = 1;
  #nextTask = 1;
  #closing: Promise<void> | undefined;

  constructor(options: ConvertPoolOptions = {}) {
    this.#workers = options.workers ?? Math.min(2, availableParallelism());
    this.#maxQueue = options.maxQueue ?? 64;
    this.#inlineMaxNodes = options.inlineMaxNodes ?? 250;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** Worker threads running now (they start on the first large workflow). */
  get threads(): number {
    return this.#slots.length;
  }

  /** toApiPrompt, off the main thread when the workflow is large. Same results and errors. */
  async convert(
    ui: unknown,
    nodeDefs: NodeDefs,
    options: PoolConvertOptions = {},
  ): Promise<ConversionResult> {
    const { source, signal, timeoutMs, ...convertOptions } = options;
    requireNodeDefs('convert', nodeDefs);
    signal?.throwIfAborted();
    const maxNodes = convertOptions.maxNodes ?? DEFAULT_MAX_NODES;
    // The node-count refusal comes first, before any heavy work on either thread.
    const size = typeof maxNodes === 'number' ? expandedSizeOfRaw(ui, nodeDefs) : 0;
    if (size > maxNodes) throw new WorkflowTooLargeError(size, maxNodes);
    if (
      this.#closing ||
      this.#workers === 0 ||
      size <= this.#inlineMaxNodes ||
      convertOptions.now !== undefined // a clock cannot cross threads (tests pin one)
    )
      return toApiPrompt(ui, nodeDefs, convertOptions);
    const queued = this.#queue.length;
    if (queued >= this.#maxQueue) throw new ConvertBusyError(queued);
    const text = source?.text ?? JSON.stringify(ui);
    const path = source?.path ?? [];
    return new Promise<ConversionResult>((resolve, reject) => {
      const ms = timeoutMs ?? this.#timeoutMs;
      const task: Task = {
        id: this.#nextTask++,
        message: { type: 'convert', task: 0, defsId: 0, text, path, options: convertOptions },
        defs: nodeDefs,
        done: false,
        resolve: (r) => finish(() => resolve(r)),
        reject: (e) => finish(() => reject(e)),
      };
      task.message.task = task.id;
      const stop = (err: unknown) => {
        if (task.done) return;
        const i = this.#queue.indexOf(task);
        if (i >= 0) this.#queue.splice(i, 1);
        // A running conversion cannot be interrupted: its worker is stopped and replaced on demand.
        if (task.worker) this.#discard(task.worker);
        task.reject(err);
      };
      const timer = setTimeout(() => stop(new ConvertTimeoutError(ms)), ms);
      const onAbort = () => stop(signal?.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      const finish = (settle: () => void) => {
        if (task.done) return;
        task.done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        settle();
        this.#pump();
      };
      this.#queue.push(task);
      this.#pump();
    });
  }

  /** Stops every worker; calls in flight or waiting fail. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const closed = new WorkflowError('conversion_closed', 'the conversion pool is closed');
      for (const task of this.#queue.splice(0)) task.reject(closed);
      await Promise.all(
        this.#slots.splice(0).map(async (slot) => {
          slot.task?.reject(closed);
          await slot.worker.terminate().catch(() => {});
        }),
      );
    })();
    return this.#closing;
  }

  /** Starts waiting tasks on idle workers, starting workers up to the bound. */
  #pump(): void {
    while (this.#queue.length > 0 && !this.#closing) {
      let slot = this.#slots.find((s) => s.task === undefined);
      if (slot === undefined && this.#slots.length < this.#workers) slot = this.#spawn();
      if (slot === undefined) return;
      const task = this.#queue.shift() as Task;
      this.#run(slot, task);
    }
  }

  #run(slot: Slot, task: Task): void {
    slot.task = task;
    task.worker = slot;
    slot.worker.ref();
    let defs = this.#defs.get(task.defs);
    if (defs === undefined) {
      // Once per definitions object (a capability refresh), not per call.
      defs = { id: this.#nextDefsId++, bytes: serialize(task.defs) };
      this.#defs.set(task.defs, defs);
    }
    if (!slot.defsIds.includes(defs.id)) {
      slot.worker.postMessage({ type: 'defs', id: defs.id, bytes: defs.bytes } satisfies ToWorker);
      slot.defsIds.push(defs.id);
      while (slot.defsIds.length > DEFS_KEPT) slot.defsIds.shift();
    }
    task.message.defsId = defs.id;
    slot.worker.postMessage(task.message);
  }

  #spawn(): Slot {
    // A heap of its own, bounded: the node cap bounds the work, the body limit the text; past this
    // the worker dies alone (ERR_WORKER_OUT_OF_MEMORY fails its call), never the gateway.
    const worker = new Worker(new URL('./convert-worker.ts', import.meta.url), {
      name: 'convert',
      resourceLimits: { maxOldGenerationSizeMb: 512 },
    });
    const slot: Slot = { worker, defsIds: [], task: undefined };
    worker.on('message', (msg: FromWorker) => {
      const task = slot.task;
      if (task === undefined || task.id !== msg.task) return;
      slot.task = undefined;
      worker.unref(); // an idle worker never keeps the process alive
      if (msg.ok) {
        try {
          task.resolve(JSON.parse(msg.json) as ConversionResult);
        } catch (err) {
          task.reject(err);
        }
      } else task.reject(rebuild(msg.error));
    });
    const lost = (err: unknown) => {
      const task = slot.task;
      this.#discard(slot);
      task?.reject(err instanceof Error ? err : new Error(`the conversion worker stopped (${String(err)})`));
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`the conversion worker exited with code ${code}`)));
    this.#slots.push(slot);
    return slot;
  }

  /** Drops a worker (stuck past a deadline, or dead) and lets the next call start a fresh one. */
  #discard(slot: Slot): void {
    const i = this.#slots.indexOf(slot);
    if (i < 0) return;
    this.#slots.splice(i, 1);
    slot.task = undefined;
    slot.worker.removeAllListeners('exit');
    slot.worker.terminate().catch(() => {});
    queueMicrotask(() => this.#pump());
  }
}

/** The worker's error as the class the caller would have seen converting in place. */
function rebuild(e: Extract<FromWorker, { ok: false }>['error']): Error {
  const issues = (e.issues ?? []) as ConversionIssue[];
  if (e.code === 'workflow_too_large' && e.nodes !== undefined && e.limit !== undefined)
    return new WorkflowTooLargeError(e.nodes, e.limit);
  if (e.code === 'workflow_conversion_failed') return new WorkflowConversionError(e.message, issues);
  if (e.code === 'workflow_format_invalid') return new WorkflowFormatError(e.message, issues);
  if (e.code !== undefined) return new WorkflowError(e.code, e.message, issues);
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}
