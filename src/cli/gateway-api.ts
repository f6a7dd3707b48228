// The gateway's HTTP API as the `run` command calls it, for jobs and pipeline runs alike: JSON calls
// with the API key, failures as GatewayApiError read from the v2 error envelope, local files
// streamed to the asset store, and output files streamed to disk.
import { createWriteStream, openAsBlob } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** The gateway answered an API call with an error envelope (or no JSON at all). */
export class GatewayApiError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: unknown;
  override readonly name = 'GatewayApiError';

  constructor(what: string, status: number, body: string) {
    let code = `http_${status}`;
    let message = body.slice(0, 300) || `HTTP ${status}`;
    let details: unknown = null;
    try {
      const parsed = JSON.parse(body) as { error?: { code?: unknown; message?: unknown; details?: unknown } };
      if (typeof parsed.error?.code === 'string') code = parsed.error.code;
      if (typeof parsed.error?.message === 'string') message = parsed.error.message;
      details = parsed.error?.details ?? null;
    } catch {}
    super(`${what} answered ${status}: ${message}`);
    this.code = code;
    this.status = status;
    this.details = details;
  }
}

/** One gateway, reached with an optional API key. */
export class GatewayApi {
  /** The gateway's URL without a trailing slash. */
  readonly base: string;
  /** Headers of every call (the API key). */
  readonly headers: Record<string, string>;

  constructor(gateway: string, apiKey: string | undefined) {
    this.base = gateway.replace(/\/+$/, '');
    this.headers = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
  }

  /** A JSON call; `what` names it in errors. Throws GatewayApiError for a non-2xx or non-JSON answer. */
  async json<T>(what: string, url: string, init: RequestInit): Promise<T> {
    let res: Response;
    try {
      res = await fetch(url, { ...init, headers: { ...this.headers, ...(init.headers as object) } });
    } catch (err) {
      if (init.signal?.aborted) throw init.signal.reason;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new Error(`${what} ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
    const text = await res.text();
    if (res.status < 200 || res.status > 299) throw new GatewayApiError(what, res.status, text);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new GatewayApiError(what, res.status, text);
    }
  }

  /** Streams a local file to the asset store (never whole in memory); returns the asset id. */
  async uploadAsset(path: string, type: string, signal: AbortSignal): Promise<string> {
    const form = new FormData();
    form.append('file_path', basename(path));
    form.append('content_type', type);
    // A file-backed Blob: fetch streams it from disk.
    form.append('file', await openAsBlob(path, { type }), basename(path));
    const asset = await this.json<{ id?: unknown }>('POST /api/v2/assets', `${this.base}/api/v2/assets`, {
      method: 'POST',
      body: form,
      signal,
    });
    if (typeof asset.id !== 'string') throw new Error('POST /api/v2/assets answered without an asset id');
    return asset.id;
  }

  /** Streams the file at `url` into `path`, creating its folder; `what` names it in errors. */
  async download(what: string, url: string, path: string, signal: AbortSignal): Promise<void> {
    const res = await fetch(url, { headers: this.headers, signal });
    if (res.status !== 200 || !res.body)
      throw new GatewayApiError(`GET ${what}`, res.status, await res.text().catch(() => ''));
    await mkdir(dirname(path), { recursive: true });
    await pipeline(Readable.fromWeb(res.body as never), createWriteStream(path), { signal });
  }
}
