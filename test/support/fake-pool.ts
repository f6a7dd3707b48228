// A scripted pool and ComfyUI client implementing the job layer's ports (src/jobs/ports.ts), for
// tests that drive JobManager through exact sequences (a failure on one instance, a cancel while a
// prompt runs, a restart finding a prompt in a given state) that real instances cannot time.
// Failures are the real client's errors (src/comfy), so the manager classifies them as in production.
import { EventEmitter } from 'node:events';
import { ComfyAbortError, type HistoryEntry, type QueueItem } from '../../src/comfy/index.ts';
import {
  type ApiPrompt,
  type ComfyClientLike,
  JobManager,
  type JobManagerOptions,
  type JobRecord,
  type LeaseLike,
  MemoryJobStore,
  type NodeDefs,
  type PoolLike,
  type RunEvent,
  type RunResult,
} from '../../src/jobs/index.ts';

type PromptState = Awaited<ReturnType<ComfyClientLike['getPromptState']>>;

/** One run() or waitForPrompt() call the test settles by hand. */
export interface FakeRun {
  instanceId: string;
  promptId: string;
  mode: 'run' | 'attach';
  signal: AbortSignal;
  /** Sends a run event to the caller (e.g. `started`). */
  emit(event: RunEvent): void;
  succeed(result?: Partial<RunResult>): void;
  fail(error: unknown): void;
}

/** A RunResult with one image output of node 9. */
export function runResult(promptId: string, fields: Partial<RunResult> = {}): RunResult {
  const now = Date.now();
  return {
    promptId,
    outputs: [{ nodeId: '9', kind: 'image', filename: `${promptId}.png`, subfolder: '', type: 'output' }],
    texts: [],
    rawOutputs: {},
    stats: { queuedAt: now, finishedAt: now, executionMs: 5, nodes: {}, cachedNodes: [] },
    ...fields,
  };
}

/** Waits for the next item of a stream of calls, failing after `ms`. */
class Inbox<T> {
  #items: T[] = [];
  #waiters: Array<(item: T) => void> = [];

  push(item: T): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter(item);
    else this.#items.push(item);
  }

  next(what: string, ms = 3000): Promise<T> {
    const item = this.#items.shift();
    if (item !== undefined) return Promise.resolve(item);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(new Error(`no ${what} within ${ms} ms`));
      }, ms);
      const waiter = (v: T) => {
        clearTimeout(timer);
        resolve(v);
      };
      this.#waiters.push(waiter);
    });
  }

  get pending(): number {
    return this.#items.length;
  }
}

/** A ComfyUI client whose runs the test settles; records prompts, cancels and state queries. */
export class FakeClient implements ComfyClientLike {
  readonly baseUrl: string;
  readonly instanceId: string;
  readonly cancels: string[] = [];
  readonly prompts: ApiPrompt[] = [];
  /** What getPromptState answers per prompt id (default 'unknown'). */
  readonly states = new Map<string, PromptState>();
  #runs: Inbox<FakeRun>;

  constructor(instanceId: string, runs: Inbox<FakeRun>) {
    this.instanceId = instanceId;
    this.baseUrl = `http://${instanceId}.invalid`;
    this.#runs = runs;
  }

  run(
    prompt: ApiPrompt,
    options: { promptId?: string; signal?: AbortSignal; onEvent?: (event: RunEvent) => void } = {},
  ): Promise<RunResult> {
    this.prompts.push(prompt);
    return this.#start('run', options.promptId ?? 'no-id', options);
  }

  waitForPrompt(
    promptId: string,
    options: { signal?: AbortSignal; onEvent?: (event: RunEvent) => void } = {},
  ): Promise<RunResult> {
    return this.#start('attach', promptId, options);
  }

  #start(
    mode: 'run' | 'attach',
    promptId: string,
    options: { signal?: AbortSignal; onEvent?: (event: RunEvent) => void },
  ): Promise<RunResult> {
    const { promise, resolve, reject } = Promise.withResolvers<RunResult>();
    const signal = options.signal ?? new AbortController().signal;
    // Like the real client: an aborted caller gets ComfyAbortError at once.
    signal.addEventListener(
      'abort',
      () => reject(new ComfyAbortError(`prompt ${promptId} was aborted by the caller`, { promptId })),
      { once: true },
    );
    this.#runs.push({
      instanceId: this.instanceId,
      promptId,
      mode,
      signal,
      emit: (event) => options.onEvent?.(event),
      succeed: (fields) => resolve(runResult(promptId, fields)),
      fail: (error) => reject(error),
    });
    return promise;
  }

  async getPromptState(promptId: string): Promise<PromptState> {
    return this.states.get(promptId) ?? 'unknown';
  }

  async cancel(promptId: string): Promise<void> {
    this.cancels.push(promptId);
  }

  async getQueue(): Promise<{ running: QueueItem[]; pending: QueueItem[] }> {
    const items = (s: PromptState) =>
      [...this.states]
        .filter(([, v]) => v === s)
        .map(([promptId], number) => ({ number, promptId, prompt: {}, extraData: {}, outputsToExecute: [] }));
    return { running: items('running'), pending: items('pending') };
  }

  async getHistories(): Promise<Record<string, HistoryEntry>> {
    return Object.fromEntries(
      [...this.states]
        .filter(([, v]) => v === 'completed' || v === 'failed')
        .map(([id]): [string, HistoryEntry] => [id, { prompt: [0, id, {}, {}, []], outputs: {} }]),
    );
  }

  view(): never {
    throw new Error('FakeClient.view is not scripted');
  }

  uploadImage(): never {
    throw new Error('FakeClient.uploadImage is not scripted');
  }
}

/** How a lease ended, as the manager reported it to the pool. */
export interface Release {
  instanceId: string;
  ok: boolean;
  infrastructure?: boolean;
}

/** A pool of fake instances with `slots` each; leases go to the first eligible instance with room.
 * Emits 'released' (instance id) when the manager gives a lease back. */
export class FakePool extends EventEmitter implements PoolLike {
  readonly clients = new Map<string, FakeClient>();
  readonly releases: Release[] = [];
  readonly #runs = new Inbox<FakeRun>();
  readonly #busy = new Map<string, number>();
  #slots: number;

  constructor(instanceIds: string[], slots = 1) {
    super();
    this.#slots = slots;
    for (const id of instanceIds) this.clients.set(id, new FakeClient(id, this.#runs));
  }

  /** The next run() or waitForPrompt() on any instance. */
  nextRun(ms?: number): Promise<FakeRun> {
    return this.#runs.next('run', ms);
  }

  /** Calls that arrived and were not taken with nextRun(). */
  get unclaimedRuns(): number {
    return this.#runs.pending;
  }

  /** Changes every instance's slot count and tells the scheduler there may be room. */
  setSlots(slots: number): void {
    this.#slots = slots;
    this.emit('capacity', {});
  }

  tryAcquire(req: { classTypes: string[]; exclude?: string[] }): LeaseLike | null {
    for (const [id, client] of this.clients) {
      if (req.exclude?.includes(id)) continue;
      const busy = this.#busy.get(id) ?? 0;
      if (busy >= this.#slots) continue;
      this.#busy.set(id, busy + 1);
      let released = false;
      return {
        instanceId: id,
        url: client.baseUrl,
        client,
        markStarted() {},
        release: (outcome) => {
          if (released) throw new Error(`lease on ${id} released twice`);
          released = true;
          this.#busy.set(id, (this.#busy.get(id) ?? 1) - 1);
          this.releases.push({
            instanceId: id,
            ok: outcome.ok,
            ...(outcome.ok ? {} : { infrastructure: outcome.infrastructure }),
          });
          this.emit('released', id);
          this.emit('capacity', {});
        },
      };
    }
    return null;
  }

  canEverRun(): { ok: true } {
    return { ok: true };
  }

  canRunNow(): boolean {
    return this.clients.size > 0;
  }

  async nodeDefsFor(): Promise<NodeDefs> {
    return {};
  }

  list(): Array<{ id: string; state: 'healthy' }> {
    return [...this.clients.keys()].map((id) => ({ id, state: 'healthy' }));
  }

  client(id: string): FakeClient | undefined {
    return this.clients.get(id);
  }
}

/** A started JobManager on `pool` and a MemoryJobStore; close it after the test. */
export async function startManager(
  pool: FakePool,
  options: Partial<JobManagerOptions> = {},
): Promise<{ manager: JobManager; store: MemoryJobStore }> {
  const store = (options.store as MemoryJobStore | undefined) ?? new MemoryJobStore();
  const manager = new JobManager({
    store,
    pool,
    maxQueue: 100,
    maxAttempts: 3,
    jobTimeoutMs: 10_000,
    retentionMs: 60_000,
    lazyPersistMs: 0,
    // Retries wait 5-10 ms (jitter), not seconds; failure reports do not wait for a webhook.
    retryBackoffMs: 10,
    retryBackoffMaxMs: 40,
    webhookHoldMs: 0,
    ...options,
  });
  await manager.start();
  return { manager, store };
}

/** A one-node API prompt (the fake client never looks inside). */
export const PROMPT: ApiPrompt = { '1': { class_type: 'SaveImage', inputs: {} } };

/** The job once it is terminal; its current state if that takes longer than `ms` (the caller asserts). */
export function settled(manager: JobManager, id: string, ms = 3000): Promise<JobRecord> {
  return manager.waitForTerminal(id, AbortSignal.timeout(ms));
}
