// Resolves a job's file inputs before it is queued: every URL, s3:// URL, data URI or asset reference that
// feeds a file-loading input (or is named in the job's `inputs` map) is fetched (SSRF-guarded, capped,
// cached on disk), checked by content, uploaded once per instance, and the prompt rewritten to its name.
// `prefetch()` does the fetching and checking before a job takes an instance slot (its own bounded
// concurrency), so a slow or hostile URL delays only its own job; `resolve()` then only uploads.
import { createHash } from 'node:crypto';
import { openAsBlob } from 'node:fs';
import { open } from 'node:fs/promises';
import { LRUCache } from 'lru-cache';
import pLimit, { type LimitFunction } from 'p-limit';
import type { AssetStore } from '../assets/asset-store.ts';
import type { ApiPrompt, IoComfyClient, NodeDef } from '../comfy-types.ts';
import {
  InputFetchError,
  InputInvalidError,
  InputTypeRejectedError,
  InputUnreadableError,
  IoAbortError,
  IoError,
  InputTooManyPixelsError,
  MissingAssetError,
  UrlForbiddenError,
} from '../errors.ts';
import { loadSharp } from '../lazy-modules.ts';
import { type MediaType, SNIFF_BYTES, sniffMediaType } from '../media-type.ts';
import { redactUrl, SsrfGuard, type LookupFunction } from '../ssrf-guard.ts';
import { credentialsFor, type UrlCredential } from './credentials.ts';
import { decodeDataUri } from './data-uri.ts';
import { assetReference, type FileInputSpec, fileInputsOf, isResolvableString } from './file-inputs.ts';
import { InputCache } from './input-cache.ts';
import { type S3InputOptions, UrlFetcher } from './url-fetcher.ts';
import { apngFrames, containerOf, probeVideo, VideoProbeError } from './video-probe.ts';
import type { Logger } from '../../logger.ts';

/** What io logs with. */
export type IoLogger = Pick<Logger, 'debug' | 'warn'>;

/** Options of an InputResolver. */
export interface InputResolverOptions {
  allowPrivate: string[];
  maxInputBytes: number;
  cacheDir: string;
  cacheBytes: number;
  concurrency?: number;
  timeoutMs?: number;
  maxRedirects?: number;
  assets?: AssetStore;
  logger?: IoLogger;
  /** S3 access for s3:// inputs. */
  s3?: S3InputOptions;
  /**
   * Buckets (`bucket`) or prefixes (`bucket/some/prefix/`) s3:// inputs may name. Empty or absent:
   * s3:// inputs are refused, since they are read with the gateway's own credentials.
   */
  s3Allow?: readonly string[];
  /** DNS resolution (tests inject names that resolve to chosen addresses). */
  lookup?: LookupFunction;
  /** How many (instance, content) → uploaded-name entries to remember. */
  uploadMemoEntries?: number;
  /** Minimum transfer rate of an input URL (bytes/s per window; 0 = none). */
  minBytesPerSecond?: number;
  /** Window of the transfer-rate check (default 10 s). */
  rateWindowMs?: number;
  /** Inputs fetched at once by prefetch(), across all jobs (default 8). */
  prefetchConcurrency?: number;
  /** Largest image input in pixels (width × height × frames), and largest video frame; 0 = unlimited. */
  maxPixels?: number;
  /** Largest video input in pixels, width × height × frames where its container states them; 0 = unlimited. */
  maxVideoPixels?: number;
}

/** Options of one prefetch() call: resolve()'s without the instance. */
export type PrefetchOptions = Omit<ResolveOptions, 'client' | 'prefetched'>;

/**
 * A job's inputs fetched and checked ahead of its attempt; resolve() takes them from here. Holds
 * them (cache pins) until release(). Idempotent release.
 */
export class PrefetchedInputs {
  readonly #materials: Map<string, Material>;
  #released = false;
  constructor(materials: Map<string, Material>) {
    this.#materials = materials;
  }
  /** The material fetched for a source key, unless released. */
  get(key: string): Material | undefined {
    return this.#released ? undefined : this.#materials.get(key);
  }
  /** Number of distinct sources held. */
  get size(): number {
    return this.#materials.size;
  }
  /** Lets the cache evict them again. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    for (const m of this.#materials.values()) m.release();
  }
}

/** Options of one resolve() call. */
export interface ResolveOptions {
  inputs?: Record<string, string>;
  nodeDefs: Record<string, NodeDef>;
  client: IoComfyClient;
  signal?: AbortSignal;
  credentials?: UrlCredential[];
  /** Inputs prefetch() already fetched and checked (unused keys are fetched here). */
  prefetched?: PrefetchedInputs;
}

/** One input that was uploaded to the instance. */
export interface ResolvedUpload {
  nodeId: string;
  input: string;
  /** Where it came from (URL redacted, data URIs and assets abbreviated). */
  source: string;
  /** The value the prompt now holds. */
  name: string;
  bytes: number;
  sha256: string;
}

interface Task {
  nodeId: string;
  input: string;
  source: string | { assetId: string };
  spec: FileInputSpec | undefined;
}

/** A local, type-checked input ready to upload. */
interface Material {
  sha256: string;
  bytes: number;
  media: MediaType;
  /** The file path or the bytes, for reading the image header. */
  pixelSource: string | Buffer;
  open(): Promise<Blob>;
  release(): void;
  /** Where an asset asks to be placed (its file_path `input/sub/name.png`), kept on the instance. */
  place?: { folder: string; subfolder: string; filename: string };
}

const ALLOWED_KINDS: Record<string, string[]> = {
  image_upload: ['image'],
  video_upload: ['video', 'image'],
  audio_upload: ['audio', 'video'],
};

/** Fetches, checks and uploads a job's file inputs and rewrites its prompt. */
export class InputResolver {
  readonly guard: SsrfGuard;
  readonly #options: InputResolverOptions;
  readonly #cache: InputCache;
  readonly #fetcher: UrlFetcher;
  readonly #fetchLimit: LimitFunction;
  readonly #uploadLimit: LimitFunction;
  readonly #prefetchLimit: LimitFunction;
  readonly #uploaded: LRUCache<string, string>;
  readonly #inflight = new Map<string, Promise<string>>();
  #closed = false;

  constructor(options: InputResolverOptions) {
    this.#options = options;
    this.guard = new SsrfGuard({ allowPrivate: options.allowPrivate, lookup: options.lookup });
    this.#cache = new InputCache({ dir: options.cacheDir, maxBytes: options.cacheBytes });
    this.#fetcher = new UrlFetcher({ guard: this.guard, s3: options.s3 });
    this.#fetchLimit = pLimit(options.concurrency ?? 4);
    this.#uploadLimit = pLimit(options.concurrency ?? 4);
    this.#prefetchLimit = pLimit(options.prefetchConcurrency ?? 8);
    this.#uploaded = new LRUCache({ max: options.uploadMemoEntries ?? 10_000, ttl: 6 * 3_600_000 });
  }

  /** Resolves every file input of `prompt`; returns the rewritten prompt (the argument is not modified). */
  async resolve(
    prompt: ApiPrompt,
    options: ResolveOptions,
  ): Promise<{ prompt: ApiPrompt; uploads: ResolvedUpload[] }> {
    if (this.#closed) throw new IoAbortError('InputResolver is closed');
    const out = structuredClone(prompt);
    const tasks = this.#collect(out, options);
    if (tasks.length === 0) return { prompt: out, uploads: [] };
    await this.#checkAssets(tasks);
    await this.#cache.ready();

    // One material per distinct source, shared by every input that names it.
    const materials = new Map<string, Promise<Material>>();
    const materialFor = (task: Task): Promise<Material> => {
      const key = sourceKey(task);
      const ready = options.prefetched?.get(key);
      if (ready !== undefined) return Promise.resolve(ready);
      let m = materials.get(key);
      if (m === undefined) {
        m = this.#fetchLimit(() => this.#materialize(task, options));
        m.catch(() => {});
        materials.set(key, m);
      }
      return m;
    };
    try {
      const settled = await Promise.allSettled(
        tasks.map(async (task): Promise<ResolvedUpload> => {
          const material = await materialFor(task);
          checkKind(task, material.media);
          const folder = task.spec?.folder ?? 'input';
          const name = await this.#upload(material, folder, options);
          const value = folder === 'input' ? name : `${name} [${folder}]`;
          const node = out[task.nodeId];
          if (node !== undefined) node.inputs[task.input] = value;
          return {
            nodeId: task.nodeId,
            input: task.input,
            source: describe(task.source),
            name: value,
            bytes: material.bytes,
            sha256: material.sha256,
          };
        }),
      );
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
      return {
        prompt: out,
        uploads: settled.map((s) => (s as PromiseFulfilledResult<ResolvedUpload>).value),
      };
    } finally {
      for (const m of materials.values()) await m.then((x) => x.release()).catch(() => {});
    }
  }

  /**
   * Fetches and checks (type, size, pixels) every file input of `prompt` without an instance, with
   * the resolver's own concurrency bound; the result feeds resolve(). Throws the first input's error.
   */
  async prefetch(prompt: ApiPrompt, options: PrefetchOptions): Promise<PrefetchedInputs> {
    if (this.#closed) throw new IoAbortError('InputResolver is closed');
    const tasks = this.#collect(prompt, options);
    const held = new Map<string, Material>();
    if (tasks.length === 0) return new PrefetchedInputs(held);
    await this.#checkAssets(tasks);
    await this.#cache.ready();
    const pending = new Map<string, Promise<Material>>();
    for (const task of tasks) {
      const key = sourceKey(task);
      if (!pending.has(key)) {
        const m = this.#prefetchLimit(() => {
          options.signal?.throwIfAborted();
          return this.#materialize(task, options);
        });
        m.catch(() => {});
        pending.set(key, m);
      }
    }
    const settled = await Promise.allSettled(
      tasks.map(async (task) => {
        const material = await (pending.get(sourceKey(task)) as Promise<Material>);
        checkKind(task, material.media);
      }),
    );
    for (const [key, m] of pending) {
      const done = await m.then(
        (x) => x,
        () => undefined,
      );
      if (done) held.set(key, done);
    }
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) {
      for (const m of held.values()) m.release();
      throw failed.reason;
    }
    return new PrefetchedInputs(held);
  }

  /** Releases connections and forgets caches. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#fetchLimit.clearQueue();
    this.#uploadLimit.clearQueue();
    await this.#fetcher.close();
    await this.#cache.close();
    this.#uploaded.clear();
  }

  #collect(prompt: ApiPrompt, options: PrefetchOptions): Task[] {
    const tasks = new Map<string, Task>();
    for (const [nodeId, node] of Object.entries(prompt)) {
      if (
        node === null ||
        typeof node !== 'object' ||
        typeof node.inputs !== 'object' ||
        node.inputs === null
      )
        continue;
      const fileInputs = fileInputsOf(options.nodeDefs[node.class_type]);
      for (const [input, value] of Object.entries(node.inputs)) {
        const ref = assetReference(value);
        if (ref !== undefined) {
          tasks.set(`${nodeId}\0${input}`, {
            nodeId,
            input,
            source: { assetId: ref.id },
            spec: fileInputs.get(input),
          });
        } else if (typeof value === 'string' && fileInputs.has(input) && isResolvableString(value)) {
          tasks.set(`${nodeId}\0${input}`, {
            nodeId,
            input,
            source: sourceOf(value),
            spec: fileInputs.get(input),
          });
        }
      }
    }
    for (const [name, value] of Object.entries(options.inputs ?? {})) {
      const dot = name.indexOf('.');
      const nodeId = name.slice(0, dot);
      const input = name.slice(dot + 1);
      const node = prompt[nodeId];
      if (dot <= 0 || input === '')
        throw new InputInvalidError(`input name ${JSON.stringify(name)} must be "<node_id>.<input>"`);
      if (node === undefined)
        throw new InputInvalidError(
          `input ${JSON.stringify(name)} names node ${nodeId}, which is not in the workflow`,
          { input: name },
        );
      if (typeof value !== 'string' || !isResolvableString(value))
        throw new InputInvalidError(
          `input ${JSON.stringify(name)} must be an http(s) URL, s3:// URL, data URI or asset:<id>`,
          { input: name },
        );
      tasks.set(`${nodeId}\0${input}`, {
        nodeId,
        input,
        source: sourceOf(value),
        spec: fileInputsOf(options.nodeDefs[node.class_type]).get(input),
      });
    }
    return [...tasks.values()];
  }

  async #checkAssets(tasks: Task[]): Promise<void> {
    const ids = [...new Set(tasks.flatMap((t) => (typeof t.source === 'string' ? [] : [t.source.assetId])))];
    if (ids.length === 0) return;
    const store = this.#options.assets;
    const missing: string[] = [];
    for (const id of ids)
      if (id === '' || store === undefined || (await store.get(id)) === undefined) missing.push(id);
    if (missing.length > 0) throw new MissingAssetError(missing);
  }

  async #materialize(task: Task, options: PrefetchOptions): Promise<Material> {
    const material = await this.#load(task, options);
    try {
      await this.#checkPixels(material, task);
    } catch (err) {
      material.release();
      throw err;
    }
    return material;
  }

  async #load(task: Task, options: PrefetchOptions): Promise<Material> {
    const source = task.source;
    if (typeof source !== 'string') return this.#fromAsset(source.assetId);
    if (/^data:/i.test(source)) return fromDataUri(source, this.#options.maxInputBytes);
    if (/^s3:/i.test(source)) checkS3Allowed(source, this.#options.s3Allow ?? []);
    return this.#fromUrl(source, options);
  }

  /** Refuses images and videos whose header declares more pixels than allowed (decoding them could take an instance down). */
  async #checkPixels(material: Material, task: Task): Promise<void> {
    const max = this.#options.maxPixels ?? 0;
    if (max <= 0) return;
    if (material.media.kind === 'video') return this.#checkVideoPixels(material, task, max);
    if (material.media.kind !== 'image') return;
    let width = 0;
    let height = 0;
    let pages = 1;
    try {
      const sharp = loadSharp();
      // Reads the header only; limitInputPixels off so the check itself never refuses to look.
      const meta = await sharp(material.pixelSource, { limitInputPixels: false }).metadata();
      width = meta.width ?? 0;
      height = meta.height ?? 0;
      pages = meta.pages ?? 1;
      // sharp sees one page in an animated PNG; LoadImage (PIL) decodes every frame its acTL states.
      if (meta.format === 'png') pages = Math.max(pages, await apngFrames(material.pixelSource));
    } catch {
      throw new InputTypeRejectedError(`input ${task.nodeId}.${task.input} is not a readable image`, {
        node_id: task.nodeId,
        input: task.input,
      });
    }
    if (width * height * pages > max)
      throw new InputTooManyPixelsError(
        `input ${task.nodeId}.${task.input} is ${width}×${height}${pages > 1 ? `×${pages}` : ''} pixels, over the limit of ${max}`,
        { node_id: task.nodeId, input: task.input, width, height, frames: pages, max_pixels: max },
      );
  }

  /**
   * Refuses a video whose container declares a frame over MAX_INPUT_PIXELS, or more pixels in all
   * (width × height × frames, where the container states the count) than MAX_INPUT_VIDEO_PIXELS.
   * A header the probe cannot read is refused too: a decoder is more lenient than the probe, so a
   * damaged header is exactly how a bomb would slip past a check that let unknowns through.
   */
  async #checkVideoPixels(material: Material, task: Task, max: number): Promise<void> {
    const where = { node_id: task.nodeId, input: task.input };
    const container = containerOf(material.media.mime);
    if (container === undefined)
      throw new InputUnreadableError(
        `input ${task.nodeId}.${task.input} is ${material.media.mime}, whose frame size the gateway cannot read`,
        { ...where, content_type: material.media.mime },
      );
    let header: Awaited<ReturnType<typeof probeVideo>>;
    try {
      header = await probeVideo(material.pixelSource, container);
    } catch (err) {
      if (!(err instanceof VideoProbeError)) throw err;
      throw new InputUnreadableError(
        `input ${task.nodeId}.${task.input} is not a readable ${material.media.mime} file (${err.message})`,
        { ...where, content_type: material.media.mime, reason: err.message },
      );
    }
    const { width, height, frames } = header;
    const maxTotal = this.#options.maxVideoPixels ?? 0;
    const frame = width * height;
    if (frame > max || (maxTotal > 0 && frames !== undefined && frame * frames > maxTotal))
      throw new InputTooManyPixelsError(
        `input ${task.nodeId}.${task.input} is a ${width}×${height} video${frames !== undefined ? ` of ${frames} frames` : ''}, over the limit of ${frame > max ? `${max} pixels per frame` : `${maxTotal} pixels in all`}`,
        {
          ...where,
          width,
          height,
          frames: frames ?? null,
          max_pixels: max,
          max_video_pixels: maxTotal,
        },
      );
  }

  async #fromUrl(url: string, options: PrefetchOptions): Promise<Material> {
    const parsed = safeParse(url);
    const key = InputCache.urlKey(url, parsed ? credentialsFor(parsed, options.credentials) : undefined);
    const hit = this.#cache.lookupUrl(key);
    if (hit !== undefined) {
      this.#options.logger?.debug({ url: redactUrl(url), sha256: hit.sha256 }, 'input cache hit');
      return this.#fromBlob(hit.path, hit.sha256, hit.bytes, {
        mime: hit.mime,
        ext: hit.ext,
        kind: hit.kind as MediaType['kind'],
      });
    }
    const tmp = this.#cache.tempPath();
    try {
      const m = await this.#fetcher.fetchTo(url, tmp, {
        maxBytes: this.#options.maxInputBytes,
        timeoutMs: this.#options.timeoutMs ?? 60_000,
        maxRedirects: this.#options.maxRedirects ?? 5,
        credentials: options.credentials,
        signal: options.signal,
        minBytesPerSecond: this.#options.minBytesPerSecond ?? 0,
        ...(this.#options.rateWindowMs ? { rateWindowMs: this.#options.rateWindowMs } : {}),
      });
      const media = sniffMediaType(m.head);
      if (media === undefined) {
        await this.#cache.discard(tmp);
        throw new InputTypeRejectedError(
          `input ${redactUrl(url)} is not a supported image, video, audio or model file`,
          {
            url: redactUrl(url),
          },
        );
      }
      const blob = await this.#cache.adopt(tmp, { sha256: m.sha256, bytes: m.bytes, ...media }, key);
      this.#options.logger?.debug({ url: redactUrl(url), sha256: m.sha256, bytes: m.bytes }, 'input fetched');
      return this.#fromBlob(blob.path, blob.sha256, blob.bytes, media);
    } catch (err) {
      await this.#cache.discard(tmp);
      throw err;
    }
  }

  #fromBlob(path: string, sha256: string, bytes: number, media: MediaType): Material {
    let released = false;
    return {
      sha256,
      bytes,
      media,
      pixelSource: path,
      open: () => openAsBlob(path, { type: media.mime }),
      release: () => {
        if (released) return;
        released = true;
        this.#cache.release(sha256);
      },
    };
  }

  async #fromAsset(id: string): Promise<Material> {
    const store = this.#options.assets;
    if (store === undefined) throw new MissingAssetError([id]);
    const asset = await store.require(id).catch(() => {
      throw new MissingAssetError([id]);
    });
    const path = store.blobPath(asset);
    const fh = await open(path, 'r');
    const head = Buffer.alloc(SNIFF_BYTES);
    try {
      await fh.read(head, 0, SNIFF_BYTES, 0);
    } finally {
      await fh.close();
    }
    const media = sniffMediaType(head);
    if (media === undefined)
      throw new InputTypeRejectedError(`asset ${id} is not a supported image, video, audio or model file`, {
        asset_id: id,
      });
    const place = placeOf(asset.file_path);
    return {
      sha256: asset.sha256,
      bytes: asset.size_bytes,
      media,
      pixelSource: path,
      open: () => openAsBlob(path, { type: media.mime }),
      release: () => {},
      ...(place ? { place } : {}),
    };
  }

  async #upload(
    material: Material,
    folder: 'input' | 'output' | 'temp',
    options: ResolveOptions,
  ): Promise<string> {
    const client = options.client;
    // An asset placed as `<folder>/…` keeps that name on the instance (what the prompt, and so the
    // outputs' PNG metadata, shows: the name the client uploaded); others get a content name.
    const place = material.place?.folder === folder ? material.place : undefined;
    const memoKey = `${client.baseUrl}\0${folder}\0${material.sha256}${place ? `\0${place.subfolder}/${place.filename}` : ''}`;
    const known = this.#uploaded.get(memoKey);
    if (known !== undefined) return known;
    // Two jobs uploading the same content to the same instance at once share one upload.
    let pending = this.#inflight.get(memoKey);
    if (pending === undefined) {
      pending = this.#uploadLimit(async () => {
        const filename = place?.filename ?? `${material.sha256.slice(0, 24)}.${material.media.ext}`;
        const signal = options.signal
          ? AbortSignal.any([options.signal, AbortSignal.timeout(this.#options.timeoutMs ?? 60_000)])
          : AbortSignal.timeout(this.#options.timeoutMs ?? 60_000);
        try {
          const res = await client.uploadImage(await material.open(), {
            filename,
            ...(place?.subfolder ? { subfolder: place.subfolder } : {}),
            type: folder,
            overwrite: false,
            signal,
          });
          const name = res.subfolder ? `${res.subfolder}/${res.name}` : res.name;
          this.#uploaded.set(memoKey, name);
          return name;
        } catch (err) {
          if (err instanceof IoError) throw err;
          throw new InputFetchError(
            `uploading input to ${client.baseUrl} failed: ${(err as Error).message}`,
            { cause: err },
          );
        }
      });
      this.#inflight.set(memoKey, pending);
      pending.finally(() => this.#inflight.delete(memoKey)).catch(() => {});
    }
    return pending;
  }
}

/** `input/sub/name.png` (a ComfyUI folder, then subfolders and a name) as an upload place. */
function placeOf(filePath: string | null): Material['place'] {
  const m = filePath ? /^(input|temp|output)\/(?:(.+)\/)?([^/]+)$/.exec(filePath) : null;
  if (!m) return undefined;
  const subfolder = m[2] ?? '';
  const filename = m[3] as string;
  if (
    filename === '.' ||
    filename === '..' ||
    subfolder.split('/').some((p) => p === '..' || p === '.' || p === '')
  )
    return undefined;
  return { folder: m[1] as string, subfolder, filename };
}

function fromDataUri(uri: string, maxBytes: number): Material {
  const { bytes } = decodeDataUri(uri, maxBytes);
  const media = sniffMediaType(bytes.subarray(0, SNIFF_BYTES));
  if (media === undefined)
    throw new InputTypeRejectedError('data URI input is not a supported image, video, audio or model file');
  return {
    sha256: createHash('sha256').update(bytes).digest('hex'),
    bytes: bytes.length,
    media,
    pixelSource: bytes,
    open: async () => new Blob([bytes], { type: media.mime }),
    release: () => {},
  };
}

/** Refuses an s3:// URL outside the allow-list (the gateway's own AWS credentials would read it). */
export function checkS3Allowed(url: string, allow: readonly string[]): void {
  let bucket = '';
  let key = '';
  try {
    const parsed = new URL(url);
    bucket = parsed.hostname;
    key = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  } catch {
    throw new InputInvalidError(`not a valid s3 URL: ${redactUrl(url)}`);
  }
  const target = `${bucket}/${key}`;
  const allowed = allow.some((entry) => {
    const [b = '', ...rest] = entry.split('/');
    const prefix = rest.join('/');
    return b === bucket && target.startsWith(`${b}/${prefix}`);
  });
  if (!allowed)
    throw new UrlForbiddenError(
      allow.length === 0
        ? 's3:// inputs are disabled on this gateway (S3_INPUT_ALLOW is empty)'
        : `s3://${bucket}/${key} is outside the buckets and prefixes S3_INPUT_ALLOW permits`,
      { url: redactUrl(url) },
    );
}

function checkKind(task: Task, media: MediaType): void {
  const allowed = task.spec ? ALLOWED_KINDS[task.spec.flag] : undefined;
  if (allowed !== undefined && !allowed.includes(media.kind))
    throw new InputTypeRejectedError(
      `input ${task.nodeId}.${task.input} expects ${allowed.join(' or ')} content, got ${media.mime}`,
      { node_id: task.nodeId, input: task.input, content_type: media.mime },
    );
}

/** The key one fetched source is shared under. */
function sourceKey(task: Task): string {
  return typeof task.source === 'string' ? task.source : `asset:${task.source.assetId}`;
}

function describe(source: Task['source']): string {
  if (typeof source !== 'string') return `asset:${source.assetId}`;
  return redactUrl(source);
}

function safeParse(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

/** A resolvable string as a task source: `asset:<id>` (or `asset://<id>`) names an asset, anything else is fetched. */
function sourceOf(value: string): string | { assetId: string } {
  return /^asset:/i.test(value) ? { assetId: value.replace(/^asset:(\/\/)?/i, '') } : value;
}
