// One ComfyUI process the gateway spawns and supervises: start and wait until /system_stats
// answers, pipe its log lines into ours, restart it with backoff when it exits, and stop it
// (SIGTERM, then SIGKILL after a grace period). Start/stop are idempotent and safe concurrently.
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import pino from 'pino';
import { splitCommand } from './config.ts';
import { ManagedProcessError } from './errors.ts';

/** Lifecycle of a managed process. */
export type ManagedProcessState =
  | 'stopped'
  | 'starting'
  | 'running'
  | 'backoff'
  | 'stopping'
  | 'failed'
  | 'closed';

/** Settings of one managed process. */
export interface ManagedProcessOptions {
  id: string;
  /** `{port}` (and `{host}`) are replaced in every argument. */
  command: string | string[];
  /** Appended after the command's own arguments (no placeholders replaced). */
  extraArgs?: string[] | undefined;
  port: number;
  host?: string;
  cwd?: string | undefined;
  env?: Record<string, string> | undefined;
  startTimeoutMs?: number | undefined;
  stopGraceMs?: number | undefined;
  restartDelayMs?: number | undefined;
  maxRestartDelayMs?: number | undefined;
  /** A run at least this long resets the restart backoff (default 60 s). */
  stableAfterMs?: number;
  logger?: Logger;
}

/** Events of a managed process. */
export interface ManagedProcessEvents {
  ready: [{ pid: number }];
  exit: [{ code: number | null; signal: NodeJS.Signals | null }];
  state: [ManagedProcessState];
}

const MAX_LOG_LINE = 4096;
const READY_POLL_MS = 200;

/** A supervised child process serving ComfyUI on one port. */
export class ManagedProcess extends EventEmitter<ManagedProcessEvents> {
  readonly id: string;
  readonly port: number;
  readonly url: string;
  /** Restarts after unexpected exits or failed starts. */
  restarts = 0;
  lastError: string | null = null;

  readonly #options: ManagedProcessOptions;
  readonly #logger: Logger;
  #currentState: ManagedProcessState = 'stopped';
  #child: ChildProcess | null = null;
  #childExit: Promise<void> | null = null;
  #launching: Promise<void> | null = null;
  #stopping: Promise<void> | null = null;
  #closed: Promise<void> | null = null;
  #launchAbort: AbortController | null = null;
  #restartTimer: NodeJS.Timeout | null = null;
  #supervised = false;
  #failures = 0;
  #readyAt = 0;
  readonly #killOnExit = (): void => this.#signalChild('SIGKILL');

  constructor(options: ManagedProcessOptions) {
    super();
    this.#options = options;
    this.id = options.id;
    this.port = options.port;
    const host = options.host ?? '127.0.0.1';
    this.url = `http://${host.includes(':') ? `[${host}]` : host}:${options.port}`;
    this.#logger = (options.logger ?? pino({ enabled: false })).child({
      instance: options.id,
      managed: true,
    });
  }

  get state(): ManagedProcessState {
    return this.#currentState;
  }

  /** The child's pid while one runs. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Spawns the process (if not running) and resolves once it answers; keeps it running until stop(). */
  start(): Promise<void> {
    if (this.#currentState === 'closed') return Promise.reject(new ManagedProcessError(`${this.id}: closed`));
    this.#supervised = true;
    this.#clearRestart();
    if (this.#currentState === 'running') return Promise.resolve();
    if (this.#launching) return this.#launching;
    const stopping = this.#stopping;
    this.#launching = (async () => {
      if (stopping) await stopping;
      await this.#launch();
    })().finally(() => {
      this.#launching = null;
    });
    return this.#launching;
  }

  /** Stops supervision and the process (SIGTERM, SIGKILL after the grace period); idempotent. */
  stop(): Promise<void> {
    this.#supervised = false;
    this.#clearRestart();
    this.#launchAbort?.abort(new ManagedProcessError(`${this.id}: stopped while starting`));
    if (this.#stopping) return this.#stopping;
    if (!this.#child) {
      if (this.#currentState !== 'closed') this.#setState('stopped');
      return Promise.resolve();
    }
    this.#stopping = this.#terminate().finally(() => {
      this.#stopping = null;
      if (this.#currentState !== 'closed') this.#setState('stopped');
    });
    return this.#stopping;
  }

  /** Stops the process for good. Idempotent: a later caller waits for the first close. */
  close(): Promise<void> {
    this.#closed ??= this.stop().finally(() => {
      this.#setState('closed');
      this.removeAllListeners();
    });
    return this.#closed;
  }

  async #launch(): Promise<void> {
    this.#setState('starting');
    const abort = new AbortController();
    this.#launchAbort = abort;
    const startTimeoutMs = this.#options.startTimeoutMs ?? 120_000;
    const deadline = AbortSignal.any([abort.signal, AbortSignal.timeout(startTimeoutMs)]);
    try {
      const child = this.#spawnChild();
      await this.#waitReady(child, deadline, startTimeoutMs);
      this.#readyAt = Date.now();
      this.lastError = null;
      this.#setState('running');
      this.#logger.info({ pid: child.pid, url: this.url }, 'managed ComfyUI is ready');
      this.emit('ready', { pid: child.pid ?? 0 });
    } catch (error) {
      const failure =
        error instanceof ManagedProcessError
          ? error
          : new ManagedProcessError(`${this.id}: ${(error as Error).message}`, { cause: error });
      this.lastError = failure.message;
      if (this.#child) await (this.#stopping ?? this.#terminate());
      // stop()/close() during the start own the final state.
      if (this.#currentState === 'closed' || !this.#supervised) throw failure;
      this.#setState('failed');
      this.#logger.error({ err: failure }, 'managed ComfyUI failed to start');
      this.#scheduleRestart();
      throw failure;
    } finally {
      if (this.#launchAbort === abort) this.#launchAbort = null;
    }
  }

  #spawnChild(): ChildProcess {
    const host = this.#options.host ?? '127.0.0.1';
    const template =
      typeof this.#options.command === 'string'
        ? splitCommand(this.#options.command)
        : [...this.#options.command];
    const argv = template.map((arg) =>
      arg.replaceAll('{port}', String(this.port)).replaceAll('{host}', host),
    );
    argv.push(...(this.#options.extraArgs ?? []));
    const [file, ...args] = argv;
    if (!file) throw new ManagedProcessError(`${this.id}: empty command`);
    const child = spawn(file, args, {
      cwd: this.#options.cwd,
      env: { ...process.env, ...this.#options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so stop() reaches the children ComfyUI may spawn.
      detached: process.platform !== 'win32',
    });
    this.#child = child;
    this.#logger.info({ pid: child.pid, argv }, 'spawned managed ComfyUI');
    process.once('exit', this.#killOnExit);
    this.#childExit = new Promise<void>((resolve) => {
      let done = false;
      const finish = (code: number | null, signal: NodeJS.Signals | null, error?: Error): void => {
        if (done) return;
        done = true;
        process.off('exit', this.#killOnExit);
        this.#onChildExit(child, code, signal, error);
        resolve();
      };
      child.once('exit', (code, signal) => finish(code, signal));
      child.once('error', (error) => {
        // 'error' without a pid means the spawn itself failed (no 'exit' follows).
        if (child.pid === undefined) finish(null, null, error);
        else this.#logger.warn({ err: error }, 'managed process error');
      });
    });
    for (const [stream, name] of [
      [child.stdout, 'stdout'],
      [child.stderr, 'stderr'],
    ] as const) {
      if (!stream) continue;
      const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
      lines.on('line', (line) => {
        if (line.trim() === '') return;
        this.#logger.info(
          { stream: name },
          line.length > MAX_LOG_LINE ? `${line.slice(0, MAX_LOG_LINE)}…` : line,
        );
      });
    }
    return child;
  }

  async #waitReady(child: ChildProcess, signal: AbortSignal, timeoutMs: number): Promise<void> {
    const exited = this.#childExit!;
    let gone = false;
    void exited.then(() => {
      gone = true;
    });
    while (true) {
      if (gone || this.#child !== child) {
        throw new ManagedProcessError(
          `${this.id}: exited before answering (${this.lastError ?? 'no reason'})`,
        );
      }
      if (signal.aborted) {
        const reason = signal.reason as unknown;
        if (reason instanceof ManagedProcessError) throw reason;
        throw new ManagedProcessError(`${this.id}: did not answer /system_stats within ${timeoutMs} ms`);
      }
      try {
        const response = await fetch(`${this.url}/system_stats`, {
          signal: AbortSignal.any([signal, AbortSignal.timeout(2000)]),
        });
        await response.body?.cancel();
        if (response.ok) return;
      } catch {
        // Not listening yet.
      }
      await Promise.race([delay(READY_POLL_MS, undefined, { signal }).catch(() => undefined), exited]);
    }
  }

  #onChildExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null, error?: Error): void {
    if (this.#child !== child) return;
    this.#child = null;
    const wasRunning = this.#currentState === 'running';
    const reason = error ? error.message : `exit code ${code ?? 'none'}${signal ? `, signal ${signal}` : ''}`;
    if (this.#currentState !== 'stopping' && this.#currentState !== 'closed') this.lastError = reason;
    this.#logger[wasRunning ? 'warn' : 'info'](
      { code, signal, err: error },
      `managed ComfyUI exited (${reason})`,
    );
    this.emit('exit', { code, signal });
    if (wasRunning && this.#supervised) {
      if (Date.now() - this.#readyAt >= (this.#options.stableAfterMs ?? 60_000)) this.#failures = 0;
      this.#scheduleRestart();
    }
  }

  #scheduleRestart(): void {
    if (!this.#supervised || this.#currentState === 'closed' || this.#restartTimer) return;
    const initial = this.#options.restartDelayMs ?? 1000;
    const max = Math.max(initial, this.#options.maxRestartDelayMs ?? 30_000);
    const wait = Math.min(max, initial * 2 ** this.#failures);
    this.#failures++;
    this.#setState('backoff');
    this.#logger.info({ inMs: wait }, 'restarting managed ComfyUI');
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = null;
      if (!this.#supervised) return;
      this.restarts++;
      this.start().catch(() => undefined);
    }, wait);
  }

  async #terminate(): Promise<void> {
    const child = this.#child;
    const exited = this.#childExit;
    if (!child || !exited) return;
    if (this.#currentState !== 'closed') this.#setState('stopping');
    this.#signalChild('SIGTERM');
    const grace = this.#options.stopGraceMs ?? 10_000;
    const cancelTimer = new AbortController();
    const timer = delay(grace, 'timeout' as const, { signal: cancelTimer.signal }).catch(
      () => 'exited' as const,
    );
    const outcome = await Promise.race([exited.then(() => 'exited' as const), timer]);
    cancelTimer.abort();
    if (outcome === 'timeout') {
      this.#logger.warn({ pid: child.pid, graceMs: grace }, 'managed ComfyUI ignored SIGTERM: killing');
      this.#signalChild('SIGKILL');
      await Promise.race([exited, once(child, 'close').catch(() => undefined)]);
    }
  }

  #signalChild(signal: NodeJS.Signals): void {
    const child = this.#child;
    if (!child?.pid) return;
    try {
      if (process.platform !== 'win32') process.kill(-child.pid, signal);
      else child.kill(signal);
    } catch {
      child.kill(signal);
    }
  }

  #clearRestart(): void {
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    this.#restartTimer = null;
  }

  #setState(state: ManagedProcessState): void {
    if (this.#currentState === state) return;
    this.#currentState = state;
    this.emit('state', state);
  }
}
