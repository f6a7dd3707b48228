// One URL streamed into one `.part` file: redirects followed by hand (each hop through the URL
// guard, tokens only on their own host), SHA-256 computed over exactly the bytes on disk, a size
// cap on the header and on the stream, a free-space check, idle and header timeouts, and resume
// with `Range` after a dropped connection (or from a `.part` left by a previous process). The file
// is fsync'd before this returns; renaming it into place is the caller's step.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, open, stat, statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { type Dispatcher, request } from 'undici';
import { redactModelUrl } from './download-task.ts';
import { DownloadFailedError, ModelsError, ModelUrlForbiddenError } from './errors.ts';

/** What a transfer needs from the SSRF guard (io's SsrfGuard fits, through a small adapter). */
export interface DownloadGuard {
  /** Throws when the URL may not be fetched (scheme, credentials, refused address). */
  check(url: URL): Promise<void>;
  /** Connections through this dispatcher only reach addresses the guard allows. */
  readonly dispatcher: Dispatcher;
}

/** A header set sent only to requests whose host is one of `hosts` (and is the URL's first host). */
export interface HostToken {
  hosts: string[];
  headers: Record<string, string>;
}

/** Settings of one transfer. */
export interface TransferOptions {
  url: string;
  partPath: string;
  guard: DownloadGuard;
  tokens: readonly HostToken[];
  maxBytes: number;
  headersTimeoutMs: number;
  idleTimeoutMs: number;
  maxRedirects: number;
  /** Resumes after dropped connections before giving up. */
  maxResumes: number;
  retryDelayMs: number;
  /** Free bytes kept on the disk beyond the file itself. */
  reserveBytes: number;
  signal: AbortSignal;
  /** Called as bytes land on disk (`bytes` counts the whole file, resumed parts included). */
  onProgress: (bytes: number, total: number | null) => void;
  /** Called once per resume. */
  onResume?: (offset: number) => void;
  /** Free bytes of the file system holding `dir` (injectable for tests). */
  freeBytes?: (dir: string) => Promise<number>;
}

/** What a finished transfer measured. */
export interface TransferResult {
  bytes: number;
  total: number | null;
  sha256: string;
  resumes: number;
}

/** Writes chunks to a file handle in order and hashes each one after it is written. */
class HashingFileSink extends Writable {
  readonly #fh: FileHandle;
  readonly #hash: Hash;
  readonly #onBytes: (n: number) => void;

  constructor(fh: FileHandle, hash: Hash, onBytes: (n: number) => void) {
    super({ highWaterMark: 1024 * 1024 });
    this.#fh = fh;
    this.#hash = hash;
    this.#onBytes = onBytes;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#writeAll(chunk).then(() => callback(), callback);
  }

  override _writev(
    chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>,
    callback: (error?: Error | null) => void,
  ): void {
    this.#writeAll(Buffer.concat(chunks.map((c) => c.chunk))).then(() => callback(), callback);
  }

  async #writeAll(chunk: Buffer): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      const { bytesWritten } = await this.#fh.write(chunk, offset, chunk.length - offset);
      offset += bytesWritten;
    }
    // Hashed after the write: the hash always covers exactly the bytes in the file.
    this.#hash.update(chunk);
    this.#onBytes(chunk.length);
  }
}

const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

function errorCode(err: unknown): string | undefined {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  if (typeof e?.code === 'string') return e.code;
  if (typeof e?.cause?.code === 'string') return e.cause.code;
  return undefined;
}

/** Turns any failure into a DownloadFailedError (or keeps a ModelsError). */
function classify(err: unknown, url: string): ModelsError {
  if (err instanceof ModelsError) return err;
  const code = errorCode(err);
  const where = redactModelUrl(url);
  if (code === 'UND_ERR_BODY_TIMEOUT')
    return new DownloadFailedError('timeout', `${where}: no data for too long`, {
      cause: err,
      retryable: true,
    });
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT')
    return new DownloadFailedError('timeout', `${where}: the server did not answer in time`, {
      cause: err,
      retryable: true,
    });
  if (code === 'input_url_forbidden' || (err as { name?: string })?.name === 'UrlForbiddenError')
    return new ModelUrlForbiddenError((err as Error).message, err);
  if (code === 'ENOSPC')
    return new DownloadFailedError('insufficient_storage', 'The models disk is full.', { cause: err });
  const message = (err as Error)?.message ?? String(err);
  return new DownloadFailedError('network_error', `${where}: ${message}`, {
    cause: err,
    retryable: code === undefined || RETRYABLE_CODES.has(code) || message === 'terminated',
  });
}

async function defaultFreeBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

/** Hashes what a previous run left in the part file; returns its size (0 when there is none). */
async function hashExisting(path: string, hash: Hash, signal: AbortSignal): Promise<number> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    return 0;
  }
  if (size === 0) return 0;
  await pipeline(
    createReadStream(path, { highWaterMark: 1024 * 1024 }),
    new Writable({
      write(chunk: Buffer, _e, cb) {
        hash.update(chunk);
        cb();
      },
    }),
    { signal },
  );
  return size;
}

/** The response of the last redirect hop, with the headers that matter for resuming. */
interface Opened {
  status: number;
  body: Dispatcher.ResponseData['body'];
  length: number | null;
  /** Start and total of a 206's Content-Range. */
  range: { start: number; total: number | null } | null;
  validator: string | undefined;
}

async function openUrl(
  url: string,
  options: TransferOptions,
  extra: Record<string, string>,
): Promise<Opened> {
  const first = new URL(url);
  let current = first;
  for (let hop = 0; ; hop++) {
    try {
      await options.guard.check(current);
    } catch (err) {
      throw err instanceof ModelsError ? err : new ModelUrlForbiddenError((err as Error).message, err);
    }
    const headers: Record<string, string> = {
      'user-agent': 'comfy-gateway',
      accept: '*/*',
      'accept-encoding': 'identity',
      ...extra,
      ...tokenHeaders(current, first, options.tokens),
    };
    const res = await request(current, {
      method: 'GET',
      headers,
      dispatcher: options.guard.dispatcher,
      signal: options.signal,
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: options.idleTimeoutMs,
    });
    const location = res.headers.location;
    if (res.statusCode >= 300 && res.statusCode < 400 && location !== undefined) {
      res.body.on('error', () => {});
      res.body.destroy();
      if (hop >= options.maxRedirects)
        throw new DownloadFailedError(
          'too_many_redirects',
          `${redactModelUrl(url)}: more than ${options.maxRedirects} redirects`,
        );
      current = new URL(Array.isArray(location) ? (location[0] ?? '') : location, current);
      continue;
    }
    if (res.statusCode !== 200 && res.statusCode !== 206) {
      res.body.on('error', () => {});
      res.body.destroy();
      const retryable = res.statusCode >= 500 || res.statusCode === 429;
      throw new DownloadFailedError('http_error', `${redactModelUrl(current.href)}: HTTP ${res.statusCode}`, {
        retryable,
      });
    }
    const header = (name: string): string | undefined => {
      const v = res.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const lengthText = header('content-length');
    const length = lengthText !== undefined && /^\d+$/.test(lengthText) ? Number(lengthText) : null;
    const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header('content-range') ?? '');
    return {
      status: res.statusCode,
      body: res.body,
      length,
      range: match ? { start: Number(match[1]), total: match[3] === '*' ? null : Number(match[3]) } : null,
      validator: header('etag') ?? header('last-modified'),
    };
  }
}

/**
 * Token headers for one hop: only when the hop's host is one the token belongs to AND it is the
 * host the caller named (a redirect to another host never carries a token, even to another token host).
 */
export function tokenHeaders(hop: URL, first: URL, tokens: readonly HostToken[]): Record<string, string> {
  const host = hop.hostname.toLowerCase();
  if (host !== first.hostname.toLowerCase() || hop.protocol !== first.protocol) return {};
  for (const token of tokens) if (token.hosts.includes(host)) return token.headers;
  return {};
}

/** Streams `options.url` into `options.partPath` (appending to what is there), resuming on drops. */
export async function transferFile(options: TransferOptions): Promise<TransferResult> {
  const { url, partPath, signal } = options;
  let hash = createHash('sha256');
  let bytes = await hashExisting(partPath, hash, signal);
  let total: number | null = null;
  let validator: string | undefined;
  let resumes = 0;
  const freeBytes = options.freeBytes ?? defaultFreeBytes;
  for (;;) {
    const fh = await open(partPath, 'a');
    let closed = false;
    const closeFile = async () => {
      if (closed) return;
      closed = true;
      await fh.close();
    };
    try {
      const extra: Record<string, string> = {};
      if (bytes > 0) {
        extra.range = `bytes=${bytes}-`;
        if (validator) extra['if-range'] = validator;
      }
      const opened = await openUrl(url, options, extra);
      if (bytes > 0 && !(opened.status === 206 && opened.range?.start === bytes)) {
        if (opened.status === 206) {
          opened.body.destroy();
          throw new DownloadFailedError(
            'bad_range',
            `${redactModelUrl(url)}: the server resumed at the wrong offset`,
          );
        }
        // The server sent the whole file (no Range support, or the file changed): start over.
        await fh.truncate(0);
        hash = createHash('sha256');
        bytes = 0;
      }
      validator ??= opened.validator;
      total = opened.range ? (opened.range.total ?? total) : opened.length;
      if (total !== null && total > options.maxBytes) {
        opened.body.destroy();
        throw new DownloadFailedError(
          'too_large',
          `${redactModelUrl(url)} is ${total} bytes, over the limit of ${options.maxBytes}`,
        );
      }
      if (total !== null) {
        const needed = total - bytes + options.reserveBytes;
        const free = await freeBytes(dirname(partPath));
        if (free < needed) {
          opened.body.destroy();
          throw new DownloadFailedError(
            'insufficient_storage',
            `Not enough free disk space: ${total - bytes} bytes needed, ${free} free (reserve ${options.reserveBytes}).`,
          );
        }
      }
      const sink = new HashingFileSink(fh, hash, (n) => {
        bytes += n;
        if (bytes > options.maxBytes) {
          sink.destroy(
            new DownloadFailedError(
              'too_large',
              `${redactModelUrl(url)} exceeds the limit of ${options.maxBytes} bytes`,
            ),
          );
          return;
        }
        options.onProgress(bytes, total);
      });
      await pipeline(opened.body, sink, { signal });
      if (total !== null && bytes < total) {
        throw new DownloadFailedError(
          'network_error',
          `${redactModelUrl(url)}: the connection ended at ${bytes} of ${total} bytes`,
          {
            retryable: true,
          },
        );
      }
      await fh.sync();
      await closeFile();
      return { bytes, total, sha256: hash.digest('hex'), resumes };
    } catch (err) {
      await closeFile().catch(() => {});
      if (signal.aborted) throw signal.reason ?? err;
      const failure = classify(err, url);
      const retryable = failure instanceof DownloadFailedError && failure.retryable;
      if (!retryable || resumes >= options.maxResumes) throw failure;
      resumes++;
      options.onResume?.(bytes);
      await delay(Math.min(10_000, options.retryDelayMs * 2 ** (resumes - 1)), undefined, { signal });
    }
  }
}
