// Delivers a finished run's outputs: each file is streamed once from the instance through a meter
// (size, sha256, media type), an optional image conversion, and into the chosen sink — discarded for
// "link" (metadata only), collected for "inline" (bounded), or uploaded and verified for "storage".
// A bounded number of files are in flight at a time; the first failure aborts the rest and fails the job.
import { createHash } from 'node:crypto';
import { PassThrough, Readable, type Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pLimit from 'p-limit';
import type { IoComfyClient, RunResult } from '../comfy-types.ts';
import { ContentMeter } from '../content-meter.ts';
import {
  InlineTooLargeError,
  IoAbortError,
  IoError,
  OutputConfigError,
  OutputFetchError,
} from '../errors.ts';
import { mimeFromName, sniffMediaType } from '../media-type.ts';
import {
  createImageConverter,
  formatMime,
  type ImageFormat,
  isConvertible,
  renameForFormat,
} from './convert.ts';
import type { DeliveredOutput, OutputStore } from './job-output.ts';
import { outputLink } from './output-link.ts';
import { type PlannedOutput, planOutputs } from './output-plan.ts';
import { createStorage, type StorageOptions } from './storage/create-storage.ts';
import { safeKey, type StorageBackend } from './storage/storage-backend.ts';
import type { Logger } from '../../logger.ts';

/** How long content links are announced to work when the caller does not say (24 h). */
const DEFAULT_LINK_TTL_MS = 86_400_000;

/** What output delivery logs with. */
type DeliveryLogger = Pick<Logger, 'debug' | 'warn'>;

/** Options of an OutputDelivery. */
export interface OutputDeliveryOptions {
  /** `s3://bucket/prefix`, `file:///dir` or an `http(s)://` prefix; needed for store "storage". */
  storageUrl?: string;
  s3Endpoint?: string;
  s3Region?: string;
  s3Credentials?: StorageOptions['s3Credentials'];
  /** Headers for HTTP PUT storage. */
  storageHeaders?: Record<string, string>;
  /** Total bytes of inline (base64) outputs one job may return. */
  maxInlineBytes: number;
  /** Files in flight at a time per job (default 8). */
  concurrency?: number;
  /** Lifetime of presigned S3 URLs (default 3600 s). */
  presignExpirySeconds?: number;
  /** Per-file timeout for reading from the instance and writing to storage (default 10 min). */
  fileTimeoutMs?: number;
  logger?: DeliveryLogger;
}

/** Options of one deliver() call. */
export interface DeliverOptions {
  store: OutputStore;
  format?: ImageFormat;
  quality?: number;
  includePreviews?: boolean;
  /** Origin (and mount prefix) of the gateway, e.g. `https://gw.example.com`. */
  linkBaseUrl: string;
  /** How long the job, and so its content links, is kept (default 24 h). */
  linkTtlMs?: number;
  signal?: AbortSignal;
}

/** Collects a run's files into the chosen delivery, streamed and bounded. */
export class OutputDelivery {
  readonly #o: OutputDeliveryOptions;
  readonly #storage: StorageBackend | undefined;
  #closed = false;

  constructor(options: OutputDeliveryOptions) {
    this.#o = options;
    this.#storage =
      options.storageUrl === undefined || options.storageUrl === ''
        ? undefined
        : createStorage(options.storageUrl, {
            s3Endpoint: options.s3Endpoint,
            s3Region: options.s3Region,
            s3Credentials: options.s3Credentials,
            presignExpirySeconds: options.presignExpirySeconds ?? 3600,
            httpHeaders: options.storageHeaders,
          });
  }

  /** True when store "storage" can be used. */
  get hasStorage(): boolean {
    return this.#storage !== undefined;
  }

  /** Delivers every output of `result`; rejects (IoError) if any output cannot be delivered. */
  async deliver(
    job: { id: string },
    result: RunResult,
    client: IoComfyClient,
    options: DeliverOptions,
  ): Promise<DeliveredOutput[]> {
    if (this.#closed) throw new IoAbortError('OutputDelivery is closed');
    if (options.store === 'storage' && this.#storage === undefined)
      throw new OutputConfigError('output store "storage" needs STORAGE_URL to be configured');
    if (options.format !== undefined && !['png', 'jpeg', 'webp'].includes(options.format))
      throw new OutputConfigError(
        `output format must be png, jpeg or webp, not ${JSON.stringify(options.format)}`,
      );
    const plan = planOutputs(result, { includePreviews: options.includePreviews });
    const failure = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, failure.signal]) : failure.signal;
    const limit = pLimit(this.#o.concurrency ?? 8);
    const inline = { used: 0 };
    const delivered: DeliveredOutput[] = new Array(plan.length);
    let firstError: unknown;
    await Promise.all(
      plan.map((item) =>
        limit(async () => {
          if (signal.aborted) return;
          try {
            delivered[item.index] = await this.#deliverOne(job.id, item, client, options, signal, inline);
          } catch (err) {
            if (firstError === undefined) firstError = err;
            failure.abort(err);
          }
        }),
      ),
    );
    if (firstError !== undefined) throw toIoError(firstError, options.signal);
    if (options.signal?.aborted) throw new IoAbortError('output delivery was aborted');
    return delivered;
  }

  /** Releases the storage client. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#storage?.close();
  }

  async #deliverOne(
    jobId: string,
    item: PlannedOutput,
    client: IoComfyClient,
    options: DeliverOptions,
    outer: AbortSignal,
    inline: { used: number },
  ): Promise<DeliveredOutput> {
    const signal = AbortSignal.any([outer, AbortSignal.timeout(this.#o.fileTimeoutMs ?? 600_000)]);
    const link = outputLink(jobId, item.index, {
      baseUrl: options.linkBaseUrl,
      ttlMs: options.linkTtlMs ?? DEFAULT_LINK_TTL_MS,
    });
    const base = {
      node_id: item.nodeId,
      type: item.type,
      id: `${jobId}.${item.index}`,
      hash: null,
      job_id: jobId,
      index: item.index,
      store: options.store,
      ...(item.preview ? { preview: true } : {}),
    };

    if (item.text !== undefined) return this.#deliverText(jobId, item, options, signal, inline, base);
    const file = item.file;
    if (file === undefined) throw new OutputFetchError(`output ${item.index} has neither file nor text`);

    let view: Awaited<ReturnType<IoComfyClient['view']>>;
    try {
      view = await client.view(file, { signal });
    } catch (err) {
      throw new OutputFetchError(
        `reading output ${file.filename} (node ${item.nodeId}) from ${client.baseUrl} failed: ${(err as Error).message}`,
        {
          cause: err,
          details: { node_id: item.nodeId, filename: file.filename },
        },
      );
    }
    const source = toReadable(view.body);
    const originalType = normalizeType(view.contentType, file.filename);
    const convert = options.format !== undefined && item.type === 'image' && isConvertible(originalType);
    const name = convert && options.format ? renameForFormat(file.filename, options.format) : file.filename;
    const declaredType = convert && options.format ? formatMime(options.format) : originalType;
    const meter = await ContentMeter.create();
    const stages: Transform[] = [];
    if (convert && options.format)
      stages.push(createImageConverter(options.format, options.quality) as Transform);

    let extra: Partial<DeliveredOutput> = {};
    let url = link.url;
    let urlExpiresAt = link.url_expires_at;
    try {
      if (options.store === 'link') {
        await pipeline([source, ...stages, meter, discard()], { signal });
      } else if (options.store === 'inline') {
        if (
          view.contentLength !== undefined &&
          !convert &&
          inline.used + view.contentLength > this.#o.maxInlineBytes
        )
          throw new InlineTooLargeError(this.#o.maxInlineBytes);
        const chunks: Buffer[] = [];
        await pipeline([source, ...stages, meter, collect(chunks, inline, this.#o.maxInlineBytes)], {
          signal,
        });
        extra = { data_base64: Buffer.concat(chunks).toString('base64') };
      } else {
        const storage = this.#storage!;
        const key = outputKey(jobId, item, name);
        const pass = new PassThrough();
        const local = new AbortController();
        const both = AbortSignal.any([signal, local.signal]);
        const feeding = pipeline([source, ...stages, meter, pass], { signal: both });
        const storing = storage.put(key, pass, { contentType: declaredType, signal: both });
        try {
          await Promise.all([feeding, storing]);
        } catch (err) {
          local.abort(err);
          pass.destroy();
          await Promise.allSettled([feeding, storing]);
          throw err;
        }
        await storage.verify(key, meter.measure.bytes, signal);
        const where = await storage.locate(key);
        url = where.url;
        urlExpiresAt = where.expiresAt ?? link.url_expires_at;
        extra = { storage_url: where.storageUrl };
      }
    } catch (err) {
      if (!source.destroyed) source.destroy();
      throw err instanceof IoError
        ? err
        : new OutputFetchError(
            `delivering output ${file.filename} (node ${item.nodeId}) failed: ${(err as Error).message}`,
            {
              cause: err,
              details: { node_id: item.nodeId, filename: file.filename },
            },
          );
    }
    const m = meter.measure;
    const sniffed = sniffMediaType(m.head);
    return {
      ...base,
      name,
      content_type: sniffed?.mime ?? declaredType,
      size_bytes: m.bytes,
      url,
      url_expires_at: urlExpiresAt,
      sha256: m.sha256,
      source: { filename: file.filename, subfolder: file.subfolder, type: file.type },
      ...(convert && options.format
        ? { format: options.format, ...(options.quality !== undefined ? { quality: options.quality } : {}) }
        : {}),
      ...extra,
    };
  }

  async #deliverText(
    jobId: string,
    item: PlannedOutput,
    options: DeliverOptions,
    signal: AbortSignal,
    inline: { used: number },
    base: Omit<
      DeliveredOutput,
      'name' | 'content_type' | 'size_bytes' | 'url' | 'url_expires_at' | 'sha256' | 'source'
    >,
  ): Promise<DeliveredOutput> {
    const bytes = Buffer.from(item.text ?? '', 'utf8');
    const name = `text_${item.index}.txt`;
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const common = {
      ...base,
      name,
      content_type: 'text/plain; charset=utf-8',
      size_bytes: bytes.length,
      sha256,
      text: item.text ?? '',
      source: { filename: '', subfolder: '', type: 'text' },
    };
    const dataUrl = `data:text/plain;charset=utf-8;base64,${bytes.toString('base64')}`;
    // A data: URL does not expire; announced as lasting as long as the job.
    const farFuture = new Date(Date.now() + (options.linkTtlMs ?? DEFAULT_LINK_TTL_MS)).toISOString();
    if (options.store === 'storage') {
      const storage = this.#storage!;
      const key = outputKey(jobId, item, name);
      await storage.put(key, Readable.from([bytes]), { contentType: 'text/plain; charset=utf-8', signal });
      await storage.verify(key, bytes.length, signal);
      const where = await storage.locate(key);
      return {
        ...common,
        url: where.url,
        url_expires_at: where.expiresAt ?? farFuture,
        storage_url: where.storageUrl,
      };
    }
    if (options.store === 'inline') {
      inline.used += bytes.length;
      if (inline.used > this.#o.maxInlineBytes) throw new InlineTooLargeError(this.#o.maxInlineBytes);
      return { ...common, url: dataUrl, url_expires_at: farFuture, data_base64: bytes.toString('base64') };
    }
    return { ...common, url: dataUrl, url_expires_at: farFuture };
  }
}

/** The storage key of an output: `<job>/<node>/[temp/][<subfolder>/]<name>` (subfolders kept, segments sanitised). */
export function outputKey(jobId: string, item: PlannedOutput, name: string): string {
  const folder = item.file?.type === 'temp' ? 'temp' : item.file?.type === 'input' ? 'input' : '';
  return safeKey(jobId, item.nodeId, folder, item.file?.subfolder ?? '', name);
}

function normalizeType(header: string, filename: string): string {
  const type = header.split(';')[0]?.trim().toLowerCase() ?? '';
  return type === '' || type === 'application/octet-stream' ? mimeFromName(filename) : type;
}

function toReadable(body: unknown): Readable {
  if (body instanceof Readable) return body;
  if (typeof (body as ReadableStream).getReader === 'function') return Readable.fromWeb(body as never);
  return Readable.from(body as AsyncIterable<Uint8Array>);
}

function discard(): Writable {
  return new Writable({
    write(_chunk, _encoding, callback) {
      callback();
    },
  });
}

function collect(chunks: Buffer[], inline: { used: number }, max: number): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      inline.used += chunk.length;
      if (inline.used > max) {
        callback(new InlineTooLargeError(max));
        return;
      }
      chunks.push(chunk);
      callback();
    },
  });
}

function toIoError(err: unknown, callerSignal: AbortSignal | undefined): IoError {
  if (err instanceof IoError) return err;
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof IoError) return cause;
  if (callerSignal?.aborted) return new IoAbortError('output delivery was aborted', err);
  return new OutputFetchError(`output delivery failed: ${(err as Error).message}`, { cause: err });
}
