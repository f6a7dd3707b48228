// The facade's virtual input folder. `POST /upload/image` cannot place a file on an instance (the
// instance is chosen when the job runs), so the bytes go to io's content-addressed AssetStore and
// the name is kept here under ComfyUI's rules (same bytes under the same name = same name back;
// other bytes = renamed `name (1).ext`; `overwrite` replaces; `subfolder`; `type`). A later prompt
// whose file input names such a file gets `asset:<id>` in the job's `inputs`, and io's
// InputResolver uploads it to whichever instance runs the job. Bounded by count and TTL.
import { extname } from 'node:path';
import type { Readable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import { GatewayError } from '../../errors.ts';
import type { AssetStore, PendingBlob } from '../../io/index.ts';

/** Where a stored upload lives. */
export interface FacadeUpload {
  assetId: string;
  sha256: string;
  bytes: number;
  contentType: string;
}

/** ComfyUI's upload answer. */
export interface UploadAnswer {
  name: string;
  subfolder: string;
  type: 'input' | 'temp' | 'output';
}

/** Where and how an upload is kept (ComfyUI's form fields). */
export interface PlaceOptions {
  filename: string;
  subfolder?: string;
  type?: string;
  overwrite?: boolean;
  contentType?: string;
}

/** A name or subfolder ComfyUI would refuse (400). */
export class UploadNameError extends GatewayError {
  constructor(message: string) {
    super('invalid_upload_name', 400, message);
  }
}

const FOLDERS = new Set(['input', 'temp', 'output']);

/** Normalizes a subfolder like ComfyUI's os.path.normpath check; throws when it escapes. */
export function normalizeSubfolder(subfolder: string): string {
  if (subfolder.includes('\0') || subfolder.startsWith('/') || subfolder.includes('\\'))
    throw new UploadNameError('invalid subfolder');
  const parts: string[] = [];
  for (const part of subfolder.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') throw new UploadNameError('subfolder escapes the folder');
    parts.push(part);
  }
  return parts.join('/');
}

function checkFilename(name: string): void {
  if (!name || name.length > 255 || /[/\\\0]/.test(name) || name === '.' || name === '..')
    throw new UploadNameError('invalid filename');
}

/** Parses a LoadImage-style value: `sub/name.png`, optionally annotated ` [input|output|temp]`. */
export function parseFileValue(value: string): {
  type: UploadAnswer['type'];
  subfolder: string;
  filename: string;
} {
  let type: UploadAnswer['type'] = 'input';
  let name = value;
  const m = /^(.*) \[(input|output|temp)\]$/.exec(value);
  if (m) {
    name = m[1] as string;
    type = m[2] as UploadAnswer['type'];
  }
  const slash = name.lastIndexOf('/');
  return {
    type,
    subfolder: slash >= 0 ? name.slice(0, slash) : '',
    filename: slash >= 0 ? name.slice(slash + 1) : name,
  };
}

/** The facade's bounded, name-indexed store of uploaded files. */
export class FacadeUploads {
  readonly #assets: AssetStore;
  readonly #names: LRUCache<string, FacadeUpload>;
  readonly #ttlMs: number;
  #queue: Promise<void> = Promise.resolve();

  constructor(options: { assets: AssetStore; maxNames: number; ttlMs: number }) {
    this.#assets = options.assets;
    this.#ttlMs = options.ttlMs;
    this.#names = new LRUCache({ max: options.maxNames, ttl: options.ttlMs });
  }

  /** Number of names held. */
  get size(): number {
    return this.#names.size;
  }

  /** Streams bytes into a pending blob (hashed, size-capped by the AssetStore); place() it next. */
  ingest(source: Readable, signal?: AbortSignal): Promise<PendingBlob> {
    return this.#assets.ingest(source, signal ? { signal } : {});
  }

  /** Drops a pending blob that will not be placed. */
  discard(blob: PendingBlob): Promise<void> {
    return this.#assets.discard(blob);
  }

  /** Names a pending blob under ComfyUI's rules and keeps it; returns ComfyUI's answer. */
  place(blob: PendingBlob, options: PlaceOptions): Promise<UploadAnswer> {
    // One naming decision at a time, so two uploads of different bytes never share a name.
    const run = this.#queue.then(() => this.#place(blob, options));
    this.#queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  async #place(blob: PendingBlob, options: PlaceOptions): Promise<UploadAnswer> {
    try {
      checkFilename(options.filename);
    } catch (err) {
      await this.#assets.discard(blob);
      throw err;
    }
    const type = (FOLDERS.has(options.type ?? '') ? options.type : 'input') as UploadAnswer['type'];
    let subfolder: string;
    try {
      subfolder = normalizeSubfolder(options.subfolder ?? '');
    } catch (err) {
      await this.#assets.discard(blob);
      throw err;
    }
    let name = options.filename;
    if (!options.overwrite) {
      const ext = extname(name);
      const stem = name.slice(0, name.length - ext.length);
      for (let i = 1; ; i++) {
        const existing = this.#names.get(key(type, subfolder, name));
        if (!existing || existing.sha256 === blob.sha256) break;
        if (i > 10_000) {
          await this.#assets.discard(blob);
          throw new UploadNameError('too many files with this name');
        }
        name = `${stem} (${i})${ext}`;
      }
    }
    const k = key(type, subfolder, name);
    if (this.#names.get(k)?.sha256 === blob.sha256) {
      // Same bytes under the same name: ComfyUI answers with the name and keeps no copy.
      await this.#assets.discard(blob);
      return { name, subfolder, type };
    }
    const { asset } = await this.#assets.commit(blob, {
      contentType: options.contentType ?? 'application/octet-stream',
      filePath: `${type}/${subfolder ? `${subfolder}/` : ''}${name}`,
      tags: ['comfy-facade'],
      expiresIn: Math.max(60, Math.min(604_800, Math.ceil(this.#ttlMs / 1000))),
    });
    this.#names.set(k, {
      assetId: asset.id,
      sha256: asset.sha256,
      bytes: asset.size_bytes,
      contentType: asset.content_type,
    });
    return { name, subfolder, type };
  }

  /** The upload a file-input value names, if the facade holds it. */
  lookupValue(value: unknown): FacadeUpload | undefined {
    if (typeof value !== 'string' || value === '') return undefined;
    const f = parseFileValue(value);
    return this.lookup(f.type, f.subfolder, f.filename);
  }

  /** The upload stored under type/subfolder/filename. */
  lookup(type: string, subfolder: string, filename: string): FacadeUpload | undefined {
    let sub: string;
    try {
      sub = normalizeSubfolder(subfolder);
    } catch {
      return undefined;
    }
    return this.#names.get(key(type, sub, filename));
  }

  /** Opens a stored upload's bytes (undefined when the asset expired underneath). */
  async open(upload: FacadeUpload): Promise<Readable | undefined> {
    try {
      return (await this.#assets.open(upload.assetId)).stream;
    } catch {
      return undefined;
    }
  }

  /** Forgets every name (the assets expire on their own). */
  clear(): void {
    this.#names.clear();
  }
}

function key(type: string, subfolder: string, filename: string): string {
  return `${type}\0${subfolder}\0${filename}`;
}
