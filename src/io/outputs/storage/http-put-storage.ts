// An HTTP(S) URL prefix as an output destination: each file is PUT (streamed, chunked) under the
// prefix, then checked with a HEAD whose Content-Length must match.
import type { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { OutputStorageError } from '../../errors.ts';
import { redactUrl } from '../../ssrf-guard.ts';
import { safeKey, type StorageBackend, type StoredLocation } from './storage-backend.ts';

/** PUTs outputs under a URL prefix. */
export class HttpPutStorage implements StorageBackend {
  readonly #prefix: URL;
  readonly #headers: Record<string, string>;
  readonly #agent = new Agent({ connections: 16, keepAliveTimeout: 4_000 });
  readonly #timeoutMs: number;

  constructor(options: { prefix: string; headers?: Record<string, string>; timeoutMs?: number }) {
    this.#prefix = new URL(options.prefix.endsWith('/') ? options.prefix : `${options.prefix}/`);
    this.#headers = options.headers ?? {};
    this.#timeoutMs = options.timeoutMs ?? 300_000;
  }

  async put(
    key: string,
    body: Readable,
    options: { contentType: string; signal: AbortSignal },
  ): Promise<void> {
    const url = this.#url(key);
    let status: number;
    try {
      const res = await request(url, {
        method: 'PUT',
        body,
        headers: { ...this.#headers, 'content-type': options.contentType },
        dispatcher: this.#agent,
        signal: options.signal,
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
      });
      status = res.statusCode;
      await res.body.dump();
    } catch (err) {
      throw new OutputStorageError(`PUT ${redactUrl(url.href)} failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (status < 200 || status >= 300)
      throw new OutputStorageError(`PUT ${redactUrl(url.href)} answered HTTP ${status}`);
  }

  async verify(key: string, bytes: number, signal: AbortSignal): Promise<void> {
    const url = this.#url(key);
    let status: number;
    let length: string | string[] | undefined;
    try {
      const res = await request(url, {
        method: 'HEAD',
        headers: this.#headers,
        dispatcher: this.#agent,
        signal,
      });
      status = res.statusCode;
      length = res.headers['content-length'];
      await res.body.dump();
    } catch (err) {
      throw new OutputStorageError(`HEAD ${redactUrl(url.href)} failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (status < 200 || status >= 300)
      throw new OutputStorageError(`stored object ${redactUrl(url.href)} answered HEAD with HTTP ${status}`);
    if (length !== undefined && Number(length) !== bytes)
      throw new OutputStorageError(
        `stored object ${redactUrl(url.href)} has ${length} bytes, expected ${bytes}`,
      );
  }

  async locate(key: string): Promise<StoredLocation> {
    const url = this.#url(key).href;
    return { url, expiresAt: null, storageUrl: url };
  }

  async close(): Promise<void> {
    await this.#agent.close().catch(() => {});
  }

  #url(key: string): URL {
    const url = new URL(safeKey(key).split('/').map(encodeURIComponent).join('/'), this.#prefix);
    url.search = this.#prefix.search;
    return url;
  }
}
