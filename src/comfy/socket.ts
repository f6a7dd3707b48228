// The one shared WebSocket of a client: lazy connect, feature-flag negotiation, dead-socket
// detection (ping after silence, terminate when no pong), bounded reconnect with jittered backoff,
// and the same-clientId hand-over rule (the old socket is fully closed before a new one opens, and
// anything it still delivers is ignored).
import WebSocket from 'ws';
import { backoffDelay, delay, scopedSignal } from './deadline.ts';
import { ComfyAbortError, ComfyClosedError, ComfyConnectionError, ComfyTimeoutError } from './errors.ts';
import { type BinaryFrame, type ComfyMessage, decodeBinaryFrame, parseTextMessage } from './messages.ts';
import type { ComfyClientState, ComfyLogger } from './types.ts';

/** What the socket reports to its owner. */
export interface SocketHandlers {
  state(state: ComfyClientState): void;
  message(message: ComfyMessage): void;
  binary(frame: BinaryFrame): void;
  /** The socket dropped while open; runs should reconcile through HTTP. */
  drop(reason: string): void;
  /** A dropped socket is open again (same clientId). */
  reconnect(attempt: number): void;
}

/** Options of ComfySocket. */
export interface ComfySocketOptions {
  /** ws:// or wss:// URL including `?clientId=`. */
  url: string;
  headers: Record<string, string>;
  openTimeoutMs: number;
  reconnect: { initialDelayMs: number; maxDelayMs: number; maxAttempts: number };
  heartbeat: { intervalMs: number; timeoutMs: number };
  logger?: ComfyLogger;
  handlers: SocketHandlers;
}

/** Client feature flags sent as the first message (§2.2). */
const CLIENT_FLAGS = { supports_preview_metadata: true, supports_progress_text_metadata: true };

/** The client's shared WebSocket connection. */
export class ComfySocket {
  #state: ComfyClientState = 'idle';
  #ws: WebSocket | undefined;
  #connecting: Promise<void> | undefined;
  #reconnectLoop: Promise<void> | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #lastTraffic = 0;
  #pingSentAt = 0;
  #serverFlags: Record<string, unknown> = {};
  /** Aborted by close(): stops reconnect loops and pending opens. */
  readonly #closing = new AbortController();
  #closed: Promise<void> | undefined;
  /** Resolves waiters of connect() when the state changes. */
  readonly #stateWaiters = new Set<() => void>();
  readonly #options: ComfySocketOptions;

  constructor(options: ComfySocketOptions) {
    this.#options = options;
  }

  get state(): ComfyClientState {
    return this.#state;
  }

  /** Feature flags the server answered with (empty for servers older than v0.3.45). */
  get serverFeatures(): Record<string, unknown> {
    return this.#serverFlags;
  }

  /** Resolves once the socket is open and registered; idempotent. */
  async connect(signal?: AbortSignal): Promise<void> {
    if (this.#state === 'closed') throw new ComfyClosedError('client closed');
    if (this.#state === 'open') return;
    if (this.#state === 'idle') {
      this.#connecting ??= this.#openOnce().finally(() => {
        this.#connecting = undefined;
      });
      if (!signal) return this.#connecting;
      await raceSignal(this.#connecting, signal);
      return;
    }
    // connecting (an open in progress) or reconnecting: wait for the outcome.
    await this.#waitForState((s) => s === 'open' || s === 'idle' || s === 'closed', signal);
    const state = this.#state as ComfyClientState;
    if (state === 'open') return;
    if (state === 'closed') throw new ComfyClosedError('client closed');
    throw new ComfyConnectionError(`WebSocket ${this.#options.url}: reconnect gave up`);
  }

  /** Closes the socket and stops reconnecting. Idempotent: a later caller waits for the first close. */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.#closing.abort(new ComfyClosedError('client closed'));
    this.#stopHeartbeat();
    const ws = this.#ws;
    this.#ws = undefined;
    this.#setState('closed');
    if (ws) await closeSocket(ws);
    await this.#reconnectLoop?.catch(() => undefined);
    await this.#connecting?.catch(() => undefined);
  }

  #setState(state: ComfyClientState): void {
    if (this.#state === state) return;
    if (this.#state === 'closed') return;
    this.#state = state;
    this.#options.handlers.state(state);
    for (const w of [...this.#stateWaiters]) w();
  }

  async #waitForState(done: (s: ComfyClientState) => boolean, signal?: AbortSignal): Promise<void> {
    if (done(this.#state)) return;
    await new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        this.#stateWaiters.delete(check);
        signal?.removeEventListener('abort', onAbort);
      };
      const check = (): void => {
        if (done(this.#state)) {
          cleanup();
          resolve();
        }
      };
      const onAbort = (): void => {
        cleanup();
        reject(abortError(signal));
      };
      if (signal?.aborted) {
        onAbort();
        return;
      }
      this.#stateWaiters.add(check);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** First connection: failure returns to idle (the next connect() tries again). */
  async #openOnce(): Promise<void> {
    this.#setState('connecting');
    try {
      await this.#attempt();
      this.#setState('open');
    } catch (err) {
      if (this.#state !== 'closed') this.#setState('idle');
      throw err;
    }
  }

  /** One connection attempt: resolves when the greeting `status` arrived on the new socket. */
  #attempt(): Promise<void> {
    const { url, headers, openTimeoutMs, logger } = this.#options;
    return new Promise<void>((resolve, reject) => {
      if (this.#closing.signal.aborted) {
        reject(new ComfyClosedError('client closed'));
        return;
      }
      const ws = new WebSocket(url, { headers, handshakeTimeout: openTimeoutMs, perMessageDeflate: false });
      this.#ws = ws;
      let greeted = false;
      const scope = scopedSignal([this.#closing.signal], openTimeoutMs);
      const fail = (err: Error): void => {
        scope.dispose();
        if (this.#ws === ws) this.#ws = undefined;
        ws.removeAllListeners('message');
        ws.terminate();
        reject(err);
      };
      scope.signal.addEventListener(
        'abort',
        () =>
          fail(
            scope.timedOut
              ? new ComfyTimeoutError(`WebSocket ${url}: no greeting within ${openTimeoutMs} ms`)
              : new ComfyClosedError('client closed'),
          ),
        { once: true },
      );
      ws.on('open', () => {
        this.#lastTraffic = Date.now();
        ws.send(JSON.stringify({ type: 'feature_flags', data: CLIENT_FLAGS }));
      });
      ws.on('message', (data, isBinary) => {
        // A replaced socket may still deliver; only the current one speaks for this client.
        if (this.#ws !== ws) return;
        this.#lastTraffic = Date.now();
        this.#pingSentAt = 0;
        const buf = toBuffer(data);
        if (isBinary) {
          this.#onBinary(buf);
          return;
        }
        const message = parseTextMessage(buf.toString('utf8'));
        if (!message) {
          logger?.debug(
            { frame: buf.toString('utf8', 0, 200) },
            'comfy: dropped malformed WebSocket message',
          );
          return;
        }
        if (message.type === 'feature_flags') this.#serverFlags = message.data;
        if (!greeted && message.type === 'status') {
          greeted = true;
          scope.dispose();
          this.#startHeartbeat(ws);
          resolve();
        }
        this.#options.handlers.message(message);
      });
      ws.on('pong', () => {
        if (this.#ws !== ws) return;
        this.#lastTraffic = Date.now();
        this.#pingSentAt = 0;
      });
      ws.on('error', (err) => {
        logger?.debug({ err: err.message, url }, 'comfy: WebSocket error');
        if (!greeted) fail(new ComfyConnectionError(`WebSocket ${url}: ${err.message}`, { cause: err }));
      });
      ws.on('close', (code) => {
        if (!greeted) {
          fail(new ComfyConnectionError(`WebSocket ${url} closed before its greeting (code ${code})`));
          return;
        }
        if (this.#ws !== ws) return;
        this.#ws = undefined;
        this.#stopHeartbeat();
        this.#onDrop(`closed with code ${code}`);
      });
    });
  }

  #onBinary(buf: Buffer): void {
    try {
      const textWithPromptId = this.#serverFlags.supports_progress_text_metadata === true;
      this.#options.handlers.binary(decodeBinaryFrame(buf, textWithPromptId));
    } catch (err) {
      this.#options.logger?.debug(
        { err: String(err), length: buf.length },
        'comfy: dropped bad binary frame',
      );
    }
  }

  #onDrop(reason: string): void {
    if (this.#state === 'closed') return;
    this.#options.logger?.warn({ url: this.#options.url, reason }, 'comfy: WebSocket dropped, reconnecting');
    this.#setState('reconnecting');
    this.#options.handlers.drop(reason);
    this.#reconnectLoop ??= this.#reconnect().finally(() => {
      this.#reconnectLoop = undefined;
    });
  }

  async #reconnect(): Promise<void> {
    const { initialDelayMs, maxDelayMs, maxAttempts } = this.#options.reconnect;
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      try {
        await delay(backoffDelay(attempt, initialDelayMs, maxDelayMs), this.#closing.signal);
        await this.#attempt();
        this.#setState('open');
        this.#options.handlers.reconnect(attempt + 1);
        return;
      } catch (err) {
        if (this.#closing.signal.aborted) return;
        this.#options.logger?.debug({ attempt: attempt + 1, err: String(err) }, 'comfy: reconnect failed');
      }
    }
    this.#options.logger?.warn({ url: this.#options.url, maxAttempts }, 'comfy: WebSocket reconnect gave up');
    this.#setState('idle');
  }

  #startHeartbeat(ws: WebSocket): void {
    this.#stopHeartbeat();
    const { intervalMs, timeoutMs } = this.#options.heartbeat;
    const tick = Math.max(10, Math.min(intervalMs, timeoutMs) / 2);
    this.#heartbeat = setInterval(() => {
      if (this.#ws !== ws) return;
      const now = Date.now();
      if (this.#pingSentAt !== 0 && now - this.#pingSentAt >= timeoutMs) {
        this.#options.logger?.warn(
          { url: this.#options.url },
          'comfy: WebSocket silent and unanswered, dropping',
        );
        ws.terminate();
        return;
      }
      if (this.#pingSentAt === 0 && now - this.#lastTraffic >= intervalMs) {
        this.#pingSentAt = now;
        ws.ping();
      }
    }, tick);
    this.#heartbeat.unref();
  }

  #stopHeartbeat(): void {
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    this.#pingSentAt = 0;
  }
}

function toBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function abortError(signal?: AbortSignal): Error {
  const reason: unknown = signal?.reason;
  if (reason instanceof Error && 'code' in reason) return reason;
  return new ComfyAbortError('aborted');
}

async function raceSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  const scope = scopedSignal([signal]);
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        if (scope.signal.aborted) reject(abortError(signal));
        scope.signal.addEventListener('abort', () => reject(abortError(signal)), { once: true });
      }),
    ]);
  } finally {
    scope.dispose();
  }
}

/** Closes politely, then forcibly; resolves when the socket is gone. */
async function closeSocket(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => ws.terminate(), 500);
    ws.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
    else ws.close(1000);
  });
}
