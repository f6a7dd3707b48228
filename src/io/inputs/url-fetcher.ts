// Fetches one input URL into a temp file: SSRF-guarded connections, redirects followed by hand (each hop
// checked again, credentials re-matched per hop), a size cap enforced on the header and on the stream,
// and one streamed pass that hashes and sniffs. s3:// URLs go through an S3 client. Every fetch has a
// total deadline and a minimum transfer rate (checked per window, headers included), so a source
// trickling a byte a second is cut instead of holding its job for the whole deadline.
import { createWriteStream } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { type Dispatcher, errors as undiciErrors, request } from 'undici';
import { type ContentMeasure, ContentMeter } from '../content-meter.ts';
import {
  InputFetchError,
  InputInvalidError,
  InputTooLargeError,
  InputTooSlowError,
  IoAbortError,
  IoError,
  StorageFullError,
} from '../errors.ts';
import { loadS3Client } from '../lazy-modules.ts';
import { redactUrl, type SsrfGuard } from '../ssrf-guard.ts';
import { credentialsFor, type UrlCredential } from './credentials.ts';

/** S3 access for s3:// input URLs. */
export interface S3InputOptions {
  endpoint?: string;
  region?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/** One fetch's options. */
export interface FetchOptions {
  maxBytes: number;
  timeoutMs: number;
  maxRedirects: number;
  credentials?: UrlCredential[];
  signal?: AbortSignal;
  /** Minimum average rate over each window (0 = none). */
  minBytesPerSecond?: number;
  /** Length of a rate window (default 10 s). */
  rateWindowMs?: number;
}

/** Streams remote inputs into local files. */
export class UrlFetcher {
  readonly #guard: SsrfGuard;
  readonly #agent: Dispatcher;
  readonly #s3Options: S3InputOptions | undefined;
  #s3: S3Client | undefined;

  constructor(options: { guard: SsrfGuard; s3?: S3InputOptions; connectTimeoutMs?: number }) {
    this.#guard = options.guard;
    this.#agent = options.guard.createAgent({ connectTimeoutMs: options.connectTimeoutMs });
    this.#s3Options = options.s3;
  }

  /** Downloads `url` into `dest`; returns what was measured. Throws IoError subclasses only. */
  async fetchTo(url: string, dest: string, options: FetchOptions): Promise<ContentMeasure> {
    const deadline = AbortSignal.timeout(options.timeoutMs);
    const slow = new AbortController();
    const signal = AbortSignal.any([...(options.signal ? [options.signal] : []), deadline, slow.signal]);
    let received = 0;
    let watchdog: NodeJS.Timeout | undefined;
    const minRate = options.minBytesPerSecond ?? 0;
    if (minRate > 0) {
      const windowMs = options.rateWindowMs ?? 10_000;
      let atWindowStart = 0;
      watchdog = setInterval(() => {
        if (received - atWindowStart < (minRate * windowMs) / 1000) {
          slow.abort(
            new InputTooSlowError(
              `input ${redactUrl(url)} arrived slower than ${minRate} bytes/s (${received - atWindowStart} bytes in ${windowMs} ms)`,
              { url: redactUrl(url), min_bytes_per_second: minRate },
            ),
          );
        }
        atWindowStart = received;
      }, windowMs);
      watchdog.unref();
    }
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        received += chunk.length;
        callback(null, chunk);
      },
    });
    try {
      const body = url.startsWith('s3://')
        ? await this.#openS3(url, options, signal)
        : await this.#openHttp(url, options, signal);
      const meter = await ContentMeter.create({
        maxBytes: options.maxBytes,
        onTooLarge: (n) =>
          new InputTooLargeError(`input ${redactUrl(url)} exceeds ${options.maxBytes} bytes`, {
            url: redactUrl(url),
            bytes_seen: n,
          }),
      });
      await pipeline(body, counter, meter, createWriteStream(dest), { signal });
      return meter.measure;
    } catch (err) {
      if (slow.signal.aborted) throw slow.signal.reason;
      throw this.#wrap(err, url, signal, deadline, options.timeoutMs);
    } finally {
      clearInterval(watchdog);
    }
  }

  /** Releases connections. Idempotent. */
  async close(): Promise<void> {
    this.#s3?.destroy();
    this.#s3 = undefined;
    await this.#agent.close().catch(() => {});
  }

  async #openHttp(url: string, options: FetchOptions, signal: AbortSignal): Promise<Readable> {
    let current = this.#guard.checkUrlShape(url);
    for (let hop = 0; ; hop++) {
      const headers = {
        'user-agent': 'comfy-gateway',
        accept: '*/*',
        ...credentialsFor(current, options.credentials),
      };
      const res = await request(current, {
        method: 'GET',
        headers,
        dispatcher: this.#agent,
        signal,
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
      });
      if (res.statusCode >= 300 && res.statusCode < 400 && res.headers.location !== undefined) {
        res.body.resume();
        res.body.on('error', () => {});
        if (hop >= options.maxRedirects)
          throw new InputFetchError(`input ${redactUrl(url)}: more than ${options.maxRedirects} redirects`, {
            details: { url: redactUrl(url) },
          });
        const location = Array.isArray(res.headers.location) ? res.headers.location[0] : res.headers.location;
        current = this.#guard.checkUrlShape(new URL(location ?? '', current));
        continue;
      }
      if (res.statusCode < 200 || res.statusCode >= 300) {
        res.body.resume();
        res.body.on('error', () => {});
        throw new InputFetchError(`input ${redactUrl(url)}: HTTP ${res.statusCode}`, {
          details: { url: redactUrl(url), status: res.statusCode },
        });
      }
      const length = Number(res.headers['content-length']);
      if (Number.isFinite(length) && length > options.maxBytes) {
        res.body.destroy();
        throw new InputTooLargeError(
          `input ${redactUrl(url)} is ${length} bytes, over the limit of ${options.maxBytes}`,
          {
            url: redactUrl(url),
            bytes: length,
            max_bytes: options.maxBytes,
          },
        );
      }
      return res.body;
    }
  }

  async #openS3(url: string, options: FetchOptions, signal: AbortSignal): Promise<Readable> {
    const parsed = new URL(url);
    const bucket = parsed.hostname;
    const key = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
    if (bucket === '' || key === '')
      throw new InputInvalidError(`s3 URL needs a bucket and a key: ${redactUrl(url)}`);
    const { GetObjectCommand, S3Client } = loadS3Client();
    this.#s3 ??= new S3Client({
      endpoint: this.#s3Options?.endpoint,
      region: this.#s3Options?.region ?? 'us-east-1',
      forcePathStyle: this.#s3Options?.endpoint !== undefined,
      credentials: this.#s3Options?.credentials,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    const out = await this.#s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), {
      abortSignal: signal,
    });
    if (out.ContentLength !== undefined && out.ContentLength > options.maxBytes)
      throw new InputTooLargeError(
        `input ${redactUrl(url)} is ${out.ContentLength} bytes, over the limit of ${options.maxBytes}`,
        {
          url: redactUrl(url),
          bytes: out.ContentLength,
          max_bytes: options.maxBytes,
        },
      );
    const body = out.Body;
    if (body === undefined) throw new InputFetchError(`input ${redactUrl(url)}: empty S3 response`);
    return body instanceof Readable ? body : Readable.fromWeb(body as never);
  }

  #wrap(err: unknown, url: string, signal: AbortSignal, deadline: AbortSignal, timeoutMs: number): IoError {
    if (err instanceof IoError) return err;
    const cause = (err as { cause?: unknown }).cause;
    if (cause instanceof IoError) return cause;
    if (deadline.aborted)
      return new InputFetchError(`input ${redactUrl(url)}: timed out after ${timeoutMs} ms`, {
        details: { url: redactUrl(url) },
      });
    if (signal.aborted) return new IoAbortError(`fetching ${redactUrl(url)} was aborted`);
    const code = (err as { code?: unknown }).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return new StorageFullError(`input ${redactUrl(url)}`, err);
    const name = (err as { name?: string }).name;
    const message =
      err instanceof undiciErrors.UndiciError || err instanceof Error ? (err as Error).message : String(err);
    return new InputFetchError(
      `input ${redactUrl(url)}: ${name === 'NoSuchKey' ? 'no such S3 object' : message}`,
      {
        details: { url: redactUrl(url) },
      },
    );
  }
}
