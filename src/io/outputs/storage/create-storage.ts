// Picks the storage backend for a STORAGE_URL: s3://bucket/prefix, file:///dir or an http(s) prefix.
import { fileURLToPath } from 'node:url';
import { OutputConfigError } from '../../errors.ts';
import { FileStorage } from './file-storage.ts';
import { HttpPutStorage } from './http-put-storage.ts';
import { S3Storage } from './s3-storage.ts';
import type { StorageBackend } from './storage-backend.ts';

/** Options for building a storage backend. */
export interface StorageOptions {
  s3Endpoint?: string;
  s3Region?: string;
  s3Credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  presignExpirySeconds: number;
  /** Headers for HTTP PUT storage (e.g. an Authorization header). */
  httpHeaders?: Record<string, string>;
}

/** Builds the backend a storage URL names; throws OutputConfigError for anything else. */
export function createStorage(storageUrl: string, options: StorageOptions): StorageBackend {
  let url: URL;
  try {
    url = new URL(storageUrl);
  } catch {
    throw new OutputConfigError(`storage URL ${JSON.stringify(storageUrl)} is not a URL`);
  }
  switch (url.protocol) {
    case 's3:': {
      if (url.hostname === '')
        throw new OutputConfigError('s3 storage URL needs a bucket: s3://bucket/prefix');
      return new S3Storage({
        bucket: url.hostname,
        prefix: decodeURIComponent(url.pathname),
        endpoint: options.s3Endpoint,
        region: options.s3Region,
        credentials: options.s3Credentials,
        presignExpirySeconds: options.presignExpirySeconds,
      });
    }
    case 'file:':
      return new FileStorage({ dir: fileURLToPath(url) });
    case 'http:':
    case 'https:':
      return new HttpPutStorage({ prefix: url.href, headers: options.httpHeaders });
    default:
      throw new OutputConfigError(
        `storage URL scheme ${url.protocol} is not supported (use s3://, file:// or http(s)://)`,
      );
  }
}
