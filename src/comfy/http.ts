// HTTP transport to one ComfyUI server: a keep-alive undici Pool, per-call deadlines, mapping of
// transport failures and statuses onto the error hierarchy, and bounded retries (with jitter) of
// calls that are safe to repeat.
import { ExponentialBackoff, handleWhen, type RetryPolicy, retry } from 'cockatiel';
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import { scopedSignal } from './deadline.ts';
import {
  ComfyAbortError,
  ComfyClosedError,
  ComfyConnectionError,
  ComfyError,
  ComfyServerError,
  ComfyTimeoutError,
} from './errors.ts';
import { clientHeaders, type HeaderMap } from './headers.ts';

/** Error codes meaning the request never left this process (safe to resend anything). */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);
/** Error codes of a connection that broke after the request may have been sent. */
const BROKEN_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_REQ_RETRY',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);

/** One HTTP request. */
export interface HttpRequest {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  query?: Record<string, string | number | undefined>;
  json?: unknown;
  body?: Dispatcher.DispatchOptions['body'];
  /** Builds a fresh body per attempt (streamed bodies cannot be resent). */
  makeBody?: () => Dispatcher.DispatchOptions['body'];
  /** Headers the request itself needs (content type, range): they win over every other header. */
  headers?: Record<string, string>;
  /** The caller's per-call headers (validated by callHeaders), merged over the client's. */
  callHeaders?: HeaderMap;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Safe to repeat after a broken connection (GETs, deletes, interrupts). */
  idempotent?: boolean;
  /** Repeat only when the request provably never reached the server. */
  retryNotSent?: boolean;
  promptId?: string;
}

/** A response whose body has been read fully. */
export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  text: string;
}

/** Options of the transport. */
export interface HttpTransportOptions {
  baseUrl: string;
  headers?: Record<string, string>;
  requestTimeoutMs: number;
  connections: number;
  retry: { maxAttempts: number; initialDelayMs: number; maxDelayMs: number };
}

const MAX_ERROR_BODY = 64 * 1024;

/** Keep-alive HTTP access to one ComfyUI origin. */
export class HttpTransport {
  readonly baseUrl: string;
  readonly origin: string;
  readonly pathPrefix: string;
  readonly #pool: Pool;
  readonly #headers: HeaderMap;
  readonly #timeoutMs: number;
  readonly #retryOptions: HttpTransportOptions['retry'];
  /** Retries any retryable failure (idempotent calls); built once, policies keep no per-call state. */
  readonly #retryIdempotent: RetryPolicy;
  /** Retries only failures of requests that provably never left this process. */
  readonly #retryNotSent: RetryPolicy;
  /** Aborted by close(): marks the transport closed. */
  readonly #closing = new AbortController();
  #closed: Promise<void> | undefined;
  /**
   * Attempts in flight (bounded by the pool's concurrency plus its queue): close() aborts them,
   * which is cheaper than every attempt listening on the closing signal.
   */
  readonly #inflight = new Set<Attempt>();

  constructor(options: HttpTransportOptions) {
    const url = new URL(options.baseUrl);
    this.origin = url.origin;
    this.pathPrefix = url.pathname.replace(/\/+$/, '');
    this.baseUrl = this.origin + this.pathPrefix;
    this.#headers = clientHeaders(options.headers);
    this.#timeoutMs = options.requestTimeoutMs;
    this.#retryOptions = options.retry;
    const backoff = new ExponentialBackoff({
      initialDelay: options.retry.initialDelayMs,
      maxDelay: options.retry.maxDelayMs,
    });
    const maxAttempts = options.retry.maxAttempts - 1;
    this.#retryIdempotent = retry(
      handleWhen((err) => err instanceof ComfyError && err.retryable),
      { maxAttempts, backoff },
    );
    this.#retryNotSent = retry(
      handleWhen((err) => err instanceof ComfyConnectionError && err.retryable && err.notSent),
      { maxAttempts, backoff },
    );
    this.#pool = new Pool(this.origin, {
      connections: options.connections,
      keepAliveTimeout: 10_000,
      connect: { timeout: Math.min(10_000, options.requestTimeoutMs) },
    });
  }

  /** The headers sent with every request (also used for the WebSocket upgrade), names lower-cased. */
  get headers(): Record<string, string> {
    return { ...this.#headers };
  }

  /** Builds the request path with the base URL's prefix and a query string. */
  url(path: string, query?: HttpRequest['query']): string {
    let out = this.pathPrefix + path;
    if (query) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
      const qs = params.toString();
      if (qs) out += `?${qs}`;
    }
    return out;
  }

  /** Sends a request, reads the whole body and maps failures; retries where it is safe. */
  async send(req: HttpRequest): Promise<HttpResponse> {
    this.#assertOpen();
    const canRetry = req.idempotent === true || req.retryNotSent === true;
    if (!canRetry || this.#retryOptions.maxAttempts <= 1) return this.#sendOnce(req);
    const policy = req.idempotent === true ? this.#retryIdempotent : this.#retryNotSent;
    // cockatiel only reads `aborted` on this signal after a failed attempt, to stop retrying. No
    // linked scope is needed for close(): a closed transport fails every attempt with the
    // non-retryable ComfyClosedError (#mapError and #assertOpen check it first).
    const stop = req.signal ?? this.#closing.signal;
    try {
      return await policy.execute(() => this.#sendOnce(req), stop);
    } catch (err) {
      // Guard against cockatiel rejecting with its own error (e.g. an abort between attempts).
      if (!(err instanceof ComfyError)) throw this.#mapError(err, req, undefined);
      throw err;
    }
  }

  /** Sends a request and parses a JSON answer (2xx; with `parse` when given), mapping other statuses to ComfyServerError. */
  async json<T>(req: HttpRequest, parse: (text: string) => unknown = JSON.parse): Promise<T> {
    const res = await this.send(req);
    this.#expectOk(req, res);
    try {
      return parse(res.text) as T;
    } catch {
      throw new ComfyServerError(
        `${req.method} ${req.path}: answer is not JSON`,
        res.status,
        res.text.slice(0, 1000),
        this.#context(req),
      );
    }
  }

  /** Sends a request whose answer carries nothing of interest (2xx expected). */
  async empty(req: HttpRequest): Promise<void> {
    const res = await this.send(req);
    this.#expectOk(req, res);
  }

  /** Opens a streamed request (no retries: the caller owns and must consume the body). */
  async stream(req: HttpRequest): Promise<Dispatcher.ResponseData> {
    this.#assertOpen();
    const scope = scopedSignal([req.signal, this.#closing.signal]);
    const timeoutMs = req.timeoutMs ?? this.#timeoutMs;
    try {
      const res = await this.#pool.request({
        method: req.method,
        path: this.url(req.path, req.query),
        headers: this.#requestHeaders(req),
        signal: scope.signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      // The body stream is tied to the signal; release our listeners once it ends either way.
      res.body.once('close', () => scope.dispose());
      return res;
    } catch (err) {
      scope.dispose();
      throw this.#mapError(err, req, undefined);
    }
  }

  /** Cancels in-flight calls and closes the connections. Idempotent: a later caller waits for the first close. */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    const reason = new ComfyClosedError('client closed', { baseUrl: this.baseUrl });
    this.#closing.abort(reason);
    for (const attempt of this.#inflight) attempt.abort(reason);
    this.#inflight.clear();
    await this.#pool.destroy().catch(() => undefined);
  }

  get closed(): boolean {
    return this.#closing.signal.aborted;
  }

  #assertOpen(): void {
    if (this.#closing.signal.aborted) throw new ComfyClosedError('client closed', { baseUrl: this.baseUrl });
  }

  #expectOk(req: HttpRequest, res: HttpResponse): void {
    if (res.status >= 200 && res.status < 300) return;
    throw new ComfyServerError(
      `${req.method} ${req.path} answered ${res.status}${res.text ? `: ${res.text.slice(0, 200)}` : ''}`,
      res.status,
      res.text,
      this.#context(req),
    );
  }

  async #sendOnce(req: HttpRequest): Promise<HttpResponse> {
    this.#assertOpen();
    const headers = this.#requestHeaders(req);
    let body = req.makeBody ? req.makeBody() : req.body;
    if (req.json !== undefined) {
      body = JSON.stringify(req.json);
      headers['content-type'] = 'application/json';
    }
    const attempt = new Attempt(req.signal, req.timeoutMs ?? this.#timeoutMs, body, this.#inflight);
    let res: HttpResponse;
    try {
      res = await attempt.send(this.#pool, {
        method: req.method,
        path: this.url(req.path, req.query),
        headers,
        body: body ?? null,
      });
    } catch (err) {
      throw this.#mapError(err, req, attempt);
    }
    if (res.status >= 500 && req.idempotent) {
      // Surface retryable 5xx as errors so the retry policy sees them.
      throw new ComfyServerError(
        `${req.method} ${req.path} answered ${res.status}`,
        res.status,
        res.text,
        this.#context(req),
      );
    }
    return res;
  }

  #requestHeaders(req: HttpRequest): Record<string, string> {
    return { ...this.#headers, ...req.callHeaders, ...req.headers };
  }

  #context(req: HttpRequest): { baseUrl: string; promptId?: string } {
    return req.promptId === undefined
      ? { baseUrl: this.baseUrl }
      : { baseUrl: this.baseUrl, promptId: req.promptId };
  }

  #mapError(err: unknown, req: HttpRequest, attempt: { readonly timedOut: boolean } | undefined): ComfyError {
    if (err instanceof ComfyError) return err;
    const ctx = { ...this.#context(req), cause: err };
    const what = `${req.method} ${req.path}`;
    if (this.#closing.signal.aborted) return new ComfyClosedError(`${what}: client closed`, ctx);
    if (attempt?.timedOut) {
      return new ComfyTimeoutError(`${what}: no answer within ${req.timeoutMs ?? this.#timeoutMs} ms`, ctx);
    }
    if (req.signal?.aborted) {
      const reason = req.signal.reason;
      if (reason instanceof ComfyError) return reason;
      return new ComfyAbortError(`${what}: aborted`, ctx);
    }
    const code = errorCode(err);
    if (code !== undefined && NOT_SENT_CODES.has(code)) {
      return new ComfyConnectionError(`${what}: cannot connect to ${this.origin} (${code})`, {
        ...ctx,
        notSent: true,
      });
    }
    if (code !== undefined && BROKEN_CODES.has(code)) {
      return new ComfyConnectionError(`${what}: connection to ${this.origin} broke (${code})`, ctx);
    }
    const message = err instanceof Error ? err.message : String(err);
    return new ComfyConnectionError(`${what}: ${message}`, ctx);
  }
}

/** The system/undici error code of `err`, looking inside AggregateErrors (happy eyeballs). */
export function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; errors?: unknown[]; cause?: unknown };
  if (typeof e.code === 'string') return e.code;
  if (Array.isArray(e.errors) && e.errors.length > 0) return errorCode(e.errors[0]);
  if (e.cause !== undefined && e.cause !== err) return errorCode(e.cause);
  return undefined;
}

/** Response headers as undici reads them: name, value, name, value… */
type RawHeaders = ReadonlyArray<Buffer | string>;

/**
 * One attempt of a request whose body is read whole, as an undici dispatch handler. It is its own
 * deadline and abort scope (one timer, one listener on the caller's signal) and collects the body
 * chunks itself: no AbortController, response stream or async resource per attempt, as
 * `pool.request()` would create. 2xx bodies are read whole (a leading UTF-8 BOM dropped, as
 * `body.text()` does); other bodies keep their first MAX_ERROR_BODY bytes (plus at most one chunk)
 * and the rest is drained so the connection is reused.
 *
 * It implements undici's original handler methods (onConnect/onHeaders/onData/onComplete/onError,
 * marked deprecated in undici 7's types but what its own `request()` uses): they receive the raw
 * header buffers, which are decoded only if someone reads `headers`. With the controller methods
 * (onRequestStart…) undici would parse every response's headers into an object first.
 */
class Attempt implements Dispatcher.DispatchHandler {
  /** True when the deadline (not the caller or close()) ended the attempt. */
  timedOut = false;
  readonly #signal: AbortSignal | undefined;
  readonly #body: unknown;
  readonly #inflight: Set<Attempt>;
  readonly #timeoutMs: number;
  #timer: NodeJS.Timeout | undefined;
  #resolve!: (res: HttpResponse) => void;
  #reject!: (err: unknown) => void;
  #done = false;
  /** Set when aborted before undici connected the request: it is dropped when it gets a socket. */
  #abortReason: unknown;
  #abortRequest: ((err: Error) => void) | undefined;
  #status = 0;
  #rawHeaders: RawHeaders = [];
  #chunks: Buffer[] = [];
  #size = 0;
  #limit = Number.POSITIVE_INFINITY;

  constructor(signal: AbortSignal | undefined, timeoutMs: number, body: unknown, inflight: Set<Attempt>) {
    this.#signal = signal;
    this.#body = body;
    this.#inflight = inflight;
    this.#timeoutMs = timeoutMs;
    if (!Number.isFinite(timeoutMs)) return;
    this.#timer = setTimeout(this.#onTimeout, Math.max(0, timeoutMs));
  }

  /** Dispatches the request on `pool`; settles with the read response or the failure. */
  send(pool: Pool, options: Dispatcher.DispatchOptions): Promise<HttpResponse> {
    const done = new Promise<HttpResponse>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    const signal = this.#signal;
    if (signal?.aborted) {
      this.abort(signal.reason);
      this.#destroyBody(signal.reason);
      return done;
    }
    signal?.addEventListener('abort', this.#onSignalAbort);
    this.#inflight.add(this);
    pool.dispatch(options, this);
    return done;
  }

  /** Ends the attempt with `reason`, aborting the request wherever it is (queued, sent, reading). */
  abort(reason: unknown): void {
    if (this.#done) return;
    this.#abortReason = reason ?? new Error('aborted');
    this.#abortRequest?.(this.#abortReason as Error);
    this.#fail(this.#abortReason);
  }

  onConnect(abort: (err: Error) => void): void {
    if (this.#abortReason !== undefined) {
      abort(this.#abortReason as Error);
      return;
    }
    this.#abortRequest = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    if (statusCode < 200) return true; // informational (1xx): the real answer follows
    this.#status = statusCode;
    this.#rawHeaders = rawHeaders;
    if (statusCode >= 300) this.#limit = MAX_ERROR_BODY;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.#size < this.#limit) {
      this.#chunks.push(chunk);
      this.#size += chunk.length;
    } // else drained, not kept
    return true;
  }

  onComplete(): void {
    if (this.#done) return;
    this.#finish();
    this.#resolve(new ReadResponse(this.#status, this.#rawHeaders, this.#text()));
  }

  onError(err: Error): void {
    this.#destroyBody(err);
    this.#fail(err);
  }

  readonly #onTimeout = (): void => {
    this.#timer = undefined;
    this.timedOut = true;
    this.abort(new DOMException(`deadline of ${this.#timeoutMs} ms passed`, 'TimeoutError'));
  };

  readonly #onSignalAbort = (): void => {
    this.abort(this.#signal?.reason);
  };

  /** Like pool.request(): a streamed request body is destroyed when the request fails. */
  #destroyBody(err: unknown): void {
    const body = this.#body as { destroy?: (err: unknown) => void; on?: (e: string, f: () => void) => void };
    if (typeof body?.destroy !== 'function') return;
    body.on?.('error', () => undefined);
    body.destroy(err);
  }

  #text(): string {
    const chunks = this.#chunks;
    if (chunks.length === 0) return '';
    const buf = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
    this.#chunks = [];
    const bom = this.#status < 300 && buf.length > 2 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf;
    return buf.toString('utf8', bom ? 3 : 0);
  }

  #fail(err: unknown): void {
    if (this.#done) return;
    this.#finish();
    this.#reject(err);
  }

  #finish(): void {
    this.#done = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#signal?.removeEventListener('abort', this.#onSignalAbort);
    this.#inflight.delete(this);
  }
}

/** A read response whose headers are flattened on first use: most callers only need the text. */
class ReadResponse implements HttpResponse {
  readonly status: number;
  readonly text: string;
  #raw: RawHeaders;
  #headers: Record<string, string> | undefined;

  constructor(status: number, raw: RawHeaders, text: string) {
    this.status = status;
    this.#raw = raw;
    this.text = text;
  }

  get headers(): Record<string, string> {
    if (this.#headers === undefined) {
      this.#headers = flattenHeaders(this.#raw);
      this.#raw = [];
    }
    return this.#headers;
  }
}

/** Lower-cased names; a repeated header's values joined with ", " (latin1, as undici decodes them). */
function flattenHeaders(raw: RawHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  const text = (v: Buffer | string | undefined): string =>
    v === undefined ? '' : typeof v === 'string' ? v : v.toString('latin1');
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = text(raw[i]).toLowerCase();
    const value = text(raw[i + 1]);
    out[name] = Object.hasOwn(out, name) ? `${out[name]}, ${value}` : value;
  }
  return out;
}
