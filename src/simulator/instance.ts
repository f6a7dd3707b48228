// One simulated ComfyUI server: node:http + ws on one port, its queue/history/executor, the worker
// loop that runs prompts one at a time, fault knobs, and the crash/restart/close lifecycle.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { InstanceStoppedError } from './errors.ts';
import { Executor } from './executor.ts';
import { defaultFaults, type SimulatorFaults } from './faults.ts';
import { InstanceFiles } from './files.ts';
import { ModelsFolder } from './models-folder.ts';
import { PromptHistory } from './history.ts';
import { readBody, requestUrl, sendAiohttpError } from './http-util.ts';
import { PromptQueue, type QueueItem } from './prompt-queue.ts';
import { ordered } from './py-json.ts';
import { type RouteContext, route } from './routes.ts';
import { messageText, WsHub } from './ws-hub.ts';

/** Options of one instance. */
export interface InstanceOptions {
  host: string;
  port: number;
  dataDir: string;
  nodeDelayMs: number;
  /** Models layout whose files the loaders list (see models-folder.ts). */
  modelsDir?: string;
  logger: (line: string) => void;
  /** What POST /simulator/crash does (the CLI exits the process; in-process it is crash()). */
  onCrashRequest?: () => void;
}

/** A simulated ComfyUI instance (see SimulatedComfyUI in index.ts for the public contract). */
export class SimulatedInstance {
  readonly #opts: InstanceOptions;
  readonly files: InstanceFiles;
  readonly #models: ModelsFolder;
  #server: Server | null = null;
  #sockets = new Set<Socket>();
  #hub!: WsHub;
  #queue = new PromptQueue();
  #history = new PromptHistory();
  #executor!: Executor;
  #faults: SimulatorFaults;
  #counter = 0;
  #executedCount = 0;
  #life = new AbortController();
  #wake: (() => void) | null = null;
  #worker: Promise<void> | null = null;
  #boundPort = 0;
  #closed = false;
  #closing: Promise<void> | null = null;
  /** What the routes see; rebuilt by start() (queue, history and port change on restart). */
  #ctx: RouteContext | null = null;
  /** `status` broadcasts by queue_remaining (sent several times per prompt; a few distinct values). */
  readonly #statusTexts = new Map<number, string>();

  constructor(opts: InstanceOptions) {
    this.#opts = opts;
    this.files = new InstanceFiles(opts.dataDir);
    this.#models = new ModelsFolder(opts.modelsDir);
    this.#faults = defaultFaults(opts.nodeDelayMs);
  }

  get port(): number {
    return this.#boundPort;
  }

  get url(): string {
    const h = this.#opts.host.includes(':') ? `[${this.#opts.host}]` : this.#opts.host;
    return `http://${h}:${this.#boundPort}`;
  }

  get stats(): { promptsExecuted: number; connectedSockets: number; queueLength: number } {
    return {
      promptsExecuted: this.#executedCount,
      connectedSockets: this.#hub?.connected ?? 0,
      queueLength: this.#queue.remaining(),
    };
  }

  /** Starts listening (on the configured port, or the previously bound one after a crash). */
  async start(): Promise<void> {
    if (this.#closed) throw new InstanceStoppedError();
    this.#life = new AbortController();
    this.#ctx = null;
    this.#queue = new PromptQueue();
    this.#history = new PromptHistory();
    this.#counter = 0;
    this.files.clearTemp();
    this.#hub = new WsHub((sid) => this.#greeting(sid));
    this.#executor = new Executor({
      hub: this.#hub,
      files: this.files,
      faults: () => this.#faults,
      log: this.#opts.logger,
    });
    const server = createServer(
      { keepAliveTimeout: 75_000, requestTimeout: 0 },
      (req, res) => void this.#handle(req, res),
    );
    server.on('connection', (s) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if ((url.pathname === '/ws' || url.pathname === '/api/ws') && !this.#life.signal.aborted) {
        this.#hub.handleUpgrade(req, socket, head, url);
      } else {
        socket.destroy();
      }
    });
    server.on('clientError', (_err, socket) => socket.destroy());
    const port = this.#boundPort || this.#opts.port;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.#opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#server = server;
    const addr = server.address();
    this.#boundPort = typeof addr === 'object' && addr ? addr.port : port;
    this.#ctx = this.#routeContext();
    this.#worker = this.#runWorker(this.#life.signal);
  }

  #greeting(sid: string): Array<Record<string, unknown>> {
    const msgs: Array<Record<string, unknown>> = [
      {
        type: 'status',
        data: ordered([
          ['status', ordered([['exec_info', ordered([['queue_remaining', this.#queue.remaining()]])]])],
          ['sid', sid],
        ]),
      },
    ];
    if (this.#executor.currentClient === sid && this.#executor.currentNode !== null) {
      msgs.push({ type: 'executing', data: ordered([['node', this.#executor.currentNode]]) });
    }
    return msgs;
  }

  #queueChanged(): void {
    const remaining = this.#queue.remaining();
    let text = this.#statusTexts.get(remaining);
    if (text === undefined) {
      text = messageText(
        'status',
        ordered([['status', ordered([['exec_info', ordered([['queue_remaining', remaining]])]])]]),
      );
      if (this.#statusTexts.size < 256) this.#statusTexts.set(remaining, text);
    }
    this.#hub.sendText(text, null);
  }

  #routeContext(): RouteContext {
    return {
      files: this.files,
      queue: this.#queue,
      history: this.#history,
      port: this.#boundPort,
      nextNumber: () => this.#counter++,
      enqueue: (item: QueueItem) => {
        this.#queue.push(item);
        this.#queueChanged();
        this.#wake?.();
      },
      queueChanged: () => this.#queueChanged(),
      interrupt: (promptId) => {
        if (promptId === null || this.#queue.running?.promptId === promptId) this.#executor.interrupt();
        else this.#opts.logger(`interrupt for ${promptId} ignored: not running`);
      },
      freeMemory: () => this.#executor.freeMemory(),
      faults: () => this.#faults,
      setFaults: (f) => this.setFaults(f),
      clearFaults: () => this.clearFaults(),
      crash: () => (this.#opts.onCrashRequest ? this.#opts.onCrashRequest() : void this.crash()),
      stats: () => this.stats,
      lenientEmptyCombos: true,
      models: this.#models,
      log: this.#opts.logger,
    };
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const signal = this.#life.signal;
    const url = requestUrl(req.url);
    let bodyPromise: Promise<Buffer> | null = null;
    const getBody = () => {
      bodyPromise ??= readBody(req, signal);
      return bodyPromise;
    };
    try {
      if (!url.pathname.startsWith('/simulator/')) {
        if (this.#faults.httpDelayMs > 0) await sleep(this.#faults.httpDelayMs, undefined, { signal });
        if (this.#faults.historyDelayMs > 0 && /^(\/api)?\/history/.test(url.pathname)) {
          await sleep(this.#faults.historyDelayMs, undefined, { signal });
        }
        const failure = this.#faults.httpFailures.find((f) => f.times > 0 && url.pathname.startsWith(f.path));
        if (failure) {
          failure.times--;
          this.#faults.httpFailures = this.#faults.httpFailures.filter((f) => f.times > 0);
          await getBody().catch(() => Buffer.alloc(0));
          sendAiohttpError(res, failure.status);
          return;
        }
      }
      this.#ctx ??= this.#routeContext();
      await route(this.#ctx, req, res, url, getBody);
    } catch (err) {
      if (signal.aborted) {
        res.destroy();
        return;
      }
      this.#opts.logger(`request failed: ${(err as Error).message}`);
      sendAiohttpError(res, 500);
    }
  }

  async #runWorker(signal: AbortSignal): Promise<void> {
    // One abort listener for the worker's life (stop() also calls wake); a listener per wait would
    // pile up on the signal, and EventTarget scans its listeners on every add.
    const onAbort = () => this.#wake?.();
    signal.addEventListener('abort', onAbort, { once: true });
    while (!signal.aborted) {
      const item = this.#queue.popRunnable();
      if (!item) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
        this.#wake = null;
        continue;
      }
      this.#queue.running = item;
      this.#queueChanged();
      try {
        const entry = await this.#executor.execute(item, signal);
        if (signal.aborted) return;
        this.#queue.running = null;
        this.#history.add(entry);
        this.#executedCount++;
        this.#queueChanged();
        const clientId = typeof item.extraData.client_id === 'string' ? item.extraData.client_id : null;
        if (clientId !== null)
          this.#hub.send(
            'executing',
            ordered([
              ['node', null],
              ['prompt_id', item.promptId],
            ]),
            clientId,
          );
      } catch (err) {
        if (signal.aborted || err instanceof InstanceStoppedError) return;
        this.#opts.logger(`worker error: ${(err as Error).stack ?? err}`);
        this.#queue.running = null;
      }
    }
  }

  /** Merges fault settings. */
  setFaults(f: Partial<SimulatorFaults>): void {
    this.#faults = { ...this.#faults, ...f };
    if (f.neverStart === false) for (const it of this.#queue.pending()) it.parked = false;
    this.#wake?.();
  }

  /** Removes every fault (node delay back to the instance default). */
  clearFaults(): void {
    this.#faults = defaultFaults(this.#opts.nodeDelayMs);
    for (const it of this.#queue.pending()) it.parked = false;
    this.#wake?.();
  }

  async #stop(): Promise<void> {
    this.#life.abort();
    this.#wake?.();
    const server = this.#server;
    this.#server = null;
    this.#hub?.close();
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await this.#worker?.catch(() => {});
    this.#worker = null;
  }

  /** Like kill -9: every socket destroyed, listener gone, in-memory state lost. */
  async crash(): Promise<void> {
    if (this.#closed) return;
    await this.#stop();
  }

  /** Listens again on the same port with fresh in-memory state (files stay). */
  async restart(): Promise<void> {
    if (this.#closed) throw new InstanceStoppedError();
    if (this.#server) await this.#stop();
    await this.start();
  }

  /** Stops everything; idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      await this.#stop();
    })();
    return this.#closing;
  }
}
