// The on-disk LRU cache of fetched inputs: blobs under <dir>/blobs/<sha256>, bounded by total bytes, and
// a bounded map from (URL, credentials) to the blob, so the same input is fetched only once. Blobs in use
// (pinned) are never deleted under a reader; eviction waits for the last release.
import { createHash } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';

/** A cached input blob. */
export interface CachedBlob {
  sha256: string;
  bytes: number;
  mime: string;
  ext: string;
  kind: string;
  path: string;
}

/** The disk cache of fetched inputs. */
export class InputCache {
  readonly dir: string;
  readonly #blobs: LRUCache<string, CachedBlob>;
  readonly #byUrl: LRUCache<string, string>;
  readonly #pins = new Map<string, number>();
  readonly #doomed = new Set<string>();
  readonly #ready: Promise<void>;

  constructor(options: { dir: string; maxBytes: number; maxUrls?: number; urlTtlMs?: number }) {
    this.dir = options.dir;
    this.#blobs = new LRUCache<string, CachedBlob>({
      maxSize: Math.max(1, options.maxBytes),
      sizeCalculation: (b) => Math.max(1, b.bytes),
      dispose: (blob, _key, reason) => {
        if (reason === 'set') return;
        this.#evict(blob);
      },
    });
    this.#byUrl = new LRUCache<string, string>({
      max: options.maxUrls ?? 10_000,
      ttl: options.urlTtlMs ?? 3_600_000,
    });
    this.#ready = this.#init();
    this.#ready.catch(() => {});
  }

  /** Resolves once the cache folders exist. */
  ready(): Promise<void> {
    return this.#ready;
  }

  /** A fresh temp path for a download in progress (same filesystem as the blobs, for an atomic rename). */
  tempPath(): string {
    return join(this.dir, 'tmp', `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  }

  /** The key for a URL fetched with the given credential headers (different credentials, different entry). */
  static urlKey(url: string, headers: Record<string, string> | undefined): string {
    if (headers === undefined || Object.keys(headers).length === 0) return url;
    const digest = createHash('sha256')
      .update(JSON.stringify(Object.entries(headers).sort()))
      .digest('hex');
    return `${url}#cred:${digest}`;
  }

  /** The pinned blob for a URL key, or undefined. Call release() when done. */
  lookupUrl(key: string): CachedBlob | undefined {
    const sha = this.#byUrl.get(key);
    if (sha === undefined) return undefined;
    const blob = this.#blobs.get(sha);
    if (blob === undefined) {
      this.#byUrl.delete(key);
      return undefined;
    }
    this.#pin(sha);
    return blob;
  }

  /** Moves a finished download into the cache and pins it. Call release() when done. */
  async adopt(tempPath: string, meta: Omit<CachedBlob, 'path'>, urlKey?: string): Promise<CachedBlob> {
    await this.#ready;
    const path = join(this.dir, 'blobs', meta.sha256);
    this.#pin(meta.sha256);
    const existing = this.#blobs.get(meta.sha256);
    if (existing !== undefined) {
      await rm(tempPath, { force: true });
    } else {
      this.#doomed.delete(meta.sha256);
      await rename(tempPath, path);
    }
    const blob: CachedBlob = existing ?? { ...meta, path };
    if (existing === undefined) this.#blobs.set(meta.sha256, blob);
    if (urlKey !== undefined) this.#byUrl.set(urlKey, meta.sha256);
    return blob;
  }

  /** Releases a pin taken by lookupUrl() or adopt(). */
  release(sha256: string): void {
    const n = (this.#pins.get(sha256) ?? 0) - 1;
    if (n > 0) {
      this.#pins.set(sha256, n);
      return;
    }
    this.#pins.delete(sha256);
    if (this.#doomed.has(sha256)) {
      this.#doomed.delete(sha256);
      void rm(join(this.dir, 'blobs', sha256), { force: true });
    }
  }

  /** Bytes currently held. */
  get size(): number {
    return this.#blobs.calculatedSize ?? 0;
  }

  /** Removes a download that failed. */
  async discard(tempPath: string): Promise<void> {
    await rm(tempPath, { force: true });
  }

  /** Forgets the in-memory index (files stay for the next process to clear). Idempotent. */
  async close(): Promise<void> {
    await this.#ready.catch(() => {});
    this.#byUrl.clear();
  }

  #pin(sha256: string): void {
    this.#pins.set(sha256, (this.#pins.get(sha256) ?? 0) + 1);
  }

  #evict(blob: CachedBlob): void {
    for (const [key, sha] of this.#byUrl.entries()) if (sha === blob.sha256) this.#byUrl.delete(key);
    if ((this.#pins.get(blob.sha256) ?? 0) > 0) {
      this.#doomed.add(blob.sha256);
      return;
    }
    void rm(blob.path, { force: true });
  }

  async #init(): Promise<void> {
    // The index is in memory, so blobs left by an earlier process are unaccounted for: start empty.
    await rm(join(this.dir, 'blobs'), { recursive: true, force: true });
    await rm(join(this.dir, 'tmp'), { recursive: true, force: true });
    await mkdir(join(this.dir, 'blobs'), { recursive: true });
    await mkdir(join(this.dir, 'tmp'), { recursive: true });
  }
}
