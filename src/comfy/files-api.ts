// ComfyClient's file endpoints: uploads (POST /upload/image|mask, streamed multipart), GET /view
// as a stream, and bounded, streamed downloads of a run's outputs.
import { Readable } from 'node:stream';
import { type ApiCalls, callScope } from './api-calls.ts';
import { downloadAll, type OutputSink } from './downloads.ts';
import { ComfyArgumentError, ComfyServerError } from './errors.ts';
import { callHeaders } from './headers.ts';
import type {
  CallOptions,
  ComfyLogger,
  FileRef,
  OutputFile,
  RunResult,
  UploadOptions,
  UploadResult,
  ViewResponse,
} from './types.ts';
import { contentTypeFor, multipartBody, type UploadData } from './upload.ts';

/** Options of `view`. */
export type ViewOptions = CallOptions & { range?: string; preview?: string; channel?: 'rgba' | 'rgb' | 'a' };

/** Options of `downloadOutputs`; `headers` go on every GET /view it makes. */
export type DownloadOptions = Pick<CallOptions, 'signal' | 'headers'> & {
  concurrency?: number;
  files?: OutputFile[];
};

/** Uploads, views and downloads on one ComfyUI server. */
export class FilesApi {
  readonly #calls: ApiCalls;
  readonly #downloadConcurrency: number;
  readonly #logger: ComfyLogger | undefined;

  constructor(calls: ApiCalls, options: { downloadConcurrency: number; logger?: ComfyLogger }) {
    this.#calls = calls;
    this.#downloadConcurrency = options.downloadConcurrency;
    this.#logger = options.logger;
  }

  /** Uploads an image (POST /upload/image); reference it as `name` or `subfolder/name`. */
  uploadImage(data: UploadData, options: UploadOptions): Promise<UploadResult> {
    return this.#upload('/upload/image', data, options);
  }

  /** Uploads a mask onto `options.mask.originalRef` (POST /upload/mask). */
  uploadMask(data: UploadData, options: UploadOptions): Promise<UploadResult> {
    if (!options.mask) throw new ComfyArgumentError('uploadMask needs options.mask.originalRef');
    return this.#upload('/upload/mask', data, options);
  }

  /** Opens a file (GET /view) as a stream; the caller must consume or destroy `body`. */
  async view(file: FileRef, options: ViewOptions = {}): Promise<ViewResponse> {
    this.#calls.assertOpen();
    if (!file.filename) throw new ComfyArgumentError('view needs a filename');
    const res = await this.#calls.http.stream({
      method: 'GET',
      path: '/view',
      query: {
        filename: file.filename,
        subfolder: file.subfolder ?? '',
        type: file.type ?? 'output',
        preview: options.preview,
        channel: options.channel,
      },
      ...(options.range ? { headers: { range: options.range } } : {}),
      ...callScope(options),
    });
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers))
      if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    if (res.statusCode !== 200 && res.statusCode !== 206) {
      const text = await res.body.text().catch(() => '');
      throw new ComfyServerError(
        `GET /view ${file.filename} (${file.type ?? 'output'}) answered ${res.statusCode}`,
        res.statusCode,
        text,
        { baseUrl: this.#calls.baseUrl },
      );
    }
    // A caller that destroys the body early makes undici emit 'error'; never let that crash the process.
    res.body.on('error', (err) => this.#logger?.debug({ err: String(err) }, 'comfy: /view body error'));
    const out: ViewResponse = {
      status: res.statusCode,
      headers,
      body: res.body,
      contentType: headers['content-type'] ?? 'application/octet-stream',
    };
    const length = Number(headers['content-length']);
    if (Number.isFinite(length) && headers['content-length'] !== undefined) out.contentLength = length;
    return out;
  }

  /** Streams every output file of `result` through `sink`, a bounded number at a time. */
  async downloadOutputs(
    result: Pick<RunResult, 'outputs'>,
    sink: OutputSink,
    options: DownloadOptions = {},
  ): Promise<void> {
    this.#calls.assertOpen();
    // Validated once here rather than failing file by file.
    const headers = options.headers === undefined ? undefined : callHeaders(options.headers);
    await downloadAll(
      options.files ?? result.outputs,
      (file, signal) => this.view(file, headers ? { signal, headers } : { signal }),
      sink as (file: OutputFile, stream: Readable) => Promise<void>,
      {
        concurrency: options.concurrency ?? this.#downloadConcurrency,
        ...(options.signal ? { signal: options.signal } : {}),
      },
    );
  }

  async #upload(path: string, data: UploadData, options: UploadOptions): Promise<UploadResult> {
    this.#calls.assertOpen();
    const baseUrl = this.#calls.baseUrl;
    const fields: Record<string, string> = { type: options.type ?? 'input' };
    if (options.subfolder) fields.subfolder = options.subfolder;
    if (options.overwrite) fields.overwrite = 'true';
    if (options.mask) {
      const ref = options.mask.originalRef;
      fields.original_ref = JSON.stringify({
        filename: ref.filename,
        subfolder: ref.subfolder ?? '',
        type: ref.type ?? 'input',
      });
    }
    const form = multipartBody(fields, {
      field: 'image',
      filename: options.filename,
      contentType: options.contentType ?? contentTypeFor(options.filename),
      data,
    });
    const res = await this.#calls.http.send({
      method: 'POST',
      path,
      makeBody: () => Readable.from(form.body()),
      headers: { 'content-type': form.contentType },
      idempotent: form.replayable,
      ...callScope({
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.headers !== undefined ? { headers: options.headers } : {}),
      }),
    });
    if (res.status !== 200) {
      throw new ComfyServerError(
        `POST ${path} ${options.filename} answered ${res.status}`,
        res.status,
        res.text,
        {
          baseUrl,
        },
      );
    }
    let body: Partial<UploadResult>;
    try {
      body = JSON.parse(res.text) as Partial<UploadResult>;
    } catch {
      throw new ComfyServerError(`POST ${path}: answer is not JSON`, res.status, res.text, { baseUrl });
    }
    if (typeof body.name !== 'string') {
      throw new ComfyServerError(`POST ${path}: answer has no name`, res.status, res.text, { baseUrl });
    }
    return {
      name: body.name,
      subfolder: body.subfolder ?? options.subfolder ?? '',
      type: body.type ?? fields.type ?? 'input',
    };
  }
}
