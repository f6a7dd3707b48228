// The storage backends outputs are delivered to, and the factory that picks one from STORAGE_URL.

import type { Readable } from 'node:stream';

/** Where one stored object can be fetched. */
export interface StoredLocation {
  /** A URL a client can GET (presigned for S3). */
  url: string;
  /** When `url` stops working; null when it does not expire. */
  expiresAt: string | null;
  /** The object's permanent location (`s3://bucket/key`, `file:///…`, `https://…`). */
  storageUrl: string;
}

/** A place outputs are streamed to. */
export interface StorageBackend {
  /** Streams `body` to `key`; rejects if the upload fails. */
  put(key: string, body: Readable, options: { contentType: string; signal: AbortSignal }): Promise<void>;
  /** Checks the stored object exists with exactly `bytes` bytes; throws OutputStorageError otherwise. */
  verify(key: string, bytes: number, signal: AbortSignal): Promise<void>;
  /** The location to report for `key`. */
  locate(key: string): Promise<StoredLocation>;
  /** Releases clients and sockets. Idempotent. */
  close(): Promise<void>;
}

/** Makes one path segment safe for object keys and file names (no separators, no dot-dot). */
export function safeSegment(segment: string): string {
  // Trimmed first: `".. "` must not survive as `".."`.
  const cleaned = segment
    .trim()
    .replace(/[\\/\0]/g, '_')
    .replace(/^\.+$/, '_');
  return cleaned === '' ? '_' : cleaned;
}

/** Joins path pieces (each may contain `/`) into a safe relative key. */
export function safeKey(...pieces: string[]): string {
  return pieces
    .flatMap((p) => p.split('/'))
    .filter((s) => s !== '' && s !== '.')
    .map(safeSegment)
    .join('/');
}
