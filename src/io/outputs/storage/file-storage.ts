// A local (or mounted) directory as an output destination: each file is written to a temp name and
// renamed into place, so a reader never sees a partial file.
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { OutputStorageError } from '../../errors.ts';
import { safeKey, type StorageBackend, type StoredLocation } from './storage-backend.ts';

/** Writes outputs under a directory. */
export class FileStorage implements StorageBackend {
  readonly dir: string;

  constructor(options: { dir: string }) {
    this.dir = options.dir;
  }

  async put(
    key: string,
    body: Readable,
    options: { contentType: string; signal: AbortSignal },
  ): Promise<void> {
    const path = this.#path(key);
    const tmp = `${path}.${randomUUID()}.partial`;
    try {
      await mkdir(dirname(path), { recursive: true });
      await pipeline(body, createWriteStream(tmp), { signal: options.signal });
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw new OutputStorageError(`writing ${path} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async verify(key: string, bytes: number): Promise<void> {
    const path = this.#path(key);
    const size = await stat(path).then(
      (s) => s.size,
      () => undefined,
    );
    if (size !== bytes)
      throw new OutputStorageError(`stored file ${path} has ${size ?? 'no'} bytes, expected ${bytes}`);
  }

  async locate(key: string): Promise<StoredLocation> {
    const url = pathToFileURL(this.#path(key)).href;
    return { url, expiresAt: null, storageUrl: url };
  }

  async close(): Promise<void> {}

  #path(key: string): string {
    return join(this.dir, safeKey(key));
  }
}
