// HTTP transport to one ComfyUI server: a keep-alive undici Pool, per-call deadlines, mapping of
// transport failures and statuses onto the error hierarchy, and bounded retries (with jitter) of
// calls that are safe to repeat.
import { ExponentialBackoff, handleWhen, type RetryPolicy, retry } from 'cockatiel';
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import { type ScopedSignal, scopedSignal } from './deadline.ts';
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
  /**
   * Scopes of the attempts in flight (bounded by the pool's concurrency plus its queue): close()
   * aborts them, which is cheaper than every attempt listening on the closing signal.
   */
  readonly #inflight = new Set<ScopedSignal>();

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

  /** Sends a request and parses a JSON answer (2xx), mapping other statuses to ComfyServerError. */
  async json<T>(req: HttpRequest): Promise<T> {
    const res = await this.send(req);
    this.#expectOk(req, res);
    try {
      return JSON.parse(res.text) as T;
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

  /** Cancels in-flight calls and closes the connections. Idempotent. */
  async close(): Promise<void> {
    if (this.#closing.signal.aborted) return;
    const reason = new ComfyClosedError('client closed', { baseUrl: this.baseUrl });
    this.#closing.abort(reason);
    for (const scope of this.#inflight) scope.abort(reason);
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
    // Created last: nothing between here and the try below can throw and leak its timer.
    const scope = scopedSignal([req.signal], req.timeoutMs ?? this.#timeoutMs);
    this.#inflight.add(scope);
    try {
      const res = await this.#pool.request({
        method: req.method,
        path: this.url(req.path, req.query),
        headers,
        body: body ?? null,
        signal: scope.signal,
      });
      const text = res.statusCode >= 300 ? await readCapped(res.body, MAX_ERROR_BODY) : await res.body.text();
      const out: HttpResponse = new ReadResponse(res.statusCode, res.headers, text);
      if (res.statusCode >= 500 && req.idempotent) {
        // Surface retryable 5xx as errors so the retry policy sees them.
        throw new ComfyServerError(
          `${req.method} ${req.path} answered ${res.statusCode}`,
          res.statusCode,
          text,
          this.#context(req),
        );
      }
      return out;
    } catch (err) {
      throw this.#mapError(err, req, scope);
    } finally {
      scope.dispose();
      this.#inflight.delete(scope);
    }
  }

  #requestHeaders(req: HttpRequest): Record<string, string> {
    return { ...this.#headers, ...req.callHeaders, ...req.headers };
  }

  #context(req: HttpRequest): { baseUrl: string; promptId?: string } {
    return req.promptId === undefined
      ? { baseUrl: this.baseUrl }
      : { baseUrl: this.baseUrl, promptId: req.promptId };
  }

  #mapError(
    err: unknown,
    req: HttpRequest,
    scope: { timedOut: boolean; signal: AbortSignal } | undefined,
  ): ComfyError {
    if (err instanceof ComfyError) return err;
    const ctx = { ...this.#context(req), cause: err };
    const what = `${req.method} ${req.path}`;
    if (this.#closing.signal.aborted) return new ComfyClosedError(`${what}: client closed`, ctx);
    if (scope?.timedOut) {
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

type RawHeaders = Record<string, string | string[] | undefined>;

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
      this.#raw = {};
    }
    return this.#headers;
  }
}

function flattenHeaders(headers: RawHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers))
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/** Keeps the first `limit` bytes (plus at most one chunk) and drains the rest so the connection is reused. */
async function readCapped(body: AsyncIterable<Buffer | Uint8Array>, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    if (size >= limit) continue; // drain the rest so the connection can be reused
    const buf = Buffer.from(chunk);
    chunks.push(buf);
    size += buf.length;
  }
  return Buffer.concat(chunks).toString('utf8');
}
