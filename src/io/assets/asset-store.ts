// Content-addressed assets (Comfy API v2 §9): records under <dir>/assets/<id>.json, each pointing at an
// immutable blob <dir>/blobs/<sha256> stored once however many records share it. Uploads stream to a
// temp file while hashing, so an asset is never held in memory. The blobs' total size is bounded by a
// quota (507 asset_quota_exceeded), every asset expires (a default TTL when the upload names none),
// and a full disk is a 507 storage_full, never a 500.
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ContentMeter } from '../content-meter.ts';
import {
  AssetNotFoundError,
  AssetQuotaError,
  HashMismatchError,
  InputInvalidError,
  PayloadTooLargeError,
  StorageFullError,
} from '../errors.ts';

/** One stored asset record. */
export interface AssetRecord {
  id: string;
  /** `blake3:<hex>` as v2 specifies. */
  hash: string;
  sha256: string;
  size_bytes: number;
  content_type: string;
  file_path: string | null;
  tags: string[];
  created_at: string;
  expires_at: string | null;
}

/** Metadata given with an upload or a from-hash create. */
export interface AssetMetadata {
  contentType?: string;
  filePath?: string;
  tags?: string[];
  /** Retention in seconds (60..604800); absent = the store's default TTL. */
  expiresIn?: number;
}

/** Bytes ingested but not yet committed as an asset. */
export interface PendingBlob {
  path: string;
  sha256: string;
  hash: string;
  bytes: number;
}

const HASH_RE = /^blake3:[0-9a-f]{64}$/;
const ID_RE = /^[0-9a-f-]{36}$/;

/** The content-addressed asset store behind POST /api/v2/assets and `core/ASSET` job inputs. */
export class AssetStore {
  readonly dir: string;
  readonly maxBytes: number;
  /** Bound on the bytes of all blobs (0 = none). */
  readonly quotaBytes: number;
  /** Lifetime of an asset whose upload names none, in seconds (0 = never expires). */
  readonly defaultTtlSeconds: number;
  #usedBytes = 0;
  readonly #records = new Map<string, AssetRecord>();
  readonly #byHash = new Map<string, string>(); // blake3 hash → sha256 of a blob we hold
  readonly #ready: Promise<void>;
  #sweepTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: {
    dir: string;
    maxBytes: number;
    sweepIntervalMs?: number;
    quotaBytes?: number;
    defaultTtlSeconds?: number;
  }) {
    this.dir = options.dir;
    this.maxBytes = options.maxBytes;
    this.quotaBytes = options.quotaBytes ?? 0;
    this.defaultTtlSeconds = options.defaultTtlSeconds ?? 0;
    this.#ready = this.#load();
    this.#ready.catch(() => {});
    const every = options.sweepIntervalMs ?? 60_000;
    this.#sweepTimer = setInterval(() => void this.sweep().catch(() => {}), every);
    this.#sweepTimer.unref();
  }

  /** Bytes held in blobs now. */
  get usedBytes(): number {
    return this.#usedBytes;
  }

  /** Resolves once the records on disk are loaded. */
  ready(): Promise<void> {
    return this.#ready;
  }

  /** Stores an upload; `createdNew` is false when identical bytes were already held (dedup hit). */
  async put(
    source: Readable,
    meta: AssetMetadata & { expectedHash?: string; signal?: AbortSignal },
  ): Promise<{ asset: AssetRecord; createdNew: boolean }> {
    const blob = await this.ingest(source, { signal: meta.signal });
    return this.commit(blob, meta);
  }

  /** Streams bytes into a pending blob (hashed, size-capped); commit() or discard() it afterwards. */
  async ingest(source: Readable, options: { signal?: AbortSignal } = {}): Promise<PendingBlob> {
    await this.#ready;
    if (this.quotaBytes > 0 && this.#usedBytes >= this.quotaBytes) {
      source.resume();
      throw new AssetQuotaError(this.quotaBytes, this.#usedBytes, 0);
    }
    const tmp = join(this.dir, 'tmp', randomUUID());
    const meter = await ContentMeter.create({
      maxBytes: this.maxBytes,
      blake3: true,
      onTooLarge: () => new PayloadTooLargeError(this.maxBytes),
    });
    try {
      await pipeline(source, meter, createWriteStream(tmp), options.signal ? { signal: options.signal } : {});
    } catch (err) {
      await rm(tmp, { force: true });
      const cause = (err as { cause?: unknown }).cause;
      if (cause instanceof PayloadTooLargeError) throw cause;
      throw isDiskFull(err) ? new StorageFullError('the upload', err) : err;
    }
    const m = meter.measure;
    return { path: tmp, sha256: m.sha256, hash: `blake3:${m.blake3}`, bytes: m.bytes };
  }

  /** Turns a pending blob into an asset record (checking `expectedHash`); the blob is consumed either way. */
  async commit(
    blob: PendingBlob,
    meta: AssetMetadata & { expectedHash?: string },
  ): Promise<{ asset: AssetRecord; createdNew: boolean }> {
    try {
      validateMeta(meta);
      if (meta.expectedHash !== undefined && !HASH_RE.test(meta.expectedHash.toLowerCase()))
        throw new InputInvalidError('expected_hash must be "blake3:<64 hex>"');
      if (meta.expectedHash !== undefined && meta.expectedHash.toLowerCase() !== blob.hash)
        throw new HashMismatchError(meta.expectedHash, blob.hash);
      const target = this.#blobPath(blob.sha256);
      const existed = await exists(target);
      if (!existed && this.quotaBytes > 0 && this.#usedBytes + blob.bytes > this.quotaBytes)
        throw new AssetQuotaError(this.quotaBytes, this.#usedBytes, blob.bytes);
      if (existed) await rm(blob.path, { force: true });
      else {
        await rename(blob.path, target);
        this.#usedBytes += blob.bytes;
      }
      this.#byHash.set(blob.hash, blob.sha256);
      try {
        const asset = await this.#createRecord(
          { hash: blob.hash, sha256: blob.sha256, size: blob.bytes },
          meta,
        );
        return { asset, createdNew: !existed };
      } catch (err) {
        if (!existed && ![...this.#records.values()].some((r) => r.sha256 === blob.sha256)) {
          await rm(target, { force: true });
          this.#usedBytes -= blob.bytes;
        }
        throw err;
      }
    } finally {
      await rm(blob.path, { force: true });
    }
  }

  /** Drops a pending blob that will not be committed. */
  async discard(blob: PendingBlob): Promise<void> {
    await rm(blob.path, { force: true });
  }

  /** Creates a record over a blob the store already holds (v2 from-hash); undefined when it holds none. */
  async fromHash(
    hash: string,
    meta: AssetMetadata,
  ): Promise<{ asset: AssetRecord; createdNew: boolean } | undefined> {
    await this.#ready;
    validateMeta(meta);
    const key = hash.toLowerCase();
    const sha = this.#byHash.get(key);
    if (sha === undefined || !(await exists(this.#blobPath(sha)))) return undefined;
    const same = [...this.#records.values()].find(
      (r) =>
        r.hash === key &&
        r.file_path === (meta.filePath ?? null) &&
        sameTags(r.tags, meta.tags ?? []) &&
        isLive(r),
    );
    if (same !== undefined) return { asset: same, createdNew: false };
    const size = (await stat(this.#blobPath(sha))).size;
    const template = [...this.#records.values()].find((r) => r.hash === key);
    const asset = await this.#createRecord(
      { hash: key, sha256: sha, size },
      { ...meta, contentType: meta.contentType ?? template?.content_type },
    );
    return { asset, createdNew: true };
  }

  /** True when the store holds a blob with this `blake3:` hash. */
  async hasHash(hash: string): Promise<boolean> {
    await this.#ready;
    const sha = this.#byHash.get(hash.toLowerCase());
    return sha !== undefined && (await exists(this.#blobPath(sha)));
  }

  /** The record with this id, or undefined (also once it has expired). */
  async get(id: string): Promise<AssetRecord | undefined> {
    await this.#ready;
    const r = this.#records.get(id);
    return r !== undefined && isLive(r) ? r : undefined;
  }

  /** Like get() but throws AssetNotFoundError. */
  async require(id: string): Promise<AssetRecord> {
    const r = await this.get(id);
    if (r === undefined) throw new AssetNotFoundError(id);
    return r;
  }

  /** Path of an asset's blob on disk (read-only: blobs are shared). */
  blobPath(asset: AssetRecord): string {
    return this.#blobPath(asset.sha256);
  }

  /** Opens an asset's bytes, optionally a byte range (inclusive ends, as HTTP Range). */
  async open(
    id: string,
    range?: { start: number; end: number },
  ): Promise<{ asset: AssetRecord; stream: Readable }> {
    const asset = await this.require(id);
    const stream = createReadStream(
      this.#blobPath(asset.sha256),
      range ? { start: range.start, end: range.end } : {},
    );
    return { asset, stream };
  }

  /** Deletes a record; its blob goes when no other record refers to it. False when there was none. */
  async delete(id: string): Promise<boolean> {
    await this.#ready;
    const r = this.#records.get(id);
    if (r === undefined || !isLive(r)) return false;
    await this.#remove(r);
    return true;
  }

  /** Removes expired records (and blobs no record uses any more). */
  async sweep(): Promise<number> {
    await this.#ready;
    let removed = 0;
    for (const r of [...this.#records.values()]) {
      if (!isLive(r)) {
        await this.#remove(r);
        removed++;
      }
    }
    return removed;
  }

  /** Stops the expiry sweeper. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
    await this.#ready.catch(() => {});
  }

  async #remove(r: AssetRecord): Promise<void> {
    this.#records.delete(r.id);
    await rm(join(this.dir, 'assets', `${r.id}.json`), { force: true });
    const stillUsed = [...this.#records.values()].some((o) => o.sha256 === r.sha256);
    if (!stillUsed) {
      this.#byHash.delete(r.hash);
      await rm(this.#blobPath(r.sha256), { force: true });
      this.#usedBytes -= r.size_bytes;
    }
  }

  async #createRecord(
    blob: { hash: string; sha256: string; size: number },
    meta: AssetMetadata,
  ): Promise<AssetRecord> {
    const now = Date.now();
    const ttl = meta.expiresIn ?? this.defaultTtlSeconds;
    const asset: AssetRecord = {
      id: randomUUID(),
      hash: blob.hash,
      sha256: blob.sha256,
      size_bytes: blob.size,
      content_type: meta.contentType ?? 'application/octet-stream',
      file_path: meta.filePath ?? null,
      tags: meta.tags ?? [],
      created_at: new Date(now).toISOString(),
      expires_at: ttl > 0 ? new Date(now + ttl * 1000).toISOString() : null,
    };
    const file = join(this.dir, 'assets', `${asset.id}.json`);
    try {
      await writeFile(`${file}.tmp`, JSON.stringify(asset));
      await rename(`${file}.tmp`, file);
    } catch (err) {
      await rm(`${file}.tmp`, { force: true });
      throw isDiskFull(err) ? new StorageFullError('the asset record', err) : err;
    }
    this.#records.set(asset.id, asset);
    return asset;
  }

  #blobPath(sha256: string): string {
    return join(this.dir, 'blobs', sha256);
  }

  async #load(): Promise<void> {
    await mkdir(join(this.dir, 'blobs'), { recursive: true });
    await mkdir(join(this.dir, 'assets'), { recursive: true });
    await rm(join(this.dir, 'tmp'), { recursive: true, force: true });
    await mkdir(join(this.dir, 'tmp'), { recursive: true });
    for (const name of await readdir(join(this.dir, 'assets'))) {
      if (!name.endsWith('.json') || !ID_RE.test(name.slice(0, -5))) continue;
      try {
        const r = JSON.parse(await readFile(join(this.dir, 'assets', name), 'utf8')) as AssetRecord;
        if (![...this.#byHash.values()].includes(r.sha256)) this.#usedBytes += r.size_bytes;
        this.#records.set(r.id, r);
        this.#byHash.set(r.hash, r.sha256);
      } catch {
        // A torn record file (crash mid-write is prevented by rename, but disks lie): skip it.
      }
    }
  }
}

function validateMeta(meta: AssetMetadata): void {
  if (
    meta.expiresIn !== undefined &&
    (!Number.isInteger(meta.expiresIn) || meta.expiresIn < 60 || meta.expiresIn > 604_800)
  )
    throw new InputInvalidError('expires_in must be an integer between 60 and 604800 seconds');
  if (meta.filePath !== undefined && (meta.filePath.length > 1024 || meta.filePath.includes('\0')))
    throw new InputInvalidError('file_path is not valid');
  if (meta.tags !== undefined && (meta.tags.length > 64 || meta.tags.some((t) => t.length > 128)))
    throw new InputInvalidError('too many or too long tags');
}

function isLive(r: AssetRecord): boolean {
  return r.expires_at === null || Date.parse(r.expires_at) > Date.now();
}

function sameTags(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((t, i) => t === b[i]);
}

function isDiskFull(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** True when something is at `path`. */
function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
