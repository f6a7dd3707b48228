// The small request helpers every endpoint group of ComfyClient shares: JSON GETs (optionally
// `undefined` on 404), bodiless-answer POSTs, and the closed-client check in front of each call.
import { ComfyClosedError, ComfyServerError } from './errors.ts';
import { checkDuration } from './deadline.ts';
import { callHeaders } from './headers.ts';
import type { HttpRequest, HttpTransport } from './http.ts';
import type { CallOptions } from './types.ts';

/** Query parameters; undefined values are left out. */
export type Query = Record<string, string | number | undefined>;

/** Typed calls over one HttpTransport, refused once the owning client is closing. */
export class ApiCalls {
  readonly http: HttpTransport;
  readonly baseUrl: string;
  readonly #isClosing: () => boolean;

  constructor(http: HttpTransport, isClosing: () => boolean) {
    this.http = http;
    this.baseUrl = http.baseUrl;
    this.#isClosing = isClosing;
  }

  /** Throws ComfyClosedError when the client is closing or closed. */
  assertOpen(): void {
    if (this.#isClosing()) throw new ComfyClosedError('client closed', { baseUrl: this.baseUrl });
  }

  /** GET returning parsed JSON (retried: GETs are idempotent); `parse` replaces JSON.parse. */
  async getJson<T>(
    path: string,
    options: CallOptions,
    query?: Query,
    parse?: (text: string) => unknown,
  ): Promise<T> {
    this.assertOpen();
    return this.http.json<T>(
      {
        method: 'GET',
        path,
        idempotent: true,
        ...(query ? { query } : {}),
        ...callScope(options),
      },
      parse,
    );
  }

  /** GET returning undefined on 404 (routes that older servers or unknown ids do not have). */
  async getOptionalJson<T>(path: string, options: CallOptions, query?: Query): Promise<T | undefined> {
    try {
      return await this.getJson<T>(path, options, query);
    } catch (err) {
      if (err instanceof ComfyServerError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** POST of a JSON body whose answer carries nothing (ComfyUI's queue/history/interrupt/free). */
  async post(path: string, json: unknown, options: CallOptions): Promise<void> {
    this.assertOpen();
    await this.http.empty({
      method: 'POST',
      path,
      json,
      idempotent: true,
      ...callScope(options),
    });
  }
}

/** The parts of a request that come from the caller's CallOptions (headers and timeout validated here). */
export function callScope(options: CallOptions): Pick<HttpRequest, 'signal' | 'timeoutMs' | 'callHeaders'> {
  const out: Pick<HttpRequest, 'signal' | 'timeoutMs' | 'callHeaders'> = {};
  if (options.signal) out.signal = options.signal;
  if (options.timeoutMs !== undefined) {
    checkDuration('timeoutMs', options.timeoutMs);
    out.timeoutMs = options.timeoutMs;
  }
  if (options.headers !== undefined) out.callHeaders = callHeaders(options.headers);
  return out;
}
