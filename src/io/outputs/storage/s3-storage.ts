// S3 (and any S3-compatible store) as an output destination: multipart streamed uploads through
// @aws-sdk/lib-storage, HEAD verification, and presigned GET URLs.
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { OutputStorageError } from '../../errors.ts';
import { loadS3Client, loadS3Presigner, loadS3Storage } from '../../lazy-modules.ts';
import { safeKey, type StorageBackend, type StoredLocation } from './storage-backend.ts';

/** Options of S3 storage. */
export interface S3StorageOptions {
  bucket: string;
  prefix: string;
  endpoint?: string;
  region?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  presignExpirySeconds: number;
  /** Multipart part size (default 8 MiB; S3's minimum is 5 MiB) and parts in flight per upload (default 2). */
  partSize?: number;
  queueSize?: number;
}

/** Streams outputs into an S3 bucket. */
export class S3Storage implements StorageBackend {
  readonly #o: S3StorageOptions;
  readonly #client: S3Client;
  #closed = false;

  constructor(options: S3StorageOptions) {
    this.#o = options;
    const { S3Client } = loadS3Client();
    this.#client = new S3Client({
      endpoint: options.endpoint,
      region: options.region ?? 'us-east-1',
      forcePathStyle: options.endpoint !== undefined,
      credentials: options.credentials,
      // Many S3-compatible stores reject the SDK's newer default trailing checksums.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  async put(
    key: string,
    body: Readable,
    options: { contentType: string; signal: AbortSignal },
  ): Promise<void> {
    const { Upload } = loadS3Storage();
    const upload = new Upload({
      client: this.#client,
      params: { Bucket: this.#o.bucket, Key: this.#key(key), Body: body, ContentType: options.contentType },
      partSize: this.#o.partSize ?? 8 * 1024 * 1024,
      queueSize: this.#o.queueSize ?? 2,
      leavePartsOnError: false,
    });
    const onAbort = () => void upload.abort().catch(() => {});
    options.signal.addEventListener('abort', onAbort, { once: true });
    try {
      await upload.done();
    } catch (err) {
      throw new OutputStorageError(
        `upload to s3://${this.#o.bucket}/${this.#key(key)} failed: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    } finally {
      options.signal.removeEventListener('abort', onAbort);
    }
  }

  async verify(key: string, bytes: number, signal: AbortSignal): Promise<void> {
    let length: number | undefined;
    try {
      const { HeadObjectCommand } = loadS3Client();
      const head = await this.#client.send(
        new HeadObjectCommand({ Bucket: this.#o.bucket, Key: this.#key(key) }),
        {
          abortSignal: signal,
        },
      );
      length = head.ContentLength;
    } catch (err) {
      throw new OutputStorageError(
        `stored object s3://${this.#o.bucket}/${this.#key(key)} cannot be found after upload`,
        {
          cause: err,
        },
      );
    }
    if (length !== bytes)
      throw new OutputStorageError(
        `stored object s3://${this.#o.bucket}/${this.#key(key)} has ${length} bytes, expected ${bytes}`,
      );
  }

  async locate(key: string): Promise<StoredLocation> {
    const expiresIn = this.#o.presignExpirySeconds;
    const { GetObjectCommand } = loadS3Client();
    const url = await loadS3Presigner().getSignedUrl(
      this.#client,
      new GetObjectCommand({ Bucket: this.#o.bucket, Key: this.#key(key) }),
      {
        expiresIn,
      },
    );
    return {
      url,
      expiresAt: new Date(Date.now() + expiresIn * 1000).toISOString(),
      storageUrl: `s3://${this.#o.bucket}/${this.#key(key)}`,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.destroy();
  }

  #key(key: string): string {
    return safeKey(this.#o.prefix, key);
  }
}
